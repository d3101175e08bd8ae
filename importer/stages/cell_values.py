"""Validate stage, the sheet's own ways of writing values: numbers in a sheet's format
(`1.299,00`, `€ 12`, `15 %`) read as HubSpot's plain decimals, and words the mapping or the
portal gives (`values:`, owners, stages) turned into what the property takes."""

from __future__ import annotations

import difflib
import re
from decimal import Decimal, InvalidOperation

import pandas as pd

from ..core.text import Distinct, text_series
from ..mapping.model import NumberFormat, ValueMap

__all__ = ["CURRENCY_SYMBOLS", "Words", "formatted_number_hint", "read_number", "unknown_word"]

CURRENCY_SYMBOLS = {
    "€": "EUR",
    "£": "GBP",
    "¥": "JPY",
    "$": "USD",
    "US$": "USD",
    "C$": "CAD",
    "A$": "AUD",
    "R$": "BRL",
    "₹": "INR",
    "Fr.": "CHF",
    "zł": "PLN",
}
"""Symbols a price may carry, and the currency each names ("kr" names several)."""
_CURRENCY = r"(?:[A-Z]{3}|US\$|C\$|A\$|R\$|Fr\.|kr\.?|zł|[€£¥$₹])"
_CELL = re.compile(
    rf"(?P<sign>[-+\u2212]?)\s*(?P<pre>{_CURRENCY})?\s*(?P<sign2>[-+\u2212]?)\s*"
    rf"(?P<num>[0-9][0-9.,' \u00a0\u202f\u2009]*?)\s*(?P<pct>%)?\s*(?P<post>{_CURRENCY})?"
)
_PLAIN = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " "})


def read_number(
    cell: str, fmt: NumberFormat, *, currency: str | None, percent: str | None
) -> str | None:
    """`cell` as the plain decimal HubSpot stores, or None when it is not a number written
    the sheet's way. `currency`: the column's (a price in another is refused); `percent`:
    whole or fraction where a percent sign is allowed, None where it is not."""
    m = _CELL.fullmatch(cell.strip())
    if m is None or (m["sign"] and m["sign2"]) or (m["pre"] and m["post"]):
        return None
    code = m["pre"] or m["post"]
    if code is not None:
        named = CURRENCY_SYMBOLS.get(code, code if len(code) == 3 and code.isupper() else None)
        if m["pct"] or (currency is not None and named is not None and named != currency):
            return None
    if m["pct"] and percent is None:
        return None
    plain = _digits(m["num"].translate(_SPACES), fmt)
    if plain is None:
        return None
    if m["pct"] and percent == "fraction":
        plain = format((Decimal(plain) / 100).normalize(), "f")
    sign = "-" if (m["sign"] or m["sign2"]) in ("-", "\u2212") else ""
    return sign + plain


def _digits(text: str, fmt: NumberFormat) -> str | None:
    """The number part in the sheet's separators as a plain decimal, or None."""
    d, t = re.escape(fmt.decimal), re.escape(fmt.thousands)
    grouped = rf"[0-9]{{1,3}}(?:{t}[0-9]{{3}})+|" if fmt.thousands else ""
    if re.fullmatch(rf"(?:{grouped}[0-9]+)(?:{d}[0-9]+)?", text):
        plain = text.replace(fmt.thousands, "") if fmt.thousands else text
        return plain.replace(fmt.decimal, ".")
    # An Excel number cell is read with a dot whatever the sheet's format: "1299.5" cannot
    # be a grouped thousand, so it is that number.
    if _PLAIN.fullmatch(text):
        try:
            Decimal(text)
        except InvalidOperation:
            return None
        return text
    return None


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
            folded = part.casefold()
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

    def unknown(self, cell: str) -> bool:
        return bool(cell.strip()) and self.word(cell) is None

    def why(self, cell: str) -> str | None:
        """Why the portal refuses the word `cell` holds, when it does."""
        parts = [p.strip() for p in cell.split(";")] if self.multiple else [cell.strip()]
        return next((self.refusals[p.casefold()] for p in parts if p.casefold() in self.refusals),
                    None)  # fmt: skip


def formatted_number_hint(
    cell: str, fmt: NumberFormat, currency: str | None, percent: str | None
) -> str:
    """How to write `cell` as a number of this column: the sheet's format, with an example."""
    m = _CELL.fullmatch(cell.strip())
    code = (m["pre"] or m["post"]) if m else None
    named = CURRENCY_SYMBOLS.get(code or "", code) if code else None
    if currency is not None and named is not None and named != currency:
        return (
            f"the column holds prices in {currency}, and this one is in {named}: move it to "
            f"a {named} column (currency: {named}) or convert it"
        )
    if m is not None and m["pct"] and percent is None:
        return (
            "a percent sign fits only a percentage property; write the bare number, or say "
            "number: {percent: whole} (15 % -> 15) or {percent: fraction} (-> 0.15)"
        )
    example = _example(fmt)
    return (
        f"write it as the mapping's number format says (decimal {fmt.decimal!r}"
        + (f", thousands {fmt.thousands!r}" if fmt.thousands else ", no thousands separator")
        + f"), e.g. {example}"
    )


def _example(fmt: NumberFormat) -> str:
    whole = f"1{fmt.thousands}299" if fmt.thousands else "1299"
    return f"{whole}{fmt.decimal}50"


def unknown_word(cell: str, shown: str, words: Words) -> tuple[str, str]:
    """What is wrong with a word the map does not know (or refuses), and how to fix it."""
    why = words.why(cell)
    if why is not None:
        return f"{shown}: {why}", "give another, or correct it in HubSpot and run again"
    listed = [w for w, _ in words.map.words]
    near = difflib.get_close_matches(cell.strip(), listed, n=len(listed), cutoff=0.0)[:10]
    more = f" (and {len(listed) - 10} more)" if len(listed) > 10 else ""
    if words.map.source == "values" or words.map.source.startswith("values_file"):
        return (
            f"{shown} is not one of the words the mapping's {words.map.source} lists",
            f"use one of: {', '.join(near)}{more}; or add it to {words.map.source}",
        )
    return f"{shown} is not one of {words.map.source}", f"use one of: {', '.join(near)}{more}"
