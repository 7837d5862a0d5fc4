"""A run folder holds one run's files: stale temporary files go on the next run, ``force`` leaves no
output of the run it replaces, and the loser of the run-folder lock writes nothing into the winner's log."""

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import benchmark.run  # noqa: F401  (schemas and resolvers)
from benchmark.models.base import CONF_DIR
from benchmark.runs.identity import run_dir_for
from benchmark.runs.store import RunStore

REPO = Path(__file__).resolve().parents[1]


def _finished_folder(run: Path) -> RunStore:
    store = RunStore(run)
    store.start({"seed": 0}, "hash-a", force=False)
    store.write_part([{"image_id": "a", "class_id": 1, "error": None}])
    store.finalize({"config_hash": "hash-a", "status": "finished"})
    for name in ("timing.json", "pointing_per_class.csv", "pointing_modified_curve.png"):
        (run / name).write_text("old")
    return store


def test_stale_temporary_files_are_removed_on_the_next_run(tmp_path):
    run = tmp_path / "run"
    store = RunStore(run)
    store.start({}, "hash-a", force=False)
    stale = [run / ".summary.json.k2j3.tmp", run / "parts" / ".part-000000.parquet.x9.tmp"]
    for path in stale:
        path.write_bytes(b"half")
    with store.lock():
        store.start({}, "hash-a", force=False)
    assert not any(p.exists() for p in stale)


def test_force_removes_the_outputs_of_the_run_it_replaces(tmp_path):
    run = tmp_path / "run"
    store = _finished_folder(run)
    store.start({"seed": 0}, "hash-a", force=True)  # a forced rerun, then killed before it writes anything
    assert sorted(p.name for p in run.iterdir()) == ["parts", "run_config.json"]
    assert store.part_files() == []


def test_outputs_without_a_summary_are_stale(tmp_path):
    """Killed after removing the summary (of a forced rerun): the next start removes the rest."""
    run = tmp_path / "run"
    store = _finished_folder(run)
    (run / "summary.json").unlink()
    store.start({"seed": 0}, "hash-a", force=False)
    assert not any((run / n).exists() for n in ("timing.json", "pointing_per_class.csv", "records.parquet",
                                                 "pointing_modified_curve.png"))
    assert len(store.part_files()) == 1  # the parts stay for the resume


def test_the_lock_loser_writes_nothing_into_the_winners_log(tiny_synthetic, tmp_path):
    overrides = ["model=toy_gap", "dataset.limit=2", "batch_size=2", "progress=false",
                 f"paths.results={tmp_path / 'results'}"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        config = OmegaConf.to_container(compose(config_name="config", overrides=overrides), resolve=True)
    run = run_dir_for(config)
    run.mkdir(parents=True)
    log = run / "run.log"
    log.write_text("the winner's line\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "BENCHMARK_CACHE": str(tiny_synthetic), "OMP_NUM_THREADS": "1"}
    with RunStore(run).lock():  # the winner holds the folder
        out = subprocess.run([sys.executable, "-m", "benchmark", *overrides], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "another process" in out.stderr, out.stderr[-2000:]
    assert log.read_text() == "the winner's line\n"
    assert not (run / "summary.json").exists()
