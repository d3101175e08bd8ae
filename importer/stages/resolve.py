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
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ..api.client import HubSpotClient
from ..api.lookup import DEFAULT_SEARCH_SETTLE, Finder
from ..api.reads import read_batch
from ..core.errors import ConfigError, HubSpotError, HubSpotImportError
from ..core.hubspot import MERGED_IDS, chunks, stored_number, stored_value
from ..core.outcome import Problem, RowIssue
from ..core.prepared import journal_key
from ..core.text import text_series
from ..mapping.model import AssociationSpec, ColumnSpec, Mapping, OnMissing, Reference
from ..mapping.portal import read_schema
from ..sheets.load import Table
from ..state.journal import Journal, RowState
from .validate import Validated

__all__ = [
    "Known",
    "NumberProperties",
    "Resolver",
    "cell_keys",
    "reference_key",
    "resolve_references",
    "stored_keys",
]

log = logging.getLogger(__name__)


Known = dict[tuple[str, str], dict[str, str | None]]
"""(object type, property) -> key as HubSpot stores it -> record id, from earlier steps of a
plan; None for a row of that step that is invalid or failed (its dependants are invalid)."""

NumberProperties = dict[str, frozenset[str]]
"""Object type (as a mapping names it) -> the number properties it is known to have."""


def reference_key(to: str, by: str, key: str, numbers: NumberProperties | None = None) -> str:
    """A reference's key as HubSpot stores it: a number property's (one of `numbers`) as the
    number HubSpot holds (`007`, `7.0` -> `7`), any other as `stored_value` has it (`007` and
    `7` are two text keys)."""
    value = stored_value(to, by, key)
    if numbers is not None and by in numbers.get(to, ()):
        return stored_number(value.strip())
    return value


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
    settle: float = DEFAULT_SEARCH_SETTLE
    """Seconds HubSpot's search may lag a write: a key search does not find is searched for
    again once the first search is this old, before it is called missing."""
    lookups: int = 0
    """Keys asked of HubSpot."""
    gone: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    """(object type, property) -> stored key -> the id a journal held for it that HubSpot no
    longer holds (deleted or archived): the key was looked up in HubSpot instead."""
    numbers: NumberProperties = field(default_factory=dict)
    """Object type -> number properties known (a plan's checked mappings). A type's other
    properties are told by its definitions, read once, and only when a key is written as a
    number in a form HubSpot would store otherwise (`007`, `8.0`)."""
    _defined: set[str] = field(default_factory=set, init=False, repr=False)
    """The object types whose definitions were read into `numbers`."""

    def stored(self, ref: Reference, key: str) -> str:
        """`key` of `ref` as HubSpot stores it (`reference_key`); a number property's as the
        number, so that `8` finds the record a run wrote `8.0` to."""
        value = stored_value(ref.to, ref.by, key)
        if stored_number(value.strip()) == value or ref.by in self.numbers.get(ref.to, ()):
            return reference_key(ref.to, ref.by, key, self.numbers)
        if ref.to not in self._defined and self.client is not None:
            self._defined.add(ref.to)
            self.numbers[ref.to] = self.numbers.get(ref.to, frozenset()) | self._numbers(ref.to)
        return reference_key(ref.to, ref.by, key, self.numbers)

    def _numbers(self, object_type: str) -> frozenset[str]:
        """The number properties HubSpot's definitions of `object_type` list (none when they
        cannot be read: keys then compare as written)."""
        assert self.client is not None
        try:
            schema = read_schema(self.client, object_type)
        except HubSpotImportError as exc:
            log.warning("could not tell which %s properties are numbers: %s", object_type, exc)
            return frozenset()
        return frozenset(p.name for p in schema.properties.values() if p.type == "number")

    def find(self, ref: Reference, keys: Iterable[str]) -> dict[str, list[str] | None]:
        """Stored key -> the ids of the records that have it ([] none; None: the row of an
        earlier step that has it is invalid or failed)."""
        wanted = {self.stored(ref, k) for k in keys if k}
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
        found.update({k: [hid] for k, hid in self._journaled(ref, rest).items()})
        rest = [k for k in rest if k not in found]
        if rest and self.client is not None:
            found.update(self._in_hubspot(self.client, ref, rest))
        for key in wanted:
            found.setdefault(key, [])
        return found

    def _journaled(self, ref: Reference, keys: list[str]) -> dict[str, str]:
        """Stored key -> the id the target's journal holds for it, for the records HubSpot
        still holds (a merged one followed to the record it was merged into)."""
        path = self.journals.get(ref.to)
        if not keys or path is None or not path.exists():
            return {}
        journal = Journal(path)
        try:
            held = journal.known(journal_key(ref.to, ref.by, k) for k in keys)
        finally:
            journal.close()
        ids: dict[str, str] = {}
        for key in keys:
            row = held.get(journal_key(ref.to, ref.by, key))
            if row is not None and row.state is RowState.SYNCED and row.hubspot_id:
                ids[key] = row.hubspot_id
        if self.client is None or not ids:
            return ids
        now = still_held(self.client, ref.to, sorted(set(ids.values())))
        gone = {k: hid for k, hid in ids.items() if now.get(hid) is None}
        if gone:
            self.gone.setdefault((ref.to, ref.by), {}).update(gone)
            log.info(
                "%d %s the journal knows are no longer in HubSpot (%s): looked up by %s instead",
                len(gone),
                ref.to,
                ", ".join(sorted(set(gone.values()))[:5]),
                ref.by,
            )
        return {k: now_id for k, hid in ids.items() if (now_id := now.get(hid)) is not None}

    def _in_hubspot(
        self, client: HubSpotClient, ref: Reference, keys: list[str]
    ) -> dict[str, list[str] | None]:
        """Stored key -> the ids of the records HubSpot holds with it. A key a search (which
        lags writes) does not find is searched for again once the first search is `settle`
        seconds old: a record made a moment before is found, not called missing."""
        finder = Finder(client, ref.to, ref.by, settle=self.settle)
        self.lookups += len(keys)
        started = time.time()
        answer = self._asked(finder, ref, sorted(keys))
        holders = finder.holders  # built from every value found: once, not once a key
        missing = [k for k in keys if k not in answer and k not in holders]
        if missing and not finder.unique and self.settle > 0:
            log.info(
                "%d %s keys by %s not found by search: searching again once search has "
                "caught up (--search-settle)",
                len(missing),
                ref.to,
                ref.by,
            )
            answer.update(self._asked(finder, ref, sorted(missing), started))
            holders = finder.holders
        found: dict[str, list[str] | None] = {}
        for key in keys:
            many = holders.get(key)
            found[key] = sorted(many) if many else ([answer[key]] if key in answer else [])
        return found

    @staticmethod
    def _asked(
        finder: Finder, ref: Reference, keys: list[str], written: float | None = None
    ) -> dict[str, str]:
        """`finder`'s answer for `keys` (see Finder.find); an error when HubSpot gave none."""
        answer = finder.find(keys, written)
        if answer is None and finder.unserved is not None:
            raise ConfigError(f"could not look {ref.to} up by {ref.by}: {finder.unserved}")
        if answer is None:
            raise HubSpotError(
                f"could not look {ref.to} up by {ref.by} in HubSpot; nothing was sent"
            )
        return answer


def still_held(client: HubSpotClient, object_type: str, ids: list[str]) -> dict[str, str | None]:
    """Record id -> the id HubSpot holds it under now: its own, the record it was merged
    into, or None when it is deleted or archived (batch read by id, 100 a request)."""
    now: dict[str, str | None] = dict.fromkeys(ids)
    for chunk in chunks(ids):
        body = read_batch(
            client,
            object_type,
            chunk,
            [MERGED_IDS],
            purpose=f"check that the {object_type} the journal knows are still in HubSpot",
        )
        for result in body.get("results") or []:
            if not isinstance(result, dict) or "id" not in result:
                continue
            rid = str(result["id"])
            merged = str((result.get("properties") or {}).get(MERGED_IDS) or "").split(";")
            for hid in chunk:
                if hid == rid or hid in merged:
                    now[hid] = rid
    return now


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
                self.resolver.stored(ref, key), "an earlier step"
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
                f'{column}: no {ref.to} record has {ref.by} "{key}"{self._gone(ref, key)}, so '
                "it was left out"
            )
            return
        else:
            kind = Problem.NOT_FOUND
            message = f'no {ref.to} record has {ref.by} "{key}"{self._gone(ref, key)}'
            hint = (
                f"import the {ref.to} first (or in the same plan), fix the key, or set "
                "on_missing: skip to leave such references out"
            )
        self.issues.append(RowIssue.at(self.table, row, column, key, kind, message, hint))

    def _gone(self, ref: Reference, key: str) -> str:
        """` (the journal's record for it, 123, is no longer in HubSpot)`, when so."""
        hid = self.resolver.gone.get((ref.to, ref.by), {}).get(self.resolver.stored(ref, key))
        if hid is None:
            return ""
        return f" (the journal's record for it, {hid}, is no longer in HubSpot)"


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
        ids = found.get(resolver.stored(ref, key)) if key else []
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
            ids = found.get(resolver.stored(ref, key))
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


def stored_keys(
    cells: pd.Series, object_type: str, prop: str, numbers: NumberProperties | None = None
) -> set[str]:
    """A column's keys, trimmed and as HubSpot stores them (emails lowercased, a number
    property's of `numbers` as numbers); blanks left out."""
    trimmed = cells.dropna().astype(str).str.strip()
    return {reference_key(object_type, prop, c, numbers) for c in trimmed if c}


def cell_keys(
    table: Table, mapping: Mapping, numbers: NumberProperties | None = None
) -> dict[tuple[str, str], set[str]]:
    """The keys a sheet's reference cells hold, per (object type, property), as HubSpot
    stores them (a number property's of `numbers` as numbers): what a plan looks up before
    its first write."""
    keys: dict[tuple[str, str], set[str]] = {}
    for column in mapping.columns:
        ref = column.reference
        if ref is not None and column.column in table.frame:
            keys.setdefault((ref.to, ref.by), set()).update(
                stored_keys(table.frame[column.column], ref.to, ref.by, numbers)
            )
    for link in mapping.associations:
        ref = link.reference
        if ref is not None and link.column in table.frame:
            for cell in table.frame[link.column].dropna().astype(str):
                parts = (p.strip() for p in cell.split(link.separator))
                keys.setdefault((ref.to, ref.by), set()).update(
                    reference_key(ref.to, ref.by, p, numbers) for p in parts if p
                )
    return keys
