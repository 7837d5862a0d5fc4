"""Guard: a model is never evaluated on images it was trained on (Grad-CAM Table 2 fine-tunes on
VOC 2007 train and evaluates on val; Zhang et al. train on trainval and test on test).

What a model was trained on comes from two places:

* ``trained_on`` in its model config: dataset config names, declared for preset checkpoints
  (``vgg16_voc07``: ``[voc2007_trainval]``);
* the checkpoint's metadata ``<checkpoint>.json`` written by ``benchmark.training.finetune``:
  ``train_dataset`` (a dataset name) and ``train_image_ids`` (the sorted training image ids, with
  ``train_image_ids_sha256``, their digest).

A dataset name stands for its ``parts`` (``conf/dataset/<name>.yaml``: ``voc2007_trainval`` is
``voc2007_train`` + ``voc2007_val``), or for itself when it declares none. The run stops with
``TrainingOverlapError`` when a training part is an evaluated part, or when an evaluated image id
is in the checkpoint's list of training ids, before anything is written.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, Iterable

from omegaconf import OmegaConf

from benchmark.models.base import CONF_DIR


class TrainingOverlapError(ValueError):
    """The evaluated images overlap the model's recorded training data."""


def dataset_parts(name: str, declared: Iterable[str] | None = None, _seen: frozenset = frozenset()) -> set[str]:
    """The atomic splits a dataset name stands for (its ``parts``, recursively, else itself)."""
    if declared is None:
        path = CONF_DIR / "dataset" / f"{name}.yaml"
        raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False) if path.is_file() else {}
        declared = raw.get("parts") or []
    if not declared or name in _seen:
        return {name}
    out: set[str] = set()
    for part in declared:
        out |= dataset_parts(part, None, _seen | {name})
    return out


def ids_digest(image_ids: Iterable[str]) -> str:
    """sha256 of the sorted ids joined by newlines (what ``train_image_ids_sha256`` records)."""
    return hashlib.sha256("\n".join(sorted(str(i) for i in image_ids)).encode()).hexdigest()


def checkpoint_meta(checkpoint: str | None) -> tuple[dict, Path | None]:
    """The ``.json`` beside a checkpoint (``{}``, None when there is none)."""
    if not checkpoint:
        return {}, None
    path = Path(checkpoint).with_suffix(".json")
    if not path.is_file():
        return {}, None
    try:
        return json.loads(path.read_text()), path
    except json.JSONDecodeError as err:
        raise TrainingOverlapError(f"{path}: checkpoint metadata is not valid JSON ({err}); expected the "
                                   "object written by benchmark.training.finetune") from None


def training_sources(model_cfg: dict) -> tuple[list[tuple[str, str]], list[str] | None, str]:
    """``([(dataset name, where it is recorded)], training ids or None, where the ids are)``."""
    where_cfg = f"model config {model_cfg['name']!r} field 'trained_on'"
    names = [(str(n), where_cfg) for n in (model_cfg.get("trained_on") or [])]
    meta, path = checkpoint_meta(model_cfg.get("checkpoint"))
    if meta.get("train_dataset"):
        names.append((str(meta["train_dataset"]), f"{path} field 'train_dataset'"))
    ids = meta.get("train_image_ids")
    if ids is not None:
        digest = meta.get("train_image_ids_sha256")
        if digest and digest != ids_digest(ids):
            raise TrainingOverlapError(f"{path}: field 'train_image_ids_sha256' does not match 'train_image_ids' "
                                       "(expected the sha256 of the sorted ids joined by newlines)")
    return names, ids, f"{path} field 'train_image_ids'"


def check_training_overlap(config: dict, evaluated_ids: Callable[[], list[str]] | None = None) -> None:
    """Raise ``TrainingOverlapError`` naming the model's training data and the evaluated dataset
    when they share a split (or, given ``evaluated_ids``, an image)."""
    model, ds = config["model"], config["dataset"]
    evaluated = dataset_parts(ds["name"], ds.get("parts") or None)
    names, ids, where_ids = training_sources(model)
    for name, where in names:
        shared = dataset_parts(name) & evaluated
        if shared:
            raise TrainingOverlapError(
                f"model {model['name']!r} was trained on {name} ({where}), which overlaps the evaluated dataset "
                f"{ds['name']!r} (shared: {', '.join(sorted(shared))}); evaluate on a split the model has not seen "
                f"or use a model trained without it (e.g. one fine-tuned on a disjoint split)")
    if ids is not None and evaluated_ids is not None:
        shared_ids = set(map(str, ids)) & set(map(str, evaluated_ids()))
        if shared_ids:
            raise TrainingOverlapError(
                f"model {model['name']!r} was trained on {len(shared_ids)} images of the evaluated dataset "
                f"{ds['name']!r} ({where_ids}; e.g. {sorted(shared_ids)[0]!r}); evaluate on images the model has "
                "not seen")
