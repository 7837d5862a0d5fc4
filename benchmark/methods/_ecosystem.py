"""Shared pieces of the adapters to other libraries (``pgc.py``: pytorch-grad-cam, ``captum_methods.py``).

* ``require`` imports an optional library or fails with one line naming the extra that installs it;
  registering the adapters' names never imports the libraries, so ``--list`` works without them.
* ``untouched(model)`` is the guard every library call runs in: whatever the library does to the
  model (forward/backward hooks, a submodule swapped for an ablation layer, ``requires_grad`` on
  parameters, train/eval mode, weight gradients), the model is as before when the call returns or
  raises.
* ``reduce_channels`` turns a ``[N, C, h, w]`` attribution into ``[N, h, w]`` maps.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect

import torch
from torch import nn

from benchmark.methods.pixel import REDUCTIONS as PIXEL_REDUCTIONS
from benchmark.methods.pixel import reduce_channels as pixel_reduce

EXTRA = "pip install 'gradcam-benchmark[ecosystem]'"
PACKAGES = {"pytorch_grad_cam": "grad-cam", "captum": "captum"}
REDUCTIONS = ("max_abs", "sum_abs", "l2", "sum", "mean", "none")
# the per-module dictionaries of hooks that a library may add to (keys are hook ids)
_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
               "_forward_hooks_with_kwargs", "_forward_hooks_always_called", "_forward_pre_hooks_with_kwargs")


def require(module: str, method: str):
    """Import ``module`` (``pytorch_grad_cam`` or ``captum.attr``) or raise a one-line ImportError."""
    top = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"method {method!r} needs the optional package {PACKAGES.get(top, top)!r} "
                          f"(not installed): {EXTRA}") from None


def _hook_keys(module: nn.Module) -> dict[str, set]:
    return {name: set(getattr(module, name, {}) or {}) for name in _HOOK_DICTS}


@contextlib.contextmanager
def untouched(model: nn.Module):
    """Restore ``model``'s submodule tree, hooks, ``requires_grad``, ``.grad`` and modes on exit."""
    tree = [(m, dict(m._modules)) for m in model.modules()]
    hooks = [(m, _hook_keys(m)) for m in model.modules()]
    modes = [(m, m.training) for m in model.modules()]
    params = [(p, p.requires_grad, p.grad) for p in model.parameters()]
    try:
        yield model
    finally:
        for module, children in tree:  # first the tree, so the hooks below are looked up on the originals
            if dict(module._modules) != children:
                module._modules.clear()
                module._modules.update(children)
        for module, keys in hooks:
            for name, before in keys.items():
                table = getattr(module, name, None)
                for key in [k for k in (table or {}) if k not in before]:
                    del table[key]
        for module, training in modes:
            module.training = training
        for p, flag, grad in params:
            p.requires_grad_(flag)
            p.grad = grad


def reduce_channels(attr: torch.Tensor, how: str) -> torch.Tensor:
    """``[N, C, h, w] -> [N, h, w]``; ``none`` requires ``C == 1`` (methods that reduce themselves)."""
    if attr.dim() != 4:
        raise ValueError(f"attribution of shape {tuple(attr.shape)}; expected [N, C, h, w]")
    if how in PIXEL_REDUCTIONS:  # the pixel-space methods' reductions, shared
        return pixel_reduce(attr, how, dim=1)
    if how == "sum":
        return attr.sum(dim=1)
    if how == "mean":
        return attr.mean(dim=1)
    if how == "none":
        if attr.shape[1] != 1:
            raise ValueError(f"reduction 'none' needs one channel, got {attr.shape[1]}")
        return attr[:, 0]
    raise ValueError(f"channel reduction {how!r}; expected one of {REDUCTIONS}")


SKIP = ("self", "model", "forward_func", "layer", "target_layers", "args", "kwargs")


def init_keywords(cls, skip: tuple = SKIP) -> set[str]:
    """The constructor keywords of ``cls`` a user may set (the model and layer are the suite's)."""
    return set(inspect.signature(cls.__init__).parameters) - set(skip)


def split_options(cls, options: dict, skip: tuple = SKIP):
    """Split ``options`` into the constructor's keywords of ``cls`` and the rest."""
    names = init_keywords(cls, skip)
    init = {k: v for k, v in options.items() if k in names}
    return init, {k: v for k, v in options.items() if k not in names}


def as_tuples(value):
    """Hydra gives lists; the libraries want tuples for shapes (``sliding_window_shapes``, ``strides``)."""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "ListConfig":
        return tuple(as_tuples(v) for v in value)
    return value


def _builder(cls, spec, name: str):
    def build(model, info, layer=None, **options):
        return cls(model, info, spec, name, layer=layer, **options)

    return build


def register_family(prefix: str, table: dict, cls) -> None:
    """Register ``<prefix>_<key>`` for every entry of ``table`` as ``cls(model, info, entry, name, ...)``,
    its options those of ``cls``'s constructor."""
    from benchmark.methods.base import METHODS

    for key, spec in table.items():
        METHODS.register(f"{prefix}_{key}", _builder(cls, spec, f"{prefix}_{key}"), options=cls)
