"""What a run would do, for `check` and `--dry-run`: the decisions from the journal (and, with
--verify, what HubSpot holds), each row's would-be status and the link changes of records that
exist; nothing is sent or written."""

from __future__ import annotations

from dataclasses import replace

from ..api.client import HubSpotClient
from ..core.outcome import RowResult, RowStatus
from ..core.prepared import Prepared
from ..mapping.model import Mapping, SyncMode
from ..state.journal import Journal
from .addressing import decide_rows
from .decide import Operation
from .links import decide_links
from .verify import apply_drift, verify
from .write_rules import would_hold

__all__ = ["link_changes", "would_do"]


def would_do(
    client: HubSpotClient,
    mapping: Mapping,
    journal: Journal,
    rows: Prepared,
    mode: SyncMode,
    *,
    verify_first: bool = False,
) -> dict[int, RowResult]:
    """What a run would do now, from the journal (and, with --verify, what HubSpot holds);
    nothing is sent or written. Rows left out of the results would be created as they are
    (`would_create`, no message)."""
    in_flight = {r.row_key for b in journal.open_batches() for r in b.rows}
    known = journal.known(rows.keys)
    drift = verify(client, mapping.object_type, rows, known) if verify_first else None
    decisions = decide_rows(
        rows, apply_drift(drift, known) if drift else known, mode, mapping, drift, client
    )
    results = dict(decisions.settled)
    actions = decisions.actions
    plain = not in_flight and not actions.has_notes
    if plain and all(op is Operation.CREATE for op in set(actions.operations)):
        # Every row would be created as it is (and the others' links may change).
        return link_changes(results, mapping, rows, journal)
    for i, (position, operation) in enumerate(
        zip(actions.positions, actions.operations, strict=True)
    ):
        note = actions.note(position)
        if operation is Operation.CREATE and not in_flight and not note:
            continue  # the common case, decided without touching the row
        row = rows.rows[position]
        if rows.keys[position] in in_flight:
            results[row] = RowResult(
                row=row,
                status=RowStatus.UNCERTAIN,
                message="an interrupted run sent this row without hearing back; the next run "
                "looks it up first, then creates it only if HubSpot does not have it",
            )
        elif operation is Operation.CREATE:
            results[row] = RowResult(row=row, status=RowStatus.WOULD_CREATE, message=note)
        else:
            sends = actions[i].sends if mapping.held_back else {}
            results[row] = _would_write(
                row, operation, actions.record_id(position), note, sends, mapping,
                rows.key_values[position],
            )  # fmt: skip
    return link_changes(results, mapping, rows, journal)


def _would_write(
    row: int,
    operation: Operation,
    record_id: str | None,
    note: str,
    sends: dict[str, str],
    mapping: Mapping,
    key_value: str | None,
) -> RowResult:
    """What an update (or an upsert) of a row would do, with what the write rules would hold
    back of `sends` from a record that exists (create_only; if_empty waits for the run's
    read)."""
    key = mapping.key_property
    said, held, nothing = would_hold(sends, mapping.held_back, key)
    if operation is Operation.UPSERT:
        message = (
            f"upsert: updates the record instead if HubSpot has one whose {key} is {key_value}"
        )
        if said:
            message += f"; if it does, write rules: {said}"
        return RowResult(row=row, status=RowStatus.WOULD_CREATE, message=message)
    if nothing:
        return RowResult(
            row=row,
            status=RowStatus.UNCHANGED,
            hubspot_id=record_id or "",
            message="; ".join(w for w in (note, f"nothing to send: {said}") if w),
            held_back=held,
        )
    target = record_id or f"the record whose {key} is {key_value}"
    words = "; ".join(w for w in (note, said) if w)
    return RowResult(
        row=row,
        status=RowStatus.WOULD_UPDATE,
        hubspot_id=record_id or "",
        message=f"would update {target}" + (f": {words}" if words else ""),
        held_back=held,
    )


def link_changes(
    results: dict[int, RowResult], mapping: Mapping, rows: Prepared, journal: Journal
) -> dict[int, RowResult]:
    """A dry run's results with the link changes of the records that exist (`+ contacts 1007,
    - contacts 1001`), from the journal alone: an unchanged row whose links would change
    would be updated."""
    if not mapping.associations:
        return results
    existing = {
        row: RowResult(row=row, status=RowStatus.UNCHANGED, hubspot_id=r.hubspot_id)
        for row, r in results.items()
        if r.hubspot_id and r.status in (RowStatus.UNCHANGED, RowStatus.WOULD_UPDATE)
    }
    said = decide_links(mapping, rows, journal, existing).describe(mapping)
    for row, links in said.items():
        before = results[row]
        unchanged = before.status is RowStatus.UNCHANGED
        results[row] = replace(
            before,
            status=RowStatus.WOULD_UPDATE if unchanged else before.status,
            message=links if unchanged or not before.message else f"{before.message}; {links}",
        )
    return results
