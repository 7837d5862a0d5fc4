"""TorchRay's Caffe-converted VOC07/COCO14 VGG-16 and ResNet-50 as torchvision-compatible models.

The pointing-game models of Zhang et al. (excitation backprop, ECCV 2016), fine-tuned in Caffe on
PASCAL VOC 2007 (20 classes) and COCO 2014 (80 classes) and converted to PyTorch state dicts by
TorchRay (``vgg16_voc``, ``vgg16_coco``, ``resnet50_voc``, ``resnet50_coco``). Config:
``arch: torchray``, ``torchray_arch: vgg16|resnet50``, ``checkpoint: <file>``, ``num_classes``.

Checkpoint layout assumed (that of TorchRay's published files): one flat state dict of tensors.

* VGG-16: ``features.{0,2,5,...,28}.{weight,bias}`` with torchvision's indices; fc6/fc7/fc8 as
  ``classifier.0`` / ``classifier.2`` / ``classifier.4`` (Caffe has no dropout layers between them;
  torchvision's ``classifier.0/3/6`` are accepted too), their weights either conv-shaped
  (``[4096, 512, 7, 7]``, ``[4096, 4096, 1, 1]``, ``[C, 4096, 1, 1]``) or flat; the flattening order
  (channel, row, column) is torchvision's, so a reshape converts a fully convolutional head.
* ResNet-50: torchvision names, but ``conv1`` has a bias and every BatchNorm is two Caffe layers,
  ``<bn>.0.{running_mean,running_var}`` (BatchNorm) and ``<bn>.1.{weight,bias}`` (Scale), for
  ``bn1``, ``layerL.B.bnK`` and ``layerL.B.downsample.1``; ``fc.weight`` ``[C, 2048]`` or
  ``[C, 2048, 1, 1]``.
* Both: the first convolution's input channels are in Caffe's BGR order.

Conversion: the first convolution's input channels are reversed, so the model takes RGB; Caffe's
input (BGR, 0-255, minus the BGR mean 103.939, 116.779, 123.68) then equals the suite's
``(x - mean) / std`` on RGB in [0, 1] with ``mean = (123.68, 116.779, 103.939) / 255`` and
``std = 1/255`` exactly (``conv(flip(x), W) = conv(x, flip(W))``), so no channel flip is needed
in preprocessing. The architecture follows Caffe: max pools round up (``ceil_mode``); ResNet-50
has the Caffe stem (biased ``conv1``, 3x3/2 max pool without padding) and its stride-2 on the
first 1x1 convolution of ``layer2..4``'s first block. At 224x224 input the feature maps are 7x7, so
the torchvision heads (adaptive 7x7 average pool + linear for VGG, global pooling + ``fc`` for
ResNet, CAM-compatible) give exactly the fully convolutional heads' logits.
"""

from __future__ import annotations

import re
from pathlib import Path

from torch import nn

from benchmark.models.base import MODELS, ModelInfo, load_checkpoint, load_state

ARCHS = ("vgg16", "resnet50")
CAFFE_MEAN_RGB = (123.68 / 255, 116.779 / 255, 103.939 / 255)
CAFFE_STD = (1 / 255,) * 3
VOC_CLASSES = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor"]
FIRST_CONV = {"vgg16": "features.0.weight", "resnet50": "conv1.weight"}
_VGG_FC = {"classifier.2.": "classifier.3.", "classifier.4.": "classifier.6."}
_CAFFE_BN = re.compile(r"(^|\.)(bn\d|downsample\.1)\.[01]\.")


def caffe_vgg16(num_classes: int) -> nn.Module:
    """torchvision VGG-16 with Caffe's round-up max pooling."""
    import torchvision.models as tvm

    model = tvm.vgg16(weights=None, num_classes=num_classes)
    for module in model.modules():
        if isinstance(module, nn.MaxPool2d):
            module.ceil_mode = True
    return model


def caffe_resnet50(num_classes: int) -> nn.Module:
    """torchvision ResNet-50 patched to the Caffe ResNet-50 definition (stem, stride placement)."""
    import torchvision.models as tvm

    model = tvm.resnet50(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=True)
    model.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=0, ceil_mode=True)
    for stage in (model.layer2, model.layer3, model.layer4):
        stage[0].conv1.stride, stage[0].conv2.stride = (2, 2), (1, 1)
    return model


BUILDERS = {"vgg16": caffe_vgg16, "resnet50": caffe_resnet50}


def convert_state(state: dict, arch: str, where: str = "checkpoint") -> dict:
    """TorchRay checkpoint layout (module docstring) -> the state dict of ``BUILDERS[arch]``."""
    out = {}
    torchvision_fc = "classifier.6.weight" in state
    for key, value in state.items():
        if arch == "vgg16" and not torchvision_fc:
            key = next((key.replace(a, b, 1) for a, b in _VGG_FC.items() if key.startswith(a)), key)
        if arch == "resnet50":
            key = _CAFFE_BN.sub(r"\1\2.", key)
        if key.endswith("weight") and (key.startswith("classifier.") or key == "fc.weight"):
            value = value.reshape(value.shape[0], -1)
        out[key] = value
    first = FIRST_CONV[arch]
    if first not in out or out[first].dim() != 4 or out[first].shape[1] != 3:
        raise ValueError(f"{where}: TorchRay {arch} checkpoint: expected {first!r} of shape [out, 3, k, k] "
                         "(BGR input channels)")
    out[first] = out[first][:, [2, 1, 0]]  # BGR -> RGB input channels
    return out


def _class_names(num_classes: int) -> list[str]:
    import torchvision.models as tvm

    if num_classes == len(VOC_CLASSES):
        return list(VOC_CLASSES)
    if num_classes == 80:  # COCO 2014, in category-id order (TorchRay's and the manifests' order)
        names = tvm.detection.FasterRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"]
        return [n for n in names if n not in ("__background__", "N/A")]
    return []


def load_torchray_checkpoint(path: str | Path | None, arch: str, num_classes: int,
                             name: str | None = None) -> tuple[nn.Module, ModelInfo]:
    """Build the Caffe-style ``arch`` and load a TorchRay checkpoint (``None``: random weights)."""
    if arch not in BUILDERS:
        raise KeyError(f"torchray_arch={arch!r}; expected one of {list(ARCHS)}")
    state = None if path is None else convert_state(load_checkpoint(path), arch, str(path))
    model = BUILDERS[arch](num_classes)
    if state is not None:
        own = model.state_dict()
        for key, buffer in own.items():  # Caffe has no batch counter; keep the model's own
            if key.endswith("num_batches_tracked"):
                state.setdefault(key, buffer)
        load_state(model, state, f"{path} (TorchRay {arch} layout)")
    info = ModelInfo(name=name or f"torchray_{arch}", num_classes=num_classes, input_size=224,
                     mean=CAFFE_MEAN_RGB, std=CAFFE_STD, class_names=_class_names(num_classes),
                     cam_head="fc" if arch == "resnet50" else None,
                     checkpoint=None if path is None else str(path), multilabel=True)
    return model, info


@MODELS.register("torchray")
def build_torchray(name: str, weights: str | None = None, checkpoint: str | None = None,
                   torchray_arch: str | None = None, num_classes: int | None = None,
                   multilabel: bool = True, cam_head: str | None = None, **_) -> tuple:
    """Registry entry for ``arch: torchray`` configs (``checkpoint`` null: random weights)."""
    if torchray_arch is None:
        raise ValueError(f"model {name!r}: arch 'torchray' needs torchray_arch, one of {list(ARCHS)}")
    if weights is not None:
        raise ValueError(f"model {name!r}: TorchRay models take a checkpoint file, not weights={weights!r}")
    if not num_classes:
        raise ValueError(f"model {name!r}: arch 'torchray' needs num_classes (20 for VOC07, 80 for COCO14)")
    model, info = load_torchray_checkpoint(checkpoint, torchray_arch, int(num_classes), name=name)
    info.multilabel = multilabel
    info.cam_head = cam_head or info.cam_head
    return model, info
