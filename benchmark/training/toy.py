"""Recipe that trains the toy models on the synthetic train split: ``python -m benchmark.training``.

Deterministic (fixed seed, fixed data order per epoch from that seed, single-process loading), and
cached in ``.cache/models/<name>.pt`` with a ``.json`` beside it (class names, accuracy, recipe, the
synthetic data version; a checkpoint trained on an older version is retrained).
The images are decoded and preprocessed once, like evaluation (``paper`` resize to 64x64).

``ensure_checkpoint`` makes a missing toy checkpoint before a run loads the model (the evaluation
loop calls it; ``build_model`` itself only loads checkpoints): ``toy_vgg`` and ``toy_gap`` by
``train_toy``, multi-label toys (``toy_gap_multi``) by ``multilabel.train_multilabel_toy``.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmark.data.readers import ManifestDataset
from benchmark.data.transforms import Preprocess
from benchmark.io import atomic_write_bytes
from benchmark.models.base import IMAGENET_MEAN, IMAGENET_STD, preset
from benchmark.models.toy import ARCHS, TOY_INPUT, default_checkpoint
from benchmark.paths import synthetic_root
from benchmark.training.multilabel import train_multilabel_toy

log = logging.getLogger(__name__)
RECIPE = {"epochs": 8, "batch_size": 64, "lr": 3e-3, "weight_decay": 5e-4, "seed": 0}


def load_split(split: str, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """All images of a synthetic split as one normalized tensor ``[N, 3, 64, 64]`` and labels."""
    root = synthetic_root()
    manifest = root / "manifests" / split
    if not (manifest / "manifest.parquet").is_file():
        from data_prep.synthetic import generate

        generate(root)
    dataset = ManifestDataset(manifest, limit=limit)
    prep = Preprocess(TOY_INPUT, IMAGENET_MEAN, IMAGENET_STD, "paper")
    images, labels = [], []
    for i in range(len(dataset)):
        sample = dataset[i]
        images.append(prep(sample.image))
        labels.append(sample.labels[0])
    names = dataset.meta.get("class_names", [])
    return torch.stack(images), torch.tensor(labels), names


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + 256]).argmax(1) for i in range(0, len(x), 256)])
    return float((pred == y).float().mean())


def train_toy(name: str, out: Path | None = None, recipe: dict | None = None, train_limit: int | None = None) -> dict:
    """Train ``toy_vgg`` or ``toy_gap``; write the checkpoint atomically; return its metadata."""
    recipe = {**RECIPE, **(recipe or {})}
    out = Path(out or default_checkpoint(name))
    torch.manual_seed(recipe["seed"])
    x_train, y_train, names = load_split("train", train_limit)
    x_val, y_val, _ = load_split("val")
    model = ARCHS[name](len(names) or int(y_train.max()) + 1)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe["lr"], weight_decay=recipe["weight_decay"])
    steps = recipe["epochs"] * ((len(x_train) + recipe["batch_size"] - 1) // recipe["batch_size"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe["lr"], total_steps=steps)
    gen = torch.Generator().manual_seed(recipe["seed"])
    start = time.perf_counter()
    for epoch in range(recipe["epochs"]):
        model.train()
        order = torch.randperm(len(x_train), generator=gen)
        for i in range(0, len(order), recipe["batch_size"]):
            idx = order[i:i + recipe["batch_size"]]
            xb = x_train[idx]
            flip = torch.rand(len(idx), generator=gen) < 0.5  # horizontal flips: the classes are flip-invariant
            xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
            loss = F.cross_entropy(model(xb), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        log.info("%s epoch %d/%d loss %.3f", name, epoch + 1, recipe["epochs"], float(loss.detach()))
    meta = {"name": name, "class_names": names, "data_version": data_version(), "val_top1": accuracy(model, x_val, y_val),
            "train_top1": accuracy(model, x_train, y_train), "recipe": recipe,
            "train_images": len(x_train), "seconds": round(time.perf_counter() - start, 1)}
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    atomic_write_bytes(out, buffer.getvalue())
    atomic_write_bytes(out.with_suffix(".json"), json.dumps(meta, indent=2).encode())
    log.info("%s: val top-1 %.3f (%s s) -> %s", name, meta["val_top1"], meta["seconds"], out)
    return meta


def data_version() -> int:
    """Version of the synthetic data generator the toy models are trained on."""
    from data_prep.synthetic import VERSION

    return VERSION


def is_current(name: str) -> bool:
    """Whether ``name``'s cached checkpoint exists and was trained on the current synthetic data."""
    path = default_checkpoint(name)
    try:
        meta = json.loads(path.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return False
    return path.is_file() and meta.get("data_version") == data_version()


def ensure_checkpoint(model_cfg: dict) -> Path | None:
    """Make the cached checkpoint of a toy model a run is about to load, when it is missing.

    ``model_cfg`` is the run's ``model`` config (at least ``name``; the rest as ``build_model``
    merges it over ``conf/model/<name>.yaml``). Only a toy model with the trained weights (no
    ``weights``, no ``checkpoint``) whose file ``<cache>/models/<name>.pt`` is missing is made:
    ``toy_vgg`` and ``toy_gap`` by ``train_toy``, multi-label toys by ``train_multilabel_toy``.
    Returns the checkpoint path, or None when the model is not one this makes.
    """
    name = model_cfg["name"]
    skip = ("name", "layers", "weights", "checkpoint", "preprocessing")
    merged = {k: v for k, v in preset(name).items() if k not in skip}
    merged.update({k: v for k, v in model_cfg.items() if k not in skip and v is not None})
    arch = merged.get("arch") or name
    if arch not in ARCHS or model_cfg.get("weights") is not None or model_cfg.get("checkpoint") is not None:
        return None
    path = default_checkpoint(name)
    if path.is_file():
        return path
    if merged.get("multilabel"):
        train_multilabel_toy(name)
    elif name in ARCHS:
        train_toy(name)
    else:
        return None  # a single-label toy under another name: build_model names the missing file
    return path


def _train_one_thread(name: str) -> dict:
    """Worker: one model per process, one thread each (small convs scale badly across threads)."""
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return train_toy(name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmark.training", description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(ARCHS), action="append", help="default: both")
    parser.add_argument("--force", action="store_true", help="retrain even when a checkpoint exists")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    todo = []
    for name in args.model or sorted(ARCHS):
        if is_current(name) and not args.force:
            print(f"{name}: cached at {default_checkpoint(name)}")
        else:
            todo.append(name)
    if not todo:
        return
    load_split("train")  # generate the data once, before the workers start
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(len(todo), os.cpu_count() or 1), mp_context=context) as pool:
        for name, meta in zip(todo, pool.map(_train_one_thread, todo)):
            print(f"{name}: val top-1 {100 * meta['val_top1']:.1f} % in {meta['seconds']} s -> {default_checkpoint(name)}")


if __name__ == "__main__":
    main()
