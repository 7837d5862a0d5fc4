"""Digests of what a run reads besides its settings: the dataset, plugin sources, declared versions.

``inputs(config)`` is part of a run's identity (``benchmark.runs.identity``) and of its summary:

* ``dataset``: for a prepared dataset (no ``generate:``), the sha256 of ``manifest.parquet`` and
  ``meta.json`` bytes and of every image file's path, size and modification time (``dataset.image_digest:
  bytes`` hashes the images' bytes instead of size and time: slower, but unchanged by a copy). A generated
  dataset is identified by its generator's version instead (``generated_inputs_version``).
* ``plugins``: ``{module: sha256 of its source}`` for each module of ``plugins`` (every ``.py`` file of
  a package).
* ``versions``: the ``version`` the method's and the metric's registry entries declare, when not 1.

Everything here is computed without importing torch, the registries or the data readers (so a finished
job is recognised in well under a second), with file contents and lists cached per process keyed on the files' size and time (the images are
stat'ed on every call).
Declared versions are read from the registering modules' source (``benchmark.registry.declared_versions``),
which a test checks against the registries themselves.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
from pathlib import Path

from benchmark.registry import declared_versions

PACKAGE_DIR = Path(__file__).resolve().parents[1]
WEIGHTS_DIR = PACKAGE_DIR / "models" / "weights"  # benchmark.models.shipped.WEIGHTS_DIR, without importing torch
_cache: dict[tuple, object] = {}


def _stat_key(path: Path) -> tuple:
    try:
        st = path.stat()
    except OSError:
        return (str(path), None)
    return (str(path), st.st_size, st.st_mtime_ns)


def _sha_file(path: Path, digest=None):
    digest = digest or hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest


def _image_paths(manifest: Path, meta: dict, directory: Path) -> list[Path]:
    import pyarrow.parquet as pq  # only for prepared datasets (a generated one is keyed by its version)

    root = Path(meta.get("image_root") or ".")
    root = root if root.is_absolute() else directory / root
    return [root / p for p in pq.read_table(manifest, columns=["path"]).column("path").to_pylist()]


def dataset_digest(dataset: dict) -> str | None:
    """sha256 of a prepared dataset's manifest, meta.json and images (see the module docstring); ``None``
    for a generated dataset and when the manifest is not there (the run then fails on it, finishing nothing)."""
    if dataset.get("generate"):
        return None
    directory = Path(str(dataset.get("root")))
    manifest, meta_file = directory / "manifest.parquet", directory / "meta.json"
    if not manifest.is_file() or not meta_file.is_file():
        return None
    mode = dataset.get("image_digest") or "stat"
    digest = hashlib.sha256(mode.encode())
    for name in (manifest, meta_file):
        digest.update(name.name.encode() + b"\0")
        digest.update(_cached(("bytes", _stat_key(name)), lambda: _sha_file(name).digest()))
    key = ("paths", str(directory.resolve()), _stat_key(manifest), _stat_key(meta_file))
    for path in _cached(key, lambda: _read_paths(manifest, meta_file, directory)):
        digest.update(str(path).encode() + b"\0")
        stat = _stat_key(path)  # every call: an image replaced under the same manifest is seen
        if mode == "bytes" and stat[1] is not None:
            digest.update(_cached(("bytes", stat), lambda: _sha_file(path).digest()))
        else:
            digest.update(repr(stat[1:]).encode())
    return digest.hexdigest()


def _cached(key: tuple, compute):
    if key not in _cache:
        _cache[key] = compute()
    return _cache[key]


def _read_paths(manifest: Path, meta_file: Path, directory: Path) -> list[Path]:
    try:
        return sorted(_image_paths(manifest, json.loads(meta_file.read_text()), directory))
    except Exception:  # noqa: BLE001  (an unreadable manifest: its bytes identify it; the run reports it)
        return []


def module_files(module: str) -> list[Path]:
    """The source files of an importable module (every ``.py`` file of a package), found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin in (None, "built-in", "frozen"):
        return []
    if spec.submodule_search_locations:
        return sorted(p for folder in spec.submodule_search_locations for p in Path(folder).rglob("*.py"))
    return [Path(spec.origin)]


def source_digest(module: str) -> str:
    """sha256 of a module's source files (names and bytes); ``"missing"`` when it cannot be found."""
    try:
        files = module_files(module)
    except (ImportError, ValueError):
        files = []
    if not files:
        return "missing"
    key = ("source", module, tuple(_stat_key(f) for f in files))
    if key not in _cache:
        digest = hashlib.sha256()
        for path in files:
            digest.update(path.name.encode() + b"\0")
            _sha_file(path, digest)
        _cache[key] = digest.hexdigest()
    return _cache[key]


def entry_versions(kind: str, plugins) -> dict[str, int]:
    """``{entry name: declared version}`` of the package's ``methods``/``metrics`` and of the plugin modules."""
    key = ("versions", kind, tuple(plugins or ()), tuple(source_digest(p) for p in plugins or ()))
    if key not in _cache:
        files = sorted((PACKAGE_DIR / kind).glob("*.py"))
        for module in plugins or ():
            files += module_files(module)
        _cache[key] = declared_versions(files)
    return _cache[key]


def generator_version(generator: str) -> int:
    """``data_prep.synthetic.generator_version``, read from its source when the module is not imported yet
    (importing it loads the data readers and torch)."""
    import sys

    if "data_prep.synthetic" in sys.modules:
        return sys.modules["data_prep.synthetic"].generator_version(generator)
    key = ("generator", generator)
    if key not in _cache:
        source = Path(importlib.util.find_spec("data_prep.synthetic").origin)
        values = {t.id: n.value.value for n in ast.parse(source.read_text()).body if isinstance(n, ast.Assign)
                  for t in n.targets if isinstance(t, ast.Name) and isinstance(n.value, ast.Constant)}
        _cache[key] = values["MULTI_VERSION" if generator == "synthetic_multi" else "VERSION"]
    return _cache[key]


def shipped_sha256(model: str) -> str | None:
    """The sha256 recorded for a toy model's shipped weights (``None`` when it ships none). The weights
    themselves are verified against it before they are loaded (``benchmark.training.ensure_checkpoint``)."""
    meta = WEIGHTS_DIR / f"{model}.json"
    if not meta.is_file():
        return None
    try:
        return str(json.loads(meta.read_text()).get("sha256"))
    except ValueError:
        return "unreadable"


def inputs(config: dict) -> dict:
    """The digests of what the run reads (see the module docstring); empty parts are left out."""
    plugins = list(config.get("plugins") or [])
    out: dict = {}
    digest = dataset_digest(config.get("dataset") or {})
    if digest is not None:
        out["dataset"] = digest
    if plugins:
        out["plugins"] = {module: source_digest(module) for module in plugins}
    versions = {}
    for group, kind in (("method", "methods"), ("metric", "metrics")):
        name = (config.get(group) or {}).get("name")
        version = entry_versions(kind, plugins).get(name, 1)
        if version != 1:
            versions[group] = version
    if versions:
        out["versions"] = versions
    return out


def clear_cache() -> None:
    """Forget every digest and file list computed in this process."""
    _cache.clear()
