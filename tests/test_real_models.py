"""Real architectures offline: each preset builds with random weights and resolves its layers,
EfficientNet-Lite0's shipped weights classify real photos, TorchRay checkpoints convert exactly,
and a ResNet-50 localization job runs end to end on a 3-image ILSVRC fixture."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from PIL import Image

import benchmark.run  # noqa: F401  (schemas and resolvers)
from benchmark.data.transforms import Preprocess
from benchmark.evaluate import evaluate
from benchmark.methods.backprop import relu_rule
from benchmark.models import build_model, resolve_layer
from benchmark.models.efficientnet import ClampedReLU
from benchmark.models.torchray import caffe_resnet50, convert_state
from data_prep import ilsvrc
from data_prep._xml import XmlObject, ilsvrc_xml

CONF = Path(__file__).resolve().parents[1] / "conf"
# preset -> (Grad-CAM layer, its output [C, h, w] at 224x224, CAM-compatible)
PRESETS = {
    "vgg16": ("features.29", (512, 14, 14), False),
    "alexnet": ("features.11", (256, 13, 13), False),
    "googlenet": ("inception5b", (1024, 7, 7), True),
    "resnet50": ("layer4", (2048, 7, 7), True),
    "efficientnet_lite0": ("_head_act", (1280, 7, 7), True),
}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_builds_offline_and_its_gradcam_layer_feeds_the_head(name):
    layer, shape, cam = PRESETS[name]
    model, info = build_model(name, weights=None)
    assert info.layers["gradcam"] == layer and info.cam_compatible == cam
    assert not any(p.requires_grad for p in model.parameters()) and not model.training
    seen = []
    handle = resolve_layer(model, layer).register_forward_hook(lambda _m, _i, out: seen.append(out.shape))
    try:
        with torch.no_grad():
            logits = model(torch.randn(1, 3, 224, 224))
    finally:
        handle.remove()
    assert seen == [torch.Size([1, *shape])] and tuple(logits.shape) == (1, 1000)


def test_efficientnet_lite0_classifies_real_photos():
    import skimage.data

    model, info = build_model("efficientnet_lite0", weights="imagenet")
    prep = Preprocess(info.input_size, info.mean, info.std, "paper")
    with torch.no_grad():
        logits = model(torch.stack([prep(skimage.data.chelsea()), prep(skimage.data.coffee())]))
    top1 = logits.argmax(dim=1).tolist()
    assert top1[0] in (281, 282, 285)  # tabby, tiger cat, Egyptian cat
    assert top1[1] == 967 and info.class_names[967] == "espresso"  # torchvision's class order


def test_clamped_relu6_follows_the_guided_rule_hand_worked():
    x = torch.tensor([-1.0, 0.5, 3.0, 7.0], requires_grad=True)
    assert torch.equal(ClampedReLU()(x), F.relu6(x))
    with relu_rule("guided") as mode:
        y = ClampedReLU()(x)
    y.backward(torch.tensor([1.0, -1.0, 2.0, 2.0]))
    # guided: grad * [0 < x < 6] * [grad > 0]: x <= 0, grad < 0 and the saturated x = 7 give 0
    assert x.grad.tolist() == [0.0, 0.0, 2.0, 0.0] and mode.calls == 1


def test_efficientnet_unknown_weights_name_is_an_error():
    with pytest.raises(KeyError, match="imagenet"):
        build_model("efficientnet_lite0", weights="IMAGENET1K_V1")


# --- TorchRay checkpoints -------------------------------------------------------------------------
BGR_MEAN = torch.tensor([103.939, 116.779, 123.68]).view(3, 1, 1)


def caffe_input(image: np.ndarray) -> torch.Tensor:
    """Caffe preprocessing: BGR, 0-255, minus the BGR mean (resize as the suite's paper mode)."""
    bgr = np.ascontiguousarray(image[..., ::-1])
    return (Preprocess(224, mean=(0.0,) * 3, std=(1 / 255,) * 3)(bgr) - BGR_MEAN)[None]


def photo() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)


def he(*shape) -> torch.Tensor:
    return torch.randn(*shape) * (2.0 / np.prod(shape[1:])) ** 0.5


def test_torchray_vgg16_state_conversion_hand_worked():
    state = {"features.0.weight": torch.arange(6.0).view(2, 3, 1, 1), "features.0.bias": torch.zeros(2),
             "classifier.0.weight": torch.arange(8.0).view(2, 2, 2, 1), "classifier.2.weight": torch.ones(3, 2, 1, 1),
             "classifier.4.bias": torch.zeros(5)}
    out = convert_state(state, "vgg16")
    assert sorted(out) == ["classifier.0.weight", "classifier.3.weight", "classifier.6.bias", "features.0.bias",
                           "features.0.weight"]
    assert out["features.0.weight"].flatten().tolist() == [2.0, 1.0, 0.0, 5.0, 4.0, 3.0]  # BGR -> RGB
    assert out["classifier.0.weight"].tolist() == [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]]  # (c, y, x) order
    assert tuple(out["classifier.3.weight"].shape) == (3, 2)


@pytest.mark.slow
def test_torchray_vgg16_matches_the_fully_convolutional_caffe_net(tmp_path):
    """Fake checkpoint: torchvision feature indices, first conv BGR, fc6/fc7/fc8 as conv weights
    named classifier.0/2/4; compared with a functional Caffe forward on Caffe's BGR input."""
    torch.manual_seed(0)
    widths = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    state, convs, cin, index = {}, [], 3, 0
    for v in widths:
        if v == "M":
            convs.append("M")
            index += 1
            continue
        state[f"features.{index}.weight"], state[f"features.{index}.bias"] = he(v, cin, 3, 3), torch.randn(v) * 0.1
        convs.append(index)
        cin, index = v, index + 2
    for key, shape in (("classifier.0", (4096, 512, 7, 7)), ("classifier.2", (4096, 4096, 1, 1)),
                       ("classifier.4", (20, 4096, 1, 1))):
        state[f"{key}.weight"], state[f"{key}.bias"] = he(*shape), torch.randn(shape[0]) * 0.1
    torch.save(state, tmp_path / "vgg16_voc.pth.tar")

    model, info = build_model("vgg16_torchray_fixture", arch="torchray", torchray_arch="vgg16", num_classes=20,
                              checkpoint=str(tmp_path / "vgg16_voc.pth.tar"))
    assert info.class_names[:2] == ["aeroplane", "bicycle"] and info.multilabel and not info.cam_compatible
    image = photo()
    with torch.no_grad():
        ours = model(Preprocess(224, info.mean, info.std)(image)[None])
        x = caffe_input(image)
        for item in convs:
            x = F.max_pool2d(x, 2, 2, ceil_mode=True) if item == "M" else F.relu(
                F.conv2d(x, state[f"features.{item}.weight"], state[f"features.{item}.bias"], padding=1))
        for key in ("classifier.0", "classifier.2", "classifier.4"):
            x = F.conv2d(x, state[f"{key}.weight"], state[f"{key}.bias"])
            x = F.relu(x) if key != "classifier.4" else x
    assert torch.allclose(ours, x.flatten(1), rtol=1e-4, atol=1e-4 * float(x.abs().max()))


def _caffe_layout(rgb_state: dict) -> dict:
    """torchvision-named Caffe ResNet-50 state -> TorchRay layout (BN split in .0/.1, BGR conv1)."""
    out = {}
    for key, value in rgb_state.items():
        parts = key.rsplit(".", 1)
        is_bn = parts[0].split(".")[-1].startswith("bn") or parts[0].endswith("downsample.1")
        if key.endswith("num_batches_tracked"):
            continue
        if is_bn:
            key = f"{parts[0]}.{0 if parts[1].startswith('running') else 1}.{parts[1]}"
        out[key] = value
    out["conv1.weight"] = rgb_state["conv1.weight"][:, [2, 1, 0]]
    out["fc.weight"] = rgb_state["fc.weight"][:, :, None, None]
    return out


def test_torchray_resnet50_converts_exactly(tmp_path):
    torch.manual_seed(0)
    reference = caffe_resnet50(20).eval()
    # Caffe ResNet-50: biased 7x7 stem, 3x3/2 max pool without padding rounding up, stride 2 on 1x1 conv1
    assert reference.conv1.bias is not None and reference.maxpool.padding == 0 and reference.maxpool.ceil_mode
    assert reference.layer3[0].conv1.stride == (2, 2) and reference.layer3[0].conv2.stride == (1, 1)
    for module in reference.modules():  # non-trivial statistics, so a swapped BN field would show
        if isinstance(module, torch.nn.BatchNorm2d):
            for buffer in (module.weight, module.bias, module.running_mean):
                buffer.data.uniform_(0.5, 1.5)
            module.running_var.data.uniform_(0.5, 2.0)
    state = _caffe_layout(reference.state_dict())
    assert "layer1.0.bn1.0.running_mean" in state and "layer1.0.downsample.1.1.weight" in state
    torch.save(state, tmp_path / "resnet50_voc.pth.tar")
    model, info = build_model("resnet50_torchray_fixture", arch="torchray", torchray_arch="resnet50",
                              num_classes=20, checkpoint=str(tmp_path / "resnet50_voc.pth.tar"))
    assert info.cam_head == "fc" and info.std == pytest.approx((1 / 255,) * 3)
    bgr_model = caffe_resnet50(20).eval()  # the Caffe net as stored: BGR first conv
    bgr_model.load_state_dict({**reference.state_dict(), "conv1.weight": state["conv1.weight"]})
    image = photo()
    with torch.no_grad():
        ours = model(Preprocess(224, info.mean, info.std)(image)[None])
        caffe = bgr_model(caffe_input(image))
    assert torch.allclose(ours, caffe, rtol=1e-4, atol=1e-4 * float(caffe.abs().max()))


def test_torchray_errors_name_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="torchray_arch"):
        build_model("x", arch="torchray", num_classes=20)
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"bad\.pth.*missing keys"):
        build_model("x", arch="torchray", torchray_arch="resnet50", num_classes=20,
                    checkpoint=str(tmp_path / "bad.pth"))
    torch.save({"features.0.weight": torch.zeros(64, 4, 3, 3)}, tmp_path / "four.pth")
    with pytest.raises(ValueError, match=r"features\.0\.weight.*BGR"):
        build_model("x", arch="torchray", torchray_arch="vgg16", num_classes=20, checkpoint=str(tmp_path / "four.pth"))


# --- ILSVRC localization end to end ---------------------------------------------------------------
FIXTURE = {  # image id -> (width, height, wnid, box)
    "ILSVRC2012_val_00000001": (64, 48, "n01440764", (8, 6, 40, 30)),  # tench, class 0
    "ILSVRC2012_val_00000002": (48, 64, "n02123045", (0, 10, 47, 63)),  # tabby, class 281
    "ILSVRC2012_val_00000003": (56, 56, "n15075141", (20, 20, 30, 30)),  # toilet tissue, class 999
}


@pytest.fixture(scope="module")
def ilsvrc_fixture(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("ilsvrc_raw")
    (raw / "val").mkdir()
    (raw / "bbox" / "val").mkdir(parents=True)
    for stem, (w, h, wnid, box) in FIXTURE.items():
        image = np.full((h, w, 3), 40, np.uint8)
        image[box[1]:box[3] + 1, box[0]:box[2] + 1] = (200, 160, 60)
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "JPEG", quality=95)
        (raw / "val" / f"{stem}.JPEG").write_bytes(buffer.getvalue())
        (raw / "bbox" / "val" / f"{stem}.xml").write_bytes(ilsvrc_xml("val", stem, (w, h), [XmlObject(wnid, box)]))
    return ilsvrc.prepare(raw, raw.parent / "manifest", split="val")


def test_resnet50_localization_end_to_end_on_ilsvrc_fixture(ilsvrc_fixture, tmp_path):
    overrides = ["metric=localization", "model=resnet50", "dataset=ilsvrc2012_val", "model.weights=null",
                 "method=grad_cam", f"dataset.root={ilsvrc_fixture}", f"paths.results={tmp_path}",
                 "batch_size=3", "progress=false"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    config = OmegaConf.to_container(cfg, resolve=True)
    assert config["dataset"]["split"] == "val" and config["dataset"]["region"] == "boxes"
    summary = evaluate(config)
    assert summary["status"] == "finished" and summary["layer"] == "layer4"
    assert summary["counts"] == {"images": 3, "records": 3} and summary["metrics"]["n_images"] == 3
    records = pd.read_parquet(Path(summary["run_dir"]) / "records.parquet")
    assert records["image_id"].tolist() == sorted(FIXTURE) and records["class_id"].tolist() == [0, 281, 999]
    assert records["iou"].between(0, 1).all() and records["pred_5"].between(0, 999).all()
    boxed = records[records["has_box"]]
    widths = boxed["image_id"].map(lambda s: FIXTURE[s][0])
    assert (boxed["box_x1"] < widths).all() and (boxed["box_x0"] <= boxed["box_x1"]).all()
