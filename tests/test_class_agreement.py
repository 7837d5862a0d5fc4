"""Class agreement: a manifest whose classes are not the model's outputs stops the run before it writes
anything; ``dataset.class_map`` maps them explicitly; class lists are read by index order (duplicates
allowed); a model without class names is checked by count only, with a warning."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import benchmark.run  # noqa: F401  (schemas and resolvers)
from benchmark.data.classes import ClassMismatchError, check_classes
from benchmark.data.manifest import ManifestError, read_manifest, write_manifest
from benchmark.data.readers import ManifestDataset
from benchmark.evaluate import evaluate
from benchmark.models.base import CONF_DIR, ModelInfo
from benchmark.models.imagenet import imagenet_categories
from benchmark.runs.store import RunStore
from data_prep import voc2007
from tests.test_prep_voc import write_voc

JOB = ["method=center", "metric=pointing", "batch_size=2", "progress=false", "dataset.generate=null"]
IMAGENET = ["model=efficientnet_lite0", "model.weights=null"]


def _config(overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    return OmegaConf.to_container(cfg, resolve=True)


def _two_class(tiny: Path, dst: Path, names: list[str]) -> Path:
    """Four synthetic val images relabelled as a two-class manifest with class ``names``."""
    source = read_manifest(tiny / "data" / "synthetic" / "manifests" / "val")
    table = source.table.sort_values("image_id").head(4).reset_index(drop=True)
    images = dst / "images"
    for rel in table["path"]:
        (images / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source.image_root / rel, images / rel)
    for k in range(len(table)):
        c = k % 2
        table.at[k, "labels"] = [c]
        table.at[k, "box_labels"] = [c] * len(table.loc[k, "box_labels"])
    meta = {**source.meta, "image_root": str(images), "wnids": list(names), "class_names": list(names)}
    write_manifest(dst / "manifest", table, meta)
    return dst / "manifest"


def test_voc_style_manifest_with_an_imagenet_model_refuses(tiny_synthetic, tmp_path):
    root = _two_class(tiny_synthetic, tmp_path / "data", ["cat", "person"])
    results = tmp_path / "results"
    with pytest.raises(ClassMismatchError) as err:
        evaluate(_config([*JOB, *IMAGENET, f"dataset.root={root}", f"paths.results={results}"]))
    text = str(err.value)
    for needle in (str(root / "meta.json"), "'efficientnet_lite0'", "0: manifest 'cat' vs model 'tench'",
                   "1: manifest 'person' vs model 'goldfish'", "manifest 2 classes", "model 1000 outputs",
                   "dataset.class_map=model", "dataset.class_map=FILE"):
        assert needle in text, f"{needle!r} not in: {text}"
    assert not results.exists()


@pytest.mark.parametrize("model", [IMAGENET, ["model=torchvision", "model.arch=resnet18", "model.weights=null"]],
                         ids=["efficientnet_lite0", "torchvision_resnet18_random"])
def test_imagenet_model_on_the_ten_class_synthetic_set_refuses(tiny_synthetic, tmp_path, model):
    root = tiny_synthetic / "data" / "synthetic" / "manifests" / "val"
    results = tmp_path / "results"
    with pytest.raises(ClassMismatchError) as err:
        evaluate(_config([*JOB, *model, f"dataset.root={root}", f"paths.results={results}"]))
    assert "0: manifest 'red_disc' (n90000001) vs model 'tench'" in str(err.value)
    assert "manifest 10 classes" in str(err.value) and "model 1000 outputs" in str(err.value)
    assert not results.exists()


def test_class_map_model_runs_in_the_models_indices(tiny_synthetic, tmp_path):
    # the manifest's class 0 is ImageNet's output 1 and its class 1 is output 0
    root = _two_class(tiny_synthetic, tmp_path / "data", ["Goldfish", "tench"])
    results = tmp_path / "results"
    summary = evaluate(_config([*JOB, *IMAGENET, f"dataset.root={root}", f"paths.results={results}",
                                "dataset.class_map=model"]))
    rows = RunStore(Path(summary["run_dir"])).read_parts().sort_values("image_id")
    source = read_manifest(root).table.sort_values("image_id")
    expected = [1 - int(labels[0]) for labels in source["labels"]]
    assert sorted(rows["class_id"].tolist()) == sorted(expected)


def test_class_map_model_names_a_class_the_model_lacks(tiny_synthetic, tmp_path):
    root = _two_class(tiny_synthetic, tmp_path / "data", ["tench", "person"])
    results = tmp_path / "results"
    with pytest.raises(ClassMismatchError) as err:
        evaluate(_config([*JOB, *IMAGENET, f"dataset.root={root}", f"paths.results={results}",
                          "dataset.class_map=model"]))
    assert "['person']" in str(err.value) and "class_map file" in str(err.value)
    assert not results.exists()


def test_class_map_file_maps_names_and_indices(tiny_synthetic, tmp_path):
    root = _two_class(tiny_synthetic, tmp_path / "data", ["cat", "person"])
    mapping = tmp_path / "map.yaml"
    mapping.write_text("cat: tabby\nperson: 7\n")
    dataset = ManifestDataset(root)
    info = ModelInfo(name="m", num_classes=1000, class_names=list(imagenet_categories()))
    out = check_classes(dataset.meta, info, "meta.json", str(mapping), dataset.used_classes())
    assert out == {0: imagenet_categories().index("tabby"), 1: 7}
    dataset.remap_classes(out)
    assert {c for s in dataset for c in s.labels} == {281, 7}
    mapping.write_text("cat: tabby\ndog: 3\n")
    with pytest.raises(ClassMismatchError, match=r"names class\(es\) \['dog'\] that the manifest lacks"):
        check_classes(dataset.meta, info, "meta.json", str(mapping), {0, 1})
    mapping.write_text("cat: tabby\n")
    with pytest.raises(ClassMismatchError, match=r"without a model output: \['person'\]"):
        check_classes(dataset.meta, info, "meta.json", str(mapping), {0, 1})


def test_class_lists_are_compared_by_index_and_may_repeat_a_name():
    names = ["crane", "maillot", "crane", "maillot"]
    info = ModelInfo(name="m", num_classes=4, class_names=names)
    assert check_classes({"wnids": ["a", "b", "c", "d"], "class_names": names}, info, "meta.json") is None
    swapped = ["maillot", "crane", "crane", "maillot"]
    with pytest.raises(ClassMismatchError, match="0: manifest 'maillot' .* vs model 'crane'"):
        check_classes({"wnids": ["a", "b", "c", "d"], "class_names": swapped}, info, "meta.json")
    # names agree without case, spaces or punctuation (VOC 'pottedplant' vs 'potted plant')
    info = ModelInfo(name="m", num_classes=2, class_names=["potted plant", "TV-monitor"])
    assert check_classes({"wnids": ["pottedplant", "tvmonitor"]}, info, "meta.json") is None


def test_model_without_class_names_is_assumed_in_index_order_with_a_warning(caplog):
    meta = {"wnids": [f"n{i}" for i in range(10)], "class_names": [f"c{i}" for i in range(10)]}
    with caplog.at_level(logging.WARNING):
        assert check_classes(meta, ModelInfo(name="m", num_classes=20), "meta.json") is None
    assert "has no class names" in caplog.text and "index order" in caplog.text
    with pytest.raises(ClassMismatchError, match="has no class names to map to"):
        check_classes(meta, ModelInfo(name="m", num_classes=20), "meta.json", "model")


def test_voc_prep_accepts_a_class_list_with_repeated_names(tmp_path):
    names = list(imagenet_categories())
    names[3] = names[5]  # a repeated name, as in ImageNet's own synset names ('crane' twice)
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(names) + "\n")
    voc = write_voc(tmp_path / "raw", {"000001": (40, 30, [("goldfish", 0, 1, 1, 10, 20)])})
    out = voc2007.prepare(voc.parents[1], tmp_path / "m", split="test", classes=classes)
    meta = read_manifest(out).meta
    assert meta["class_names"] == names and read_manifest(out).table.loc[0, "labels"].tolist() == [1]
    voc = write_voc(tmp_path / "raw2", {"000001": (40, 30, [(names[5], 0, 1, 1, 10, 20)])})
    with pytest.raises(ManifestError, match=r"holds at indices \[3, 5\]"):
        voc2007.prepare(voc.parents[1], tmp_path / "m2", split="test", classes=classes)
