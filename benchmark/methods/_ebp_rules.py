"""Excitation-backprop backward rules (Zhang et al., "Top-down Neural Attention by Excitation
Backprop", ECCV 2016, Sec. 3), scoped to a ``TorchFunctionMode``.

While ``excitation_rules(state)`` is active, ops that take part in an autograd graph and have a
rule run through autograd Functions whose forward is the original op (values unchanged) and whose
backward propagates marginal winning probabilities (MWP) instead of gradients. Ops outside any
graph (the trunk below the saliency layer) and everything outside the scope are untouched; no
global ``torch`` function and no module is modified.

* Weighted linear maps (``F.conv1d/2d/3d``, ``F.linear``), ``y = W x + b``: with ``Z_j = sum_i
  x_i+ w_ij+`` (positive weights only, no bias), ``P(x_i) = x_i+ sum_j w_ij+ P(y_j) / Z_j``: each
  unit shares its probability among its inputs in proportion to their positive excitation.
  Inputs enter as ``x+``: the model assumes non-negative responses (true after every ReLU), so a
  negative input receives nothing.
* Average pooling (``avg_pool*``, ``adaptive_avg_pool*``, ``mean``): the same rule with the pool's
  uniform positive weights.
* Batch norm and piecewise-linear activations (ReLU, ReLU6/hardtanh, clamp): identity backward.
* Skip connections, ``a + b`` of two same-shape tensors (``add``, ``+``, ``+=``; torchvision
  ResNet's in-place ``out += identity``): each unit's signal is split in proportion to the
  positive contributions, ``a+ / (a+ + b+)`` and ``b+ / (a+ + b+)`` (the linear rule with unit
  weights). An operand outside the graph (a skip from below the saliency layer) takes its share out
  of the graph; an add of a broadcast constant keeps its natural backward (like a bias).
* Routing and reshaping ops keep their own backward (``STRUCTURAL``): max pooling sends the signal
  to the window's winner, concatenation (GoogLeNet's inception outputs) splits it by channel,
  flatten, views, padding and eval-mode dropout pass it on. Any other op that makes a graph tensor
  (sigmoid, SiLU, GELU, products, layer norm...) has no MWP rule and is recorded in
  ``state.unsupported``: excitation backprop is defined for ReLU networks.

Division guard: where ``Z_j <= EPS`` (no input of unit ``j`` with a positive weight is active; or
``a+ + b+ <= EPS`` for an add) the unit's signal is dropped; only there is the layer total not
conserved (elsewhere ``sum P`` is equal at every layer: 1 for a one-hot start).
With ``state.dual`` set, the last weighted linear map of the forward (the classifier producing the
logits) uses ``-W`` in its backward: the dual unit of contrastive MWP. In-place forms (``relu_``,
``add_``, ``inplace=True``) run out of place and copy the result back.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

EPS = 1e-19  # normalizers below this pass nothing: 1/EPS keeps every quotient finite in float32


@dataclass
class ExcitationState:
    """Per-forward bookkeeping: weighted linear maps seen, the last one (the top), dual switch."""

    dual: bool = False
    calls: int = 0
    top: int | None = None
    top_shape: tuple | None = None
    unsupported: set = field(default_factory=set)  # graph ops without an excitation rule


class _Excite(torch.autograd.Function):
    """``y = run(x)``; backward ``x+ * T(P / Z)`` with ``Z = positive(x+)`` and ``T`` its transpose."""

    @staticmethod
    def forward(ctx, x, run, positive, state, index):
        ctx.positive, ctx.state, ctx.index, ctx.cache = positive, state, index, {}
        ctx.save_for_backward(x.clamp_min(0))
        return run(x)

    @staticmethod
    def backward(ctx, signal):
        (xp,) = ctx.saved_tensors
        negate = bool(ctx.state.dual and ctx.index is not None and ctx.index == ctx.state.top)
        if negate not in ctx.cache:  # K classes reuse Z and the transpose of one linear map
            positive = ctx.positive  # not ctx itself: no reference cycle through the cache
            with torch._C.DisableTorchFunction():
                ctx.cache[negate] = torch.func.vjp(lambda t: positive(t, negate), xp)
        z, transpose = ctx.cache[negate]
        ok = z > EPS
        ratio = torch.where(ok, signal / torch.where(ok, z, 1.0), 0.0)
        (back,) = transpose(ratio)
        return xp * back, None, None, None, None


class _PassThrough(torch.autograd.Function):
    """``y = run(x)`` with identity backward (batch norm, piecewise-linear activations)."""

    @staticmethod
    def forward(ctx, x, run):
        return run(x)

    @staticmethod
    def backward(ctx, signal):
        return signal, None


class _Sum(torch.autograd.Function):
    """``a + b`` whose backward splits the signal in proportion to ``a+`` and ``b+``."""

    @staticmethod
    def forward(ctx, a, b):
        ap, bp = a.clamp_min(0), b.clamp_min(0)
        total = ap + bp
        ok = total > EPS
        safe = torch.where(ok, total, 1.0)
        ctx.save_for_backward(torch.where(ok, ap / safe, 0.0), torch.where(ok, bp / safe, 0.0))
        return a + b

    @staticmethod
    def backward(ctx, signal):
        share_a, share_b = ctx.saved_tensors
        return signal * share_a, signal * share_b


def _bind(args, kwargs, names) -> tuple[dict, list, dict]:
    """Split a call into its named leading arguments (those given), other positionals, other keywords."""
    bound, rest = dict(zip(names, args)), list(args[len(names):])
    kw = dict(kwargs)
    bound.update({name: kw.pop(name) for name in names if name in kw})
    return bound, rest, kw


def _in_graph(x) -> bool:
    return isinstance(x, torch.Tensor) and x.requires_grad


def _weighted(state, func, args, kwargs):
    bound, rest, kw = _bind(args, kwargs, ("input", "weight", "bias"))
    x, w, b = bound.get("input"), bound.get("weight"), bound.get("bias")
    if not _in_graph(x):
        return func(*args, **kwargs)

    def run(t):
        return func(t, w, b, *rest, **kw)

    def positive(t, negate):
        return func(t, (-w if negate else w).clamp_min(0), None, *rest, **kw)

    state.calls += 1
    out = _Excite.apply(x, run, positive, state, state.calls)
    state.top, state.top_shape = state.calls, tuple(out.shape)
    return out


def _pooling(state, func, args, kwargs):
    bound, rest, kw = _bind(args, kwargs, ("input",))
    x = bound.get("input")
    if not _in_graph(x) or "out" in kw:
        return func(*args, **kwargs)

    def run(t):
        return func(t, *rest, **kw)

    return _Excite.apply(x, run, lambda t, _negate: run(t), state, None)  # uniform weights: its own positive part


def _activation(state, func, args, kwargs):
    names, op, inplace = _ACTIVATIONS[func]
    bound, rest, kw = _bind(args, kwargs, names)
    x = bound.pop("input", None)
    if not _in_graph(x) or rest or kw:
        return func(*args, **kwargs)
    inplace = inplace or bool(bound.pop("inplace", False))
    out = _PassThrough.apply(x, lambda t: op(t, **bound))
    return x.copy_(out) if inplace else out


def _batch_norm(state, func, args, kwargs):
    bound, rest, kw = _bind(args, kwargs, ("input",))
    x = bound.get("input")
    if not _in_graph(x):
        return func(*args, **kwargs)
    return _PassThrough.apply(x, lambda t: func(t, *rest, **kw))


def _add(state, func, args, kwargs):
    bound, rest, kw = _bind(args, kwargs, ("input", "other"))
    a, b = bound.get("input"), bound.get("other")
    same = isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape
    if not (same and (_in_graph(a) or _in_graph(b)) and not rest and not kw):
        return func(*args, **kwargs)  # alpha, out=, broadcasting (a bias-like constant): natural backward
    out = _Sum.apply(a, b)
    return a.copy_(out) if func in (torch.Tensor.add_, torch.Tensor.__iadd__) else out


_T = torch.Tensor
# piecewise-linear activations pass the signal unchanged: func -> (argument names, out-of-place op, in place)
_ACTIVATIONS = {
    **{f: (("input",), torch.relu, False) for f in (torch.relu, _T.relu)},
    **{f: (("input",), torch.relu, True) for f in (torch.relu_, _T.relu_)},
    F.relu: (("input", "inplace"), torch.relu, False),
    F.relu6: (("input", "inplace"), F.relu6, False),
    F.hardtanh: (("input", "min_val", "max_val", "inplace"), F.hardtanh, False),
    F.hardtanh_: (("input", "min_val", "max_val"), F.hardtanh, True),
    **{f: (("input", "min", "max"), torch.clamp, False) for f in (torch.clamp, _T.clamp, torch.clip, _T.clip)},
    **{f: (("input", "min", "max"), torch.clamp, True) for f in (torch.clamp_, _T.clamp_, torch.clip_, _T.clip_)},
    **{f: (("input", "min"), torch.clamp_min, f in (torch.clamp_min_, _T.clamp_min_))
       for f in (torch.clamp_min, _T.clamp_min, torch.clamp_min_, _T.clamp_min_)},
    **{f: (("input", "max"), torch.clamp_max, f in (torch.clamp_max_, _T.clamp_max_))
       for f in (torch.clamp_max, _T.clamp_max, torch.clamp_max_, _T.clamp_max_)},
}
_RULES = {
    **{f: _weighted for f in (F.conv1d, F.conv2d, F.conv3d, F.linear)},
    **{f: _pooling for f in (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, F.adaptive_avg_pool1d,
                             F.adaptive_avg_pool2d, F.adaptive_avg_pool3d, torch.mean, _T.mean)},
    **{f: _activation for f in _ACTIVATIONS},
    F.batch_norm: _batch_norm,
    **{f: _add for f in (torch.add, _T.add, _T.__add__, _T.__radd__, _T.add_, _T.__iadd__)},
}
# ops whose own backward is the excitation rule (routing, selection, reshaping, eval dropout)
STRUCTURAL = {
    *(f"{p}max_pool{d}d{s}" for p in ("", "adaptive_") for d in (1, 2, 3) for s in ("", "_with_indices")),
    "flatten", "unflatten", "view", "view_as", "reshape", "reshape_as", "permute", "transpose", "t", "movedim",
    "squeeze", "unsqueeze", "contiguous", "clone", "detach", "requires_grad_", "to", "float", "type_as",
    "__getitem__", "select", "narrow", "split", "chunk", "unbind", "expand", "expand_as",
    "cat", "concat", "concatenate", "stack", "pad",
    "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout",
}


def _makes_graph_tensor(out) -> bool:
    if isinstance(out, (tuple, list)):
        return any(_makes_graph_tensor(o) for o in out)
    return isinstance(out, torch.Tensor) and out.grad_fn is not None and out.is_floating_point()


class _ExcitationMode(TorchFunctionMode):
    def __init__(self, state: ExcitationState):
        super().__init__()
        self.state = state

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if not torch.is_grad_enabled():
            return func(*args, **kwargs)
        rule = _RULES.get(func)
        if rule is not None:
            return rule(self.state, func, args, kwargs)
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", repr(func))
        if name not in STRUCTURAL and _makes_graph_tensor(out):
            self.state.unsupported.add(name)
        return out


@contextlib.contextmanager
def excitation_rules(state: ExcitationState | None = None):
    """Scope in which graph ops backpropagate MWP; yields the ``ExcitationState``."""
    state = state or ExcitationState()
    with _ExcitationMode(state):
        yield state
