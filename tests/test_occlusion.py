"""Occlusion maps (geometry, engine, Captum agreement), the map cache and the Table-2 metric."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from torch import nn

from benchmark.data.transforms import Preprocess
from benchmark.methods import Explanation, SaliencyMethod, build_method
from benchmark.methods.occlusion import center_interpolation, occlusion_coarse, upsample_centers, window_bounds
from benchmark.metrics.base import build_metric
from benchmark.metrics.occlusion import bootstrap_mean_ci, spearman, target_classes
from benchmark.models import build_model
from benchmark.models.base import ModelInfo, freeze
from benchmark.report.specs import occlusion_table
from benchmark.types import Sample


def tiny_model(seed=0, classes=3):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, classes))
    return freeze(net), ModelInfo(name="tiny", num_classes=classes, input_size=12)


def one_at_a_time(model, x, ids, patch, stride, fill):
    """Reference: one occluded copy per forward, the window cut out with slicing."""
    h, w = x.shape[-2:]
    out = torch.zeros(x.shape[0], ids.shape[1], len(range(0, h, stride)), len(range(0, w, stride)))
    with torch.no_grad():
        clean = model(x)
        for b in range(x.shape[0]):
            for iy, cy in enumerate(range(0, h, stride)):
                for ix, cx in enumerate(range(0, w, stride)):
                    (y0, y1), (x0, x1) = window_bounds(cy, patch, h), window_bounds(cx, patch, w)
                    occ = x[b:b + 1].clone()
                    occ[..., y0:y1, x0:x1] = fill
                    out[b, :, iy, ix] = clean[b, ids[b]] - model(occ)[0, ids[b]]
    return out


def test_window_bounds_odd_and_even_patches():
    assert window_bounds(0, 35, 224) == (0, 18) and window_bounds(223, 35, 224) == (206, 224)
    assert window_bounds(5, 3, 10) == (4, 7)  # rows 4..6
    assert window_bounds(5, 4, 10) == (4, 8)  # even: rows 4..7, center = upper-left of the middle two
    assert window_bounds(0, 4, 10) == (0, 3) and window_bounds(1, 1, 10) == (1, 2)


def test_center_interpolation_keeps_values_at_their_pixels():
    coarse = torch.tensor([0.0, 3.0, 9.0]).view(1, 1, 1, 3)  # centers at x = 0, 3, 6 of an 8-wide row
    up = upsample_centers(coarse, (1, 8), 3)[0, 0, 0]
    assert torch.allclose(up, torch.tensor([0.0, 1, 2, 3, 5, 7, 9, 9]))  # past the last center: its value
    with pytest.raises(ValueError, match="does not fit"):
        upsample_centers(coarse, (3, 8), 2)
    assert torch.allclose(center_interpolation(7, 3).sum(1), torch.ones(7, dtype=torch.float64))
    c = torch.randn(2, 1, 4, 5)  # (10 - 1) % 3 == 0 and (13 - 1) % 3 == 0: align_corners=True coincides
    ref = F.interpolate(c, size=(10, 13), mode="bilinear", align_corners=True)
    assert torch.allclose(upsample_centers(c, (10, 13), 3), ref, atol=1e-6)


def test_value_at_center_is_hand_computable_on_a_linear_model():
    lin = nn.Linear(3 * 9 * 9, 2)
    with torch.no_grad():
        lin.weight.zero_()
        lin.weight[0] = 1.0  # logit 0 = sum of all inputs
    model = freeze(nn.Sequential(nn.Flatten(), lin))
    x = torch.ones(1, 3, 9, 9)
    odd, _ = occlusion_coarse(model, x, torch.tensor([[0, 1]]), patch=3, stride=1, fill=0.0)
    assert odd[0, 0, 0, 0] == 12 and odd[0, 0, 4, 4] == 27 and odd[0, 0, 0, 4] == 18  # clipped windows
    assert odd[0, 1].abs().max() == 0  # class 1 ignores the input
    even, _ = occlusion_coarse(model, x, torch.tensor([[0]]), patch=4, stride=1, fill=0.5)
    assert even[0, 0, 0, 0] == 27 * 0.5 and even[0, 0, 8, 8] == 3 * 4 * 0.5  # rows 0..2 / 7..8


def test_value_at_center_equals_direct_forward_of_the_occluded_image():
    model, info = tiny_model()
    x = torch.randn(2, 3, 12, 12)
    maps = build_method("occlusion", model, info, patch=5, stride=1, fill=-1.5)(x, torch.tensor([2, 0]))
    occ = x[1:].clone()
    occ[:, :, 5:10, 0:4] = -1.5  # center (7, 1), half-width 2: rows 5..9, columns -1..3 clipped to 0..3
    direct = model(x[1:])[0, 0] - model(occ)[0, 0]
    assert torch.allclose(maps[1, 7, 1], direct, atol=1e-6)


@pytest.mark.parametrize("patch,stride,max_batch", [(3, 1, 1), (3, 2, 7), (4, 3, 1000), (5, 2, 13), (14, 4, 5)])
def test_batched_engine_equals_one_patch_at_a_time(patch, stride, max_batch):
    model, _ = tiny_model(seed=patch)
    x = torch.randn(2, 3, 10, 11)
    ids = torch.tensor([[0, 2], [1, 1]])
    got, clean = occlusion_coarse(model, x, ids, patch, stride, fill=0.25, max_batch=max_batch)
    ref = one_at_a_time(model, x, ids, patch, stride, 0.25)
    assert got.shape == ref.shape and torch.allclose(got, ref, atol=1e-5)  # float32 batched-vs-single rounding
    assert torch.allclose(clean, model(x), atol=1e-6)


def test_agrees_with_captum_where_definitions_meet():
    """Captum gives each pixel the mean drop over the windows covering it, windows with top-left
    r = 0, s, ..., ceil((H-p)/s)*s (the last ones clipped at the border, no padding before); ours is
    the drop at the window's center pixel. Captum's window at (r, c) is ours centered at
    (r + a, c + a), a = (p-1)//2 (also when clipped), so its map is an average of our values."""
    from captum.attr import Occlusion as CaptumOcclusion

    model, info = tiny_model(seed=3)
    x = torch.randn(1, 3, 12, 12)
    ours = build_method("occlusion", model, info, patch=3, stride=1, fill=0.3)(x, torch.tensor([1]))[0]
    captum = CaptumOcclusion(model)
    tiles = captum.attribute(x, sliding_window_shapes=(3, 3, 3), strides=(3, 3, 3), baselines=0.3, target=1)[0]
    for r in range(0, 12, 3):  # stride = patch, no overlap: each 3x3 block holds its window's value
        for c in range(0, 12, 3):
            assert torch.allclose(tiles[:, r:r + 3, c:c + 3], ours[r + 1, c + 1].expand(3, 3, 3), atol=1e-5)
    dense = captum.attribute(x, sliding_window_shapes=(3, 3, 3), strides=(3, 2, 2), baselines=0.3, target=1)[0]
    total, count = torch.zeros(12, 12), torch.zeros(12, 12)
    for r in range(0, 10 + 1, 2):  # Captum's per-pixel average rebuilt from our per-center values
        for c in range(0, 10 + 1, 2):  # ceil((12 - 3) / 2) * 2 = 10: the last window is clipped
            total[r:r + 3, c:c + 3] += ours[r + 1, c + 1]
            count[r:r + 3, c:c + 3] += 1
    expected = torch.where(count > 0, total / count.clamp_min(1), 0.0)
    assert torch.allclose(dense, expected.expand(3, 12, 12), atol=1e-5)


def test_spearman_matches_scipy_with_ties_and_by_hand():
    assert spearman(np.array([1, 2, 3, 4]), np.array([1, 2, 4, 3])) == pytest.approx(0.8)
    assert spearman(np.array([1, 1, 2]), np.array([1, 2, 3])) == pytest.approx(1.5 / np.sqrt(3))
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 4, (16, 16)), rng.integers(0, 6, (16, 16)) + 0.1 * rng.integers(0, 2, (16, 16))
    assert spearman(a, b) == pytest.approx(spearmanr(a.ravel(), b.ravel()).statistic, abs=1e-12)
    assert np.isnan(spearman(np.zeros((4, 4)), a[:4, :4])) and np.isnan(spearman(a, np.full((16, 16), np.nan)))


def test_bootstrap_interval_is_seeded_and_sensible():
    values = np.random.default_rng(1).normal(0.3, 0.2, 400)
    lo, hi = bootstrap_mean_ci(values, 2000, seed=5)
    assert (lo, hi) == bootstrap_mean_ci(values, 2000, seed=5) and lo < values.mean() < hi
    assert (hi - lo) == pytest.approx(2 * 1.96 * values.std() / 20, rel=0.15)  # normal approximation
    assert bootstrap_mean_ci(np.array([0.4]), 100, 0) == (0.4, 0.4)
    assert all(np.isnan(bootstrap_mean_ci(np.array([]), 100, 0)))


def _sample(i, labels, seed):
    image = np.random.default_rng(seed).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    return Sample(image_id=f"img/{i}", image=image, labels=tuple(labels))


def test_target_class_is_the_gt_label_with_the_highest_logit():
    logits = torch.tensor([[0.0, 5.0, 1.0, 2.0], [9.0, 0.0, 0.0, 0.0]])
    picked = target_classes([_sample(0, (0, 2, 3), 0), _sample(1, (3,), 1)], logits)
    assert picked.tolist() == [3, 3]  # not the overall argmax (1, 0)
    with pytest.raises(ValueError, match="img/2"):
        target_classes([_sample(2, (), 2)], logits[:1])


class Constant(SaliencyMethod):
    name = "constant"

    def _explain(self, images, class_ids):
        return Explanation(torch.zeros(*class_ids.shape, *images.shape[-2:]), self.model(images))


def test_cache_is_hit_by_the_second_method_and_keyed_by_settings_and_weights(tmp_path):
    model, info = build_model("toy_gap", weights="random")
    prep = Preprocess(64, info.mean, info.std)
    samples = [_sample(i, (i % 3, 5), i) for i in range(3)]
    images = torch.stack([prep(s.image) for s in samples])
    seen = []
    handle = model.register_forward_pre_hook(lambda _m, inp: seen.append(inp[0].shape[0]))
    opts = dict(patch=11, stride=8, max_batch=40, cache_dir=str(tmp_path), bootstrap=100, figure_images=0,
                engine="plain")  # the plain engine runs the model once per occluded copy: countable
    try:
        first = build_metric("occlusion_correlation", **opts)
        rows = first.score_batch(samples, images, build_method("gradient", model, info), prep)
        assert (first.cache_for(model, info, prep, "cpu").computed, sum(seen)) == (3, 3 + 3 + 3 + 3 * 64)
        seen.clear()
        second = build_metric("occlusion_correlation", **opts)
        rows2 = second.score_batch(samples, images, build_method("grad_cam", model, info), prep)
        cache = second.cache_for(model, info, prep, "cpu")
        assert (cache.computed, cache.loaded, sum(seen)) == (0, 3, 3 + 3)  # class choice + Grad-CAM only
    finally:
        handle.remove()
    assert [r["class_id"] for r in rows] == [r["class_id"] for r in rows2]
    assert len(list(cache.dir.glob("*.npy"))) == 3
    assert json.loads((cache.dir / "settings.json").read_text())["stride"] == 8
    other = build_metric("occlusion_correlation", **{**opts, "stride": 16})
    other.score_batch(samples, images, build_method("gradient", model, info), prep)
    assert other.cache_for(model, info, prep, "cpu").computed == 3  # another setting: another key
    retrained, info2 = build_model("toy_gap", weights="random")  # same name, other weights
    third = build_metric("occlusion_correlation", **opts)
    third.score_batch(samples, images, build_method("gradient", retrained, info2), prep)
    assert third.cache_for(retrained, info2, prep, "cpu").computed == 3
    next(cache.dir.glob("*.npy")).write_bytes(b"broken")
    fourth = build_metric("occlusion_correlation", **opts)
    fourth.score_batch(samples, images, build_method("gradient", model, info), prep)
    assert fourth.cache_for(model, info, prep, "cpu").computed == 1


def test_metric_records_and_aggregate_count_constant_maps_as_nan(tmp_path):
    model, info = tiny_model(classes=6)
    prep = Preprocess(12, info.mean, info.std)
    samples = [_sample(i, (i % 6,), 10 + i) for i in range(4)]
    images = torch.stack([prep(s.image) for s in samples])
    metric = build_metric("occlusion_correlation", patch=3, stride=1, cache_dir=str(tmp_path), bootstrap=500,
                          figure_images=0)
    occ_rows = metric.score_batch(samples, images, build_method("occlusion", model, info, patch=3), prep)
    assert all(r["rho"] == pytest.approx(1.0) for r in occ_rows)  # the occlusion map against itself
    const = metric.score_batch(samples, images, Constant(model, info), prep)
    assert all(np.isnan(r["rho"]) and r["degenerate"] and not r["occlusion_degenerate"] for r in const)
    summary = metric.aggregate(pd.DataFrame(occ_rows + const))
    assert (summary["n"], summary["n_nan"], summary["n_degenerate"]) == (4, 4, 4)
    assert summary["mean_rho"] == pytest.approx(1.0) and summary["ci95_low"] == pytest.approx(1.0)
    with pytest.raises(TypeError, match="patch_size"):
        build_metric("occlusion_correlation", patch_size=3)


def test_occlusion_table_rows_model_by_method_with_setting(tmp_path):
    rows = []
    for model, method, rho in [("m", "grad_cam", 0.3), ("m", "gradient", 0.1), ("a", "cam", 0.2)]:
        run = tmp_path / model / method
        run.mkdir(parents=True)
        (run / "summary.json").write_text(json.dumps({"protocol": {"patch": 11, "stride": 2, "fill": 0.0}}))
        rows.append({"model": model, "method": method, "dataset": "d", "metric": "occlusion_correlation",
                     "status": "finished", "path": str(run), "mean_rho": rho, "ci95_low": rho - 0.1,
                     "ci95_high": rho + 0.1, "n": 10, "n_nan": 1})
    rows.append({"model": "m", "method": "cam", "metric": "occlusion_correlation", "status": "not_applicable"})
    table = occlusion_table(pd.DataFrame(rows))
    assert table[["model", "method"]].values.tolist() == [["a", "cam"], ["m", "gradient"], ["m", "grad_cam"]]
    assert list(table.columns[3:]) == ["mean rho", "mean rho 95% CI low", "mean rho 95% CI high", "n", "n NaN", "patch",
                                       "stride", "fill", "resolution", "path"]  # path: for the paired tests, not written
    assert table["stride"].tolist() == [2, 2, 2] and table["mean rho"].tolist() == [0.2, 0.1, 0.3]
    assert table["resolution"].tolist() == ["input"] * 3  # summaries written before the option: input


def test_bad_options_are_errors_naming_them():
    model, info = tiny_model()
    with pytest.raises(ValueError, match="stride=0"):
        build_method("occlusion", model, info, stride=0)
    with pytest.raises(ValueError, match="layer"):
        build_method("occlusion", model, info, layer="0")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="autocast applies on CUDA only")
def test_amp_on_gpu_is_close_to_float32():
    model, info = tiny_model()
    model = model.cuda()
    x = torch.randn(2, 3, 12, 12, device="cuda")
    full = build_method("occlusion", model, info, patch=3)(x, torch.tensor([0, 1]))
    half = build_method("occlusion", model, info, patch=3, amp=True)(x, torch.tensor([0, 1]))
    assert torch.allclose(full, half, atol=2e-3 * model(x).abs().max().item())
