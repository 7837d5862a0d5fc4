"""Model randomization sanity check: per sample equal to Quantus's MPRT (cascading, Spearman of |map|),
the independent variant, the shared model left untouched, and the guards of the method rebuild."""

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from benchmark.data.transforms import Preprocess
from benchmark.methods import Explanation, SaliencyMethod, build_method
from benchmark.metrics import _randomize
from benchmark.metrics.base import build_metric
from benchmark.metrics.sanity import layer_curves, similarities
from benchmark.models.base import ModelInfo, freeze
from benchmark.types import Sample

quantus = pytest.importorskip("quantus")


def tiny():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 4))
    info = ModelInfo(name="tiny", num_classes=4, input_size=32)
    prep = Preprocess(32, info.mean, info.std)
    rng = np.random.default_rng(0)
    samples = [Sample(image_id=f"img/{i}", image=rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), labels=(1, 2))
               for i in range(3)]
    return freeze(net), info, prep, samples, torch.stack([prep(s.image) for s in samples])


def test_similarities_of_a_map_with_itself_and_with_its_negative():
    a = np.random.default_rng(0).random((32, 32))
    same = similarities(a, a)
    assert same == pytest.approx({"spearman": 1.0, "spearman_abs": 1.0, "ssim": 1.0, "hog": 1.0})
    flipped = similarities(a, -a)
    assert flipped["spearman"] == pytest.approx(-1.0) and flipped["spearman_abs"] == pytest.approx(1.0)
    assert np.isnan(similarities(a, np.zeros_like(a))["spearman"])


def test_cascading_equals_quantus_mprt_per_sample_and_leaves_the_model_alone():
    model, info, prep, samples, images = tiny()
    method = build_method("gradient", model, info)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = build_metric("sanity_model_randomization", seed=42).score_batch(samples, images, method, prep)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert rows[0]["layers"] == ["6", "2", "0"]  # top layer first

    def explain(model, inputs, targets, **_):
        return build_method("gradient", model, info)(torch.as_tensor(inputs), torch.as_tensor(targets)).numpy()[:, None]

    y = np.array([r["class_id"] for r in rows])
    theirs = quantus.MPRT(seed=42, normalise=False, disable_warnings=True)(
        model=model, x_batch=images.numpy(), y_batch=y, a_batch=explain(model, images.numpy(), y), explain_func=explain,
        device="cpu")
    for j, layer in enumerate(rows[0]["layers"]):
        np.testing.assert_allclose([r["cascading_spearman_abs"][j] for r in rows], theirs[layer], atol=1e-12)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_independent_variant_randomizes_one_layer_and_aggregation_reads_the_last_step():
    model, info, prep, samples, images = tiny()
    method = build_method("gradient", model, info)
    metric = build_metric("sanity_model_randomization", variants=["independent"], seed=1)
    rows = metric.score_batch(samples, images, method, prep)
    _, randomized = next(_randomize.independent(model, ["2"], 1))
    assert torch.equal(randomized[0].weight, model[0].weight) and not torch.equal(randomized[2].weight, model[2].weight)
    expected = similarities(method(images[:1], torch.tensor([rows[0]["class_id"]]))[0].numpy(),
                            build_method("gradient", randomized, info)(images[:1], torch.tensor([rows[0]["class_id"]]))[0].numpy())
    assert rows[0]["independent_ssim"][1] == pytest.approx(expected["ssim"])
    assert "cascading_ssim" not in rows[0]
    summary = metric.aggregate(pd.DataFrame(rows))
    assert summary["independent_ssim"] == pytest.approx(np.mean([np.mean(r["independent_ssim"]) for r in rows]))
    assert summary["direction"] == "lower"
    curves = layer_curves(pd.DataFrame(rows), "independent")
    assert list(curves.index) == ["6", "2", "0"] and curves.loc["2", "ssim"] == pytest.approx(
        np.mean([r["independent_ssim"][1] for r in rows]))


def test_each_independent_step_differs_from_the_model_in_its_layer_only():
    torch.manual_seed(0)
    net = freeze(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4)))
    net[1].running_mean.fill_(0.5), net[4].running_var.fill_(2.0)  # buffers that reset_parameters also resets
    original = copy.deepcopy(net.state_dict())
    layers = _randomize.randomizable_layers(net)
    assert layers == ["4", "3", "1", "0"]
    for name, randomized in _randomize.independent(net, layers, 3):
        state = randomized.state_dict()
        changed = {key.split(".")[0] for key, value in state.items() if not torch.equal(value, original[key])}
        assert changed == {name}
        fresh = copy.deepcopy(net)  # the one layer, randomized on its own copy of the model
        _randomize.reset_layer(fresh, name, 3)
        assert all(torch.equal(state[key], value) for key, value in fresh.state_dict().items())
    assert all(torch.equal(original[key], value) for key, value in net.state_dict().items())


class HoldsAModel(SaliencyMethod):
    name = "holds_a_model"

    def __init__(self, model, info):
        super().__init__(model, info)
        self.private = nn.Linear(2, 2)

    def _explain(self, images, class_ids):
        return Explanation(images.sum(1, keepdim=True).expand(-1, class_ids.shape[1], -1, -1).contiguous(),
                           self.model(images))


def test_rebuild_refuses_methods_the_randomization_cannot_reach():
    model, info, *_ = tiny()
    with pytest.raises(ValueError, match="holds a model of its own"):
        _randomize.method_on(HoldsAModel(model, info), copy.deepcopy(model))
    handle = model[2].register_forward_hook(lambda *a: None)
    try:
        with pytest.raises(ValueError, match="module '2' carries hooks"):
            _randomize.method_on(build_method("gradient", model, info), model)
    finally:
        handle.remove()
    with pytest.raises(ValueError, match="variants"):
        build_metric("sanity_model_randomization", variants=["bottom_up"])
