"""Columns matched to properties for `init`: by property name, by label, by the words common
exports use (`export_words`), by whole words, and allowing a typo; each property once, the
surest match first, and only where the column's values fit the property's type."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import pandas as pd

from .export_words import UNMAPPED_WHY, ExportWord, detect_export, export_words, letters
from .model import fold
from .portal import PortalSchema, PropertyInfo
from .values_fit import Fit, fit_values

__all__ = ["Match", "Matching", "match_columns", "nearest"]

SURE = 0.99
"""A header the sheet's own export uses for the property."""
EXACT_LABEL = 0.97
SAME_LETTERS = 0.95
LIKELY = 0.9
"""A header another export uses for the property."""
PARTIAL = 0.8
_GENERIC = frozenset({"name", "date", "id", "number", "no", "time", "text"})
"""Words that alone name no property: a header of these alone is no partial match."""
FUZZY_CUTOFF = 0.85  # typos ("Decription"), not different words ("Product page"/"type")
FUZZY_WEIGHT = 0.75
SHOWN_NEAREST = 3


@dataclass(frozen=True, kw_only=True)
class Match:
    """A column and the property it is drafted to, how sure, and the mapping keys it takes."""

    column: str
    prop: PropertyInfo
    score: float
    how: str
    fields: tuple[str, ...] = ()
    note: str = ""
    """What the values showed that the user should look at (a few values that do not fit)."""


@dataclass(frozen=True, kw_only=True)
class _Candidate:
    column: str
    prop: PropertyInfo
    score: float
    how: str
    rank: int = 0
    """Among equally sure candidates, the lower goes first (an export's preferred header)."""


@dataclass(frozen=True, kw_only=True)
class Matching:
    """The matches, why a column's closest property was not proposed, and the export."""

    matches: list[Match]
    refused: dict[str, str] = field(default_factory=dict)
    export: str | None = None


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.casefold()))


def _by_target(target: str, props: list[PropertyInfo]) -> PropertyInfo | None:
    """The property an export word's target names: by internal name, else by label."""
    by_name = next((p for p in props if p.name == target), None)
    if by_name is not None:
        return by_name
    return next((p for p in props if letters(p.label) == letters(target)), None)


def _export_candidates(
    column: str, words: list[ExportWord], export: str | None, props: list[PropertyInfo]
) -> Iterator[_Candidate]:
    """The properties the exports' words for `column` name: sure when the sheet's own export
    uses the header, likely when another does (and no export says it means nothing)."""
    own = [w for w in words if w.export == export]
    if not own and any(not w.targets for w in words):
        return
    for word in own or words:
        sure = word.export == export
        for alternative, target in enumerate(word.targets):
            prop = _by_target(target, props)
            if prop is not None:
                how = f'{word.export}\'s "{word.header}" ({"sure" if sure else "likely"})'
                score = SURE if sure else LIKELY
                yield _Candidate(
                    column=column, prop=prop, score=score, how=how, rank=word.rank + alternative
                )


def _text_candidate(column: str, prop: PropertyInfo, loose: bool) -> _Candidate | None:
    """The property by its name or label: exact, same letters, and when `loose`, every word
    of the header in it or a typo away."""
    if column == prop.name:
        return _Candidate(column=column, prop=prop, score=1.0, how=f'name "{prop.name}" (exact)')
    if column == prop.label:
        return _Candidate(
            column=column, prop=prop, score=EXACT_LABEL, how=f'label "{prop.label}" (exact)'
        )
    best: _Candidate | None = None
    for kind, target in (("label", prop.label), ("name", prop.name)):
        if letters(column) and letters(column) == letters(target):
            found: tuple[float, str] | None = (SAME_LETTERS, f'{kind} "{target}" (same letters)')
        else:
            found = _loose_score(column, kind, target) if loose else None
        if found and (best is None or found[0] > best.score):
            best = _Candidate(column=column, prop=prop, score=found[0], how=found[1])
    return best


def _loose_score(column: str, kind: str, target: str) -> tuple[float, str] | None:
    """Every word of the header in the target, or a typo away from it."""
    words = _words(column)
    # One generic word ("Name", "Date", "ID") is part of too many labels to mean one of them:
    # a full name is no first name.
    if words and words <= _words(target) and not (words <= _GENERIC):
        return PARTIAL, f'words of the {kind} "{target}" (partial: check)'
    ratio = difflib.SequenceMatcher(None, letters(column), letters(target)).ratio()
    if ratio >= FUZZY_CUTOFF:
        return round(
            ratio * FUZZY_WEIGHT, 2
        ), f'fuzzy {round(ratio * 100)} %: {kind} "{target}" (check)'
    return None


def _candidates(
    column: str, props: list[PropertyInfo], object_type: str, export: str | None
) -> list[_Candidate]:
    """Every property `column` may be, surest first."""
    words = export_words(column, object_type)
    # A header the sheet's export says means nothing in HubSpot is matched exactly or not
    # at all: "Type" is not the product type, "Stock" not a custom "In stock".
    loose = not any(w.export == export and not w.targets for w in words)
    if any((w.export, w.header) in UNMAPPED_WHY for w in words if w.export == export):
        return []  # looks like a property, and is not it: Shopify's Image Src, an Address
    found = list(_export_candidates(column, words, export, props))
    for prop in props:
        candidate = _text_candidate(column, prop, loose)
        if candidate is not None:
            found.append(candidate)
    return found


def match_columns(columns: list[str], frame: pd.DataFrame, schema: PortalSchema) -> Matching:
    """The best property for each column; each property used once, surest matches first,
    and only where the column's values fit the property's type."""
    props = schema.writable()
    export = detect_export(columns, schema.object_type)
    scored = [
        c for column in columns for c in _candidates(column, props, schema.object_type, export)
    ]
    order = {c: i for i, c in enumerate(columns)}
    scored.sort(key=lambda c: (-c.score, c.rank, order[c.column]))
    matches, refused = _assign(scored, frame, schema)
    taken_columns = {m.column for m in matches}
    for column in columns:
        if column not in taken_columns and column not in refused:
            said = _said_none(column, schema, export)
            if said:
                refused[column] = said
    return Matching(matches=matches, refused=refused, export=export)


def _assign(
    scored: list[_Candidate], frame: pd.DataFrame, schema: PortalSchema
) -> tuple[list[Match], dict[str, str]]:
    """Each column its surest candidate whose property is free and whose values fit it; and
    for a column left out, why its closest candidate was not taken."""
    taken_columns: set[str] = set()
    taken_props: dict[str, str] = {}
    matches: list[Match] = []
    refused: dict[str, str] = {}
    for c in scored:
        if c.column in taken_columns:
            continue
        if c.prop.name in taken_props:
            if c.score >= LIKELY:  # a close second: say which column has its property
                why = f"{c.prop.name} is mapped from {taken_props[c.prop.name]!r}"
                refused.setdefault(c.column, why)
            continue
        fit = fit_values(frame[c.column], c.prop, schema)
        if isinstance(fit, str):
            refused.setdefault(c.column, f"not {c.prop.name}: {fit}")
            continue
        taken_columns.add(c.column)
        taken_props[c.prop.name] = c.column
        matches.append(_match(c, fit))
    return matches, refused


def _match(c: _Candidate, fit: Fit) -> Match:
    return Match(
        column=c.column, prop=c.prop, score=c.score, how=c.how, fields=fit.fields, note=fit.note
    )


def _said_none(column: str, schema: PortalSchema, export: str | None) -> str:
    """Why a column the sheet's export names has no property: it means none in HubSpot, or
    one this portal does not have (a brand)."""
    for word in export_words(column, schema.object_type):
        if word.export != export:
            continue
        if not word.targets:
            why = UNMAPPED_WHY.get((export, word.header))
            return f'{export}\'s "{word.header}" {why or "has no HubSpot default property"}'
        means = " or ".join(word.targets)
        if any(t in schema.properties for t in word.targets):
            return f'{export}\'s "{word.header}" is {means}, which HubSpot sets itself'
        return f'{export}\'s "{word.header}" means {means}, which this portal does not have'
    return ""


def nearest(column: str, schema: PortalSchema, taken: set[str]) -> list[str]:
    """The writable properties closest to `column` by name or label (not taken ones)."""
    scored = []
    for prop in schema.writable():
        if prop.name in taken:
            continue
        ratio = max(
            difflib.SequenceMatcher(None, fold(column), fold(target)).ratio()
            for target in (prop.name, prop.label)
        )
        shared = len(_words(column) & (_words(prop.label) | _words(prop.name)))
        scored.append((shared, ratio, prop.name))
    scored.sort(key=lambda s: (-s[0], -s[1], s[2]))
    return [name for _, _, name in scored[:SHOWN_NEAREST]]
