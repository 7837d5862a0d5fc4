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
    cache: str = "${oc.env:BENCHMARK_CACHE,.cache}"


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
    progress: bool = True
    force: bool = False
    on_error: str = "raise"  # raise | record


def base_config() -> DictConfig:
    """The schema of the whole config, with the option nodes open to new keys (see ``OPEN_NODES``)."""
    node = OmegaConf.structured(Config)
    for key in OPEN_NODES:
        OmegaConf.set_struct(OmegaConf.select(node, key), False)
    return node


def register_configs() -> None:
    """Store the schema as ``base_config`` (the first entry of ``conf/config.yaml``'s defaults)."""
    ConfigStore.instance().store(name="base_config", node=base_config())
