"""Optional speed-ups measured by ``benchmark.bench``: channels-last layout and a low-precision trunk.

Both wrap an unchanged method from the outside (the method modules are not touched):

* ``channels_last_copy(model)``: a copy of the model in channels-last (NHWC) memory format, which
  oneDNN (CPU) and cuDNN (GPU) convolutions run faster; the maps equal the float32 maps up to
  summation order (tolerance 1e-4 of the largest value, ``tests/test_fast_paths.py``).
* ``trunk_autocast(model, layer, device)``: the trunk below the Grad-CAM layer runs under autocast
  (bfloat16 on CPU, float16 on CUDA); the layer's activations are cast back to float32 and
  autocast is switched off from there on, so the head and its backward (the gradients that weight
  the channels) run in float32. Only Grad-CAM-style methods (graph from a layer) can use it: a
  pixel-space method differentiates the trunk itself. Tolerance: bfloat16 keeps 8 mantissa bits,
  so activations carry ~0.4 % relative error; the bench reports the agreement it observed and the
  tests require a per-map Pearson correlation of at least 0.98 with the float32 map.
"""

from __future__ import annotations

import contextlib
import copy

import torch
from torch import nn

from benchmark.models.base import resolve_layer


def channels_last_copy(model: nn.Module) -> nn.Module:
    """Deep copy of ``model`` with 4-D parameters and buffers in channels-last format."""
    return copy.deepcopy(model).to(memory_format=torch.channels_last)


def autocast_dtype(device: torch.device) -> torch.dtype:
    """float16 on CUDA (tensor cores, 11-bit mantissa); bfloat16 on CPU (AVX512-BF16/AMX)."""
    return torch.float16 if device.type == "cuda" else torch.bfloat16


@contextlib.contextmanager
def trunk_autocast(model: nn.Module, layer: str, device: torch.device):
    """Scope: autocast for the trunk up to ``layer``, float32 from the layer's output on.

    The forward hook is registered before the method registers its own layer hook (which makes
    the output the autograd leaf), so it runs first; it switches autocast off for the rest of the
    forward, as ``Backprop``'s hook switches grad mode on. Leaving the ``torch.autocast`` scope
    restores the caller's autocast state, whatever happened inside.
    """
    module = resolve_layer(model, layer)
    kind = device.type

    def to_float32(_module, _inputs, output):
        torch.set_autocast_enabled(kind, False)
        return output.float()

    handle = module.register_forward_hook(to_float32)
    try:
        with torch.autocast(kind, dtype=autocast_dtype(device)):
            yield
    finally:
        handle.remove()


def pearson_per_map(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of corresponding maps ``[..., H, W]`` (NaN for a constant map)."""
    x = a.flatten(-2).double()
    y = b.flatten(-2).double()
    x = x - x.mean(-1, keepdim=True)
    y = y - y.mean(-1, keepdim=True)
    return (x * y).sum(-1) / (x.norm(dim=-1) * y.norm(dim=-1))


def max_normalized_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest difference of two map stacks after min-max normalizing each map to [0, 1]."""
    def norm(m):
        f = m.flatten(-2).double()
        lo, hi = f.amin(-1, keepdim=True), f.amax(-1, keepdim=True)
        return (f - lo) / (hi - lo).clamp_min(1e-30)

    return float((norm(a) - norm(b)).abs().max())
