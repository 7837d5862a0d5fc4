"""Any torchvision classifier by name, with torchvision weights or a local checkpoint.

``weights`` is a torchvision weights name (``IMAGENET1K_V1``, ``DEFAULT`` or the full
``VGG16_Weights.IMAGENET1K_V1``), fetched by torchvision (internet, or the copy already under
``$TORCH_HOME``); ``null`` gives random weights. ``checkpoint`` is a state-dict file loaded with
``weights_only=True`` (``num_classes`` sets the head size for fine-tuned checkpoints). Class names: the
weights' categories; with random weights the architecture's (same output order), or the ``.json``
beside a checkpoint. An architecture without a preset file gets inferred layers (``infer.py``).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from urllib.error import URLError

import torch

from benchmark.models.imagenet import arch_categories, checkpoint_class_names
from benchmark.models.base import IMAGENET_MEAN, IMAGENET_STD, MODELS, ModelInfo, load_checkpoint, load_state


class OfflineWeightsError(RuntimeError):
    """torchvision weights could not be downloaded (no network and no copy under ``$TORCH_HOME``)."""


def _weights(arch: str, weights: str | None):
    import torchvision.models as tvm

    if weights is None:
        return None
    if "." in weights:
        return tvm.get_weight(weights)
    try:
        return tvm.get_model_weights(arch)[weights]
    except KeyError:
        names = [w.name for w in tvm.get_model_weights(arch)]
        raise KeyError(f"model {arch!r}: unknown weights {weights!r}; torchvision offers {names + ['DEFAULT']}") from None


def build_torchvision(name: str, weights: str | None = None, checkpoint: str | None = None, arch: str | None = None,
                      num_classes: int | None = None, cam_head: str | None = None, multilabel: bool = False,
                      input_size: int = 224, **_) -> tuple:
    """Build ``torchvision.models.<arch>`` with the requested weights or checkpoint."""
    import torchvision.models as tvm

    arch = arch or name
    known = tvm.list_models(module=tvm)
    if arch not in known:
        close = difflib.get_close_matches(arch, known, n=5, cutoff=0.6)
        raise KeyError(f"{arch!r} is not a torchvision classification model; "
                       + (f"close matches: {close}" if close else f"{len(known)} exist, e.g. {known[:8]}")
                       + " (torchvision.models.list_models() lists them all)")
    spec = _weights(arch, weights)
    kwargs = {}
    if spec is None:
        kwargs["num_classes"] = num_classes or 1000
        if arch in ("googlenet", "inception_v3"):
            kwargs.update(aux_logits=False, init_weights=False)
    try:
        model = tvm.get_model(arch, weights=spec, **kwargs)
    except URLError as err:  # offline and not yet under $TORCH_HOME
        raise OfflineWeightsError(
            f"model {name!r}: cannot download torchvision weights {spec} ({err.reason}); offline? Use "
            f"model.weights=null model.checkpoint=PATH with a local state-dict file, or put the file "
            f"{Path(spec.url).name} under {Path(torch.hub.get_dir()) / 'checkpoints'}") from None
    classes = list(spec.meta.get("categories", [])) if spec is not None else []
    if spec is None:  # random weights keep the architecture's output order; a checkpoint's .json names its own
        classes = checkpoint_class_names(checkpoint, kwargs["num_classes"]) or (
            arch_categories(arch) if kwargs["num_classes"] == len(arch_categories(arch)) else [])
    if checkpoint:
        load_state(model, load_checkpoint(checkpoint), str(checkpoint))
    info = ModelInfo(name=name, num_classes=num_classes or 1000, input_size=input_size, mean=IMAGENET_MEAN,
                     std=IMAGENET_STD, class_names=classes, cam_head=cam_head,
                     weights=None if spec is None else str(spec), checkpoint=checkpoint, multilabel=multilabel)
    return model, info


MODELS.register("torchvision", build_torchvision)
for _arch in ("vgg16", "alexnet", "googlenet", "resnet50"):
    MODELS.register(_arch, lambda _a=_arch, **kw: build_torchvision(**{"arch": _a, **kw}))
