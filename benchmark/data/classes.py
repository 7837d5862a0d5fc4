"""Class agreement between a manifest and a model, checked before a run starts.

A manifest's class index ``i`` means ``meta.json``'s ``wnids[i]`` / ``class_names[i]``; a model's
output ``j`` means its ``class_ids[j]`` (WordNet ids, when known) / ``class_names[j]``. Index ``i``
agrees with output ``i`` when the ids are equal or the names are equal after normalization (case,
spaces, punctuation ignored: ``potted plant`` == ``pottedplant``). Lists are compared by index
order, so a list may hold the same name twice (ImageNet's two ``crane`` and ``maillot``).

``dataset.class_map`` allows a manifest whose classes are not the model's, in the model's order:

* ``model``: each manifest class is mapped to the model output of the same id or name;
* a YAML/JSON file ``{manifest class name: model class name or output index}``.

Manifest classes that no image uses may stay unmapped; a used one is an error naming it.
A model without class names (random weights with a custom head, a checkpoint without its
``.json``) cannot be checked by meaning: a warning says that agreement is assumed by index, and
only the index range is checked (every manifest class index must be one of the model's outputs).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from omegaconf import OmegaConf

from benchmark.data.manifest import ManifestError

log = logging.getLogger(__name__)
SHOWN = 5  # differences shown in an error message


class ClassMismatchError(ManifestError):
    """The manifest's classes are not the model's outputs (and no ``dataset.class_map`` says how they relate)."""


def normalize(name: str) -> str:
    """A class name compared without case, spaces or punctuation."""
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


def _manifest_classes(meta: dict) -> tuple[list[str], list[str]]:
    ids = [str(w) for w in meta.get("wnids", [])]
    names = [str(n) for n in meta.get("class_names", [])] or list(ids)
    return ids, names


def _same(m_id: str, m_name: str, info, j: int) -> bool:
    ids, names = list(getattr(info, "class_ids", None) or []), list(info.class_names or [])
    if ids and j < len(ids) and m_id and ids[j] == m_id:
        return True
    if names and j < len(names):
        own = normalize(names[j])
        return own in (normalize(m_name), normalize(m_id))
    return False


def _differences(meta: dict, info) -> list[str]:
    m_ids, m_names = _manifest_classes(meta)
    names = list(info.class_names or [])
    out = []
    for i in range(max(len(m_names), info.num_classes)):
        if i >= len(m_names) or i >= info.num_classes or not _same(m_ids[i] if i < len(m_ids) else "", m_names[i], info, i):
            manifest = f"{m_names[i]!r}" + (f" ({m_ids[i]})" if i < len(m_ids) and m_ids[i] != m_names[i] else "") \
                if i < len(m_names) else "(none)"
            model = repr(names[i]) if i < len(names) else ("(none)" if i >= info.num_classes else f"output {i}")
            out.append(f"{i}: manifest {manifest} vs model {model}")
    return out


def check_classes(meta: dict, info, where: str, class_map: str | None = None, used: set[int] | None = None
                  ) -> dict[int, int] | None:
    """``None`` when manifest and model agree index by index, else the mapping manifest index -> model output.

    ``meta`` is the manifest's ``meta.json``; ``info`` the model's ``ModelInfo``; ``where`` names the
    manifest file in messages; ``used`` the manifest classes some image uses (default: all).
    Raises ``ClassMismatchError`` naming the first differences and the fix.
    """
    m_ids, m_names = _manifest_classes(meta)
    used = set(range(len(m_names))) if used is None else used
    if class_map:
        return _mapping(m_ids, m_names, info, where, class_map, used)
    known = bool(info.class_names or getattr(info, "class_ids", None))
    if not known:  # nothing to compare: only the index range is checked (by the caller)
        log.warning("model %r has no class names: the %d manifest classes of %s are assumed to be its outputs "
                    "in index order (give the model class names to have this checked)", info.name, len(m_names), where)
        return None
    diff = _differences(meta, info)
    if not diff:
        return None
    names = list(info.class_names or [])
    raise ClassMismatchError(
        f"{where}: the manifest's classes are not model {info.name!r}'s outputs: manifest {len(m_names)} classes "
        f"{m_names[:SHOWN]}{'...' if len(m_names) > SHOWN else ''}, model {info.num_classes} outputs "
        f"{names[:SHOWN]}{'...' if len(names) > SHOWN else ''}; first differences (index: manifest vs model): "
        f"{'; '.join(diff[:SHOWN])}{' ...' if len(diff) > SHOWN else ''} ({len(diff)} in all). Use a dataset "
        f"made for this model (or a model trained on these classes), or map the classes explicitly: "
        f"dataset.class_map=model (same names or ids, in the model's order) or dataset.class_map=FILE "
        f"(YAML/JSON: manifest class name -> model class name or output index)")


def _mapping(m_ids, m_names, info, where, class_map, used) -> dict[int, int]:
    if class_map == "model":
        if not (info.class_names or getattr(info, "class_ids", None)):
            raise ClassMismatchError(f"config field 'dataset.class_map' is 'model' but model {info.name!r} has no "
                                     f"class names to map to; give a file (manifest class name -> output index)")
        wanted = {i: m_names[i] for i in range(len(m_names))}
    else:
        wanted = _read_map(Path(class_map), m_names)
    out, missing = {}, []
    for i in sorted(used):
        target = wanted.get(i)
        j = _resolve(target, m_ids[i] if i < len(m_ids) and class_map == "model" else "", info, class_map)
        if j is None:
            missing.append(m_names[i] if target is None or class_map == "model" else f"{m_names[i]} -> {target!r}")
        else:
            out[i] = j
    if missing:
        raise ClassMismatchError(
            f"{where}: dataset.class_map={class_map!r} leaves manifest class(es) used by images without a model "
            f"output: {missing[:SHOWN]}{' ...' if len(missing) > SHOWN else ''} ({len(missing)} in all); model "
            f"{info.name!r} has {info.num_classes} outputs {list(info.class_names or [])[:SHOWN]}... Map them in a "
            f"class_map file (manifest class name -> model class name or output index) or use another model")
    return out


def _read_map(path: Path, m_names: list[str]) -> dict[int, object]:
    if not path.is_file():
        raise ClassMismatchError(f"{path}: dataset.class_map file not found (expected YAML/JSON: manifest class "
                                 f"name -> model class name or output index), or use dataset.class_map=model")
    try:
        data = json.loads(path.read_text()) if path.suffix == ".json" else OmegaConf.to_container(OmegaConf.load(path))
    except Exception as err:  # noqa: BLE001  (YAML and JSON parsers raise different types)
        raise ClassMismatchError(f"{path}: dataset.class_map file is not valid YAML/JSON ({err})") from None
    if not isinstance(data, dict):
        raise ClassMismatchError(f"{path}: dataset.class_map file holds a {type(data).__name__}; expected a mapping "
                                 f"manifest class name -> model class name or output index")
    index = {normalize(n): i for i, n in reversed(list(enumerate(m_names)))}
    unknown = [k for k in data if normalize(k) not in index]
    if unknown:
        raise ClassMismatchError(f"{path}: dataset.class_map names class(es) {unknown[:SHOWN]} that the manifest "
                                 f"lacks; expected some of {m_names[:10]}{'...' if len(m_names) > 10 else ''}")
    return {index[normalize(k)]: v for k, v in data.items()}


def _resolve(target, m_id: str, info, class_map: str) -> int | None:
    """The model output a class_map target names (an index, an id, or a name that occurs once)."""
    if target is None:
        return None
    if isinstance(target, int) and not isinstance(target, bool):
        if not 0 <= target < info.num_classes:
            raise ClassMismatchError(f"{class_map}: output index {target} outside model {info.name!r}'s "
                                     f"0..{info.num_classes - 1}")
        return target
    ids = list(getattr(info, "class_ids", None) or [])
    if m_id and m_id in ids:
        return ids.index(m_id)
    if str(target) in ids:
        return ids.index(str(target))
    hits = [j for j, n in enumerate(info.class_names or []) if normalize(n) == normalize(target)]
    if len(hits) > 1:
        raise ClassMismatchError(f"{class_map}: class {target!r} names model outputs {hits} of model {info.name!r}; "
                                 f"map it to one output index in a class_map file")
    return hits[0] if hits else None
