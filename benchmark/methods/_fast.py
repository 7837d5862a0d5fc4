"""Speed options of the gradient methods: channels-last layout, folded BatchNorm, a low-precision trunk.

All are off by default and set per method (``method.options.channels_last=true``,
``method.options.fold_batchnorm=true``, ``method.options.trunk_precision=auto``):

* ``channels_last``: the method runs on a channels-last (NHWC) copy of the model, which oneDNN
  (CPU) and cuDNN (GPU) convolutions run faster; the caller's model is not touched (the copy costs
  the model's parameter memory once). Maps equal the float32 maps up to summation order
  (tolerance 1e-4 of the largest value; ``tests/test_fast_paths.py``).
* ``fold_batchnorm``: the method runs on a copy of the model in which every eval-mode
  ``BatchNorm2d`` whose only input is a ``Conv2d`` (whose only consumer is that BatchNorm) is folded
  into the convolution (``W' = W * g / sqrt(v + eps)``, ``b' = (b - m) * g / sqrt(v + eps) + beta``)
  and replaced by ``nn.Identity``; module names stay, so layer presets and hooks still resolve.
  An eval-mode BatchNorm is an affine map, so outputs and gradients are unchanged up to rounding
  (same tolerance as ``channels_last``). The pairs are found on an ``torch.fx`` trace; a pair that
  straddles the target layer's boundary is left alone, so the layer's activations are the same
  tensor. A model that ``torch.fx`` cannot trace runs unfolded, with a warning.
* ``trunk_precision`` (Grad-CAM family only): ``float32`` (default), ``bfloat16``, ``float16`` or
  ``auto`` (bfloat16 on CPU, float16 on CUDA). The trunk below the target layer runs under
  autocast; the layer's activations are cast back to float32 and autocast is switched off from
  there on, so the head and its backward (the gradients that weight the channels) run in float32.
  A pixel-space method differentiates the trunk itself and refuses the option. Tolerance:
  bfloat16 keeps 8 mantissa bits, so activations carry ~0.4 % relative error; the tests require a
  per-map Pearson correlation of at least 0.98 with the float32 map, and ``make bench`` reports the
  agreement it observed per model. A map that the ReLU reduces to a thin sliver (almost all of
  it negative, as on untrained VGG-16) can fall below that; check the bench's agreement table for
  a model before relying on it.
"""

from __future__ import annotations

import contextlib
import copy
import warnings

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from benchmark.models.base import resolve_layer

PRECISIONS = ("float32", "bfloat16", "float16", "auto")


def _inside(name: str, layer: str | None) -> bool:
    return layer is not None and (name == layer or name.startswith(layer + "."))


_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


@contextlib.contextmanager
def _hooks_suspended(model: nn.Module):
    """Scope in which the modules of ``model`` have no module hooks; restored on exit."""
    saved = []
    for m in model.modules():
        for attr in _HOOK_DICTS:
            hooks = getattr(m, attr, None)
            if hooks:
                saved.append((m, attr, hooks))
                setattr(m, attr, type(hooks)())
    try:
        yield
    finally:
        for m, attr, hooks in saved:
            setattr(m, attr, hooks)


def batchnorm_pairs(model: nn.Module, layer: str | None = None) -> list[tuple[str, str]]:
    """``(conv, batchnorm)`` module names that ``fold_batchnorms`` may fold, from an ``torch.fx`` trace.

    A pair qualifies when the BatchNorm's input is the convolution's output and nothing else uses
    that output, each module is called once per forward, the BatchNorm is in eval mode with running
    statistics, and the target ``layer`` contains both modules or neither.
    """
    import torch.fx

    with _hooks_suspended(model):  # a hook written for tensors may not accept fx's proxies
        graph = torch.fx.symbolic_trace(model).graph
    modules = dict(model.named_modules())
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or type(modules[node.target]) is not nn.BatchNorm2d:
            continue
        src = node.args[0] if node.args else None
        if not isinstance(src, torch.fx.Node) or src.op != "call_module" or type(modules[src.target]) is not nn.Conv2d:
            continue
        bn = modules[node.target]
        if (len(src.users) != 1 or calls[src.target] != 1 or calls[node.target] != 1 or bn.training
                or modules[src.target].training or not bn.track_running_stats or bn.running_mean is None):
            continue
        if _inside(src.target, layer) != _inside(node.target, layer):
            continue
        pairs.append((src.target, node.target))
    return pairs


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def fold_batchnorms(model: nn.Module, layer: str | None = None) -> list[tuple[str, str]]:
    """In place: fold each ``batchnorm_pairs`` BatchNorm into its convolution, the BatchNorm
    becoming ``nn.Identity``. Returns the folded pairs (none, with a warning, if the trace fails)."""
    try:
        pairs = batchnorm_pairs(model, layer)
    except Exception as err:  # noqa: BLE001  (any tracing failure: run unfolded)
        warnings.warn(f"fold_batchnorm: torch.fx could not trace {type(model).__name__} ({err}); "
                      "BatchNorm layers are left unfolded")
        return []
    for conv_name, bn_name in pairs:
        conv, bn = model.get_submodule(conv_name), model.get_submodule(bn_name)
        _set_module(model, conv_name, fuse_conv_bn_eval(conv, bn))
        _set_module(model, bn_name, nn.Identity())
    return pairs


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
                 layer: str | None = None, method: str = "method", fold_batchnorm: bool = False):
        if trunk_precision not in PRECISIONS:
            raise ValueError(f"{method}: trunk_precision={trunk_precision!r}; expected one of {PRECISIONS}")
        if trunk_precision != "float32" and layer is None:
            raise ValueError(f"{method}: trunk_precision={trunk_precision!r} needs a target layer (Grad-CAM "
                             "family); a pixel-space method differentiates the whole trunk, keep float32")
        self.channels_last, self.precision, self.layer = bool(channels_last), trunk_precision, layer
        self.model = copy.deepcopy(model) if fold_batchnorm or self.channels_last else model
        self.folded = fold_batchnorms(self.model, layer) if fold_batchnorm else []
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)

    def images(self, images: torch.Tensor) -> torch.Tensor:
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images

    def scope(self, device: torch.device):
        dtype = autocast_dtype(device, self.precision)
        if dtype is None:
            return contextlib.nullcontext()
        return trunk_autocast(self.model, self.layer, device, dtype)
