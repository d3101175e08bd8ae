"""Reading a batch's answer: a result per row (HubSpot returns them in any order and may not
echo trace ids), what each error means for its row (refused; the key is held already, so the
row adopts that record; the record is gone; its links are refused), what to send next, and
which rows the errors of a batch refused as a whole name."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ..api.client import error_message
from ..core.hubspot import error_context, same_value, stored_value
from ..core.outcome import RowResult, RowStatus, uncertain_advice
from ..mapping.model import Mapping, SyncMode, WriteRule
from ..state.journal import Outcome
from .decide import UNSETTLED, Action, Operation

UNACCOUNTED = "HubSpot's answer neither listed nor refused this row"
"""A create's row that a 2xx answer leaves unsaid: the uploader looks it up (see send.py)."""

__all__ = [
    "UNACCOUNTED",
    "Settle",
    "adopting",
    "existing_id",
    "failed_row",
    "given_up",
    "held_key",
    "match",
    "not_sent",
    "refused_rows",
    "refuses_links",
    "settle_answer",
]

_EXISTING_ID = re.compile(r"Existing ID: ?(\d+)", re.IGNORECASE)


class Settle(Protocol):
    def __call__(
        self, action: Action, result: RowResult, outcome: Outcome | None = None
    ) -> None: ...


def not_sent(row: int, message: str) -> RowResult:
    return RowResult(row=row, status=RowStatus.NOT_SENT, message=message)


def failed_row(row: int, message: str) -> RowResult:
    return RowResult(row=row, status=RowStatus.FAILED, message=message)


def given_up(action: Action, operation: Operation, why: str) -> RowResult:
    """A row whose batch was not carried out, or not known to be, after every try (`why`):
    failed, and safe to run again. An update names the record it was sent to, which stays
    the row's."""
    return RowResult(
        row=action.row.row,
        status=RowStatus.FAILED,
        hubspot_id=action.record_id or "",
        message=f"{why}; not {operation.value}d (safe to run again)",
    )


def held_key(row: int, record_id: str | None) -> RowResult:
    """The result of a create adopted as an update of the record holding its key, until the
    update is answered."""
    return not_sent(
        row, f"HubSpot already holds this key (id {record_id}); updating that record was not sent"
    )


@dataclass
class _Refusals:
    """What a batch's errors say, by sheet row: HubSpot's message for each row an error names,
    and the rows among them that this run sends again, in another form."""

    failed: dict[int, str] = field(default_factory=dict)
    gone: dict[int, Action] = field(default_factory=dict)
    """Updates of a record that is no longer in HubSpot."""
    adopt: dict[int, Action] = field(default_factory=dict)
    """Creates of a key HubSpot already held, as updates of the record that holds it."""
    unlinked: dict[int, Action] = field(default_factory=dict)
    """Creates whose links HubSpot refused, as creates without them."""

    def read(
        self, action: Action, err: dict[str, Any], operation: Operation, mapping: Mapping
    ) -> None:
        """Note what `err` means for `action`'s row."""
        row = action.row.row
        self.failed[row] = error_message(err, 400)
        if _record_gone(operation, action, err):
            self.gone[row] = action
        if operation is Operation.CREATE and action.row.associations and refuses_links(err):
            # One bad link must not keep the record out: create it without its links,
            # which the link stage then sends on their own (the refused ones make the
            # row incomplete, naming them).
            self.unlinked[row] = _without_links(action)
            return
        held = existing_id(mapping, err)
        if operation is Operation.CREATE and held is not None:
            self.adopt[row] = adopting(action, held, mapping)


def settle_answer(
    batch: list[Action],
    operation: Operation,
    body: dict[str, Any],
    settle: Settle,
    *,
    mapping: Mapping,
    mode: SyncMode,
    unlinked_rows: dict[int, Action],
    unsaid: list[Action],
) -> list[tuple[Operation, list[Action]]]:
    """Settle each row of an answered batch; returns the batches to send next: rows whose
    record was deleted in HubSpot (created again in create mode), rows whose record HubSpot
    already held under the key (adopted, and updated) and rows whose links HubSpot refused
    (created again without them, and added to `unlinked_rows`). Created rows the answer
    neither lists nor refuses are added to `unsaid`, to be looked up, and settled `uncertain`
    until they are."""
    refusals = _read_errors(batch, operation, body, mapping)
    follow: list[tuple[Operation, list[Action]]] = []
    recreate = _settle_gone(refusals.gone, settle, mode)
    if recreate:
        follow.append((Operation.CREATE, recreate))
    if refusals.adopt:
        follow.append((Operation.UPDATE, list(refusals.adopt.values())))
        _settle_adopted(refusals.adopt, settle)
    if refusals.unlinked:
        unlinked_rows.update(refusals.unlinked)
        follow.append((Operation.CREATE, list(refusals.unlinked.values())))
        _settle_unlinked(refusals, settle)
    handled = set(refusals.gone) | set(refusals.adopt) | set(refusals.unlinked)
    pending = [a for a in batch if a.row.row not in refusals.failed]
    matched, unmatched = match(mapping, pending, list(body.get("results") or []))
    status = str(body.get("status", "COMPLETE")).upper()
    for action in batch:
        row = action.row.row
        if row in handled:
            continue
        refused = refusals.failed.get(row)
        result = _row_result(action, operation, refused, matched.get(row), unmatched, status)
        if result.message == UNACCOUNTED:
            unsaid.append(action)
        settle(action, result)
    return follow


def _read_errors(
    batch: list[Action], operation: Operation, body: dict[str, Any], mapping: Mapping
) -> _Refusals:
    """What the errors of a batch's answer say about the rows they name: by trace id, by
    record id, or, for updates and upserts sent by the key property, by the key as HubSpot
    stores it (`context.ids` names what each input was addressed by)."""
    by_trace = {a.row.trace_id: a for a in batch}
    by_record = {a.record_id: a for a in batch if a.record_id}
    by_key = (
        {
            stored_value(mapping.object_type, mapping.key_property, a.row.key_value): a
            for a in batch
            if not a.record_id and a.row.key_value is not None
        }
        if operation is not Operation.CREATE
        else {}
    )
    refusals = _Refusals()
    for err in body.get("errors") or []:
        if not isinstance(err, dict):
            continue
        ctx = error_context(err)
        named = [by_trace[t] for t in ctx.get("objectWriteTraceId", []) if t in by_trace]
        for i in ctx.get("ids", []):
            found = by_record.get(str(i)) or by_key.get(
                stored_value(mapping.object_type, mapping.key_property, str(i))
            )
            if found is not None:
                named.append(found)
        for action in {id(a): a for a in named}.values():
            refusals.read(action, err, operation, mapping)
    return refusals


def _record_gone(operation: Operation, action: Action, err: dict[str, Any]) -> bool:
    """Whether `err` says the record an update was sent to is no longer in HubSpot."""
    return (
        operation is Operation.UPDATE
        and bool(action.record_id)  # an id the journal had, not a key never found
        and err.get("category") == "OBJECT_NOT_FOUND"
    )


def _without_links(action: Action) -> Action:
    """A create whose links HubSpot refused, to be sent again without them."""
    return replace(action, row=replace(action.row, associations=()), note=action.note)


def adopting(action: Action, held: str, mapping: Mapping) -> Action:
    """A create of a key HubSpot already held under record `held`, as an update of it. The
    record exists, so write rules hold back what they would from any update: create_only
    values, and if_empty ones too (HubSpot's values were not read)."""
    rules = mapping.held_back
    sends = {p: v for p, v in action.sends.items() if p not in rules}
    held_back = "; ".join(
        f"{p} ({rule.value}{': not read' if rule is WriteRule.IF_EMPTY else ''})"
        for p, rule in sorted(rules.items())
        if p in action.sends
    )
    unread = any(rules[p] is WriteRule.IF_EMPTY for p in action.sends if p in rules)
    return replace(
        action,
        # An if_empty value held back unread: the next run reads HubSpot's and decides.
        row=replace(action.row, sent_hash=UNSETTLED) if unread else action.row,
        operation=Operation.UPDATE,
        record_id=held,
        properties=sends if held_back else action.properties,
        held_back=held_back,
        note=f"HubSpot already held a record with {mapping.key_property} "
        f"{action.row.key_value!r} (id {held}): this row updated it, and is "
        "that record from now on"
        + (f"; held back by write rules: {held_back}" if held_back else ""),
    )


def _settle_gone(gone: dict[int, Action], settle: Settle, mode: SyncMode) -> list[Action]:
    """Settle the rows whose record is no longer in HubSpot; returns the creates that make
    them again (create and upsert modes: update mode fails them)."""
    recreate: list[Action] = []
    for row, action in gone.items():
        vanished = action.record_id
        if mode is not SyncMode.UPDATE:
            recreate.append(
                replace(
                    action,
                    operation=Operation.CREATE,
                    record_id=None,
                    note=f"created again: record {vanished}, which an earlier run made for "
                    "this row, is no longer in HubSpot (deleted or merged)",
                )
            )
            # Until the create is answered (it replaces this), or if it is never sent:
            placeholder = not_sent(
                row,
                f"record {vanished} is no longer in HubSpot; creating it again was not sent",
            )
        else:
            placeholder = failed_row(
                row,
                f"record {vanished} is no longer in HubSpot (deleted or merged), and update "
                "mode does not create records; the journal forgot it (run in create or "
                "upsert mode to create it again)",
            )
        settle(action, placeholder, Outcome.GONE)
    return recreate


def _settle_adopted(adopt: dict[int, Action], settle: Settle) -> None:
    """Settle the rows whose key HubSpot already held, until their updates are answered."""
    for row, action in adopt.items():
        settle(action, held_key(row, action.record_id), Outcome.LOST)


def _settle_unlinked(refusals: _Refusals, settle: Settle) -> None:
    """Settle the rows whose links HubSpot refused, until their creates without them are
    answered; they are no longer refused rows."""
    for row, action in refusals.unlinked.items():
        refusals.failed.pop(row, None)
        settle(
            action,
            not_sent(row, "HubSpot refused its links; creating it without them was not sent"),
            Outcome.LOST,
        )


def _row_result(
    action: Action,
    operation: Operation,
    refused: str | None,
    result: dict[str, Any] | None,
    unmatched: list[dict[str, Any]],
    status: str,
) -> RowResult:
    """A row's result from the batch's answer: refused (HubSpot's message), written (its
    matched result), uncertain (records created that match no row), or failed."""
    row = action.row.row
    if refused is not None:
        # An update refused keeps its record: the workbook names it, as the journal does.
        return RowResult(
            row=row,
            status=RowStatus.FAILED,
            hubspot_id=action.record_id or "",
            message=f"HubSpot refused it: {refused}",
        )
    if result is not None:
        return _written(action, operation, result)
    if unmatched and operation is Operation.CREATE:
        ids = ", ".join(str(r["id"]) for r in unmatched[:5])
        return RowResult(
            row=row,
            status=RowStatus.UNCERTAIN,
            message="HubSpot created records for this batch that could not be matched "
            f"to rows by trace id, key or values (ids {ids}); "
            + uncertain_advice(action.row.key_value is not None),
        )
    if status != "COMPLETE":
        return failed_row(
            row,
            f"not {operation.value}d: HubSpot ended the batch "
            f"with status {status}; run the import again",
        )
    if operation is Operation.CREATE:
        # Neither created nor refused, by the answer: looked up before anything is said.
        return RowResult(row=row, status=RowStatus.UNCERTAIN, message=UNACCOUNTED)
    return failed_row(row, "HubSpot accepted the batch but returned no record for this row")


def _written(action: Action, operation: Operation, result: dict[str, Any]) -> RowResult:
    """A row HubSpot wrote: created or updated, with its record's id."""
    new = operation is Operation.CREATE or (
        operation is Operation.UPSERT and result.get("new") is True
    )
    return RowResult(
        row=action.row.row,
        status=RowStatus.CREATED if new else RowStatus.UPDATED,
        hubspot_id=str(result["id"]),
        message=action.note,
        held_back="" if new else action.held_back,
    )


def existing_id(mapping: Mapping, err: dict[str, Any]) -> str | None:
    """The id HubSpot names in a CONFLICT on the mapping's key property (another record
    already holds the key), if that is what `err` is."""
    key = mapping.key_property
    if key is None or err.get("category") != "CONFLICT":
        return None
    props = [
        p
        for e in [err, *(err.get("errors") or [])]
        if isinstance(e, dict)
        for p in error_context(e).get("propertyName", [])
    ]
    if props and key not in props:
        return None  # another unique property: not this row's record
    found = _EXISTING_ID.search(str(err.get("message") or ""))
    return found.group(1) if found else None


def match(
    mapping: Mapping, pending: list[Action], results: list[Any]
) -> tuple[dict[int, dict[str, Any]], list[dict[str, Any]]]:
    """Pair results with rows: echoed trace id, record id, key property, all values sent."""
    matched: dict[int, dict[str, Any]] = {}
    rest = [r for r in results if isinstance(r, dict) and "id" in r]
    key = mapping.key_property

    def stored(value: str) -> str:
        return stored_value(mapping.object_type, key, value)

    def trace(a: Action) -> Any:
        return a.row.trace_id

    def record(a: Action) -> Any:
        return a.record_id

    def key_value(a: Action) -> Any:
        return a.row.key_value

    def key_stored(a: Action) -> Any:
        return stored(a.row.key_value) if a.row.key_value is not None else None

    strategies: list[tuple[Callable[[Action], Any], Callable[[dict[str, Any]], Any]]] = [
        (trace, lambda r: r.get("objectWriteTraceId")),
        (record, lambda r: str(r["id"])),
    ]
    if key:
        # The value as sent, then as HubSpot stores it (an email lowercased). Never looser:
        # `00420` and `420` are different keys.
        strategies.append((key_value, lambda r: (r.get("properties") or {}).get(key)))
        strategies.append((key_stored, lambda r: stored(str((r.get("properties") or {}).get(key)))))
    for row_side, result_side in strategies:
        if not rest:
            break  # HubSpot echoes trace ids: usually the first strategy pairs them all
        sides = [result_side(result) for result in rest]
        if all(side is None for side in sides):
            continue  # e.g. no trace ids echoed: not worth indexing the rows by theirs
        candidates: dict[Any, list[Action]] = defaultdict(list)
        for a in pending:
            value = row_side(a)
            if value is not None and a.row.row not in matched:
                candidates[value].append(a)
        still = []
        for result, side in zip(rest, sides, strict=True):
            hits = candidates.get(side)
            if hits:
                matched[hits.pop(0).row.row] = result
            else:
                still.append(result)
        rest = still
    return _match_by_values(mapping, pending, rest, matched)


def _match_by_values(
    mapping: Mapping,
    pending: list[Action],
    rest: list[dict[str, Any]],
    matched: dict[int, dict[str, Any]],
) -> tuple[dict[int, dict[str, Any]], list[dict[str, Any]]]:
    """Last resort (no trace id echoed, no key): a result goes to a row only when every
    property the row sent has exactly that value in it. A row whose values are a subset
    of another's must not take the other's record: results with fewer candidates go
    first, and of several candidates the row that sent the most properties wins."""
    kind = mapping.object_type

    def fits(a: Action, props: dict[str, Any]) -> bool:
        return all(same_value(kind, p, props.get(p), v) for p, v in a.row.properties.items())

    options = []
    for result in rest:
        props = result.get("properties") or {}
        options.append(
            (result, [a for a in pending if a.row.row not in matched and fits(a, props)])
        )
    left = []
    for result, candidates in sorted(options, key=lambda o: len(o[1])):
        open_ = [a for a in candidates if a.row.row not in matched]
        if not open_:
            left.append(result)
            continue
        best = max(open_, key=lambda a: len(a.row.properties))
        matched[best.row.row] = result
    return matched, left


def refused_rows(batch: list[Action], body: dict[str, Any]) -> set[int]:
    """The rows a batch refused as a whole names: by trace id, or as sending a property
    HubSpot does not have."""
    by_trace = {a.row.trace_id: a.row.row for a in batch}
    rows: set[int] = set()
    missing_props: set[str] = set()
    for err in [body, *(body.get("errors") or [])]:
        if not isinstance(err, dict):
            continue
        ctx = error_context(err)
        for trace in ctx.get("objectWriteTraceId", []):
            if trace in by_trace:
                rows.add(by_trace[trace])
        if err.get("code") == "PROPERTY_DOESNT_EXIST":
            missing_props.update(ctx.get("propertyName", []))
    if missing_props:
        rows.update(a.row.row for a in batch if missing_props & set(a.row.properties))
    return rows


def refuses_links(err: dict[str, Any]) -> bool:
    """Whether a create's error is about its associations (an unknown id, a wrong type)."""
    found = [err, *[e for e in err.get("errors") or [] if isinstance(e, dict)]]
    return any(
        e.get("code") == "INVALID_ASSOCIATION"
        or "associations are invalid" in str(e.get("message", ""))
        or {"INVALID_OBJECT_IDS", "INVALID_ASSOCIATION_TYPE_ID"} & set(error_context(e))
        for e in found
    )
