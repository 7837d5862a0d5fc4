"""Real-photo demo: EfficientNet-Lite0 explained on five hand-annotated photos that ship offline.

Usage::

    python -m benchmark.report.real_photos [--out results/figures] [--data DIR]

The photos and boxes come from ``data_prep.real_photos`` (prepared on first use, ILSVRC manifest,
the suite's reader). Per photo, for the annotated class (Grad-CAM paper, Fig. 1 and Sec. 4.1-4.3):
top-5 predictions (softmax of the logits), Grad-CAM, guided backprop and guided Grad-CAM at the
original resolution (``paper`` preprocessing: the whole photo resized to 224x224), the Grad-CAM
box (15 % of the maximum, largest 8-connected segment) with its IoU against the annotated box,
and the pointing-game test of the Grad-CAM maximum (first argmax, hit iff an annotated pixel lies
at Euclidean distance < 15 px), next to the same test for the ``center`` baseline (the image
center as the point): photos of centered objects are hits for it too, so only the photos it
misses say something about the method. Writes ``real_photos.png`` and ``real_photos.csv``.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from benchmark.data.readers import ManifestDataset  # noqa: E402
from benchmark.data.transforms import Preprocess  # noqa: E402
from benchmark.io import atomic_write_bytes  # noqa: E402
from benchmark.methods import build_method  # noqa: E402
from benchmark.metrics.boxes import box_from_map, max_iou  # noqa: E402
from benchmark.metrics.pointing import Pointing  # noqa: E402
from benchmark.models import build_model  # noqa: E402

MODEL = "efficientnet_lite0"
METHODS = ("grad_cam", "guided_backprop", "guided_grad_cam")
BASELINE = "center"
THRESHOLD = 0.15
TOLERANCE_PX = 15


def explain(model, info, samples, prep: Preprocess) -> tuple[pd.DataFrame, dict]:
    """Maps of the annotated class (``{method: [H, W] per photo}``) and one result row per photo."""
    images = torch.stack([prep(s.image) for s in samples])
    target = torch.tensor([s.labels[0] for s in samples], dtype=torch.long)
    maps, logits = {}, None
    for name in (*METHODS, BASELINE):
        ex = build_method(name, model, info).explain(images, target)
        maps[name] = [prep.to_original(ex.maps[i], s.orig_size_hw)[0].numpy() for i, s in enumerate(samples)]
        logits = ex.logits
    probs = logits.softmax(dim=1)
    pointing = Pointing(tolerance_px=TOLERANCE_PX, region="boxes")
    rows = []
    for i, sample in enumerate(samples):
        c = int(target[i])
        cam = maps["grad_cam"][i]
        box = box_from_map(cam, THRESHOLD)
        point = pointing.score_one(sample, c, cam)
        center = pointing.score_one(sample, c, maps[BASELINE][i])
        top = probs[i].topk(5)
        gt_box = sample.boxes_of(c)[0]
        rows.append({
            "image_id": sample.image_id, "class_id": c, "class_name": info.class_names[c],
            "gt_rank": int((probs[i] > probs[i, c]).sum()) + 1, "gt_prob": float(probs[i, c]),
            "top5": "; ".join(f"{info.class_names[j]} {p:.3f}" for p, j in zip(top.values.tolist(),
                                                                               top.indices.tolist())),
            "gt_x0": int(gt_box[0]), "gt_y0": int(gt_box[1]), "gt_x1": int(gt_box[2]), "gt_y1": int(gt_box[3]),
            "gt_box_area_fraction": float(np.prod(gt_box[2:] - gt_box[:2] + 1) / np.prod(sample.orig_size_hw)),
            **{f"box_{k}": (-1 if box is None else int(v)) for k, v in zip(("x0", "y0", "x1", "y1"), box or (0,) * 4)},
            "iou": float(max_iou(box, sample.boxes_of(c))),
            "point_x": int(point["point_x"]), "point_y": int(point["point_y"]),
            "distance_px": float(point["distance_px"]), "hit_15px": bool(point["hit"]),
            "center_distance_px": float(center["distance_px"]), "center_hit_15px": bool(center["hit"]),
        })
    return pd.DataFrame(rows), maps


def _scaled(saliency: np.ndarray) -> np.ndarray:
    """[0, 1] scaling for display; pixel-space maps are clipped at their 99.5th percentile."""
    hi = float(np.percentile(saliency, 99.5)) or float(saliency.max()) or 1.0
    return np.clip(saliency / hi, 0, 1)


def _rect(ax, x0, y0, x1, y1, **style) -> None:
    ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1, fill=False, linewidth=2, **style))


def draw(samples, table: pd.DataFrame, maps: dict) -> bytes:
    """PNG bytes: one row per photo: top-5 | image + boxes + point | Grad-CAM | guided BP | guided Grad-CAM."""
    fig, axes = plt.subplots(len(samples), 5, figsize=(17, 3.3 * len(samples)), squeeze=False)
    for i, (sample, row) in enumerate(zip(samples, table.itertuples())):
        ax = axes[i]
        ax[0].axis("off")
        ax[0].text(0, 1, f"{row.image_id}\nannotated: {row.class_name} (rank {row.gt_rank})\n\ntop-5:\n"
                   + "\n".join(row.top5.split("; ")), va="top", ha="left", fontsize=9, transform=ax[0].transAxes)
        ax[1].imshow(sample.image)
        _rect(ax[1], row.gt_x0, row.gt_y0, row.gt_x1, row.gt_y1, edgecolor="lime")
        if row.box_x0 >= 0:
            _rect(ax[1], row.box_x0, row.box_y0, row.box_x1, row.box_y1, edgecolor="red", linestyle="--")
        ax[1].plot([row.point_x], [row.point_y], marker="x", color="yellow", markersize=12, mew=3)
        ax[1].set_title(f"IoU {row.iou:.2f}; max {row.distance_px:.0f} px from box: "
                        f"{'hit' if row.hit_15px else 'miss'}", fontsize=9)
        ax[2].imshow(sample.image)
        ax[2].imshow(_scaled(maps["grad_cam"][i]), cmap="jet", alpha=0.5)
        ax[3].imshow(_scaled(maps["guided_backprop"][i]), cmap="gray")
        ax[4].imshow(_scaled(maps["guided_grad_cam"][i]), cmap="gray")
        for a, title in zip(ax[2:], ("Grad-CAM", "guided backprop", "guided Grad-CAM")):
            a.set_title(f"{title} ({row.class_name})", fontsize=9)
        for a in ax[1:]:
            a.set_xticks([]), a.set_yticks([])
    fig.suptitle("EfficientNet-Lite0 on real photos: annotated box (green), Grad-CAM box at 15 % (red), "
                 "Grad-CAM maximum (yellow x)", fontsize=11)
    fig.tight_layout()
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=80)
    finally:
        plt.close(fig)
    return buffer.getvalue()


def run(out: Path, data: Path | None = None) -> pd.DataFrame:
    """Prepare the photos if needed, explain them, write the figure and the CSV; returns the table."""
    from data_prep import real_photos

    manifest = Path(data or real_photos.default_out()) / "manifest"
    if not (manifest / "manifest.parquet").is_file():
        manifest = real_photos.prepare(manifest.parent)
    samples = list(ManifestDataset(manifest, split="val"))
    model, info = build_model(MODEL, weights="imagenet")
    prep = Preprocess(info.input_size, tuple(info.mean), tuple(info.std), "paper")
    table, maps = explain(model, info, samples, prep)
    out = Path(out)
    atomic_write_bytes(out / "real_photos.csv", table.to_csv(index=False, float_format="%.4f").encode())
    atomic_write_bytes(out / "real_photos.png", draw(samples, table, maps))
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.report.real_photos", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/figures"), help="folder for the PNG and CSV")
    parser.add_argument("--data", type=Path, default=None, help="real-photo folder (default <cache>/data/real_photos)")
    args = parser.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    start = time.perf_counter()
    table = run(args.out, args.data)
    cols = ["image_id", "class_name", "gt_rank", "iou", "distance_px", "hit_15px", "center_hit_15px"]
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(f"pointing hits {int(table['hit_15px'].sum())}/{len(table)} (center baseline "
          f"{int(table['center_hit_15px'].sum())}/{len(table)}), mean IoU {table['iou'].mean():.2f}; "
          f"wrote {args.out / 'real_photos.png'} and .csv in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
