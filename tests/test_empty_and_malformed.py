"""Jobs with nothing to score are not finished, and malformed labels or option values are refused.

An empty selection (``dataset.limit=0``, a manifest of 0 rows) fails before the run folder is made;
a job whose every image failed under ``on_error=record`` ends ``failed`` with its error counts and
runs again next time; an empty ``labels`` list is a manifest error naming the image; a label with no
box stops a localizing metric before the run; option values out of range stop the metric's build.
"""

import json
import shutil
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import benchmark.run  # noqa: F401  (schemas and resolvers)
from benchmark.data.manifest import ManifestError, read_manifest, write_manifest
from benchmark.evaluate import ConfigError, NothingScoredError, evaluate
from benchmark.metrics import build_metric
from benchmark.registry import OptionRangeError
from benchmark.models.base import CONF_DIR
from benchmark.runs.identity import run_dir_for

JOB = ["model=toy_gap", "method=grad_cam", "batch_size=2", "progress=false", "dataset.generate=null"]


def _config(tmp_path: Path, *overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[*JOB, f"paths.results={tmp_path / 'results'}", *overrides])
    return OmegaConf.to_container(cfg, resolve=True)


def _subset(tiny: Path, dst: Path, n: int = 3, mutate=None) -> Path:
    source = read_manifest(tiny / "data" / "synthetic" / "manifests" / "val")
    table = source.table.sort_values("image_id").head(n).reset_index(drop=True)
    for rel in table["path"]:
        (dst / "images" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source.image_root / rel, dst / "images" / rel)
    table = mutate(table) if mutate else table
    return write_manifest(dst / "manifest", table, {**source.meta, "image_root": str(dst / "images")})


def test_limit_zero_and_an_empty_manifest_fail_before_the_run_folder(tiny_synthetic, tmp_path):
    root = _subset(tiny_synthetic, tmp_path / "data")
    with pytest.raises(ConfigError, match=r"selection holds no image.*dataset.limit=0"):
        evaluate(_config(tmp_path, f"dataset.root={root}", "dataset.limit=0"))
    empty = _subset(tiny_synthetic, tmp_path / "empty", mutate=lambda t: t.head(0))
    with pytest.raises(ConfigError, match=f"{empty / 'manifest.parquet'}: the selection holds no image"):
        evaluate(_config(tmp_path, f"dataset.root={empty}", "dataset.split=null"))
    assert not (tmp_path / "results").exists()


def test_a_job_whose_every_image_failed_is_failed_and_runs_again(tiny_synthetic, tmp_path):
    root = _subset(tiny_synthetic, tmp_path / "data")
    hidden = tmp_path / "hidden"
    shutil.move(tmp_path / "data" / "images", hidden)  # every image file missing
    config = _config(tmp_path, f"dataset.root={root}", "on_error=record")
    for _ in range(2):  # the failed run is not skipped as done: it runs (and fails) again
        with pytest.raises(NothingScoredError, match="every one of the 3 images failed"):
            evaluate(config)
        summary = json.loads((run_dir_for(config) / "summary.json").read_text())
        assert summary["status"] == "failed" and summary["errors"]["n_images"] == 3 and summary["metrics"] == {}
    shutil.move(hidden, tmp_path / "data" / "images")  # fixed: the next run scores every image afresh
    summary = evaluate(config)
    assert summary["status"] == "finished" and "skipped" not in summary
    assert summary["errors"]["n_images"] == 0 and summary["counts"] == {"images": 3, "records": 3}


def test_empty_labels_are_a_manifest_error_naming_the_image(tiny_synthetic, tmp_path):
    def empty_labels(table):
        table.at[1, "labels"] = []
        return table

    with pytest.raises(ManifestError, match=r"image '[^']+': field 'labels' is empty"):
        _subset(tiny_synthetic, tmp_path / "data", mutate=empty_labels)


def test_a_label_without_a_box_stops_a_localizing_metric(tiny_synthetic, tmp_path):
    def bare_label(table):
        table.at[2, "labels"] = sorted({*table.at[2, "labels"], (int(table.at[2, "labels"][0]) + 1) % 10})
        return table

    root = _subset(tiny_synthetic, tmp_path / "data", mutate=bare_label)
    image = read_manifest(root).table.loc[2, "image_id"]
    with pytest.raises(ManifestError, match=f"field 'labels' names classes with no box or mask \\(image '{image}'"):
        evaluate(_config(tmp_path, f"dataset.root={root}", "metric=pointing"))
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("metric, option, value", [
    ("localization", "topk", 0), ("localization", "topk", 2.5), ("localization", "threshold", -1),
    ("localization", "threshold", float("nan")), ("localization", "threshold", 1.0),
    ("localization", "iou_threshold", 0), ("localization", "threshold", "abc"),
    ("pointing_modified", "topk", 0), ("pointing", "tolerance_px", -1), ("pointing", "tolerance_px", float("inf")),
])
def test_option_out_of_range_is_refused_when_the_metric_is_built(metric, option, value):
    with pytest.raises(OptionRangeError, match=f"'metric.options.{option}' of metric '{metric}' is"):
        build_metric(metric, **{option: value})


def test_options_in_range_still_build():
    metric = build_metric("localization", topk=1, threshold=0.5, iou_threshold=1.0)
    assert (metric.topk, metric.threshold, metric.iou_threshold) == (1, 0.5, 1.0)
    assert build_metric("pointing", tolerance_px=0).tolerance_px == 0.0
