"""Qualitative panels (matplotlib, Agg backend), after Fig. 1 of Selvaraju et al. (ICCV 2017).

``fig1_panel`` draws one column per image: the image, then one row per named map. Coarse maps
(Grad-CAM, CAM, occlusion, excitation backprop) are drawn over the image; pixel-space maps (guided
backprop, guided Grad-CAM, gradient, deconvnet) alone in grey, as in the paper. A map with both
signs (occlusion, ablations without ReLU) uses a diverging colormap centered at 0; every map is
scaled to its own range. ``write_fig1`` computes the paper's rows for a model and writes
``fig1.png`` into a run folder: the occlusion correlation metric's own artifact (its
``write_artifacts``), so it lives with the metric and uses only methods and metrics.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmark.io import atomic_write_bytes  # noqa: E402

OVERLAY = ("grad_cam", "cam", "occlusion", "excitation_backprop", "contrastive_excitation_backprop")
FIG1_METHODS = ("guided_backprop", "grad_cam", "guided_grad_cam")


def _draw_map(ax, image: np.ndarray, saliency: np.ndarray, name: str) -> None:
    h, w = image.shape[:2]
    finite = saliency[np.isfinite(saliency)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if lo < 0 < hi:  # both signs: diverging, 0 in the middle
        bound = max(-lo, hi)
        cmap, lo, hi = "RdBu_r", -bound, bound
    else:
        cmap = "jet" if name.startswith(OVERLAY) else "gray"
    hi = hi if hi > lo else lo + 1.0  # a constant map is drawn flat, not as an error
    if name.startswith(OVERLAY):
        ax.imshow(image)
        ax.imshow(saliency, cmap=cmap, vmin=lo, vmax=hi, alpha=0.5, extent=(0, w, h, 0))
    else:
        ax.imshow(saliency, cmap=cmap, vmin=lo, vmax=hi, extent=(0, w, h, 0))


def fig1_panel(images, rows: dict, path: str | Path, titles: list[str] | None = None) -> Path:
    """Save a grid: columns = images (uint8 ``[H, W, 3]``), rows = the image then each ``rows[name]``.

    ``rows[name]`` holds one map per image (``[N, h, w]`` array or list; any resolution, drawn
    stretched over the image). ``titles`` (one per image) head the columns. Returns ``path``.
    """
    images = [np.asarray(im) for im in images]
    if not images:
        raise ValueError("fig1_panel: no images")
    for name, maps in rows.items():
        if len(maps) != len(images):
            raise ValueError(f"fig1_panel: row {name!r} has {len(maps)} maps for {len(images)} images")
    n_rows, n_cols = 1 + len(rows), len(images)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.2 * n_cols, 2.2 * n_rows), squeeze=False)
    try:
        for j, image in enumerate(images):
            axes[0, j].imshow(image)
            if titles:
                axes[0, j].set_title(titles[j], fontsize=8)
            for i, (name, maps) in enumerate(rows.items(), start=1):
                _draw_map(axes[i, j], image, np.asarray(maps[j], dtype=np.float64), name)
        for i, name in enumerate(["image", *rows]):
            axes[i, 0].set_ylabel(name, fontsize=8)
        for ax in axes.ravel():
            ax.set_xticks([])
            ax.set_yticks([])
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
    finally:
        plt.close(fig)
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)


def write_fig1(model, info, samples, prep, run_dir, n: int = 4, *, occlusion: dict | None = None,
               cache=None, extra: dict | None = None) -> Path:
    """Compute guided backprop, Grad-CAM, guided Grad-CAM, ``extra`` methods and the occlusion map
    for the first ``n`` samples (class: GT label with the highest logit) and save ``run_dir/fig1.png``.

    ``occlusion``: options of the ``occlusion`` method (its defaults if None). ``cache``: an
    ``OcclusionCache`` (used as is: its engine's settings win) or a cache folder, so the maps come
    from (and go to) the cache the metric uses. Methods that do not apply to the model are left out.
    """
    from benchmark.methods import NotApplicable, build_method
    from benchmark.methods._occlusion_cache import OcclusionCache
    from benchmark.methods.base import for_samples
    from benchmark.metrics._targets import target_classes

    samples = list(samples)[:n]
    device = next(model.parameters()).device
    images = torch.stack([prep(s.image) for s in samples]).to(device)
    with torch.inference_mode():
        classes = target_classes(samples, model(images))
    methods = {}
    for name in FIG1_METHODS:
        try:
            methods[name] = build_method(name, model, info)
        except (NotApplicable, ValueError):
            continue
    methods.update(extra or {})
    rows = {}
    for name, m in methods.items():
        with for_samples(m, samples):  # methods that read maps by image id (precomputed)
            rows[name] = m(images, classes.to(device)).detach()
    if cache is not None and not isinstance(cache, OcclusionCache):
        cache = OcclusionCache(cache, build_method("occlusion", model, info, **(occlusion or {})), prep, device)
    if cache is not None:
        occ = torch.from_numpy(cache.maps(samples, images, classes))
    else:
        occ = build_method("occlusion", model, info, **(occlusion or {}))(images, classes.to(device))
    rows["occlusion"] = occ
    originals = {name: [prep.to_original(maps[i:i + 1].float().cpu(), s.orig_size_hw)[0].numpy()
                        for i, s in enumerate(samples)] for name, maps in rows.items()}
    names = info.class_names
    titles = [f"{s.image_id}\n{names[c] if c < len(names) else c}" for s, c in zip(samples, classes.tolist())]
    return fig1_panel([s.image for s in samples], originals, Path(run_dir) / "fig1.png", titles)
