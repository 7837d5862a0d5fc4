"""VGG16-GAP: the CAM paper's VGGnet-GAP (Zhou et al., CVPR 2016, Sec. 3), for the CAM row of Table 1.

Zhou et al. remove the layers after conv5_3 of VGG-16 (pool5 and the fully connected layers; the
map stays at 14x14 for a 224x224 input), add a convolutional layer of 3x3, stride 1, pad 1 with
1024 units, then global average pooling and a softmax layer; the network is fine-tuned on ILSVRC.
Here (module names in brackets, which the layer presets in ``conf/model/vgg16_gap.yaml`` use):

* ``features``: torchvision VGG-16's ``features.0`` .. ``features.29`` (conv1_1 .. relu5_3, the
  same indices as the ``vgg16`` model, so ``features.23`` is pool4); pool5 (``features.30``) removed;
* ``cam_conv``: ``Conv2d(512, 1024, 3, stride=1, padding=1)``, then ``cam_relu`` (ReLU) — the
  CAM / Grad-CAM layer, 1024 x 14 x 14 at 224;
* ``avgpool``: global average pooling; ``fc``: ``Linear(1024, num_classes)`` (1000 for ILSVRC) —
  the CAM head, so the model is CAM-compatible (global pooling + one linear layer).

No weights are published in torchvision format, so the model needs a checkpoint (a state dict
loaded with ``weights_only=True``); ``python -m benchmark.training.finetune vgg16_gap --data-root
ILSVRC_TRAIN --out checkpoints/vgg16_gap.pt`` makes one from torchvision's ImageNet VGG-16
(recipe in ``benchmark.training.vgg16_gap.finetune_vgg16_gap``). Class names come from the checkpoint's
``.json`` when it has them, else torchvision's ImageNet categories for 1000 classes.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from benchmark.models.base import IMAGENET_MEAN, IMAGENET_STD, MODELS, ModelInfo, load_checkpoint, load_state

CAM_UNITS = 1024
RECIPE_COMMAND = ("python -m benchmark.training.finetune vgg16_gap --data-root ILSVRC2012_TRAIN_FOLDER "
                  "--out checkpoints/vgg16_gap.pt --device cuda")
HOW_TO = (f"make one by fine-tuning torchvision's ImageNet VGG-16 on ILSVRC train ({RECIPE_COMMAND}) and point "
          "$VGG16_GAP_CHECKPOINT or model.checkpoint at it")


def vgg16_conv5_3() -> nn.Sequential:
    """VGG-16's feature layers up to relu5_3 (``features.0`` .. ``features.29``), without pool5."""
    from torchvision.models.vgg import cfgs, make_layers

    features = make_layers(cfgs["D"], batch_norm=False)
    return features[:30]


class VGG16GAP(nn.Module):
    """VGG-16 conv1_1..relu5_3, 3x3 conv with 1024 units + ReLU, global average pooling, linear."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.features = vgg16_conv5_3()
        self.cam_conv = nn.Conv2d(512, CAM_UNITS, kernel_size=3, stride=1, padding=1)
        self.cam_relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(CAM_UNITS, num_classes)
        init_new_layers(self)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """The layers added after relu5_3: ``features [B, 512, h, w] -> logits [B, C]``."""
        return self.fc(torch.flatten(self.avgpool(self.cam_relu(self.cam_conv(features))), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def init_new_layers(model: VGG16GAP) -> None:
    """torchvision's VGG initialisation for the added layers: Kaiming-normal conv, N(0, 0.01) linear."""
    nn.init.kaiming_normal_(model.cam_conv.weight, mode="fan_out", nonlinearity="relu")
    nn.init.zeros_(model.cam_conv.bias)
    nn.init.normal_(model.fc.weight, 0, 0.01)
    nn.init.zeros_(model.fc.bias)


def _class_names(path: Path, num_classes: int) -> list[str]:
    meta = path.with_suffix(".json")
    if meta.is_file():
        names = json.loads(meta.read_text()).get("class_names") or []
        if len(names) == num_classes:
            return list(names)
    if num_classes == 1000:
        import torchvision.models as tvm

        return list(tvm.VGG16_Weights.IMAGENET1K_V1.meta["categories"])
    return []


@MODELS.register("vgg16_gap")
def build_vgg16_gap(name: str = "vgg16_gap", weights: str | None = None, checkpoint: str | None = None,
                    num_classes: int | None = None, cam_head: str | None = "fc", multilabel: bool = False,
                    input_size: int | None = None, **_) -> tuple[nn.Module, ModelInfo]:
    """VGG16-GAP from a checkpoint (required); errors say how to make one."""
    if weights is not None:
        raise ValueError(f"model {name!r}: weights={weights!r}; VGG16-GAP has no downloadable weights, "
                         f"it loads a checkpoint (weights: null): {HOW_TO}")
    if not checkpoint:
        raise FileNotFoundError(f"model {name!r} needs a checkpoint (model.checkpoint is not set): {HOW_TO}")
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"model {name!r}: checkpoint {path} not found; {HOW_TO}")
    num_classes = int(num_classes or 1000)
    model = VGG16GAP(num_classes)
    state = load_checkpoint(path)
    if any(k.startswith("classifier.") for k in state) or "cam_conv.weight" not in state:
        raise ValueError(f"checkpoint {path} is not a VGG16-GAP state dict (expected keys features.0-28.*, "
                         f"cam_conv.*, fc.*; got e.g. {sorted(state)[-3:]}); a plain VGG-16 checkpoint does not fit. "
                         + HOW_TO[0].upper() + HOW_TO[1:])
    fc = state.get("fc.weight")
    if fc is not None and fc.ndim == 2 and fc.shape[0] != num_classes:
        raise ValueError(f"checkpoint {path}: fc.weight {tuple(fc.shape)} has {fc.shape[0]} classes, the model "
                         f"{num_classes} (model.num_classes); set model.num_classes={fc.shape[0]} to use it, or use a "
                         "1000-class ILSVRC checkpoint for Table 1")
    load_state(model, state, str(path))
    info = ModelInfo(name=name, num_classes=num_classes, input_size=int(input_size or 224), mean=IMAGENET_MEAN,
                     std=IMAGENET_STD, class_names=_class_names(path, num_classes), cam_head=cam_head,
                     checkpoint=str(path), multilabel=multilabel)
    return model, info
