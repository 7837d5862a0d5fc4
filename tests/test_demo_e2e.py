"""A tiny demo run end to end: Hydra multirun over both toy models and every method, then tables."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def _run(args, cache, cwd):
    env = {**os.environ, "BENCHMARK_CACHE": str(cache), "PYTHONUNBUFFERED": "1"}
    out = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def _unfinished(experiment, overrides):
    from hydra import initialize_config_dir

    from benchmark.demo import unfinished
    from benchmark.models.base import CONF_DIR

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return unfinished(experiment, overrides)


def test_tiny_demo_end_to_end(tiny_synthetic, tmp_path, capsys):
    results = tmp_path / "results"
    overrides = ["dataset.limit=6", "batch_size=4", f"paths.results={results}"]
    args = ["-m", "benchmark", "-m", "experiment=demo", *overrides]
    assert len(_unfinished("demo", overrides)) == 14  # what `python -m benchmark.demo` would launch
    _run(args, tiny_synthetic, REPO)
    assert _unfinished("demo", overrides) == []  # ... and, once finished, would not launch again
    assert len(_unfinished("demo", [*overrides, "seed=1"])) == 14  # another configuration is not finished
    assert len(_unfinished("demo", [*overrides, "seed=1", "method=grad_cam"])) == 2  # the command line wins
    runs = results / "runs" / "demo"
    summaries = {p.parent.parent.relative_to(runs).as_posix(): json.loads(p.read_text())
                 for p in runs.glob("**/summary.json")}
    assert len(summaries) == 14  # 2 models x 7 methods
    assert summaries["toy_vgg/cam/synthetic_val"]["status"] == "not_applicable"
    gc = summaries["toy_gap/grad_cam/synthetic_val"]
    assert gc["status"] == "finished" and gc["metrics"]["n_images"] == 6 and gc["layer"] == "features.16"
    assert gc["method_settings"] == {"layer": "features.16", "relu": True, "relu_at": "input", "grad_transform": "identity",
                                     "pooling": "gap", "backward_relu": "standard", "counterfactual": False,
                                     "align_corners": False}
    assert gc["git"].keys() == {"commit", "dirty"} and gc["versions"]["torch"]
    records = pd.read_parquet(Path(gc["run_dir"]) / "records.parquet")
    assert len(records) == 6 and records["image_id"].is_monotonic_increasing
    assert {"image_id", "class_id", "method", "model", "dataset", "iou", "degenerate"} <= set(records.columns)
    # a second run skips every finished job (the not-applicable ones too)
    second = _run(args, tiny_synthetic, REPO)
    assert (second.stdout + second.stderr).count("already finished") == 14
    from benchmark.report.__main__ import main as report  # `python -m benchmark.report`, in this process

    assert report(["--results", str(results), "--experiment", "demo"]) == 0
    table = pd.read_csv(results / "tables" / "demo_localization.csv")
    assert len(table) == 13 and "loc err top-1 (%)" in table.columns
    assert (results / "tables" / "demo_localization.md").is_file() and "demo_localization" in capsys.readouterr().out
