"""The toy models' trained weights shipped with the package, each checked against its recorded sha256.

``benchmark/models/weights/<name>.pt`` is a plain state dict (loaded with ``weights_only=True``);
``<name>.json`` beside it records the file's sha256, the synthetic data version it was trained on,
the recipe, the accuracy reached and the recipe's accuracy floor. The files travel with the package
(package data), so every machine evaluates the same weights instead of training its own: CPU kernels
differ between machines and a few epochs of training amplify the differences.
``python -m benchmark.training --retrain`` remakes them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED = ("toy_gap", "toy_gap_multi", "toy_vgg")
# the score each recipe must reach on the val split (single-label: top-1, multi-label: mAP)
FLOORS = {"toy_vgg": ("val_top1", 0.95), "toy_gap": ("val_top1", 0.95), "toy_gap_multi": ("val_map", 0.80)}
REQUIRED = ("name", "sha256", "data_version", "recipe", "accuracy_floor")


class WeightsError(ValueError):
    """A shipped weight file is missing, altered, or was trained on other data."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weight_path(name: str, root: Path | None = None) -> Path:
    return Path(root or WEIGHTS_DIR) / f"{name}.pt"


def data_version_for(name: str) -> int:
    """Version of the synthetic data ``name`` is trained on (multi-object scenes for ``*_multi``)."""
    from data_prep.synthetic import generator_version

    return generator_version("synthetic_multi" if name.endswith("_multi") else "synthetic")


def read_meta(name: str, root: Path | None = None) -> dict:
    """The JSON beside ``name``'s weight file, with its required fields checked."""
    path = weight_path(name, root).with_suffix(".json")
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise WeightsError(f"{path}: file not found; the shipped weights of {name!r} need it "
                           f"(remake both with python -m benchmark.training --retrain --model {name})") from None
    except ValueError as err:
        raise WeightsError(f"{path}: not valid JSON ({err})") from None
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise WeightsError(f"{path}: missing field(s) {missing}; expected {list(REQUIRED)}")
    return meta


def verify(name: str, root: Path | None = None) -> tuple[Path, dict]:
    """``(weight file, metadata)`` once the file's sha256 and data version match its JSON.

    Raises ``WeightsError`` naming the file when it is missing, altered, or made for other data.
    """
    meta = read_meta(name, root)
    path = weight_path(name, root)
    if not path.is_file():
        raise WeightsError(f"{path}: file not found (its JSON records sha256 {meta['sha256']})")
    actual = sha256_file(path)
    if actual != meta["sha256"]:
        raise WeightsError(f"{path}: sha256 {actual} differs from field 'sha256' {meta['sha256']} of "
                           f"{path.with_suffix('.json').name}; the weight file was altered or replaced "
                           f"(restore it from git, or remake it with python -m benchmark.training --retrain --model {name})")
    expected = data_version_for(name)
    if meta["data_version"] != expected:
        raise WeightsError(f"{path.with_suffix('.json')}: field 'data_version' is {meta['data_version']}, the synthetic "
                           f"generator is at version {expected}; remake the weights with "
                           f"python -m benchmark.training --retrain --model {name}")
    return path, meta


def shipped_digest(name: str) -> str | None:
    """The recorded sha256 of ``name``'s shipped weights (``None`` for a model that ships none)."""
    if name not in SHIPPED:
        return None
    return verify(name)[1]["sha256"]


def check_floor(name: str, meta: dict) -> None:
    """Raise if a trained model's score is below its recipe's accuracy floor."""
    field, floor = FLOORS[name]
    score = meta.get(field)
    if score is None or score < floor:
        raise WeightsError(f"{name}: {field} {score} is below the recipe's accuracy floor {floor}; "
                           "the retrained weights were not installed")


def install(name: str, trained: Path, meta: dict, root: Path | None = None) -> dict:
    """Copy a trained state dict into the shipped folder with its JSON (after the floor check)."""
    from benchmark.io import atomic_write_bytes

    check_floor(name, meta)
    field, floor = FLOORS[name]
    data = Path(trained).read_bytes()
    out = weight_path(name, root)
    record = {"name": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
              "data_version": data_version_for(name), "accuracy_floor": {field: floor},
              **{k: v for k, v in meta.items() if k not in ("name", "data_version", "seconds")}}
    atomic_write_bytes(out, data)
    atomic_write_bytes(out.with_suffix(".json"), (json.dumps(record, indent=2) + "\n").encode())
    return record
