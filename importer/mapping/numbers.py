"""Numbers as a sheet writes them (`1.299,00`, `€ 12`, `15 %`, a mapping's `number:`) read
as the plain decimals HubSpot stores, and how to write one that cannot be read."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from .model import NumberFormat

__all__ = [
    "CURRENCY_SYMBOLS",
    "NUMBER_RE",
    "formatted_number_hint",
    "read_number",
]

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
"""Symbols a price may carry, and the currency each names."""
_SHARED_SYMBOLS = {"kr": frozenset({"SEK", "DKK", "NOK", "ISK"}), "kr.": frozenset({"DKK", "ISK"})}
"""Symbols several currencies use: a price column of one of them takes it."""
_CURRENCY = r"(?:[A-Z]{3}|US\$|C\$|A\$|R\$|Fr\.|kr\.?|zł|[€£¥$₹])"
_CELL = re.compile(
    rf"(?P<sign>[-+\u2212]?)\s*(?P<pre>{_CURRENCY})?\s*(?P<sign2>[-+\u2212]?)\s*"
    rf"(?P<num>[0-9][0-9.,' \u00a0\u202f\u2009]*?)\s*(?P<pct>%)?\s*(?P<post>{_CURRENCY})?"
)
NUMBER_RE = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
"""A plain number: what a number column takes without `number:`, and how an Excel number
cell reads (a dot as decimal point, maybe an exponent; ASCII digits only: HubSpot refuses
others)."""
_PLAIN = re.compile(NUMBER_RE)
_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " "})


def read_number(
    cell: str,
    fmt: NumberFormat,
    *,
    currency: str | None,
    percent: str | None,
    excel: bool = False,
) -> str | None:
    """`cell` as the plain decimal HubSpot stores, or None when it is not a number written
    the sheet's way. `currency`: the column's (a price in another is refused); `percent`:
    whole or fraction where a percent sign is allowed, None where it is not; `excel`: the
    sheet is a workbook, whose number cells read with a dot whatever its format."""
    text = cell.strip()
    m = _CELL.fullmatch(text)
    if m is None or (m["sign"] and m["sign2"]) or (m["pre"] and m["post"]):
        return _excel_number(text) if excel or fmt.decimal == "." else None
    code = m["pre"] or m["post"]
    if code is not None and (m["pct"] or not _same_currency(code, currency)):
        return None
    if m["pct"] and percent is None:
        return None
    plain = _digits(m["num"].translate(_SPACES), fmt)
    if plain is None and (excel or fmt.decimal == ".") and not (code or m["pct"]):
        return _excel_number(text)
    if plain is None:
        return None
    if m["pct"] and percent == "fraction":
        plain = format((Decimal(plain) / 100).normalize(), "f")
    sign = "-" if (m["sign"] or m["sign2"]) in ("-", "\u2212") else ""
    return sign + plain


def _same_currency(code: str, currency: str | None) -> bool:
    """Whether a cell's currency symbol or code may stand in a column of `currency` (any,
    where the column names none)."""
    if currency is None:
        return True
    if code in _SHARED_SYMBOLS:
        return currency in _SHARED_SYMBOLS[code]
    named = CURRENCY_SYMBOLS.get(code, code if len(code) == 3 and code.isupper() else None)
    return named is None or named == currency


def _digits(text: str, fmt: NumberFormat) -> str | None:
    """The number part in the sheet's separators as a plain decimal, or None. A group of
    thousands never starts with 0, so "0.125" is not 125 whatever the separators."""
    d, t = re.escape(fmt.decimal), re.escape(fmt.thousands)
    grouped = rf"[1-9][0-9]{{0,2}}(?:{t}[0-9]{{3}})+|" if fmt.thousands else ""
    if re.fullmatch(rf"(?:{grouped}[0-9]+)(?:{d}[0-9]+)?", text):
        plain = text.replace(fmt.thousands, "") if fmt.thousands else text
        return plain.replace(fmt.decimal, ".")
    return None


def _excel_number(text: str) -> str | None:
    """A number as Excel's number cells read ("1299.5", "1.5E-05") as a plain decimal:
    such a cell of a workbook is that number whatever the sheet's format says."""
    if not _PLAIN.fullmatch(text):
        return None
    try:
        return format(Decimal(text), "f")
    except InvalidOperation:
        return None


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
