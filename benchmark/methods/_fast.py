"""Speed options of the gradient methods: channels-last layout and a low-precision trunk.

Both are off by default and set per method (``method.options.channels_last=true``,
``method.options.trunk_precision=auto``):

* ``channels_last``: the method runs on a channels-last (NHWC) copy of the model, which oneDNN
  (CPU) and cuDNN (GPU) convolutions run faster; the caller's model is not touched (the copy costs
  the model's parameter memory once). Maps equal the float32 maps up to summation order
  (tolerance 1e-4 of the largest value; ``tests/test_fast_paths.py``).
* ``trunk_precision`` (Grad-CAM family only): ``float32`` (default), ``bfloat16``, ``float16`` or
  ``auto`` (bfloat16 on CPU, float16 on CUDA). The trunk below the target layer runs under
  autocast; the layer's activations are cast back to float32 and autocast is switched off from
  there on, so the head and its backward (the gradients that weight the channels) run in float32.
  A pixel-space method differentiates the trunk itself and refuses the option. Tolerance:
  bfloat16 keeps 8 mantissa bits, so activations carry ~0.4 % relative error; the tests require a
  per-map Pearson correlation of at least 0.98 with the float32 map, and ``make bench`` reports the
  agreement it observed per model. Maps whose contrast is small against the activations (untrained
  weights, near-constant maps) can fall below that; check the bench's agreement table for a model
  before relying on it.
"""

from __future__ import annotations

import contextlib
import copy

import torch
from torch import nn

from benchmark.models.base import resolve_layer

PRECISIONS = ("float32", "bfloat16", "float16", "auto")


def channels_last_copy(model: nn.Module) -> nn.Module:
    """Deep copy of ``model`` with 4-D parameters and buffers in channels-last format."""
    return copy.deepcopy(model).to(memory_format=torch.channels_last)


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``; ``None`` for float32 (no autocast)."""
    if precision not in PRECISIONS:
        raise ValueError(f"trunk_precision={precision!r}; expected one of {PRECISIONS}")
    if precision == "float32":
        return None
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else torch.bfloat16
    return torch.bfloat16 if precision == "bfloat16" else torch.float16


@contextlib.contextmanager
def trunk_autocast(model: nn.Module, layer: str, device: torch.device, dtype: torch.dtype | None = None):
    """Scope: autocast for the trunk up to ``layer``, float32 from the layer's output on.

    The forward hook is registered before the method registers its own layer hook (which makes
    the output the autograd leaf), so it runs first; it switches autocast off for the rest of the
    forward, as ``Backprop``'s hook switches grad mode on. Leaving the ``torch.autocast`` scope
    restores the caller's autocast state, whatever happened inside.
    """
    module = resolve_layer(model, layer)
    kind = device.type
    dtype = dtype or autocast_dtype(device)

    def to_float32(_module, _inputs, output):
        torch.set_autocast_enabled(kind, False)
        return output.float()

    handle = module.register_forward_hook(to_float32)
    try:
        with torch.autocast(kind, dtype=dtype):
            yield
    finally:
        handle.remove()


class FastPath:
    """A method's speed options: the model it runs on and the scope around its pass."""

    def __init__(self, model: nn.Module, channels_last: bool = False, trunk_precision: str = "float32",
                 layer: str | None = None, method: str = "method"):
        if trunk_precision not in PRECISIONS:
            raise ValueError(f"{method}: trunk_precision={trunk_precision!r}; expected one of {PRECISIONS}")
        if trunk_precision != "float32" and layer is None:
            raise ValueError(f"{method}: trunk_precision={trunk_precision!r} needs a target layer (Grad-CAM "
                             "family); a pixel-space method differentiates the whole trunk, keep float32")
        self.channels_last, self.precision, self.layer = bool(channels_last), trunk_precision, layer
        self.model = channels_last_copy(model) if self.channels_last else model

    def images(self, images: torch.Tensor) -> torch.Tensor:
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images

    def scope(self, device: torch.device):
        dtype = autocast_dtype(device, self.precision)
        if dtype is None:
            return contextlib.nullcontext()
        return trunk_autocast(self.model, self.layer, device, dtype)
