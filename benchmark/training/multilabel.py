"""Multi-label training pieces (binary cross-entropy on multi-hot targets) and the toy recipe.

``MultilabelSet`` (manifest images preprocessed like evaluation, multi-hot targets), per-class
``average_precision``, ``replace_head``, the training loop ``fit`` and ``save`` are shared by the
fine-tuning recipe (``benchmark.training.finetune``) and ``train_multilabel_toy``, which makes the
demo model ``toy_gap_multi`` on the synthetic multi-object scenes.
"""

from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from benchmark.data.readers import ManifestDataset
from benchmark.data.transforms import Preprocess
from benchmark.io import atomic_write_bytes
from benchmark.models.base import IMAGENET_MEAN, IMAGENET_STD, preset
from benchmark.models.toy import ARCHS, TOY_INPUT
from benchmark.paths import cache_dir, models_dir

log = logging.getLogger(__name__)
TOY_RECIPE = {"epochs": 8, "batch_size": 32, "lr": 3e-3, "head_lr_mult": 1.0, "weight_decay": 5e-4, "seed": 0}


class MultilabelSet(Dataset):
    """Manifest images preprocessed like evaluation (``paper``), with multi-hot targets ``[C]``."""

    def __init__(self, manifest_dir, info=None, size: int | None = None, limit: int | None = None):
        self.samples = ManifestDataset(manifest_dir, limit=limit)
        self.class_names = list(self.samples.meta.get("class_names", []))
        if not self.class_names:
            raise ValueError(f"{manifest_dir}/meta.json: no 'class_names'; a multi-label manifest needs them "
                             "(written by data_prep.voc2007 and data_prep.coco2014)")
        self.num_classes = len(self.class_names)
        mean, std = (info.mean, info.std) if info is not None else (IMAGENET_MEAN, IMAGENET_STD)
        self.prep = Preprocess(size or info.input_size, tuple(mean), tuple(std), "paper")
        self.tensors = None

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        sample = self.samples[i]
        target = torch.zeros(self.num_classes)
        target[list(sample.labels)] = 1.0
        return self.prep(sample.image), target

    def preload(self) -> "MultilabelSet":
        """Decode every image once into ``self.tensors`` (small data sets: the toy recipe)."""
        xs, ys = zip(*(self[i] for i in range(len(self))))
        self.tensors = TensorDataset(torch.stack(xs), torch.stack(ys))
        return self


def average_precision(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-class non-interpolated AP ``[C]`` from ``scores, targets [N, C]`` (NaN: no positive)."""
    order = scores.argsort(dim=0, descending=True, stable=True)
    hits = targets.float().gather(0, order)
    precision = hits.cumsum(0) / torch.arange(1, len(hits) + 1, dtype=torch.float32)[:, None]
    return (precision * hits).sum(0) / hits.sum(0)


@torch.no_grad()
def predict(model: nn.Module, loader: DataLoader, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and targets ``[N, C]`` over a loader, in eval mode."""
    pairs = [(model.eval()(x.to(device)).cpu(), y) for x, y in loader]
    return torch.cat([p for p, _ in pairs]), torch.cat([t for _, t in pairs])


def replace_head(model: nn.Module, num_classes: int) -> str:
    """Swap the last ``nn.Linear`` for a fresh one with ``num_classes`` outputs; return its name."""
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__}: no nn.Linear layer to use as the classification head")
    name, old = linears[-1]
    parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
    setattr(parent, name.rpartition(".")[2], nn.Linear(old.in_features, num_classes))
    return name


def fit(model: nn.Module, head: str, loader: DataLoader, recipe: dict, device: torch.device) -> float:
    """Train all parameters with BCE on multi-hot targets; returns the last batch loss."""
    head_params = set(id(p) for p in model.get_submodule(head).parameters())
    groups = [{"params": [p for p in model.parameters() if id(p) not in head_params], "lr": recipe["lr"]},
              {"params": list(model.get_submodule(head).parameters()), "lr": recipe["lr"] * recipe["head_lr_mult"]}]
    opt = torch.optim.AdamW(groups, weight_decay=recipe["weight_decay"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in groups],
                                                total_steps=max(1, recipe["epochs"] * len(loader)))
    flips = torch.Generator().manual_seed(recipe["seed"] + 1)
    loss = torch.tensor(float("nan"))
    for epoch in range(recipe["epochs"]):
        model.train()
        for x, y in loader:
            flip = torch.rand(len(x), generator=flips) < 0.5  # the VOC/COCO/synthetic classes are flip-invariant
            x = torch.where(flip[:, None, None, None], x.flip(-1), x).to(device)
            loss = F.binary_cross_entropy_with_logits(model(x), y.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        log.info("epoch %d/%d loss %.4f", epoch + 1, recipe["epochs"], float(loss.detach()))
    model.eval()
    return float(loss.detach())


def save(model: nn.Module, out: Path, meta: dict) -> Path:
    """State dict (atomically) and its ``.json`` metadata beside it."""
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    atomic_write_bytes(out, buffer.getvalue())
    atomic_write_bytes(out.with_suffix(".json"), json.dumps(meta, indent=2).encode())
    return out


def train_multilabel_toy(name: str = "toy_gap_multi", out: Path | None = None, recipe: dict | None = None,
                         manifests: dict | None = None) -> dict:
    """Make a multi-label toy model (``conf/model/<name>.yaml``) on the synthetic multi-object scenes.

    Random init, trained on one thread on the ``train`` manifest preloaded at 64x64, mAP on ``val``;
    cached at ``models_dir()/<name>.pt``. ``manifests`` (``{"train": dir, "val": dir}``) replaces the
    embedded scenes (made on first use in ``<cache>/data/synthetic_multi``).
    """
    from data_prep.synthetic_multi import prepare_all

    spec = preset(name)
    arch, num_classes = spec.get("arch") or name, int(spec.get("num_classes") or 10)
    if arch not in ARCHS:
        raise ValueError(f"conf/model/{name}.yaml: arch {arch!r} is not a toy architecture {sorted(ARCHS)}")
    recipe = {**TOY_RECIPE, **(recipe or {})}
    manifests = manifests or prepare_all(cache_dir() / "data" / "synthetic_multi")
    torch.manual_seed(recipe["seed"])
    model = ARCHS[arch](num_classes)
    train = MultilabelSet(manifests["train"], size=TOY_INPUT).preload()
    val = MultilabelSet(manifests["val"], size=TOY_INPUT).preload()
    if train.num_classes != num_classes:
        raise ValueError(f"conf/model/{name}.yaml: num_classes {num_classes}, scenes have {train.num_classes}")
    order = torch.Generator().manual_seed(recipe["seed"])
    loader = DataLoader(train.tensors, batch_size=recipe["batch_size"], shuffle=True, generator=order)
    start, threads = time.perf_counter(), torch.get_num_threads()
    torch.set_num_threads(1)  # the same weights whoever calls: float sums differ with the thread count
    try:
        fit(model, replace_head(model, num_classes), loader, recipe, torch.device("cpu"))
    finally:
        torch.set_num_threads(threads)
    scores, targets = predict(model, DataLoader(val.tensors, batch_size=256), torch.device("cpu"))
    ap = average_precision(scores, targets)
    meta = {"name": name, "arch": arch, "class_names": train.class_names, "val_map": float(ap.nanmean()),
            "val_ap": ap.tolist(), "recipe": recipe, "train_images": len(train),
            "seconds": round(time.perf_counter() - start, 1)}
    save(model, Path(out or models_dir() / f"{name}.pt"), meta)
    log.info("%s: val mAP %.3f (%s s)", name, meta["val_map"], meta["seconds"])
    return meta
