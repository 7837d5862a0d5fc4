"""The demo in one process: job configs assembled as Hydra composes them, unfinished jobs run in
process into the run folders the CLI uses, finished ones skipped, a failure stops it, and the step
times recorded and rendered into docs/demo.md."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import benchmark.demo as demo
from benchmark.demo import jobs, times
from benchmark.demo.runner import names_launcher
from benchmark.models.base import CONF_DIR

REPO = Path(__file__).resolve().parents[1]


def _mismatches(experiments, overrides):
    """Jobs whose assembled config differs from Hydra's composition of the same job (and the count checked)."""
    bad, checked = [], 0
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        for name in experiments:
            composed = jobs._compose_experiment(name, overrides)
            for job in jobs.sweep_jobs(name, overrides, composed):
                assembled = jobs.assemble(composed, name, job)
                assert assembled is not None, job  # plain YAML options: never the fallback
                checked += 1
                if assembled != OmegaConf.to_container(compose("config", overrides=job), resolve=True):
                    bad.append(job)
    return bad, checked


def test_assembled_job_configs_equal_hydras_composition(tmp_path):
    plain = [f"paths.results={tmp_path}"]
    # a value sweep, an experiment-level label, a model-level override, group sweeps over two groups
    assert _mismatches(["demo_layers", "demo_grabcut", "demo_pointing_torchray"], plain) == ([], 14)
    # command-line values and groups: the command line wins over the sweep, new keys with +
    cli = [*plain, "dataset.limit=6", "seed=1", "method=grad_cam", "+metric.options.extra=1", "model.input_size=32"]
    assert _mismatches(["demo", "demo_occlusion"], cli) == ([], 4)


@pytest.mark.slow
def test_every_experiments_job_configs_equal_hydras_composition(tmp_path):
    """All experiments of conf/experiment (about 300 jobs, one Hydra composition each: a minute or two)."""
    names = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
    bad, checked = _mismatches(names, [f"paths.results={tmp_path}"])
    assert bad == [] and checked > 300


def test_what_cannot_be_assembled_is_composed_by_hydra(tmp_path):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        composed = jobs._compose_experiment("demo_layers", [f"paths.results={tmp_path}"])
        assert jobs.assemble(composed, "demo_layers", ["experiment=demo_layers", "method@method=cam"]) is None
        assert jobs.assemble(composed, "demo_layers", ["experiment=demo"]) is None
        assert jobs.assemble(composed, "demo_layers", ["experiment=demo_layers", "hydra/launcher=local"]) is not None
    assert names_launcher(["hydra/launcher=slurm"]) and not names_launcher(["hydra.launcher.timeout_min=5"])


def _cli(args, cache):
    env = {**os.environ, "BENCHMARK_CACHE": str(cache), "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "benchmark", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)


def test_demo_runs_unfinished_jobs_in_process_then_skips_them(tiny_synthetic, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo, "EXPERIMENTS", ("demo_layers", "demo_grabcut"))
    results = tmp_path / "results"
    overrides = [f"paths.results={results}", "dataset.limit=4", "progress=false"]
    assert demo.main(["--workers", "1", *overrides]) == 0
    out = capsys.readouterr().out
    assert "demo_layers: 5 of 5 job(s) to run" in out and "demo_grabcut: 1 of 1 job(s) to run" in out
    assert "demo_layers [5/5] toy_vgg/grad_cam@features.16/synthetic_val/localization: finished" in out
    summaries = [json.loads(p.read_text()) for p in (results / "runs").glob("**/summary.json")]
    assert sorted(s["method"] for s in summaries) == sorted(["gradient_grabcut"] + [f"grad_cam@features.{i}"
                                                                                    for i in (2, 6, 9, 13, 16)])
    assert all(s["status"] == "finished" and s["metrics"]["n_images"] == 4 for s in summaries)
    recorded = json.loads((results / "demo_times.json").read_text())
    ran = {s["step"]: (s["jobs"], s["ran"]) for s in recorded["steps"] if "jobs" in s}
    assert ran == {"demo_layers": (5, 5), "demo_grabcut": (1, 1)} and not recorded["full"] and not recorded["failed"]
    assert {"load_avg_start", "load_avg_end", "cpus", "date", "wall_s"} <= recorded.keys()
    # the CLI finds the in-process run in its own run folder, finished with the same configuration
    cli = _cli(["experiment=demo_layers", "method.layer=features.9", *overrides], tiny_synthetic)
    said = cli.stdout + cli.stderr  # the fast path (benchmark.fastpath) or the Hydra job says it
    assert cli.returncode == 0 and ("already finished" in said or "finished with the same configuration" in said), said[-2000:]
    # a second demo runs nothing
    assert demo.main(["--workers=1", *overrides]) == 0
    out = capsys.readouterr().out
    assert out.count("every job finished with this configuration") == 2 and "[1/" not in out
    assert [s for s in json.loads((results / "demo_times.json").read_text())["steps"] if "jobs" in s] == []


def test_a_failing_job_stops_the_demo_and_leaves_no_run_folder(tiny_synthetic, tmp_path, capsys):
    results = tmp_path / "results"
    overrides = [f"paths.results={results}", "dataset.limit=4", "progress=false", "method.layer=features.99"]
    planned = demo.plan(["demo_layers", "demo_grabcut"], overrides)
    assert demo.run_plan(planned, overrides) == 1
    err = capsys.readouterr().err
    assert "demo_layers: job toy_vgg/grad_cam@features.99/synthetic_val/localization failed" in err
    assert "method.layer" in err and not list(results.glob("runs/**/summary.json"))


def _records(results: Path) -> dict:
    """Every run's records, by run folder relative to ``results``."""
    from benchmark.runs.store import RunStore

    return {str(p.parent.relative_to(results)): RunStore(p.parent).load()[0]
            for p in (results / "runs").glob("**/summary.json")}


def test_jobs_in_worker_processes_write_the_records_of_one_process(tiny_synthetic, tmp_path, monkeypatch, capsys):
    """``--workers 2``: two spawned workers with one thread each; the same run folders, records equal to those of
    the jobs run one after another in this process (discrete columns identical, floats within 1e-6)."""
    monkeypatch.setattr(demo, "EXPERIMENTS", ("demo_layers", "demo_grabcut", "demo_ablations_minmax"))
    common = ["dataset.limit=4", "progress=false"]
    one, two = tmp_path / "one", tmp_path / "two"
    assert demo.main(["--workers", "1", f"paths.results={one}", *common]) == 0
    assert demo.main(["--workers", "2", f"paths.results={two}", *common]) == 0
    out = capsys.readouterr().out
    assert "running 12 job(s) in 2 worker processes" in out and "[12/12] " in out
    serial, parallel = _records(one), _records(two)
    assert sorted(parallel) == sorted(serial) and len(serial) == 12
    for run, frame in serial.items():
        other = parallel[run]
        assert list(other.columns) == list(frame.columns) and len(other) == len(frame) == 4
        for column in frame.columns:
            if frame[column].dtype.kind == "f":
                assert np.allclose(other[column], frame[column], rtol=0, atol=1e-6, equal_nan=True), (run, column)
            else:
                assert other[column].tolist() == frame[column].tolist(), (run, column)
    steps = json.loads((two / "demo_times.json").read_text())["steps"]
    assert {s["step"]: (s["jobs"], s["ran"]) for s in steps if s.get("worker_s")} == {
        "demo_layers": (5, 5), "demo_grabcut": (1, 1), "demo_ablations_minmax": (6, 6)}
    assert any(s["step"].startswith("experiments (2 worker processes, ") for s in steps)


def test_a_failing_job_in_a_worker_stops_the_demo(tiny_synthetic, tmp_path, capsys):
    results = tmp_path / "results"
    overrides = [f"paths.results={results}", "dataset.limit=4", "progress=false", "method.layer=features.99"]
    planned = demo.plan(["demo_layers"], overrides)
    assert demo.run_plan(planned, overrides, workers=2) == 1
    err = capsys.readouterr().err
    assert "demo_layers: job toy_vgg/grad_cam@features.99/synthetic_val/localization failed" in err
    assert "method.layer" in err and not list(results.glob("runs/**/summary.json"))


def test_demo_arguments():
    assert demo.split_args(["--full", "--workers", "3", "a=1"]) == (True, 3, ["a=1"])
    assert demo.split_args(["--workers=1", "b=2"]) == (False, 1, ["b=2"])
    for bad in (["--workers", "0"], ["--workers"], ["--workers=x"]):
        with pytest.raises(SystemExit, match="expected a positive integer"):
            demo.split_args(bad)


def _times(tmp_path, **change):
    data = {"date": "2026-12-07T16:00:00+00:00", "cpus": 2, "load_avg_start": 0.5, "load_avg_end": 1.25,
            "wall_s": 200.0, "git": {"commit": "abcdef0123", "dirty": False}, "full": True, "failed": False,
            "steps": [{"step": "embedded data (generated or checked)", "wall_s": 20.0, "cpu_s": 18.5},
                      {"step": "demo", "jobs": 14, "ran": 14, "wall_s": 95.4, "cpu_s": 150.0},
                      {"step": "tables", "wall_s": 84.6, "cpu_s": 3.0}]}
    data.update(change)
    path = tmp_path / "demo_times.json"
    path.write_text(json.dumps(data))
    return path


def test_only_a_complete_fresh_demo_is_recorded(tmp_path):
    dest = tmp_path / "recorded" / "demo_times.json"
    with pytest.raises(ValueError, match="'full'/'failed'"):
        times.record(_times(tmp_path, full=False), dest)
    with pytest.raises(ValueError, match="'full'/'failed'"):
        times.record(_times(tmp_path, failed=True), dest)
    partial = [{"step": "demo", "jobs": 14, "ran": 3, "wall_s": 9.0, "cpu_s": 9.0}]
    with pytest.raises(ValueError, match=r"experiments \['demo'\] did not run every job"):
        times.record(_times(tmp_path, steps=partial), dest)
    assert not dest.exists()
    assert times.record(_times(tmp_path), dest) == dest and json.loads(dest.read_text())["wall_s"] == 200.0


def test_the_docs_block_is_rendered_from_the_record(tmp_path):
    block = times.render_block(_times(tmp_path))
    assert "| `demo` (14 jobs) | 1 min 35 s | 2 min 30 s |" in block and "| tables | 1 min 25 s | 3 s |" in block
    assert "load average 0.5 at the start, 1.25 at the end" in block and "commit abcdef0" in block
    assert block.endswith("3 min 20 s in all.\n")
    text = "before\n<!-- demo-times -->\nold\n<!-- /demo-times -->\nafter\n"
    assert times.render(text, _times(tmp_path)) == text.replace("old\n", block)
    assert "No demo timing is recorded yet" in times.render_block(tmp_path / "missing.json")
    doc = times.DOC.read_text()  # the committed page is what the committed record renders
    assert times.BLOCK.search(doc) and times.render(doc) == doc
