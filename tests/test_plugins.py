"""Plugins: the example module of docs/own_model_data_method.md runs from the command line; a module
that does not import is an error naming it and the exception."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.plugins import PluginError, load_plugins, plugins_on_command_line

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "own_model_data_method.md"


def example_module() -> str:
    """The doc's plugin example (its one Python block under the plugins heading)."""
    section = DOC.read_text().split("## Your own method, metric or model (plugins)", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the plugins section has one example module"
    return blocks[0]


def _cli(args, tmp_path, cache):
    env = {**os.environ, "BENCHMARK_CACHE": str(cache), "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    return subprocess.run([sys.executable, "-m", "benchmark", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)


def test_the_documented_plugin_runs_from_the_command_line(tiny_synthetic, tmp_path):
    (tmp_path / "my_explainers.py").write_text(example_module())
    results = tmp_path / "results"
    common = [f"paths.results={results}", "experiment_name=plugin", "dataset.limit=3", "model=toy_gap",
              "progress=false"]
    out = _cli(["plugins=[my_explainers]", "method=input_x_gradient", "method.options.absolute=false", *common],
               tmp_path, tiny_synthetic)
    assert out.returncode == 0, out.stderr[-4000:]
    (summary_file,) = results.glob("runs/plugin/toy_gap/input_x_gradient/synthetic_val/localization-*/summary.json")
    summary = json.loads(summary_file.read_text())
    assert summary["status"] == "finished" and summary["counts"]["records"] == 3
    assert summary["config"]["plugins"] == ["my_explainers"]
    assert summary["config"]["method"]["options"] == {"absolute": False}
    # an option the plugin's method does not declare: an error listing the declared one
    out = _cli(["plugins=[my_explainers]", "method=input_x_gradient", "method.options.absolut=false", *common],
               tmp_path, tiny_synthetic)
    assert out.returncode != 0 and "unknown option(s) 'absolut' (did you mean 'absolute'?)" in out.stderr


def test_a_plugin_module_that_does_not_import_names_the_module_and_the_exception(tiny_synthetic, tmp_path):
    (tmp_path / "broken_plugin.py").write_text("import torch\nraise RuntimeError('weights file missing')\n")
    out = _cli(["plugins=[broken_plugin]", f"paths.results={tmp_path / 'results'}", "dataset.limit=1"], tmp_path,
               tiny_synthetic)
    assert out.returncode != 0
    assert ("config field 'plugins': module 'broken_plugin' could not be imported: RuntimeError: weights file "
            "missing") in out.stderr
    with pytest.raises(PluginError, match=r"module 'no_such_plugin_module' could not be imported: "
                                          r"ModuleNotFoundError: No module named 'no_such_plugin_module'"):
        load_plugins(["no_such_plugin_module"])
    assert not (tmp_path / "results").exists()


def test_plugins_are_read_from_hydra_arguments():
    assert plugins_on_command_line(["-m", "plugins=[a.b,c]", "method=x"]) == ["a.b", "c"]
    assert plugins_on_command_line(["++plugins=a", "dataset.limit=3"]) == ["a"]
    assert plugins_on_command_line(["method=grad_cam", "plugins_extra=1"]) == []
