"""Dataclass schemas for every config group (Hydra structured configs).

Each default lives once: run settings here, protocol defaults in the metric and method constructors'
signatures; YAML files name the choice and its specifics (layer presets, dataset roots).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf



@dataclass
class ModelConfig:
    name: str = MISSING
    arch: Optional[str] = None  # registry name when it differs from ``name``
    weights: Optional[str] = None
    checkpoint: Optional[str] = None
    layers: Dict[str, Optional[str]] = field(default_factory=dict)
    preprocessing: str = "paper"  # paper | center_crop | shorter_side (TorchRay; batches of one input shape)
    num_classes: Optional[int] = None
    multilabel: bool = False
    cam_head: Optional[str] = None  # linear layer after global pooling (CAM-compatible models)
    input_size: Optional[int] = None
    torchray_arch: Optional[str] = None  # vgg16 | resnet50, with arch: torchray
    trained_on: List[str] = field(default_factory=list)  # dataset names the weights were trained on (benchmark/runs/overlap.py)


# ``method.options`` and ``metric.options`` take any key on the command line without a ``+``: the
# options a method or metric accepts are declared by its registry entry (its constructor's signature,
# ``benchmark.registry``), and ``evaluate`` checks them, naming the accepted ones, before a run starts.
OPEN_NODES = ("method.options", "metric.options")


@dataclass
class MethodConfig:
    name: str = MISSING
    label: str = "${.name}"  # what tables and run folders call it
    layer: Optional[str] = None  # null: the model's preset for this method
    options: Dict[str, Any] = field(default_factory=dict)


@dataclass
class DatasetConfig:
    name: str = MISSING
    root: str = MISSING  # the manifest directory written by data_prep
    split: Optional[str] = None
    num_shards: int = 1
    shard: int = 0
    limit: Optional[int] = None
    generate: Optional[str] = None  # "synthetic": made on first use
    region: str = "boxes"  # boxes (ILSVRC, VOC) | masks (COCO)
    parts: List[str] = field(default_factory=list)  # the splits a union split is made of (voc2007_trainval)
    # manifest classes -> model outputs when they differ: "model" (by name/id) or a YAML/JSON file
    # {manifest class name: model class name or output index}; null: they must be the same lists
    class_map: Optional[str] = None
    image_digest: str = "stat"  # how the run identity digests the images: stat (path, size, time) | bytes


@dataclass
class MetricConfig:
    name: str = MISSING
    # Protocol settings passed to the metric's constructor, whose signature holds the defaults
    # (e.g. localization: threshold=0.15, iou_threshold=0.5, topk=5); unknown keys are errors.
    options: Dict[str, Any] = field(default_factory=dict)


@dataclass
class LoggerConfig:
    name: str = "none"  # none | wandb
    project: str = "gradcam-benchmark"
    entity: Optional[str] = None
    mode: Optional[str] = None  # online | offline | disabled; null: offline without an API key
    tags: List[str] = field(default_factory=list)


@dataclass
class PathsConfig:
    results: str = "results"
    # one cache for the command line and the Python API: $BENCHMARK_CACHE, else the repository's .cache
    # (``benchmark.paths.cache_dir``), made absolute, whatever the working directory
    cache: str = "${benchmark_cache:}"


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    metric: MetricConfig = field(default_factory=MetricConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    experiment_name: str = "default"
    plugins: List[str] = field(default_factory=list)  # modules of the user's own methods/metrics/models (benchmark/plugins.py)
    seed: int = 0
    device: str = "cpu"
    deterministic: bool = True  # on CUDA: deterministic algorithms, cuDNN without autotuning
    batch_size: int = 32
    num_workers: int = 0  # DataLoader workers: JPEG decoding and preprocessing off the main thread
    overlap_postprocessing: bool = True  # host phase of a batch (resize, boxes) beside the next batch's pass
    part_size: int = 512
    part_seconds: float = 60.0  # a record part is also written after this many seconds (what an interrupt keeps)
    progress: bool = True
    verbose: bool = False  # tracebacks for user errors too (as HYDRA_FULL_ERROR=1)
    force: bool = False
    on_error: str = "raise"  # raise | record


def _cache_root() -> str:
    from benchmark.paths import cache_dir

    return str(cache_dir())


def base_config() -> DictConfig:
    """The schema of the whole config, with the option nodes open to new keys (see ``OPEN_NODES``)."""
    if not OmegaConf.has_resolver("benchmark_cache"):
        OmegaConf.register_new_resolver("benchmark_cache", _cache_root)
    node = OmegaConf.structured(Config)
    for key in OPEN_NODES:
        OmegaConf.set_struct(OmegaConf.select(node, key), False)
    return node


def register_configs() -> None:
    """Store the schema as ``base_config`` (the first entry of ``conf/config.yaml``'s defaults)."""
    ConfigStore.instance().store(name="base_config", node=base_config())


def schema_keys() -> list[str]:
    """Every dotted key of the schema (``batch_size``, ``metric.options``, ``dataset.limit``...)."""
    def walk(node, prefix):
        out = []
        for key in node:
            child = node._get_node(key)
            dotted = f"{prefix}{key}"
            out.append(dotted)
            if isinstance(child, DictConfig) and dotted not in OPEN_NODES:
                out += walk(child, dotted + ".")
        return out

    return walk(base_config(), "")


def _unlock(node: DictConfig) -> None:
    OmegaConf.set_struct(node, False)
    for key in node:
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            _unlock(child)


def validated(config, strict: bool = True) -> dict:
    """``config`` (a dict or Hydra's composed config) merged into the schema, as the command line composes
    it: defaults filled in, types checked, interpolations resolved, so that equivalent configs (``metric``
    without ``options`` or with ``options: {}``) are one config and one run identity. An unknown key is a
    ``ConfigError`` with a did-you-mean; a missing required key or a value of the wrong type names the key.
    A config Hydra composed (a ``DictConfig``, or ``strict=False`` for its plain copy) keeps the keys its
    command line added with ``+``."""
    from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

    from benchmark.errors import ConfigError, did_you_mean

    base = base_config()
    if not strict or isinstance(config, DictConfig):  # composed by Hydra, whose schema check let '+key=...' additions in
        _unlock(base)
    try:
        merged = OmegaConf.merge(base, OmegaConf.create(config) if isinstance(config, dict) else config)
    except ConfigKeyError as err:
        key = err.full_key or str(err.key)
        raise ConfigError(f"config key {key!r} does not exist.{did_you_mean(key, schema_keys())} "
                          f"Known keys: {', '.join(k for k in schema_keys() if '.' not in k)}") from None
    except ValidationError as err:
        raise ConfigError(f"config key {err.full_key!r}: {err.msg}") from None
    missing = sorted(OmegaConf.missing_keys(merged))
    if missing:
        raise ConfigError(f"config key(s) {', '.join(map(repr, missing))} missing: expected a value "
                          "(the command line fills them from conf/; a Python config must name them)")
    try:
        return OmegaConf.to_container(merged, resolve=True)
    except OmegaConfBaseException as err:
        raise ConfigError(f"config key {getattr(err, 'full_key', '')!r}: {getattr(err, 'msg', err)}") from None
