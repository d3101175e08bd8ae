"""Plan stage: decide per row, from the journal and the mode, what to send (if anything)."""

from __future__ import annotations

from collections.abc import Mapping as AnyMapping
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from .journal import KnownRow, RowState
from .mapping import SyncMode as Mode
from .outcome import RowResult, RowStatus
from .payload import PreparedRow

__all__ = ["Action", "Operation", "Plan", "make_plan"]


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


@dataclass(frozen=True, kw_only=True)
class Plan:
    actions: tuple[Action, ...]
    settled: dict[int, RowResult]
    """Rows that need no request: unchanged, skipped, or left uncertain by an earlier run."""

    def count(self, operation: Operation) -> int:
        return sum(1 for a in self.actions if a.operation is operation)


def make_plan(
    rows: Sequence[PreparedRow],
    known: AnyMapping[str, KnownRow],
    mode: Mode,
    *,
    has_key: bool,
) -> Plan:
    actions: list[Action] = []
    settled: dict[int, RowResult] = {}
    for row in rows:
        prior = known.get(row.key)
        if prior is not None and prior.state is RowState.UNCERTAIN:
            settled[row.row] = RowResult(
                row=row.row,
                status=RowStatus.UNCERTAIN,
                message=f"run {prior.run_id} may have created this record but could not "
                "confirm it, so it is not created again; find it in HubSpot (or delete it), "
                "then run with --forget-uncertain",
            )
        elif prior is not None and prior.sent_hash == row.sent_hash:
            settled[row.row] = RowResult(
                row=row.row,
                status=RowStatus.UNCHANGED,
                hubspot_id=prior.hubspot_id or "",
                message=f"unchanged since run {prior.run_id}",
            )
        elif mode is Mode.UPSERT:
            actions.append(Action(row=row, operation=Operation.UPSERT))
        elif prior is not None and prior.hubspot_id:
            actions.append(Action(row=row, operation=Operation.UPDATE, record_id=prior.hubspot_id))
        elif mode is Mode.CREATE:
            actions.append(Action(row=row, operation=Operation.CREATE))
        elif has_key:
            actions.append(Action(row=row, operation=Operation.UPDATE))
        else:
            settled[row.row] = RowResult(
                row=row.row,
                status=RowStatus.SKIPPED,
                message="update mode: no earlier run created this row and the mapping has "
                "no key to find it by",
            )
    return Plan(actions=tuple(actions), settled=settled)
