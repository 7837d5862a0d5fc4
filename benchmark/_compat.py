"""Make ``import torchvision`` work when its compiled extension cannot load.

The torchvision wheels on the public registry are CUDA builds; paired with a CPU-only torch of
the same release their C extension (``torchvision/_C.so``) fails to load, and torchvision's own
import then dies with ``operator torchvision::nms does not exist`` because it registers fake
(meta) kernels for ops whose schemas the extension would have defined.

``ensure_torchvision()`` tries the extension first, exactly as torchvision would. Only when it
cannot load does it define the two op schemas torchvision's import touches (``nms``, ``qnms``),
so that the models, transforms and weight enums import and work; the box ops themselves then
raise torchvision's usual "Couldn't load custom C++ ops" error, which this suite never calls.

``import torchvision`` before ``import benchmark`` (a user's own script) needs the same preparation:
``benchmark._compat.main()`` (run by ``make install``) writes a start-up hook into the
environment's site-packages, only when the extension cannot load: a ``.pth`` line that puts a
finder on ``sys.meta_path``. Python start-up stays cheap (nothing is imported then); the first
``import torchvision`` calls ``ensure_torchvision`` and the finder removes itself. ``import benchmark``
installs the same finder in its process (``install_finder``), so the package imports no torch itself.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import sysconfig
from pathlib import Path

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


def _has_cpu_kernel(name: str) -> bool:
    """Whether the op has a CPU kernel (the extension's); a schema defined here has none."""
    import torch

    try:
        return bool(torch._C._dispatch_has_kernel_for_dispatch_key(f"torchvision::{name}", "CPU"))
    except RuntimeError:
        return False


def _op_exists(name: str) -> bool:
    import torch

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
    import torch

    _state["checked"] = True
    if "torchvision" in sys.modules:  # imported already (through the start-up hook, or it loaded by itself)
        _state["extension_loaded"] = bool(sys.modules["torchvision"].extension._has_ops())
        return bool(_state["extension_loaded"])
    if all(_op_exists(n) for n in _SCHEMAS):
        _state["extension_loaded"] = _has_cpu_kernel("nms")
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


class _TorchvisionFinder:
    """On the first ``import torchvision`` of the process, ``ensure_torchvision()`` runs first (once)."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "torchvision":
            if _TorchvisionFinder in sys.meta_path:
                sys.meta_path.remove(_TorchvisionFinder)
            ensure_torchvision()
        return None


def install_finder() -> None:
    """Prepare torchvision's import lazily: ``import benchmark`` imports neither torch nor torchvision (a
    finished job is recognised without them), and the first ``import torchvision`` is prepared as
    ``ensure_torchvision`` does. Where torchvision is imported already, prepare at once."""
    if "torchvision" in sys.modules:
        ensure_torchvision()
    elif _TorchvisionFinder not in sys.meta_path:
        sys.meta_path.insert(0, _TorchvisionFinder)


def torchvision_extension_loaded() -> bool:
    """Whether torchvision's compiled ops are available in this process."""
    ensure_torchvision()
    return bool(_state["extension_loaded"])


HOOK_MODULE, HOOK_PTH = "_benchmark_torchvision_hook.py", "benchmark_torchvision_hook.pth"
HOOK = '''"""Start-up hook of gradcam-benchmark (written by benchmark._compat.main(), `make install`): torchvision's compiled
extension cannot load in this environment, so the first `import torchvision` runs
benchmark._compat.ensure_torchvision() first. Nothing is imported at start-up."""
import sys


class TorchvisionFinder:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "torchvision":
            sys.meta_path.remove(TorchvisionFinder)  # once: the real finders import torchvision
            try:
                from benchmark._compat import ensure_torchvision
                ensure_torchvision()
            except Exception:  # noqa: BLE001  (without the package, torchvision fails with its own error)
                pass
        return None


if "torchvision" not in sys.modules and TorchvisionFinder not in sys.meta_path:
    sys.meta_path.insert(0, TorchvisionFinder)
'''


def install_hook(site_dir: str | Path, needed: bool) -> bool:
    """Write the start-up hook into ``site_dir`` when ``needed`` (the extension cannot load), else remove
    one written before; idempotent. Returns whether the hook is installed."""
    module, pth = Path(site_dir) / HOOK_MODULE, Path(site_dir) / HOOK_PTH
    if not needed:
        module.unlink(missing_ok=True)
        pth.unlink(missing_ok=True)
        return False
    module.write_text(HOOK)
    pth.write_text(f"import {module.stem}\n")
    return True


def main(argv: list[str] | None = None) -> None:
    """Install the start-up hook into site-packages (or ``--site DIR``) where the extension cannot load.

    Run as ``python -c "import benchmark._compat as c; c.main()"`` (``-m`` would load this module twice)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--site", default=sysconfig.get_paths()["purelib"], help="site-packages folder")
    args = parser.parse_args(argv)
    loaded = ensure_torchvision()
    if install_hook(args.site, needed=not loaded):
        print(f"torchvision's C extension cannot load: start-up hook written to {Path(args.site) / HOOK_PTH}")
    else:
        print("torchvision's C extension loads: no start-up hook needed")
