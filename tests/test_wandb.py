"""The W&B mirror, checked from offline run files: summary metrics, per-class table, records
artifact, figures, secrets left out, and runs finished with the right exit code."""

import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from wandb.proto import wandb_internal_pb2

from benchmark.runs.store import frame_bytes
from benchmark.tracking import tracked, wandb_logger

REPO = Path(__file__).resolve().parents[1]
FAKE_KEY = "fake0key0" + "7" * 31  # 40 characters, like a real key


def wandb_records(wandb_dir: Path, timeout_s: float = 30.0) -> list:
    """Protobuf records of the one offline run under ``wandb_dir``, once its exit record is written
    (W&B's service process may still be flushing the file when ``finish`` returns)."""
    (path,) = sorted(Path(wandb_dir).glob("wandb/offline-run-*/run-*.wandb"))
    deadline = time.monotonic() + timeout_s
    while not of_type(records := _read_log(path.read_bytes()), "exit"):
        assert time.monotonic() < deadline, f"{path}: no exit record after {timeout_s} s"
        time.sleep(0.1)
    return records


def _read_log(data: bytes) -> list:
    """Parse a ``.wandb`` file: a LevelDB-style log with a 7-byte header, then 32 KiB blocks of
    chunks, each with a 7-byte header (crc32 u32, length u16, type u8: 1 full, 2 first, 3 middle,
    4 last). A torn chunk at the end (the file still being written) ends the list."""
    pos, pending, out = 7, b"", []
    assert data[:4] == b":W&B" or len(data) < 7, "not a W&B transaction log"
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # block trailer too short for a header: padding
            pos += 32768 - pos % 32768
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0 or len(chunk) < length:
            break
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            out.append(record)
    return out


def of_type(records, kind):
    return [getattr(r, kind) for r in records if r.WhichOneof("record_type") == kind]


def summary_values(records) -> dict:
    return {u.key: json.loads(u.value_json) for s in of_type(records, "summary") for u in s.update if u.key}


def table_json(wandb_dir: Path, key: str) -> dict:
    (path,) = sorted(Path(wandb_dir).glob(f"wandb/offline-run-*/files/media/table/{key}_*.table.json"))
    return json.loads(path.read_text())


def all_bytes(*roots: Path) -> bytes:
    return b"".join(p.read_bytes() for r in roots for p in Path(r).rglob("*") if p.is_file())


def test_offline_job_logs_summary_table_and_records(tiny_synthetic, tmp_path):
    results, wandb_dir = tmp_path / "results", tmp_path / "wandb_files"
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(wandb_dir), "WANDB_API_KEY": FAKE_KEY,
           "BENCHMARK_CACHE": str(tiny_synthetic)}
    args = [sys.executable, "-m", "benchmark", "model=toy_gap", "method=grad_cam", "logger=wandb",
            "logger.tags=[paper]", "experiment_name=wandb_test", "dataset.limit=6", "batch_size=3",
            "progress=false", f"paths.results={results}"]
    out = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (run_dir,) = (results / "runs" / "wandb_test" / "toy_gap" / "grad_cam" / "synthetic_val").glob("localization-*")
    summary = json.loads((run_dir / "summary.json").read_text())
    records = wandb_records(wandb_dir)
    (run,) = of_type(records, "run")
    assert (run.display_name, run.run_group, run.project) == ("toy_gap/grad_cam/synthetic_val", "wandb_test",
                                                              "gradcam-benchmark")
    assert set(run.tags) == {"toy_gap", "grad_cam", "synthetic_val", "paper"}
    config = {u.key: json.loads(u.value_json) for u in run.config.update}
    assert config["model"]["name"] == "toy_gap" and config["dataset"]["limit"] == 6
    logged = summary_values(records)
    for name, value in summary["metrics"].items():
        assert logged[f"localization/{name}"] == pytest.approx(value), name
    assert logged["status"] == "finished"
    protocol = {u.key: json.loads(u.value_json) for c in of_type(records, "config") for u in c.update}["protocol"]
    assert protocol["threshold"] == 0.15 and protocol["iou_threshold"] == 0.5
    frame = pd.read_parquet(run_dir / "records.parquet")
    table = table_json(wandb_dir, "per_class")
    assert table["columns"] == ["class_id", "class_name", "n_records", "mean_loc_correct_top1", "n_degenerate"]
    names = wandb_logger.class_names(json.loads((run_dir / "summary.json").read_text())["config"])
    expected = [[int(c), names[int(c)], len(g), float(g["loc_correct_top1"].mean()), int(g["degenerate"].sum())]
                for c, g in frame.groupby("class_id")]
    assert table["data"] == expected and sum(row[2] for row in table["data"]) == 6
    artifacts = {a.type: a for a in of_type(records, "artifact")}
    assert artifacts["records"].name == "records-wandb_test-toy_gap-grad_cam-synthetic_val"
    assert [e.path for e in artifacts["records"].manifest.contents] == ["records.parquet"]
    (exit_record,) = of_type(records, "exit")
    assert exit_record.exit_code == 0
    assert FAKE_KEY.encode() not in all_bytes(wandb_dir, results)


def _config(tmp_path: Path, **logger) -> dict:
    """The fields of a run config the tracker reads (a real job passes the whole resolved config)."""
    return {"experiment_name": "unit", "seed": 0, "model": {"name": "toy_vgg"}, "method": {"name": "gradient",
            "label": "gradient"}, "dataset": {"name": "tiny", "shard": 1, "num_shards": 2},
            "metric": {"name": "localization", "options": {}}, "paths": {"results": str(tmp_path / "results"),
            "access_token": "t0ken"}, "logger": {"name": "wandb", "project": "unit-project", "entity": None,
            "mode": "offline", "tags": [], "api_key": FAKE_KEY, **logger}}


def test_failing_run_is_finished_with_exit_code_1(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_files"))
    with pytest.raises(RuntimeError, match="boom"):
        with tracked(_config(tmp_path)):
            raise RuntimeError("boom")
    records = wandb_records(tmp_path / "wandb_files")
    (exit_record,) = of_type(records, "exit")
    assert exit_record.exit_code == 1
    (run,) = of_type(records, "run")
    assert run.display_name == "toy_vgg/gradient/tiny/shard-1-of-2"
    config = {u.key: json.loads(u.value_json) for u in run.config.update}
    assert "api_key" not in config["logger"] and "access_token" not in config["paths"]
    assert FAKE_KEY.encode() not in all_bytes(tmp_path / "wandb_files")


def test_log_summary_per_class_table_and_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_files"))
    config = _config(tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    # class 2: one of two correct (0.5); class 5: one of one (1.0), its map flagged degenerate;
    # image e could not be read (on_error=record): not a class of the table
    rows = [("a", 2, True, False, None), ("b", 2, False, False, None), ("c", 5, True, True, None),
            ("e", -1, None, None, "cannot decode image")]
    frame = pd.DataFrame(rows, columns=["image_id", "class_id", "loc_correct_top1", "degenerate", "error"])
    (run_dir / "records.parquet").write_bytes(frame_bytes(frame))
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(run_dir / "fig1.png")
    summary = {"status": "finished", "metric": "localization", "run_dir": str(run_dir), "config_hash": "abc",
               "metrics": {"loc_err_top1": 100 / 3, "n_images": 3}, "protocol": {"threshold": 0.15}}
    with tracked(config) as tracker:
        tracker.log_summary(summary)
    wandb_dir = tmp_path / "wandb_files"
    assert table_json(wandb_dir, "per_class")["data"] == [[2, 2, 0.5, 0], [5, 1, 1.0, 1]]
    records = wandb_records(wandb_dir)
    logged = summary_values(records)
    assert logged["localization/loc_err_top1"] == pytest.approx(100 / 3) and logged["localization/n_images"] == 3
    history_keys = {item.key or "/".join(item.nested_key[:1]) for h in of_type(records, "history") for item in h.item}
    assert {"per_class", "figures/fig1"} <= history_keys
    assert list(wandb_dir.glob("wandb/offline-run-*/files/media/images/figures/fig1_*.png"))
    assert of_type(records, "exit")[0].exit_code == 0


def test_public_config_drops_secret_keys_and_values():
    config = {"a": 1, "API_KEY": "x", "nested": {"password": "p", "keep": [FAKE_KEY, "ok"], "auth_token": 3}}
    assert wandb_logger.public_config(config, FAKE_KEY) == {"a": 1, "nested": {"keep": ["<removed>", "ok"]}}


def test_mode_from_config_env_or_api_key(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert wandb_logger.resolve_mode({"mode": None}) == "offline"  # no key anywhere
    (tmp_path / "netrc").write_text(f"machine api.wandb.ai\n  login user\n  password {FAKE_KEY}\n")
    assert wandb_logger.api_key_configured() and wandb_logger.resolve_mode({}) == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_logger.resolve_mode({}) == "disabled"
    assert wandb_logger.resolve_mode({"mode": "offline"}) == "offline"


def test_per_class_table_carries_the_manifest_class_names(tmp_path):
    from benchmark.tracking.wandb_logger import class_names, per_class

    (tmp_path / "meta.json").write_text(json.dumps({"class_names": ["cat", "dog", "bird"]}))
    names = class_names({"dataset": {"root": str(tmp_path)}})
    records = pd.DataFrame({"class_id": [2, 0, 2], "hit": [True, False, False], "degenerate": [False] * 3})
    table = per_class(records, "hit", names)
    assert list(table.columns[:2]) == ["class_id", "class_name"] and table["class_name"].tolist() == ["cat", "bird"]
    assert class_names({"dataset": {"root": str(tmp_path / "missing")}}) is None
