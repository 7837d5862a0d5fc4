"""Long-run memory check of ``benchmark.perf``: no growth, no hook and no autograd graph left behind.

A method runs over ``n_images`` (batches of ``batch`` random images, 4 distinct batches cycled so
input generation costs nothing). Evidence collected:

* resident memory (``VmRSS``) after a warm-up of ``warm_batches`` batches and at the end: growth;
  the peak (``VmHWM``) over the run;
* every tensor autograd saves for backward during the run is recorded through
  ``torch.autograd.graph.saved_tensors_hooks`` (the pack hook stores a detached alias, same values
  and storage, and keeps only a weak reference to it); after each batch the references must all be
  dead (parameters and buffers, which the model itself holds, excepted): no graph outlives its batch;
* after the run, compared with before it: the hook dictionaries of every module (and the global
  module hooks) are unchanged, no new live tensor (``gc``) has a ``grad_fn`` or ``requires_grad``,
  no ``TorchFunctionMode`` was left on the stack; grad mode is on, autocast off, and every
  parameter still has ``requires_grad=False`` and no ``.grad``.
"""

from __future__ import annotations

import gc
import time
import warnings
import weakref

import torch
from torch.nn.modules import module as nn_module

from benchmark.perf.timing import memory_mb, reset_peak
from benchmark.methods import build_method

HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
              "_forward_hooks_with_kwargs", "_state_dict_hooks", "_load_state_dict_pre_hooks")
GLOBAL_HOOKS = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
                "_global_backward_pre_hooks")


def hook_counts(model: torch.nn.Module) -> dict[str, int]:
    """Number of entries in each hook dictionary of each module, and of the global module hooks."""
    out = {f"{name or '<root>'}.{attr}": len(getattr(m, attr, {})) for name, m in model.named_modules()
           for attr in HOOK_DICTS}
    out.update({f"global.{attr}": len(getattr(nn_module, attr, {})) for attr in GLOBAL_HOOKS})
    return out


def live_graph_tensors() -> int:
    """Live tensors (found by ``gc``) that belong to an autograd graph or would start one."""
    gc.collect()
    count = 0
    with warnings.catch_warnings():  # isinstance on deprecated module attributes warns
        warnings.simplefilter("ignore")
        for obj in gc.get_objects():
            try:
                if isinstance(obj, torch.Tensor) and (obj.grad_fn is not None or obj.requires_grad):
                    count += 1
            except (ReferenceError, RuntimeError):
                continue
    return count


class SavedTensorWatch:
    """Weak references to every tensor autograd saves for backward (model-owned tensors excluded)."""

    def __init__(self, model: torch.nn.Module):
        self.owned = {id(t) for t in (*model.parameters(), *model.buffers())}
        self.refs: list[weakref.ref] = []
        self.saved = 0

    def pack(self, tensor):
        # Keep a detached alias: returning ``tensor`` itself, when it is the op's output, would tie
        # it to its own grad_fn through the hook (a reference cycle: the watch would cause a leak).
        packed = tensor.detach()
        if id(tensor) not in self.owned:
            self.refs.append(weakref.ref(packed))
            self.saved += 1
        return packed

    @staticmethod
    def unpack(tensor):
        return tensor

    def survivors(self) -> int:
        """How many saved tensors are still alive (after a ``gc`` pass if any seemed to be)."""
        alive = sum(r() is not None for r in self.refs)
        if alive:
            gc.collect()
            alive = sum(r() is not None for r in self.refs)
        self.refs = []
        return alive


def long_run(model_name: str, model, info, method_name: str, n_images: int, batch: int, size: int,
             k: int = 1, warm_batches: int = 10, seed: int = 0, device=None) -> dict:
    """Run ``method_name`` over ``n_images`` images; return the memory and leak evidence as one row."""
    device = torch.device(device or "cpu")
    torch.manual_seed(seed)
    method = build_method(method_name, model, info)
    pool = [torch.randn(batch, 3, size, size, device=device) for _ in range(4)]
    ids = [torch.randint(0, info.num_classes, (batch, k), device=device) for _ in range(4)]
    gc.collect()
    reset_peak()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    hooks_before, graph_before = hook_counts(model), live_graph_tensors()
    modes_before = torch._C._len_torch_function_stack()
    watch = SavedTensorWatch(model)
    n_batches = -(-n_images // batch)
    warm_batches = max(1, min(warm_batches, n_batches // 4))  # allocator and caches settle first
    survivors, start, rss_warm = 0, time.perf_counter(), None
    for i in range(n_batches):
        with torch.autograd.graph.saved_tensors_hooks(watch.pack, watch.unpack):
            maps = method.explain(pool[i % 4], ids[i % 4]).maps
        del maps
        survivors += watch.survivors()
        if i + 1 == warm_batches:
            rss_warm = memory_mb()["rss_mb"]
    seconds = time.perf_counter() - start
    mem = memory_mb()
    del method
    leftover = {key: n for key, n in hook_counts(model).items() if n != hooks_before.get(key)}
    return {
        "section": "memory", "model": model_name, "method": method_name, "images": n_batches * batch,
        "batch": batch, "input_size": size, "classes": k, "seconds": seconds,
        "images_per_s": n_batches * batch / seconds, "rss_after_warmup_mb": rss_warm,
        "rss_end_mb": mem["rss_mb"], "rss_growth_mb": mem["rss_mb"] - (rss_warm or mem["rss_mb"]),
        "peak_rss_mb": mem["hwm_mb"], "saved_tensors_seen": watch.saved,
        "saved_tensors_surviving": survivors, "hooks_left": len(leftover),
        "live_graph_tensors": live_graph_tensors() - graph_before,
        "function_modes_left": torch._C._len_torch_function_stack() - modes_before,
        "grad_mode_restored": torch.is_grad_enabled(),
        "autocast_off": not torch.is_autocast_enabled("cpu"),
        "params_grad_none": all(p.grad is None and not p.requires_grad for p in model.parameters()),
        "cuda_peak_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
    }
