"""The demo's unfinished jobs run side by side in worker processes, each with its share of the cores.

The toy models of the demo keep two cores busy only part of the time in one process: their
convolutions are small, and a job's host phase (boxes at the original size, GrabCut, MaxBoxAcc's
threshold sweep) runs on one core. ``run_parallel`` starts ``workers`` processes once (``spawn``:
nothing of this process's torch state is inherited), gives each ``cores // workers`` torch threads,
and hands them the jobs of every experiment, the longest expected first (from the recorded demo
times, ``results/recorded/demo_times.json``), so that the last job to end is a short one.

The records do not depend on it: each job runs exactly as ``runner.run_job`` runs it in this process,
seeds its own run and writes its own run folder; the thread count changes floats by rounding only
(``tests/test_invariance.py``: discrete outcomes identical, floats within 1e-6 of their scale).
The first failing job stops the demo: jobs not started are cancelled, running ones finish. Ctrl-C
(or SIGTERM) stops every worker's job as an interrupt stops ``python -m benchmark``: the rows scored
are kept in record parts and the next demo resumes from them.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from benchmark.demo.jobs import Job

_RUNNING = False  # in a worker: whether a job is running (an interrupt then stops it, else the worker)


def default_workers(cpus: int | None = None) -> int:
    """Worker processes for this machine: one per core, at most 4 (each then gets ``cores // workers`` threads)."""
    return max(1, min(4, cpus or os.cpu_count() or 1))


def _on_signal(signum, frame):
    if _RUNNING:
        raise KeyboardInterrupt(f"signal {signum}")
    os._exit(130)


def _init(threads: int) -> None:
    """Worker start: torch's and OpenCV's thread counts, the demo's log format, interrupts by SIGTERM from the demo."""
    import torch

    from benchmark.demo.runner import configure_logging

    torch.set_num_threads(threads)
    try:  # GrabCut and contour extraction: OpenCV's own pool would otherwise take every core in every worker
        import cv2

        cv2.setNumThreads(threads)
    except ImportError:
        pass
    configure_logging()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the demo, which stops the workers
    signal.signal(signal.SIGTERM, _on_signal)


def _run(config: dict, argv: list[str]) -> dict:
    """One job in a worker: its outcome, wall and CPU seconds, or the error that stopped it."""
    global _RUNNING
    from benchmark.demo.runner import outcome, run_job

    wall, cpu = time.perf_counter(), time.process_time()
    _RUNNING = True
    try:
        result = {"outcome": outcome(run_job(config, argv))}
    except BaseException as err:  # noqa: BLE001  (reported by the demo; run_job logged its traceback)
        result = {"error": f"{type(err).__name__}: {err}", "interrupted": isinstance(err, KeyboardInterrupt)}
    finally:
        _RUNNING = False
    return {**result, "wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}


def expected_seconds(recorded: Path) -> dict[str, float]:
    """Seconds per job of each experiment in the recorded demo times (empty where none are recorded)."""
    try:
        steps = json.loads(Path(recorded).read_text())["steps"]
    except (OSError, ValueError, KeyError):
        return {}
    return {s["step"]: s["wall_s"] / s["jobs"] for s in steps if s.get("jobs")}


def run_parallel(jobs: dict[str, list[Job]], argv: list[str], workers: int, clock=None) -> int:
    """Run every unfinished job of ``jobs`` in ``workers`` processes; 1 at the first failing job (no
    job starts after it), 130 when interrupted, else 0. ``clock`` gets one step per experiment (its jobs'
    wall and CPU seconds in their workers, ``worker_s``) and the span of them all."""
    from benchmark.demo.runner import job_label
    from benchmark.demo.times import RECORDED

    cost = expected_seconds(RECORDED)
    todo = [(name, job) for name, sweep in jobs.items() for job in sweep if not job.finished]
    todo.sort(key=lambda item: -cost.get(item[0], 0.0))  # stable: the demo's order among equals
    threads = max(1, (os.cpu_count() or 1) // workers)
    per_experiment = {name: {"jobs": len(sweep), "ran": 0, "wall_s": 0.0, "cpu_s": 0.0}
                      for name, sweep in jobs.items() if any(not job.finished for job in sweep)}
    each = f"{threads} thread{'' if threads == 1 else 's'} each"
    print(f"running {len(todo)} job(s) in {workers} worker processes, {each}", flush=True)
    start, code = time.perf_counter(), 0
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init,
                               initargs=(threads,))
    try:
        running = {pool.submit(_run, job.config, argv): (name, job_label(job.config)) for name, job in todo}
        done_count = 0
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                name, label = running.pop(future)
                if future.cancelled():
                    continue
                result = future.result()
                done_count += 1
                step = per_experiment[name]
                step["ran"] += 1
                step["wall_s"] += result["wall_s"]
                step["cpu_s"] += result["cpu_s"]
                if "error" in result:
                    print(f"{name}: job {label} failed: {result['error']}", file=sys.stderr, flush=True)
                    code = code or (130 if result.get("interrupted") else 1)
                    for other in running:
                        other.cancel()  # jobs not started yet never start; running ones finish
                else:
                    print(f"[{done_count}/{len(todo)}] {name} {label}: {result['outcome']} in "
                          f"{result['wall_s']:.1f} s", flush=True)
    except KeyboardInterrupt:
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            try:
                os.kill(process.pid, signal.SIGTERM)  # a running job stops as an interrupt stops it
            except (OSError, TypeError):
                pass
        print("interrupted; rerun the same command to resume (the scored rows are kept in record parts)",
              file=sys.stderr, flush=True)
        return 130
    finally:  # after an interrupt too: waits for the stopped workers
        pool.shutdown(wait=True, cancel_futures=True)
    if clock is not None:
        for name, step in per_experiment.items():
            clock.steps.append({"step": name, **{k: round(v, 1) if isinstance(v, float) else v
                                                 for k, v in step.items()}, "worker_s": True})
        clock.steps.append({"step": f"experiments ({workers} worker processes, {each})",
                            "wall_s": round(time.perf_counter() - start, 1),
                            "cpu_s": round(sum(s["cpu_s"] for s in per_experiment.values()), 1)})
    return code
