"""Errors a user can act on: one block without a traceback on the command line, the same types from Python."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark import errors
from benchmark.config import schema_keys, validated
from benchmark.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def _cli(args, tmp_path, env=None, code=None):
    env = {**{k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}, "BENCHMARK_CACHE": str(REPO / ".cache"),
           "PYTHONUNBUFFERED": "1", **(env or {})}
    command = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "benchmark", *args]
    return subprocess.run([*command, f"paths.results={tmp_path / 'res'}"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


def _one_block(out):
    text = out.stdout + out.stderr
    assert out.returncode == errors.EXIT_USER_ERROR, text[-3000:]
    assert "Traceback" not in text and "An error occurred during Hydra's exception formatting" not in text, text
    assert "Error executing job with overrides" not in text, text  # Hydra's line is held back for a user error
    assert len([line for line in out.stderr.splitlines() if line.strip()]) <= 3, out.stderr
    return text


def test_an_unknown_method_suggests_the_close_one_and_the_plugin_hint(tmp_path):
    text = _one_block(_cli(["method=gradcam"], tmp_path))
    assert "Did you mean 'grad_cam'" in text and "plugins=[" in text
    assert not (tmp_path / "res").exists()


def test_an_unknown_metric_and_key_suggest_the_close_ones(tmp_path):
    assert "Did you mean 'pointing'" in _one_block(_cli(["metric=pointing_gam"], tmp_path))
    assert "Did you mean 'batch_size'" in _one_block(_cli(["bacth_size=4"], tmp_path))


def test_a_sweep_over_experiments_is_refused_before_anything_runs(tmp_path):
    text = _one_block(_cli(["-m", "experiment=demo_layers,demo_ablations", "dataset.limit=10"], tmp_path))
    assert "python -m benchmark -m experiment=demo_layers" in text
    assert not (tmp_path / "res").exists() and not list(tmp_path.iterdir())


@pytest.mark.slow  # loads torch and the registries before the error: ~20 s on a loaded machine
def test_an_option_error_is_one_block_and_verbose_shows_the_traceback(tmp_path):
    args = ["model=toy_vgg", "metric.options.topq=3", "dataset.limit=2"]
    assert "did you mean 'topk'" in _one_block(_cli(args, tmp_path))
    verbose = _cli([*args, "verbose=true"], tmp_path)
    assert verbose.returncode != 0 and "Traceback" in verbose.stderr and "OptionError" in verbose.stderr


@pytest.mark.slow  # loads torch before the weights are checked: ~20 s on a loaded machine
def test_tampered_shipped_weights_are_one_block(tmp_path):
    weights = tmp_path / "weights"
    shutil.copytree(REPO / "benchmark" / "models" / "weights", weights)
    with open(weights / "toy_vgg.pt", "ab") as handle:
        handle.write(b"tampered")
    code = ("import runpy, sys; import benchmark.models.shipped as s; from pathlib import Path; "
            f"s.WEIGHTS_DIR = Path({str(weights)!r}); sys.argv[0] = 'benchmark'; "
            "runpy.run_module('benchmark', run_name='__main__')")
    text = _one_block(_cli(["model=toy_vgg", "dataset.limit=2", "experiment_name=tamper"], tmp_path, code=code))
    assert "WeightsError" in text and "altered or replaced" in text
    assert not list((tmp_path / "res").rglob("*.yaml"))  # the failed job left no folder


def test_user_errors_are_found_inside_wrapping_exceptions():
    from benchmark.data.manifest import ManifestError

    try:
        try:
            raise ManifestError("m.parquet: field 'path' ...")
        except ManifestError as inner:
            raise RuntimeError("interpolation failed") from inner
    except RuntimeError as outer:
        assert isinstance(errors.user_error(outer), ManifestError)
    assert errors.user_error(RuntimeError("a defect")) is None


def test_the_python_api_refuses_unknown_and_missing_keys():
    base = {"model": {"name": "toy_vgg"}, "method": {"name": "grad_cam"}, "metric": {"name": "localization"},
            "dataset": {"name": "d", "root": "/d"}}
    with pytest.raises(ConfigError, match="'bacth_size' does not exist. Did you mean 'batch_size'"):
        validated({**base, "bacth_size": 4})
    with pytest.raises(ConfigError, match="'dataset.root'.*missing"):
        validated({**base, "dataset": {"name": "d"}})
    with pytest.raises(ConfigError, match="seed"):
        validated({**base, "seed": "zero"})
    config = validated(base)
    assert config["seed"] == 0 and config["batch_size"] == 32 and config["method"]["label"] == "grad_cam"
    assert "metric.options" in schema_keys()


def test_equivalent_python_configs_share_one_identity(tmp_path):
    from benchmark.runs.identity import run_dir_for

    base = {"model": {"name": "toy_vgg"}, "method": {"name": "grad_cam"}, "paths": {"results": str(tmp_path)},
            "dataset": {"name": "d", "root": "/d", "generate": "synthetic"}}
    one = validated({**base, "metric": {"name": "localization"}})
    two = validated({**base, "metric": {"name": "localization", "options": {}}, "seed": 0})
    assert run_dir_for(one) == run_dir_for(two)


def test_evaluate_raises_the_same_types_as_the_command_line(tmp_path):
    from benchmark.evaluate import evaluate
    from benchmark.registry import OptionError

    base = {"model": {"name": "toy_vgg"}, "method": {"name": "grad_cam"}, "paths": {"results": str(tmp_path)},
            "dataset": {"name": "synthetic_val", "root": "/nowhere", "generate": "synthetic"}}
    with pytest.raises(ConfigError, match="bacth_size"):
        evaluate({**base, "metric": {"name": "localization"}, "bacth_size": 4})
    with pytest.raises(OptionError, match="topk"):
        evaluate({**base, "metric": {"name": "localization", "options": {"topq": 1}}})
    assert not any(tmp_path.iterdir())


def test_an_unknown_registry_name_is_a_user_error_with_suggestions():
    from benchmark.methods import METHODS
    from benchmark.registry import UnknownEntryError

    with pytest.raises(UnknownEntryError) as err:
        METHODS.get("gradcam")
    assert isinstance(err.value, KeyError) and str(err.value).startswith("unknown method 'gradcam'. Did you mean")
    assert errors.user_error(err.value) is err.value
