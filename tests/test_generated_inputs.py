"""Jobs made from an older version of the synthetic generator are redone (shipped weights: test_shipped_weights)."""

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


def test_multi_object_scenes_hash_their_own_version(monkeypatch):
    before = semantic_config(_config("synthetic_multi"))
    assert before["generated_inputs_version"] == synthetic.MULTI_VERSION
    monkeypatch.setattr(synthetic, "MULTI_VERSION", synthetic.MULTI_VERSION + 1)
    assert semantic_config(_config("synthetic_multi"))["generated_inputs_version"] == before["generated_inputs_version"] + 1
    assert semantic_config(_config("synthetic"))["generated_inputs_version"] == synthetic.VERSION  # unchanged


def test_build_model_never_trains_a_toy_model(tmp_path, monkeypatch):
    """models/ only loads: the shipped weights for the shipped names, else a file that must exist."""
    from benchmark.models import build_model
    from benchmark.models.shipped import weight_path
    from benchmark.training import ensure_checkpoint

    monkeypatch.setenv("BENCHMARK_CACHE", str(tmp_path))  # an empty cache
    monkeypatch.setattr(train, "train_toy", lambda *a, **k: pytest.fail("trained on demand"))
    monkeypatch.setattr(train, "train_multilabel_toy", lambda *a, **k: pytest.fail("trained on demand"))
    _, info = build_model("toy_gap_multi")
    assert info.checkpoint == str(weight_path("toy_gap_multi"))
    with pytest.raises(FileNotFoundError, match=r"missing\.pt not found; give model\.checkpoint=FILE"):
        build_model("toy_vgg", checkpoint=str(tmp_path / "missing.pt"))
    assert ensure_checkpoint({"name": "toy_vgg", "weights": "random"}) is None  # random weights: nothing to check
    assert ensure_checkpoint({"name": "toy_gap", "checkpoint": "given.pt"}) is None  # a given file is not checked
    assert ensure_checkpoint({"name": "vgg16"}) is None  # not a toy model
    assert ensure_checkpoint({"name": "toy_vgg"}) == weight_path("toy_vgg")
