"""Whether a column's values fit a property's type, and the mapping keys that read them
(`type:`, a date's `format:`, a number's `number:`), for `init`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from .model import FALSE_WORDS, TRUE_WORDS, NumberFormat, fold
from .numbers import NUMBER_RE, read_number
from .portal import PortalSchema, PropertyInfo

__all__ = ["DISTINCT_CHECKED", "FIT_SHARE", "Fit", "fit_values", "sample"]

DISTINCT_CHECKED = 5000
"""Distinct values of a column `init` reads to tell whether they fit a type."""
FIT_SHARE = 0.9
"""The share of a column's distinct values that must fit a property for `init` to propose
it: fewer, and the column means something else (Shopify's "Type" is no product type)."""
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d-%m-%Y", "%Y/%m/%d")
_TYPES = {
    "number": "number",
    "bool": "bool",
    "date": "date",
    "datetime": "datetime",
    "enumeration": "enumeration",
}
BOOL_WORDS = TRUE_WORDS | FALSE_WORDS
_NUMBER_FORMATS = (
    NumberFormat(),
    NumberFormat(decimal=",", thousands="."),
    NumberFormat(decimal=",", thousands=" "),
    NumberFormat(decimal=".", thousands=","),
    NumberFormat(decimal=".", thousands="'"),
    NumberFormat(decimal=".", thousands=" "),
)
"""The ways of writing numbers `init` recognises, most common first (a sample that fits
several, such as "1.299", takes the first)."""
SHOWN_MISFITS = 2


@dataclass(frozen=True, kw_only=True)
class Fit:
    """The mapping keys a column takes for its property, and what to check about it."""

    fields: tuple[str, ...]
    note: str = ""


def sample(values: pd.Series) -> pd.Series:
    """A column's distinct non-empty values, trimmed (at most DISTINCT_CHECKED)."""
    stripped = values.astype(str).str.strip()
    return pd.Series(stripped[stripped != ""].unique()[:DISTINCT_CHECKED], dtype=object)


def fit_values(values: pd.Series, prop: PropertyInfo, schema: PortalSchema) -> Fit | str:
    """The keys that read `values` as `prop`, or why they do not fit it."""
    seen = sample(values)
    fields = [f"property: {prop.name}"]
    if prop.referenced == "OWNER":
        fields.append("type: owner")
        if schema.client is None or seen.empty:
            return Fit(fields=tuple(fields))
        owners = {fold(w) for w, _ in schema.owners().words}
        return _judge(
            seen, seen.map(lambda v: fold(v) in owners), fields, "name no owner of the portal"
        )
    kind = _TYPES.get(prop.type)
    if kind:
        fields.append(f"type: {kind}")
    if seen.empty or kind is None:
        return Fit(fields=tuple(fields))
    if kind in ("date", "datetime"):
        fmt, fits = _date_reading(seen, kind == "datetime")
        fields += [f'format: "{fmt}"'] if fmt else []
        return _judge(seen, fits, fields, "are not dates")
    if kind == "number":
        line, fits = _number_reading(seen, prop.display_hint)
        fields += [line] if line else []
        return _judge(seen, fits, fields, "are not numbers")
    if kind == "bool":
        return _judge(seen, seen.map(lambda v: fold(v) in BOOL_WORDS), fields, "are not yes/no")
    return _judge(seen, _option_fits(seen, prop), fields, "are none of its options")


def _judge(seen: pd.Series, fits: pd.Series, fields: list[str], what: str) -> Fit | str:
    """The fit when enough values fit (noting those that do not), else why not."""
    misfits = seen[~fits.to_numpy(dtype=bool)]
    shown = ", ".join(f'"{v}"' for v in misfits.head(SHOWN_MISFITS))
    if misfits.empty:
        return Fit(fields=tuple(fields))
    if len(misfits) > (1 - FIT_SHARE) * len(seen):
        return f"values such as {shown} {what}"
    return Fit(fields=tuple(fields), note=f"check: {len(misfits)} values such as {shown} {what}")


def _option_fits(seen: pd.Series, prop: PropertyInfo) -> pd.Series:
    """Each value is an option's label or value (each of several, for a multi-select)."""
    if not prop.options:
        return pd.Series(True, index=seen.index)
    words = {fold(w) for pair in prop.options for w in pair}
    split: Callable[[str], list[str]] = (
        (lambda v: [p for p in v.split(";") if p.strip()]) if prop.multiple else (lambda v: [v])
    )
    return seen.map(lambda v: all(fold(p) in words for p in split(v)))


def _date_reading(seen: pd.Series, with_time: bool) -> tuple[str | None, pd.Series]:
    """The format the most values read with (None: ISO, the default) and which do."""
    # A date alone is a datetime at midnight, so datetime columns try date formats too.
    formats = (
        ["ISO8601", *(f"{f} %H:%M" for f in DATE_FORMATS), *DATE_FORMATS]
        if with_time
        else list(DATE_FORMATS)
    )
    best: tuple[str | None, pd.Series] = (None, pd.Series(False, index=seen.index))
    for fmt in formats:
        fits = pd.to_datetime(seen, format=fmt, errors="coerce").notna()
        if fits.sum() > best[1].sum():
            best = (fmt, fits)
        if fits.all():
            break
    chosen = best[0]
    return (None if chosen in (None, "ISO8601", DATE_FORMATS[0]) else chosen), best[1]


def _number_reading(seen: pd.Series, hint: str) -> tuple[str | None, pd.Series]:
    """The `number:` the values need (None when they are plain) and which values read."""
    plain = seen.str.fullmatch(NUMBER_RE).astype(bool)
    if plain.all():
        return None, plain
    percent = "whole" if seen.str.contains("%", regex=False).any() else None
    best: tuple[str | None, pd.Series] = (None, plain)
    for fmt in _NUMBER_FORMATS:
        fits = seen.map(
            lambda v, f=fmt: read_number(v, f, currency=None, percent=percent) is not None
        )
        if fits.sum() > best[1].sum():
            best = (_number_line(fmt, percent, hint), fits)
        if fits.all():
            break
    return best


def _number_line(fmt: NumberFormat, percent: str | None, hint: str) -> str:
    """The `number:` key for a format."""
    keys = [f'decimal: "{fmt.decimal}"']
    if fmt.thousands:
        keys.append(f'thousands: "{fmt.thousands}"')
    if percent and hint not in ("percentage", "probability"):
        keys.append("percent: whole")
    return f"number: {{{', '.join(keys)}}}"
