"""The demo's step times: measured by every demo, recorded from a fresh one, rendered into docs/demo.md.

    python -m benchmark.demo.times --record results/demo_times.json   # copy a fresh full demo's times
    python -m benchmark.demo.times --write                            # rewrite docs/demo.md's block
    python -m benchmark.demo.times                                    # check: exit 1 if the block differs

``python -m benchmark.demo`` writes ``<results>/demo_times.json``: each step's wall and CPU seconds
(the experiments with how many of their jobs ran; where the jobs ran in worker processes, an
experiment's times are its jobs' sums, marked ``worker_s``, and one more step is their span), the
load average at the start and the end, the CPU count, date and commit. ``--record`` accepts only a ``--full`` demo (``make demo``) in which every
job of every experiment ran and nothing failed, and copies it to ``results/recorded/demo_times.json``;
the ``<!-- demo-times -->`` block of docs/demo.md is rendered from that file only.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RECORDED = REPO / "results" / "recorded" / "demo_times.json"
DOC = REPO / "docs" / "demo.md"
BLOCK = re.compile(r"(<!-- demo-times -->\n)(.*?)(<!-- /demo-times -->)", re.S)


class Clock:
    """Collects timed steps and the machine's load around them."""

    def __init__(self):
        self.steps: list[dict] = []
        self.start, self.load_start = time.perf_counter(), os.getloadavg()[0]
        self.date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")

    def total(self) -> float:
        return time.perf_counter() - self.start

    def write(self, path: Path, **facts) -> Path:
        """``path`` (JSON): the steps and the run's facts, ``facts`` added."""
        from benchmark.runs.provenance import git_state

        data = {"date": self.date, "cpus": os.cpu_count(), "load_avg_start": round(self.load_start, 2),
                "load_avg_end": round(os.getloadavg()[0], 2), "wall_s": round(self.total(), 1),
                "git": git_state(), **facts, "steps": self.steps}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n")
        return path


@contextlib.contextmanager
def step(clock: Clock | None, name: str, **facts):
    """Time the block as step ``name`` of ``clock`` (nothing when ``clock`` is None)."""
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        if clock is not None:
            clock.steps.append({"step": name, **facts, "wall_s": round(time.perf_counter() - wall, 1),
                                "cpu_s": round(time.process_time() - cpu, 1)})


def record(source: Path, dest: Path = RECORDED) -> Path:
    """Copy a fresh full demo's times to ``dest``; an error naming the field where it is not one."""
    data = json.loads(Path(source).read_text())
    if not data.get("full") or data.get("failed"):
        raise ValueError(f"{source}: fields 'full'/'failed' are {data.get('full')!r}/{data.get('failed')!r}; "
                         "expected true/false (a complete `make demo`)")
    partial = [s["step"] for s in data.get("steps", []) if "jobs" in s and s.get("ran") != s["jobs"]]
    ran = [s for s in data.get("steps", []) if "jobs" in s]
    if partial or not ran:
        raise ValueError(f"{source}: field 'steps': experiments {partial or 'none'} did not run every job; "
                         "expected a demo into a fresh results folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, dest)
    return dest


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def render_block(recorded: Path = RECORDED) -> str:
    """The block's text: the recorded steps' wall and CPU times and the run's facts."""
    if not recorded.is_file():
        return ("No demo timing is recorded yet: after a `make demo` into a fresh results folder, "
                "`python -m benchmark.demo.times --record results/demo_times.json`, then `--write`.\n")
    data = json.loads(recorded.read_text())
    lines = ["| step | wall time | CPU time |", "|---|---|---|"]
    in_workers = any(s.get("worker_s") for s in data["steps"])
    for s in data["steps"]:
        name = f"`{s['step']}` ({s['jobs']} job{'' if s['jobs'] == 1 else 's'})" if "jobs" in s else s["step"]
        mark = " *" if s.get("worker_s") else ""
        lines.append(f"| {name} | {_duration(s['wall_s'])}{mark} | {_duration(s['cpu_s'])} |")
    commit = ((data.get("git") or {}).get("commit") or "unknown")[:7]
    note = ("\n\n\\* The jobs ran side by side in worker processes: an experiment's times are the sums of its "
            "jobs' times in their workers, and the `experiments` row is the span of them all." if in_workers else "")
    return (f"Recorded by `make demo` ({data['date'][:10]}, commit {commit}, fresh results folder, "
            f"{data['cpus']} CPU cores; load average {data['load_avg_start']} at the start, "
            f"{data['load_avg_end']} at the end), from `results/recorded/demo_times.json`:\n\n"
            + "\n".join(lines) + note + f"\n\n{_duration(data['wall_s'])} in all.\n")


def render(text: str, recorded: Path = RECORDED) -> str:
    """``text`` with its ``<!-- demo-times -->`` block rendered from ``recorded``."""
    return BLOCK.sub(lambda m: f"{m.group(1)}{render_block(recorded)}{m.group(3)}", text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.demo.times", description=__doc__.split("\n")[0])
    parser.add_argument("--record", type=Path, help="a full demo's demo_times.json to record")
    parser.add_argument("--write", action="store_true", help="rewrite docs/demo.md's block from the record")
    args = parser.parse_args(argv)
    if args.record:
        try:
            print(f"recorded {record(args.record)}")
        except (OSError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    text = DOC.read_text()
    if args.write or args.record:
        DOC.write_text(render(text))
        print(f"rewrote {DOC}")
        return 0
    if render(text) != text or not BLOCK.search(text):
        print(f"{DOC}: the demo-times block differs from {RECORDED}; run python -m benchmark.demo.times --write",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
