"""The training/evaluation overlap guard, the leak-free Table 2 models and the COCO modified pointing game."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import benchmark.run  # noqa: F401  (schemas and resolvers, as the entry registers them)
from benchmark.evaluate import evaluate
from benchmark.runs.identity import semantic_config
from benchmark.training.finetune import finetune
from benchmark.models.base import CONF_DIR
from benchmark.runs.overlap import TrainingOverlapError, check_training_overlap, dataset_parts, ids_digest
from data_prep.synthetic_multi import prepare_all

REPO = Path(__file__).resolve().parents[1]


def _config(*overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=False)


def test_dataset_parts_expand_union_splits():
    assert dataset_parts("voc2007_trainval") == {"voc2007_train", "voc2007_val"}
    assert dataset_parts("voc2007_val") == {"voc2007_val"}
    assert dataset_parts("not_a_dataset") == {"not_a_dataset"}
    assert dataset_parts("x", ["a", "b"]) == {"a", "b"}


def test_guard_stops_todays_vgg16_voc07_on_voc2007_val(tmp_path):
    config = _config("model=vgg16_voc07", "dataset=voc2007_val", "metric=occlusion_correlation",
                     f"paths.results={tmp_path}")
    with pytest.raises(TrainingOverlapError) as err:
        check_training_overlap(config)
    message = str(err.value)
    assert "'vgg16_voc07'" in message and "voc2007_trainval" in message and "'voc2007_val'" in message
    assert "field 'trained_on'" in message
    # evaluate stops before anything is written (before the model or the data are even read)
    with pytest.raises(TrainingOverlapError):
        evaluate({**config, "paths": {"results": str(tmp_path), "cache": str(tmp_path / "cache")}})
    assert not any(tmp_path.iterdir())


def test_guard_passes_the_leak_free_pairings():
    for model, dataset in (("vgg16_voc07_train", "voc2007_val"), ("vgg16_gap_voc07_train", "voc2007_val"),
                           ("vgg16_voc07", "voc2007_test"), ("vgg16_coco14", "coco2014_val")):
        check_training_overlap(_config(f"model={model}", f"dataset={dataset}"))
    with pytest.raises(TrainingOverlapError, match="voc2007_train"):
        check_training_overlap(_config("model=vgg16_voc07_train", "dataset=voc2007_trainval"))


def test_declarations_leave_the_config_hash_unchanged():
    config = _config("model=vgg16_voc07", "dataset=voc2007_test")
    assert config["model"]["trained_on"] == ["voc2007_trainval"]
    hashed = semantic_config(config)
    assert "trained_on" not in hashed["model"] and "parts" not in hashed["dataset"]
    assert set(hashed["model"]) == set(config["model"]) - {"trained_on"}


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return prepare_all(tmp_path_factory.mktemp("scenes"), n_train=8, n_val=4, n_test=4)


def test_recipe_records_its_training_images_and_the_guard_reads_them(scenes, tmp_path):
    out = tmp_path / "toy.pt"
    finetune("toy_gap", scenes["train"], out, recipe={"epochs": 1, "batch_size": 8}, init="random")
    meta = json.loads(out.with_suffix(".json").read_text())
    from benchmark.data.readers import ManifestDataset

    train_ids = sorted(ManifestDataset(scenes["train"]).image_ids)
    assert meta["train_image_ids"] == train_ids and meta["train_image_ids_sha256"] == ids_digest(train_ids)
    model = {"name": "toy_ft", "checkpoint": str(out), "trained_on": []}
    seen = {"model": model, "dataset": {"name": "scenes_train"}}
    with pytest.raises(TrainingOverlapError) as err:  # the same images under another name: caught by ids
        check_training_overlap(seen, lambda: train_ids[:2])
    assert f"{out.with_suffix('.json')} field 'train_image_ids'" in str(err.value) and "'scenes_train'" in str(err.value)
    test_ids = ManifestDataset(scenes["test"]).image_ids
    assert not set(test_ids) & set(train_ids)
    check_training_overlap({"model": model, "dataset": {"name": "scenes_test"}}, lambda: test_ids)
    meta["train_image_ids_sha256"] = "0" * 64  # a tampered list is refused
    out.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(TrainingOverlapError, match="train_image_ids_sha256"):
        check_training_overlap(seen, lambda: test_ids)


def test_table2_uses_train_only_models_and_the_modified_game_coco():
    table2 = _config("experiment=table2_occlusion")
    assert table2["model"]["name"] == "vgg16_voc07_train" and table2["model"]["trained_on"] == ["voc2007_train"]
    assert table2["dataset"]["name"] == "voc2007_val"
    cam = _config("experiment=table2_occlusion_cam")
    assert cam["model"]["name"] == "vgg16_gap_voc07_train" and cam["model"]["cam_head"] == "fc"
    assert cam["experiment_name"] == "table2_occlusion" and cam["model"]["trained_on"] == ["voc2007_train"]
    out = subprocess.run([sys.executable, "-m", "benchmark", "experiment=pointing_modified", "--cfg", "job"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    job = OmegaConf.create(out.stdout)
    assert job.dataset.name == "coco2014_val" and job.dataset.split == "val2014"
    assert job.model.name == "vgg16_coco14" and job.model.num_classes == 80
    assert list(job.model.trained_on) == ["coco2014_train"]


def test_vgg16_gap_voc07_train_recipe_starts_from_an_ilsvrc_checkpoint(scenes, tmp_path):
    import torch

    from benchmark.models.base import build_model, load_checkpoint
    from benchmark.models.vgg_gap import VGG16GAP

    torch.manual_seed(0)
    start = tmp_path / "vgg16_gap_ilsvrc.pt"
    torch.save(VGG16GAP(1000).state_dict(), start)
    out = tmp_path / "vgg16_gap_voc.pt"
    meta = finetune("vgg16_gap_voc07_train", scenes["train"], out, recipe={"epochs": 1, "batch_size": 4, "lr": 0.0},
                    limit=4, init_checkpoint=str(start))
    assert meta["head"] == "fc" and meta["num_classes"] == 10 and len(meta["train_image_ids"]) == 4
    saved, initial = load_checkpoint(out), load_checkpoint(start)
    assert torch.equal(saved["features.0.weight"], initial["features.0.weight"])  # lr 0: the ILSVRC weights kept
    assert saved["fc.weight"].shape == (10, 1024)
    model, info = build_model("vgg16_gap_voc07_train", checkpoint=str(out), num_classes=10)
    assert info.cam_compatible and model(torch.zeros(1, 3, 64, 64)).shape == (1, 10)
