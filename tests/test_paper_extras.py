"""Paper extras: bring-your-own maps (``precomputed``), GrabCut boxes for pixel-space maps
(Simonyan et al.'s protocol of Table 1's Backprop row), and the CAM paper's VGG16-GAP model with
its fine-tuning recipe."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from PIL import Image
from torch import nn

import benchmark.run  # noqa: F401  (schemas and resolvers)
from benchmark.data.readers import ManifestDataset
from benchmark.data.transforms import Preprocess
from benchmark.evaluate import evaluate, load_model
from benchmark.methods import build_method
from benchmark.methods.base import for_samples
from benchmark.methods.precomputed import PrecomputedMapError
from benchmark.metrics.boxes import box_from_grabcut, box_from_map, grabcut_seeds, iou_xyxy
from benchmark.metrics.localization import Localization
from benchmark.models import build_model, resolve_layer
from benchmark.models.base import CONF_DIR, ModelInfo, freeze, load_checkpoint
from benchmark.models.vgg_gap import VGG16GAP
from benchmark.types import Sample

HAS_CV2 = importlib.util.find_spec("cv2") is not None
needs_cv2 = pytest.mark.skipif(not HAS_CV2, reason="OpenCV is not installed (pip install 'gradcam-benchmark[grabcut]')")


def _config(overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    return OmegaConf.to_container(cfg, resolve=True)


def _records(summary) -> pd.DataFrame:
    return pd.read_parquet(Path(summary["run_dir"]) / "records.parquet")


# --- 1. precomputed maps ---------------------------------------------------------------------

LIMIT, BATCH = 8, 4


def _grad_cam_maps(config, classes_of) -> dict:
    """Grad-CAM maps ``{image_id: (class ids, [K, S, S])}`` computed batch by batch as evaluate does;
    ``classes_of(samples, logits)`` gives the classes ``[B, K]`` the metric asks for."""
    model, info = load_model(config["model"])
    ds = config["dataset"]
    dataset = ManifestDataset(ds["root"], split=ds["split"], limit=LIMIT)
    prep = Preprocess(info.input_size, tuple(info.mean), tuple(info.std), "paper")
    method = build_method("grad_cam", model, info)
    maps = {}
    for start in range(0, LIMIT, BATCH):
        samples = [dataset[i] for i in range(start, min(LIMIT, start + BATCH))]
        images = torch.stack([prep(s.image) for s in samples])
        with torch.no_grad():
            ids = classes_of(samples, model(images))
        out = method.explain(images, ids).maps.numpy()
        maps.update({s.image_id: (ids[i].tolist(), out[i]) for i, s in enumerate(samples)})
    return maps


@pytest.fixture(scope="module")
def gradcam_run(tiny_synthetic, tmp_path_factory):
    """A grad_cam localization run on toy_gap, and the same maps (GT class) computed outside it."""
    results = tmp_path_factory.mktemp("results")
    base = ["model=toy_gap", f"dataset.limit={LIMIT}", f"batch_size={BATCH}", "progress=false", f"paths.results={results}"]
    config = _config(base + ["method=grad_cam", "experiment_name=direct"])
    summary = evaluate(config)
    gt = _grad_cam_maps(config, lambda samples, _logits: torch.tensor([[s.labels[0]] for s in samples]))
    maps = {image_id: (classes[0], m[0]) for image_id, (classes, m) in gt.items()}
    return {"base": base, "config": config, "summary": summary, "maps": maps,
            "num_classes": load_model(config["model"])[1].num_classes}


def _same_records(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    assert len(ours) == LIMIT
    pd.testing.assert_frame_equal(ours.drop(columns="method"), theirs.drop(columns="method"))


def test_precomputed_folder_round_trip_gives_grad_cam_records(gradcam_run, tmp_path):
    """Grad-CAM's maps saved in every folder form, read back by method=precomputed: the same records."""
    rng = np.random.default_rng(0)
    for k, (image_id, (gt, m)) in enumerate(sorted(gradcam_run["maps"].items())):
        if k % 4 == 0:  # 2-D, one map for the image
            np.save(tmp_path / f"{image_id}.npy", m)
        elif k % 4 == 1:  # 3-D [C, h, w]: the GT slot holds the map, the others noise
            stack = rng.random((gradcam_run["num_classes"], *m.shape)).astype(np.float32)
            stack[gt] = m
            np.save(tmp_path / f"{image_id}.npy", stack)
        elif k % 4 == 2:  # one .npz per image, keys = class ids
            np.savez(tmp_path / f"{image_id}.npz", **{str(gt): m, str((gt + 1) % 10): rng.random(m.shape)})
        else:  # float64 on disk: converted to float32 exactly
            np.save(tmp_path / f"{image_id}.npy", m.astype(np.float64))
    summary = evaluate(_config(gradcam_run["base"] + ["method=precomputed", f"method.options.root={tmp_path}",
                                                      "experiment_name=byo_folder"]))
    assert summary["method"] == "precomputed" and summary["layer"] is None
    _same_records(_records(summary), _records(gradcam_run["summary"]))
    assert summary["metrics"] == gradcam_run["summary"]["metrics"]


def test_precomputed_archive_round_trip_gives_grad_cam_records(gradcam_run, tmp_path):
    arrays = {}
    for k, (image_id, (gt, m)) in enumerate(sorted(gradcam_run["maps"].items())):
        arrays[image_id if k % 2 else f"{image_id}/{gt}"] = m
    np.savez_compressed(tmp_path / "maps.npz", **arrays)
    summary = evaluate(_config(gradcam_run["base"] + ["method=precomputed", f"method.options.root={tmp_path / 'maps.npz'}",
                                                      "method.label=byo", "experiment_name=byo_archive"]))
    records = _records(summary)
    assert set(records["method"]) == {"byo"}
    _same_records(records, _records(gradcam_run["summary"]))


def test_precomputed_per_class_maps_serve_the_modified_pointing_game(gradcam_run, tmp_path):
    """Top-5 classes per image (unknown until the model runs): per-class files give grad_cam's records."""
    base = gradcam_run["base"] + ["metric=pointing_modified"]
    direct = evaluate(_config(base + ["method=grad_cam", "experiment_name=direct_pmg"]))
    top5 = _grad_cam_maps(gradcam_run["config"], lambda _samples, logits: logits.topk(5, dim=1).indices)
    rng = np.random.default_rng(0)
    for k, (image_id, (classes, maps)) in enumerate(sorted(top5.items())):
        if k % 2:  # one .npz per image, one key per class
            np.savez(tmp_path / f"{image_id}.npz", **{str(c): m for c, m in zip(classes, maps)})
        else:  # [C, h, w]: the top-5 slots hold the maps, the other five noise
            stack = rng.random((gradcam_run["num_classes"], *maps.shape[1:])).astype(np.float32)
            stack[classes] = maps
            np.save(tmp_path / f"{image_id}.npy", stack)
    byo = evaluate(_config(base + ["method=precomputed", f"method.options.root={tmp_path}", "experiment_name=byo_pmg"]))
    ours, theirs = _records(byo), _records(direct)
    assert len(ours) == 5 * LIMIT
    pd.testing.assert_frame_equal(ours.drop(columns="method"), theirs.drop(columns="method"))
    assert byo["metrics"] == direct["metrics"]


class _Tiny(nn.Module):
    def __init__(self, classes=3):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, 4, 3, padding=1), nn.Linear(4, classes)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))


def _tiny(classes=3):
    torch.manual_seed(0)
    return freeze(_Tiny(classes)), ModelInfo(name="tiny", num_classes=classes, input_size=32)


def _explain(root, classes=(1,), image_id="img1", **options):
    model, info = _tiny()
    method = build_method("precomputed", model, info, root=str(root), **options)
    sample = Sample(image_id=image_id, image=np.zeros((32, 32, 3), np.uint8), labels=(1,))
    with for_samples(method, [sample]):
        return method.explain(torch.zeros(1, 3, 32, 32), torch.tensor([list(classes)])).maps[0]


@pytest.mark.parametrize("hw", [(8, 8), (64, 48), (32, 32)])
def test_maps_at_any_resolution_are_resized_bilinearly_to_the_input(tmp_path, hw):
    m = np.random.default_rng(1).random(hw).astype(np.float32)
    np.save(tmp_path / "img1.npy", m)
    got = _explain(tmp_path)[0]
    expected = F.interpolate(torch.from_numpy(m)[None, None], size=(32, 32), mode="bilinear", align_corners=False)[0, 0]
    assert got.dtype == torch.float32 and got.shape == (32, 32)
    assert torch.equal(got, expected)


def test_per_class_maps_are_picked_by_class_id(tmp_path):
    stack = np.stack([np.full((4, 4), float(c)) for c in range(3)]).astype(np.float32)
    np.save(tmp_path / "img1.npy", stack)
    assert _explain(tmp_path, classes=(2, 0)).flatten(1).mean(1).tolist() == [2.0, 0.0]


def test_one_map_for_several_classes_needs_class_agnostic(tmp_path):
    np.save(tmp_path / "img1.npy", np.ones((4, 4), np.float32))
    with pytest.raises(PrecomputedMapError, match=r"img1\.npy.*classes \[1, 2\].*class_agnostic"):
        _explain(tmp_path, classes=(1, 2))
    both = _explain(tmp_path, classes=(1, 2), class_agnostic=True)
    assert torch.equal(both[0], both[1])
    assert _explain(tmp_path, classes=(1, 1)).shape == (2, 32, 32)  # a repeated class (padding) is one class


@pytest.mark.parametrize("case, error, pattern", [
    ("missing file", FileNotFoundError, r"no map for image 'img1'.*img1\.npy or .*img1\.npz"),
    ("missing class key", PrecomputedMapError, r"img1\.npz.*no map for key\(s\) \['1'\].*holds \['0', '2'\]"),
    ("missing archive key", PrecomputedMapError, r"maps\.npz.*no map for key\(s\) \['img1/1'\].*holds \['img1/0'\]$"),
    ("missing archive image", PrecomputedMapError, r"maps\.npz.*no map for image 'img1'.*'img1/<class_id>'"),
    ("1-D", PrecomputedMapError, r"img1\.npy.*shape \(16,\) \(ndim 1\); expected \[h, w\].*\[C=3, h, w\]"),
    ("4-D", PrecomputedMapError, r"img1\.npy.*ndim 4"),
    ("wrong class count", PrecomputedMapError, r"img1\.npy.*shape \(5, 4, 4\).*C = 3"),
    ("NaN", PrecomputedMapError, r"img1\.npy.*1 non-finite value"),
    ("overflow", PrecomputedMapError, r"img1\.npy.*non-finite.*float32"),
    ("object array", PrecomputedMapError, r"img1\.npy.*object array.*allow_pickle=False"),
    ("object in npz", PrecomputedMapError, r"img1\.npz\['1'\].*object array"),
    ("strings", PrecomputedMapError, r"img1\.npy.*dtype <U1; expected a real numeric"),
    ("empty", PrecomputedMapError, r"img1\.npy.*shape \(0, 4\); expected a non-empty"),
    ("both files", PrecomputedMapError, r"both .*img1\.npy and .*img1\.npz"),
    ("not numpy", PrecomputedMapError, r"img1\.npy: not a readable NumPy"),
])
def test_bad_map_files_are_errors_naming_file_field_and_expectation(tmp_path, case, error, pattern):
    root, m = tmp_path, np.ones((4, 4), np.float32)
    if case == "missing class key":
        np.savez(root / "img1.npz", **{"0": m, "2": m})
    elif case in ("missing archive key", "missing archive image"):
        np.savez(root / "maps.npz", **({"img1/0": m, "img2": m} if case == "missing archive key" else {"img2": m}))
        root = root / "maps.npz"
    elif case == "1-D":
        np.save(root / "img1.npy", np.ones(16, np.float32))
    elif case == "4-D":
        np.save(root / "img1.npy", np.ones((1, 3, 4, 4), np.float32))
    elif case == "wrong class count":
        np.save(root / "img1.npy", np.ones((5, 4, 4), np.float32))
    elif case == "NaN":
        m[1, 2] = np.nan
        np.save(root / "img1.npy", m)
    elif case == "overflow":
        np.save(root / "img1.npy", np.full((4, 4), 1e300))
    elif case == "object array":
        np.save(root / "img1.npy", np.array([[{"a": 1}]], dtype=object), allow_pickle=True)
    elif case == "object in npz":
        np.savez(root / "img1.npz", **{"1": np.array([[{"a": 1}]], dtype=object)})
    elif case == "strings":
        np.save(root / "img1.npy", np.full((4, 4), "a"))
    elif case == "empty":
        np.save(root / "img1.npy", np.zeros((0, 4), np.float32))
    elif case == "both files":
        np.save(root / "img1.npy", m)
        np.savez(root / "img1.npz", **{"1": m})
    elif case == "not numpy":
        (root / "img1.npy").write_bytes(b"not an array")
    with pytest.raises(error, match=pattern):
        _explain(root)


def test_nonfinite_maps_can_be_passed_through_to_be_scored_degenerate(tmp_path):
    m = np.ones((4, 4), np.float32)
    m[0, 0] = np.nan
    np.save(tmp_path / "img1.npy", m)
    assert torch.isnan(_explain(tmp_path, allow_nonfinite=True)).any()


def test_root_layer_options_and_ids_are_checked(tmp_path):
    model, info = _tiny()
    with pytest.raises(ValueError, match=r"method\.options\.root is not set"):
        build_method("precomputed", model, info)
    with pytest.raises(FileNotFoundError, match=r"nowhere: no such folder or \.npz file"):
        build_method("precomputed", model, info, root=str(tmp_path / "nowhere"))
    (tmp_path / "maps.txt").write_text("x")
    with pytest.raises(ValueError, match="not a .npz archive"):
        build_method("precomputed", model, info, root=str(tmp_path / "maps.txt"))
    with pytest.raises(ValueError, match=r"layer='conv'.*use null"):
        build_method("precomputed", model, info, layer="conv", root=str(tmp_path))
    with pytest.raises(TypeError, match=r"method 'precomputed': unknown option\(s\) 'rot' \(did you mean 'root'\?\); expected options: root, class_agnostic, allow_nonfinite"):
        build_method("precomputed", model, info, rot=str(tmp_path))
    with pytest.raises(PrecomputedMapError, match=r"image id '\.\./evil' cannot name a file"):
        _explain(tmp_path, image_id="../evil")
    method = build_method("precomputed", model, info, root=str(tmp_path))
    with pytest.raises(RuntimeError, match="no image ids for this batch.*for_samples"):
        method(torch.zeros(1, 3, 32, 32), torch.tensor([1]))
    with for_samples(method, []), pytest.raises(ValueError, match="1 images but 0 image ids"):
        method(torch.zeros(1, 3, 32, 32), torch.tensor([1]))
    # other methods ignore the samples context
    center = build_method("center", model, info)
    with for_samples(center, []):
        assert center(torch.zeros(1, 3, 32, 32), torch.tensor([1])).shape == (1, 32, 32)


# --- 2. GrabCut boxes --------------------------------------------------------------------------

H, W = 120, 160
OBJECT = (50, 30, 109, 89)  # x0, y0, x1, y1 inclusive: 60 x 60 px of 19200 (19 %)
CORE = (70, 50, 89, 69)  # the salient core inside it: 20 x 20 px


def _scene():
    """A red square on a grey-blue textured background, and a gradient-like map that lights up
    mainly the square's core: strong inside CORE, weak on the rest of the square, faint noise outside."""
    rng = np.random.default_rng(0)
    image = np.empty((H, W, 3), np.uint8)
    image[...] = np.clip(rng.normal((90, 110, 130), 12, (H, W, 3)), 0, 255)
    x0, y0, x1, y1 = OBJECT
    image[y0:y1 + 1, x0:x1 + 1] = np.clip(rng.normal((210, 35, 35), 8, (y1 - y0 + 1, x1 - x0 + 1, 3)), 0, 255)
    saliency = rng.uniform(0.0, 0.05, (H, W))
    saliency[y0:y1 + 1, x0:x1 + 1] += 0.08
    cx0, cy0, cx1, cy1 = CORE
    saliency[cy0:cy1 + 1, cx0:cx1 + 1] = 1.0 + rng.uniform(0, 0.1, (cy1 - cy0 + 1, cx1 - cx0 + 1))
    return image, saliency


def test_grabcut_seeds_follow_the_percentiles():
    ranks = np.random.default_rng(0).permutation(100 * 100).reshape(100, 100).astype(float)
    fg, bg = grabcut_seeds(ranks)  # 95 / 30: exactly the top 500 and the bottom 3000 distinct values
    assert fg.sum() == 500 and bg.sum() == 3000
    assert ranks[fg].min() == 9500 and ranks[bg].max() == 2999
    fg, bg = grabcut_seeds(ranks, fg_percentile=90, bg_percentile=10)
    assert fg.sum() == 1000 and bg.sum() == 1000 and not (fg & bg).any()
    sparse = np.zeros((100, 100))  # 96 % zeros: both percentiles are 0, ties resolve to disjoint sides
    sparse.flat[:400] = np.arange(1, 401)
    fg, bg = grabcut_seeds(sparse)
    assert fg.sum() == 400 and (sparse[fg] > 0).all() and bg.sum() == 9600 and (sparse[bg] == 0).all()
    top_ties = np.ones((10, 10))  # 70 % at the maximum: the foreground is the tied maximum
    top_ties.flat[:30] = np.arange(30) / 30
    fg, bg = grabcut_seeds(top_ties)
    assert fg.sum() == 70 and bg.sum() == 30  # q30 = 29/30 + 0.7/30 (interpolated): the 30 values below 1
    with pytest.raises(ValueError, match="0 <= bg < fg <= 100"):
        grabcut_seeds(ranks, fg_percentile=30, bg_percentile=30)


@needs_cv2
def test_grabcut_box_recovers_the_object_the_threshold_box_misses():
    image, saliency = _scene()
    # by construction the 15 % threshold (>= 0.15 * max > 0.13) keeps only the core, whose box covers
    # 400 / 3600 of the object; the GrabCut segmentation follows the red square's colour to its edges
    threshold_box = box_from_map(saliency)
    assert threshold_box == CORE and iou_xyxy(threshold_box, OBJECT) == pytest.approx(400 / 3600)
    box = box_from_grabcut(saliency, image)
    assert box is not None and iou_xyxy(box, OBJECT) >= 0.8
    assert box_from_grabcut(saliency, image) == box  # OpenCV's RNG is seeded: repeatable


def test_grabcut_gives_no_box_for_degenerate_maps_and_checks_inputs():
    image = np.zeros((20, 30, 3), np.uint8)
    for m in (np.zeros((20, 30)), np.full((20, 30), np.nan), -np.ones((20, 30)), np.full((20, 30), 2.0)):
        assert box_from_grabcut(m, image) is None
    with pytest.raises(ValueError, match=r"uint8 RGB \(20, 30, 3\)"):
        box_from_grabcut(np.ones((20, 30)), np.zeros((20, 31, 3), np.uint8))
    with pytest.raises(ValueError, match="iterations=0"):
        box_from_grabcut(np.ones((20, 30)), image, iterations=0)


@needs_cv2
def test_localization_metric_uses_the_grabcut_box_when_asked():
    image, saliency = _scene()
    sample = Sample(image_id="scene", image=image, labels=(3,), boxes_xyxy=np.array([OBJECT]), box_labels=np.array([3]),
                    box_difficult=np.zeros(1, bool))
    top = np.array([3, 0, 1, 2, 4])
    plain = Localization().score_one(sample, 3, saliency, top)
    cut = Localization(box="grabcut").score_one(sample, 3, saliency, top)
    assert not plain["loc_correct_top1"] and cut["loc_correct_top1"] and cut["iou"] >= 0.8
    assert (cut["box_x0"], cut["box_y0"]) != (plain["box_x0"], plain["box_y0"])
    settings = Localization(box="grabcut", grabcut_iterations=3).settings()
    assert settings["box"] == "grabcut" and settings["grabcut_iterations"] == 3
    assert (settings["grabcut_fg_percentile"], settings["grabcut_bg_percentile"]) == (95.0, 30.0)
    assert Localization().settings()["box"] == "threshold"


def test_grabcut_options_are_validated_and_missing_opencv_says_how_to_install(monkeypatch):
    with pytest.raises(ValueError, match="box='grabcat'"):
        Localization(box="grabcat")
    with pytest.raises(ValueError, match="grabcut_bg_percentile=50.0, grabcut_fg_percentile=40.0"):
        Localization(box="grabcut", grabcut_fg_percentile=40, grabcut_bg_percentile=50)
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'gradcam-benchmark\[grabcut\]'"):
        Localization(box="grabcut")
    Localization()  # the threshold rule does not need OpenCV


@needs_cv2
def test_demo_grabcut_experiment_runs_through_the_normal_path(tiny_synthetic, tmp_path):
    summary = evaluate(_config(["experiment=demo_grabcut", "model=toy_gap", "method=gradient", "dataset.limit=4",
                                "batch_size=4", "progress=false", f"paths.results={tmp_path}"]))
    assert summary["status"] == "finished" and summary["method"] == "gradient_grabcut"
    assert summary["protocol"]["box"] == "grabcut" and summary["protocol"]["grabcut_fg_percentile"] == 95.0
    run_dir = Path(summary["run_dir"])
    assert run_dir.parts[-5:-1] == ("demo_grabcut", "toy_gap", "gradient_grabcut", "synthetic_val")
    assert run_dir.name.startswith("localization-")
    assert len(_records(summary)) == 4 and summary["metrics"]["n_images"] == 4


# --- 3. VGG16-GAP ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gap_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("gap") / "vgg16_gap_10.pt"
    torch.save(VGG16GAP(num_classes=10).state_dict(), path)
    return path


def test_vgg16_gap_builds_from_a_checkpoint_and_is_cam_compatible(gap_checkpoint):
    model, info = build_model("vgg16_gap", checkpoint=str(gap_checkpoint), num_classes=10)
    assert info.cam_compatible and info.cam_head == "fc" and info.checkpoint == str(gap_checkpoint)
    assert info.layers["cam"] == info.layers["gradcam"] == "cam_relu"
    assert isinstance(resolve_layer(model, info.layers["ebp"]), nn.MaxPool2d)  # pool4, as vgg16's preset
    assert not any(p.requires_grad for p in model.parameters()) and not model.training
    saved = load_checkpoint(gap_checkpoint)
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())
    # the CAM paper's layout: conv5_3 is the last VGG layer (no pool5), 1024 3x3 units, GAP, linear
    assert isinstance(model.features[-1], nn.ReLU) and len(model.features) == 30
    assert (model.cam_conv.out_channels, model.cam_conv.kernel_size, model.cam_conv.padding) == (1024, (3, 3), (1, 1))
    seen = []
    handle = resolve_layer(model, "cam_relu").register_forward_hook(lambda _m, _i, out: seen.append(out.shape))
    try:
        logits = model(torch.zeros(1, 3, 224, 224))
    finally:
        handle.remove()
    assert seen == [torch.Size([1, 1024, 14, 14])] and logits.shape == (1, 10)


def test_cam_equals_grad_cam_without_relu_on_vgg16_gap(gap_checkpoint):
    model, info = build_model("vgg16_gap", checkpoint=str(gap_checkpoint), num_classes=10)
    torch.manual_seed(2)
    x = torch.randn(2, 3, 64, 64)  # relu5_3 and cam_relu at 4 x 4
    ids = torch.tensor([[1, 7], [4, 0]])
    gc = build_method("grad_cam", model, info, relu=False).explain(x, ids).maps
    cam = build_method("cam", model, info).explain(x, ids).maps
    assert cam.abs().max() > 0 and cam.min() < 0  # raw maps of both signs: the identity is not trivial
    ratio = (cam.flatten(2) * gc.flatten(2)).sum(2) / (gc.flatten(2) ** 2).sum(2)
    assert torch.allclose(ratio, torch.full_like(ratio, 16.0), rtol=1e-4)  # positive constant h*w = 4*4
    assert torch.allclose(gc * 16, cam, atol=1e-5 * cam.abs().max().item())


def test_vgg16_gap_refuses_missing_or_wrong_checkpoints(gap_checkpoint, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"needs a checkpoint.*python -m benchmark\.training\.finetune vgg16_gap"):
        build_model("vgg16_gap")
    with pytest.raises(FileNotFoundError, match=r"absent\.pt not found.*benchmark\.training\.finetune vgg16_gap"):
        build_model("vgg16_gap", checkpoint=str(tmp_path / "absent.pt"))
    with pytest.raises(ValueError, match=r"weights='IMAGENET1K_V1'.*checkpoint"):
        build_model("vgg16_gap", weights="IMAGENET1K_V1", checkpoint=str(gap_checkpoint))
    with pytest.raises(ValueError, match=r"fc\.weight \(10, 1024\) has 10 classes, the model 1000.*num_classes=10"):
        build_model("vgg16_gap", checkpoint=str(gap_checkpoint))  # the preset's 1000 classes
    plain_vgg = tmp_path / "vgg16.pt"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3), "classifier.6.weight": torch.zeros(1000, 4096)}, plain_vgg)
    with pytest.raises(ValueError, match=r"vgg16\.pt is not a VGG16-GAP state dict.*plain VGG-16.*finetune vgg16_gap"):
        build_model("vgg16_gap", checkpoint=str(plain_vgg))
    partial = tmp_path / "partial.pt"
    torch.save({"cam_conv.weight": torch.zeros(1024, 512, 3, 3), "fc.weight": torch.zeros(1000, 1024)}, partial)
    with pytest.raises(ValueError, match=r"partial\.pt does not fit VGG16GAP: missing keys \['features\.0\.weight'"):
        build_model("vgg16_gap", checkpoint=str(partial))


@pytest.fixture()
def tiny_imagefolder(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("n00000001", "n00000002"):
        (tmp_path / "train" / cls).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)).save(tmp_path / "train" / cls / f"{i}.png")
    return tmp_path / "train"


@pytest.fixture()
def fake_imagenet_vgg16(monkeypatch):
    """The recipe's ImageNet download replaced by seeded random VGG-16 features (the real path stays)."""
    from torchvision.models.vgg import cfgs, make_layers

    import benchmark.training.vgg16_gap as ft

    made = []

    def features():
        torch.manual_seed(123)
        made.append(make_layers(cfgs["D"]))
        return made[-1]

    monkeypatch.setattr(ft, "imagenet_vgg16_features", features)
    return made


TINY_GAP = {"batch_size": 2, "image_size": 32, "epochs": 1}


def test_vgg16_gap_recipe_trains_new_layers_from_imagenet_features(tiny_imagefolder, fake_imagenet_vgg16, tmp_path):
    from benchmark.training.vgg16_gap import finetune_vgg16_gap

    untrained = finetune_vgg16_gap(tiny_imagefolder, tmp_path / "zero.pt", TINY_GAP, num_workers=0, max_steps=0)
    meta = finetune_vgg16_gap(tiny_imagefolder, tmp_path / "one.pt", TINY_GAP, num_workers=0, max_steps=1)
    assert len(fake_imagenet_vgg16) == 2 and untrained["steps"] == 0
    assert meta["steps"] == 1 and np.isfinite(meta["last_loss"]) and meta["num_classes"] == 2
    assert meta["wnids"] == ["n00000001", "n00000002"] and meta["train_images"] == 4
    source = fake_imagenet_vgg16[-1].state_dict()
    zero, one = load_checkpoint(tmp_path / "zero.pt"), load_checkpoint(tmp_path / "one.pt")
    for key, value in source.items():  # conv1_1..conv5_3 copied from the "ImageNet" VGG-16 and kept frozen
        assert torch.equal(one[f"features.{key}"], value)
    assert not torch.equal(zero["fc.weight"], one["fc.weight"])  # one SGD step moved the new layers
    assert not torch.equal(zero["cam_conv.weight"], one["cam_conv.weight"])
    model, info = build_model("vgg16_gap", checkpoint=str(tmp_path / "one.pt"), num_classes=2)
    assert info.class_names == ["n00000001", "n00000002"] and model(torch.zeros(1, 3, 32, 32)).shape == (1, 2)


def test_vgg16_gap_recipe_command_line_can_fine_tune_the_backbone(tiny_imagefolder, fake_imagenet_vgg16, tmp_path):
    from benchmark.training.finetune import main

    out = tmp_path / "cli.pt"
    main(["vgg16_gap", "--data-root", str(tiny_imagefolder), "--out", str(out), "--max-steps", "1", "--batch-size", "2",
          "--image-size", "32", "--num-workers", "0", "--backbone-lr-mult", "0.1", "--device", "cpu"])
    state = load_checkpoint(out)
    assert out.with_suffix(".json").is_file()
    assert not torch.equal(state["features.0.weight"], fake_imagenet_vgg16[-1].state_dict()["0.weight"])
    with pytest.raises(FileNotFoundError, match=r"--data-root .*nowhere: no such folder.*<wnid>"):
        main(["vgg16_gap", "--data-root", str(tmp_path / "nowhere"), "--out", str(out)])
