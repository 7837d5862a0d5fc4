"""Randomized model copies for the sanity check, and the method rebuilt on them (Adebayo et al., NeurIPS 2018).

The layers are the modules with ``reset_parameters`` (convolutions, linear layers, normalization),
top layer first, as Quantus's ``get_random_layer_generator``; a layer is randomized by its own
``reset_parameters`` under ``torch.manual_seed(seed + 1)`` (Quantus's rule), inside
``torch.random.fork_rng`` so the process's generator is left as it was. The shared model is never
touched: the copy is ``copy.deepcopy`` of it, and the method is deep-copied with every module,
parameter and buffer of the shared model mapped to the copy's, so the clone explains the copy.
"""

from __future__ import annotations

import copy
from typing import Iterator

import torch
from torch import nn


def randomizable_layers(model: nn.Module) -> list[str]:
    """Names of the submodules with ``reset_parameters``, top layer (last defined) first."""
    return [name for name, module in model.named_modules() if name and hasattr(module, "reset_parameters")][::-1]


def reset_layer(model: nn.Module, name: str, seed: int) -> None:
    """Re-initialize one layer of ``model`` in place with its default initializer, seeded."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        model.get_submodule(name).reset_parameters()


def _check_no_hooks(model: nn.Module, method_name: str) -> None:
    for name, module in model.named_modules():
        if module._forward_hooks or module._forward_pre_hooks or module._backward_hooks:
            raise ValueError(f"sanity_model_randomization: module {name or '<model>'!r} carries hooks while method "
                             f"{method_name!r} is idle; the check needs methods that add their hooks per call")


def _modules_in(obj, depth: int = 3, seen: set | None = None) -> Iterator[nn.Module]:
    """The ``nn.Module`` objects reachable from ``obj``'s attributes (a few levels deep)."""
    seen = set() if seen is None else seen
    if id(obj) in seen or depth < 0:
        return
    seen.add(id(obj))
    if isinstance(obj, nn.Module):
        yield obj
        return
    values = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else \
        vars(obj).values() if hasattr(obj, "__dict__") else ()
    for value in values:
        yield from _modules_in(value, depth - 1, seen)


def method_on(method, model_copy: nn.Module):
    """A copy of ``method`` whose every reference to the shared model points into ``model_copy``."""
    shared = method.model
    _check_no_hooks(shared, getattr(method, "name", type(method).__name__))
    memo = {id(shared): model_copy}
    for name, module in shared.named_modules():
        memo[id(module)] = model_copy.get_submodule(name)
    for name, tensor in [*shared.named_parameters(), *shared.named_buffers()]:
        memo[id(tensor)] = model_copy.get_parameter(name) if isinstance(tensor, nn.Parameter) else model_copy.get_buffer(name)
    clone = copy.deepcopy(method, memo)
    own = {id(m) for m in model_copy.modules()}
    stray = [type(m).__name__ for m in _modules_in(clone) if id(m) not in own]
    if stray:
        raise ValueError(f"sanity_model_randomization: method {getattr(method, 'name', '?')!r} holds a model of its own "
                         f"({stray[0]}), which the randomization would not reach; turn its speed options off")
    return clone


def cascading(model: nn.Module, layers: list[str], seed: int) -> Iterator[tuple[str, nn.Module]]:
    """``(layer, copy)`` with every layer up to this one (top down) randomized; one copy, changed in place."""
    randomized = copy.deepcopy(model)
    for name in layers:
        reset_layer(randomized, name, seed)
        yield name, randomized


def independent(model: nn.Module, layers: list[str], seed: int) -> Iterator[tuple[str, nn.Module]]:
    """``(layer, copy)`` with only this layer randomized; one copy, whose layer is put back (its own
    parameters and buffers, exact copies) before the next one is randomized."""
    randomized = copy.deepcopy(model)
    for name in layers:
        layer = randomized.get_submodule(name)
        saved = {key: value.detach().clone() for key, value in layer.state_dict().items()}
        reset_layer(randomized, name, seed)
        yield name, randomized
        layer.load_state_dict(saved)
