"""Models behind one registry: ``build_model(name, weights=..., checkpoint=...) -> (model, info)``; loading only
(the toy models' shipped weights, sha256-checked: shipped.py).
May import only the foundation modules (registry, paths); never data, training or anything above.

Every public module of this package is imported here, so its ``MODELS`` entries exist.
"""

from benchmark.registry import import_submodules
from benchmark.models.base import MODELS, ModelInfo, build_model, resolve_layer

import_submodules(__name__)

__all__ = ["MODELS", "ModelInfo", "build_model", "resolve_layer"]
