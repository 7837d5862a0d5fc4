"""Reference benchmark suite for gradient-based visual explanations (Grad-CAM and baselines).

The Python API (docs/python_api.md), imported on first use so that ``import benchmark`` stays light:
``build_model(name, weights=..., checkpoint=...) -> (model, info)``, ``build_method(name, model, info,
layer=None, **options)`` (``maps = method(images [B, 3, H, W], class_ids [B]) -> [B, H, W]``),
``build_metric(name, **options)`` and ``evaluate(config) -> summary``.
"""

import importlib
import sys
from types import ModuleType  # not ``import types``: the submodule benchmark.types takes that name here

from benchmark._compat import install_finder

install_finder()  # torchvision's import is prepared when it happens; ``import benchmark`` imports no torch

__version__ = "0.1.0"
API = {"build_model": "benchmark.models", "build_method": "benchmark.methods",
       "build_metric": "benchmark.metrics", "evaluate": "benchmark.evaluate"}
__all__ = [*API, "__version__"]


def __getattr__(name: str):
    if name not in API:
        raise AttributeError(f"module 'benchmark' has no attribute {name!r}")
    module = importlib.import_module(API[name])
    if name == "evaluate":  # the submodule, which its import made callable as its function (``_CallableModule``)
        return module
    globals()[name] = value = getattr(module, name)
    return value


def __dir__():
    return sorted({*globals(), *API})


class _CallableModule(ModuleType):
    """The module ``benchmark.evaluate``, callable as its function ``evaluate(config, run_dir=None)``: Python
    makes an imported submodule the package's attribute of its name, and the API promises a callable there."""

    def __call__(self, *args, **kwargs):
        return self.evaluate(*args, **kwargs)


class _Package(ModuleType):
    def __setattr__(self, name, value):
        if name == "evaluate" and type(value) is ModuleType:
            value.__class__ = _CallableModule
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
