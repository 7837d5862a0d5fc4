"""Every override the documentation shows composes and is accepted as written; a typo'd option is an
error naming it and the accepted ones.

The overrides are read from README.md, docs/*.md, the comments of conf/ and the messages in
benchmark/ (a new one is covered without editing this test): ``method.options.X=V``,
``metric.options.X=V``, ``model.X=V`` and ``dataset.X=V``. An option is composed with a method or
metric that declares it; where the value is concrete (not a placeholder such as ``PATH`` or
``<name>``) the method (on the toy model) or metric is built with it too. The options of the plugin
example in docs/own_model_data_method.md count as declared while its module is loaded.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from benchmark.config import register_configs
from benchmark.evaluate import check_options, load_model
from benchmark.methods import METHODS, build_method
from benchmark.metrics import METRICS, build_metric
from benchmark import plugins
from benchmark.plugins import load_plugins
from benchmark.registry import OptionError

REPO = Path(__file__).resolve().parents[1]
SOURCES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted((REPO / "conf").rglob("*.yaml")),
           *sorted((REPO / "benchmark").rglob("*.py"))]
OVERRIDE = re.compile(r"(?<![\w.$])(\+{0,2})((?:method|metric)\.options\.\w+|(?:model|dataset)\.\w+(?:\.\w+)?)"
                      r"=([^\s`'\"]*)")
PLACEHOLDER = re.compile(r"[<>{}|]|\.\.\.|PATH|DIR|FILE|\bN\b|^/path/|^$|,")


def documented_overrides() -> list[tuple[str, str, str]]:
    """``(where, key, value)`` of every override in the documentation, trailing punctuation removed."""
    found = {}
    for path in SOURCES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for match in OVERRIDE.finditer(line):
                plus, key, value = match.groups()
                value = value.rstrip(".,;:)")
                if plus or (key, value) not in found:  # a '+' anywhere is reported
                    found[(key, value)] = (f"{path.relative_to(REPO)}:{number}", plus)
    return [(where, plus, key, value) for (key, value), (where, plus) in sorted(found.items())]


OVERRIDES = documented_overrides()


@pytest.fixture(scope="module")
def plugin_example(tmp_path_factory):
    """The doc's plugin module, loaded for these tests and removed from the registry afterwards."""
    from test_plugins import example_module

    folder = tmp_path_factory.mktemp("plugin")
    (folder / "my_explainers.py").write_text(example_module())
    sys.path.insert(0, str(folder))
    try:
        load_plugins(["my_explainers"])
        yield
    finally:
        sys.path.remove(str(folder))
        for name in [n for n in METHODS.names() if n not in METHODS_SHIPPED]:
            METHODS._items.pop(name), METHODS._options.pop(name)
        sys.modules.pop("my_explainers", None)
        plugins._loaded.remove("my_explainers")


METHODS_SHIPPED = set(METHODS.names())


def _compose(overrides: list[str]):
    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def _owners(registry, option: str, preferred: str) -> list[str]:
    """The registered entries that declare ``option``, ``preferred`` first when it does."""
    owners = [name for name in registry.names() if option in registry.options(name)[0]]
    # else the library adapters, which pass further keywords on and check them when built (_accepted builds)
    owners = owners or [name for name in registry.names() if registry.options(name)[1]]
    assert owners, f"option {option!r} is declared by no {registry.kind}; known: {registry.names()}"
    return sorted(owners, key=lambda name: name != preferred)


def _accepted(group: str, owner: str, key: str, value: str, tmp_path) -> None:
    """Compose ``group=owner key=value``, check the options and build the method or metric with them."""
    cfg = _compose([f"{group}={owner}", f"{key}={value}"])
    config = OmegaConf.to_container(cfg, resolve=True)
    check_options(config)  # accepted by the declared options
    options = config[group]["options"]
    if group == "metric":
        build_metric(owner, **options)
    elif owner == "precomputed":
        build_method(owner, None, None, **{"root": str(tmp_path), **{k: v for k, v in options.items() if k != "root"}})
    else:
        model, info = load_model(config["model"])
        build_method(owner, model, info, **options)


def test_the_documentation_shows_overrides_of_each_kind():
    keys = {key.split(".")[0] + ("." + key.split(".")[1] if ".options." in key else "") for _, _, key, _ in OVERRIDES}
    assert {"method.options", "metric.options", "model", "dataset"} <= keys
    assert any(key == "method.options.channels_last" for _, _, key, _ in OVERRIDES)


@pytest.mark.parametrize("where,plus,key,value", OVERRIDES, ids=[f"{k}={v}" for _, _, k, v in OVERRIDES])
def test_documented_override_composes_and_is_accepted(where, plus, key, value, tmp_path, monkeypatch, plugin_example):
    monkeypatch.setenv("BENCHMARK_CACHE", str(REPO / ".cache"))
    concrete = not PLACEHOLDER.search(value)
    group, _, option = key.partition(".options.")
    if option:
        assert plus == "", f"{where}: {plus}{key}: the '+' is not needed (options are declared)"
        registry = METHODS if group == "method" else METRICS
        owners = _owners(registry, option, "grad_cam" if group == "method" else "localization")
        if not concrete:  # a placeholder: composes and is declared
            config = OmegaConf.to_container(_compose([f"{group}={owners[0]}", f"{key}=x"]), resolve=True)
            check_options(config)
            return
        errors = []
        for owner in owners:  # the value may be one only some owners accept (box=text: localization_cam)
            try:
                return _accepted(group, owner, key, value, tmp_path)
            except Exception as err:  # noqa: BLE001  (reported below when no owner accepts it)
                errors.append(f"{owner}: {err}")
        pytest.fail(f"{where}: {key}={value} accepted by none of {owners}: {errors}")
    cfg = _compose([f"{key}={value}"] if concrete else [])
    assert OmegaConf.select(cfg, key, default="<absent>") != "<absent>" or key.startswith("model.layers."), \
        f"{where}: {key} is not a config field"


def test_a_typo_in_an_option_names_it_and_the_accepted_ones():
    config = OmegaConf.to_container(_compose(["method.options.reluat=layer"]), resolve=True)
    with pytest.raises(OptionError) as err:
        check_options(config)
    message = str(err.value)
    assert "config field 'method.options' of method 'grad_cam'" in message
    assert "'reluat' (did you mean 'relu_at'?)" in message
    assert "expected options: relu, grad_transform, pooling, backward_relu, counterfactual, relu_at" in message
    config = OmegaConf.to_container(_compose(["metric=pointing", "metric.options.tolerance=10"]), resolve=True)
    with pytest.raises(OptionError, match=r"metric 'pointing': unknown option\(s\) 'tolerance' \(did you mean "
                                          r"'tolerance_px'\?\); expected options: tolerance_px, region"):
        check_options(config)
    with pytest.raises(OptionError, match=r"method 'center'.*'relu'.*none \(the method takes no options\)"):
        check_options({**config, "method": {"name": "center", "options": {"relu": False}}, "metric": {"name": "pointing"}})


def test_a_typo_outside_the_option_nodes_is_still_a_composition_error():
    with pytest.raises(Exception, match="optionz"):
        _compose(["method.optionz.relu=false"])
    with pytest.raises(Exception, match="limt"):
        _compose(["dataset.limt=3"])


def test_library_adapters_pass_further_options_to_the_library_check():
    names, more = METHODS.options("captum_integrated_gradients")
    assert names == ("reduction",) and more  # n_steps etc. are captum's own keywords, checked by the adapter
    assert METHODS.options("grad_cam_no_relu") == METHODS.options("grad_cam")
