"""Every experiment file runs end to end in a tiny debug mode.

For each ``conf/experiment/*.yaml`` (parametrized over the files, so a new file is covered without
editing this test) the first job of its sweep (the first value of every ``hydra.sweeper.params``
entry, expanded as ``python -m benchmark -m`` expands it) is composed and run through
``benchmark.evaluate.evaluate`` exactly as ``benchmark.run`` passes it on, or, for ``CLI``, through
``python -m benchmark -m experiment=NAME <job> <debug overrides>`` in a subprocess. Debug mode only
adds overrides derived from the composed config, never edits an experiment file:

* data: the embedded synthetic data (``generate:``) comes from the ``tiny_synthetic`` session
  fixture (tiny multi-object scenes and a one-epoch ``toy_gap_multi`` are added to its cache, as
  "made on first use" would), ``dataset.limit=4``; a real dataset (ILSVRC, VOC 2007, COCO 2014) is
  a 2-3 image fixture in its raw on-disk layout prepared by its real preparer
  (``tests/fixtures_real.py``), pointed at with ``dataset.root``;
* models: torchvision presets get ``model.weights=null`` (random init, no download); presets that
  load a checkpoint get a compact random-weight checkpoint of their architecture and class count
  (``model.checkpoint=`` in process, the preset's ``$..._CHECKPOINT`` variable on the CLI); real
  models run at ``model.input_size=64`` and the occlusion metric at ``metric.options.stride=56``
  (the paper's stride 1 at 224 is 50,176 forwards per image); ``batch_size=2``.

The COCO 2014 variant that ``conf/experiment/pointing.yaml`` documents on the command line runs too.

Checked: the run finishes (or is ``not_applicable`` where that is the documented outcome: CAM on a
model without a CAM head; excitation backprop on a model with non-ReLU ops above its layer), summary.json is on disk in the run folder the experiment names, records.parquet holds the
expected images and the number of rows the metric makes for them (worked out from the manifest:
one per image; one per scored (image, class) for the pointing game; top-k per image for the
modified one), the summary's counts, image numbers, layer and protocol agree with the config.

``make test-slow`` also runs every job of every sweep (``test_every_sweep_job_runs_in_debug_mode``, about
80 s on 2 cores), all in process; jobs known to stop with an error are listed in ``KNOWN_BROKEN``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

import benchmark.run  # noqa: F401  (schemas and the run_path resolver, as the entry registers them)
from benchmark.evaluate import evaluate
from benchmark.models.base import CONF_DIR
from benchmark.runs.identity import run_dir_for
from fixtures_real import PREPARERS, write_random_checkpoint

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
TOY_ARCHS = ("toy_vgg", "toy_gap")
DEBUG_INPUT = 64  # real models: 224 in the experiments
# metrics that explain each image many times get a smaller input: the sanity check's 1 + 2 x layers
# explanations per image (33 on VGG-16) on real models
DEBUG_INPUT_PER_METRIC = {"sanity_model_randomization": 32}
DEBUG_STRIDE = 56  # occlusion on real models: 1 in table2_occlusion
LIMIT = 4  # images of the synthetic splits
BATCH = 2
CLI = {"table1_vgg16_gap"}  # through `python -m benchmark -m`, its checkpoint through $VGG16_GAP_CHECKPOINT
# Jobs of a sweep that stop with an error in the full sweep (test_every_sweep_job_runs_in_debug_mode), with the
# message they stop with; the test xfails on exactly these and fails once one runs (then remove it here).
KNOWN_BROKEN: dict[str, dict[str, str]] = {}
# The pointing experiment documents its COCO 2014 variant on the command line (conf/experiment/pointing.yaml):
# `python -m benchmark -m experiment=pointing dataset=coco2014_val model=vgg16_coco14,resnet50_coco14`.
DOCUMENTED_VARIANTS = {"pointing[coco2014_val]": ("pointing", ["dataset=coco2014_val", "model=vgg16_coco14"])}


def _compose(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def _jobs(experiment: str, overrides: list[str] = ()) -> list[list[str]]:
    """Every job of `python -m benchmark -m experiment=NAME <overrides>`, expanded by Hydra's basic sweeper
    itself: the experiment's ``hydra.sweeper.params``, then the command line (which replaces a swept key)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"experiment={experiment}", *overrides],
                      return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params or {}, resolve=False)
    arguments = [f"{k}={v}" for k, v in params.items()] + [f"experiment={experiment}", *overrides]
    (jobs,) = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(arguments), None)
    return jobs


class DebugData:
    """Prepared real-format manifests and random checkpoints, each made once per session on demand."""

    def __init__(self, root: Path):
        self.root, self.cache = root, root / "cache"
        self._made: dict = {}

    def manifest(self, dataset: str) -> Path:
        if dataset not in PREPARERS:
            pytest.fail(f"no debug fixture for dataset {dataset!r}: add a writer and preparer to tests/fixtures_real.py")
        if dataset not in self._made:
            self._made[dataset] = PREPARERS[dataset](self.root / "raw" / dataset, self.root / "manifests" / dataset)
        return self._made[dataset]

    def checkpoint(self, model_cfg: dict) -> Path:
        key = ("checkpoint", model_cfg["name"])
        if key not in self._made:
            self._made[key] = write_random_checkpoint(model_cfg, self.root / "checkpoints" / f"{model_cfg['name']}.pt")
        return self._made[key]


@pytest.fixture(scope="session")
def debug_data(tmp_path_factory) -> DebugData:
    return DebugData(tmp_path_factory.mktemp("debug_data"))


def _checkpoint_env_var(model: str) -> str | None:
    """The environment variable the preset reads its checkpoint from (``${oc.env:NAME,default}``)."""
    raw = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "model" / f"{model}.yaml"), resolve=False)
    found = re.search(r"oc\.env:(\w+)", str(raw.get("checkpoint") or ""))
    return found.group(1) if found else None


def debug_input(metric: str) -> int:
    """The input size of real models in debug mode."""
    return DEBUG_INPUT_PER_METRIC.get(metric, DEBUG_INPUT)


def debug_setup(job: list[str], results: Path, request, debug_data: DebugData, cli: bool = False):
    """``(overrides, environment)`` that run ``job`` in debug mode; the fixtures it needs are made here."""
    cfg = OmegaConf.to_container(_compose(job), resolve=False)  # names only: paths resolve once set
    ds, model, metric = cfg["dataset"], cfg["model"], cfg["metric"]
    overrides = [f"paths.results={results}", f"batch_size={BATCH}", "progress=false", "num_workers=0"]
    env: dict[str, str] = {}
    real_model = (model.get("arch") or model["name"]) not in TOY_ARCHS
    if ds.get("generate") or not real_model:
        request.getfixturevalue("tiny_synthetic")  # sets $BENCHMARK_CACHE for the session
        if ds.get("generate") == "synthetic_multi" or (model.get("multilabel") and not real_model):
            request.getfixturevalue("tiny_multi")
    if ds.get("generate"):
        overrides.append(f"dataset.limit={LIMIT}")
    else:
        overrides.append(f"dataset.root={debug_data.manifest(ds['name'])}")
    if real_model:
        if model.get("weights") is not None:
            overrides.append("model.weights=null")
        if model.get("checkpoint") is not None:
            path = debug_data.checkpoint(model)
            variable = _checkpoint_env_var(model["name"])
            if cli and variable:
                env[variable] = str(path)
            else:
                overrides.append(f"model.checkpoint={path}")
        overrides.append(f"model.input_size={debug_input(metric['name'])}")
        if metric["name"] == "occlusion_correlation":
            overrides.append(f"metric.options.stride={DEBUG_STRIDE}")
        if not ds.get("generate"):  # occlusion maps and anything else cached: a folder of this session
            env.setdefault("BENCHMARK_CACHE", str(debug_data.cache))
    return overrides, env


def run_in_process(job: list[str], overrides: list[str], env: dict, monkeypatch) -> tuple[dict, dict]:
    """What `python -m benchmark` does for one job: compose, resolve, evaluate."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config = OmegaConf.to_container(_compose([*job, *overrides]), resolve=True)
    return evaluate(config), config


def run_cli(job: list[str], overrides: list[str], env: dict, monkeypatch) -> tuple[dict, dict]:
    """`python -m benchmark -m <job> <overrides>` in a subprocess; returns its summary.json and the config."""
    full = {**os.environ, **env, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "benchmark", "-m", *job, *overrides], cwd=REPO, env=full,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "Launching 1 jobs locally" in out.stdout + out.stderr  # the command-line job replaced the sweep
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config = OmegaConf.to_container(_compose([*job, *overrides]), resolve=True)
    run_dir = run_dir_for(config)
    return json.loads((run_dir / "summary.json").read_text()), config


def _manifest_rows(dataset: dict) -> pd.DataFrame:
    """The images a run over ``dataset`` scores: the split's rows sorted by id, the first ``limit``."""
    frame = pd.read_parquet(Path(dataset["root"]) / "manifest.parquet")
    if dataset.get("split") is not None:
        frame = frame[frame["split"] == dataset["split"]]
    frame = frame.sort_values("image_id").reset_index(drop=True)
    return frame if dataset.get("limit") is None else frame.head(dataset["limit"])


def _pointing_classes(row, options: dict) -> set[int]:
    """GT classes the pointing game scores: all but those seen only in boxes that are all difficult."""
    region, skip = options.get("region", "auto"), options.get("skip_difficult", True)
    labels, box_labels = [int(c) for c in row["labels"]], [int(c) for c in row["box_labels"]]
    difficult = [bool(d) for d in row["box_difficult"]]
    masks = {int(c) for c in row["mask_labels"]}
    kept = set()
    for c in labels:
        flags = [d for lab, d in zip(box_labels, difficult) if lab == c]
        on_boxes = region == "boxes" or (region == "auto" and c not in masks)
        if not (skip and on_boxes and flags and all(flags)):
            kept.add(c)
    return kept


def expected_rows(config: dict, rows: pd.DataFrame) -> int:
    metric, options = config["metric"]["name"], config["metric"].get("options") or {}
    if metric in ("localization", "localization_cam", "occlusion_correlation", "deletion", "insertion",
                  "region_perturbation", "road", "sparseness", "sanity_model_randomization"):  # one record per image
        return len(rows)
    if metric in ("pointing", "relevance_mass", "relevance_rank", "energy_pointing"):  # one per scored (image, class)
        return sum(len(_pointing_classes(row, options)) for _, row in rows.iterrows())
    if metric == "pointing_modified":  # the top-k predicted classes of every image
        num_classes = config["model"].get("num_classes") or 1000
        return len(rows) * min(int(options.get("topk", 5)), int(num_classes))
    pytest.fail(f"metric {metric!r}: add how many records it writes per image to expected_rows")


def check_run(experiment: str, summary: dict, config: dict) -> None:
    name = OmegaConf.load(CONF_DIR / "experiment" / f"{experiment}.yaml")["experiment_name"]
    assert config["experiment_name"] == summary["config"]["experiment_name"] == name
    model, method, ds = config["model"], config["method"], config["dataset"]
    run_dir = run_dir_for(config)
    assert run_dir.parent == (Path(config["paths"]["results"]) / "runs" / name / model["name"]
                              / (method["label"] + (f"@{method['layer']}" if method.get("layer") else "")) / ds["name"])
    assert Path(summary["run_dir"]) == run_dir
    on_disk = json.loads((run_dir / "summary.json").read_text())
    assert on_disk["status"] == summary["status"] and on_disk["config_hash"] == summary["config_hash"]
    assert (summary["model"], summary["method"], summary["dataset"]) == (model["name"], method["label"], ds["name"])
    cam_model = bool((model.get("layers") or {}).get("cam"))  # presets name a CAM layer iff the model has a CAM head
    if method["name"] == "cam" and not cam_model:  # the documented outcome: CAM needs global pooling + one linear
        assert summary["status"] == "not_applicable" and "CAM" in summary["reason"], summary
        assert not (run_dir / "records.parquet").exists()
        return
    if summary["status"] == "not_applicable" and method["name"] in ("excitation_backprop",
                                                                    "contrastive_excitation_backprop"):
        assert "excitation backprop has rules for ReLU networks only" in summary["reason"], summary
        return
    assert summary["status"] == "finished", summary
    rows = _manifest_rows(ds)
    records = pd.read_parquet(run_dir / "records.parquet")
    assert sorted(set(records["image_id"])) == sorted(rows["image_id"]) and len(rows) > 0
    assert len(records) == expected_rows(config, rows), records[["image_id", "class_id"]]
    assert records["error"].isna().all() and set(records["model"]) == {model["name"]}
    assert set(records["method"]) == {method["label"]} and set(records["dataset"]) == {ds["name"]}
    assert summary["counts"] == {"images": len(rows), "records": len(records)}
    metrics = summary["metrics"]
    if config["metric"]["name"] == "pointing_modified":  # each image calibrates θ or is evaluated, never both
        fraction = (config["metric"].get("options") or {}).get("calibration_fraction", 0.25)
        calibration = sum(int.from_bytes(hashlib.sha256(str(i).encode()).digest()[:8], "big") / 2.0 ** 64 < fraction
                          for i in rows["image_id"])  # the documented rule: sha256(image_id) in the first 25 %
        assert (metrics["n_calibration_images"], metrics["n_images"]) == (calibration, len(rows) - calibration)
        assert (metrics["theta"] is not None) == (0 < calibration < len(rows))
    else:
        assert metrics["n_images"] == len(rows)
    protocol = summary["protocol"]
    for key, value in (config["metric"].get("options") or {}).items():  # the experiment's and the debug settings
        if key in protocol:
            assert protocol[key] == value, key
    if (model.get("arch") or model["name"]) not in TOY_ARCHS:
        assert protocol["input_size"] == debug_input(config["metric"]["name"])
    if method.get("layer"):
        assert summary["layer"] == method["layer"]


def _run_job(experiment, job, tmp_path, request, debug_data, monkeypatch, cli=False):
    overrides, env = debug_setup(job, tmp_path / "results", request, debug_data, cli=cli)
    runner = run_cli if cli else run_in_process
    summary, config = runner(job, overrides, env, monkeypatch)
    check_run(experiment, summary, config)
    return summary


# First jobs left to `make test-slow` (where test_every_sweep_job_runs_in_debug_mode runs them too), with why:
SLOW_FIRST_JOBS = {
    # VGG-16's 33 explanations per image, each reading its 400 MB classifier twice: ~15 s of a 3-minute
    # suite. The fast tests check the same metric against Quantus (test_sanity_randomization) and run
    # it in demo_sanity.
    "sanity_checks",
}


@pytest.mark.parametrize("experiment", [pytest.param(e, marks=pytest.mark.slow) if e in SLOW_FIRST_JOBS else e
                                        for e in EXPERIMENTS])
def test_first_sweep_job_runs_in_debug_mode(experiment, tmp_path, request, debug_data, monkeypatch):
    jobs = _jobs(experiment)
    params = OmegaConf.select(OmegaConf.load(CONF_DIR / "experiment" / f"{experiment}.yaml"), "hydra.sweeper.params")
    first = {f"{key}={str(values).split(',')[0].strip()}" for key, values in (params or {}).items()}
    assert first <= set(jobs[0])  # the first value of every swept parameter
    _run_job(experiment, jobs[0], tmp_path, request, debug_data, monkeypatch, cli=experiment in CLI)


@pytest.mark.parametrize("variant", sorted(DOCUMENTED_VARIANTS))
def test_documented_variant_runs_in_debug_mode(variant, tmp_path, request, debug_data, monkeypatch):
    experiment, overrides = DOCUMENTED_VARIANTS[variant]
    _run_job(experiment, _jobs(experiment, overrides)[0], tmp_path, request, debug_data, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_sweep_job_runs_in_debug_mode(experiment, tmp_path, request, debug_data, monkeypatch):
    statuses, failures = {}, {}
    for job in _jobs(experiment):
        name = " ".join(o for o in job if not o.startswith("experiment="))
        try:  # every job is tried; the failures are reported together
            statuses[name] = _run_job(experiment, job, tmp_path, request, debug_data, monkeypatch)["status"]
        except Exception as err:  # noqa: BLE001
            failures[name] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    known = {job: failures.pop(job) for job, needle in KNOWN_BROKEN.get(experiment, {}).items()
             if needle in failures.get(job, "")}
    assert not failures, "\n".join(f"{k}: {v}" for k, v in failures.items())
    assert "finished" in statuses.values(), statuses
    fixed = sorted(set(KNOWN_BROKEN.get(experiment, {})) - set(known))
    assert not fixed, f"now run (remove them from KNOWN_BROKEN): {fixed}"
    if known:
        pytest.xfail("; ".join(f"{k}: {v}" for k, v in known.items()))
