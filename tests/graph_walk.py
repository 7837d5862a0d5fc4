"""Test helpers that look at autograd graphs: which nodes a graph holds, and where a pass kept one."""

from __future__ import annotations

import torch


def autograd_graph(output: torch.Tensor) -> tuple[list[str], list[torch.Tensor]]:
    """Node type names of ``output``'s graph and the variables of its ``AccumulateGrad`` leaves."""
    names, leaves, seen, stack = [], [], set(), [output.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.append(type(node).__name__)
        if names[-1] == "AccumulateGrad":
            leaves.append(node.variable)
        stack.extend(n for n, _ in node.next_functions)
    return names, leaves


def graph_kept_at(call, **modules: torch.nn.Module) -> dict[str, bool]:
    """Run ``call()`` with a forward hook on each named module; for each, whether its output was part
    of an autograd graph (requires grad or has a ``grad_fn``). Hooks are removed whatever happens."""
    seen: dict[str, bool] = {}
    handles = [m.register_forward_hook(lambda _m, _i, o, name=name: seen.__setitem__(
        name, bool(o.requires_grad or o.grad_fn is not None))) for name, m in modules.items()]
    try:
        call()
    finally:
        for h in handles:
            h.remove()
    return seen
