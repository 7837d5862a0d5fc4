"""Reference benchmark suite for gradient-based visual explanations (Grad-CAM and baselines)."""

from benchmark._compat import ensure_torchvision

ensure_torchvision()

__version__ = "0.1.0"
