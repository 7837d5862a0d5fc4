"""Saliency methods, one small module each, sharing one backprop driver (``backprop.py``).
May import the foundation modules, data and models; never metrics or anything above.

Every public module of this package is imported here, so its ``@METHODS.register`` entries exist.
"""

from benchmark.registry import import_submodules
from benchmark.methods.base import METHODS, Explanation, NotApplicable, SaliencyMethod, build_method

import_submodules(__name__)

__all__ = ["METHODS", "Explanation", "NotApplicable", "SaliencyMethod", "build_method"]
