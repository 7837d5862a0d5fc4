"""Training: toy models (toy.py), multi-label fine-tuning (finetune.py, multilabel.py), VGG16-GAP (vgg16_gap.py).
An entry layer: may import every lower layer (data, models, io, paths); models never import training.

``python -m benchmark.training`` verifies the toy models' shipped weights (``--retrain`` remakes them);
``ensure_checkpoint(model_cfg)`` verifies them before a run loads them (``benchmark.evaluate`` calls it).
"""

from benchmark.training.multilabel import train_multilabel_toy
from benchmark.training.toy import ensure_checkpoint, train_toy

__all__ = ["ensure_checkpoint", "train_multilabel_toy", "train_toy"]
