"""The bench harness: statistics, paired ratios, interleaving, leak detectors, and a ``--quick`` run."""

import importlib.util
import json
import time

import pandas as pd
import pytest
import torch

from benchmark.perf import memory
from benchmark.perf.timing import Contender, interleaved, memory_mb, paired_ratio, split_calls, summary, warm_up

CPU = torch.device("cpu")


def test_summary_hand_worked():
    s = summary([5.0, 1.0, 4.0, 2.0, 3.0])
    assert (s["n"], s["median_s"], s["min_s"], s["max_s"], s["q1_s"], s["q3_s"]) == (5, 3.0, 1.0, 5.0, 2.0, 4.0)
    one = summary([0.5])
    assert one["median_s"] == one["q1_s"] == one["q3_s"] == 0.5


def test_paired_ratio_per_round_and_per_map():
    # slow needs 2 s then 6 s per round, fast 1 s then 2 s: per-round ratios 2 and 3
    assert paired_ratio([2.0, 6.0], [1.0, 2.0]) == {"ratio": 2.5, "ratio_min": 2.0, "ratio_max": 3.0}
    # slow is a split contender (2 one-map calls per round), fast makes 2 maps per call:
    # round 1: (1+1)/2 = 1 s/map vs 1/2 = 0.5 s/map -> 2; round 2: (2+2)/2 = 2 vs 2/2 = 1 -> 2
    r = paired_ratio([1.0, 1.0, 2.0, 2.0], [1.0, 2.0], per_slow=1, per_fast=2)
    assert r == {"ratio": 2.0, "ratio_min": 2.0, "ratio_max": 2.0}


def test_rounds_stop_at_the_deadline_but_not_before_the_minimum():
    c = Contender("a", "t", lambda: time.sleep(0.002), 1, 1)
    assert interleaved([c], CPU, 2, 5, deadline=time.perf_counter() - 1, measure_peak=False) == 2
    assert interleaved([c], CPU, 2, 5, measure_peak=False) == 5
    assert len(c.times) == 7


def test_interleaved_rotates_order_and_split_fills_one_class_samples():
    calls = []
    a = Contender("a", "t", lambda: calls.append("a"), 1, 1)
    one = Contender("c k1", "t", None, 1, 1)
    inner = [lambda: calls.append("c")] * 3
    many = Contender("c k3", "t", split_calls(inner, one.times, CPU), 3, 3, split="c k1",
                     warm=lambda: calls.append("w"), calls=inner)
    b = Contender("b", "t", lambda: calls.append("b"), 1, 1)
    warm_up([a, many, one, b], CPU)
    assert calls == ["a", "w", "b"]  # a split contender warms up with one inner call
    assert one.times == [] and many.times == []
    calls.clear()
    assert interleaved([a, many, one, b], CPU, 3, 3, measure_peak=False) == 3
    # a round is 3 slots (one inner call of "c k3" each; a and b run in slot 0 only); the start
    # rotates by one position per slot and per round (the passive "c k1" holds a position too)
    assert "".join(calls) == "acb" "c" "c" + "cba" "c" "c" + "bac" "c" "c"
    assert len(a.times) == len(many.times) == 3 and len(one.times) == 9
    assert many.times == [sum(one.times[i:i + 3]) for i in (0, 3, 6)]  # a round's total is its calls' sum


def test_repeated_contenders_pair_slot_by_slot_with_a_split_one():
    calls = []
    ours = Contender("ours k1", "t", lambda: calls.append("o"), 1, 1, repeat=2)
    one = Contender("p k1", "t", None, 1, 1)
    inner = [lambda: calls.append("p")] * 2
    many = Contender("p k2", "t", split_calls(inner, one.times, CPU), 2, 2, split="p k1", calls=inner)
    interleaved([ours, many, one], CPU, 1, 1, measure_peak=False)
    assert "".join(calls) == "op" "po"  # each slot holds one call of each: the samples a ratio pairs
    assert len(ours.times) == len(one.times) == 2 and len(many.times) == 1


def test_saved_tensor_watch_sees_a_graph_that_outlives_its_batch():
    lin = torch.nn.Linear(3, 3)
    lin.requires_grad_(False)
    watch = memory.SavedTensorWatch(lin)
    kept = []

    def batch(keep):
        x = torch.randn(2, 3, requires_grad=True)
        with torch.autograd.graph.saved_tensors_hooks(watch.pack, watch.unpack):
            y = lin(x).exp().sin().sum()  # exp saves its result, sin its input
        if keep:
            kept.append(y)

    batch(keep=False)
    assert watch.saved >= 2 and watch.survivors() == 0
    batch(keep=True)
    assert watch.survivors() >= 1
    kept.clear()


def test_hook_counts_notice_a_leftover_hook():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU())
    before = memory.hook_counts(net)
    handle = net[1].register_forward_hook(lambda *a: None)
    after = memory.hook_counts(net)
    assert after["1._forward_hooks"] == before["1._forward_hooks"] + 1
    handle.remove()
    assert memory.hook_counts(net) == before


def test_memory_reads_proc_status():
    mem = memory_mb()
    assert 0 < mem["rss_mb"] <= mem["hwm_mb"]


def test_quick_bench_writes_every_table(tmp_path):
    pytest.importorskip("captum", reason="the bench extra (pip install -e '.[bench]') is not installed")
    pytest.importorskip("pytorch_grad_cam", reason="the bench extra (pip install -e '.[bench]') is not installed")
    from benchmark.perf.bench import main

    assert main(["--quick", "--out", str(tmp_path), "--budget", "5"]) == 0
    for name in ("throughput", "agreement", "post", "memory", "memory_checks", "ratios", "estimates", "ecosystem"):
        assert (tmp_path / f"{name}.csv").is_file(), name
    ecosystem = pd.read_csv(tmp_path / "ecosystem.csv")  # one row per family: adapter vs the library directly
    assert list(ecosystem["family"]) == ["pytorch-grad-cam", "captum"]
    assert (ecosystem[["adapter_maps_per_s", "library_maps_per_s", "adapter_over_library"]] > 0).all().all()
    if importlib.util.find_spec("quantus") is not None:  # native perturbation curves vs Quantus on the same maps
        metrics = pd.read_csv(tmp_path / "metrics.csv")
        assert list(metrics["metric"]) == ["deletion", "region_perturbation"]
        assert (metrics["native_over_quantus"] > 0).all() and (metrics["max_abs_diff"] < 1e-5).all()
    meta = json.loads((tmp_path / "run.json").read_text())
    assert meta["quick"] is True and meta["wall_s"] > 0
    throughput = pd.read_csv(tmp_path / "throughput.csv")
    for model in ("toy_gap", "toy_vgg"):
        names = set(throughput.loc[throughput["model"] == model, "contender"])
        assert {"ours k1", "ours k2", "forward", "pytorch-grad-cam k1", "pytorch-grad-cam k2",
                "pytorch-grad-cam frozen k1", "pytorch-grad-cam frozen k2", "captum k1", "captum k2"} <= names
    assert (throughput["median_s"] > 0).all() and (throughput["n"] >= 1).all()
    agreement = pd.read_csv(tmp_path / "agreement.csv")
    others = agreement[agreement["compared"].isin(["pytorch-grad-cam", "pytorch-grad-cam frozen", "captum",
                                                   "captum guided", "captum saliency"])]
    assert len(others) == 8 and (others["max_normalized_diff"] < 1e-4).all()  # the tools compute the same maps
    checks = pd.read_csv(tmp_path / "memory_checks.csv")
    assert len(checks) == 10 and checks["holds"].all()
    ratios = pd.read_csv(tmp_path / "ratios.csv")
    assert "Grad-CAM 2 classes cost / plain forward" in set(ratios["ratio"])
    engines = pd.read_csv(tmp_path / "occlusion_engines.csv")  # plain / incremental / Captum occlusion
    assert list(engines["model"]) == ["toy_vgg"] and list(engines["stride"]) == [8]
    assert (engines[["captum_maps_per_s", "plain_maps_per_s", "incremental_maps_per_s"]] > 0).all(axis=None)
    assert (engines["incremental_flop_bound"] > engines["plain_flop_bound"]).all()  # footprints cost less
    assert (engines["max_diff_rel"] < 1e-4).all()  # incremental = plain up to float32 rounding
    for ratio in ("plain_vs_captum", "incremental_vs_captum", "incremental_vs_plain"):  # median within [min, max]
        assert (engines[f"{ratio}_min"] <= engines[ratio]).all() and (engines[ratio] <= engines[f"{ratio}_max"]).all()
    grad = pd.read_csv(tmp_path / "gradcam_ratios.csv")  # the recorded Grad-CAM section: ranges kept
    assert set(grad["model"]) == {"toy_gap", "toy_vgg"} and grad["ratio"].str.startswith("Grad-CAM").all()
    assert ((grad["value_min"] <= grad["value"]) & (grad["value"] <= grad["value_max"])).all()
    pipe = pd.read_csv(tmp_path / "pipeline.csv").set_index("step")  # host side: decode, preprocess, loader, cores
    assert (pipe.loc[["decode (PIL)", "preprocess (paper, 224)", "to_original + box", "loader, num_workers 1",
                      "loader, num_workers 2"], "images_per_s"] > 0).all()
    assert pipe.loc["cores per GPU, vgg16", "cores_per_gpu"] > 0
    assert not torch.is_autocast_enabled("cpu") and torch.is_grad_enabled()


def test_speed_option_ratio_holds_only_within_its_tolerance():
    from benchmark.perf import report

    def timed(contender, seconds, maps):
        return {"section": "grad_cam", "model": "m", "contender": contender, "maps_per_call": maps,
                "times": [seconds] * 3}

    rows = [timed("pytorch-grad-cam k1", 1.0, 8), timed("ours cl+amp k1", 0.1, 8), timed("ours cl k1", 0.2, 8)]
    checks = [{"model": "m", "compared": "ours cl+amp", "min_pearson": 0.97, "max_rel_diff": 0.2},
              {"model": "m", "compared": "ours cl", "min_pearson": 1.0, "max_rel_diff": 2e-5}]
    out = {r["ratio"]: r for r in report.ratios(rows, 1, checks=checks)}
    amp = out["Grad-CAM 1 class: ours cl+amp / pytorch-grad-cam (float32)"]
    cl = out["Grad-CAM 1 class: ours cl+fold / pytorch-grad-cam"]
    assert amp["value"] == pytest.approx(10.0) and amp["maps_ok"] is False and amp["holds"] is False
    assert cl["value"] == pytest.approx(5.0) and cl["maps_ok"] is True and cl["holds"] is True
    unmeasured = {r["ratio"]: r for r in report.ratios(rows, 1, checks=[])}
    assert unmeasured["Grad-CAM 1 class: ours cl+fold / pytorch-grad-cam"]["holds"] is False
