"""Protocol cards: which protocol produced each published number (DESIGN 5).

A card is ``results/reference/cards/<id>.yaml`` with exactly the keys of ``FIELDS``; every row of
a reference CSV names its card in the column ``card``. ``load_card`` reads and checks one card,
``load_cards`` a folder of them, ``check_reference_csv`` the ``card`` column of one CSV (every row
names an existing valid card); ``card_notes`` gives the table notes ("card id: summary").
Bad input is an error naming the file, the field and what was expected.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import yaml

from benchmark.paths import REPO_ROOT

CARDS_DIR = REPO_ROOT / "results" / "reference" / "cards"
TEXT_FIELDS = ("id", "summary", "source", "pipeline", "rule", "upsampling", "model", "dataset", "provenance", "reason")
CHOICES = {
    "crops": ("1", "10", "unknown"),
    "map_normalization": ("max", "minmax", "none", "n/a", "unknown"),
    "reproduction": ("in_meaning", "approximate", "not_reproducible"),
}
FIELDS = (*TEXT_FIELDS, *CHOICES, "reproduced_by", "settings")
ID_PATTERN = re.compile(r"[a-z0-9_]+")
SUMMARY_MAX = 100


class CardError(ValueError):
    """A protocol card or a reference CSV's ``card`` column breaks the format."""


def load_card(path: Path) -> dict:
    """Read and validate one card file; returns its mapping."""
    path = Path(path)
    try:
        card = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise CardError(f"{path}: cannot read the card ({err})") from None
    if not isinstance(card, dict):
        raise CardError(f"{path}: expected a mapping of the fields {', '.join(FIELDS)}")
    missing, extra = [f for f in FIELDS if f not in card], sorted(set(card) - set(FIELDS))
    if missing or extra:
        raise CardError(f"{path}: fields missing {missing}, unexpected {extra}; expected exactly {list(FIELDS)}")
    for f in TEXT_FIELDS:
        if not isinstance(card[f], str):
            raise CardError(f"{path}: field {f!r} is {card[f]!r}; expected a string")
    for f, choices in CHOICES.items():
        if card[f] not in choices:
            raise CardError(f"{path}: field {f!r} is {card[f]!r}; expected one of {list(choices)}")
    if card["id"] != path.stem or not ID_PATTERN.fullmatch(card["id"]):
        raise CardError(f"{path}: field 'id' is {card['id']!r}; expected the file stem {path.stem!r} ([a-z0-9_]+)")
    if not card["summary"].strip() or len(card["summary"]) > SUMMARY_MAX or "\n" in card["summary"]:
        raise CardError(f"{path}: field 'summary' must be one non-empty line of at most {SUMMARY_MAX} characters")
    _check_reproduction(path, card)
    return card


def _check_reproduction(path: Path, card: dict) -> None:
    runs, settings = card["reproduced_by"], card["settings"]
    if not isinstance(runs, list) or not all(isinstance(r, str) and r for r in runs):
        raise CardError(f"{path}: field 'reproduced_by' is {runs!r}; expected a list of experiment names")
    if settings is None or not isinstance(settings, dict):
        raise CardError(f"{path}: field 'settings' is {settings!r}; expected a mapping of config overrides")
    if not runs and card["reproduction"] != "not_reproducible":
        raise CardError(f"{path}: field 'reproduced_by' is empty; allowed only when reproduction is not_reproducible")
    if (card["reason"] == "") != (card["reproduction"] == "in_meaning"):
        raise CardError(f"{path}: field 'reason' must be empty exactly when reproduction is in_meaning "
                        f"(reproduction {card['reproduction']!r}, reason {card['reason']!r})")


def load_cards(cards_dir: Path = CARDS_DIR) -> dict[str, dict]:
    """Every card of a folder, validated, by id."""
    return {p.stem: load_card(p) for p in sorted(Path(cards_dir).glob("*.yaml"))}


def check_reference_csv(csv_path: Path, cards: dict[str, dict]) -> list[str]:
    """The card ids of a reference CSV's rows; an error names the file, the row and the bad value."""
    frame = pd.read_csv(csv_path)
    if "card" not in frame:
        raise CardError(f"{csv_path}: no column 'card'; expected the protocol card id of every row")
    ids = []
    for row, value in enumerate(frame["card"], start=2):  # line 1 is the header
        if not isinstance(value, str) or value not in cards:
            raise CardError(f"{csv_path}: line {row}, column 'card' is {value!r}; expected the id of a card in "
                            f"{CARDS_DIR.relative_to(REPO_ROOT)}/")
        ids.append(value)
    return ids


def card_notes(ids, cards: dict[str, dict] | None = None) -> list[str]:
    """One note per distinct card id, in order of first appearance: ``card `id`: summary``."""
    cards = load_cards() if cards is None else cards
    return [f"card `{i}`: {cards[i]['summary']}" for i in dict.fromkeys(ids) if isinstance(i, str) and i in cards]
