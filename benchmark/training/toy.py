"""Recipe that trains the toy models on the synthetic train split: ``python -m benchmark.training --retrain``.

Without ``--retrain`` the command only checks the shipped weights (``benchmark.models.shipped``):
the demo evaluates those, never weights trained on the user's machine. ``--retrain`` trains
``toy_vgg``, ``toy_gap`` and ``toy_gap_multi`` into the cache, checks each against its recipe's
accuracy floor and only then installs it as the shipped weights (with a new sha256 in its JSON).
Training is deterministic (fixed seed, fixed data order per epoch from that seed, single-process
loading) and writes ``.cache/models/<name>.pt`` with a ``.json`` beside it (class names, accuracy,
recipe); the images are decoded and preprocessed once, like evaluation (``paper`` resize to 64x64).
``toy_vgg`` and ``toy_gap`` are made by ``train_toy``, ``toy_gap_multi`` by
``multilabel.train_multilabel_toy``.

``ensure_checkpoint`` verifies a shipped toy model's weights before a run loads it (the evaluation
loop calls it); it never trains.
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
from benchmark.models.base import IMAGENET_MEAN, IMAGENET_STD
from benchmark.models.shipped import SHIPPED, WeightsError, install, verify
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


def ensure_checkpoint(model_cfg: dict) -> Path | None:
    """Verify the shipped weights of a toy model a run is about to load; nothing is trained here.

    ``model_cfg`` is the run's ``model`` config (at least ``name``). Only a shipped toy model
    (``benchmark.models.shipped.SHIPPED``) with the trained weights (no ``weights``, no
    ``checkpoint``) is checked: its weight file against the sha256 and data version in its JSON
    (``WeightsError`` naming the file otherwise; ``python -m benchmark.training --retrain`` remakes it).
    Returns the weight file, or None when the model is not one with shipped weights.
    """
    name = model_cfg["name"]
    if name not in SHIPPED or model_cfg.get("weights") is not None or model_cfg.get("checkpoint") is not None:
        return None
    return verify(name)[0]


def _train_one_thread(name: str) -> dict:
    """Worker: one model per process, one thread each (small convs scale badly across threads)."""
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if name in MULTILABEL:
        return train_multilabel_toy(name)
    return train_toy(name)


MULTILABEL = ("toy_gap_multi",)


def retrain(names: list[str]) -> None:
    """Train ``names`` into the cache in parallel processes; install each that reaches its floor."""
    if any(n not in MULTILABEL for n in names):
        load_split("train")  # generate the data once, before the workers start
    context = multiprocessing.get_context("spawn")
    failed = []
    with ProcessPoolExecutor(max_workers=min(len(names), os.cpu_count() or 1), mp_context=context) as pool:
        for name, meta in zip(names, pool.map(_train_one_thread, names)):
            try:
                record = install(name, default_checkpoint(name), meta)
            except WeightsError as err:
                failed.append(str(err))
                continue
            print(f"{name}: installed, sha256 {record['sha256']}")
    if failed:
        raise SystemExit("\n".join(failed))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmark.training", description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=SHIPPED, action="append", help="default: every toy model")
    parser.add_argument("--retrain", action="store_true",
                        help="train anew, check the accuracy floor, replace the shipped weights")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    names = list(args.model or SHIPPED)
    if args.retrain:
        retrain(names)
        return
    try:
        for name in names:
            path, meta = verify(name)
            print(f"{name}: shipped weights {path} (sha256 {meta['sha256'][:12]}..., data version {meta['data_version']})")
    except WeightsError as err:
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    main()
