"""Hydra's submitit Slurm launcher, with GPUs that follow ``device`` and a report of the failed jobs.

``conf/hydra/launcher/slurm.yaml`` targets ``SlurmLauncher`` here (Hydra takes launchers only from
the ``hydra_plugins`` package). It submits the sweep as the plugin does (one Slurm job array,
requeued on pre-emption and time-out), and changes two things:

- ``gpus_per_node: null`` (the default) asks for one GPU per job when the sweep's ``device`` is a
  CUDA device and none otherwise, so ``device=cpu`` runs on a CPU-only partition; a number given
  with ``hydra.launcher.gpus_per_node=N`` is used as it is.
- It waits for every job, also after one failed, so a failing job fails alone. It then logs one
  line per job that failed: its number, overrides, Slurm job id, the error's first line and the
  task's log (``*_log.out``: the run's log with the traceback; ``*_log.err`` beside it). Hydra then re-raises the first failure (exit status 2 for a user error, 1 otherwise).
- A job that ended without a result (killed before submitit could catch a signal, cancelled, out
  of memory) counts as failed once ``squeue`` shows it ended. Submitit alone learns this only from
  ``sacct``; on a cluster without an accounting database it would wait for that job forever.
"""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path
from typing import Any, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher import submitit_launcher
from submitit.core.utils import FailedJobError

log = logging.getLogger(__name__)
# squeue states of a job that may still write its result (REQUEUED and PREEMPTED come before PENDING again)
ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SIGNALING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD",
          "REQUEUE_FED", "RESIZING", "STAGE_OUT", "PREEMPTED", "RESV_DEL_HOLD", "STOPPED"}


def gpus_for(device: str) -> int:
    """One GPU for a CUDA device, none for any other (``cpu``, ``mps``)."""
    return 1 if str(device).startswith("cuda") else 0


def _device(overrides: Sequence[str], default: str) -> str:
    for item in overrides:
        if item.startswith("device="):
            return item.split("=", 1)[1]
    return default


class SlurmLauncher(submitit_launcher.SlurmLauncher):
    """The plugin's ``SlurmLauncher``: same parameters, see the module docstring for what differs."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import submitit

        assert self.config is not None and len(job_overrides) > 0
        params = dict(self.params)
        if params.get("gpus_per_node") is None:
            default = str(self.config.get("device", "cpu"))
            params["gpus_per_node"] = max(gpus_for(_device(o, default)) for o in job_overrides)
        init_keys = {"submitit_folder", "max_num_timeout"}
        executor = submitit.AutoExecutor(cluster="slurm", folder=params["submitit_folder"],
                                         slurm_max_num_timeout=params["max_num_timeout"])
        base = set(submitit_launcher.OmegaConf.structured(submitit_launcher.BaseQueueConf).keys())
        executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()
                                      if k not in init_keys})
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if "mode" in self.config.hydra.sweep:
            sweep_dir.chmod(int(str(self.config.hydra.sweep.mode), 8))
        log.info(f"Submitit 'slurm' sweep output dir : {sweep_dir}")
        numbered = list(enumerate(job_overrides, start=initial_job_idx))
        for idx, overrides in numbered:
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
        job_params = [(list(o), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state())
                      for idx, o in numbered]
        jobs = executor.map_array(self, *zip(*job_params))
        results = [self._result(job, overrides) for job, (_, overrides) in zip(jobs, numbered)]
        failed = [(idx, o, job, r) for (idx, o), job, r in zip(numbered, jobs, results)
                  if r.status == JobStatus.FAILED]
        if failed:
            lines = [f"{len(failed)} of {len(jobs)} jobs failed (the others finished):"]
            for idx, overrides, job, ret in failed:
                first = (str(ret._return_value).strip().splitlines() or [type(ret._return_value).__name__])[0]
                lines.append(f"  #{idx} {' '.join(filter_overrides(overrides))} (Slurm job {job.job_id}): {first}")
                lines.append(f"     log: {job.paths.stdout}")  # the run's log and traceback; stderr beside it
            log.error("%s", "\n".join(lines))
        return results

    @staticmethod
    def _result(job: Any, overrides: Sequence[str]) -> JobReturn:
        """The job's ``JobReturn``; a job that ended without one (killed, cancelled) becomes a failed one."""
        try:
            while not job.done() and squeue_state(job.job_id) in ACTIVE | {None}:
                time.sleep(2)
            if job.done():
                return job.results()[0]
            # ended without submitit knowing (no sacct): read the result file, waiting a little for it;
            # without one this raises UncompletedJobError with the task's state and the end of its logs
            outcome, result = job._get_outcome_and_result()
            if outcome == "error":
                raise FailedJobError(f"Job {job.job_id} raised:\n{result}")
            return result
        except Exception as err:  # noqa: BLE001  (submitit's UncompletedJobError, FailedJobError)
            ret = JobReturn(overrides=list(overrides), status=JobStatus.FAILED)
            ret._return_value = err
            return ret


def squeue_state(job_id: str) -> str | None:
    """The job's state in ``squeue`` (also for jobs that ended a short while ago); ``None`` if squeue failed."""
    try:
        out = subprocess.run(["squeue", "--noheader", "--states=all", f"--jobs={job_id}", "--format=%T"],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return "ENDED" if "Invalid job id" in out.stderr else None  # forgotten by slurmctld: long over
    states = set(out.stdout.split())
    return next(iter(states & ACTIVE), None) or (states.pop() if states else "ENDED")
