"""Any torchvision classifier by name: inferred layer presets, close-match suggestions, offline weights."""

from __future__ import annotations

from urllib.error import URLError

import pytest
import torchvision.models as tvm

from benchmark.methods import NotApplicable, build_method
from benchmark.models import build_model
from benchmark.models.imagenet import imagenet_categories, imagenet_wnids
from benchmark.models.zoo import OfflineWeightsError


@pytest.mark.parametrize("arch, gradcam, head", [
    ("resnet18", "layer4", "fc"),  # global pooling + one linear: CAM-compatible
    ("mobilenet_v3_small", "features", None),  # pooling + a two-layer MLP head: not CAM-compatible
    ("vgg11", "features", None),  # the last spatial feature layer, not the pooled copy
])
def test_layers_are_inferred_from_the_architecture(arch, gradcam, head):
    model, info = build_model(arch, weights=None)
    assert info.layers.get("gradcam") == gradcam and info.cam_head == head
    assert ("cam" in info.layers) == (head is not None)
    assert info.class_names == list(imagenet_categories()) and info.class_ids == list(imagenet_wnids())
    build_method("grad_cam", model, info)  # the inferred layer resolves
    with pytest.raises(NotApplicable, match="no 'ebp' layer preset"):
        build_method("excitation_backprop", model, info)
    if head is None:
        with pytest.raises(NotApplicable, match="not CAM-compatible"):
            build_method("cam", model, info)


def test_a_typo_gets_close_matches_not_the_first_names():
    with pytest.raises(KeyError) as err:
        build_model("torchvision", arch="resnet1", weights=None)
    text = str(err.value)
    assert "close matches" in text and "'resnet18'" in text and tvm.list_models(module=tvm)[0] not in text


def test_offline_weight_download_is_one_line_naming_the_way_out(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*_a, **_k):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(tvm.ResNet18_Weights, "get_state_dict", offline)
    with pytest.raises(OfflineWeightsError) as err:
        build_model("torchvision", arch="resnet18", weights="IMAGENET1K_V1")
    text = str(err.value)
    assert "\n" not in text and "offline?" in text and "model.weights=null model.checkpoint=PATH" in text
    assert "resnet18-f37072fd.pth" in text and str(tmp_path) in text


def test_a_random_resnet18_runs_on_the_real_photos_dataset(tmp_path, monkeypatch):
    """The acceptance command, in process: model=torchvision model.arch=resnet18 model.weights=null
    method=grad_cam dataset=real_photos (photos prepared on first use under the cache)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    import benchmark.run  # noqa: F401  (schemas and resolvers)
    from benchmark.evaluate import evaluate
    from benchmark.models.base import CONF_DIR

    monkeypatch.setenv("BENCHMARK_CACHE", str(tmp_path / "cache"))
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[
            "model=torchvision", "model.arch=resnet18", "model.weights=null", "method=grad_cam",
            "dataset=real_photos", "progress=false", f"paths.results={tmp_path / 'results'}"])
    summary = evaluate(OmegaConf.to_container(cfg, resolve=True))
    assert summary["model"] == "resnet18" and summary["status"] == "finished" and summary["layer"] == "layer4"
    assert summary["counts"] == {"images": 5, "records": 5} and summary["metrics"]["n_images"] == 5
    assert (tmp_path / "cache" / "data" / "real_photos" / "manifest" / "meta.json").is_file()
