"""The metrics section of the bench: native curves and Quantus's on the same inputs, the same scores."""

import importlib.util

import pytest
import torch
from torch import nn

from benchmark.models.base import ModelInfo, freeze
from benchmark.perf import metrics_section

pytest.importorskip("quantus")


def test_section_times_both_and_their_curves_are_identical():
    torch.manual_seed(0)
    model = freeze(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                                 nn.Linear(16, 3)))
    images, maps = torch.randn(2, 3, 20, 20), torch.rand(2, 20, 20)
    rows, ratios, notes = metrics_section.run("tiny", model, images, maps, torch.tensor([0, 2]), torch.device("cpu"),
                                              budget_s=2.0, rounds=(1, 2))
    assert notes == [] and [r["metric"] for r in ratios] == ["deletion", "region_perturbation"]
    assert all(r["max_abs_diff"] <= 1e-6 for r in ratios), ratios  # float32 rounding of other batch shapes
    assert all(r["native_over_quantus"] > 0 for r in ratios)
    assert {r["tool"] for r in rows} == {"native", "quantus"} and all(r["rounds"] >= 1 for r in rows)
    info = ModelInfo(name="tiny", num_classes=3, input_size=20)
    _, ratios, _ = metrics_section.section("tiny", model, info, images, torch.tensor([[0, 1], [2, 0]]),
                                           torch.device("cpu"), 1.0, (1, 1))
    assert all(r["max_abs_diff"] <= 1e-6 for r in ratios) and len(ratios) == 2


def test_section_is_skipped_with_a_note_without_quantus(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "quantus" else real(name, *a))
    rows, ratios, notes = metrics_section.run("tiny", None, torch.zeros(1, 3, 6, 6), torch.zeros(1, 6, 6),
                                              torch.tensor([0]), torch.device("cpu"), 1.0, (1, 1))
    assert (rows, ratios) == ([], []) and "quantus not installed" in notes[0]
