"""Incremental occlusion (Krypton, Nakandala et al., SIGMOD 2019): recompute only what the occluder changes.

The model is traced with ``torch.fx``. The clean images run once and every node's activation is
kept. A batch of ``N`` occluded copies then flows through the graph as ``Region`` s (see
``_occlusion_regions``): each node holds only the footprint of the occluder, the changed rectangle
plus what later ops must read, written over the cached clean activation when read.

* conv (``nn.Conv2d`` with zero padding, ``F.conv2d``; any stride, padding, dilation, groups), max
  pooling and average pooling (without a ceil-mode or excluded-padding divisor): the output window
  that the changed input reaches, computed from the input window with its halo (``-inf`` halo for
  max pooling) by the same op without padding;
* pointwise ops (activations, eval-mode BatchNorm, dropout in eval, arithmetic with constants):
  applied to the window;
* residual additions and other elementwise ops of two changed maps, channel concatenation: on the
  union of the inputs' windows;
* zero padding (``nn.ZeroPad2d``, ``F.pad`` with 0): the window moves with the padding;
* anything else (global pooling, flatten, linear layers, ops on whole maps), and any op whose output
  window covers the whole map: the full occluded activations are materialized and the op runs as
  traced (full recomputation from there on, for that branch).

The result equals the plain forward of every occluded copy up to float rounding (a conv over a crop
sums in another order than over the whole map).
"""

from __future__ import annotations

import operator
import time

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from benchmark.methods._occlusion_regions import (Region, conv_padding, crop, materialize, pair, union,
                                                  window_out)

POINTWISE_MODULES = (nn.ReLU, nn.ReLU6, nn.Hardtanh, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid,
                     nn.GELU, nn.LeakyReLU, nn.ELU, nn.Mish, nn.Softplus, nn.PReLU, nn.Dropout, nn.Dropout2d,
                     nn.Identity, nn.BatchNorm2d)
POINTWISE_FUNCTIONS = {F.relu, torch.relu, F.relu6, F.hardtanh, F.silu, F.gelu, F.leaky_relu, F.elu, F.hardswish,
                       F.hardsigmoid, torch.sigmoid, torch.tanh, F.dropout, torch.clamp, operator.neg}
POINTWISE_METHODS = {"relu", "relu_", "clamp", "clamp_", "clamp_min", "clamp_max", "clamp_min_", "clamp_max_",
                     "sigmoid", "tanh", "contiguous", "neg", "float"}
BINARY_FUNCTIONS = {operator.add, operator.sub, operator.mul, operator.truediv, operator.iadd, operator.imul,
                    torch.add, torch.sub, torch.mul, torch.div}
BINARY_METHODS = {"add", "add_", "sub", "mul", "mul_", "div"}


def _inplace(node: fx.Node, modules: dict) -> bool:
    if node.op == "call_module":
        return bool(getattr(modules[node.target], "inplace", False))
    if node.op == "call_method":
        return node.target.endswith("_") and not node.target.startswith("_")
    return node.kwargs.get("inplace", False) is True or node.target in (operator.iadd, operator.imul)


class IncrementalOcclusion:
    """Logits of occluded copies ``[N, classes]`` from cached clean activations (see module doc).

    Raises whatever ``torch.fx.symbolic_trace`` raises on a model it cannot trace.
    """

    def __init__(self, model: nn.Module):
        self.graph = fx.symbolic_trace(model)
        self.modules = dict(self.graph.named_modules())
        self.nodes = list(self.graph.graph.nodes)
        self.dependent = set()  # nodes whose value depends on the input image
        for node in self.nodes:
            if node.op == "placeholder" or any(a in self.dependent for a in node.all_input_nodes):
                self.dependent.add(node)
        last = {}
        for i, node in enumerate(self.nodes):
            for a in node.all_input_nodes:
                last[a] = i
        self.free_after = {i: [a for a, j in last.items() if j == i] for i in range(len(self.nodes))}
        self.inplace = {n for n in self.nodes if n.op.startswith("call") and _inplace(n, self.modules)}
        self.timings: dict | None = None  # node name -> [seconds, calls, how] when profiling (see ``profile``)

    def _run(self, node: fx.Node, args, kwargs):
        """The traced op on concrete arguments (a copy of the first one if the op is in place)."""
        if node in self.inplace and args and isinstance(args[0], torch.Tensor):
            args = (args[0].clone(), *args[1:])
        if node.op == "call_module":
            return self.modules[node.target](*args, **kwargs)
        if node.op == "call_method":
            return getattr(args[0], node.target)(*args[1:], **kwargs)
        return node.target(*args, **kwargs)

    def clean(self, images: torch.Tensor) -> dict:
        """Every node's activation on the clean ``images [B, 3, H, W]``."""
        env = {}
        for node in self.nodes:
            if node.op == "placeholder":
                env[node] = images
            elif node.op == "get_attr":
                obj = self.graph
                for part in node.target.split("."):
                    obj = getattr(obj, part)
                env[node] = obj
            elif node.op == "output":
                env[node] = fx.node.map_arg(node.args[0], env.__getitem__)
            else:
                args, kwargs = fx.node.map_arg((node.args, node.kwargs), env.__getitem__)
                env[node] = self._run(node, args, kwargs)
        return env

    def occluded(self, clean: dict, img: torch.Tensor, first: Region):
        """The model's output for ``N`` occluded copies: the input node changed only in ``first``."""
        env: dict = {}

        def full(a):
            value = env[a] if a in self.dependent else clean[a]
            return materialize(clean[a], img, value) if isinstance(value, Region) else value

        for i, node in enumerate(self.nodes):
            if node.op == "placeholder":
                env[node] = first
            elif node not in self.dependent:
                continue
            elif node.op == "output":
                return fx.node.map_arg(node.args[0], full)
            else:
                t0 = time.perf_counter() if self.timings is not None else 0.0
                value = self._region_op(node, clean, env, img)
                how = "footprint"
                if value is None:
                    args, kwargs = fx.node.map_arg((node.args, node.kwargs), full)
                    value, how = self._run(node, args, kwargs), "full"
                env[node] = value
                if self.timings is not None:
                    entry = self.timings.setdefault(node.name, [0.0, 0, how])
                    entry[0] += time.perf_counter() - t0
                    entry[1] += 1
            for a in self.free_after[i]:
                env.pop(a, None)
        raise RuntimeError("incremental occlusion: the traced graph has no output node")

    def _region_op(self, node: fx.Node, clean: dict, env: dict, img: torch.Tensor):
        """The node's value as a ``Region`` when the op allows it, else ``None`` (run it in full)."""
        ins = [a for a in node.all_input_nodes if a in self.dependent]
        if not ins or not all(isinstance(env[a], Region) for a in ins):
            return None
        x = node.args[0] if node.args else None
        module = self.modules.get(node.target) if node.op == "call_module" else None
        if isinstance(module, nn.Conv2d) and module.padding_mode == "zeros":
            pad = conv_padding(module.padding, module.kernel_size, module.dilation)
            return self._sliding(node, clean, env, img, 0.0, module.kernel_size, module.stride, pad, module.dilation,
                                 lambda t: F.conv2d(t, module.weight, module.bias, module.stride, 0, module.dilation,
                                                    module.groups))
        if node.op == "call_function" and node.target is F.conv2d and x is not None and len(ins) == 1:
            return self._functional_conv(node, clean, env, img)
        if isinstance(module, nn.MaxPool2d) and not module.return_indices:
            k, s, d = pair(module.kernel_size), pair(module.stride or module.kernel_size), pair(module.dilation)
            return self._sliding(node, clean, env, img, float("-inf"), k, s, pair(module.padding), d,
                                 lambda t: F.max_pool2d(t, k, s, 0, d))
        if (isinstance(module, nn.AvgPool2d) and not module.ceil_mode and module.divisor_override is None
                and (module.count_include_pad or pair(module.padding) == (0, 0))):
            k, s = pair(module.kernel_size), pair(module.stride or module.kernel_size)
            return self._sliding(node, clean, env, img, 0.0, k, s, pair(module.padding), (1, 1),
                                 lambda t: F.avg_pool2d(t, k, s, 0))
        if isinstance(module, POINTWISE_MODULES) and not (isinstance(module, nn.BatchNorm2d) and module.training):
            return self._pointwise(node, env, lambda v: self._run(node, (v,), {}))
        if isinstance(module, nn.ZeroPad2d) or (node.target is F.pad and node.kwargs.get("value", 0) == 0
                                                and node.kwargs.get("mode", "constant") == "constant"):
            return self._pad(node, env, module)
        pointwise = ((node.op == "call_function" and node.target in POINTWISE_FUNCTIONS)
                     or (node.op == "call_method" and node.target in POINTWISE_METHODS))
        if pointwise and x in self.dependent and len(ins) == 1 and self._constant_args(node, clean):
            return self._pointwise(node, env, lambda v: self._run(node, (v, *self._rest(node, clean)),
                                                                  self._kw(node, clean)))
        binary = ((node.op == "call_function" and node.target in BINARY_FUNCTIONS)
                  or (node.op == "call_method" and node.target in BINARY_METHODS))
        if binary and self._constant_args(node, clean):
            return self._elementwise(node, clean, env, img, ins)
        if node.op == "call_function" and node.target is torch.cat:
            return self._cat(node, clean, env, img, ins)
        return None

    def _rest(self, node, clean):
        return tuple(fx.node.map_arg(node.args[1:], clean.__getitem__))

    def _kw(self, node, clean):
        return fx.node.map_arg(dict(node.kwargs), clean.__getitem__)

    def _constant_args(self, node, clean) -> bool:
        """Other arguments broadcast the same value over every pixel (scalars, ``[..., 1, 1]`` tensors)."""
        for a in node.all_input_nodes:
            if a not in self.dependent:
                value = clean[a]
                if isinstance(value, torch.Tensor) and value.dim() >= 1 and (
                        value.dim() < 2 or value.shape[-2:] != (1, 1)) and value.numel() > 1:
                    return False
        return True

    def _pointwise(self, node, env, op):
        region = env[node.args[0]]
        return Region(region.starts, op(region.values))

    def _sliding(self, node, clean, env, img, fill, kernel, stride, padding, dilation, op):
        src = node.args[0]
        if padding is None:
            return None
        plan = window_out(env[src], kernel, stride, padding, dilation, clean[node].shape[-2:])
        if plan is None:
            return None
        out_starts, _, in_starts, in_size = plan
        return Region(out_starts, op(crop(clean[src], img, env[src], in_starts, in_size, fill)))

    def _functional_conv(self, node, clean, env, img):
        names = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
        given = dict(zip(names, node.args), **node.kwargs)
        if any(isinstance(given.get(k), fx.Node) and given[k] in self.dependent for k in names[1:]):
            return None
        weight, bias = clean[given["weight"]], clean[given["bias"]] if isinstance(given.get("bias"), fx.Node) else None
        stride, dilation = pair(given.get("stride", 1)), pair(given.get("dilation", 1))
        groups = int(given.get("groups", 1))
        pad = conv_padding(given.get("padding", 0), tuple(weight.shape[-2:]), dilation)
        return self._sliding(node, clean, env, img, 0.0, tuple(weight.shape[-2:]), stride, pad, dilation,
                             lambda t: F.conv2d(t, weight, bias, stride, 0, dilation, groups))

    def _pad(self, node, env, module):
        widths = module.padding if module is not None else node.args[1] if len(node.args) > 1 else node.kwargs["pad"]
        if len(widths) != 4 or any(int(w) < 0 for w in widths):
            return None
        region = env[node.args[0]]
        shift = torch.tensor([int(widths[2]), int(widths[0])], device=region.starts.device)
        return Region(region.starts + shift, region.values)

    def _elementwise(self, node, clean, env, img, ins):
        shape = clean[node].shape[-2:]
        if any(clean[a].shape[-2:] != shape for a in ins):
            return None
        starts, size = union([env[a] for a in ins], shape)
        if size == tuple(shape):
            return None
        cropped = {a: crop(clean[a], img, env[a], starts, size) for a in ins}
        args, kwargs = fx.node.map_arg((node.args, node.kwargs), lambda a: cropped.get(a, clean[a]))
        return Region(starts, self._run(node, args, kwargs))

    def _cat(self, node, clean, env, img, ins):
        tensors = node.args[0] if node.args else node.kwargs.get("tensors")
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        ndim = clean[node].dim()
        if not isinstance(tensors, (list, tuple)) or not all(t in self.dependent for t in tensors):
            return None
        if not isinstance(dim, int) or dim % ndim in (0, ndim - 2, ndim - 1):
            return None
        starts, size = union([env[a] for a in ins], clean[node].shape[-2:])
        if size == tuple(clean[node].shape[-2:]):
            return None
        return Region(starts, torch.cat([crop(clean[a], img, env[a], starts, size) for a in tensors], dim))
