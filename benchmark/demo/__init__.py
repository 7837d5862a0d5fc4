"""``python -m benchmark.demo``: the demo's experiments in one command, each job run only when unfinished.

``make demo`` runs ``python -m benchmark.demo --full``. For every experiment the sweep is composed
once and its jobs' configs are assembled from it (``benchmark.demo.jobs``); the run store says which
jobs finished with their current configuration (``benchmark.runs.identity.job_state``), and only the
others run: side by side in ``--workers`` processes started once (default one per core, at most 4;
``benchmark.demo.pool``), or with ``--workers 1`` here, one after another (``benchmark.demo.runner``):
no process start and no Hydra composition per experiment or per job. The plan (jobs left per
experiment) is printed first, then each job with its metrics. Extra arguments are Hydra overrides passed to every experiment; with a
launcher among them (``hydra/launcher=slurm``) each experiment with unfinished jobs is launched as
Hydra's multirun instead, which sends its jobs to that launcher.

``--full`` adds the steps around the experiments, in this process too: the embedded data
(``data_prep.synthetic``), the shipped-weight check (``benchmark.training``), then the tables
(``benchmark.report``), the real-photo figure and the comparison with the golden tables. Each step's
wall and CPU time goes to ``<paths.results>/demo_times.json`` (``benchmark.demo.times``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from hydra import compose, initialize_config_dir

from benchmark.demo.jobs import expand, sweep_jobs, unfinished  # noqa: F401  (the public API)
from benchmark.demo.pool import default_workers, run_parallel
from benchmark.demo.runner import configure_logging, launch_sweep, names_launcher, run_jobs
from benchmark.models.base import CONF_DIR
from benchmark.runs.identity import register_hydra

EXPERIMENTS = ("demo", "demo_grabcut", "demo_ablations", "demo_ablations_minmax", "demo_cam_protocol", "demo_layers",
               "demo_pointing", "demo_pointing_torchray", "demo_pointing_modified", "demo_occlusion", "demo_faithfulness", "demo_sanity")


def plan(experiments, overrides: list[str]) -> dict:
    """``{experiment: its jobs (benchmark.demo.jobs.Job)}``, composed once per experiment."""
    register_hydra()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return {name: expand(name, overrides) for name in experiments}


def results_and_cache(overrides: list[str]) -> tuple[Path, Path]:
    """``paths.results`` and ``paths.cache`` as the overrides set them."""
    register_hydra()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        paths = compose("config", overrides=[o for o in overrides if o.lstrip("+").startswith("paths.")]).paths
        return Path(paths.results), Path(paths.cache)


def run_plan(jobs: dict, overrides: list[str], clock=None, workers: int = 1) -> int:
    """Run every unfinished job of ``jobs`` (``plan``'s result); the first failure's exit code, else 0.
    ``clock``: a ``benchmark.demo.times.Clock`` that times each experiment. ``workers`` above 1: the
    jobs run side by side in that many processes (``benchmark.demo.pool``)."""
    from benchmark.demo import times
    for name, sweep in jobs.items():
        left = sum(not job.finished for job in sweep)
        print(f"{name}: {left} of {len(sweep)} job(s) to run" if left else
              f"{name}: every job finished with this configuration (force=true to redo)", flush=True)
    if workers > 1 and not names_launcher(overrides) and any(not j.finished for s in jobs.values() for j in s):
        return run_parallel(jobs, overrides, workers, clock)
    for name, sweep in jobs.items():
        if all(job.finished for job in sweep):
            continue
        with times.step(clock, name, jobs=len(sweep), ran=sum(not job.finished for job in sweep)):
            code = launch_sweep(name, overrides) if names_launcher(overrides) else run_jobs(name, sweep, overrides)
        if code:
            return code
    return 0


def split_args(args: list[str]) -> tuple[bool, int, list[str]]:
    """``(--full given, --workers N or the default, the Hydra overrides)`` of the demo's arguments."""
    full, workers, overrides = False, default_workers(), []
    rest = iter(args)
    for a in rest:
        if a == "--full":
            full = True
        elif a == "--workers" or a.startswith("--workers="):
            value = a.partition("=")[2] if "=" in a else next(rest, "")
            if not value.isdigit() or int(value) < 1:
                raise SystemExit(f"python -m benchmark.demo: --workers {value!r}; expected a positive integer")
            workers = int(value)
        else:
            overrides.append(a)
    return full, workers, overrides


def main(argv: list[str] | None = None) -> int:
    from benchmark.demo import steps, times

    full, workers, overrides = split_args(list(sys.argv[1:] if argv is None else argv))
    configure_logging()
    results, cache = results_and_cache(overrides)
    clock = times.Clock()
    code = 0
    if full:
        code = steps.prepare(clock, cache)
    if not code:
        with times.step(clock, "composing the experiments' jobs"):
            jobs = plan(EXPERIMENTS, overrides)
        code = run_plan(jobs, overrides, clock, workers)
    if full and not code:
        code = steps.finish(clock, results)
    path = clock.write(results / "demo_times.json", full=full, failed=bool(code))
    print(f"wrote {path}" + ("" if code else f": {clock.total():.0f} s in all"), flush=True)
    return code
