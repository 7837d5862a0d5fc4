"""Qualitative Fig. 1 panel: grid layout, degenerate maps, and the maps write_fig1 draws."""

import matplotlib.image as mpimg
import numpy as np
import pytest
import torch

from benchmark.data.transforms import Preprocess
from benchmark.methods import build_method
from benchmark.metrics._fig1 import fig1_panel, write_fig1
from benchmark.metrics.base import build_metric
from benchmark.models import build_model
from benchmark.types import Sample


def test_panel_is_a_grid_of_images_by_rows(tmp_path):
    images = [np.zeros((30, 40, 3), np.uint8), np.full((20, 20, 3), 255, np.uint8)]
    rows = {"guided_backprop": [np.random.rand(30, 40), np.random.rand(8, 8)],
            "grad_cam": [np.zeros((7, 7)), np.ones((7, 7))],  # constant maps are drawn, not an error
            "occlusion": [np.linspace(-1, 2, 64).reshape(8, 8), np.full((8, 8), np.nan)]}
    path = fig1_panel(images, rows, tmp_path / "fig.png", titles=["a", "b"])
    pixels = mpimg.imread(path)
    height, width = pixels.shape[:2]
    assert (height, width) == (round(2.2 * 4 * 100), round(2.2 * 2 * 100))  # 4 rows x 2 columns at 100 dpi
    assert pixels[..., :3].std() > 0.05  # something was drawn
    with pytest.raises(ValueError, match="'grad_cam' has 1 maps for 2 images"):
        fig1_panel(images, {"grad_cam": [np.zeros((7, 7))]}, tmp_path / "bad.png")


def test_write_fig1_draws_the_paper_rows_from_the_occlusion_cache(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model, info = build_model("toy_gap", weights="random")
    prep = Preprocess(64, info.mean, info.std)
    rng = np.random.default_rng(0)
    samples = [Sample(f"s{i}", rng.integers(0, 256, (48, 56, 3), dtype=np.uint8), (i, 7)) for i in range(3)]
    drawn = {}
    monkeypatch.setattr("benchmark.metrics._fig1.fig1_panel",
                        lambda images, rows, path, titles: drawn.update(rows=rows, titles=titles) or path)
    occlusion = {"patch": 11, "stride": 8}
    metric = build_metric("occlusion_correlation", **occlusion, cache_dir=str(tmp_path / "occ"), figure_images=2)
    images = torch.stack([prep(s.image) for s in samples])
    metric.score_batch(samples, images, build_method("gradient", model, info), prep)
    path = metric.write_artifacts(None, tmp_path / "run")
    assert path == tmp_path / "run" / "fig1.png"
    assert list(drawn["rows"]) == ["guided_backprop", "grad_cam", "guided_grad_cam", "gradient", "occlusion"]
    assert all(len(maps) == 2 and maps[0].shape == (48, 56) for maps in drawn["rows"].values())
    cache = metric.cache_for(model, info, prep, "cpu")
    assert (cache.computed, cache.loaded) == (3, 2)  # the figure read the metric's maps
    with torch.no_grad():
        cls = int(model(images[:1])[0, [0, 7]].argmax()) * 7  # labels (0, 7): the one with the higher logit
    assert drawn["titles"][0] == f"s0\n{cls}"
    expected = build_method("occlusion", model, info, **occlusion)(images[:1], torch.tensor([cls]))
    back = prep.to_original(expected, (48, 56))[0].numpy()
    assert np.allclose(drawn["rows"]["occlusion"][0], back, atol=1e-5)


def test_write_fig1_writes_a_png_without_cache(tmp_path):
    model, info = build_model("toy_vgg", weights="random")
    prep = Preprocess(64, info.mean, info.std)
    samples = [Sample("x", np.zeros((64, 64, 3), np.uint8), (1,))]
    path = write_fig1(model, info, samples, prep, tmp_path, n=4, occlusion={"patch": 11, "stride": 16})
    assert path.is_file() and mpimg.imread(path).shape[:2] == (round(2.2 * 5 * 100), round(2.2 * 100))
