"""Validate stage, the sheet's own words for values: the words the mapping or the portal gives
(`values:`, owners, stages) turned into what the property takes, and the unknown ones named."""

from __future__ import annotations

import difflib

import pandas as pd

from ..core.text import Distinct, text_series
from ..mapping.model import ValueMap, fold

__all__ = ["Words", "unknown_word"]


class Words:
    """A column's cells through its ValueMap: each word as the value sent, and which cells
    hold a word the map does not know or refuses (asked once per distinct value)."""

    def __init__(self, values: ValueMap, distinct: Distinct, *, multiple: bool) -> None:
        self.map = values
        self.known = values.folded()
        self.refusals = values.folded_refusals()
        self.distinct = distinct
        self.multiple = multiple

    def word(self, cell: str) -> str | None:
        """What `cell` is sent as: its value in the map; the cell itself where the map is
        not the whole list (an enumeration's options still count); None when unknown."""
        parts = [p.strip() for p in cell.split(";")] if self.multiple else [cell.strip()]
        out = []
        for part in (p for p in parts if p):
            folded = fold(part)
            if folded in self.refusals:
                return None
            value = self.known.get(folded)
            if value is None and self.map.exhaustive:
                return None
            out.append(part if value is None else value)
        return ";".join(out)

    def sent(self, index: pd.Index) -> pd.Series:
        """The cells as the words they stand for ("" where unknown: reported on its own)."""
        mapped = self.distinct.mapped(lambda v: self.word(v) if v else "")
        return text_series(mapped.fill_null(""), index)

    def knows(self, cell: str) -> bool:
        """Whether `cell` is one of the map's own words."""
        return fold(cell) in self.known

    def unknown(self, cell: str) -> bool:
        return bool(cell.strip()) and self.word(cell) is None

    def why(self, cell: str) -> str | None:
        """Why the portal refuses the word `cell` holds, when it does."""
        parts = [p.strip() for p in cell.split(";")] if self.multiple else [cell.strip()]
        return next((self.refusals[fold(p)] for p in parts if fold(p) in self.refusals),
                    None)  # fmt: skip


def unknown_word(cell: str, shown: str, words: Words) -> tuple[str, str]:
    """What is wrong with a word the map does not know (or refuses), and how to fix it."""
    why = words.why(cell)
    if why is not None:
        return f"{shown}: {why}", "give another in the sheet"
    listed = [w for w, _ in words.map.words]
    near = difflib.get_close_matches(cell.strip(), listed, n=len(listed), cutoff=0.0)[:10]
    more = f" (and {len(listed) - 10} more)" if len(listed) > 10 else ""
    if words.map.source == "values" or words.map.source.startswith("values_file"):
        return (
            f"{shown} is not one of the words the mapping's {words.map.source} lists",
            f"use one of: {', '.join(near)}{more}; or add it to {words.map.source}",
        )
    return f"{shown} is not one of {words.map.source}", f"use one of: {', '.join(near)}{more}"
