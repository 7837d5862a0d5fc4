"""Multi-label fine-tuning recipe (binary cross-entropy) for the pointing games' classifiers.

    python -m benchmark.finetune --model vgg16 --dataset voc2007_trainval --out vgg16_voc07.pt \
        [--val-dataset voc2007_test] [--epochs 20] [--lr 1e-4] [--device cuda]

Zhang et al. (ECCV 2016) and the Grad-CAM paper point with VGG-16/ResNet-50 fine-tuned for
multi-label VOC 2007 / COCO 2014 classification. The recipe starts from the model's preset weights
(ImageNet for torchvision models, the trained single-label weights for toy models; ``--init
random``: none), replaces the last linear layer by one with the manifest's class count, and trains
every parameter with ``BCEWithLogits`` on multi-hot targets (every class in ``labels``,
difficult-only ones included): AdamW, one-cycle schedule, the new head at ``head_lr_mult`` times
the rate, horizontal flips, evaluation's ``paper`` preprocessing. Deterministic for a seed on one
device. The state dict is written atomically with a ``.json`` beside it (class names, recipe, val
mAP) and loads with ``build_model(name, checkpoint=OUT, num_classes=K)``.
``train_multilabel_toy`` makes the demo model ``toy_gap_multi`` on the synthetic scenes.

The CAM paper's VGG16-GAP (``vgg16_gap``, Table 1's CAM row) has its own single-label recipe,
``finetune_vgg16_gap``, on ILSVRC train in ImageFolder layout::

    python -m benchmark.finetune vgg16_gap --data-root ILSVRC2012_TRAIN --out checkpoints/vgg16_gap.pt \
        [--val-root ILSVRC2012_VAL_BY_CLASS] [--epochs 6] [--backbone-lr-mult 0.1] [--device cuda] [--amp]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from benchmark.io import atomic_write_bytes
from benchmark.data.readers import ManifestDataset
from benchmark.data.transforms import Preprocess
from benchmark.models.base import CONF_DIR, IMAGENET_MEAN, IMAGENET_STD, build_model, preset
from benchmark.models.toy import ARCHS, TOY_INPUT
from benchmark.paths import cache_dir, models_dir

log = logging.getLogger(__name__)
RECIPE = {"epochs": 20, "batch_size": 32, "lr": 1e-4, "head_lr_mult": 10.0, "weight_decay": 1e-4, "seed": 0}
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


def replace_head(model: nn.Module, num_classes: int) -> str:
    """Swap the last ``nn.Linear`` for a fresh one with ``num_classes`` outputs; return its name."""
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__}: no nn.Linear layer to use as the classification head")
    name, old = linears[-1]
    parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
    setattr(parent, name.rpartition(".")[2], nn.Linear(old.in_features, num_classes))
    return name


def initial_model(name: str, init: str = "pretrained") -> tuple[nn.Module, object]:
    """The model to fine-tune, trainable: preset weights (``pretrained``) or ``random``."""
    spec = preset(name)
    toy = (spec.get("arch") or name) in ARCHS
    if init == "pretrained":
        weights = None if toy else spec.get("weights") or "DEFAULT"
    elif init == "random":
        weights = "random" if toy else None
    else:
        raise ValueError(f"init={init!r}: expected 'pretrained' or 'random'")
    model, info = build_model(name, weights=weights)
    for param in model.parameters():
        param.requires_grad_(True)
    return model, info


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


def finetune(model_name: str, train_dir: Path | str, out: Path | str, val_dir: Path | str | None = None,
             recipe: dict | None = None, init: str = "pretrained", device: str = "cpu",
             num_workers: int = 0, limit: int | None = None) -> dict:
    """Fine-tune ``model_name`` for multi-label classification on a manifest; returns the metadata."""
    recipe = {**RECIPE, **(recipe or {})}
    torch.manual_seed(recipe["seed"])
    model, info = initial_model(model_name, init)
    train = MultilabelSet(train_dir, info, limit=limit)
    head = replace_head(model, train.num_classes)
    dev = torch.device(device)
    model.to(dev)
    order = torch.Generator().manual_seed(recipe["seed"])
    loader = DataLoader(train, batch_size=recipe["batch_size"], shuffle=True, generator=order,
                        num_workers=num_workers, drop_last=len(train) > recipe["batch_size"])
    start = time.perf_counter()
    fit(model, head, loader, recipe, dev)
    meta = {"name": model_name, "init": init, "head": head, "num_classes": train.num_classes,
            "class_names": train.class_names, "train": str(train_dir), "train_images": len(train),
            "recipe": recipe, "seconds": round(time.perf_counter() - start, 1)}
    if val_dir is not None:
        val = MultilabelSet(val_dir, info)
        scores, targets = predict(model, DataLoader(val, batch_size=64, num_workers=num_workers), dev)
        meta.update(val=str(val_dir), val_map=float(average_precision(scores, targets).nanmean()))
    save(model.cpu(), Path(out), meta)
    return meta


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


GAP_RECIPE = {"epochs": 6, "batch_size": 64, "lr": 0.01, "backbone_lr_mult": 0.0, "momentum": 0.9,
              "weight_decay": 5e-4, "image_size": 224, "seed": 0}


def imagenet_vgg16_features() -> nn.Sequential:
    """torchvision VGG-16's ``features`` with its ImageNet weights (``VGG16_Weights.IMAGENET1K_V1``).

    torchvision downloads the file to ``$TORCH_HOME`` on first use (or reads the copy already there).
    """
    import torchvision.models as tvm

    return tvm.vgg16(weights=tvm.VGG16_Weights.IMAGENET1K_V1).features


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
    """``python -m benchmark.finetune vgg16_gap --data-root DIR --out FILE [...]``."""
    parser = argparse.ArgumentParser(prog="python -m benchmark.finetune vgg16_gap",
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


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["vgg16_gap"]:
        return main_vgg16_gap(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model config name (vgg16, resnet50, toy_gap, ...)")
    parser.add_argument("--dataset", required=True, help="dataset config name (conf/dataset) or manifest folder")
    parser.add_argument("--val-dataset", default=None, help="dataset for the val mAP (config name or folder)")
    parser.add_argument("--out", required=True, type=Path, help="checkpoint to write (state dict)")
    parser.add_argument("--init", default="pretrained", choices=("pretrained", "random"))
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
                    args.num_workers, args.limit)
    print(f"{args.model}: {meta['num_classes']} classes, val mAP {meta.get('val_map', '-')}, -> {args.out}")


if __name__ == "__main__":
    main()
