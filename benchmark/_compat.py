"""Make ``import torchvision`` work when its compiled extension cannot load.

The torchvision wheels on the public registry are CUDA builds; paired with a CPU-only torch of
the same release their C extension (``torchvision/_C.so``) fails to load, and torchvision's own
import then dies with ``operator torchvision::nms does not exist`` because it registers fake
(meta) kernels for ops whose schemas the extension would have defined.

``ensure_torchvision()`` tries the extension first, exactly as torchvision would. Only when it
cannot load does it define the two op schemas torchvision's import touches (``nms``, ``qnms``),
so that the models, transforms and weight enums import and work; the box ops themselves then
raise torchvision's usual "Couldn't load custom C++ ops" error, which this suite never calls.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import torch

_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_state: dict[str, object] = {"checked": False, "extension_loaded": None, "library": None}


def _extension_path() -> str | None:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        for name in os.listdir(folder):
            if name.startswith("_C.") and name.endswith((".so", ".pyd")):
                return os.path.join(folder, name)
    return None


def _op_exists(name: str) -> bool:
    try:
        torch._C._dispatch_has_kernel_for_dispatch_key(f"torchvision::{name}", "CPU")
        return True
    except RuntimeError:
        return False


def ensure_torchvision() -> bool:
    """Prepare torch so that torchvision imports; return whether its C extension loaded.

    Idempotent. Does nothing when torchvision is already imported or its extension loads.
    """
    if _state["checked"]:
        return bool(_state["extension_loaded"])
    _state["checked"] = True
    if "torchvision" in sys.modules or all(_op_exists(n) for n in _SCHEMAS):
        _state["extension_loaded"] = _op_exists("nms")
        return bool(_state["extension_loaded"])
    path = _extension_path()
    loaded = False
    if path is not None:
        try:
            torch.ops.load_library(path)
            loaded = True
        except (OSError, ImportError, RuntimeError):
            loaded = False
    _state["extension_loaded"] = loaded
    if not loaded:
        missing = [n for n in _SCHEMAS if not _op_exists(n)]
        if missing:
            library = torch.library.Library("torchvision", "FRAGMENT")
            for name in missing:
                library.define(_SCHEMAS[name])
            _state["library"] = library  # keep the registration alive for the process
    return loaded


def torchvision_extension_loaded() -> bool:
    """Whether torchvision's compiled ops are available in this process."""
    ensure_torchvision()
    return bool(_state["extension_loaded"])
