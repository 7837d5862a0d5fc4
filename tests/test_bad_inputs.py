"""Bad inputs: each is an error that names the file, the field and what was expected, and leaves no
partial output; images that are merely not RGB are converted, not rejected.

Covered elsewhere: the data_prep scripts' bad raw files in ``test_prep_voc.py``,
``test_prep_coco.py`` and ``test_prep_ilsvrc.py`` (zero-sized and out-of-bounds boxes, unknown class
names, empty annotation files, missing images; each checks file, field and that no manifest is
written); greyscale/CMYK/RGBA conversion, a truncated image and a missing image in
``test_readers.py``; pickled code in a checkpoint and ``on_error=record`` on a truncated image in
``test_reliability.py``; config typos in ``test_config.py``. Here: the same guarantees where a *run*
meets the bad input (the results root stays empty unless the run can start), and the cases those
files leave out (palette, grey+alpha, 16-bit and float images, empty COCO file, empty VOC image
set, manifest-level boxes, class indices the model lacks, wrong checkpoints and layers via config).
"""

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from PIL import Image

import benchmark.run  # noqa: F401  (schemas and resolvers)
from benchmark.data.manifest import SCHEMA, ManifestError, read_manifest, write_manifest
from benchmark.data.readers import ImageDecodeError, ManifestDataset, load_rgb
from benchmark.evaluate import evaluate
from benchmark.models import build_model
from benchmark.models.base import CONF_DIR
from benchmark.runs.identity import run_dir_for
from benchmark.runs.store import RunStore
from data_prep import coco2014, voc2007

REPO = Path(__file__).resolve().parents[1]
JOB = ["model=toy_gap", "method=grad_cam", "batch_size=2", "progress=false", "dataset.generate=null"]


def _config(overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    return OmegaConf.to_container(cfg, resolve=True)


def _subset(tiny: Path, dst: Path, n: int = 4, mutate=None) -> Path:
    """A manifest of the first ``n`` synthetic val images, copied under ``dst``; ``mutate(table,
    images)`` may change the rows or the files first. Returns the manifest folder."""
    source = read_manifest(tiny / "data" / "synthetic" / "manifests" / "val")
    table = source.table.sort_values("image_id").head(n).reset_index(drop=True)
    images = dst / "images"
    for rel in table["path"]:
        (images / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source.image_root / rel, images / rel)
    if mutate is not None:
        table = mutate(table, images)
    write_manifest(dst / "manifest", table, {**source.meta, "image_root": str(images)})
    return dst / "manifest"


def _check(err, *needles) -> None:
    text = str(err.value)
    for needle in needles:
        assert needle in text, f"{needle!r} not in: {text}"


# --- a run meets a bad input: an error naming file/field/expectation, nothing in the results root

def _drop_file(table, images):
    (images / table.loc[1, "path"]).unlink()
    return table


def _label_outside(table, images):
    table.at[2, "labels"] = [12]
    table.at[2, "box_labels"] = [12] * len(table.loc[2, "box_labels"])
    return table


def _bad_root(tmp_path, tiny):
    root = _subset(tiny, tmp_path / "data")
    meta = root / "meta.json"
    meta.write_text(meta.read_text().replace(str(tmp_path / "data" / "images"), str(tmp_path / "nowhere")))
    return root


def _box_outside(tmp_path, tiny):
    """A manifest written around the validation (as an old or hand-made one could be)."""
    root = _subset(tiny, tmp_path / "data")
    frame = read_manifest(root).table
    width = int(frame.loc[0, "width"])
    frame.at[0, "boxes_xyxy"] = [[0, 0, width, 5]]  # x1 == width: one past the last column
    frame.at[0, "box_labels"], frame.at[0, "box_difficult"] = [int(frame.loc[0, "labels"][0])], [False]
    pq.write_table(pa.Table.from_pandas(frame, schema=SCHEMA, preserve_index=False), root / "manifest.parquet")
    return root, frame.loc[0, "image_id"], width


def _checkpoint(tmp_path, kind):
    if kind == "arch":  # a toy_vgg state dict given to toy_gap
        state = build_model("toy_vgg", weights="random")[0].state_dict()
    else:  # toy_gap with a 7-class head
        state = dict(build_model("toy_gap", weights="random")[0].state_dict())
        state["fc.weight"], state["fc.bias"] = torch.zeros(7, state["fc.weight"].shape[1]), torch.zeros(7)
    path = tmp_path / f"wrong_{kind}.pt"
    torch.save(state, path)
    return path


def _case(name, tmp_path, tiny):
    """(overrides, exception type, needles) of one bad-input case."""
    if name == "missing_image_file":
        root = _subset(tiny, tmp_path / "data", mutate=_drop_file)
        gone = read_manifest(root).table.loc[1]
        return [f"dataset.root={root}"], ManifestError, [
            str(root / "manifest.parquet"), "field 'path'", "1 image(s)", repr(gone["image_id"]), gone["path"],
            "expected existing image files", "on_error=record"]
    if name == "image_root_points_nowhere":
        root = _bad_root(tmp_path, tiny)
        return [f"dataset.root={root}"], ManifestError, [
            str(root / "manifest.parquet"), "field 'path'", "4 image(s)", str(tmp_path / "nowhere"), "'image_root'"]
    if name == "class_index_the_model_lacks":
        root = _subset(tiny, tmp_path / "data", mutate=_label_outside)
        image_id = read_manifest(root).table.loc[2, "image_id"]
        return [f"dataset.root={root}"], ValueError, [
            str(root / "manifest.parquet"), f"image {image_id!r} labels=12", "box_labels=12",
            "model 'toy_gap' has 10 classes", "expected indices 0..9"]
    if name == "box_outside_the_image":
        root, image_id, width = _box_outside(tmp_path, tiny)
        return [f"dataset.root={root}"], ManifestError, [
            str(root / "manifest.parquet"), repr(image_id), "field 'boxes_xyxy'", f"[0, 0, {width}, 5]",
            f"expected 0 <= x0 <= x1 < {width}"]
    if name in ("checkpoint_of_another_architecture", "checkpoint_with_another_class_count"):
        path = _checkpoint(tmp_path, "arch" if "architecture" in name else "classes")
        needles = (["does not fit ToyGAP", "missing keys ['fc.weight'", "unexpected keys ['classifier"]
                   if "architecture" in name else ["fc.weight: checkpoint (7, 64) vs model (10, 64)", "fc.bias"])
        return [f"model.checkpoint={path}"], ValueError, [str(path), *needles]
    if name == "unknown_method_layer":
        return ["method.layer=features.61"], ValueError, [
            "config field 'method.layer' is 'features.61'", "does not exist in ToyGAP", "close candidates:",
            "features.16"]
    if name == "unknown_model_layer":
        return ["model.layers.gradcam=features.61"], KeyError, [
            "config field 'model.layers.gradcam'", "'features.61' does not exist", "features.16"]
    if name == "metric_option_typo":
        return ["metric.options.threshhold=0.2"], TypeError, [
            "metric.options", "'threshhold'", "expected options: threshold, iou_threshold, topk"]
    if name == "method_option_typo":
        return ["method.options.poolin=gmp"], ValueError, ["config field 'method.options'", "'poolin'"]
    if name == "on_error_typo":
        return ["on_error=skip"], ValueError, ["config field 'on_error' is 'skip'", "('raise', 'record')"]
    raise AssertionError(name)


CASES = ["missing_image_file", "image_root_points_nowhere", "class_index_the_model_lacks", "box_outside_the_image",
         "checkpoint_of_another_architecture", "checkpoint_with_another_class_count", "unknown_method_layer",
         "unknown_model_layer", "metric_option_typo", "method_option_typo", "on_error_typo"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_stops_the_run_before_it_writes_anything(tiny_synthetic, tmp_path, case):
    overrides, kind, needles = _case(case, tmp_path, tiny_synthetic)
    results = tmp_path / "results"
    with pytest.raises(kind) as err:
        evaluate(_config([*JOB, f"paths.results={results}", *overrides]))
    _check(err, *needles)
    assert not results.exists()  # no run folder, no lock file, no partial records


def test_unknown_config_key_on_the_command_line_writes_nothing(tiny_synthetic, tmp_path):
    results = tmp_path / "results"
    out = subprocess.run([sys.executable, "-m", "benchmark", "metric.threshhold=0.2", f"paths.results={results}"],
                         cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "BENCHMARK_CACHE": str(tiny_synthetic)})
    assert out.returncode == 2  # a user error: one block, no traceback
    assert "config key 'metric.threshhold' does not exist" in out.stderr and "metric.options.threshhold" in out.stderr
    assert "Traceback" not in out.stderr
    assert not results.exists()


def test_unknown_group_option_lists_what_exists():
    with pytest.raises(Exception) as err:
        _config(["method=grad_cma"])
    _check(err, "Could not find 'method/grad_cma'", "Available options in 'method'", "grad_cam", "guided_backprop")


def test_missing_meta_json_names_it(tmp_path, tiny_synthetic):
    root = _subset(tiny_synthetic, tmp_path / "data")
    (root / "meta.json").unlink()
    with pytest.raises(ManifestError) as err:
        evaluate(_config([*JOB, f"dataset.root={root}", f"paths.results={tmp_path / 'results'}"]))
    _check(err, str(root), "missing meta.json", "python -m data_prep.")
    assert not (tmp_path / "results").exists()


# --- unreadable images ---------------------------------------------------------------------------

def _jpeg(size=(32, 24)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["truncated", "garbage", "empty", "float"])
def test_unreadable_image_names_the_file_and_what_was_expected(tmp_path, kind):
    path = tmp_path / ("img.tiff" if kind == "float" else "img.jpg")
    if kind == "float":
        Image.fromarray(np.full((4, 5), 0.5, np.float32)).save(path)
    else:
        path.write_bytes({"truncated": _jpeg()[:300], "garbage": bytes(range(256)) * 4, "empty": b""}[kind])
    with pytest.raises(ImageDecodeError) as err:
        load_rgb(path, (24, 32))
    if kind == "float":
        _check(err, str(path), "mode 'F'", "expected an 8-bit or 16-bit image")
    else:
        _check(err, str(path), "cannot decode image", "expected a complete image file")


def test_unreadable_image_mid_run_keeps_finished_parts_and_writes_no_result(tiny_synthetic, tmp_path):
    """With on_error=raise the run stops at the bad image: complete parts stay for the resume, but
    no records.parquet or summary.json (the run is not finished); fixing the file and rerunning
    resumes from them."""
    saved = {}

    def truncate_third(table, images):
        path = images / table.loc[2, "path"]
        saved["path"], saved["bytes"] = path, path.read_bytes()
        path.write_bytes(saved["bytes"][:250])
        return table

    root = _subset(tiny_synthetic, tmp_path / "data", mutate=truncate_third)
    overrides = [*JOB, "batch_size=1", "part_size=2", f"dataset.root={root}", f"paths.results={tmp_path / 'results'}"]
    with pytest.raises(ImageDecodeError) as err:
        evaluate(_config(overrides))
    _check(err, str(saved["path"]), "cannot decode image", "expected a complete image file")
    run = run_dir_for(_config(overrides))
    assert not (run / "records.parquet").exists() and not (run / "summary.json").exists()
    assert [p.name for p in RunStore(run).part_files()] == ["part-000000.parquet"] and not list(run.rglob("*.tmp"))
    saved["path"].write_bytes(saved["bytes"])
    summary = evaluate(_config(overrides))
    assert summary["counts"] == {"images": 4, "records": 4} and summary["errors"]["n_images"] == 0


def test_record_policy_with_missing_and_corrupt_files_equals_the_valid_subset(tiny_synthetic, tmp_path):
    def break_two(table, images):
        (images / table.loc[1, "path"]).unlink()
        (images / table.loc[4, "path"]).write_bytes(b"not an image")
        return table

    root = _subset(tiny_synthetic, tmp_path / "broken", n=6, mutate=break_two)
    common = [*JOB, "batch_size=1", f"paths.results={tmp_path / 'results'}"]
    recorded = evaluate(_config([*common, f"dataset.root={root}", "on_error=record", "experiment_name=record"]))
    manifest = read_manifest(root)
    errors = {e["image_id"]: e["error"] for e in recorded["errors"]["examples"]}
    assert set(errors) == {manifest.table.loc[1, "image_id"], manifest.table.loc[4, "image_id"]}
    assert "image file not found" in errors[manifest.table.loc[1, "image_id"]]
    assert "cannot decode image" in errors[manifest.table.loc[4, "image_id"]]
    valid = write_manifest(tmp_path / "valid", manifest.table.drop(index=[1, 4]), manifest.meta)
    alone = evaluate(_config([*common, f"dataset.root={valid}", "experiment_name=alone"]))
    assert recorded["metrics"] == alone["metrics"] and alone["metrics"]["n_images"] == 4
    assert recorded["counts"] == {"images": 6, "records": 6}


# --- images that are not RGB are converted, not rejected --------------------------------------------

MODES = {"L": "png", "LA": "png", "P": "png", "1": "png", "CMYK": "jpg", "RGBA": "png", "I;16": "png", "RGB": "jpg"}


def _convert(image: Image.Image, mode: str) -> Image.Image:
    if mode == "I;16":
        grey = np.asarray(image.convert("L"), dtype=np.uint16) * 257
        return Image.fromarray(grey)
    return image.convert(mode)


def test_non_rgb_images_are_converted_and_scored(tiny_synthetic, tmp_path):
    def recode(table, images):
        for k, mode in enumerate(MODES):
            old = images / table.loc[k, "path"]
            new = old.with_name(f"{old.stem}_{mode.replace(';', '')}.{MODES[mode]}")
            with Image.open(old) as image:
                _convert(image.convert("RGB"), mode).save(new)
            with Image.open(new) as check:
                assert check.mode == mode, (mode, check.mode)  # the file really holds that mode
            table.at[k, "path"] = str(new.relative_to(images))
        return table

    root = _subset(tiny_synthetic, tmp_path / "data", n=len(MODES), mutate=recode)
    dataset = ManifestDataset(root)
    for k in range(len(dataset)):
        image = dataset[k].image
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    summary = evaluate(_config([*JOB, f"dataset.root={root}", f"paths.results={tmp_path / 'results'}"]))
    assert summary["errors"]["n_images"] == 0 and summary["metrics"]["n_images"] == len(MODES)


def test_sixteen_bit_greyscale_is_scaled_not_clipped(tmp_path):
    grey = np.array([[0, 100, 200], [255, 30, 7]], np.uint16) * 257  # 8-bit values scaled to 16 bits
    Image.fromarray(grey).save(tmp_path / "g16.png")
    rgb = load_rgb(tmp_path / "g16.png", (2, 3))
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 3, 3)
    assert (rgb == (grey // 257).astype(np.uint8)[..., None]).all()


def test_palette_and_grey_alpha_images_keep_their_colours(tmp_path):
    palette = Image.new("P", (3, 2))
    palette.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    palette.putpixel((1, 0), 1)
    palette.save(tmp_path / "p.png")
    Image.new("LA", (2, 2), (90, 0)).save(tmp_path / "la.png")
    p = load_rgb(tmp_path / "p.png")
    assert p[0, 1].tolist() == [0, 255, 0] and p[1, 2].tolist() == [255, 0, 0]
    assert (load_rgb(tmp_path / "la.png") == 90).all()  # alpha 0 dropped, not composited


# --- bad inputs of the data_prep scripts not covered by their own tests -----------------------------

def test_empty_coco_annotation_file(tmp_path):
    from test_prep_coco import write_coco

    root = write_coco(tmp_path / "raw")
    (root / "annotations" / "instances_val2014.json").write_bytes(b"")
    with pytest.raises(ManifestError) as err:
        coco2014.prepare(root, tmp_path / "m")
    _check(err, "instances_val2014.json", "empty file", "expected a COCO instances JSON object")
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


def test_empty_voc_image_set(tmp_path):
    from test_prep_voc import BASIC, write_voc

    voc = write_voc(tmp_path / "raw", BASIC)
    (voc / "ImageSets" / "Main" / "test.txt").write_text("\n")
    with pytest.raises(ManifestError) as err:
        voc2007.prepare(tmp_path / "raw", tmp_path / "m", "test")
    _check(err, "test.txt", "image set is empty", "expected one image id per line")
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


@pytest.mark.parametrize("box", [[2, 1, 6, 4], [3, 1, 2, 2], [-1, 0, 1, 1]], ids=["outside", "empty", "negative"])
def test_manifest_with_a_bad_box_is_not_written(tmp_path, box):
    (tmp_path / "images").mkdir()
    Image.new("RGB", (6, 4)).save(tmp_path / "images" / "a.png")
    row = {"image_id": "a", "path": "a.png", "height": 4, "width": 6, "labels": [0], "boxes_xyxy": [box],
           "box_labels": [0], "box_difficult": [False], "split": "val"}
    meta = {"dataset": "toy", "image_root": str(tmp_path / "images"), "wnids": ["x"], "class_names": ["x"]}
    with pytest.raises(ManifestError) as err:
        write_manifest(tmp_path / "m", [row], meta)
    _check(err, str(tmp_path / "m" / "manifest.parquet"), "image 'a'", "field 'boxes_xyxy'", str(box),
           "expected 0 <= x0 <= x1 < 6 and 0 <= y0 <= y1 < 4")
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())
