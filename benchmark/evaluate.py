"""The main loop as plain Python: config dict in, records and summary out (testable without Hydra).

model -> method(images, class_ids) -> maps -> metric.score_batch -> record parts -> summary.
A finished run with the same configuration is skipped unless ``force``; an interrupted one resumes
from its complete record parts. Inputs that cannot work (an unknown layer, class indices the model
does not have, image files that are missing) are errors naming the file or config field before
anything is written; secrets in the config are dropped before it is hashed or written. A run's
identity (config hash, run folder, finished or not) is ``benchmark.runs.identity``'s; a toy model's
shipped weights are verified before the model is loaded (``benchmark.training.ensure_checkpoint``).
"""

from __future__ import annotations

import collections
import functools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig

from benchmark.config import validated
from benchmark.data.buckets import input_batches
from benchmark.data.classes import check_classes
from benchmark.data.manifest import ManifestError
from benchmark.data.readers import ManifestDataset
from benchmark.data.transforms import Preprocess
from benchmark.errors import ConfigError
from benchmark.methods import METHODS, NotApplicable, build_method
from benchmark.methods.base import for_samples
from benchmark.metrics import METRICS, build_metric
from benchmark.metrics.base import prepare_or_record
from benchmark.models import build_model
from benchmark.plugins import load_plugins
from benchmark.progress import Progress, cost_per_map
from benchmark.runs import inputs, provenance
from benchmark.runs.identity import check_names, public_job_state, register_hydra
from benchmark.runs.overlap import check_training_overlap
from benchmark.runs.redact import public_config, secret_values
from benchmark.runs.store import Interrupted, PartWriter, RunStore, write_json
from benchmark.training import ensure_checkpoint

log = logging.getLogger(__name__)
register_hydra()  # Hydra's compose API finds conf/config.yaml's schema and resolver without benchmark.run


@functools.lru_cache(maxsize=4)
def _model(name: str, weights, checkpoint, layers_key: tuple, options_key: tuple):
    return build_model(name, weights=weights, checkpoint=checkpoint, layers=dict(layers_key), **dict(options_key))


def load_model(model_cfg: dict):
    """Build (or reuse, within one process) the configured model."""
    layers = tuple(sorted((model_cfg.get("layers") or {}).items()))
    skip = {"name", "weights", "checkpoint", "layers", "preprocessing", "trained_on"}
    options = tuple(sorted((k, v) for k, v in model_cfg.items() if k not in skip and v is not None))
    return _model(model_cfg["name"], model_cfg.get("weights"), model_cfg.get("checkpoint"), layers, options)


ON_ERROR = ("raise", "record")


class _Prepared(torch.utils.data.Dataset):
    """Dataset view over chosen indices that also preprocesses (runs in loader workers).

    With ``on_error="record"`` an image that cannot be read becomes ``(image_id, message)`` in
    place of ``(sample, tensor)``; the loop records it as an error row, outside every metric.
    """

    def __init__(self, dataset, indices, prep: Preprocess, on_error: str = "raise"):
        self.dataset, self.indices, self.prep, self.on_error = dataset, indices, prep, on_error

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        index = self.indices[i]
        try:
            sample = self.dataset[index]
            return sample, self.prep(sample.image)
        except Exception as err:  # noqa: BLE001  (the policy decides; the message is kept whole)
            if self.on_error == "raise":
                raise
            return self.dataset.image_ids[index], f"{type(err).__name__}: {err}"


def _collate(items):
    good = [(s, x) for s, x in items if not isinstance(s, str)]
    errors = [(s, x) for s, x in items if isinstance(s, str)]
    images = torch.stack([x for _, x in good]) if good else None
    return [s for s, _ in good], images, errors


def ensure_dataset(dataset_cfg: dict) -> None:
    """Generate the embedded synthetic data or the shipped real photos when a dataset asks for it and it is missing."""
    kind, root = dataset_cfg.get("generate"), Path(dataset_cfg["root"])
    if kind == "synthetic" and not (root / "manifest.parquet").is_file():
        from data_prep.synthetic import generate

        generate(root.parents[1])
    elif kind == "synthetic_multi":
        from data_prep.synthetic_multi import ensure_synthetic_multi

        ensure_synthetic_multi(root)
    elif kind == "real_photos" and not (root / "manifest.parquet").is_file():
        from data_prep.real_photos import prepare

        prepare(root.parent)


def _check_inputs(dataset: ManifestDataset, info, on_error: str, class_map: str | None = None) -> None:
    """Fail before anything is written when the manifest's files or classes do not fit the run.

    The manifest's class names must be the model's (``benchmark.data.classes``); with
    ``dataset.class_map`` the dataset's class indices are rewritten to the model's outputs.
    """
    mapping = check_classes(dataset.meta, info, str(dataset.directory / "meta.json"), class_map,
                            dataset.used_classes() if class_map else None)
    if mapping is not None:
        dataset.remap_classes(mapping)
    outside = dataset.labels_outside(info.num_classes)
    if outside:
        shown = ", ".join(f"image {i!r} {f}={c}" for i, f, c in outside[:5])
        raise ConfigError(
            f"{dataset.manifest_file}: class indices outside the model's classes ({shown}"
            f"{' ...' if len(outside) > 5 else ''}; {len(outside)} in all): model {info.name!r} has "
            f"{info.num_classes} classes, expected indices 0..{info.num_classes - 1}. The dataset and the model "
            f"do not belong together (check model= and dataset=)")
    if on_error == "raise":  # with on_error=record a missing file is recorded as that image's error
        missing = dataset.missing_files()
        if missing:
            shown = ", ".join(f"{i!r}: {path}" for i, path in missing[:5])
            raise ManifestError(
                f"{dataset.manifest_file}: field 'path' of {len(missing)} image(s) points at missing files "
                f"({shown}{' ...' if len(missing) > 5 else ''}); expected existing image files. Re-run the "
                f"data_prep script, fix 'image_root' in meta.json, or set on_error=record to record and skip them")


class NothingScoredError(RuntimeError):
    """A run in which no image could be scored; its summary says ``failed`` and it runs again next time."""


def _check_selection(dataset: ManifestDataset, ds: dict, metric) -> None:
    """Stop before the run folder is made when the selection holds no image (nothing to score), or,
    for a metric that localizes (``uses_regions``, the default), a label without a box or mask."""
    if len(dataset) == 0:
        raise ConfigError(
            f"{dataset.manifest_file}: the selection holds no image (split={ds.get('split')!r}, "
            f"shard {ds.get('shard', 0)} of {ds.get('num_shards', 1)}, dataset.limit={ds.get('limit')!r}); expected "
            f"at least one: check dataset.limit (>= 1), dataset.split and the manifest's rows")
    bare = dataset.labels_without_region() if getattr(metric, "uses_regions", True) else []
    if bare:
        shown = ", ".join(f"image {i!r} class {c}" for i, c in bare[:5])
        raise ManifestError(
            f"{dataset.manifest_file}: field 'labels' names classes with no box or mask ({shown}"
            f"{' ...' if len(bare) > 5 else ''}; {len(bare)} in all); expected a ground-truth region "
            f"(boxes_xyxy/box_labels or masks_rle/mask_labels) for every label: metric {metric.name!r} would score "
            f"them as misses")


def _nothing_scored(summary: dict) -> NothingScoredError | None:
    """A run whose every image failed (``on_error=record``) is no result: its summary says ``failed``
    (set here, with its error counts kept for reading) and the next run of this configuration starts
    it again; returns the error to raise once the summary is written."""
    errors, images = summary["errors"], summary["counts"]["images"]
    if images == 0 or errors["n_images"] < images:
        return None
    summary["status"] = "failed"
    shown = "; ".join(f"{e['image_id']}: {e['error']}" for e in errors["examples"][:3])
    return NothingScoredError(f"{summary['run_dir']}: every one of the {errors['n_images']} images failed "
                              f"(on_error=record), nothing was scored ({shown}); the run is marked failed and the "
                              f"next run starts it again")


def _build_method(mcfg: dict, model, info):
    """The configured method; an unknown ``method.layer`` is an error naming the field."""
    try:
        return build_method(mcfg["name"], model, info, layer=mcfg.get("layer"), **(mcfg.get("options") or {}))
    except KeyError as err:
        if mcfg.get("layer") and "does not exist" in str(err):
            raise ConfigError(f"config field 'method.layer' is {mcfg['layer']!r}: {err.args[0]}") from None
        raise
    except TypeError as err:
        if "unexpected keyword" in str(err):  # a typo in method.options
            raise ConfigError(f"config field 'method.options' of method {mcfg['name']!r}: {err}") from None
        raise


def check_options(config: dict) -> None:
    """Stop at a ``method.options``/``metric.options`` key the entry does not declare (``benchmark.registry``)."""
    METHODS.check_options(config["method"]["name"], config["method"].get("options") or {}, "method.options")
    METRICS.check_options(config["metric"]["name"], config["metric"].get("options") or {}, "metric.options")


def _evaluated_ids(ds: dict) -> list[str]:
    """Image ids the run scores (only read when the checkpoint lists its training ids)."""
    ensure_dataset(ds)
    return ManifestDataset(ds["root"], split=ds.get("split"), num_shards=ds.get("num_shards", 1),
                           shard=ds.get("shard", 0), limit=ds.get("limit")).image_ids


def evaluate(config: dict | DictConfig, run_dir: Path | None = None, strict: bool = True) -> dict:
    """Run one (model, method, dataset, metric) job (a config dict, or Hydra's composed config); returns its summary.

    Inputs are checked before the run folder is written to (training data overlapping the evaluated
    images, method layer, class indices, missing image files), so a bad input leaves no partial
    output; the run holds the folder's lock.
    """
    # the schema of the command line: unknown keys, missing keys, one identity (``strict=False``: a plain
    # copy of Hydra's composed config, whose '+key=...' additions Hydra allowed)
    config = validated(config, strict)
    config = public_config(config, secret_values(config))  # secrets are never hashed, written or logged
    load_plugins(config.get("plugins"))
    check_options(config)
    check_names(config, ("model.name", "dataset.name"))  # the overlap guard finds their config files by name
    check_training_overlap(config, functools.partial(_evaluated_ids, config["dataset"]))  # even a finished run
    check_names(config)  # names are data: each one becomes a plain path component, or nothing is written
    run_dir, digest, done = public_job_state(config, run_dir)
    store = RunStore(run_dir)
    if done is not None and not config.get("force"):
        log.info("skip %s: finished with the same configuration", run_dir)
        return {**done, "skipped": True}
    on_error = config.get("on_error", "raise")
    if on_error not in ON_ERROR:
        raise ConfigError(f"config field 'on_error' is {on_error!r}; expected one of {ON_ERROR}")
    torch.manual_seed(config["seed"])
    np.random.seed(config["seed"])
    device = torch.device(config.get("device", "cpu"))
    # deterministic kernels on CUDA (restored afterwards); what was set goes into the summary
    with provenance.deterministic(device, bool(config.get("deterministic", True))) as determinism:
        ensure_checkpoint(config["model"])  # a toy model's shipped weights, verified before loading
        model, info = load_model(config["model"])
        model = model.to(device)
        mcfg = config["method"]
        base = {"config_hash": digest, "config": {k: v for k, v in config.items() if k != "force"}, "run_dir": str(run_dir), "model": info.name,
                "method": mcfg["label"], "dataset": config["dataset"]["name"], "metric": config["metric"]["name"],
                "determinism": determinism, "inputs": inputs.inputs(config)}
        try:
            method = _build_method(mcfg, model, info)
        except NotApplicable as err:
            log.warning("%s", err)
            run_dir.mkdir(parents=True, exist_ok=True)
            summary = {**base, "status": "not_applicable", "reason": str(err)}
            write_json(run_dir / "summary.json", summary)
            return summary
        metric = build_metric(config["metric"]["name"], **(config["metric"].get("options") or {}))
        ensure_dataset(config["dataset"])
        ds = config["dataset"]
        dataset = ManifestDataset(ds["root"], split=ds.get("split"), num_shards=ds.get("num_shards", 1),
                                  shard=ds.get("shard", 0), limit=ds.get("limit"))
        _check_inputs(dataset, info, on_error, ds.get("class_map"))
        _check_selection(dataset, ds, metric)
        prep = Preprocess(info.input_size, tuple(info.mean), tuple(info.std), config["model"].get("preprocessing", "paper"))
        with store.lock():
            store.start(config, digest, bool(config.get("force")))
            try:
                return _run(config, store, base, model, info, method, metric, dataset, prep, device)
            except KeyboardInterrupt:
                store.discard_if_empty(Path(config["paths"]["results"]) / "runs")  # an interrupt before the first part leaves no folder
                raise


def _run(config, store, base, model, info, method, metric, dataset, prep, device) -> dict:
    """The loop over the images not yet in a record part, then records, summary and timing.

    Rows go to record parts every ``part_size`` rows or ``part_seconds`` seconds, whichever comes first,
    so an interrupt (Ctrl-C, SIGTERM) loses at most that much work: the rows already scored are written
    and ``Interrupted`` says how many images are kept; the same command resumes from them."""
    run_dir, mcfg, ds, on_error = store.dir, config["method"], config["dataset"], config.get("on_error", "raise")
    done_ids = store.done_ids()
    todo = [i for i, image_id in enumerate(dataset.image_ids) if image_id not in done_ids]
    reused = len(dataset) - len(todo)
    if reused:
        log.info("resuming: %d of %d images reused from record parts", reused, len(dataset))
    sizes = dataset.sizes_hw()  # a batch holds inputs of one shape (aspect-kept inputs differ in size)
    batches = input_batches([sizes[i] for i in todo], prep, config.get("batch_size", 32))
    loader = torch.utils.data.DataLoader(
        _Prepared(dataset, todo, prep, on_error), batch_sampler=batches,
        num_workers=config.get("num_workers", 0), collate_fn=_collate, pin_memory=device.type == "cuda")
    start = time.perf_counter()
    parts = PartWriter(store, config.get("part_size", 512), config.get("part_seconds", 60.0))
    label = f"{info.name}/{mcfg['label']}/{ds['name']}"
    # the host phase of batch i (resize to original size, boxes) runs in a worker thread while batch
    # i+1 is on the device; rows are collected in batch order, so records do not depend on it
    in_flight = 1 if config.get("overlap_postprocessing", True) else 0
    pending: collections.deque = collections.deque()
    cost = cost_per_map(mcfg["name"], mcfg.get("options"), prep.size)
    with Progress(len(todo), label, enabled=config.get("progress", True), reused=reused, cost=cost) as bar, \
            ThreadPoolExecutor(1) as host:
        collecting = False  # an error raised while collecting (a host phase, a part write) stops at once

        def collect(keep: int) -> None:
            nonlocal collecting
            collecting = True
            while len(pending) > keep:
                future, rows, count = pending.popleft()
                rows = rows + future.result()
                for row in rows:
                    row.setdefault("error", None)
                    row.update(model=info.name, method=mcfg["label"], dataset=ds["name"])
                parts.add(rows)
                bar.update(count)
            collecting = False

        try:
            for samples, images, errors in loader:
                rows = [{"image_id": image_id, "class_id": -1, "error": message} for image_id, message in errors]
                finish = list
                if samples:
                    with for_samples(method, samples):  # methods that read maps by image id (precomputed)
                        finish, failed = prepare_or_record(metric, samples, images.to(device, non_blocking=True),
                                                           method, prep, on_error)  # NaN logits: error rows
                    rows += failed
                pending.append((host.submit(finish), rows, len(samples) + len(errors)))
                collect(in_flight)
        except BaseException as stop:
            if not collecting:  # the loader or the device phase failed: batches already scored
                try:               # still reach their parts, as in a serial loop
                    collect(0)
                    if isinstance(stop, KeyboardInterrupt):
                        parts.flush()
                except Exception as err:  # noqa: BLE001  (the first error is the one to report)
                    log.warning("while stopping: a pending batch failed too: %s", err)
            if isinstance(stop, KeyboardInterrupt):
                kept = len(store.done_ids())
                raise Interrupted(f"interrupted after {reused + bar.done} of {len(dataset)} images; {kept} kept; "
                                  "rerun the same command to resume") from None
            raise
        collect(0)
        parts.flush()
    frame = store.read_parts()
    if len(frame):  # in the dataset's image order whatever the batches' order (shape batches, resumed parts)
        frame = frame.sort_values("image_id", kind="stable").reset_index(drop=True)
    failed = frame["error"].notna() if len(frame) else pd.Series([], dtype=bool)
    scored = frame[~failed].infer_objects() if len(frame) else frame  # error rows leave object dtypes behind
    summary = {
        **base, "status": "finished", "metrics": metric.aggregate(scored) if len(scored) else {},
        "errors": {"n_images": int(failed.sum()), "policy": on_error,
                   "examples": frame.loc[failed, ["image_id", "error"]].head(20).to_dict("records") if len(frame) else []},
        "aggregation": {"name": metric.aggregation[0], "version": metric.aggregation[1]},
        "protocol": {**metric.settings(), "preprocessing": prep.mode, "input_size": prep.size},
        "counts": {"images": len(dataset), "records": int(len(frame))},
        "seed": config["seed"], "versions": provenance.versions(), "git": provenance.git_state(),
        "device": provenance.device_description(str(device)), "layer": getattr(method, "layer", None),
        "method_settings": method.settings() if hasattr(method, "settings") else {},
    }
    failure = _nothing_scored(summary)
    store.finalize(summary)
    if failure is not None:
        raise failure
    if hasattr(metric, "write_artifacts") and len(scored):
        try:  # figures and curves beside the records; a plotting failure must not undo a finished run
            metric.write_artifacts(scored, run_dir)
        except Exception as err:  # noqa: BLE001
            log.warning("artifacts for %s failed: %s", run_dir, err)
    write_json(run_dir / "timing.json", {"seconds": time.perf_counter() - start, "images_resumed": reused})
    log.info("%s: %s", label, " ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                                       for k, v in summary["metrics"].items()))
    return summary
