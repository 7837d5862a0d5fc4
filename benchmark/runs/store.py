"""Per-sample records written in parts as a run goes, the final ``records.parquet`` and ``summary.json``.

Every file is written to a temporary name and renamed, so a reader never sees a torn part: a part
either exists complete or not at all. A restarted run reads the complete parts, skips the images
they hold, and produces the same final records as an uninterrupted run (rows are sorted by
``image_id, class_id`` at the end, whatever the order the parts were written in).

One process at a time writes a run folder: ``RunStore.lock`` holds an exclusive ``flock`` on
``<run>/.run.lock`` for the whole run, and a second process on the same folder (the same job
launched twice, two shards given the same index) stops at once with a message naming the folder,
instead of both numbering their parts from the same count and duplicating records. The kernel
drops the lock when its process dies, so a killed or requeued job never finds a stale lock.
Different shards write different folders (``shard-<i>-of-<n>``) and never share a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from benchmark.io import atomic_write_bytes

SUMMARY = "summary.json"
RECORDS = "records.parquet"
PARTS = "parts"
RUN_CONFIG = "run_config.json"
LOCK = ".run.lock"
TIMING = "timing.json"
STALE_OUTPUTS = (RECORDS, TIMING)  # with ARTIFACT_SUFFIXES: what a finished run writes beside its summary
ARTIFACT_SUFFIXES = (".csv", ".png", ".pdf", ".svg")  # a metric's tables and figures (``write_artifacts``)
FAILED = "failed"  # a summary's status when nothing could be scored; such a run is not finished

try:
    import fcntl
except ImportError:  # not POSIX: no lock (one process per run folder is then the user's to keep)
    fcntl = None


class RunFolderBusy(RuntimeError):
    """Another process is writing the same run folder."""


class Interrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C or SIGTERM after writing what it had scored; the message says how much
    was kept and that the same command resumes."""


class PartWriter:
    """Buffers record rows and writes a part every ``size`` rows or ``seconds`` seconds (whichever
    comes first), so an interrupted run keeps all but the last ``seconds`` of its work."""

    def __init__(self, store: "RunStore", size: int = 512, seconds: float | None = 60.0, clock=time.monotonic):
        self.store, self.size, self.seconds, self.clock = store, max(int(size), 1), seconds, clock
        self.rows: list[dict] = []
        self.since = clock()

    def add(self, rows: list[dict]) -> None:
        self.rows.extend(rows)
        due = self.seconds is not None and self.seconds > 0 and self.clock() - self.since >= self.seconds
        if len(self.rows) >= self.size or (self.rows and due):
            self.flush()

    def flush(self) -> None:
        self.store.write_part(self.rows)
        self.rows = []
        self.since = self.clock()


TAIL = ("error", "model", "method", "dataset")  # set by the loop on every row, after the metric's columns


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Records with one column order and one Arrow type per column, however rows were split.

    A frame built from rows takes its column order from the first row; an error row (``image_id,
    class_id, error, ...``) first would put ``error`` before the metric's columns. The loop's own
    columns (``TAIL``) go last, as in a frame whose first row was scored; text columns become ``str``.
    """
    tail = [c for c in TAIL if c in frame.columns]
    if tail:
        frame = frame[[c for c in frame.columns if c not in TAIL] + tail]
    return text_columns_as_str(frame)


def text_columns_as_str(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns holding only text (and missing values) as pandas' ``str`` dtype.

    pandas reads a text column back as ``str`` (Arrow ``large_string``) but builds an ``object``
    column (Arrow ``string``) from rows, or from parts of which some lack the text: the same values
    would get another schema, and other bytes, depending on how the rows were split into parts.
    """
    out = frame
    for name in frame.columns:
        column = frame[name]
        if column.dtype == object and column.notna().any() and all(isinstance(v, str) for v in column.dropna()):
            out = out.assign(**{name: column.astype("str")})
    return out


def frame_bytes(frame: pd.DataFrame) -> bytes:
    """Parquet bytes of a frame, deterministic for identical data (``canonical``: one schema whatever the parts)."""
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(canonical(frame), preserve_index=False), sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def write_json(path: Path, data: dict) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=True, default=str) + "\n").encode())


class RunStore:
    """The files of one run folder."""

    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir)
        self.parts = self.dir / PARTS

    @contextlib.contextmanager
    def lock(self):
        """Hold the run folder's exclusive lock; ``RunFolderBusy`` if another process holds it."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                    raise RunFolderBusy(
                        f"{self.dir}: another process (pid {holder}) is writing this run folder; two jobs with "
                        f"the same configuration (or two shards with the same dataset.shard) must not run at once. "
                        f"Wait for it, or give each shard its own dataset.shard") from None
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield self
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def finished(self, digest: str) -> dict | None:
        """The summary if the run finished with this config, else ``None`` (also for a ``failed`` one)."""
        path = self.dir / SUMMARY
        if not path.is_file():
            return None
        summary = json.loads(path.read_text())
        return summary if summary.get("config_hash") == digest and summary.get("status") != FAILED else None

    def holds_results(self) -> bool:
        """Whether the folder holds a record part, the records or a summary (a run got that far)."""
        return bool(self.part_files()) or (self.dir / RECORDS).is_file() or (self.dir / SUMMARY).is_file()

    def start(self, config: dict, digest: str, force: bool) -> None:
        """Prepare the folder. ``force`` discards this configuration's own results only: results of
        another configuration are never removed (a run of another config that stopped before writing
        any result is no run: its marker is replaced)."""
        marker = self.dir / RUN_CONFIG
        other = json.loads(marker.read_text()).get("config_hash") if marker.is_file() else None
        if other not in (None, digest) and self.holds_results():
            raise RuntimeError(
                f"{self.dir}: holds the results of another configuration (config hash {other}; this run's is "
                f"{digest}), written by an older run-folder layout; they are kept. Run with another "
                f"experiment_name or paths.results, or move that folder where it belongs with "
                f"`python -m benchmark.runs.migrate --results <results root>`")
        if (force or self.failed()) and self.dir.exists():  # a failed run scored nothing: it starts again
            for name in (SUMMARY, PARTS, RECORDS, RUN_CONFIG):  # the summary first: the folder is unfinished
                target = self.dir / name
                shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
        self.remove_stale()
        self.parts.mkdir(parents=True, exist_ok=True)
        write_json(marker, {"config_hash": digest, "config": config})

    def discard_if_empty(self, runs_root: Path | None = None) -> None:
        """After a run stopped before writing any result: remove the folder's run marker and empty
        ``parts/``, the folder when nothing but the lock is left, and the folders above it left empty
        up to (not including) ``runs_root``."""
        if self.holds_results():
            return
        (self.dir / RUN_CONFIG).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.parts.rmdir()
        if {p.name for p in self.dir.iterdir()} <= {LOCK}:
            (self.dir / LOCK).unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self.dir.rmdir()
        root = Path(runs_root).resolve() if runs_root is not None else None
        for parent in self.dir.parents if root is not None and not self.dir.exists() else ():
            if parent.resolve() == root or root not in parent.resolve().parents:
                break
            try:
                parent.rmdir()  # only an empty folder
            except OSError:
                break

    def remove_stale(self) -> None:
        """Remove what no run of this folder will read: temporary files of interrupted writes
        (``.<name>.*.tmp``) and, while there is no summary (the mark of a finished run), the outputs a
        finished run writes after its records (``STALE_OUTPUTS``, figures and tables), so files of
        an older run never sit beside new parts. Called with the folder's lock held."""
        if not self.dir.is_dir():
            return
        for tmp in [*self.dir.glob(".*.tmp"), *self.parts.glob(".*.tmp")]:
            tmp.unlink(missing_ok=True)
        if not (self.dir / SUMMARY).is_file():
            for path in self.dir.iterdir():
                if path.is_file() and (path.name in STALE_OUTPUTS or path.suffix in ARTIFACT_SUFFIXES):
                    path.unlink(missing_ok=True)

    def failed(self) -> bool:
        """Whether the folder's summary says the run failed (every image failed: nothing was scored)."""
        try:
            return json.loads((self.dir / SUMMARY).read_text()).get("status") == FAILED
        except (OSError, ValueError, AttributeError):
            return False

    def part_files(self) -> list[Path]:
        return sorted(self.parts.glob("part-*.parquet")) if self.parts.is_dir() else []

    def read_parts(self) -> pd.DataFrame:
        files = self.part_files()
        if not files:
            return pd.DataFrame()
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)

    def done_ids(self) -> set[str]:
        frame = self.read_parts()
        return set(frame["image_id"]) if len(frame) else set()

    def write_part(self, rows: list[dict]) -> Path | None:
        if not rows:
            return None
        index = len(self.part_files())
        path = self.parts / f"part-{index:06d}.parquet"
        atomic_write_bytes(path, frame_bytes(pd.DataFrame(rows)))
        return path

    def finalize(self, summary: dict) -> pd.DataFrame:
        """Merge parts into sorted ``records.parquet`` and write ``summary.json``; returns the records."""
        frame = self.read_parts()
        if len(frame):
            frame = frame.sort_values(["image_id", "class_id"], kind="stable").reset_index(drop=True)
        atomic_write_bytes(self.dir / RECORDS, frame_bytes(frame))
        write_json(self.dir / SUMMARY, summary)
        return frame

    def load(self) -> tuple[pd.DataFrame, dict]:
        return pd.read_parquet(self.dir / RECORDS), json.loads((self.dir / SUMMARY).read_text())
