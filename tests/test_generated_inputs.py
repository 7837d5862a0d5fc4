"""Jobs and toy checkpoints made from an older version of the synthetic generator are redone."""

import json

import pytest

import data_prep.synthetic as synthetic
from benchmark.runs.identity import semantic_config
from benchmark.training import toy as train


def _config(generate=None):
    dataset = {"name": "d", "root": "/data/d"} | ({"generate": generate} if generate else {})
    return {"seed": 0, "dataset": dataset, "force": False, "progress": True}


def test_generated_dataset_hashes_the_generator_version(monkeypatch):
    real = semantic_config(_config())
    assert "generated_inputs_version" not in real and "force" not in real and "progress" not in real
    before = semantic_config(_config("synthetic"))
    assert before["generated_inputs_version"] == synthetic.VERSION
    monkeypatch.setattr(synthetic, "VERSION", synthetic.VERSION + 1)
    after = semantic_config(_config("synthetic"))
    assert after["generated_inputs_version"] == before["generated_inputs_version"] + 1
    assert semantic_config(_config()) == real  # real data: the hash does not depend on the generator


def test_toy_checkpoint_is_current_only_for_the_current_data_version(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHMARK_CACHE", str(tmp_path))
    ckpt = train.default_checkpoint("toy_vgg")
    assert not train.is_current("toy_vgg")  # missing
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"weights")
    assert not train.is_current("toy_vgg")  # no metadata
    ckpt.with_suffix(".json").write_text(json.dumps({"data_version": synthetic.VERSION - 1}))
    assert not train.is_current("toy_vgg")  # trained on older data
    ckpt.with_suffix(".json").write_text(json.dumps({"data_version": synthetic.VERSION}))
    assert train.is_current("toy_vgg")
    ckpt.unlink()
    assert not train.is_current("toy_vgg")


def test_a_missing_toy_checkpoint_is_made_by_training_never_by_build_model(tmp_path, monkeypatch):
    """models/ only loads: the error names the file and the command; the run's step makes it."""
    from benchmark.models import build_model
    from benchmark.training import ensure_checkpoint

    monkeypatch.setenv("BENCHMARK_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"toy_vgg\.pt not found.*python -m benchmark\.training --model toy_vgg"):
        build_model("toy_vgg")
    with pytest.raises(FileNotFoundError, match=r"toy_gap_multi\.pt not found.*train_multilabel_toy\('toy_gap_multi'\)"):
        build_model("toy_gap_multi")
    made = []
    monkeypatch.setattr(train, "train_toy", lambda name: made.append(("single", name)))
    monkeypatch.setattr(train, "train_multilabel_toy", lambda name: made.append(("multi", name)))
    assert ensure_checkpoint({"name": "toy_vgg", "weights": "random"}) is None  # random weights: nothing to make
    assert ensure_checkpoint({"name": "toy_gap", "checkpoint": "given.pt"}) is None  # a given file is not made
    assert ensure_checkpoint({"name": "vgg16"}) is None  # not a toy model
    assert ensure_checkpoint({"name": "toy_vgg"}) == tmp_path / "models" / "toy_vgg.pt"
    assert ensure_checkpoint({"name": "toy_gap_multi", "multilabel": None}) == tmp_path / "models" / "toy_gap_multi.pt"
    assert made == [("single", "toy_vgg"), ("multi", "toy_gap_multi")]
