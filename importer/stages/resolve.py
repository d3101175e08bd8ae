"""Reference stage: cells that name other records by a business key (a SKU, an email, an order
reference) become those records' HubSpot ids, before anything is written.

A reference is a column with `to:` and `by:` (its property gets the id) or an association with
`by:` (its cell lists keys instead of ids). Each distinct key is resolved once:
1. by rows of earlier steps of the same run (a plan): `Known`;
2. by the target's journal: keys an earlier run created or found there;
3. by HubSpot: batch/read on `by` when HubSpot holds it unique (100 keys a request), else
   search with `IN` filters of 100 values, paced under search's own limit, sorted by record id
   and paged to the last result (api/lookup.py).
Keys compare as HubSpot stores them (emails trimmed and lowercased). A key no record has makes
the row invalid, naming the cell (or, with `on_missing: skip`, is left out and the row's message
says so); a key two records have is always invalid, whichever pages of a search the two are on.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ..api.client import HubSpotClient
from ..api.lookup import Finder
from ..core.errors import ConfigError, HubSpotError
from ..core.hubspot import stored_value
from ..core.outcome import Problem, RowIssue
from ..core.prepared import journal_key
from ..core.text import text_series
from ..mapping.model import AssociationSpec, ColumnSpec, Mapping, OnMissing, Reference
from ..sheets.load import Table
from ..state.journal import Journal, RowState
from .validate import Validated

__all__ = ["Known", "Resolver", "cell_keys", "resolve_references", "stored_keys"]

log = logging.getLogger(__name__)

Known = dict[tuple[str, str], dict[str, str | None]]
"""(object type, property) -> key as HubSpot stores it -> record id, from earlier steps of a
plan; None for a row of that step that is invalid or failed (its dependants are invalid)."""


@dataclass
class Resolver:
    """Finds record ids by key: earlier steps, then journals, then HubSpot."""

    client: HubSpotClient | None
    journals: dict[str, Path] = field(default_factory=dict)
    """Object type -> the journal of that type in this portal (if there is one)."""
    known: Known = field(default_factory=dict)
    where_known: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    """(object type, property) -> key -> where the earlier step's row is (`Products!A7`)."""
    prefetched: dict[tuple[str, str], dict[str, list[str]]] = field(default_factory=dict)
    """(object type, property) -> stored key -> ids, looked up before a plan wrote anything."""
    lookups: int = 0
    """Keys asked of HubSpot."""

    def find(self, ref: Reference, keys: Iterable[str]) -> dict[str, list[str] | None]:
        """Stored key -> the ids of the records that have it ([] none; None: the row of an
        earlier step that has it is invalid or failed)."""
        wanted = {stored_value(ref.to, ref.by, k) for k in keys if k}
        found: dict[str, list[str] | None] = {}
        earlier = self.known.get((ref.to, ref.by), {})
        ahead = self.prefetched.get((ref.to, ref.by), {})
        for key in wanted:
            if key in earlier:
                hid = earlier[key]
                found[key] = [hid] if hid else None
            elif key in ahead:
                found[key] = list(ahead[key])
        rest = [k for k in wanted if k not in found]
        path = self.journals.get(ref.to)
        if rest and path is not None and path.exists():
            journal = Journal(path)
            try:
                held = journal.known(journal_key(ref.to, ref.by, k) for k in rest)
            finally:
                journal.close()
            for key in rest:
                row = held.get(journal_key(ref.to, ref.by, key))
                if row is not None and row.state is RowState.SYNCED and row.hubspot_id:
                    found[key] = [row.hubspot_id]
            rest = [k for k in rest if k not in found]
        if rest and self.client is not None:
            finder = Finder(self.client, ref.to, ref.by)
            self.lookups += len(rest)
            answer = finder.find(sorted(rest))
            if answer is None and finder.unserved is not None:
                raise ConfigError(f"could not look {ref.to} up by {ref.by}: {finder.unserved}")
            if answer is None:
                raise HubSpotError(
                    f"could not look {ref.to} up by {ref.by} in HubSpot; nothing was sent"
                )
            for key in rest:
                many = finder.holders.get(key)
                found[key] = sorted(many) if many else ([answer[key]] if key in answer else [])
        for key in wanted:
            found.setdefault(key, [])
        return found


@dataclass
class _Problems:
    """What a sheet's reference cells got wrong, by sheet row: issues (the row is invalid) and
    notes (references left out, with `on_missing: skip`)."""

    table: Table
    resolver: Resolver
    issues: list[RowIssue] = field(default_factory=list)
    notes: dict[int, list[str]] = field(default_factory=dict)

    def add(self, row: int, column: str, key: str, ref: Reference, ids: list[str] | None) -> None:
        """Say what is wrong with `key` in `row`'s `column`, as an issue or a note."""
        if ids is None:
            where = self.resolver.where_known.get((ref.to, ref.by), {}).get(
                stored_value(ref.to, ref.by, key), "an earlier step"
            )
            kind = Problem.DEPENDS_ON
            message = f'the {ref.to} row with {ref.by} "{key}" ({where}) was not imported'
            hint = "fix that row first; this one is sent with it"
        elif len(ids) > 1:
            kind = Problem.AMBIGUOUS
            message = f'{len(ids)} {ref.to} have {ref.by} "{key}" ({", ".join(ids[:5])})'
            hint = f"make {ref.by} unique in HubSpot, or refer by a property that is"
        elif ref.on_missing is OnMissing.SKIP:
            self.notes.setdefault(row, []).append(
                f'{column}: no {ref.to} record has {ref.by} "{key}", so it was left out'
            )
            return
        else:
            kind = Problem.NOT_FOUND
            message = f'no {ref.to} record has {ref.by} "{key}"'
            hint = (
                f"import the {ref.to} first (or in the same plan), fix the key, or set "
                "on_missing: skip to leave such references out"
            )
        self.issues.append(RowIssue.at(self.table, row, column, key, kind, message, hint))


def resolve_references(
    validated: Validated, mapping: Mapping, table: Table, resolver: Resolver
) -> Validated:
    """Replace every key in reference cells with its record's id; a row with a key that no
    record (or more than one) has becomes invalid, with the cell named."""
    columns = [c for c in mapping.columns if c.reference is not None]
    links = [a for a in mapping.associations if a.reference is not None]
    if not columns and not links:
        return validated
    values = validated.values.copy()
    associations = dict(validated.associations)
    problems = _Problems(table, resolver)
    for spec in columns:
        values[spec.property] = _resolved_column(spec, values, resolver, problems)
    for link in links:
        associations[link.column] = _resolved_links(
            link, associations[link.column], values.index.tolist(), resolver, problems
        )
    if not problems.issues and not problems.notes:
        return dataclasses.replace(validated, values=values, associations=associations)
    return _without_invalid(validated, values, associations, problems)


def _resolved_column(
    spec: ColumnSpec, values: pd.DataFrame, resolver: Resolver, problems: _Problems
) -> pd.Series:
    """A reference column's ids, one per row ("" for a blank cell or a key that names no
    single record, which `problems` then says)."""
    ref = spec.reference
    assert ref is not None
    cells = values[spec.property].tolist()
    found = resolver.find(ref, cells)
    out = []
    for row, key in zip(values.index.tolist(), cells, strict=True):
        ids = found.get(stored_value(ref.to, ref.by, key)) if key else []
        if not key:
            out.append("")
        elif ids is not None and len(ids) == 1:
            out.append(ids[0])
        else:
            problems.add(row, spec.column, key, ref, ids)
            out.append("")
    return text_series(pa.array(out, type=pa.large_string()), values.index)


def _resolved_links(
    link: AssociationSpec,
    targets: list[list[str]],
    rows: list[int],
    resolver: Resolver,
    problems: _Problems,
) -> list[list[str]]:
    """An association's target ids per row, each once; a key that names no single record is
    left out, and `problems` says so."""
    ref = link.reference
    assert ref is not None
    found = resolver.find(ref, (k for row_keys in targets for k in row_keys))
    resolved = []
    for row, keys in zip(rows, targets, strict=True):
        ids_of_row = []
        for key in keys:
            ids = found.get(stored_value(ref.to, ref.by, key))
            if ids is not None and len(ids) == 1:
                ids_of_row.append(ids[0])
            else:
                problems.add(row, link.column, key, ref, ids)
        resolved.append(list(dict.fromkeys(ids_of_row)))
    return resolved


def _without_invalid(
    validated: Validated,
    values: pd.DataFrame,
    associations: dict[str, list[list[str]]],
    problems: _Problems,
) -> Validated:
    """The resolved rows less those `problems` made invalid, with its issues and notes added
    to `validated`'s."""
    rows = values.index.tolist()
    bad = {i.row for i in problems.issues}
    keep = ~np.isin(np.array(rows, dtype="int64"), list(bad))
    positions = np.flatnonzero(keep)
    values = values.iloc[positions]
    associations = {name: [t[p] for p in positions.tolist()] for name, t in associations.items()}
    every = sorted([*validated.issues, *problems.issues], key=lambda i: i.row)
    merged_notes = {**validated.notes}
    for row, said in problems.notes.items():
        if row not in bad:
            merged_notes[row] = "; ".join([*filter(None, [merged_notes.get(row)]), *said])
    return Validated(
        values=values,
        associations=associations,
        issues=tuple(every),
        invalid_rows=validated.invalid_rows | frozenset(bad),
        notes=merged_notes,
    )


def stored_keys(cells: pd.Series, object_type: str, prop: str) -> set[str]:
    """A column's keys, trimmed and as HubSpot stores them (emails lowercased); blanks left
    out."""
    trimmed = cells.dropna().astype(str).str.strip()
    return {stored_value(object_type, prop, c) for c in trimmed if c}


def cell_keys(table: Table, mapping: Mapping) -> dict[tuple[str, str], set[str]]:
    """The keys a sheet's reference cells hold, per (object type, property), as HubSpot
    stores them: what a plan looks up before its first write."""
    keys: dict[tuple[str, str], set[str]] = {}
    for column in mapping.columns:
        ref = column.reference
        if ref is not None and column.column in table.frame:
            keys.setdefault((ref.to, ref.by), set()).update(
                stored_keys(table.frame[column.column], ref.to, ref.by)
            )
    for link in mapping.associations:
        ref = link.reference
        if ref is not None and link.column in table.frame:
            for cell in table.frame[link.column].dropna().astype(str):
                parts = (p.strip() for p in cell.split(link.separator))
                keys.setdefault((ref.to, ref.by), set()).update(
                    stored_value(ref.to, ref.by, p) for p in parts if p
                )
    return keys


def known_keys(
    object_type: str, prop: str, frame: pd.DataFrame, ids: dict[int, str | None]
) -> dict[str, str | None]:
    """A finished step's keys (`prop` of its rows, as HubSpot stores them) -> record id, or
    None for rows that were not imported, for the steps that refer to it."""
    out: dict[str, str | None] = {}
    for row, key in zip(frame.index.tolist(), frame[prop].tolist(), strict=True):
        if key:
            out[stored_value(object_type, prop, key)] = ids.get(row)
    return out
