"""Decide stage: per row, from the journal and the mode, what to send (if anything)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from collections.abc import Mapping as AnyMapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import overload

import orjson

from ..core.outcome import RowResult, RowStatus, uncertain_advice
from ..core.prepared import Prepared, PreparedRow
from ..mapping.model import SyncMode as Mode
from ..state.journal import KnownRow, RowState

__all__ = [
    "UNSETTLED",
    "Action",
    "Actions",
    "Decisions",
    "Operation",
    "decide",
]

UNSETTLED = ""
"""The fingerprint recorded for a row whose next run must decide it again (a write rule held
a value back without knowing HubSpot's): no row's values have it."""

_Change = tuple[dict[str, str], dict[str, str] | None]
"""What to send of a row, and what HubSpot held from this tool before (None: not known)."""


class Operation(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UPSERT = "upsert"


@dataclass(frozen=True, kw_only=True, slots=True)
class Action:
    row: PreparedRow
    operation: Operation
    record_id: str | None = None
    """For updates: the HubSpot id, or None to address the record by the key property."""
    note: str = ""
    """Said of the row in the workbook when it is written (why it was created or updated)."""
    properties: dict[str, str] | None = None
    """What to send, when not every property of the row: an update sends what changed."""
    prior: dict[str, str] | None = None
    """What HubSpot held from this tool before (for an update by the journal's id)."""
    held_back: str = ""
    """What write rules held back from this write (an adopted record's, decided on sending)."""

    @property
    def sends(self) -> dict[str, str]:
        return self.row.properties if self.properties is None else self.properties

    @property
    def holds(self) -> dict[str, str]:
        """What HubSpot holds from this tool for the row once this action is carried out."""
        return {**(self.prior or {}), **self.sends}


class Actions(Sequence[Action]):
    """The rows to send, in sheet order; each Action (and its request body) is made when asked
    for, so the decisions for a million rows hold one operation per row and little else."""

    def __init__(
        self,
        prepared: Prepared,
        positions: list[int],
        operations: list[Operation],
        record_ids: dict[int, str],
        notes: dict[int, str] | None = None,
        changes: dict[int, _Change] | None = None,
        unsettled: frozenset[int] = frozenset(),
    ) -> None:
        self.prepared = prepared
        self.positions = positions
        """Index into `prepared` of each action."""
        self.operations = operations
        self._record_ids = record_ids
        self._notes = notes or {}
        self._changes = changes or {}
        """Position -> (what to send, what HubSpot held before) for updates of changed
        values only."""
        self._unsettled = unsettled
        """Positions whose row is recorded with the UNSETTLED fingerprint once written."""

    def __len__(self) -> int:
        return len(self.positions)

    @overload
    def __getitem__(self, i: int) -> Action: ...

    @overload
    def __getitem__(self, i: slice) -> list[Action]: ...

    def __getitem__(self, i: int | slice) -> Action | list[Action]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        position = self.positions[i]
        sends, prior = self._changes.get(position, (None, None))
        row = self.prepared[position]
        return Action(
            row=replace(row, sent_hash=UNSETTLED) if position in self._unsettled else row,
            operation=self.operations[i],
            record_id=self._record_ids.get(position),
            note=self._notes.get(position, ""),
            properties=sends,
            prior=prior,
        )

    def __iter__(self) -> Iterator[Action]:
        return (self[i] for i in range(len(self)))

    @property
    def has_notes(self) -> bool:
        return bool(self._notes)

    def note(self, position: int) -> str:
        """What the workbook says of `prepared[position]`, if anything (from --verify)."""
        return self._notes.get(position, "")

    def record_id(self, position: int) -> str | None:
        """The HubSpot id an update of `prepared[position]` addresses, if known."""
        return self._record_ids.get(position)

    def addressed(self, record_ids: AnyMapping[int, str], settled: Collection[int]) -> Actions:
        """These actions with the record ids found for updates addressed by key, and without
        the rows `settled` (each by position in `prepared`): they need no request."""
        kept = [i for i, p in enumerate(self.positions) if p not in settled]
        return Actions(
            self.prepared,
            [self.positions[i] for i in kept],
            [self.operations[i] for i in kept],
            {**self._record_ids, **record_ids},
            self._notes,
            self._changes,
            self._unsettled,
        )

    def revised(
        self,
        *,
        dropped: Collection[int],
        sends: AnyMapping[int, dict[str, str]],
        notes: AnyMapping[int, str],
        by_key: Collection[int] = (),
        unsettled: Collection[int] = (),
    ) -> Actions:
        """These actions as the write rules leave them (each argument by position in
        `prepared`): `dropped` need no request; `sends` is what a row sends now (what HubSpot
        held before is kept); `notes` what the workbook says of a row; `by_key` upserts become
        updates of the record that holds the key; `unsettled` rows are decided again by the
        next run."""
        kept = [i for i, p in enumerate(self.positions) if p not in dropped]
        changes = dict(self._changes)
        for position, values in sends.items():
            changes[position] = (values, changes.get(position, (None, None))[1])
        return Actions(
            self.prepared,
            [self.positions[i] for i in kept],
            [Operation.UPDATE if self.positions[i] in by_key else self.operations[i] for i in kept],
            self._record_ids,
            {**self._notes, **notes},
            changes,
            self._unsettled | frozenset(unsettled),
        )


@dataclass(frozen=True, kw_only=True)
class Decisions:
    actions: Actions
    settled: dict[int, RowResult]
    """Rows that need no request: unchanged, skipped, or left uncertain by an earlier run."""

    def count(self, operation: Operation) -> int:
        return self.actions.operations.count(operation)


_FRESH = {
    Mode.UPSERT: Operation.UPSERT,
    Mode.CREATE: Operation.CREATE,
    Mode.UPDATE: Operation.UPDATE,
}
"""What a row without history gets, per mode (an update needs a key to find its record)."""


def decide(
    rows: Prepared,
    known: AnyMapping[str, KnownRow],
    mode: Mode,
    *,
    has_key: bool,
    notes: AnyMapping[str, str] | None = None,
    force: Collection[str] = (),
    clear_empty: Collection[str] = (),
) -> Decisions:
    """What to send per row. `notes`: row key -> what the workbook says of the row (from
    --verify); `force`: row keys to send although the journal has them unchanged (edited in
    HubSpot since); `clear_empty`: properties whose emptied cell clears HubSpot's value.

    A row the journal knows, whose values changed, is updated with what changed only: a cell
    emptied since leaves HubSpot's value as it is (unless its property is in `clear_empty`),
    and makes no update by itself."""
    notes = dict(notes or {})
    # What a row without history gets: most rows of a first run, so decided once.
    fresh = _FRESH.get(mode) if mode is not Mode.UPDATE or has_key else None
    if not known and fresh is not None and not notes:
        return Decisions(
            actions=Actions(rows, list(range(len(rows))), [fresh] * len(rows), {}),
            settled={},
        )
    made = _Made()
    # Only rows the journal knows need their fingerprint (has the row changed since?).
    seen = [i for i, key in enumerate(rows.keys) if key in known]
    hashes = dict(zip(seen, rows.hashes(seen), strict=True))
    for position, key in enumerate(rows.keys):
        prior = known.get(key)
        row = rows.rows[position]
        settled = _settled(row, key, prior, hashes.get(position), notes.get(key), key in force)
        if (
            settled is None
            and prior is not None
            and prior.hubspot_id
            and (mode is not Mode.UPSERT or _respelt(rows, position, prior))
        ):
            settled = _update(rows, position, prior, notes, key in force, clear_empty, made)
        elif settled is None and fresh is not None:
            made.add(position, fresh, notes.get(key))
        elif settled is None:
            settled = RowResult(
                row=row,
                status=RowStatus.SKIPPED,
                message="update mode: no earlier run created this row and the mapping has "
                "no key to find it by",
            )
        if settled is not None:
            made.settled[row] = settled
    return Decisions(
        actions=Actions(
            rows, made.positions, made.operations, made.record_ids, made.notes, made.changes
        ),
        settled=made.settled,
    )


@dataclass
class _Made:
    """The decisions made so far, row by row."""

    positions: list[int] = field(default_factory=list)
    operations: list[Operation] = field(default_factory=list)
    record_ids: dict[int, str] = field(default_factory=dict)
    notes: dict[int, str] = field(default_factory=dict)
    changes: dict[int, _Change] = field(default_factory=dict)
    settled: dict[int, RowResult] = field(default_factory=dict)

    def add(self, position: int, operation: Operation, note: str | None) -> None:
        self.positions.append(position)
        self.operations.append(operation)
        if note is not None:
            self.notes[position] = note


def _settled(
    row: int,
    key: str,
    prior: KnownRow | None,
    sent_hash: str | None,
    note: str | None,
    forced: bool,
) -> RowResult | None:
    """A row that needs no request: left uncertain by an earlier run (not created again), or
    sent before with the same values (unless edited in HubSpot since: `forced`)."""
    if prior is None:
        return None
    if prior.state is RowState.UNCERTAIN:
        return RowResult(
            row=row,
            status=RowStatus.UNCERTAIN,
            message=f"run {prior.run_id} may have created this record but could not "
            "confirm it, so it is not created again; " + uncertain_advice(key.startswith("key:")),
        )
    if prior.sent_hash == sent_hash and not forced:
        return RowResult(
            row=row,
            status=RowStatus.UNCHANGED,
            hubspot_id=prior.hubspot_id or "",
            message=note or f"unchanged since run {prior.run_id}",
        )
    return None


def _respelt(rows: Prepared, position: int, prior: KnownRow) -> bool:
    """Whether the row's key may be spelt otherwise than the value this tool wrote to its
    record (`Café` composed then decomposed: one key to the journal, two values to HubSpot),
    or the journal cannot tell (a record found after a lost answer: what was sent is not
    kept). An upsert by another spelling would make a second record: the row updates its
    record by id."""
    if rows.key_property is None:
        return False
    if prior.sent is None:
        return True
    held = orjson.loads(prior.sent).get(rows.key_property)
    return held is not None and held != rows.key_values[position]


def _update(
    rows: Prepared,
    position: int,
    prior: KnownRow,
    notes: dict[str, str],
    forced: bool,
    clear_empty: Collection[str],
    made: _Made,
) -> RowResult | None:
    """A row whose record the journal knows is updated by its id, with what changed only
    when the journal holds what was sent; None once added to `made`, else the row's result
    (unchanged: only emptied cells that leave HubSpot's values as they are)."""
    key, row = rows.keys[position], rows.rows[position]
    assert prior.hubspot_id is not None
    made.record_ids[position] = prior.hubspot_id
    if prior.sent is not None:
        before: dict[str, str] = orjson.loads(prior.sent)
        now = rows.properties(position)
        sends, said = _changed(now, before, clear_empty)
        if not sends and not forced:
            del made.record_ids[position]
            return RowResult(
                row=row,
                status=RowStatus.UNCHANGED,
                hubspot_id=prior.hubspot_id,
                message=said or f"unchanged since run {prior.run_id}",
            )
        if forced:  # edited in HubSpot: every value the sheet holds
            sends = {**now, **sends}
        made.changes[position] = (sends, before)
        notes[key] = "; ".join(n for n in (notes.get(key), said) if n)
    made.add(position, Operation.UPDATE, notes.get(key))
    return None


def _changed(
    now: dict[str, str], before: dict[str, str], clear_empty: Collection[str]
) -> tuple[dict[str, str], str]:
    """What to send of a row HubSpot holds `before` from us, and what to say of it."""
    sends = {p: v for p, v in now.items() if before.get(p) != v}
    emptied = [p for p, v in before.items() if p not in now and v != ""]
    cleared = [p for p in emptied if p in clear_empty]
    said = []
    if sends:
        said.append(f"changed: {', '.join(sorted(sends))}")
    sends.update(dict.fromkeys(cleared, ""))
    if cleared:
        said.append(f"cleared: {', '.join(sorted(cleared))}")
    if kept := [p for p in emptied if p not in clear_empty]:
        said.append(
            f"emptied cells leave HubSpot's values as they are: {', '.join(sorted(kept))} "
            "(clear_empty: true clears them)"
        )
    return sends, "; ".join(said)
