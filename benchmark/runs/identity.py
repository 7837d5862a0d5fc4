"""What identifies a run: its semantic configuration, the hash of it, and its run folder.

A run's identity is its whole semantic configuration (``semantic_config``: the config without the
``NON_SEMANTIC`` keys); ``config_hash`` of it decides whether a finished run is skipped or redone,
and ``run_dir_for`` places it. The folder is readable where it can be and hashes the rest:

    <results>/runs/<experiment>/<model.name>/<method.label>[@<method.layer>]/<dataset.name>/
        <metric.name>-<folder hash>[/shard-<i>-of-<n>]

The readable parts are the experiment, model, method label and layer, dataset and metric names;
the 8-character folder hash (``folder_hash``) covers every semantic setting (model weights and
options, method name and options, dataset root/split/limit, metric options, seed, batch size,
on_error, the generated data's version, a shipped toy model's weight sha256...), so two
configurations never share a folder. Shards of
one job share the folder of the unsharded job (sharding is normalised out of the hash exactly as
``benchmark.runs.merge`` forms the merged config), and sit in ``shard-<i>-of-<n>`` below it.
The identity also covers what the run reads (``benchmark.runs.inputs``): the content digest of a
prepared dataset, the source of plugin modules and the method's and metric's declared versions; the
suite's own git commit is recorded in the summary, not hashed. ``job_state``/``finished`` ask whether
a job finished with its current identity, without running the loop or importing torch (used by the evaluation loop, ``benchmark.demo``, the shard merge, the W&B mirror
and Hydra's own run folder through the ``run_path`` resolver, ``register_hydra``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from pathlib import Path

from omegaconf import OmegaConf

from benchmark.config import register_configs, validated
from benchmark.names import check_name, inside
from benchmark.runs import inputs
from benchmark.runs.redact import public_config, secret_values

NON_SEMANTIC = ("force", "logger", "num_workers", "overlap_postprocessing", "paths", "part_size", "part_seconds",
                "progress", "verbose")
DECLARATIONS = (("model", "trained_on"), ("dataset", "parts"),  # checked by the overlap guard, not hashed
                ("dataset", "image_digest"))  # how the images are digested: the digest itself is hashed
FOLDER_HASH_LEN = 8
# the names that become path components of a run folder (``run_path``), checked by ``check_names``
PATH_NAMES = ("experiment_name", "model.name", "method.label", "method.layer", "dataset.name", "metric.name")


def config_hash(config: dict) -> str:
    """Stable hash of the settings that change results."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def semantic_config(config: dict, with_inputs: bool = True) -> dict:
    """The settings that change results, as hashed to skip finished jobs: the config without the
    ``NON_SEMANTIC`` keys and, for a generated dataset, the generator's version (the synthetic data
    and the toy models trained on it change with it, so jobs finished on older data run again);
    for a toy model with shipped weights, their recorded sha256; and (``with_inputs``, off only to
    recognise folders of the older identity) the digests of ``benchmark.runs.inputs``: the dataset's
    content, the plugins' source, the method's and metric's declared versions."""
    out = {k: v for k, v in config.items() if k not in NON_SEMANTIC}
    for group, key in DECLARATIONS:  # facts about the data, not settings: unset, they leave the hash as it was
        if isinstance(out.get(group), dict) and key in out[group]:
            out[group] = {k: v for k, v in out[group].items() if k != key}
    if not out.get("plugins"):  # no plugins: the hash of every run made before the field existed
        out.pop("plugins", None)
    generator = (config.get("dataset") or {}).get("generate")
    if generator:
        out["generated_inputs_version"] = inputs.generator_version(generator)
    model = config.get("model") or {}
    if isinstance(model, dict) and model.get("weights") is None and not model.get("checkpoint"):
        digest = inputs.shipped_sha256(str(model.get("name")))  # other weights, other results: the job runs again
        if digest:
            out["model_weights_sha256"] = digest
    if with_inputs:
        digests = inputs.inputs(config)
        if digests:  # a generated dataset, no plugins, versions 1: the hash of the older identity
            out["inputs"] = digests
    return out


def unsharded(config: dict) -> dict:
    """The config of the unsharded job a shard belongs to: ``num_shards=1``, ``shard=0`` and, since
    ``dataset.limit`` keeps the first ``limit`` images of each strided shard, ``limit * num_shards``."""
    out = copy.deepcopy(config)
    ds = out["dataset"]
    n = int(ds.get("num_shards") or 1)
    ds.update(shard=0, num_shards=1)
    if ds.get("limit") is not None:
        ds["limit"] = int(ds["limit"]) * n
    return out


def folder_hash(config: dict) -> str:
    """The short hash in a run folder's name: every semantic setting of the unsharded job."""
    return config_hash(semantic_config(unsharded(config)))[:FOLDER_HASH_LEN]


def check_names(config: dict, fields: tuple[str, ...] = PATH_NAMES) -> None:
    """Stop at a name of ``fields`` that is not one plain path component (``benchmark.names``)."""
    for field in fields:
        group, _, key = field.rpartition(".")
        node = config.get(group) if group else config
        value = node.get(key) if isinstance(node, dict) else None
        if value is not None or field != "method.layer":
            check_name(value, field)


def _part(config: dict, field: str) -> str:
    group, _, key = field.rpartition(".")
    return check_name((config[group] if group else config)[key], field)


def run_path(config: dict) -> Path:
    """The run folder relative to ``<results>/runs`` (see the module docstring); every name in it is
    checked first (``check_names``), so it is always a relative path of plain components."""
    check_names(config)
    ds, method = config["dataset"], config["method"]
    label = _part(config, "method.label") + (f"@{method['layer']}" if method.get("layer") else "")
    path = (Path(_part(config, "experiment_name")) / _part(config, "model.name") / label / _part(config, "dataset.name")
            / f"{_part(config, 'metric.name')}-{folder_hash(config)}")
    return path / f"shard-{ds['shard']}-of-{ds['num_shards']}" if ds.get("num_shards", 1) > 1 else path


def run_dir_for(config: dict) -> Path:
    """``<results>/runs/`` + ``run_path(config)``, checked to lie under ``<results>/runs``."""
    runs = Path(config["paths"]["results"]) / "runs"
    path = runs / run_path(config)
    inside(runs, path)  # a symlink inside the results root that leads out of it
    return path


def job_state(config: dict, run_dir: Path | None = None) -> tuple[Path, str, dict | None]:
    """``(run folder, config hash, summary if it finished with this config else None)``."""
    return public_job_state(public_config(config, secret_values(config)), run_dir)


def public_job_state(config: dict, run_dir: Path | None = None) -> tuple[Path, str, dict | None]:
    """``job_state`` of a config whose secrets are already removed."""
    run_dir = Path(run_dir or run_dir_for(config))
    digest = config_hash(semantic_config(config))
    return run_dir, digest, finished_summary(run_dir, digest)


def finished_summary(run_dir: Path, digest: str) -> dict | None:
    """The summary of ``run_dir`` if it finished with config hash ``digest``, else ``None`` (read here, not
    through ``RunStore``, so that the check loads no data library)."""
    try:
        summary = json.loads((Path(run_dir) / "summary.json").read_text())
    except FileNotFoundError:
        return None
    return summary if summary.get("config_hash") == digest and summary.get("status") != "failed" else None


def finished(config) -> dict | None:
    """The summary of the finished run of ``config`` (a dict or a composed config, validated as ``evaluate``
    validates it), or ``None``: cheap, imports neither torch nor any registry, ignores ``force``."""
    return job_state(validated(config))[2]


def hydra_run_path(within: str = "", *, _root_) -> str:
    """Hydra's job folder (where ``.hydra/`` and ``run.log`` go) as ``run_path`` places the run: the job
    config is the composed config without its ``hydra`` node, its secrets removed as ``benchmark.run``
    removes them. ``within="experiment"``: the part below the experiment's folder; ``within="sweep"``:
    the experiment's folder (a checked name). An unsafe name stops composition before Hydra writes."""
    job = OmegaConf.masked_copy(_root_, [k for k in _root_ if k != "hydra"])
    config = OmegaConf.to_container(job, resolve=True)
    runs = Path(config["paths"]["results"]) / "runs"
    if within == "sweep":  # the sweep's folder (its multirun.yaml), a checked name under the results root
        name = check_name(config.get("experiment_name"), "experiment_name")
        inside(runs, runs / name)
        return name
    config = public_config(config, secret_values(config, sys.argv[1:]))
    path = run_dir_for(config).relative_to(runs)  # its names checked, under the results root
    return str(path.relative_to(path.parts[0]) if within == "experiment" else path)


def register_hydra() -> None:
    """What composing ``conf/config.yaml`` needs (Hydra's CLI or its compose API): the config schema
    (``base_config``) and the ``run_path`` resolver of its run and sweep folders. Idempotent."""
    register_configs()
    if not OmegaConf.has_resolver("run_path"):
        OmegaConf.register_new_resolver("run_path", hydra_run_path)
