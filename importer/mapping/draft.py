"""Draft a mapping from a sheet's header row and the portal's property definitions (`init`)."""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
from dataclasses import dataclass

import pandas as pd

from ..core.errors import ConfigError
from ..core.hubspot import DEFAULT_ASSOCIATION_TYPES
from ..sheets.load import Table
from .model import NumberFormat
from .numbers import read_number
from .portal import PortalSchema, PropertyInfo

__all__ = ["Match", "draft_mapping", "match_columns"]

FUZZY_CUTOFF = 0.85  # typos ("Decription"), not different words ("Product page"/"type")
SAMPLE_ROWS = 200
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d-%m-%Y", "%Y/%m/%d")
_TYPES = {
    "number": "number",
    "bool": "bool",
    "date": "date",
    "datetime": "datetime",
    "enumeration": "enumeration",
}
_TARGET_WORDS = {
    "contact": "contacts",
    "deal": "deals",
    "order": "orders",
    "cart": "carts",
    "company": "companies",
    "line": "line_items",
    "quote": "quotes",
}
_IDS = re.compile(r"\d+(\s*[;,]\s*\d+)*")
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
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


@dataclass(frozen=True, kw_only=True)
class Match:
    column: str
    prop: PropertyInfo
    score: float
    how: str


def _letters(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.casefold())


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.casefold()))


def _score(column: str, prop: PropertyInfo) -> tuple[float, str]:
    best = (0.0, "")
    for kind, target in (("name", prop.name), ("label", prop.label)):
        if column == target:
            return 1.0, f"exact: {kind} {target!r}"
        if _letters(column) and _letters(column) == _letters(target):
            best = max(best, (0.95, f"same letters as the {kind} {target!r}"))
            continue
        words = _words(column)
        if words and words <= _words(target):
            best = max(best, (0.8, f"partial: every word is in the {kind} {target!r}"))
        ratio = difflib.SequenceMatcher(None, _letters(column), _letters(target)).ratio()
        if ratio >= FUZZY_CUTOFF:
            best = max(best, (round(ratio * 0.75, 2), f"fuzzy ({ratio:.0%}): {kind} {target!r}"))
    return best


def match_columns(columns: list[str], schema: PortalSchema) -> list[Match]:
    """The best property for each column; each property used once, surest matches first."""
    scored = []
    for column in columns:
        for prop in schema.writable():
            score, how = _score(column, prop)
            if score > 0:
                scored.append(Match(column=column, prop=prop, score=score, how=how))
    taken_columns: set[str] = set()
    taken_props: set[str] = set()
    matches = []
    for m in sorted(scored, key=lambda m: -m.score):
        if m.column in taken_columns or m.prop.name in taken_props:
            continue
        taken_columns.add(m.column)
        taken_props.add(m.prop.name)
        matches.append(m)
    return matches


def _key(name: str) -> str:
    """A column name as a YAML key: quoted (JSON style, valid YAML) when it needs to be."""
    plain = re.fullmatch(r"[A-Za-z_][\w ().%/-]*", name) and name == name.strip()
    reserved = name.casefold() in {"yes", "no", "true", "false", "on", "off", "null", "y", "n"}
    return name if plain and not reserved else json.dumps(name, ensure_ascii=False)


def _date_format(values: pd.Series, with_time: bool) -> str | None:
    """The first format every sample value parses with; None when ISO covers them."""
    sample = values[values.str.strip() != ""].head(SAMPLE_ROWS).str.strip()
    if sample.empty:
        return None
    # A date alone is a datetime at midnight, so datetime columns try date formats too.
    formats = (
        [*(f"{f} %H:%M" for f in DATE_FORMATS), *DATE_FORMATS] if with_time else list(DATE_FORMATS)
    )
    if with_time and pd.to_datetime(sample, format="ISO8601", errors="coerce").notna().all():
        return None
    for fmt in formats:
        if pd.to_datetime(sample, format=fmt, errors="coerce").notna().all():
            return None if fmt == "%Y-%m-%d" else fmt
    return None


def _number_format(values: pd.Series, hint: str) -> str | None:
    """The `number:` a column's sample needs (None when its numbers are plain): the first
    format every value reads with, currency symbols and percent signs allowed."""
    sample = values[values.str.strip() != ""].head(SAMPLE_ROWS).str.strip()
    if sample.empty or sample.str.fullmatch(_PLAIN_NUMBER).all():
        return None
    percent = "whole" if sample.str.contains("%", regex=False).any() else None
    for fmt in _NUMBER_FORMATS:
        if all(read_number(v, fmt, currency=None, percent=percent) for v in sample):
            keys = [f'decimal: "{fmt.decimal}"']
            if fmt.thousands:
                keys.append(f'thousands: "{fmt.thousands}"')
            if percent and hint not in ("percentage", "probability"):
                keys.append("percent: whole")
            return f"number: {{{', '.join(keys)}}}"
    return None


def _association(column: str, values: pd.Series, object_type: str) -> str | None:
    sample = values[values.str.strip() != ""].head(SAMPLE_ROWS).str.strip()
    if sample.empty or not sample.str.fullmatch(_IDS).all():
        return None
    for word in _words(column):
        to = _TARGET_WORDS.get(word.rstrip("s"))
        type_id = DEFAULT_ASSOCIATION_TYPES.get(object_type, {}).get(to or "")
        if to and type_id:
            sep = (
                ";" if sample.str.contains(";").any() or not sample.str.contains(",").any() else ","
            )
            return (
                f'  - column: {_key(column)}\n    separator: "{sep}"\n    to: {to}\n'
                f"    types:\n      - {{associationCategory: HUBSPOT_DEFINED, "
                f"associationTypeId: {type_id}}}\n"
            )
    return None


def _fields(m: Match, values: pd.Series) -> list[str]:
    """A matched column's keys: its property, its type, and the format its values are in."""
    fields = [f"property: {m.prop.name}"]
    kind = _TYPES.get(m.prop.type)
    if kind:
        fields.append(f"type: {kind}")
    if kind in ("date", "datetime"):
        fmt = _date_format(values, kind == "datetime")
        if fmt:
            fields.append(f'format: "{fmt}"')
    if kind == "number" and (number := _number_format(values, m.prop.display_hint)):
        fields.append(number)
    return fields


def draft_mapping(
    table: Table, schema: PortalSchema, *, source: str, command: str, base_url: str
) -> tuple[str, list[Match], list[str]]:
    """The mapping's YAML text, the matches made, and the columns left unmatched."""
    matches = match_columns(table.columns, schema)
    by_column = {m.column: m for m in matches}
    key = next(
        (m for m in sorted(matches, key=lambda m: table.columns.index(m.column)) if m.prop.unique),
        None,
    )
    lines = [
        f"# Mapping for {source} -> {schema.object_type} at {base_url}",
        f"# drafted by `hubspot-import init` on {dt.date.today().isoformat()}. Each column was "
        "matched to a",
        "# property by name or label; the comment says how sure the match is. Check the fuzzy "
        "and partial",
        f"# ones, then run: {command}",
        f"object_type: {schema.object_type}",
    ]
    if key is not None:
        lines.append(f"key: {_key(key.column)}  # {key.prop.name} has unique values in HubSpot")
    lines.append("columns:")
    associations: list[str] = []
    unmatched: list[str] = []
    for column in table.columns:
        m = by_column.get(column)
        values = table.frame[column]
        if m is None:
            assoc = _association(column, values, schema.object_type)
            if assoc:
                associations.append(assoc)
            else:
                unmatched.append(column)
            continue
        lines.append(f"  {_key(column)}: {{{', '.join(_fields(m, values))}}}  # {m.how}")
    if not matches and not associations:
        raise ConfigError(
            f"no column of {source} is close to a {schema.object_type} property "
            "or holds record ids; check --object, or write the mapping by hand "
            "(see docs/mapping.md)"
        )
    if not matches:
        lines[-1] = "columns: {}  # none matched: map at least one column by hand"
    if associations:
        lines.append("associations:")
        lines += [a.rstrip("\n") for a in associations]
    if unmatched:
        lines.append("# Columns with no close property: map them by hand, or leave them out.")
        for column in unmatched:
            lines.append(f"#   {_key(column)}: <property>")
    return "\n".join(lines) + "\n", matches, unmatched
