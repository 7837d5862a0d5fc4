"""A table as LaTeX that compiles: pandas' Styler escapes every header and cell, booktabs rules.

``to_latex`` formats each cell as the Markdown table shows it (one precision per column), lets
``Styler.format(escape="latex")`` escape ``_ % & # $ { } ~ ^ \\``, then writes the few non-ASCII
symbols the tables use (Δ, θ, ρ, τ, ±, —, ≥, ≤) as math so that pdflatex needs no Unicode setup.
The output is a ``tabular`` with ``\\toprule``/``\\midrule``/``\\bottomrule`` (needs ``\\usepackage{booktabs}``),
preceded by the title and notes as LaTeX comments.
"""

from __future__ import annotations

import pandas as pd

SYMBOLS = {"Δ": r"\ensuremath{\Delta}", "θ": r"\ensuremath{\theta}", "ρ": r"\ensuremath{\rho}",
           "τ": r"\ensuremath{\tau}", "±": r"\ensuremath{\pm}", "—": "--", "–": "--",
           "≥": r"\ensuremath{\geq}", "≤": r"\ensuremath{\leq}", "×": r"\ensuremath{\times}"}


def _symbols(text: str) -> str:
    for char, tex in SYMBOLS.items():
        text = text.replace(char, tex)
    return "".join(c if ord(c) < 128 else "?" for c in text)


def to_latex(table: pd.DataFrame, cell, title: str = "", notes=()) -> str:
    """LaTeX ``tabular`` of ``table``; ``cell(value, column)`` gives the text of each cell."""
    shown = pd.DataFrame({i: [cell(v, c) for v in table[c]] for i, c in enumerate(table.columns)})
    shown.columns = [str(c) for c in table.columns]
    if shown.columns.duplicated().any():
        shown.columns = [f"{c} ({i})" if d else c for i, (c, d) in enumerate(zip(shown.columns, shown.columns.duplicated()))]
    styler = shown.style.hide(axis="index").format(escape="latex").format_index(escape="latex", axis=1)
    body = styler.to_latex(hrules=True, column_format="l" * max(len(shown.columns), 1))
    head = [f"% {line}" for line in [title, *notes] if line]
    return _symbols("\n".join([*head, body]))
