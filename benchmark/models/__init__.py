"""Models behind one registry: ``build_model(name, weights=..., checkpoint=...) -> (model, info)``."""

from benchmark.models import toy, zoo  # noqa: F401  (registration)
from benchmark.models.base import MODELS, ModelInfo, build_model, resolve_layer

__all__ = ["MODELS", "ModelInfo", "build_model", "resolve_layer"]
