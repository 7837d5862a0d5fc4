"""Multi-label fine-tuning recipe (binary cross-entropy) for the pointing games' classifiers.

    python -m benchmark.training.finetune --model vgg16 --dataset voc2007_trainval --out vgg16_voc07.pt \
        [--val-dataset voc2007_test] [--epochs 20] [--lr 1e-4] [--device cuda]

Zhang et al. (ECCV 2016) and the Grad-CAM paper point with VGG-16/ResNet-50 fine-tuned for
multi-label VOC 2007 / COCO 2014 classification. The recipe starts from the model's preset weights
(ImageNet for torchvision models, the trained single-label weights for toy models; ``--init
random``: none), replaces the last linear layer by one with the manifest's class count, and trains
every parameter with ``BCEWithLogits`` on multi-hot targets (every class in ``labels``,
difficult-only ones included): AdamW, one-cycle schedule, the new head at ``head_lr_mult`` times
the rate, horizontal flips, evaluation's ``paper`` preprocessing. Deterministic for a seed on one
device. The state dict is written atomically with a ``.json`` beside it (class names, recipe, val
mAP, and the training data: ``train_dataset``, ``train_split``, ``train_image_ids`` and their sha256,
which ``benchmark.runs.overlap`` checks against the evaluated images) and loads with
``build_model(name, checkpoint=OUT, num_classes=K)``. A ``vgg16_gap*`` model starts from
torchvision's ImageNet VGG-16 features (or ``--init-checkpoint``, an ILSVRC ``vgg16_gap``).
``benchmark.training.multilabel.train_multilabel_toy`` makes the demo model ``toy_gap_multi`` on the
synthetic scenes.

The CAM paper's VGG16-GAP (``vgg16_gap``, Table 1's CAM row) has its own single-label recipe,
``benchmark.training.vgg16_gap.finetune_vgg16_gap``, on ILSVRC train in ImageFolder layout::

    python -m benchmark.training.finetune vgg16_gap --data-root ILSVRC2012_TRAIN --out checkpoints/vgg16_gap.pt \
        [--val-root ILSVRC2012_VAL_BY_CLASS] [--epochs 6] [--backbone-lr-mult 0.1] [--device cuda] [--amp]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import DataLoader

from benchmark.models.base import CONF_DIR, build_model, preset
from benchmark.models.toy import ARCHS
from benchmark.paths import cache_dir
from benchmark.runs.overlap import ids_digest
from benchmark.training.multilabel import MultilabelSet, average_precision, fit, predict, replace_head, save
from benchmark.training.toy import ensure_checkpoint
from benchmark.training.vgg16_gap import main_vgg16_gap, vgg16_gap_initial

log = logging.getLogger(__name__)
RECIPE = {"epochs": 20, "batch_size": 32, "lr": 1e-4, "head_lr_mult": 10.0, "weight_decay": 1e-4, "seed": 0}


def dataset_root(name_or_dir: str) -> Path:
    """A manifest folder, or the resolved ``root`` of ``conf/dataset/<name>.yaml`` (made if generated)."""
    if Path(name_or_dir).is_dir():
        return Path(name_or_dir)
    path = CONF_DIR / "dataset" / f"{name_or_dir}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"dataset {name_or_dir!r}: neither a folder nor {path}")
    cfg = OmegaConf.create({"paths": {"cache": str(cache_dir())}, "dataset": OmegaConf.load(path)})
    if cfg.dataset.get("generate") == "synthetic_multi":
        from data_prep.synthetic_multi import ensure_synthetic_multi

        ensure_synthetic_multi(cfg.dataset.root)
    return Path(cfg.dataset.root)


def initial_model(name: str, init: str = "pretrained", init_checkpoint: str | None = None) -> tuple[nn.Module, object]:
    """The model to fine-tune, trainable: preset weights (``pretrained``) or ``random``; a VGG16-GAP
    starts from torchvision's ImageNet VGG-16 features or ``init_checkpoint`` (an ILSVRC vgg16_gap)."""
    spec = preset(name)
    toy = (spec.get("arch") or name) in ARCHS
    if init == "pretrained":
        weights = None if toy else spec.get("weights") or "DEFAULT"
        if toy:  # the shipped toy weights, verified as a run verifies them
            ensure_checkpoint({"name": name})
    elif init == "random":
        weights = "random" if toy else None
    else:
        raise ValueError(f"init={init!r}: expected 'pretrained' or 'random'")
    if (spec.get("arch") or name) == "vgg16_gap" and init == "pretrained":
        model, info = vgg16_gap_initial(name, init_checkpoint)
    else:
        model, info = build_model(name, weights=weights)
    for param in model.parameters():
        param.requires_grad_(True)
    return model, info


def training_split(samples) -> dict:
    """What a checkpoint was trained on: dataset name, split, sorted image ids and their digest."""
    ids = sorted(samples.image_ids)
    return {"train_dataset": samples.meta.get("dataset"), "train_split": (samples.meta.get("source") or {}).get("split"),
            "train_image_ids": ids, "train_image_ids_sha256": ids_digest(ids)}


def finetune(model_name: str, train_dir: Path | str, out: Path | str, val_dir: Path | str | None = None,
             recipe: dict | None = None, init: str = "pretrained", device: str = "cpu",
             num_workers: int = 0, limit: int | None = None, init_checkpoint: str | None = None) -> dict:
    """Fine-tune ``model_name`` for multi-label classification on a manifest; returns the metadata,
    which records the training split and its image ids (the guard of ``benchmark.runs.overlap``)."""
    recipe = {**RECIPE, **(recipe or {})}
    torch.manual_seed(recipe["seed"])
    model, info = initial_model(model_name, init, init_checkpoint)
    train = MultilabelSet(train_dir, info, limit=limit)
    head = replace_head(model, train.num_classes)
    dev = torch.device(device)
    model.to(dev)
    order = torch.Generator().manual_seed(recipe["seed"])
    loader = DataLoader(train, batch_size=recipe["batch_size"], shuffle=True, generator=order,
                        num_workers=num_workers, drop_last=len(train) > recipe["batch_size"])
    start = time.perf_counter()
    fit(model, head, loader, recipe, dev)
    meta = {"name": model_name, "init": init, "init_checkpoint": init_checkpoint, "head": head,
            "num_classes": train.num_classes, "class_names": train.class_names, "train": str(train_dir),
            **training_split(train.samples), "train_images": len(train),
            "recipe": recipe, "seconds": round(time.perf_counter() - start, 1)}
    if val_dir is not None:
        val = MultilabelSet(val_dir, info)
        scores, targets = predict(model, DataLoader(val, batch_size=64, num_workers=num_workers), dev)
        meta.update(val=str(val_dir), val_map=float(average_precision(scores, targets).nanmean()))
    save(model.cpu(), Path(out), meta)
    return meta


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["vgg16_gap"]:
        return main_vgg16_gap(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m benchmark.training.finetune", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model config name (vgg16, resnet50, toy_gap, ...)")
    parser.add_argument("--dataset", required=True, help="dataset config name (conf/dataset) or manifest folder")
    parser.add_argument("--val-dataset", default=None, help="dataset for the val mAP (config name or folder)")
    parser.add_argument("--out", required=True, type=Path, help="checkpoint to write (state dict)")
    parser.add_argument("--init", default="pretrained", choices=("pretrained", "random"))
    parser.add_argument("--init-checkpoint", default=None, help="vgg16_gap* models: start from this ILSVRC "
                        "vgg16_gap checkpoint instead of torchvision's ImageNet VGG-16 features")
    for key, value in RECIPE.items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    recipe = {key: getattr(args, key) for key in RECIPE}
    val = dataset_root(args.val_dataset) if args.val_dataset else None
    meta = finetune(args.model, dataset_root(args.dataset), args.out, val, recipe, args.init, args.device,
                    args.num_workers, args.limit, args.init_checkpoint)
    print(f"{args.model}: {meta['num_classes']} classes, val mAP {meta.get('val_map', '-')}, -> {args.out}")


if __name__ == "__main__":
    main()
