"""The W&B workspace is built offline: one section per paper table, bar plots grouped by method."""

import pandas as pd
import pytest
import wandb_workspaces.workspaces as ws

from benchmark.metrics import METRICS, build_metric
from benchmark.tracking import dashboard


def test_workspace_has_one_section_per_table_with_grouped_bars():
    workspace = dashboard.build_workspace("my-team", "gradcam-benchmark")
    assert isinstance(workspace, ws.Workspace)
    assert (workspace.entity, workspace.project) == ("my-team", "gradcam-benchmark")
    titles = [s.name for s in workspace.sections]
    assert [t.split(":")[0] for t in titles[:3]] == ["Table 1", "Table 2", "Table 3"]
    assert "Pointing game" in titles[3] and "Modified pointing" in titles[4] and len(titles) == 5
    table1 = workspace.sections[0].panels
    assert table1[0].metrics == ["localization/loc_err_top1", "localization/loc_err_top5"]
    grouped = [p for s in workspace.sections for p in s.panels if p.groupby is not None]
    assert grouped and all(p.groupby.name == "method.label" and p.groupby_aggfunc == "mean" for p in grouped)
    # serializes to the app's view spec without any network access
    spec = workspace._to_model().model_dump(by_alias=True, exclude_none=True)["spec"]["section"]
    sections = spec["panelBankConfig"]["sections"]
    assert [s["name"] for s in sections] == titles
    assert sections[0]["panels"][0]["viewType"] == "Bar Chart"
    assert sections[0]["panels"][0]["config"]["groupBy"] == "method.value.label"


def test_views_name_registered_metrics_and_localization_keys_exist():
    for view in dashboard.TABLES:
        assert view.metric in METRICS, view.metric
    # the Table 1/3 keys are what the localization metric's aggregate returns (one image, hand-made record)
    record = pd.DataFrame([{"image_id": "a", "class_id": 3, "iou": 0.6, "cls_correct_top1": True,
                            "cls_correct_top5": True, "gt_known_correct": True, "loc_correct_top1": True,
                            "loc_correct_top5": True, "degenerate": False, "has_box": True, "blacklisted": False}])
    produced = set(build_metric("localization").aggregate(record))
    for view in dashboard.TABLES:
        if view.metric == "localization":
            for _, names in view.plots:
                assert set(names) <= produced, set(names) - produced


def test_cli_saves_only_with_flag(monkeypatch, capsys):
    saved = []
    monkeypatch.setattr(ws.Workspace, "save", lambda self: saved.append(self.name) or self)
    monkeypatch.setattr(ws.Workspace, "url", property(lambda self: "https://wandb.example/view"))
    only_table1 = "Config('experiment_name') == 'table1'"
    workspace = dashboard.main(["--entity", "e", "--project", "p", "--filter", only_table1])
    assert saved == [] and "not saved" in capsys.readouterr().out
    leaf = workspace._to_model().spec.section.run_sets[0].filters["filters"][0]
    assert (leaf["key"], leaf["value"]) == ({"section": "config", "name": "experiment_name"}, "table1")
    dashboard.main(["--entity", "e", "--project", "p", "--name", "Table 1 view", "--save"])
    assert saved == ["Table 1 view"] and "saved: https://wandb.example/view" in capsys.readouterr().out


def test_cli_requires_entity_and_project():
    with pytest.raises(SystemExit):
        dashboard.main(["--project", "p"])
