"""Error policy, determinism and untrusted files (the reliability contract)."""

import io
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import benchmark.run  # noqa: F401  (schemas and resolvers)
from benchmark.data.manifest import read_manifest, write_manifest
from benchmark.evaluate import evaluate
from benchmark.models import build_model
from benchmark.models.base import CONF_DIR, load_checkpoint


def _config(overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    return OmegaConf.to_container(cfg, resolve=True)


def _copy_manifest(src: Path, dst: Path, corrupt: int | None = None) -> Path:
    manifest = read_manifest(src)
    images = dst / "images"
    shutil.copytree(manifest.image_root, images)
    table = manifest.table
    if corrupt is not None:
        path = images / table.loc[corrupt, "path"]
        path.write_bytes(path.read_bytes()[:200])  # a truncated JPEG
    write_manifest(dst / "manifest", table, {**manifest.meta, "image_root": str(images)})
    return dst / "manifest"


def test_on_error_record_matches_the_valid_subset(tiny_synthetic, tmp_path):
    val = tiny_synthetic / "data" / "synthetic" / "manifests" / "val"
    broken = _copy_manifest(val, tmp_path / "broken", corrupt=2)
    # batch_size=1: every valid image is computed in the same batch composition in both runs
    base = ["model=toy_gap", "method=grad_cam", "dataset.limit=8", "batch_size=1", "progress=false",
            f"paths.results={tmp_path / 'results'}", "dataset.generate=null"]
    with pytest.raises(Exception, match=r"\.JPEG"):
        evaluate(_config(base + [f"dataset.root={broken}", "experiment_name=raise"]))
    recorded = evaluate(_config(base + [f"dataset.root={broken}", "on_error=record", "experiment_name=record"]))
    assert recorded["errors"]["n_images"] == 1 and "JPEG" in recorded["errors"]["examples"][0]["error"]
    # the same metrics as a run on the seven valid images alone
    manifest = read_manifest(broken)
    valid = manifest.table.drop(index=2).reset_index(drop=True)
    subset = tmp_path / "subset"
    write_manifest(subset, valid.head(7), manifest.meta)
    alone = evaluate(_config(base + [f"dataset.root={subset}", "dataset.limit=7", "experiment_name=alone"]))
    assert recorded["metrics"] == alone["metrics"] and alone["metrics"]["n_images"] == 7


def test_same_config_twice_gives_byte_identical_records_and_summary(tiny_synthetic, tmp_path):
    overrides = ["model=toy_vgg", "method=guided_grad_cam", "dataset.limit=6", "batch_size=4", "progress=false",
                 f"paths.results={tmp_path}"]
    first = evaluate(_config(overrides))
    run = Path(first["run_dir"])
    records, summary = (run / "records.parquet").read_bytes(), (run / "summary.json").read_bytes()
    evaluate(_config(overrides + ["force=true"]))
    assert (run / "records.parquet").read_bytes() == records
    assert (run / "summary.json").read_bytes() == summary
    assert {"seed", "versions", "git", "device", "protocol", "determinism"} <= set(json.loads(summary))


def test_pickled_code_in_a_checkpoint_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this would run code",))

    path = tmp_path / "evil.pt"
    buffer = io.BytesIO()
    torch.save({"weight": Evil()}, buffer)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match=r"evil\.pt.*weights_only"):
        load_checkpoint(path)


def test_checkpoint_of_wrong_class_count_names_the_key(tmp_path):
    model, _ = build_model("toy_gap", weights="random")
    state = {k: v for k, v in model.state_dict().items()}
    state["fc.weight"] = torch.zeros(7, state["fc.weight"].shape[1])
    path = tmp_path / "wrong.pt"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"wrong\.pt.*fc\.weight"):
        build_model("toy_gap", checkpoint=str(path))


def test_missing_layer_names_close_candidates():
    with pytest.raises(KeyError, match="features.16"):
        build_model("toy_vgg", weights="random", layers={"gradcam": "features.61"})


def test_deterministic_scope_on_cuda_sets_and_restores_the_flags(monkeypatch):
    """The CUDA branch only flips process flags, so it is checked without a GPU."""
    import torch

    from benchmark.runs.provenance import deterministic

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
              torch.backends.cudnn.benchmark)
    with deterministic(torch.device("cuda"), True) as info:
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8" and info["deterministic_algorithms"]
    assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
            torch.backends.cudnn.benchmark) == before
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    with deterministic(torch.device("cuda"), False) as info:
        assert not info["requested"] and torch.are_deterministic_algorithms_enabled() == before[0]
    with deterministic(torch.device("cpu"), True) as info:  # CPU kernels are left as they are
        assert info == {"requested": True, "deterministic_algorithms": before[0], "device": "cpu"}


def test_host_phase_overlaps_the_next_batch_and_records_are_unchanged(tiny_synthetic, tmp_path, monkeypatch):
    """Localization's host phase (resize to the original size, box) of batch n runs in the worker thread
    while the main thread already runs batch n+1 on the device; the records equal those of the serial
    loop byte for byte."""
    import threading

    from benchmark.metrics.localization import Localization

    started = [threading.Event() for _ in range(5)]
    seen, threads = [], set()
    original = Localization.prepare_batch

    def traced(self, samples, *args):
        n = sum(e.is_set() for e in started)
        started[n].set()
        finish = original(self, samples, *args)

        def host():
            threads.add(threading.current_thread().name)
            seen.append(started[n + 1].wait(timeout=10 if n < 3 else 0))  # did batch n+1 reach the device meanwhile?
            return finish()

        return host

    base = ["model=toy_vgg", "method=grad_cam", "dataset.limit=8", "batch_size=2", "progress=false"]
    with monkeypatch.context() as patch:
        patch.setattr(Localization, "prepare_batch", traced)
        overlapped = evaluate(_config(base + [f"paths.results={tmp_path / 'a'}"]))
    assert seen[:3] == [True, True, True] and "MainThread" not in threads  # 4 batches; the last has no successor
    serial = evaluate(_config(base + ["overlap_postprocessing=false", f"paths.results={tmp_path / 'b'}"]))
    assert overlapped["config_hash"] == serial["config_hash"]  # a speed setting, not part of the protocol
    a = Path(overlapped["run_dir"]) / "records.parquet"
    b = Path(serial["run_dir"]) / "records.parquet"
    assert a.read_bytes() == b.read_bytes()
