"""Names are data, never paths: a hostile name stops the run before anything is written, anywhere.

Each path-traversal attempt (``..``, an absolute path, ``~``, a NUL byte, 300 characters, unicode)
is tried through the Python API, the CLI and a multirun; the tests watch the whole temporary folder
around the results root (its parent included) and assert that nothing appeared. Names that are plain
path components (``shard-study``, a dotted layer ``features.16``) still run, inside the root.
"""

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import benchmark.run  # noqa: F401  (schemas and resolvers)
from benchmark.evaluate import evaluate
from benchmark.models.base import CONF_DIR
from benchmark.names import OutsideRootError, UnsafeNameError
from benchmark.runs.identity import PATH_NAMES, check_names, run_dir_for

REPO = Path(__file__).resolve().parents[1]
HOSTILE = ["..", "/tmp/abs", "~", "~user", "a\x00b", "x" * 300, "caf\u00e9", "a/../../b", "../x", "", ".hidden"]


def _config(tmp_path: Path, *overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"paths.results={tmp_path / 'results'}", "dataset.limit=2",
                                                       "progress=false", *overrides])
    return OmegaConf.to_container(cfg, resolve=True)


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _set(config: dict, field: str, value) -> dict:
    group, _, key = field.rpartition(".")
    (config[group] if group else config)[key] = value
    return config


@pytest.mark.parametrize("field", PATH_NAMES)
def test_every_path_name_refuses_hostile_values_naming_the_field(field, tmp_path):
    base = _config(tmp_path)
    for value in HOSTILE:
        config = _set(copy.deepcopy(base), field, value)
        with pytest.raises(UnsafeNameError, match=rf"^{field.replace('.', '[.]')}="):
            check_names(config)
        with pytest.raises(UnsafeNameError):
            run_dir_for(config)


@pytest.mark.parametrize("value", ["..", "/tmp/abs", "~", "a\x00b", "y" * 300, "\u00fcber", "shard-1-of-2/.."])
def test_python_api_writes_nothing_for_a_hostile_name(value, tmp_path):
    work = tmp_path / "parent"
    work.mkdir()
    before, base = _tree(tmp_path), _config(work)
    for field in ("experiment_name", "method.label", "dataset.name"):
        config = _set(copy.deepcopy(base), field, value)
        with pytest.raises(UnsafeNameError, match=field):
            evaluate(config)
    assert _tree(tmp_path) == before  # neither the results root nor anything beside or above it
    assert not (work / "results").exists()


def test_a_symlink_out_of_the_results_root_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "results" / "runs").mkdir(parents=True)
    (tmp_path / "results" / "runs" / "leak").symlink_to(outside, target_is_directory=True)
    with pytest.raises(OutsideRootError, match="outside"):
        evaluate(_config(tmp_path, "experiment_name=leak"))
    assert list(outside.iterdir()) == []


def test_plain_names_still_run_inside_the_root(tiny_synthetic, tmp_path):
    """``shard-`` at the start of a name, a dotted layer and a label with ``@`` are plain components."""
    summary = evaluate(_config(tmp_path, "experiment_name=shard-study", "model=toy_vgg", "method.layer=features.16",
                               "method.label=gc+v2@x", "batch_size=2"))
    run = Path(summary["run_dir"])
    assert summary["status"] == "finished"
    assert run.relative_to(tmp_path / "results" / "runs").parts[:3] == ("shard-study", "toy_vgg", "gc+v2@x@features.16")
    assert {p.name for p in tmp_path.iterdir()} == {"results"}


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    cwd = tmp_path / "a" / "b" / "c"  # relative climbs would land in tmp_path, which is watched
    cwd.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    flags = [a for a in args if a.startswith("-")]
    return subprocess.run([sys.executable, "-m", "benchmark", *flags, "dataset.limit=2", "progress=false",
                           f"paths.results={tmp_path / 'a' / 'results'}", *(a for a in args if a not in flags)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args", [
    ("experiment_name=..", "method.label=..", "dataset.name=.."),
    # a fresh interpreter each (~5 s): two more variants of the same check run with the slow tests
    pytest.param(("experiment_name={tmp}/abs_dir/ABS",), marks=pytest.mark.slow),
    ("-m", "experiment_name=../../../MR"),
    pytest.param(("-m", "experiment_name=ok", "method.label=../../../../x,grad_cam"), marks=pytest.mark.slow),
], ids=["dotdot", "absolute", "multirun-sweep-dir", "multirun-job"])
def test_cli_and_multirun_write_nothing_for_a_hostile_name(args, tmp_path):
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    before = _tree(tmp_path)
    out = _cli(tmp_path, *(arg.format(tmp=tmp_path) for arg in args))
    assert out.returncode != 0
    assert "is not a valid name" in out.stderr and ("experiment_name=" in out.stderr or "method.label=" in out.stderr)
    new = _tree(tmp_path) - before
    assert new <= {"a/results", "a/results/runs", "a/results/runs/ok", "a/results/runs/ok/multirun.yaml"}, new


def test_a_plugin_entry_with_an_unsafe_name_is_refused(monkeypatch):
    from benchmark import plugins
    from benchmark.methods import METHODS

    monkeypatch.setattr(METHODS, "_items", {**METHODS._items, "../evil": lambda model, info, layer=None: None})
    with pytest.raises(UnsafeNameError, match=r"the name of a method a plugin registered='\.\./evil'"):
        plugins.store_group_entries()
