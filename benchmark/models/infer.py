"""Layer presets inferred from an architecture, for torchvision classifiers without a preset file.

Grad-CAM (Selvaraju et al., ICCV 2017) reads the last spatial feature map: the last module, in
execution order, whose output is ``[B, C, H, W]`` with ``H, W > 1`` (the shortest name when a
container and its last child return the same tensor). CAM (Zhou et al., CVPR 2016) needs the model
to end in global average pooling followed by exactly one linear layer; its head is that layer.
Excitation backprop and contrastive presets are not inferred: their paper layers are known only
for the preset architectures, so those methods report "not applicable" on an inferred model.
"""

from __future__ import annotations

import torch
from torch import nn


def _trace(model: nn.Module, input_size: int) -> list[tuple[str, nn.Module, tuple]]:
    """``(name, module, output shape)`` of every module, in the order their forward calls finish."""
    order, hooks = [], []
    for name, module in model.named_modules():
        if name:
            hooks.append(module.register_forward_hook(
                lambda m, _i, out, _n=name: order.append((_n, m, tuple(out.shape) if torch.is_tensor(out) else None))))
    try:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, input_size, input_size))
        model.train(was_training)
    finally:
        for hook in hooks:
            hook.remove()
    return order


def infer_layers(model: nn.Module, input_size: int = 224) -> tuple[dict[str, str], str | None]:
    """``({"gradcam": ..., "cam": ...}, cam_head)`` for a classifier; ``cam`` only when CAM-compatible."""
    order = _trace(model, input_size)
    pools = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.AvgPool2d)  # a pooled copy is no feature layer
    spatial = [(i, n, s) for i, (n, m, s) in enumerate(order)
               if s is not None and len(s) == 4 and s[2] > 1 and s[3] > 1 and not isinstance(m, pools)]
    if not spatial:
        return {}, None
    last, _name, shape = spatial[-1]
    # the same output reported by nested containers: prefer the outermost (shortest) name
    same = [n for i, n, s in spatial if s == shape and i >= last - 3 and (n.startswith(_name + ".") or _name.startswith(n + ".") or n == _name)]
    layer = min(same, key=len)
    layers = {"gradcam": layer}
    after = [(n, m, s) for n, m, s in order[last + 1:] if not list(m.children())]
    kinds = [m for _n, m, _s in after if not isinstance(m, (nn.Flatten, nn.Dropout, nn.Identity, nn.ReLU))]
    if (len(kinds) == 2 and isinstance(kinds[0], (nn.AdaptiveAvgPool2d, nn.AvgPool2d)) and isinstance(kinds[1], nn.Linear)
            and after[-1][1] is kinds[1]):
        layers["cam"] = layer
        head = next(n for n, m, _s in after if m is kinds[1])
        return layers, head
    return layers, None
