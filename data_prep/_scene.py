"""Compose synthetic scenes: place objects on a cluttered background with bounded occlusion.

Objects are painted in order; each new object lies on top. A position is accepted only if the new
object leaves every earlier object with at least ``1 - max_occlusion`` of its pixels visible
(checked per pixel with an owner map). Boxes are the full extent of each object's shape, 0-based
inclusive; objects always lie wholly inside the image (never truncated).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from data_prep._shapes import add_sensor_noise, background, render_object

JPEG_QUALITY = 92
PLACEMENT_TRIES = 40


@dataclass(frozen=True)
class ObjectSpec:
    """An object to place: class, nominal side in pixels, role and allowed occlusion of earlier ones."""

    class_id: int
    side: int
    role: str = "gt"  # "gt" | "distractor" | "object"
    max_occlusion: float = 0.35
    overlap: bool = False  # try positions on top of an earlier object (to create occlusion)


@dataclass(frozen=True)
class PlacedObject:
    """A painted object: its class, role, 0-based inclusive box and visible fraction of its pixels."""

    class_id: int
    role: str
    box_xyxy: tuple[int, int, int, int]
    visible: float


def compose(rng: np.random.Generator, width: int, height: int,
            specs: list[ObjectSpec]) -> tuple[Image.Image, list[PlacedObject]]:
    """Paint ``specs`` in order on a fresh background; objects that find no place are dropped."""
    img = background(rng, width, height)
    owner = np.full((height, width), -1, np.int16)
    areas: list[int] = []
    visible: list[int] = []
    kept: list[tuple[ObjectSpec, tuple[int, int, int, int]]] = []
    for spec in specs:
        mask, mask_img, fill = render_object(spec.class_id, min(spec.side, width, height), rng)
        mh, mw = mask.shape
        for _ in range(PLACEMENT_TRIES):
            x, y = int(rng.integers(0, width - mw + 1)), int(rng.integers(0, height - mh + 1))
            if spec.overlap and kept:
                x0, y0, x1, y1 = kept[int(rng.integers(len(kept)))][1]
                x = int(np.clip((x0 + x1 - mw) / 2 + rng.normal(0, mw / 4), 0, width - mw))
                y = int(np.clip((y0 + y1 - mh) / 2 + rng.normal(0, mh / 4), 0, height - mh))
            under = owner[y:y + mh, x:x + mw][mask]
            hidden = np.bincount(under[under >= 0], minlength=len(areas)) if len(areas) else np.zeros(0, int)
            after = np.asarray(visible) - hidden
            if np.all(after >= (1.0 - spec.max_occlusion) * np.asarray(areas)):
                break
        else:
            continue
        visible = list(after) + [int(mask.sum())]
        areas.append(int(mask.sum()))
        owner[y:y + mh, x:x + mw][mask] = len(areas) - 1
        if isinstance(fill, tuple):
            img.paste(fill, (x, y, x + mw, y + mh), mask_img)
        else:
            img.paste(fill, (x, y), mask_img)
        kept.append((spec, (x, y, x + mw - 1, y + mh - 1)))
    img = add_sensor_noise(img, rng)
    placed = [PlacedObject(spec.class_id, spec.role, box, visible[k] / areas[k]) for k, (spec, box) in enumerate(kept)]
    return img, placed


def jpeg_bytes(img: Image.Image) -> bytes:
    """Encode deterministically: fixed quality, no EXIF, no optimisation passes."""
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def image_size(rng: np.random.Generator, low: int, high: int) -> tuple[int, int]:
    """Width and height, each uniform in ``[low, high]`` (so aspect ratios vary)."""
    w, h = rng.integers(low, high + 1, 2)
    return int(w), int(h)


# ILSVRC's localization task is single-object localization: most images show one instance of the
# labelled class, some show two or three smaller ones.
INSTANCE_COUNT_PROBS = (0.85, 0.10, 0.05)
INSTANCE_SIDE = {1: (0.45, 0.75), 2: (0.3, 0.5), 3: (0.25, 0.4)}  # fraction of the shorter image side
DISTRACTORS = (1, 2)  # objects of other classes per scene (inclusive range, uniform)


def ilsvrc_scene(rng: np.random.Generator, num_classes: int, distractors: tuple[int, int] = DISTRACTORS):
    """One single-label scene: 1-3 GT instances (one: side 45-75 % of the shorter image side; two:
    30-50 %; three: 25-40 %; counts drawn with probabilities 0.85/0.10/0.05) sharing the scene with
    ``distractors`` (1 to 2, uniform) objects of other classes at about 60 % of the GT size, so that
    localizing the GT class takes a class-discriminative map.

    Returns ``(image, gt_class, placed_objects)``; at least one GT instance is always placed
    (the first object goes on an empty canvas); a distractor that finds no place is dropped.
    """
    width, height = image_size(rng, 112, 256)
    short = min(width, height)
    gt = int(rng.integers(num_classes))
    count = int(rng.choice(3, p=INSTANCE_COUNT_PROBS)) + 1
    low, high = INSTANCE_SIDE[count]
    sides = rng.uniform(low, high, count) * short
    specs = [ObjectSpec(gt, int(round(s)), "gt", 0.3) for s in sides]
    for _ in range(int(rng.integers(distractors[0], distractors[1] + 1))):
        other = int((gt + rng.integers(1, num_classes)) % num_classes)
        side = int(round(0.6 * float(np.mean(sides)) * rng.uniform(0.9, 1.1)))
        specs.insert(int(rng.integers(1, len(specs) + 1)), ObjectSpec(other, side, "distractor", 0.3))
    img, placed = compose(rng, width, height, specs)
    return img, gt, placed


MULTI_CLASSES = (2, 4)  # classes per scene (inclusive range, uniform)
MULTI_OBJECTS = (3, 6)  # objects per scene (inclusive range, uniform; at least one per class)
MULTI_SIDE = (0.12, 0.3)  # object side as a fraction of the shorter image side
MULTI_OVERLAP = 0.5  # chance that an object (after the first) is placed over an earlier one


def multi_scene(rng: np.random.Generator, num_classes: int):
    """One multi-object scene as demanding for the pointing game as VOC: 3-6 small objects (side
    12-30 % of the shorter image side) of 2-4 classes, every class at least once.

    Half of the objects after the first are placed over an earlier one (often of another class, so
    classes touch and overlap) and may hide up to 70 % of it, so some objects end up more than half
    hidden (VOC ``difficult``). Retries until every chosen class is placed.
    """
    while True:
        width, height = image_size(rng, 160, 320)
        short = min(width, height)
        n_classes = int(rng.integers(MULTI_CLASSES[0], MULTI_CLASSES[1] + 1))
        chosen = [int(c) for c in rng.choice(num_classes, n_classes, replace=False)]
        n_objects = max(n_classes, int(rng.integers(MULTI_OBJECTS[0], MULTI_OBJECTS[1] + 1)))
        classes = chosen + [chosen[int(k)] for k in rng.integers(n_classes, size=n_objects - n_classes)]
        order = [classes[int(k)] for k in rng.permutation(len(classes))]
        heavy = rng.random(len(order)) < MULTI_OVERLAP
        heavy[0] = False
        specs = [ObjectSpec(c, int(round(rng.uniform(*MULTI_SIDE) * short)), "object", 0.7 if h else 0.3, bool(h))
                 for c, h in zip(order, heavy)]
        img, placed = compose(rng, width, height, specs)
        if {p.class_id for p in placed} == set(chosen):
            return img, placed
