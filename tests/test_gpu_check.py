"""``make gpu-check`` (benchmark/perf/gpu_check.py): its comparison rules, and the whole check on CPU."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark.perf import gpu_check
from benchmark.perf.blocks import BLOCKS
from benchmark.perf.gpu_compare import compare_records


def _records(n=20, **changes):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"image_id": [f"im{i}" for i in range(n)], "class_id": 3, "pred_1": 3,
                          "box_x0": rng.integers(0, 50, n), "iou": rng.random(n), "map_max": rng.random(n) + 1.0,
                          "degenerate": False, "error": None, "model": "m", "method": "x", "dataset": "d"})
    for column, (rows, value) in changes.items():
        frame.loc[rows, column] = value
    return frame


def _column(result, name):
    return next(c for c in result["columns"] if c["column"] == name)


def test_identical_records_agree():
    out = compare_records(_records(), _records())
    assert out["ok"] and out["rows"] == 20 and out["missing_rows"] == 0


def test_discrete_outcomes_may_differ_in_a_stated_count_of_rows():
    one = compare_records(_records(), _records(box_x0=([4], 99), iou=([4], 0.0)))  # 1 of 20 rows: allowed (5 %)
    assert one["ok"] and _column(one, "box_x0")["differ"] == 1 and _column(one, "box_x0")["allowed"] == 1
    assert _column(one, "iou")["rows_compared"] == 19  # the IoU of two different boxes is not compared
    two = compare_records(_records(), _records(box_x0=([4, 7], 99)))
    assert not two["ok"] and not _column(two, "box_x0")["ok"]


def test_a_map_degenerate_on_one_device_only_or_a_missing_row_fails():
    assert not compare_records(_records(), _records(degenerate=([2], True)))["ok"]
    assert not compare_records(_records(), _records().iloc[1:])["ok"]


def test_floats_within_their_stated_tolerance():
    ref = _records()
    near = ref.assign(map_max=ref["map_max"] * (1 + 5e-3))  # map_max: relative 1e-2
    far = ref.assign(map_max=ref["map_max"] * (1 + 2e-2))
    assert compare_records(ref, near)["ok"]
    worse = compare_records(ref, far)
    assert not worse["ok"] and _column(worse, "map_max")["max_diff"] == pytest.approx(2e-2 / 1.02, rel=1e-3)


def test_gpu_check_runs_on_cpu_and_writes_its_json(tiny_multi, tmp_path):
    threads = torch.get_num_threads()
    assert gpu_check.main(["--device", "cpu", "--quick", "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "gpu_check.json").read_text())
    assert doc["ok"] and [(r["metric"], r["method"]) for r in doc["agreement"]] == [
        ("localization", "grad_cam"), ("pointing", "grad_cam")]
    assert all(r["rows"] > 0 and r["missing_rows"] == 0 for r in doc["agreement"])
    (t1,) = doc["table1"]
    assert t1["images"] == 2 and t1["device_images_per_s"] > 0 and 0 < t1["device_share"] < 1
    assert doc["engines"][0]["incremental_maps_per_s"] > 0 and doc["engines"][0]["max_diff_rel"] < 1e-4
    assert torch.get_num_threads() == threads  # the quick check's one thread is restored
    (tmp_path / "gpu").mkdir()  # the docs' block renders the recorded JSON
    (tmp_path / "gpu" / "gpu_check.json").write_text(json.dumps(doc))
    block = BLOCKS["gpu-check"](tmp_path / "bench")
    assert "2 of 2 (metric, method) jobs on 2 images agree with the CPU" in block
    assert block.count("| toy_vgg |") == 2  # one Table 1 job row, one occlusion engines row
    assert BLOCKS["gpu-check"](tmp_path / "elsewhere" / "bench").startswith("Not run on a GPU yet")


def test_every_method_but_precomputed_is_checked():
    methods = gpu_check.every_method()
    assert "grad_cam" in methods and "occlusion" in methods and "precomputed" not in methods
    assert gpu_check.FULL["jobs"][0][3] is None  # the localization job runs every method
