"""A run's identity covers what it reads: the dataset's content, plugin sources, declared versions."""

import json
import os
import shutil
import textwrap

import pandas as pd
import pytest

from benchmark.registry import Registry, declared_versions
from benchmark.runs import inputs, stale
from benchmark.runs.identity import finished, job_state, run_dir_for, semantic_config


def _prepared(tmp_path, n=3):
    """A prepared dataset: manifest.parquet with a path column, meta.json and n image files."""
    root = tmp_path / "manifest"
    (root / "images").mkdir(parents=True)
    for i in range(n):
        (root / "images" / f"{i}.jpg").write_bytes(b"x" * (i + 1))
    frame = pd.DataFrame({"image_id": [str(i) for i in range(n)], "path": [f"{i}.jpg" for i in range(n)]})
    frame.to_parquet(root / "manifest.parquet")
    (root / "meta.json").write_text(json.dumps({"image_root": "images", "wnids": ["a"]}))
    return root


def _config(tmp_path, root, **top):
    return {"experiment_name": "e", "seed": 0, "paths": {"results": str(tmp_path / "res")}, "model": {"name": "vgg16"},
            "method": {"name": "grad_cam", "label": "grad_cam", "options": {}}, "metric": {"name": "localization", "options": {}},
            "dataset": {"name": "mine", "root": str(root), "shard": 0, "num_shards": 1}, **top}


def test_a_changed_manifest_or_image_gives_a_new_folder(tmp_path):
    root = _prepared(tmp_path)
    config = _config(tmp_path, root)
    first = run_dir_for(config)
    assert run_dir_for(config) == first and semantic_config(config)["inputs"]["dataset"]
    frame = pd.read_parquet(root / "manifest.parquet")
    frame.loc[0, "image_id"] = "changed"
    frame.to_parquet(root / "manifest.parquet")
    second = run_dir_for(config)
    assert second != first
    (root / "images" / "1.jpg").write_bytes(b"another image")
    third = run_dir_for(config)
    assert third not in (first, second)
    (root / "meta.json").write_text(json.dumps({"image_root": "images", "wnids": ["b"]}))
    assert run_dir_for(config) != third


def test_image_bytes_mode_ignores_times_but_not_content(tmp_path):
    root = _prepared(tmp_path)
    config = _config(tmp_path, root)
    config["dataset"]["image_digest"] = "bytes"
    before = run_dir_for(config)
    image = root / "images" / "0.jpg"
    os.utime(image, (1, 1))
    assert run_dir_for(config) == before  # a copy with other times keeps its identity
    image.write_bytes(b"y")
    assert run_dir_for(config) != before
    stat_config = _config(tmp_path, root)
    stamp = run_dir_for(stat_config)
    os.utime(image, (2, 2))
    assert run_dir_for(stat_config) != stamp  # the default: path, size and modification time


def test_an_edited_plugin_gives_a_new_folder(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "my_plugin_ident.py").write_text("X = 1\n")
    config = _config(tmp_path, _prepared(tmp_path), plugins=["my_plugin_ident"])
    before = run_dir_for(config)
    assert semantic_config(config)["inputs"]["plugins"]["my_plugin_ident"] != "missing"
    (tmp_path / "my_plugin_ident.py").write_text("X = 2  # changed output\n")
    assert run_dir_for(config) != before


def test_a_declared_version_is_in_the_identity(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "my_versioned_plugin.py").write_text(textwrap.dedent("""
        from benchmark.methods import METHODS
        @METHODS.register("my_versioned", version=3)
        def build(model, info, layer=None):
            raise NotImplementedError
    """))
    config = _config(tmp_path, _prepared(tmp_path), plugins=["my_versioned_plugin"])
    config["method"] = {"name": "my_versioned", "label": "my_versioned", "options": {}}
    assert semantic_config(config)["inputs"]["versions"]["method"] == 3
    other = semantic_config(_config(tmp_path, _prepared(tmp_path / "b")))["inputs"].get("versions", {})
    assert "method" not in other  # grad_cam: version 1, left out


def test_versions_read_from_source_match_the_registries():
    from benchmark.methods import METHODS
    from benchmark.metrics import METRICS

    for kind, registry in (("methods", METHODS), ("metrics", METRICS)):
        static = inputs.entry_versions(kind, [])
        assert {n: registry.version(n) for n in registry.names()} == {n: static.get(n, 1) for n in registry.names()}
    reg = Registry("thing")
    reg.register("a", lambda: 0, version=2)
    assert reg.version("a") == 2


def test_declared_versions_reads_literal_register_calls(tmp_path):
    source = tmp_path / "m.py"
    source.write_text('R.register("a", f, version=4)\nR.register("b", g)\n@R.register("c", version=2)\ndef h(): pass\n')
    assert declared_versions([source]) == {"a": 4, "c": 2}


def test_generator_version_from_source_is_the_module_value():
    from data_prep.synthetic import generator_version

    inputs.clear_cache()
    import sys

    module = sys.modules.pop("data_prep.synthetic")
    try:
        assert inputs.generator_version("synthetic") == generator_version("synthetic")
        assert inputs.generator_version("synthetic_multi") == generator_version("synthetic_multi")
    finally:
        sys.modules["data_prep.synthetic"] = module


def test_edited_manifest_reruns_and_stale_lists_the_old_run(tiny_synthetic, tmp_path, capsys):
    """The user's flow: run on a prepared dataset, edit one box, rebuild, run again: a new run, not a skip."""
    from benchmark.evaluate import evaluate

    root = tmp_path / "mydata"
    shutil.copytree(tiny_synthetic / "data" / "synthetic" / "manifests" / "val", root)
    meta = json.loads((root / "meta.json").read_text())
    meta["image_root"] = str(tiny_synthetic / "data" / "synthetic" / "val")
    (root / "meta.json").write_text(json.dumps(meta))
    config = {"experiment_name": "mine", "seed": 0, "batch_size": 4, "progress": False, "on_error": "raise",
              "paths": {"results": str(tmp_path / "res")}, "model": {"name": "toy_gap"},
              "method": {"name": "grad_cam", "label": "grad_cam", "layer": None, "options": {}},
              "metric": {"name": "localization", "options": {}},
              "dataset": {"name": "mydata", "root": str(root), "split": "val", "shard": 0, "num_shards": 1, "limit": 4}}
    first = evaluate(config)
    assert first["status"] == "finished" and finished(config)["config_hash"] == first["config_hash"]
    assert first["inputs"]["dataset"] and "git" in first
    frame = pd.read_parquet(root / "manifest.parquet")
    frame.at[0, "boxes_xyxy"] = [[0, 0, 3, 3] for _ in frame.at[0, "boxes_xyxy"]]
    frame.to_parquet(root / "manifest.parquet")
    assert finished(config) is None
    second = evaluate(config)
    assert not second.get("skipped") and second["run_dir"] != first["run_dir"]
    assert [run["run_dir"] for run in stale.stale_runs(tmp_path / "res")] == [first["run_dir"]]
    assert stale.main(["--results", str(tmp_path / "res")]) == 0
    out = capsys.readouterr().out
    assert first["run_dir"] in out and "dataset" in out and second["run_dir"] not in out
    from benchmark.report.__main__ import main as report

    report(["--results", str(tmp_path / "res"), "--experiment", "mine"])  # the report marks the stale run
    err = capsys.readouterr().err
    assert f"stale: {first['run_dir']}" in err and f"stale: {second['run_dir']}" not in err


def test_migrate_moves_a_run_of_the_older_identity_only_when_told(tmp_path, capsys):
    from benchmark.runs import migrate
    from benchmark.runs.identity import config_hash
    from benchmark.runs.store import write_json

    config = _config(tmp_path, _prepared(tmp_path))
    config["paths"]["results"] = str(tmp_path / "res")
    old = tmp_path / "res" / "runs" / "e" / "vgg16" / "grad_cam" / "mine"
    old_hash = config_hash(semantic_config(config, with_inputs=False))
    write_json(old / "summary.json", {"config": config, "config_hash": old_hash, "status": "finished"})
    moves, kept = migrate.plan(tmp_path / "res")
    assert moves == [] and "--assume-unchanged-inputs" in kept[0]
    assert migrate.main(["--results", str(tmp_path / "res"), "--assume-unchanged-inputs"]) == 0
    new = run_dir_for(config)
    summary = json.loads((new / "summary.json").read_text())
    assert summary["identity_migrated_from"] == old_hash and job_state(config)[2]["config_hash"] == summary["config_hash"]
    assert stale.stale_runs(tmp_path / "res") == []
