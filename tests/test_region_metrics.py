"""Relevance mass / rank accuracy, energy pointing and sparseness: by hand, per sample against Quantus's
RelevanceMassAccuracy, RelevanceRankAccuracy, AttributionLocalisation and Sparseness, and through the metric."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from benchmark.data.transforms import Preprocess
from benchmark.methods import build_method
from benchmark.metrics.base import build_metric
from benchmark.metrics.mass import energy_pointing, relevance_mass, relevance_rank
from benchmark.metrics.sparseness import gini
from benchmark.models.base import ModelInfo, freeze
from benchmark.types import Sample

quantus = pytest.importorskip("quantus")


def _maps_and_masks(seed=0, b=4, size=10):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(b, 1, size, size)).astype(np.float32)
    s = np.zeros((b, 1, size, size), np.float32)
    for i in range(b):
        y0, x0 = rng.integers(0, size // 2, 2)
        s[i, 0, y0:y0 + 3 + i, x0:x0 + 4] = 1
    x = rng.normal(size=(b, 3, size, size)).astype(np.float32)
    return x, a, s


def _quantus(metric, x, a, s):
    return np.asarray(metric(model=None, x_batch=x, y_batch=np.zeros(len(x), int), a_batch=a, s_batch=s,
                             device="cpu"), np.float64)


def test_by_hand():
    saliency = np.array([[4.0, 1.0], [-1.0, 0.0]])
    region = np.array([[True, False], [True, False]])
    assert relevance_mass(saliency, region) == pytest.approx(3.0 / 4.0)
    assert energy_pointing(saliency, region) == pytest.approx(4.0 / 5.0)
    assert relevance_rank(saliency, region) == 0.5  # top 2: 4 (in), 1 (out)
    assert relevance_rank(np.ones((2, 2)), np.array([[False, True], [False, False]])) == 0.0  # ties row-major
    assert np.isnan(relevance_mass(saliency, np.zeros((2, 2), bool))) and np.isnan(relevance_rank(saliency, np.zeros((2, 2), bool)))
    assert gini([0, 0, 0, 1]) == pytest.approx(0.75) and gini([2, -2, 2, 2]) == 0.0 and np.isnan(gini([0, 0]))


def test_relevance_mass_equals_quantus_per_sample():
    x, a, s = _maps_and_masks()
    theirs = _quantus(quantus.RelevanceMassAccuracy(normalise=False, disable_warnings=True), x, a, s)
    ours = [relevance_mass(m[0], r[0] > 0) for m, r in zip(a, s)]
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)


def test_relevance_rank_equals_quantus_per_sample_without_ties():
    x, a, s = _maps_and_masks(1)
    theirs = _quantus(quantus.RelevanceRankAccuracy(normalise=False, disable_warnings=True), x, a, s)
    np.testing.assert_array_equal([relevance_rank(m[0], r[0] > 0) for m, r in zip(a, s)], theirs)


def test_energy_pointing_equals_quantus_attribution_localisation_on_positive_maps():
    # AttributionLocalisation takes |map| (abs=True) and adds 1e-9 to the total; with a non-negative
    # map and abs=False the definitions coincide up to that epsilon
    x, a, s = _maps_and_masks(2)
    a = np.abs(a)
    theirs = _quantus(quantus.AttributionLocalisation(abs=False, normalise=False, disable_warnings=True), x, a, s)
    np.testing.assert_allclose([energy_pointing(m[0], r[0] > 0) for m, r in zip(a, s)], theirs, rtol=1e-6)


def test_sparseness_equals_quantus_after_its_offset():
    x, a, s = _maps_and_masks(3)
    theirs = _quantus(quantus.Sparseness(normalise=False, disable_warnings=True), x, a.copy(), s)
    # Quantus adds 1e-7 to |map| before the Gini index; with the same offset the values are equal
    np.testing.assert_allclose([gini(np.abs(m[0].astype(np.float64)) + 1e-7) for m in a], theirs, rtol=1e-5)
    assert [gini(m) for m in a] != pytest.approx(list(theirs), rel=1e-9)


def tiny_model(classes=4):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                        nn.Linear(16, classes))
    return freeze(net), ModelInfo(name="tiny", num_classes=classes, input_size=12)


def _samples():
    rng = np.random.default_rng(0)
    boxes = np.array([[2, 3, 9, 10], [0, 0, 4, 4], [5, 5, 11, 13]])
    return [Sample(image_id=f"img/{i}", image=rng.integers(0, 256, (16, 12, 3), dtype=np.uint8), labels=(1, 2),
                   boxes_xyxy=boxes, box_labels=np.array([1, 2, 2]), box_difficult=np.zeros(3, bool))
            for i in range(2)]


@pytest.mark.parametrize("name,fn", [("relevance_mass", relevance_mass), ("relevance_rank", relevance_rank),
                                     ("energy_pointing", energy_pointing)])
def test_region_metric_records_every_class_at_original_resolution(name, fn):
    model, info = tiny_model()
    prep = Preprocess(12, info.mean, info.std)
    samples = _samples()
    images = torch.stack([prep(s.image) for s in samples])
    method = build_method("gradient", model, info)
    metric = build_metric(name, region="boxes", bootstrap=100)
    rows = metric.score_batch(samples, images, method, prep)
    assert [(r["image_id"], r["class_id"]) for r in rows] == [("img/0", 1), ("img/0", 2), ("img/1", 1), ("img/1", 2)]
    maps = method(images[:1], torch.tensor([2]))
    orig = prep.to_original(maps, (16, 12))[0].numpy()
    region = np.zeros((16, 12), bool)
    region[0:5, 0:5] = region[5:14, 5:12] = True
    assert rows[1]["value"] == pytest.approx(fn(orig, region))
    summary = metric.aggregate(pd.DataFrame(rows))
    assert summary["n"] == 4 and summary["direction"] == "higher"
    assert summary[f"mean_{name}"] == pytest.approx(np.mean([r["value"] for r in rows]))


def test_sparseness_metric_scores_the_explained_class():
    model, info = tiny_model()
    prep = Preprocess(12, info.mean, info.std)
    samples = _samples()
    images = torch.stack([prep(s.image) for s in samples])
    method = build_method("gradient", model, info)
    rows = build_metric("sparseness").score_batch(samples, images, method, prep)
    with torch.no_grad():
        logits = model(images)
    cls = [max((1, 2), key=lambda c: logits[i, c].item()) for i in range(2)]
    assert [r["class_id"] for r in rows] == cls
    assert rows[0]["gini"] == pytest.approx(gini(method(images[:1], torch.tensor([cls[0]]))[0].numpy()))
