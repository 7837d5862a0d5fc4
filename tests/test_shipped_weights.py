"""The shipped toy weights: verified by sha256, used without training, refused when altered."""

import json
import shutil

import pytest
import torch

import data_prep.synthetic as synthetic
from benchmark.runs import inputs
from benchmark.runs.identity import folder_hash, semantic_config
from benchmark.training import toy as train
from benchmark.models import shipped
from benchmark.models.base import build_model
from benchmark.models.toy import ARCHS


def test_every_toy_model_ships_small_verified_weights():
    total = 0
    for name in shipped.SHIPPED:
        path, meta = shipped.verify(name)
        total += path.stat().st_size
        state = torch.load(path, map_location="cpu", weights_only=True)
        arch = meta.get("arch") or name
        ARCHS[arch](10).load_state_dict(state)  # strict: every key, every shape
        field, floor = shipped.FLOORS[name]
        assert meta[field] >= floor and meta["accuracy_floor"] == {field: floor}
        assert meta["data_version"] == shipped.data_version_for(name) and meta["recipe"]["seed"] == 0
    assert total < 2_000_000  # package data stays small


def test_the_model_loader_uses_the_shipped_weights_without_training(monkeypatch, tmp_path):
    monkeypatch.setenv("BENCHMARK_CACHE", str(tmp_path))  # an empty cache: nothing to train from
    monkeypatch.setattr(train, "train_toy", lambda *a, **k: pytest.fail("trained on demand"))
    model, info = build_model("toy_vgg", weights=None, checkpoint=None)
    assert info.checkpoint == str(shipped.weight_path("toy_vgg")) and len(info.class_names) == 10
    state = torch.load(shipped.weight_path("toy_vgg"), weights_only=True)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def _copy(tmp_path):
    root = tmp_path / "weights"
    shutil.copytree(shipped.WEIGHTS_DIR, root)
    return root


def test_an_altered_weight_file_is_an_error_naming_it(tmp_path):
    root = _copy(tmp_path)
    path = root / "toy_gap.pt"
    data = bytearray(path.read_bytes())
    data[-100] ^= 1  # one bit of one weight
    path.write_bytes(bytes(data))
    with pytest.raises(shipped.WeightsError, match=r"toy_gap\.pt: sha256 .* differs from field 'sha256'"):
        shipped.verify("toy_gap", root)
    shipped.verify("toy_vgg", root)  # the others still pass
    path.unlink()
    with pytest.raises(shipped.WeightsError, match="toy_gap.pt: file not found"):
        shipped.verify("toy_gap", root)


def test_bad_metadata_and_other_data_are_errors(tmp_path, monkeypatch):
    root = _copy(tmp_path)
    meta_path = root / "toy_vgg.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({k: v for k, v in meta.items() if k != "sha256"}))
    with pytest.raises(shipped.WeightsError, match=r"toy_vgg\.json: missing field\(s\) \['sha256'\]"):
        shipped.verify("toy_vgg", root)
    monkeypatch.setattr(synthetic, "MULTI_VERSION", synthetic.MULTI_VERSION + 1)
    with pytest.raises(shipped.WeightsError, match="field 'data_version' is .* --retrain --model toy_gap_multi"):
        shipped.verify("toy_gap_multi", root)


def test_install_checks_the_accuracy_floor_and_records_the_sha256(tmp_path):
    root = tmp_path / "weights"
    trained = shipped.weight_path("toy_gap")
    meta = json.loads(trained.with_suffix(".json").read_text())
    with pytest.raises(shipped.WeightsError, match="below the recipe's accuracy floor"):
        shipped.install("toy_gap", trained, {**meta, "val_top1": 0.5}, root)
    assert not (root / "toy_gap.pt").exists()
    record = shipped.install("toy_gap", trained, meta, root)
    assert record["sha256"] == shipped.sha256_file(trained) and shipped.verify("toy_gap", root)[1] == record


def test_finished_jobs_are_redone_when_the_weights_change(monkeypatch):
    config = {"seed": 0, "model": {"name": "toy_vgg", "weights": None, "checkpoint": None}}
    first = semantic_config(config)
    assert first["model_weights_sha256"] == shipped.read_meta("toy_vgg")["sha256"]
    assert "model_weights_sha256" not in semantic_config({"seed": 0, "model": {"name": "vgg16", "weights": None}})
    monkeypatch.setattr(inputs, "shipped_sha256", lambda name: "0" * 64)
    assert semantic_config(config)["model_weights_sha256"] != first["model_weights_sha256"]
    other = {"seed": 0, "model": {"name": "toy_vgg", "weights": None, "checkpoint": "/x/toy_vgg.pt"}}
    assert "model_weights_sha256" not in semantic_config(other)  # a given checkpoint is part of the config


def test_train_without_retrain_only_checks(capsys, monkeypatch):
    monkeypatch.setattr(train, "retrain", lambda names: pytest.fail("retrained"))
    train.main([])
    out = capsys.readouterr().out
    assert all(f"{name}: shipped weights" in out for name in shipped.SHIPPED)


def test_other_weights_get_another_run_folder(monkeypatch):
    """The weight sha256 is in the folder hash too, so results of other weights never share a folder."""
    config = {"seed": 0, "model": {"name": "toy_gap_multi", "weights": None, "checkpoint": None},
              "dataset": {"name": "d", "root": "/d", "shard": 0, "num_shards": 1}}
    before = folder_hash(config)
    monkeypatch.setattr(inputs, "shipped_sha256", lambda name: "1" * 64)
    assert folder_hash(config) != before

