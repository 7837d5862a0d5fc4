"""torchvision imports through the package even when its compiled extension cannot load."""

import subprocess
import sys

from benchmark._compat import _SCHEMAS, _op_exists, _state, torchvision_extension_loaded


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
