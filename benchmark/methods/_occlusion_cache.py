"""On-disk cache of occlusion maps, so that every method's correlation run (Grad-CAM Table 2)
reuses the same occlusion map instead of recomputing 50,176 forwards per image.

Key, one ``.npy`` (float32 ``[S, S]``, input resolution) per (image, class):

* folder ``<root>/<model name>-<model digest>/<settings digest>/``: the model digest hashes the
  model's state dict (names, dtypes, shapes, bytes), so the same name with other weights or another
  checkpoint never hits; the settings digest covers patch, stride, fill, effective amp, the engine
  in effect (``plain`` or ``incremental``: equal maps up to float rounding, never mixed silently),
  the input size and the preprocessing (mode, mean, std), written out in ``settings.json``;
* file ``<image id>-<image digest>-c<class>.npy``: the image digest hashes the decoded uint8 image,
  so two datasets that reuse an image id do not collide.

``max_batch`` and the device are not part of the key (they change the map only by float rounding).
Writes are atomic (temporary file and rename), so parallel jobs may share a cache; a file that
cannot be read is recomputed and overwritten.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import weakref
from pathlib import Path

import numpy as np
import torch

from benchmark.io import atomic_write_bytes
from benchmark.data.transforms import Preprocess
from benchmark.types import Sample

log = logging.getLogger(__name__)
_MODEL_DIGESTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def model_digest(model: torch.nn.Module) -> str:
    """Hex digest of the model's class and state dict (memoized per model object)."""
    if model in _MODEL_DIGESTS:
        return _MODEL_DIGESTS[model]
    h = hashlib.blake2b(digest_size=16)
    h.update(type(model).__qualname__.encode())
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        h.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}".encode())
        h.update(flat.view(torch.uint8).numpy().tobytes())
    _MODEL_DIGESTS[model] = h.hexdigest()
    return _MODEL_DIGESTS[model]


def image_digest(image: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=8)
    h.update(str(image.shape).encode())
    h.update(np.ascontiguousarray(image).tobytes())
    return h.hexdigest()


def _safe(text: str) -> str:
    """A file-name-safe form of an id (other characters become ``_``)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", str(text))[:120]


class OcclusionCache:
    """Occlusion maps for one (model, settings, preprocessing) under ``root``; counts hits and misses."""

    def __init__(self, root: str | Path, engine, prep: Preprocess, device: str | torch.device = "cpu"):
        self.engine, self.prep = engine, prep
        self.settings = {**engine.settings(device), "input_size": int(prep.size), "preprocessing": prep.mode,
                         "mean": [float(v) for v in prep.mean], "std": [float(v) for v in prep.std],
                         "model": engine.info.name, "weights": engine.info.weights,
                         "checkpoint": engine.info.checkpoint}
        key = {k: v for k, v in self.settings.items() if k not in ("model", "weights", "checkpoint")}
        digest = hashlib.blake2b(json.dumps(key, sort_keys=True).encode(), digest_size=8).hexdigest()
        self.dir = Path(root) / f"{_safe(engine.info.name)}-{model_digest(engine.model)[:12]}" / digest
        self.computed = 0  # maps computed (cache misses)
        self.loaded = 0  # maps read from disk (cache hits)

    def path(self, sample: Sample, class_id: int) -> Path:
        return self.dir / f"{_safe(sample.image_id)}-{image_digest(sample.image)}-c{int(class_id)}.npy"

    def _load(self, path: Path) -> np.ndarray | None:
        if not path.is_file():
            return None
        try:
            value = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            log.warning("occlusion cache %s unreadable (%s): recomputing", path, err)
            return None
        if value.shape != (self.prep.size, self.prep.size) or value.dtype != np.float32:
            log.warning("occlusion cache %s has %s %s, expected (%d, %d) float32: recomputing",
                        path, value.shape, value.dtype, self.prep.size, self.prep.size)
            return None
        return value

    def _store(self, path: Path, value: np.ndarray) -> None:
        if not (self.dir / "settings.json").is_file():
            atomic_write_bytes(self.dir / "settings.json", json.dumps(self.settings, indent=1).encode())
        buffer = io.BytesIO()
        np.save(buffer, value.astype(np.float32), allow_pickle=False)
        atomic_write_bytes(path, buffer.getvalue())

    def maps(self, samples: list[Sample], images: torch.Tensor, class_ids: torch.Tensor) -> np.ndarray:
        """Occlusion maps ``[B, S, S]`` float32 for ``class_ids [B]``: read, or computed and stored."""
        ids = [int(c) for c in class_ids.reshape(-1).tolist()]
        paths = [self.path(s, c) for s, c in zip(samples, ids)]
        out = [self._load(p) for p in paths]
        missing = [i for i, value in enumerate(out) if value is None]
        self.loaded += len(out) - len(missing)
        if missing:
            pick = torch.tensor(missing, device=images.device)
            fresh = self.engine(images[pick], torch.tensor([ids[i] for i in missing], device=images.device))
            for j, i in enumerate(missing):
                out[i] = fresh[j].cpu().numpy().astype(np.float32)
                self._store(paths[i], out[i])
            self.computed += len(missing)
        return np.stack(out)
