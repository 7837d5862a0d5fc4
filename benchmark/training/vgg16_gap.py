"""The CAM paper's VGG16-GAP (``vgg16_gap``, Table 1's CAM row): its single-label recipe on ILSVRC train.

    python -m benchmark.training.finetune vgg16_gap --data-root ILSVRC2012_TRAIN --out checkpoints/vgg16_gap.pt \
        [--val-root ILSVRC2012_VAL_BY_CLASS] [--epochs 6] [--backbone-lr-mult 0.1] [--device cuda] [--amp]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from benchmark.models.base import IMAGENET_MEAN, IMAGENET_STD
from benchmark.training.multilabel import predict, save

log = logging.getLogger(__name__)

GAP_RECIPE = {"epochs": 6, "batch_size": 64, "lr": 0.01, "backbone_lr_mult": 0.0, "momentum": 0.9,
              "weight_decay": 5e-4, "image_size": 224, "seed": 0}


def imagenet_vgg16_features() -> nn.Sequential:
    """torchvision VGG-16's ``features`` with its ImageNet weights (``VGG16_Weights.IMAGENET1K_V1``).

    torchvision downloads the file to ``$TORCH_HOME`` on first use (or reads the copy already there).
    """
    import torchvision.models as tvm

    return tvm.vgg16(weights=tvm.VGG16_Weights.IMAGENET1K_V1).features


def vgg16_gap_initial(name: str, init_checkpoint: str | None = None) -> tuple[nn.Module, object]:
    """A 1000-class VGG16-GAP to fine-tune for multi-label classification: ``features`` from
    torchvision's ImageNet VGG-16 and fresh added layers, or every weight from an ILSVRC ``vgg16_gap``
    checkpoint; the multi-label recipe then swaps the head."""
    from benchmark.models.base import ModelInfo
    from benchmark.models.vgg_gap import VGG16GAP, build_vgg16_gap

    if init_checkpoint:
        return build_vgg16_gap(name, checkpoint=init_checkpoint, num_classes=1000)
    model = VGG16GAP(1000)
    model.features.load_state_dict(imagenet_vgg16_features()[:30].state_dict())
    return model, ModelInfo(name=name, num_classes=1000, cam_head="fc")


def _image_folder(root: Path | str, transform, what: str):
    from torchvision import datasets

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{what} {root}: no such folder; expected the ImageFolder layout "
                                "<root>/<wnid>/<image>.JPEG (one sub-folder per class, e.g. n01440764)")
    try:
        return datasets.ImageFolder(str(root), transform=transform)
    except (FileNotFoundError, RuntimeError) as err:
        raise FileNotFoundError(f"{what} {root}: not an ImageFolder tree (<root>/<class>/<image>): {err}") from None


def finetune_vgg16_gap(data_root: Path | str, out: Path | str, recipe: dict | None = None,
                       val_root: Path | str | None = None, device: str = "cpu", num_workers: int = 4,
                       max_steps: int | None = None, amp: bool = False) -> dict:
    """Make a ``vgg16_gap`` checkpoint: torchvision's ImageNet VGG-16 -> VGGnet-GAP on ILSVRC train.

    Steps (``GAP_RECIPE`` holds the defaults; our choices: Zhou et al. do not publish their solver):

    1. ``features`` (conv1_1 .. relu5_3) are copied from torchvision's ``VGG16_Weights.IMAGENET1K_V1``;
       the added ``cam_conv`` (3x3, 1024 units) and ``fc`` (1024 -> classes) start from torchvision's
       VGG initialisation (Kaiming-normal conv, N(0, 0.01) linear), with ``torch.manual_seed(seed)``.
    2. Data: ``data_root`` in ImageFolder layout, ``<root>/<wnid>/*.JPEG``, one folder per class
       (ILSVRC 2012 train extracted per synset; Kaggle's ``ILSVRC/Data/CLS-LOC/train`` is already so).
       The class index is the position of the folder name in sorted order, which for the 1000 ILSVRC
       wnids is torchvision's (and the ILSVRC devkit manifests') class order. Training transform:
       ``RandomResizedCrop(image_size)`` (224), horizontal flip, ImageNet mean/std.
    3. Training: cross-entropy, SGD (momentum 0.9, weight decay 5e-4), batch 64, lr 0.01 for the new
       layers with a cosine schedule to 0 over ``epochs`` (6) epochs (or ``max_steps``).
       ``backbone_lr_mult`` 0 (default) keeps ``features`` frozen (run without a graph: about a
       third of the cost of full training); > 0 fine-tunes them too at ``lr * backbone_lr_mult``
       (Zhou et al. fine-tuned the whole network; 0.1 is a usual choice). ``amp``: bfloat16
       autocast on CUDA.
    4. Optional ``val_root`` (ImageFolder with the same class folders, e.g. ILSVRC val sorted into
       wnid folders): top-1 / top-5 accuracy with the evaluation's ``paper`` preprocessing (whole
       image resized to ``image_size``).
    5. Output: the state dict at ``out`` (atomic) and ``out.json`` (class names, wnids, recipe,
       steps, last loss, val accuracy); it loads with ``build_model("vgg16_gap", checkpoint=out)``
       (``num_classes=K`` for a folder of K != 1000 classes).

    The recipe has not been run to completion here; the accuracy it reaches is not measured.
    """
    from torchvision import transforms

    from benchmark.models.vgg_gap import VGG16GAP

    recipe = {**GAP_RECIPE, **(recipe or {})}
    size, dev = int(recipe["image_size"]), torch.device(device)
    normalize = transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    train = _image_folder(data_root, transforms.Compose([
        transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip(), transforms.ToTensor(), normalize]),
        "--data-root")
    num_classes = len(train.classes)
    if num_classes != 1000:
        log.warning("%s has %d class folders, ILSVRC has 1000: the checkpoint's class indices are this folder's "
                    "sorted order, not ILSVRC's", data_root, num_classes)
    torch.manual_seed(recipe["seed"])
    model = VGG16GAP(num_classes)
    model.features.load_state_dict(imagenet_vgg16_features()[:30].state_dict())
    tune_backbone = recipe["backbone_lr_mult"] > 0
    model.features.requires_grad_(tune_backbone)
    new = [p for n, p in model.named_parameters() if not n.startswith("features.")]
    groups = [{"params": new, "lr": recipe["lr"]}]
    if tune_backbone:
        groups.append({"params": list(model.features.parameters()), "lr": recipe["lr"] * recipe["backbone_lr_mult"]})
    opt = torch.optim.SGD(groups, lr=recipe["lr"], momentum=recipe["momentum"], weight_decay=recipe["weight_decay"])
    order = torch.Generator().manual_seed(recipe["seed"])
    loader = DataLoader(train, batch_size=recipe["batch_size"], shuffle=True, generator=order, num_workers=num_workers,
                        drop_last=len(train) > recipe["batch_size"], pin_memory=dev.type == "cuda")
    total = recipe["epochs"] * len(loader) if max_steps is None else int(max_steps)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total))
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if amp and dev.type == "cuda"
                else contextlib.nullcontext())
    model.to(dev)
    step, loss, start = 0, float("nan"), time.perf_counter()
    for epoch in range(math.ceil(total / max(1, len(loader)))):
        model.train()
        for x, y in loader:
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            with autocast:
                with contextlib.nullcontext() if tune_backbone else torch.no_grad():
                    feats = model.features(x)
                logits = model.head(feats)
            batch_loss = F.cross_entropy(logits.float(), y)
            opt.zero_grad(set_to_none=True)
            batch_loss.backward()
            opt.step()
            sched.step()
            step, loss = step + 1, float(batch_loss.detach())
            if step % 100 == 0:
                log.info("step %d/%d loss %.4f", step, total, loss)
            if step >= total:
                break
        log.info("epoch %d: step %d/%d loss %.4f", epoch + 1, step, total, loss)
        if step >= total:
            break
    model.eval()
    names = list(train.classes)
    if num_classes == 1000:
        import torchvision.models as tvm

        names = list(tvm.VGG16_Weights.IMAGENET1K_V1.meta["categories"])
    meta = {"name": "vgg16_gap", "num_classes": num_classes, "class_names": names, "wnids": list(train.classes),
            "init": "torchvision VGG16_Weights.IMAGENET1K_V1 features", "train": str(data_root),
            "train_images": len(train), "recipe": recipe, "steps": step, "last_loss": loss,
            "seconds": round(time.perf_counter() - start, 1)}
    if val_root is not None:
        val = _image_folder(val_root, transforms.Compose([transforms.Resize((size, size)), transforms.ToTensor(),
                                                          normalize]), "--val-root")
        if val.classes != train.classes:
            raise ValueError(f"--val-root {val_root}: class folders differ from --data-root's")
        logits, targets = predict(model, DataLoader(val, batch_size=recipe["batch_size"], num_workers=num_workers), dev)
        top5 = logits.topk(min(5, num_classes), dim=1).indices
        meta.update(val=str(val_root), val_top1=float((top5[:, 0] == targets).float().mean()),
                    val_top5=float((top5 == targets[:, None]).any(1).float().mean()))
    save(model.cpu(), Path(out), meta)
    return meta


def main_vgg16_gap(argv: list[str]) -> None:
    """``python -m benchmark.training.finetune vgg16_gap --data-root DIR --out FILE [...]``."""
    parser = argparse.ArgumentParser(prog="python -m benchmark.training.finetune vgg16_gap",
                                     description=finetune_vgg16_gap.__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True, type=Path, help="ILSVRC train in ImageFolder layout")
    parser.add_argument("--out", required=True, type=Path, help="checkpoint to write (state dict)")
    parser.add_argument("--val-root", type=Path, default=None, help="val images in class folders (optional)")
    for key, value in GAP_RECIPE.items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--max-steps", type=int, default=None, help="stop after N steps (smoke tests)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--num-workers", type=int, default=4)
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast on CUDA")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    meta = finetune_vgg16_gap(args.data_root, args.out, {k: getattr(args, k) for k in GAP_RECIPE}, args.val_root,
                              args.device, args.num_workers, args.max_steps, args.amp)
    print(f"vgg16_gap: {meta['num_classes']} classes, {meta['steps']} steps, val top-1 {meta.get('val_top1', '-')}, "
          f"-> {args.out}")
