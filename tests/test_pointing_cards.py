"""Every pointing, modified pointing and Table 2 reference row names a protocol card in the shared format."""

from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "results" / "reference"
KEYS = ["id", "summary", "source", "pipeline", "rule", "crops", "map_normalization", "upsampling", "model", "dataset",
        "provenance", "reproduction", "reproduced_by", "settings", "reason"]


@pytest.mark.parametrize("csv", ["pointing.csv", "pointing_modified.csv", "table2_occlusion.csv"])
def test_rows_name_valid_cards(csv):
    rows = pd.read_csv(REFERENCE / csv)
    assert rows["card"].notna().all(), csv
    for card_id in sorted(set(rows["card"])):
        path = REFERENCE / "cards" / f"{card_id}.yaml"
        card = yaml.safe_load(path.read_text())
        assert list(card) == KEYS, path
        assert card["id"] == card_id and len(card["summary"]) <= 100
        assert card["crops"] in ("1", "10", "unknown")
        assert card["map_normalization"] in ("max", "minmax", "none", "n/a", "unknown")
        assert card["reproduction"] in ("in_meaning", "approximate", "not_reproducible")
        assert (card["reason"] == "") == (card["reproduction"] == "in_meaning")
        assert isinstance(card["settings"], dict) and isinstance(card["reproduced_by"], list)
        assert card["reproduced_by"] or card["reproduction"] == "not_reproducible"
        for experiment in card["reproduced_by"]:
            assert (REPO / "conf" / "experiment" / f"{experiment}.yaml").is_file(), (path, experiment)
        assert all(isinstance(card[k], str) for k in KEYS if k not in ("reproduced_by", "settings")), path
