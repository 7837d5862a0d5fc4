"""Protocol cards: every published number names a valid card; the validator names bad fields."""

import pandas as pd
import pytest
import yaml

from benchmark.report.cards import CARDS_DIR, FIELDS, CardError, card_notes, check_reference_csv, load_card, load_cards
from benchmark.models.base import CONF_DIR
from benchmark.report.tables import REFERENCE_DIR

# Reference CSVs whose rows must name a card (extend the list when a CSV gains its `card` column).
REQUIRED_CSVS = ["table1_localization.csv", "table1_reproduction.csv", "table3_ablations.csv", "pointing.csv",
                 "pointing_modified.csv", "table2_occlusion.csv"]


def _experiment_names() -> set[str]:
    """What a card may name: an experiment file (``experiment=<stem>``) or the experiment_name it writes."""
    names = set()
    for path in (CONF_DIR / "experiment").glob("*.yaml"):
        names |= {path.stem, yaml.safe_load(path.read_text()).get("experiment_name", path.stem)}
    return names


@pytest.mark.parametrize("csv", REQUIRED_CSVS)
def test_every_row_of_the_reference_csv_names_an_existing_valid_card(csv):
    cards = load_cards()
    ids = check_reference_csv(REFERENCE_DIR / csv, cards)
    assert len(ids) == len(pd.read_csv(REFERENCE_DIR / csv)) > 0


def test_every_card_is_valid_and_names_existing_experiments():
    cards = load_cards()
    assert cards, f"no cards in {CARDS_DIR}"
    experiments = _experiment_names()
    for card_id, card in cards.items():
        assert set(card) == set(FIELDS)
        assert set(card["reproduced_by"]) <= experiments, (card_id, card["reproduced_by"])


def _write(tmp_path, **changes):
    card = yaml.safe_load((CARDS_DIR / "t1_vgg16_grad_cam.yaml").read_text())
    card.update(changes)
    path = tmp_path / f"{card['id']}.yaml"
    path.write_text(yaml.safe_dump(card))
    return path


def test_a_card_with_a_bad_field_is_an_error_naming_file_and_field(tmp_path):
    assert load_card(_write(tmp_path))["crops"] == "1"
    with pytest.raises(CardError, match=r"t1_vgg16_grad_cam.yaml: field 'crops' is '3'"):
        load_card(_write(tmp_path, crops="3"))
    with pytest.raises(CardError, match="field 'summary'"):
        load_card(_write(tmp_path, summary="x" * 101))
    with pytest.raises(CardError, match="field 'id' is 'other'"):
        load_card(_write(tmp_path, id="other").rename(tmp_path / "t1_vgg16_grad_cam.yaml"))
    with pytest.raises(CardError, match="field 'reason' must be empty"):
        load_card(_write(tmp_path, reproduction="in_meaning"))
    with pytest.raises(CardError, match="field 'reproduced_by' is empty"):
        load_card(_write(tmp_path, reproduced_by=[]))
    path = _write(tmp_path)
    path.write_text(path.read_text() + "extra: 1\n")
    with pytest.raises(CardError, match=r"unexpected \['extra'\]"):
        load_card(path)


def test_a_reference_row_without_a_known_card_is_an_error_naming_the_line(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("method,value,card,source\na,1,t1_vgg16_grad_cam,s\nb,2,nope,s\n")
    with pytest.raises(CardError, match=r"t.csv: line 3, column 'card' is 'nope'"):
        check_reference_csv(csv, load_cards())
    (tmp_path / "u.csv").write_text("method,value,source\na,1,s\n")
    with pytest.raises(CardError, match="no column 'card'"):
        check_reference_csv(tmp_path / "u.csv", load_cards())


def test_card_notes_once_per_card_in_order():
    cards = load_cards()
    notes = card_notes(["t3_vgg16_ablations", "t1_vgg16_grad_cam", "t3_vgg16_ablations", None], cards)
    assert notes == [f"card `t3_vgg16_ablations`: {cards['t3_vgg16_ablations']['summary']}",
                     f"card `t1_vgg16_grad_cam`: {cards['t1_vgg16_grad_cam']['summary']}"]
