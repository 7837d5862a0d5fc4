"""The one backprop driver every gradient method shares, and scoped ReLU backward rules.

Two pieces, both scoped so the caller's model and the global ``torch`` functions are untouched:

* ``relu_rule(rule)``: a ``TorchFunctionMode`` that, while active, replaces every ReLU call
  (``nn.ReLU`` modules, reused ones, ``F.relu``, ``torch.relu``, ``Tensor.relu`` and their in-place
  forms; clipped ReLUs such as ``nn.ReLU6`` as ``min(ReLU(x), max)``) by an out-of-place ReLU whose
  backward follows ``rule``: ``standard``, ``guided`` (Springenberg et al.:
  ``grad * [x > 0] * [grad > 0]``) or ``deconv`` (Zeiler & Fergus: ``grad * [grad > 0]``).
  Forward values are unchanged. Other nonlinearities keep their backward, with a warning.
* ``Backprop``: runs the model once. With a target ``layer`` the trunk below it runs without an
  autograd graph and the graph starts at the layer's activations (only the head is
  differentiated); without a layer the input itself is the leaf. Gradients for ``K`` classes per
  image come from one backward with batched vector-Jacobian products.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from benchmark.models.base import resolve_layer

RULES = ("standard", "guided", "deconv")


class _GuidedReLU(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return x.clamp_min(0)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        # grad * [out > 0] * [grad > 0] as one fused kernel
        return torch.ops.aten.threshold_backward(grad.clamp_min(0), out, 0)


class _DeconvReLU(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return x.clamp_min(0)

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp_min(0)


_RELU_FUNCS = {F.relu, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_, F.relu_}
# nonlinearities that are not rectifiers at 0: the rule has no definition for them; left standard
_OTHER_ACTIVATIONS = {F.leaky_relu, F.leaky_relu_, F.elu, F.elu_, F.selu, F.selu_, F.celu, F.celu_, F.rrelu,
                      F.rrelu_, F.prelu, F.gelu, F.silu, F.mish, F.hardswish, F.softplus}


def _hardtanh_bounds(func, args, kwargs) -> tuple[float, float]:
    """``(min, max)`` of a ``relu6`` / ``hardtanh`` call (``nn.ReLU6`` calls ``hardtanh(x, 0, 6)``)."""
    if func is F.relu6:
        return 0.0, 6.0
    lo = args[1] if len(args) > 1 else kwargs.get("min_val", -1.0)
    hi = args[2] if len(args) > 2 else kwargs.get("max_val", 1.0)
    return float(lo), float(hi)


class _ReluRuleMode(TorchFunctionMode):
    """Routes every ReLU call to an autograd function with a modified backward.

    A clipped ReLU (``relu6``, ``hardtanh`` with ``min_val=0``, as in ``nn.ReLU6``) is computed as
    ``min(ReLU(x), max)``, so its rectification at 0 follows the rule too; the clip at ``max`` keeps
    its standard backward. Other nonlinearities (SiLU, GELU, leaky ReLU, ...) have no guided or
    deconvnet rule: they keep their standard backward and are named in a warning (``skipped``).
    """

    def __init__(self, function: type[torch.autograd.Function], rule: str):
        super().__init__()
        self.function, self.rule = function, rule
        self.calls = 0
        self.skipped: set[str] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _RELU_FUNCS:
            self.calls += 1
            return self.function.apply(args[0])
        other = func in _OTHER_ACTIVATIONS
        if func in (F.relu6, F.hardtanh):
            lo, hi = _hardtanh_bounds(func, args, kwargs)
            if lo == 0.0:
                self.calls += 1
                return self.function.apply(args[0]).clamp_max(hi)
            other = True  # a hardtanh that does not rectify at 0
        if other and func.__name__ not in self.skipped:
            self.skipped.add(func.__name__)
            warnings.warn(f"backward_relu={self.rule!r}: {func.__name__} is not a ReLU and keeps its standard "
                          "backward; the model's maps mix the rule with plain gradients")
        return func(*args, **kwargs)


@contextlib.contextmanager
def relu_rule(rule: str):
    """Scope in which ReLU backward follows ``rule``; yields the mode (``.calls`` counts ReLUs)."""
    if rule not in RULES:
        raise ValueError(f"backward_relu={rule!r}; expected one of {RULES}")
    if rule == "standard":
        yield None
        return
    mode = _ReluRuleMode(_GuidedReLU if rule == "guided" else _DeconvReLU, rule)
    with mode:
        yield mode


@dataclass
class Pass:
    """One forward/backward: ``logits [B, C]``, ``acts`` (layer activations or input, no graph)
    and ``grads [B, K, ...]`` of each requested class logit w.r.t. ``acts``."""

    logits: torch.Tensor
    acts: torch.Tensor
    grads: torch.Tensor


@contextlib.contextmanager
def forward_hook(model: nn.Module, layer: str, hook):
    """Scope in which ``hook`` is a forward hook of ``layer``; removed on exit, also on error."""
    handle = resolve_layer(model, layer).register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@contextlib.contextmanager
def _graph_from_layer(model: nn.Module, layer: str, store: dict):
    """Forward hook: detach the layer's output, make it the autograd leaf, enable grad after it."""
    def hook(_module, _inputs, output):
        if not isinstance(output, torch.Tensor):
            raise TypeError(f"layer {layer!r} returns {type(output).__name__}; a tensor is needed")
        if "acts" in store:
            raise RuntimeError(f"layer {layer!r} is called more than once per forward; pick a layer used once")
        leaf = output.detach().requires_grad_(True)
        store["acts"] = leaf
        torch.set_grad_enabled(True)  # the head, and only the head, builds a graph
        return leaf.clone()  # a clone, so an in-place op after the layer cannot touch the leaf

    with forward_hook(model, layer, hook):
        yield


def class_vjp(logits: torch.Tensor, leaf: torch.Tensor, class_ids: torch.Tensor, batched: bool = True) -> torch.Tensor:
    """Gradients ``[B, K, ...]`` of ``logits[b, class_ids[b, k]]`` w.r.t. ``leaf``.

    ``batched``: one vmapped backward for the K classes (fastest when the graph is only the head);
    otherwise one backward per class, which is faster through a whole network on a CPU (measured
    on ResNet-50, 5 classes: 9.4 s vmapped vs 6.8 s in a loop).
    """
    batch, k = class_ids.shape
    onehot = torch.zeros(k, batch, logits.shape[1], dtype=logits.dtype, device=logits.device)
    onehot.scatter_(2, class_ids.t().unsqueeze(-1), 1.0)
    if k == 1:
        (grad,) = torch.autograd.grad(logits, leaf, grad_outputs=onehot[0])
        return grad.unsqueeze(1)
    if not batched:
        return torch.stack([torch.autograd.grad(logits, leaf, grad_outputs=onehot[i], retain_graph=i < k - 1)[0]
                            for i in range(k)], 1)
    try:
        (grad,) = torch.autograd.grad(logits, leaf, grad_outputs=onehot, is_grads_batched=True, retain_graph=True)
    except RuntimeError as err:  # an op without a batching rule: fall back to one backward per class
        warnings.warn(f"batched vector-Jacobian product unavailable ({err}); using one backward per class")
        grad = torch.stack([torch.autograd.grad(logits, leaf, grad_outputs=onehot[i], retain_graph=True)[0]
                            for i in range(k)])
    return grad.transpose(0, 1)


class Backprop:
    """Forward once, backpropagate the chosen class logits to ``layer`` (or to the input)."""

    def __init__(self, model: nn.Module, layer: str | None = None, rule: str = "standard"):
        if rule not in RULES:
            raise ValueError(f"backward_relu={rule!r}; expected one of {RULES}")
        self.model, self.layer, self.rule = model, layer, rule
        if layer is not None:
            resolve_layer(model, layer)

    def __call__(self, images: torch.Tensor, class_ids: torch.Tensor) -> Pass:
        if class_ids.dim() == 1:
            class_ids = class_ids[:, None]
        with relu_rule(self.rule):
            if self.layer is None:
                leaf = images.detach().requires_grad_(True)
                with torch.enable_grad():
                    logits = self.model(leaf)
                    grads = class_vjp(logits, leaf, class_ids, batched=False)
            else:
                store: dict = {}
                with _graph_from_layer(self.model, self.layer, store), torch.no_grad():
                    logits = self.model(images)
                    if "acts" not in store:
                        raise RuntimeError(f"layer {self.layer!r} was not reached in the forward pass")
                    leaf = store["acts"]
                    grads = class_vjp(logits, leaf, class_ids)
        return Pass(logits=logits.detach(), acts=leaf.detach(), grads=grads)
