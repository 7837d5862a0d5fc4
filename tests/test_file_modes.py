"""Files the suite writes follow the process umask (0644 under umask 022), not mkstemp's 0600 (issue 18)."""

import os
import stat
from pathlib import Path

import pytest

from benchmark.io import atomic_write_bytes, current_umask
from benchmark.report.tables import collect, write_table
from benchmark.runs.store import RunStore, write_json


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_writes_follow_the_umask(tmp_path, umask_022):
    assert current_umask() == 0o022
    atomic_write_bytes(tmp_path / "a.bin", b"x")
    atomic_write_bytes(tmp_path / "a.bin", b"y")  # replaced: still the umask's mode
    assert _mode(tmp_path / "a.bin") == 0o644
    os.umask(0o077)
    atomic_write_bytes(tmp_path / "private.bin", b"x")
    assert _mode(tmp_path / "private.bin") == 0o600


def test_run_files_and_tables_are_readable_by_others(tmp_path, umask_022):
    store = RunStore(tmp_path / "runs/e/m/grad_cam/d/localization-0")
    store.start({"experiment_name": "e"}, "h", force=False)
    store.write_part([{"image_id": "a", "class_id": 0, "iou": 0.5}])
    store.finalize({"config": {"experiment_name": "e"}, "model": "m", "method": "grad_cam", "dataset": "d",
                    "metric": "localization", "status": "finished", "metrics": {"mean_iou": 0.5}})
    write_json(tmp_path / "manifest_meta.json", {"a": 1})
    written = write_table(collect(tmp_path), tmp_path / "tables", "t")
    files = [*store.part_files(), store.dir / "records.parquet", store.dir / "summary.json",
             store.dir / "run_config.json", tmp_path / "manifest_meta.json", *written]
    assert {str(p): oct(_mode(p)) for p in files} == {str(p): oct(0o644) for p in files}
