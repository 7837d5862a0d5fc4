"""Mirror one run to Weights & Biases: config, summary metrics, a per-class table, records, figures.

Used by ``benchmark.tracking.tracked`` when ``logger=wandb``. One W&B run per run folder: its id
is derived from the absolute run folder and the config hash, and it is opened with
``resume="allow"``, so a job requeued after pre-emption, or a sweep started again (finished jobs
are skipped but still report), writes to the same W&B run instead of adding duplicates.

Mode: ``logger.mode`` if set, else ``$WANDB_MODE``, else ``online`` when an API key is configured
(``$WANDB_API_KEY`` or a netrc entry for the W&B host) and ``offline`` otherwise (sync later with
``wandb sync <dir>/wandb/offline-run-*``). Files go to ``$WANDB_DIR`` or the results root. Config
keys that look like secrets are dropped before anything is sent, and the API key is never logged
(``benchmark.runs.redact.public_config``, the same scrub as for the files of the run folder).
"""

from __future__ import annotations

import hashlib
import logging
import netrc
import os
import re
import sys
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd

from benchmark.runs.identity import config_hash, run_dir_for, semantic_config
from benchmark.runs.redact import SECRET_KEY, public_config, scrub_overrides, secret_values  # noqa: F401  (re-exported)
from benchmark.runs.store import RECORDS

log = logging.getLogger(__name__)
# The record column that says whether a (image, class) was right, per metric; a metric class may
# name its own with a ``main_column`` attribute.
MAIN_COLUMN = {"localization": "loc_correct_top1", "pointing": "hit", "pointing_modified": "hit_if_accepted",
               "occlusion_correlation": "rho"}
MAX_FIGURES = 8


def api_key_configured() -> bool:
    """Whether W&B has an API key: ``$WANDB_API_KEY`` or a netrc entry for its host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    try:
        return path.is_file() and netrc.netrc(str(path)).authenticators(host) is not None
    except (netrc.NetrcParseError, OSError):
        return False


def resolve_mode(logger_cfg: dict) -> str:
    """``logger.mode``, else ``$WANDB_MODE``, else online with an API key and offline without."""
    return logger_cfg.get("mode") or os.environ.get("WANDB_MODE") or ("online" if api_key_configured() else "offline")


def run_id(config: dict) -> str:
    """Stable W&B run id of a run folder and configuration."""
    digest = config_hash(semantic_config(config))
    where = str(run_dir_for(config).resolve())
    return hashlib.sha256(f"{where}|{digest}".encode()).hexdigest()[:24]


def flatten(metrics: dict, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` -> ``{"a/b": 1}``; keeps scalars only (lists and ``None`` are left out)."""
    out = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}/"))
        elif isinstance(value, (bool, int, float, str)):
            out[f"{prefix}{key}"] = value
    return out


def class_names(config: dict) -> list[str] | None:
    """The class names of the run's manifest (``meta.json``'s ``class_names``), or None when unreadable."""
    import json

    try:
        meta = json.loads((Path(str(config["dataset"]["root"])) / "meta.json").read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None
    names = meta.get("class_names") if isinstance(meta, dict) else None
    return [str(n) for n in names] if isinstance(names, list) else None


def per_class(records: pd.DataFrame, column: str, names: list[str] | None = None) -> pd.DataFrame:
    """One row per class: record count, mean of ``column`` (a rate for booleans) and degenerate maps.

    Rows of images that could not be scored (``error`` set, ``class_id`` -1) are left out. With ``names``
    (the manifest's class names, indexed by class id) a ``class_name`` column follows ``class_id``.
    """
    if "error" in records:
        records = records[records["error"].isna()].infer_objects()
    values = records[column].astype(float)
    grouped = records.assign(_v=values).groupby("class_id", sort=True)
    table = pd.DataFrame({"n_records": grouped.size(), f"mean_{column}": grouped["_v"].mean()})
    if "degenerate" in records:
        table["n_degenerate"] = grouped["degenerate"].sum().astype(int)
    table = table.reset_index()
    if names:
        table.insert(1, "class_name", [names[i] if 0 <= int(i) < len(names) else str(i) for i in table["class_id"]])
    return table


def main_column(metric_name: str, records: pd.DataFrame) -> str | None:
    """The metric's correctness column present in ``records`` (None when there is none)."""
    from benchmark.metrics import METRICS

    named = getattr(METRICS.get(metric_name), "main_column", None) if metric_name in METRICS else None
    column = named or MAIN_COLUMN.get(metric_name)
    return column if column in records else None


class WandbTracker:
    """One W&B run for one benchmark run; ``log_summary`` once, ``finish`` always (see ``tracked``)."""

    def __init__(self, config: dict, mode: str | None = None):
        import wandb

        self.wandb, self.config = wandb, config
        logger_cfg = config.get("logger") or {}
        model, method, dataset = config["model"]["name"], config["method"]["label"], config["dataset"]["name"]
        ds = config["dataset"]
        shard = f"/shard-{ds['shard']}-of-{ds['num_shards']}" if ds.get("num_shards", 1) > 1 else ""
        directory = Path(os.environ.get("WANDB_DIR") or config["paths"]["results"])
        directory.mkdir(parents=True, exist_ok=True)
        self.mode = mode or resolve_mode(logger_cfg)
        secrets = secret_values(config)
        argv = sys.argv
        sys.argv = [argv[0], *scrub_overrides(argv[1:], secrets)]  # W&B records the program's arguments
        try:
            self.run = wandb.init(
                project=logger_cfg.get("project"), entity=logger_cfg.get("entity"), group=config.get("experiment_name"),
                job_type=config["metric"]["name"], name=f"{model}/{method}/{dataset}{shard}",
                tags=[model, method, dataset, *(logger_cfg.get("tags") or [])],
                config=public_config(config, secrets), mode=self.mode, dir=str(directory),
                id=run_id(config), resume="allow", allow_val_change=True)
        finally:
            sys.argv = argv

    def log_summary(self, summary: dict) -> None:
        """``send_summary``; a W&B failure is a warning (the run's results are already written)."""
        try:
            self.send_summary(summary)
        except Exception as err:  # noqa: BLE001  (the mirror's failure is not the run's)
            log.warning("W&B could not record the summary of %s: %s: %s", summary.get("run_dir"),
                        type(err).__name__, err)

    def send_summary(self, summary: dict) -> None:
        """Summary metrics as ``<metric>/<name>``, protocol into the config, per-class table, records, figures."""
        wandb, run = self.wandb, self.run
        metric = summary.get("metric") or self.config["metric"]["name"]
        values = {f"{metric}/{k}": v for k, v in flatten(summary.get("metrics") or {}).items()}
        run.summary.update({**values, "status": summary.get("status"), **({"reason": summary["reason"]}
                                                                           if "reason" in summary else {})})
        extra = {k: summary[k] for k in ("protocol", "aggregation", "config_hash", "layer") if k in summary}
        run.config.update(public_config(extra, secret_values(self.config)), allow_val_change=True)
        run_dir = Path(summary.get("run_dir") or run_dir_for(self.config))
        records_path, payload = run_dir / RECORDS, {}
        if summary.get("status") == "finished" and records_path.is_file():
            records = pd.read_parquet(records_path)
            column = main_column(metric, records) if len(records) else None
            if column is not None:
                payload["per_class"] = wandb.Table(dataframe=per_class(records, column, class_names(self.config)))
            name = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"records-{self.config.get('experiment_name')}-{run.name}")
            artifact = wandb.Artifact(name, type="records", metadata={
                "config_hash": summary.get("config_hash"), "rows": int(len(records)), "run_dir": str(run_dir)})
            artifact.add_file(str(records_path), name=RECORDS)
            run.log_artifact(artifact)
        figures = sorted(run_dir.glob("*.png"))[:MAX_FIGURES] if run_dir.is_dir() else []
        payload.update({f"figures/{p.stem}": wandb.Image(str(p), caption=p.name) for p in figures})
        if payload:
            run.log(payload)

    def finish(self, exit_code: int = 0) -> None:
        """Close the run with its exit code; a W&B failure here is logged, never raised over the run's own."""
        try:
            self.run.finish(exit_code=exit_code)
        except Exception as err:  # the run's own outcome matters more than the mirror's
            log.warning("W&B run %s did not finish cleanly: %s", getattr(self.run, "id", "?"), err)
