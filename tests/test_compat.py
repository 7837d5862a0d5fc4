"""torchvision imports through the package even when its compiled extension cannot load, and in any
import order once the start-up hook of ``make install`` is in a site folder."""

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from benchmark._compat import (HOOK_MODULE, HOOK_PTH, _SCHEMAS, _op_exists, _state, install_hook,
                               torchvision_extension_loaded)

REPO = Path(__file__).resolve().parents[1]


def test_torchvision_imports_and_builds_models():
    import torchvision.models as tvm

    assert type(tvm.resnet18()).__name__ == "ResNet"
    assert tvm.VGG16_Weights.IMAGENET1K_V1.meta["categories"][0] == "tench"


def test_schemas_defined_only_when_extension_is_missing():
    loaded = torchvision_extension_loaded()
    assert all(_op_exists(n) for n in _SCHEMAS)
    assert (_state["library"] is None) == loaded


def test_fresh_interpreter_plain_import_order():
    code = ("import benchmark, torchvision, torchvision.ops as ops, torch\n"
            "from benchmark._compat import torchvision_extension_loaded as l\n"
            "try:\n    ops.nms(torch.zeros(1, 4), torch.ones(1), 0.5); print('nms-ok')\n"
            "except RuntimeError as e:\n    print('nms-unavailable' if not l() else 'unexpected')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() in {"nms-ok", "nms-unavailable"}


def _fresh(code: str, cwd: Path) -> subprocess.CompletedProcess:
    """A fresh interpreter outside the repository, importing the package from it through PYTHONPATH only."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


TORCHVISION_FIRST = ("import sys\n"
                     "import torchvision, torchvision.models as tvm\n"
                     "assert type(tvm.resnet18()).__name__ == 'ResNet'\n"
                     "print('ok', 'benchmark' in sys.modules)\n")


def test_torchvision_first_works_with_the_startup_hook(tmp_path):
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    assert install_hook(site_dir, needed=True)
    cheap = f"import site, sys\nsite.addsitedir({str(site_dir)!r})\nassert 'torch' not in sys.modules, 'start-up imported torch'\n"
    out = _fresh(cheap + TORCHVISION_FIRST, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["ok", "True"]  # the hook prepared torch through the package


def test_without_the_hook_torchvision_first_fails_where_the_extension_cannot_load(tmp_path):
    venv_hook = Path(sysconfig.get_paths()["purelib"]) / HOOK_PTH
    out = _fresh(TORCHVISION_FIRST, tmp_path)
    if torchvision_extension_loaded() or venv_hook.exists():
        assert out.returncode == 0, out.stderr[-3000:]  # nothing to fix here, or the hook is installed
    else:
        assert out.returncode != 0 and "torchvision::nms does not exist" in out.stderr


def test_the_hook_is_written_only_when_needed_and_idempotently(tmp_path):
    assert install_hook(tmp_path, needed=True) and install_hook(tmp_path, needed=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([HOOK_MODULE, HOOK_PTH])
    assert (tmp_path / HOOK_PTH).read_text() == "import _benchmark_torchvision_hook\n"
    assert not install_hook(tmp_path, needed=False)  # an extension that loads: an old hook is removed
    assert list(tmp_path.iterdir()) == []
