"""The synthetic object classes (shape x colour/texture) and the cluttered backgrounds.

Every class differs from every other one in BOTH shape and colour, objects are filled and
saturated, and the background only uses muted (saturation <= 0.25), mid-value colours, so no
piece of clutter can pass for an object. Randomness comes only from the ``rng`` passed in.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw


@dataclass(frozen=True)
class ShapeClass:
    """One object class: its name, shape and main colour (RGB)."""

    name: str
    shape: str
    rgb: tuple[int, int, int]


CLASSES: tuple[ShapeClass, ...] = (
    ShapeClass("red_disc", "disc", (220, 30, 30)),
    ShapeClass("green_square", "square", (30, 170, 45)),
    ShapeClass("blue_triangle", "triangle", (35, 60, 225)),
    ShapeClass("yellow_star", "star", (245, 220, 25)),
    ShapeClass("magenta_cross", "cross", (235, 30, 205)),
    ShapeClass("cyan_ring", "ring", (25, 215, 225)),
    ShapeClass("orange_diamond", "diamond", (255, 140, 0)),
    ShapeClass("white_striped_hexagon", "hexagon", (248, 248, 248)),
    ShapeClass("purple_crescent", "crescent", (115, 35, 170)),
    ShapeClass("brown_checkered_ellipse", "ellipse", (135, 75, 30)),
)
STRIPE_RGB = (55, 55, 70)
CHECK_RGB = (210, 170, 110)


def _rotated(points: np.ndarray, angle: float, side: int) -> list[tuple[float, float]]:
    """Rotate points given around (0, 0) by ``angle`` and move them to the canvas centre."""
    c, s = math.cos(angle), math.sin(angle)
    rot = points @ np.array([[c, s], [-s, c]])
    return [(float(x), float(y)) for x, y in rot + (side - 1) / 2.0]


def _star(r_out: float, r_in: float) -> np.ndarray:
    ang = -math.pi / 2 + np.arange(10) * math.pi / 5
    rad = np.where(np.arange(10) % 2 == 0, r_out, r_in)
    return np.stack([rad * np.cos(ang), rad * np.sin(ang)], axis=1)


def _regular(n: int, r: float, phase: float) -> np.ndarray:
    ang = phase + np.arange(n) * 2 * math.pi / n
    return np.stack([r * np.cos(ang), r * np.sin(ang)], axis=1)


def _mask(shape: str, side: int, rng: np.random.Generator) -> Image.Image:
    """A filled binary mask (mode ``L``) of one shape on a ``side`` x ``side`` canvas."""
    img = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(img)
    r, tilt = side / 2.0, rng.uniform(-0.35, 0.35)
    last = side - 1
    if shape == "disc":
        draw.ellipse((0, 0, last, last), fill=255)
    elif shape == "ring":
        draw.ellipse((0, 0, last, last), fill=255)
        hole = side * 0.26
        draw.ellipse((r - hole, r - hole, last - r + hole, last - r + hole), fill=0)
    elif shape == "crescent":
        draw.ellipse((0, 0, last, last), fill=255)
        a, off = rng.uniform(0, 2 * math.pi), side * 0.38
        dx, dy = off * math.cos(a), off * math.sin(a)
        draw.ellipse((dx, dy, last + dx, last + dy), fill=0)
    elif shape == "ellipse":
        thin = side * rng.uniform(0.17, 0.22)
        box = (0, thin, last, last - thin) if rng.random() < 0.5 else (thin, 0, last - thin, last)
        draw.ellipse(box, fill=255)
    else:
        points = {
            "square": lambda: _regular(4, r * 0.74 * math.sqrt(2) * 0.95, math.pi / 4),
            "triangle": lambda: (_regular(3, r, -math.pi / 2) + [0, r * 0.25]) * 0.87,
            "star": lambda: _star(r, r * 0.48),
            "cross": lambda: np.array([(-1, -3), (1, -3), (1, -1), (3, -1), (3, 1), (1, 1), (1, 3),
                                       (-1, 3), (-1, 1), (-3, 1), (-3, -1), (-1, -1)]) * (r / 3.3),
            "diamond": lambda: np.array([(0, -1.0), (0.62, 0), (0, 1.0), (-0.62, 0)]) * r * 0.97,
            "hexagon": lambda: _regular(6, r * 0.98, 0.0),
        }[shape]()
        draw.polygon(_rotated(np.asarray(points, float), tilt, side), fill=255)
    return img


def _texture(cls: ShapeClass, size_wh: tuple[int, int], rgb: np.ndarray, side: int) -> Image.Image:
    """Stripes (hexagon) or a checkerboard (ellipse) over the class colour."""
    w, h = size_wh
    yy, xx = np.mgrid[0:h, 0:w]
    if cls.shape == "hexagon":
        period = max(6, side // 5)
        second = ((xx + yy) % period) < period // 2
        other = np.array(STRIPE_RGB)
    else:
        cell = max(4, side // 6)
        second = ((xx // cell + yy // cell) % 2) == 1
        other = np.array(CHECK_RGB)
    arr = np.where(second[..., None], other, rgb)
    return Image.fromarray(arr.astype(np.uint8), "RGB")


def render_object(class_id: int, side: int, rng: np.random.Generator):
    """Render one object: a tight binary mask ``[h, w]`` (bool) and its fill (RGB tuple or image).

    The mask is cropped to its own bounding box, so pasting it at (x, y) gives the box
    ``(x, y, x + w - 1, y + h - 1)`` in 0-based inclusive pixels.
    """
    cls = CLASSES[class_id]
    mask = _mask(cls.shape, int(side), rng)
    mask = mask.crop(mask.getbbox())
    jitter = rng.integers(-16, 17, 3)
    rgb = np.clip(np.array(cls.rgb) + jitter, 0, 255)
    if cls.shape in ("hexagon", "ellipse"):
        fill = _texture(cls, mask.size, rgb, int(side))
    else:
        fill = Image.new("RGB", mask.size, tuple(int(v) for v in rgb))
    return np.asarray(mask) > 127, mask, shade(fill, rng)


def _muted(rng: np.random.Generator, value: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.0, 0.25), float(np.clip(value, 0.22, 0.78)))
    return int(r * 255), int(g * 255), int(b * 255)


def background(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Cluttered background: muted base colour, coarse and fine colour noise, many irregular blobs
    and lines in muted colours (low saturation, so they never imitate an object class)."""
    value = rng.uniform(0.35, 0.65)
    base = np.array(_muted(rng, value), np.float32)
    coarse = rng.normal(0.0, 14.0, (height // 24 + 2, width // 24 + 2, 3)) + 128.0
    smooth = Image.fromarray(np.clip(coarse, 0, 255).astype(np.uint8), "RGB").resize((width, height), Image.BILINEAR)
    fine = rng.normal(0.0, 16.0, (height // 3 + 1, width // 3 + 1, 1)).repeat(3, 0).repeat(3, 1)[:height, :width]
    arr = base + np.asarray(smooth, np.float32) - 128.0 + fine
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    short = min(width, height)
    for _ in range(int(rng.integers(4, 11))):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        n = int(rng.integers(5, 9))
        ang = np.sort(rng.uniform(0, 2 * math.pi, n))
        rad = short * rng.uniform(0.04, 0.22) * rng.uniform(0.6, 1.0, n)
        pts = [(float(cx + a * math.cos(t)), float(cy + a * math.sin(t))) for a, t in zip(rad, ang)]
        draw.polygon(pts, fill=_muted(rng, value + rng.uniform(-0.3, 0.3)))
    for _ in range(int(rng.integers(3, 10))):
        x0, x1 = rng.uniform(0, width, 2)
        y0, y1 = rng.uniform(0, height, 2)
        draw.line((float(x0), float(y0), float(x1), float(y1)),
                  fill=_muted(rng, value + rng.uniform(-0.3, 0.3)), width=int(rng.integers(1, 4)))
    return img


def shade(fill: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Give an object's fill surface texture: a smooth brightness ramp and fine luminance noise."""
    arr = np.asarray(fill, np.float32)
    h, w = arr.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    angle = rng.uniform(0, 2 * math.pi)
    ramp = ((xx - w / 2) * math.cos(angle) + (yy - h / 2) * math.sin(angle)) / max(h, w) * rng.uniform(20, 50)
    grain = rng.normal(0.0, 14.0, (h // 2 + 1, w // 2 + 1)).repeat(2, 0).repeat(2, 1)[:h, :w]
    out = arr + (ramp + grain)[..., None]
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "RGB")


def add_sensor_noise(img: Image.Image, rng: np.random.Generator, sigma: float = 6.0) -> Image.Image:
    """Add mild per-pixel Gaussian noise to the finished scene (objects included)."""
    arr = np.asarray(img, np.float32) + rng.normal(0.0, sigma, (img.height, img.width, 3)).astype(np.float32)
    return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "RGB")
