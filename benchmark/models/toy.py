"""Two small classifiers for the embedded synthetic data, trained by ``benchmark.training``.

``toy_vgg`` mirrors VGG-16's structure (conv/ReLU blocks with max pooling, then flatten and a
fully-connected head with ReLUs); ``toy_gap`` mirrors GoogLeNet/ResNet (conv blocks, global average
pooling, one linear layer) and is therefore CAM-compatible. Input 64x64, normalized with the
ImageNet statistics. ``toy_vgg``, ``toy_gap`` and ``toy_gap_multi`` load the weights shipped with the
package (``benchmark.models.shipped``, checked against their recorded sha256); nothing is trained
here or on demand (``python -m benchmark.training --retrain`` remakes the shipped files). Another
toy model name reads ``<cache>/models/<name>.pt`` or the given ``checkpoint``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from benchmark.models.base import MODELS, ModelInfo, load_checkpoint, load_state
from benchmark.models.shipped import SHIPPED, verify
from benchmark.paths import models_dir

TOY_INPUT = 64
WIDTHS = (16, 32, 64)


def _block(cin: int, cout: int, convs: int, pool: bool) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return layers


def toy_features(widths=WIDTHS) -> nn.Sequential:
    """64 -> 32 -> 16: two pooled blocks, then a conv block at 16x16 whose last ReLU
    (``features.16``) is the Grad-CAM/CAM layer (16x16, like VGG-16's relu5_3 at 14x14)."""
    w1, w2, w3 = widths
    return nn.Sequential(*_block(3, w1, 1, True), *_block(w1, w2, 2, True), *_block(w2, w3, 2, False))


class ToyVGG(nn.Module):
    """Conv trunk, max pool to 4x4, flatten, two fully-connected ReLU layers, classifier."""

    def __init__(self, num_classes: int, widths=WIDTHS, hidden: int = 128):
        super().__init__()
        self.features = toy_features(widths)
        self.pool = nn.MaxPool2d(4)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(widths[-1] * 16, hidden), nn.ReLU(inplace=True), nn.Dropout(0.3),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(0.3), nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


class ToyGAP(nn.Module):
    """Conv trunk, global average pooling, one linear layer (CAM-compatible)."""

    def __init__(self, num_classes: int, widths=WIDTHS):
        super().__init__()
        self.features = toy_features(widths)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(self.features(x)), 1))


ARCHS = {"toy_vgg": ToyVGG, "toy_gap": ToyGAP}


def default_checkpoint(name: str) -> Path:
    return models_dir() / f"{name}.pt"


def _build_toy(arch: str, name: str, weights: str | None, checkpoint: str | None,
               num_classes: int = 10, multilabel: bool = False, **_) -> tuple[nn.Module, ModelInfo]:
    """Build a toy model: ``checkpoint`` if given, else the shipped, sha256-checked weights of ``name``
    (a toy name that ships none: ``<cache>/models/<name>.pt``), or random weights."""
    model = ARCHS[arch](num_classes)
    info = ModelInfo(name=name, num_classes=num_classes, input_size=TOY_INPUT,
                     cam_head="fc" if arch == "toy_gap" else None, multilabel=multilabel)
    if weights in (None, "random"):
        path = None if weights == "random" else Path(checkpoint) if checkpoint else default_checkpoint(name)
    else:
        raise ValueError(f"model {name!r}: weights={weights!r} not understood; use null (trained toy weights) or 'random'")
    if path is not None:
        if checkpoint is None and name in SHIPPED:
            path, _ = verify(name)  # WeightsError naming the file when it is missing or altered
        elif not path.is_file():
            raise FileNotFoundError(
                f"model {name!r}: checkpoint {path} not found; give model.checkpoint=FILE (a state dict), "
                f"or build the model with weights='random'")
        load_state(model, load_checkpoint(path), str(path))
        info.checkpoint = str(path)
        meta = path.with_suffix(".json")
        if meta.is_file():
            import json

            info.class_names = json.loads(meta.read_text()).get("class_names", [])
    return model, info


@MODELS.register("toy_vgg")
def build_toy_vgg(arch=None, **kwargs):
    return _build_toy("toy_vgg", **kwargs)


@MODELS.register("toy_gap")
def build_toy_gap(arch=None, **kwargs):
    return _build_toy("toy_gap", **kwargs)
