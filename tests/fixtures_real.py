"""Tiny real-format datasets and compact random-weight checkpoints for debug runs of the experiments.

The raw files are written by the writers the preparation tests already use (``test_prep_ilsvrc``,
``test_prep_voc``, ``test_prep_coco``), in the real on-disk layouts, and prepared by the real
preparers (``data_prep.ilsvrc``, ``data_prep.voc2007``, ``data_prep.coco2014``). The writers draw
flat single-colour images; here they are re-encoded with noise of the same size, so the maps of
random-weight models are not flat and GrabCut has colours to separate.

Checkpoints: a fine-tuned VGG-16 state dict is ~530 MB in float32. ``write_random_checkpoint``
writes a state dict of the exact keys, shapes and dtypes of the architecture whose large weights
are strided views (``as_strided``) of a short random vector (He-scaled); ``torch.save`` stores
only that vector, so the file is under 1 MB, loads with ``weights_only=True`` and is copied into
the model by the normal ``load_state_dict`` path, every weight then a real (materialized) tensor.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from data_prep import coco2014, ilsvrc, voc2007
from test_prep_coco import write_coco
from test_prep_ilsvrc import GOLDFISH, TENCH, TISSUE, write_folders
from test_prep_voc import write_voc

# image id -> (width, height, wnid, boxes as written in the XML): ImageNet classes 1, 999 and 0
ILSVRC_IMAGES = {
    "ILSVRC2012_val_00000001": (80, 60, GOLDFISH, [(10, 8, 50, 40), (52, 30, 79, 59)]),
    "ILSVRC2012_val_00000002": (60, 80, TISSUE, [(0, 0, 59, 79)]),
    "ILSVRC2012_val_00000003": (64, 64, TENCH, [(20, 24, 40, 50)]),
}
# VOC2007 splits: id -> (width, height, [(name, difficult, x0, y0, x1, y1)]) in 1-based VOC pixels
VOC_IMAGES = {
    "test": {
        "000001": (80, 60, [("dog", 0, 5, 5, 40, 50), ("person", 1, 50, 10, 78, 58)]),  # person difficult only
        "000002": (60, 80, [("cat", 0, 1, 1, 30, 30), ("car", 0, 20, 40, 60, 80)]),
        "000013": (64, 64, [("bird", 0, 10, 10, 20, 20), ("bird", 1, 40, 40, 60, 60)]),  # calibrates θ (hash)
    },
    "val": {
        "000005": (72, 56, [("horse", 0, 8, 8, 60, 50)]),
        "000007": (56, 72, [("sheep", 1, 2, 2, 30, 30), ("cow", 0, 20, 30, 50, 70)]),
    },
}


def coco_instances() -> dict:
    """Three annotated val2014 images: polygons, a crowd RLE (a class present only as a crowd)."""
    crowd = {"size": [60, 60], "counts": [0, 60 * 10, 60 * 50]}  # columns 0..9 of a 60x60 image
    return {
        "images": [{"id": 11, "file_name": "COCO_val2014_000000000011.jpg", "height": 60, "width": 80},
                   {"id": 25, "file_name": "COCO_val2014_000000000025.jpg", "height": 60, "width": 60},
                   {"id": 30, "file_name": "COCO_val2014_000000000030.jpg", "height": 70, "width": 50}],
        "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}, {"id": 18, "name": "dog"}],
        "annotations": [
            {"id": 1, "image_id": 11, "category_id": 18, "iscrowd": 0, "bbox": [10, 10, 30, 20],
             "segmentation": [[10, 10, 40, 10, 40, 30, 10, 30]]},
            {"id": 2, "image_id": 11, "category_id": 1, "iscrowd": 0, "bbox": [50, 5, 20, 40],
             "segmentation": [[50, 5, 70, 5, 70, 45, 50, 45]]},
            {"id": 3, "image_id": 25, "category_id": 3, "iscrowd": 1, "bbox": [0, 0, 10, 60], "segmentation": crowd},
            {"id": 4, "image_id": 30, "category_id": 1, "iscrowd": 0, "bbox": [5, 5, 30, 50],
             "segmentation": [[5, 5, 35, 5, 35, 55, 5, 55]]},
        ],
    }


def noisy_jpegs(paths, seed: int = 0) -> None:
    """Re-encode each image file with uniform noise of the same size (same format, same name)."""
    rng = np.random.default_rng(seed)
    for path in sorted(paths):
        with Image.open(path) as image:
            w, h = image.size
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path, format="JPEG", quality=90)


def prepare_ilsvrc(raw: Path, out: Path) -> Path:
    """ILSVRC 2012 val as extracted from the devkit (``val/*.JPEG``, ``bbox/val/*.xml``) -> manifest."""
    write_folders(raw, ILSVRC_IMAGES)
    noisy_jpegs((raw / "val").glob("*.JPEG"))
    return ilsvrc.prepare(raw, out, split="val")


def prepare_voc(raw: Path, out: Path, split: str) -> Path:
    """A VOCdevkit/VOC2007 with one split's image set -> that split's manifest."""
    voc = write_voc(raw, VOC_IMAGES[split], split=split)
    noisy_jpegs(voc / "JPEGImages" / f"{i}.jpg" for i in VOC_IMAGES[split])
    return voc2007.prepare(raw, out, split=split)


def prepare_coco(raw: Path, out: Path) -> Path:
    """COCO 2014 (``annotations/instances_val2014.json``, ``val2014/*.jpg``) -> manifest."""
    write_coco(raw, coco_instances(), split="val2014")
    noisy_jpegs((raw / "val2014").glob("*.jpg"))
    return coco2014.prepare(raw, out, split="val2014")


def prepare_real_photos(raw: Path, out: Path) -> Path:
    """The five photos that ship with the suite, through their own preparer (ILSVRC layout and manifest)."""
    from data_prep.real_photos import prepare

    return prepare(raw)


PREPARERS = {"ilsvrc2012_val": prepare_ilsvrc, "real_photos": prepare_real_photos, "voc2007_test": lambda r, o: prepare_voc(r, o, "test"),
             "voc2007_val": lambda r, o: prepare_voc(r, o, "val"), "coco2014_val": prepare_coco}


def _compact_random(shape: tuple[int, ...], std: float, generator: torch.Generator) -> torch.Tensor:
    """A ``shape`` tensor whose element ``[i0, .., ik]`` is ``v[sum(i_j * p_j)]`` for a short random
    vector ``v`` and small distinct strides ``p`` (1 for the last dim, then 3, 7, 13, ...)."""
    primes = (1, 3, 7, 13, 29, 31)
    strides = tuple(reversed(primes[:len(shape)]))
    span = sum((n - 1) * s for n, s in zip(shape, strides)) + 1
    return (torch.randn(span, generator=generator) * std).as_strided(shape, strides)


def random_state(model: torch.nn.Module, seed: int = 0) -> dict:
    """A random state dict with ``model``'s keys, shapes and dtypes (``model`` may live on ``meta``):
    He-scaled weights, zero biases and running means, unit norm weights and running variances."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, ref in model.state_dict().items():
        shape = tuple(ref.shape)
        if not ref.dtype.is_floating_point:
            state[key] = torch.zeros(shape, dtype=ref.dtype)
        elif key.endswith("running_var") or (len(shape) == 1 and key.endswith("weight")):
            state[key] = torch.ones(shape, dtype=ref.dtype)
        elif len(shape) <= 1:
            state[key] = torch.zeros(shape, dtype=ref.dtype)
        else:
            state[key] = _compact_random(shape, math.sqrt(2.0 / math.prod(shape[1:])), generator).to(ref.dtype)
    return state


def architecture(model_cfg: dict) -> torch.nn.Module:
    """The untrained architecture of a ``conf/model`` entry, built on the meta device (no memory, no init)."""
    from benchmark.models import build_model
    from benchmark.models.vgg_gap import VGG16GAP

    arch = model_cfg.get("arch") or model_cfg["name"]
    with torch.device("meta"):
        if arch == "vgg16_gap":  # its builder insists on a checkpoint: build the module itself
            return VGG16GAP(int(model_cfg.get("num_classes") or 1000))
        options = {k: model_cfg.get(k) for k in ("arch", "num_classes", "multilabel", "cam_head")}
        model, _ = build_model(model_cfg["name"], weights=None, checkpoint=None, **options)
        return model


def write_random_checkpoint(model_cfg: dict, path: Path, seed: int = 0) -> Path:
    """A compact random-weight checkpoint (state dict) that fits the model entry ``model_cfg``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(random_state(architecture(model_cfg), seed), path)
    return path
