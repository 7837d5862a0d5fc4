"""Run a sweep's unfinished jobs in this process, as ``python -m benchmark`` runs one job.

Each job goes through the steps of ``benchmark.run.main``: secrets removed from its config,
``paths.cache`` made the process's cache, the tracker (W&B when configured), ``evaluate``, and after
a failure the run folder removed when it holds no result. Models built by an earlier job are reused
(``benchmark.evaluate.load_model``); the records do not depend on it (each job seeds its own run).
Nothing Hydra-specific is written (no ``.hydra/`` folder, no ``run.log``): the run's ``summary.json``
holds its whole configuration.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

from benchmark.demo.jobs import Job
from benchmark.evaluate import evaluate
from benchmark.run import discard_failed, use_cache_dir
from benchmark.runs import redact
from benchmark.runs.identity import run_dir_for
from benchmark.tracking import tracked

log = logging.getLogger("benchmark.demo")
FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"  # Hydra's job log format


def configure_logging() -> None:
    """INFO lines on stdout in Hydra's format, secrets masked (``benchmark.runs.redact.RedactFilter``)."""
    root = logging.getLogger()
    if any(getattr(h, "_benchmark_demo", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(redact.RedactFilter())
    handler._benchmark_demo = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def job_label(config: dict) -> str:
    """``model/method[@layer]/dataset/metric`` of a job, as its run folder names it."""
    method = config["method"]
    label = method["label"] + (f"@{method['layer']}" if method.get("layer") and "@" not in method["label"] else "")
    return f"{config['model']['name']}/{label}/{config['dataset']['name']}/{config['metric']['name']}"


def run_job(config: dict, argv: list[str]) -> dict:
    """One job's summary, run as ``benchmark.run.main`` runs it (``argv``: the command-line overrides,
    whose secret values are masked too)."""
    secrets = redact.secret_values(config, argv)
    redact.remember(secrets)
    config = redact.public_config(config, secrets)
    use_cache_dir(config)
    try:  # tracking is entered inside: a failure there too leaves no empty run folder
        with tracked(config) as tracker:
            summary = evaluate(config)
            tracker.log_summary(summary)
    except Exception:
        log.exception("run failed: %s", config["experiment_name"])
        discard_failed(run_dir_for(config), config)
        raise
    return summary


def outcome(summary: dict) -> str:
    """The end of a job's line (its metrics are logged by ``evaluate``)."""
    if summary.get("status") == "not_applicable":
        return "not applicable"
    return "already finished" if summary.get("skipped") else str(summary.get("status"))


def run_jobs(experiment: str, jobs: list[Job], argv: list[str]) -> int:
    """Run the unfinished ``jobs`` of one experiment in order, printing each job's place, outcome and
    time (``evaluate`` logs its metrics); 1 at the first failing job (the jobs after it do not run), else 0."""
    todo = [job for job in jobs if not job.finished]
    for i, job in enumerate(todo, 1):
        label = job_label(job.config)
        print(f"{experiment} [{i}/{len(todo)}] {label}", flush=True)
        start = time.perf_counter()
        try:
            summary = run_job(job.config, argv)
        except Exception as err:  # noqa: BLE001  (logged with its traceback by run_job)
            print(f"{experiment}: job {label} failed: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
            return 1
        print(f"{experiment} [{i}/{len(todo)}] {label}: {outcome(summary)} in {time.perf_counter() - start:.1f} s",
              flush=True)
    return 0


def launch_sweep(experiment: str, argv: list[str]) -> int:
    """The experiment as Hydra's multirun in a new process (``python -m benchmark -m``): used when the
    overrides name a launcher (``hydra/launcher=slurm``), which runs the jobs elsewhere."""
    return subprocess.call([sys.executable, "-m", "benchmark", "-m", f"experiment={experiment}", *argv],
                           env={**os.environ, "PYTHONUNBUFFERED": "1"})


def names_launcher(argv: list[str]) -> bool:
    """Whether the overrides choose a Hydra launcher (the jobs then run where it sends them)."""
    return any(a.split("=", 1)[0].lstrip("+~") == "hydra/launcher" for a in argv)

