"""Faults while writing results: shards writing at once, a full disk, a kill in the middle of a write.

* Two shards of one job run as two real processes (the Hydra entry, ``benchmark.run.main``) into
  one results root, their part writes forced to alternate; both finish, every part is valid
  Parquet, and the merged run equals an unsharded run. Two processes on the *same* run folder are
  refused by the folder's lock.
* A full disk (``os.fsync`` of the temporary file raising ENOSPC/EDQUOT, as a real full disk does
  on write, flush or fsync) stops the run with a ``DiskFullError`` naming the file and saying the
  disk is full; no temporary file is left, earlier parts / records / summary are unchanged, and a
  rerun after space is freed finishes with the records of an uninterrupted run.
* SIGKILL while a file is half written (a real process, its write slowed down) leaves the final
  name absent or with its old content, never torn. (``test_resume.py`` checks that a run resumes
  past the temporary file such a kill leaves; here the kill really happens inside the write.)
"""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import benchmark.run  # noqa: F401  (schemas and resolvers)
from benchmark.evaluate import evaluate
from benchmark.io import DiskFullError
from benchmark.models.base import CONF_DIR
from benchmark.runs import merge
from benchmark.runs.identity import run_dir_for
from benchmark.runs.store import RunFolderBusy, RunStore, frame_bytes, write_json

REPO = Path(__file__).resolve().parents[1]
needs_proc = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names a descriptor's file through /proc")


def _config(overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    return OmegaConf.to_container(cfg, resolve=True)


def _temp_files(root: Path) -> list[Path]:
    return [p for p in Path(root).rglob("*.tmp")]


# --- two shards writing at once ------------------------------------------------------------------

SHARD_DRIVER = r'''
"""One shard through the Hydra entry; its part writes alternate with the other shard's."""
import sys, time
from pathlib import Path
from benchmark.runs.store import RunStore
import benchmark.run

other_parts, ready, shard = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
real_write_part = RunStore.write_part


def lockstep(self, rows):
    # write part k only once the other shard has written k parts: the writes interleave
    mine, deadline = len(self.part_files()), time.monotonic() + 60
    while len(list(other_parts.glob("part-*.parquet"))) < mine and time.monotonic() < deadline:
        time.sleep(0.005)
    return real_write_part(self, rows)


RunStore.write_part = lockstep
(ready / shard).touch()
deadline = time.monotonic() + 60
while len(list(ready.iterdir())) < 2 and time.monotonic() < deadline:  # start together
    time.sleep(0.005)
sys.argv = ["benchmark", *sys.argv[4:]]
benchmark.run.main()
'''


def test_two_shards_writing_at_once_do_not_clash(tiny_synthetic, tmp_path):
    results, ready = tmp_path / "results", tmp_path / "ready"
    ready.mkdir()
    driver = tmp_path / "shard_driver.py"
    driver.write_text(SHARD_DRIVER)
    common = ["model=toy_gap", "method=grad_cam", "batch_size=1", "part_size=2", "progress=false",
              "experiment_name=faults"]
    job = [*common, "dataset.num_shards=2", "dataset.limit=6", f"paths.results={results}"]
    shard_dirs = [run_dir_for(_config([*job, f"dataset.shard={i}"])) for i in range(2)]
    job_dir = shard_dirs[0].parent
    env = {**os.environ, "BENCHMARK_CACHE": str(tiny_synthetic), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, str(driver), str(shard_dirs[1 - i] / "parts"), str(ready), str(i),
                               *job, f"dataset.shard={i}"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for i in range(2)]
    # meanwhile, in this process: the unsharded run over the same 12 images (6 per shard, strided)
    single = evaluate(_config([*common, "dataset.limit=12", f"paths.results={tmp_path / 'single'}"]))
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out[-4000:]
    parts = {d.name: sorted((d / "parts").glob("part-*.parquet")) for d in shard_dirs}
    assert {name: len(files) for name, files in parts.items()} == {"shard-0-of-2": 3, "shard-1-of-2": 3}
    for files in parts.values():
        for path in files:
            table = pq.read_table(path)  # valid Parquet, whole
            assert table.num_rows == 2 and set(table.column("image_id").to_pylist()) <= set(
                pd.read_parquet(path.parents[1] / "records.parquet")["image_id"])
    shard_ids = [set(pd.read_parquet(d / "records.parquet")["image_id"]) for d in shard_dirs]
    assert len(shard_ids[0]) == len(shard_ids[1]) == 6 and not shard_ids[0] & shard_ids[1]
    for d in shard_dirs:
        assert json.loads((d / "summary.json").read_text())["status"] == "finished"
    assert _temp_files(results) == []

    (merged,) = merge.merge_all(results, strict=True)
    reference = Path(single["run_dir"])
    assert (merged / "records.parquet").read_bytes() == (reference / "records.parquet").read_bytes()
    ours = json.loads((merged / "summary.json").read_text())
    assert ours["metrics"] == single["metrics"] and ours["config_hash"] == single["config_hash"]
    assert ours["counts"] == single["counts"] == {"images": 12, "records": 12}


def test_second_process_on_the_same_run_folder_is_refused(tiny_synthetic, tmp_path):
    config = _config(["model=toy_gap", "method=grad_cam", "dataset.limit=2", "progress=false",
                      f"paths.results={tmp_path}"])
    run_dir = run_dir_for(config)
    with RunStore(run_dir).lock():  # flock conflicts between two open files, as between two processes
        with pytest.raises(RunFolderBusy) as err:
            evaluate(config)
        assert str(run_dir) in str(err.value) and f"pid {os.getpid()}" in str(err.value)
        assert "dataset.shard" in str(err.value)
        assert sorted(p.name for p in run_dir.iterdir()) == [".run.lock"]  # nothing written, nothing wiped
    summary = evaluate(config)  # the lock is released with its holder
    assert summary["status"] == "finished" and summary["counts"] == {"images": 2, "records": 2}


# --- a full disk ---------------------------------------------------------------------------------

def _full_disk_at(monkeypatch, name: str, code: int = errno.ENOSPC) -> list[str]:
    """Make the next ``os.fsync`` of a temporary file for ``name`` fail as a full disk does.

    ``atomic_write_bytes`` has by then written the data into ``.<name>.<random>.tmp``; the failure
    must remove it. Returns the list of temporary files that failed (filled in as they do)."""
    real_fsync, hits = os.fsync, []

    def fsync(fd):
        target = os.readlink(f"/proc/self/fd/{fd}")
        if Path(target).name.startswith(f".{name}.") and not hits:
            hits.append(target)
            assert Path(target).stat().st_size > 0  # half-way: the temporary file holds data
            raise OSError(code, os.strerror(code))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return hits


@needs_proc
def test_full_disk_while_writing_a_part_keeps_earlier_parts(tiny_synthetic, tmp_path, monkeypatch):
    job = ["model=toy_gap", "method=grad_cam", "dataset.limit=6", "batch_size=1", "part_size=2", "progress=false"]
    run_dir = run_dir_for(_config(job + [f"paths.results={tmp_path / 'full'}"]))
    hits = _full_disk_at(monkeypatch, "part-000001.parquet")
    with pytest.raises(DiskFullError) as err:
        evaluate(_config(job + [f"paths.results={tmp_path / 'full'}"]))
    message = str(err.value)
    assert str(run_dir / "parts" / "part-000001.parquet") in message
    assert "No space left on device" in message and "disk is full" in message
    assert isinstance(err.value, OSError) and err.value.errno == errno.ENOSPC
    assert isinstance(err.value.__cause__, OSError) and err.value.__cause__.errno == errno.ENOSPC
    assert len(hits) == 1 and not Path(hits[0]).exists()
    assert _temp_files(run_dir) == []
    assert [p.name for p in RunStore(run_dir).part_files()] == ["part-000000.parquet"]
    first = pd.read_parquet(run_dir / "parts" / "part-000000.parquet")  # intact and readable
    assert len(first) == 2 and json.loads((run_dir / "run_config.json").read_text())["config_hash"]
    assert not (run_dir / "summary.json").exists() and not (run_dir / "records.parquet").exists()

    monkeypatch.undo()  # space freed: the rerun resumes from the kept part
    resumed = evaluate(_config(job + [f"paths.results={tmp_path / 'full'}"]))
    clean = evaluate(_config(job + [f"paths.results={tmp_path / 'clean'}"]))
    assert json.loads((run_dir / "timing.json").read_text())["images_resumed"] == 2
    assert (run_dir / "records.parquet").read_bytes() == (Path(clean["run_dir"]) / "records.parquet").read_bytes()
    assert resumed["metrics"] == clean["metrics"]


@needs_proc
@pytest.mark.parametrize(("name", "code"), [("summary.json", errno.ENOSPC), ("records.parquet", errno.EDQUOT)])
def test_full_disk_while_rewriting_records_or_summary_keeps_the_old_file(tmp_path, monkeypatch, name, code):
    store = RunStore(tmp_path / "run")
    store.start({"x": 1}, "abc", force=False)
    store.write_part([{"image_id": "a", "class_id": 1, "score": 0.5}])
    store.finalize({"status": "finished", "config_hash": "abc", "n": 1})
    before = {p.name: p.read_bytes() for p in store.dir.rglob("*") if p.is_file()}
    store.write_part([{"image_id": "b", "class_id": 2, "score": 0.25}])  # new records, a new summary
    before_parts = {p.name: p.read_bytes() for p in store.part_files()}
    hits = _full_disk_at(monkeypatch, name, code)
    with pytest.raises(DiskFullError, match=rf"{name}: cannot write \d+ bytes: {os.strerror(code)} "
                                            r"\(the disk is full or the quota exceeded\)") as err:
        store.finalize({"status": "finished", "config_hash": "abc", "n": 2})
    assert err.value.errno == code and str(store.dir / name) in str(err.value)
    assert len(hits) == 1 and _temp_files(store.dir) == []
    assert (store.dir / name).read_bytes() == before[name]  # the previous version, whole
    records, summary = store.load()
    assert summary["n"] == 1 if name == "summary.json" else list(records["image_id"]) == ["a"]
    assert {p.name: p.read_bytes() for p in store.part_files()} == before_parts


def test_other_write_errors_are_not_called_a_full_disk(tmp_path, monkeypatch):
    def fsync(fd):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError) as err:
        write_json(tmp_path / "summary.json", {"a": 1})
    assert not isinstance(err.value, DiskFullError) and err.value.errno == errno.EIO
    assert list(tmp_path.iterdir()) == []  # no temporary file, no summary


# --- SIGKILL in the middle of a write ------------------------------------------------------------

SLOW_WRITER = r'''
"""Write one file through the real atomic write, stalling half-way through the data."""
import json, os, sys, time
from pathlib import Path
from benchmark.runs.store import RunStore, write_json

real_fdopen = os.fdopen


class Stalling:
    def __init__(self, handle):
        self.handle = handle

    def write(self, data):
        half = len(data) // 2
        self.handle.write(data[:half])
        self.handle.flush()
        print("HALF-WRITTEN", flush=True)
        time.sleep(120)  # killed here
        return self.handle.write(data[half:])

    def __getattr__(self, name):
        return getattr(self.handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.handle.__exit__(*exc)


os.fdopen = lambda fd, *args, **kwargs: Stalling(real_fdopen(fd, *args, **kwargs))
store, what = RunStore(Path(sys.argv[1])), sys.argv[2]
if what == "part":
    store.write_part([{"image_id": f"new{i}", "class_id": i, "score": float(i)} for i in range(500)])
else:
    write_json(store.dir / "summary.json", {"status": "finished", "version": 2, "pad": "x" * 100000})
'''


@pytest.mark.parametrize("what", ["part", "summary"])
def test_kill_during_a_write_leaves_the_old_file_or_none_never_a_torn_one(tmp_path, what):
    store = RunStore(tmp_path / "run")
    store.start({"x": 1}, "abc", force=False)
    store.write_part([{"image_id": "old", "class_id": 0, "score": 1.0}])
    write_json(store.dir / "summary.json", {"status": "finished", "version": 1})
    before = {p.relative_to(store.dir): p.read_bytes() for p in store.dir.rglob("*") if p.is_file()}
    script = tmp_path / "slow_writer.py"
    script.write_text(SLOW_WRITER)
    proc = subprocess.Popen([sys.executable, str(script), str(store.dir), what], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    line = proc.stdout.readline()
    assert line.strip() == "HALF-WRITTEN", line + proc.communicate(timeout=60)[0][-3000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    target = store.parts / "part-000001.parquet" if what == "part" else store.dir / "summary.json"
    (torn,) = _temp_files(store.dir)  # what the kill left: the half-written temporary file
    assert torn.parent == target.parent and torn.name.startswith(f".{target.name}.") and torn.stat().st_size > 0
    after = {p.relative_to(store.dir): p.read_bytes() for p in store.dir.rglob("*") if p.is_file() and p != torn}
    assert after == before  # every final name: absent (the new part) or its old content (the summary)
    assert not (store.parts / "part-000001.parquet").exists()
    assert [p.name for p in store.part_files()] == ["part-000000.parquet"]
    assert list(store.read_parts()["image_id"]) == ["old"]
    assert json.loads((store.dir / "summary.json").read_text()) == {"status": "finished", "version": 1}
    frame = store.finalize({"status": "finished", "version": 3})  # the next writer is not disturbed by it
    assert list(frame["image_id"]) == ["old"] and (store.dir / "records.parquet").read_bytes() == frame_bytes(frame)
