"""Saliency methods, one small module each, sharing one backprop driver (``backprop.py``)."""

from benchmark.methods import cam, center, grad_cam, pixel  # noqa: F401  (registration)
from benchmark.methods.base import METHODS, Explanation, NotApplicable, SaliencyMethod, build_method

__all__ = ["METHODS", "Explanation", "NotApplicable", "SaliencyMethod", "build_method"]
