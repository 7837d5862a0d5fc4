"""Model registry, metadata and layer resolution shared by every architecture.

``build_model`` returns the model in eval mode with every parameter frozen (no weight gradients are
ever computed by the suite) and a ``ModelInfo`` describing input size, normalization, class names,
layer presets (``gradcam``, ``cam``, ``ebp``, ``contrast``) and CAM-compatibility. Layer presets
live in ``conf/model/<name>.yaml`` (the one place they are written) and are read from there when the
caller gives none.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch import nn

from benchmark.models.imagenet import imagenet_ids_for
from benchmark.registry import Registry

MODELS = Registry("model")
CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class ModelInfo:
    """What the rest of the suite needs to know about a built model."""

    name: str
    num_classes: int
    input_size: int = 224
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    class_names: list[str] = field(default_factory=list)
    class_ids: list[str] = field(default_factory=list)  # WordNet ids of the outputs, when known
    layers: dict[str, str] = field(default_factory=dict)
    cam_head: str | None = None  # the linear layer after global pooling, when CAM-compatible
    weights: str | None = None
    checkpoint: str | None = None
    multilabel: bool = False

    @property
    def cam_compatible(self) -> bool:
        return self.cam_head is not None and "cam" in self.layers


def preset(name: str) -> dict:
    """The model's entry in ``conf/model/<name>.yaml`` as a plain dict (empty if there is none)."""
    path = CONF_DIR / "model" / f"{name}.yaml"
    if not path.is_file():
        return {}
    data = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    data.pop("defaults", None)
    return data


def resolve_layer(model: nn.Module, layer: str) -> nn.Module:
    """Find a submodule by its dotted name; the error names close candidates."""
    modules = dict(model.named_modules())
    if layer in modules and layer != "":
        return modules[layer]
    close = difflib.get_close_matches(layer, [n for n in modules if n], n=5, cutoff=0.5)
    raise KeyError(
        f"layer {layer!r} does not exist in {type(model).__name__}"
        + (f"; close candidates: {', '.join(close)}" if close else "")
    )


def freeze(model: nn.Module) -> nn.Module:
    """Eval mode and ``requires_grad=False`` on every parameter."""
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return model


def load_checkpoint(path: str | Path) -> dict:
    """Load a state dict safely (``weights_only=True``: a downloaded file cannot run code)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path}: file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError or RuntimeError depending on content
        raise ValueError(
            f"checkpoint {path}: refused or unreadable with weights_only=True "
            f"(expected a plain state dict of tensors): {err}"
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {path}: expected a state dict, got {type(state).__name__}")
    return state


def load_state(model: nn.Module, state: dict, where: str) -> None:
    """Load a state dict strictly; a wrong architecture or class count gets a precise message."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
             for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:5]}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected[:5]}")
        if wrong:
            parts.append(f"shape mismatch {wrong[:3]}")
        raise ValueError(f"checkpoint {where} does not fit {type(model).__name__}: " + "; ".join(parts))
    model.load_state_dict(state)


def build_model(name: str, weights: str | None = None, checkpoint: str | None = None,
                layers: dict | None = None, **options) -> tuple[nn.Module, ModelInfo]:
    """Build a registered model, frozen in eval mode, with its metadata.

    ``weights`` names pretrained weights (torchvision enum name, or the model's own source);
    ``checkpoint`` is a local state-dict file. ``layers`` overrides the preset layer names.
    """
    import benchmark.models  # noqa: F401  (registers every architecture)

    spec = preset(name)
    merged = {k: v for k, v in spec.items()
              if k not in ("name", "layers", "weights", "checkpoint", "preprocessing", "trained_on")}
    merged.update({k: v for k, v in options.items() if v is not None})
    arch = merged.get("arch") or name
    factory = MODELS.get(arch if arch in MODELS else "torchvision")
    model, info = factory(name=name, weights=weights, checkpoint=checkpoint, **merged)
    if not spec.get("layers") and not info.layers and arch not in MODELS:  # a torchvision model without a preset file
        from benchmark.models.infer import infer_layers

        info.layers, head = infer_layers(model, info.input_size)
        info.cam_head = info.cam_head or head
    info.layers = {**spec.get("layers", {}), **info.layers, **(layers or {})}
    if not info.class_ids:
        info.class_ids = imagenet_ids_for(info.class_names, info.num_classes)
    for role, layer in info.layers.items():
        if layer:
            try:
                resolve_layer(model, layer)
            except KeyError as err:
                raise KeyError(f"model {name!r} layer preset {role!r} (config field 'model.layers.{role}'): "
                               f"{err.args[0]}") from None
    return freeze(model), info
