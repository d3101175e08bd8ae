"""Write rules stage: what `write: if_empty` and `write: create_only` hold back from the writes
to records that exist, HubSpot's values read first (100 records a request) where a rule needs
them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping as AnyMapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..api.client import HubSpotClient
from ..api.reads import read_batch
from ..core.errors import HubSpotError, RunInterrupted
from ..core.hubspot import MAX_BATCH_INPUTS, error_context, stored_value
from ..core.outcome import RowResult, RowStatus
from ..core.shutdown import Stop, signal_name
from ..mapping.model import Mapping, WriteRule
from ..state.journal import Journal
from .decide import Action, Decisions, Operation
from .parallel import in_parallel

__all__ = ["Ruled", "apply_write_rules", "would_hold"]

log = logging.getLogger(__name__)

PURPOSE = "read HubSpot's values for the write rules"
HAS_A_VALUE = "HubSpot has a value"
NOT_FOUND = "OBJECT_NOT_FOUND"

Stopped = HubSpotError | RunInterrupted


@dataclass(frozen=True, kw_only=True)
class Ruled:
    """The decisions once the write rules are applied, what they held back per sheet row (for
    the workbook's `held_back`), and what stopped the reads they needed, if anything did (then
    every action is `not_sent`, in `decisions.settled`, and none is left to send)."""

    decisions: Decisions
    held: dict[int, str] = field(default_factory=dict)
    stopped_by: Stopped | None = None

    def mark(self, results: dict[int, RowResult]) -> None:
        """Say in each row's result what a rule held back from it; a row that was created after
        all (its record gone, say) sent every value, and has nothing held back."""
        for row, held in self.held.items():
            result = results.get(row)
            if result is not None and result.status is not RowStatus.CREATED:
                results[row] = replace(result, held_back=held)


@dataclass(frozen=True)
class _Seen:
    """What HubSpot's read said of one record."""

    record_id: str | None = None
    values: dict[str, Any] | None = None
    """HubSpot's values of the if_empty properties; None when not read."""
    why: str = ""
    """Why the values were not read."""
    absent: bool = False
    """The read said HubSpot has no such record."""


@dataclass
class _Current:
    """HubSpot's values of the records the rules asked about, by lookup (`id:<record id>` or
    `key:<key as HubSpot stores it>`)."""

    found: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    absent: set[str] = field(default_factory=set)
    refused: dict[str, str] = field(default_factory=dict)
    """Lookups an error of the answer named for another reason than not found: its words."""

    def take(self, body: dict[str, Any], by_key: str | None, object_type: str) -> None:
        """Note what one read's answer says (read by record id, or by the key property)."""

        def lookup(value: Any) -> str:
            if by_key is None:
                return f"id:{value}"
            return f"key:{stored_value(object_type, by_key, str(value))}"

        for result in body.get("results") or []:
            if not isinstance(result, dict) or "id" not in result:
                continue
            props = result.get("properties") or {}
            if by_key is not None and props.get(by_key) is None:
                continue  # cannot tell which row it answers: left unread
            self.found[lookup(result["id"] if by_key is None else props[by_key])] = (
                str(result["id"]),
                props,
            )
        for err in body.get("errors") or []:
            if not isinstance(err, dict):
                continue
            for value in error_context(err).get("ids", []):
                if err.get("category") == NOT_FOUND:
                    self.absent.add(lookup(value))
                else:
                    self.refused[lookup(value)] = str(err.get("message") or err.get("category"))

    def seen(self, lookup: str | None) -> _Seen:
        """What the reads said of the record found by `lookup`."""
        if lookup is None:
            return _Seen(why="not read")
        if lookup in self.found:
            record_id, values = self.found[lookup]
            return _Seen(record_id=record_id, values=values)
        if lookup in self.absent:
            return _Seen(why="HubSpot's read found no such record", absent=True)
        why = self.refused.get(lookup, "HubSpot's read did not return the record")
        return _Seen(why=why)


def apply_write_rules(
    decisions: Decisions,
    mapping: Mapping,
    client: HubSpotClient,
    journal: Journal,
    run_id: str,
    *,
    senders: int = 1,
) -> Ruled:
    """The decisions with the write rules applied: creates send every value; a write to a
    record that exists leaves out `create_only` properties, and `if_empty` ones where HubSpot's
    value is not empty or could not be read. An action left with nothing to send is settled
    `unchanged` (and so recorded in the journal). Upserts whose record exists become updates by
    the key; those whose record's existence could not be read are not sent."""
    rules = mapping.held_back
    actions = decisions.actions
    if not rules or not actions:
        return Ruled(decisions=decisions)
    # Creates are left as they are without making their request bodies.
    writes = [
        (i, actions[i]) for i, op in enumerate(actions.operations) if op is not Operation.CREATE
    ]
    touched = [(i, action) for i, action in writes if rules.keys() & action.sends.keys()]
    if not touched:
        return Ruled(decisions=decisions)
    lookups = {i: _lookup(action, rules, mapping) for i, action in touched}
    try:
        current = _read_current(client, mapping, touched, lookups, senders)
    except HubSpotError as exc:
        return _stopped(decisions, exc)
    except Stop as signalled:
        return _stopped(decisions, _interrupted(signalled))
    return _revise(decisions, mapping, journal, run_id, touched, lookups, current)


def _interrupted(signalled: Stop) -> RunInterrupted:
    """What a signal during the reads stopped: nothing was written either way; the reads in
    flight were answered, or left (a second signal, or HUBSPOT_IMPORT_STOP_WAIT spent)."""
    name = signal_name(signalled.signum)
    if signalled.abandoned is not None:
        name = f"{name} ({signalled.abandoned}: the reads in flight were left)"
    return RunInterrupted(signalled.signum, name)


def _lookup(action: Action, rules: AnyMapping[str, WriteRule], mapping: Mapping) -> str | None:
    """How the record of `action` is read, if a rule needs HubSpot's values (or, for an
    upsert, whether the record exists): `id:<record id>` or `key:<stored key>`; else None."""
    if action.operation is not Operation.UPSERT and not any(
        rules.get(p) is WriteRule.IF_EMPTY for p in action.sends
    ):
        return None  # create_only alone needs no read: an update's record exists
    if action.operation is Operation.UPDATE and action.record_id:
        return f"id:{action.record_id}"
    key = action.row.key_value
    if key is None or mapping.key_property is None:
        return None
    return f"key:{stored_value(mapping.object_type, mapping.key_property, key)}"


def _read_current(
    client: HubSpotClient,
    mapping: Mapping,
    touched: list[tuple[int, Action]],
    lookups: dict[int, str | None],
    senders: int,
) -> _Current:
    """HubSpot's values of the if_empty properties of every record a lookup names, 100 records
    a read, `senders` reads at a time."""
    ids: dict[str, str] = {}
    keys: dict[str, str] = {}
    for i, action in touched:
        lookup = lookups[i]
        if lookup is None:
            continue
        if lookup.startswith("id:"):
            ids[lookup] = lookup[3:]
        elif action.row.key_value is not None:
            keys.setdefault(lookup, action.row.key_value)
    jobs: list[tuple[str | None, list[str]]] = [
        (by, values[start : start + MAX_BATCH_INPUTS])
        for by, values in ((None, list(ids.values())), (mapping.key_property, list(keys.values())))
        for start in range(0, len(values), MAX_BATCH_INPUTS)
    ]
    if_empty = sorted(p for p, r in mapping.held_back.items() if r is WriteRule.IF_EMPTY)
    current = _Current()
    lock = threading.Lock()

    def work(job: tuple[str | None, list[str]]) -> None:
        by_key, values = job
        names = [*if_empty, *([by_key] if by_key else [])]  # the key says which row it is
        body = read_batch(
            client, mapping.object_type, values, names, id_property=by_key, purpose=PURPOSE
        )
        with lock:
            current.take(body, by_key, mapping.object_type)

    if jobs:
        # A signal waits for the reads in flight as for the uploader's batches: at most
        # HUBSPOT_IMPORT_STOP_WAIT seconds, and a second signal ends the wait at once.
        in_parallel(work, jobs, max(1, min(senders, len(jobs))), abandon=True)
        log.info("write rules: read %d records in %d requests", len(ids) + len(keys), len(jobs))
    return current


@dataclass(frozen=True)
class _Ruling:
    """What the rules make of one write to a record that exists."""

    sends: dict[str, str]
    held: list[str]
    """`description (if_empty: HubSpot has a value)`, `cost (create_only)`, ..."""
    unknown: bool
    """A value was held back without knowing HubSpot's: the next run decides the row again."""


def _ruling(action: Action, rules: AnyMapping[str, WriteRule], seen: _Seen) -> _Ruling:
    """What `action` sends once the rules have held back what they must."""
    held: dict[str, str] = {}
    for prop in action.sends:
        rule = rules.get(prop)
        if rule is WriteRule.CREATE_ONLY:
            held[prop] = "create_only"
        elif rule is WriteRule.IF_EMPTY and seen.values is None:
            held[prop] = f"if_empty: HubSpot's value could not be read: {seen.why}"
        elif rule is WriteRule.IF_EMPTY and not _empty((seen.values or {}).get(prop)):
            held[prop] = f"if_empty: {HAS_A_VALUE}"
    return _Ruling(
        sends={p: v for p, v in action.sends.items() if p not in held},
        held=[f"{p} ({why})" for p, why in held.items()],
        unknown=seen.values is None and any(rules.get(p) is WriteRule.IF_EMPTY for p in held),
    )


def _empty(value: Any) -> bool:
    """Whether HubSpot's value of a property is empty (it answers null or "")."""
    return value is None or str(value) == ""


@dataclass
class _Revision:
    """What the rules change, by position in the prepared rows."""

    dropped: set[int] = field(default_factory=set)
    sends: dict[int, dict[str, str]] = field(default_factory=dict)
    notes: dict[int, str] = field(default_factory=dict)
    by_key: set[int] = field(default_factory=set)
    unsettled: set[int] = field(default_factory=set)
    settled: dict[int, RowResult] = field(default_factory=dict)
    held: dict[int, str] = field(default_factory=dict)
    unchanged: list[tuple[str, str, str]] = field(default_factory=list)
    """(row key, HubSpot id, fingerprint) of the rows settled without a request."""


def _revise(
    decisions: Decisions,
    mapping: Mapping,
    journal: Journal,
    run_id: str,
    touched: list[tuple[int, Action]],
    lookups: dict[int, str | None],
    current: _Current,
) -> Ruled:
    """The decisions once each touched action is ruled on; rows left with nothing to send
    are recorded in the journal as settled."""
    actions = decisions.actions
    revision = _Revision()
    for i, action in touched:
        _rule_one(revision, action, actions.positions[i], mapping, current.seen(lookups[i]))
    if revision.unchanged:
        journal.record_unchanged(run_id, revision.unchanged)
    revised = actions.revised(
        dropped=revision.dropped,
        sends=revision.sends,
        notes=revision.notes,
        by_key=revision.by_key,
        unsettled=revision.unsettled,
    )
    log.info(
        "write rules: held values back from %d rows, %d of which need no request",
        len(revision.held),
        len(revision.dropped),
    )
    return Ruled(
        decisions=Decisions(actions=revised, settled={**decisions.settled, **revision.settled}),
        held=revision.held,
    )


def _rule_one(
    revision: _Revision, action: Action, position: int, mapping: Mapping, seen: _Seen
) -> None:
    """Add to `revision` what the rules make of `action` (at `position`), given what HubSpot's
    read said of its record."""
    row = action.row.row
    upsert = action.operation is Operation.UPSERT
    if upsert and seen.absent:
        return  # HubSpot has no such record: the upsert creates it, with every value
    if upsert and seen.values is None:
        revision.dropped.add(position)
        revision.settled[row] = RowResult(
            row=row,
            status=RowStatus.NOT_SENT,
            message=f"not sent: whether HubSpot has this record could not be read ({seen.why}), "
            "and write rules hold values back from records that exist; the next run tries again",
        )
        return
    ruling = _ruling(action, mapping.held_back, seen)
    if not ruling.held:
        return
    held = "; ".join(ruling.held)
    revision.held[row] = held
    if ruling.unknown:
        revision.unsettled.add(position)
    if set(ruling.sends) - {mapping.key_property}:
        revision.sends[position] = ruling.sends
        revision.notes[position] = _joined(action.note, f"held back by write rules: {held}")
        if upsert:
            revision.by_key.add(position)
        return
    if seen.absent and mapping.key_property and action.row.key_value:
        # The read found no such record: the update still goes, with the key alone, so that
        # HubSpot says the record is gone and the run creates it again (create mode) or
        # fails the row (update mode), as for any vanished record. Were it there after all,
        # writing its own key changes nothing.
        revision.sends[position] = {mapping.key_property: action.row.key_value}
        revision.notes[position] = _joined(action.note, f"held back by write rules: {held}")
        return
    record_id = action.record_id or seen.record_id or ""
    revision.dropped.add(position)
    revision.settled[row] = RowResult(
        row=row,
        status=RowStatus.UNCHANGED,
        hubspot_id=record_id,
        message=_joined(action.note, f"nothing to send: write rules held back {held}"),
        held_back=held,
    )
    if record_id and not ruling.unknown:
        revision.unchanged.append((action.row.key, record_id, action.row.sent_hash))


def _joined(*said: str) -> str:
    return "; ".join(s for s in said if s)


def _stopped(decisions: Decisions, stopped_by: Stopped) -> Ruled:
    """Every action `not_sent`: the reads the rules needed did not happen."""
    reason = f"not sent: could not read HubSpot's values for the write rules first ({stopped_by})"
    actions = decisions.actions
    settled = dict(decisions.settled)
    for position in actions.positions:
        row = actions.prepared.rows[position]
        settled[row] = RowResult(row=row, status=RowStatus.NOT_SENT, message=reason)
    empty = actions.revised(dropped=set(actions.positions), sends={}, notes={})
    return Ruled(decisions=Decisions(actions=empty, settled=settled), stopped_by=stopped_by)


def would_hold(
    sends: AnyMapping[str, str], rules: AnyMapping[str, WriteRule], key_property: str | None
) -> tuple[str, str, bool]:
    """What a dry run says the rules would do with a write of `sends` to a record that exists
    (no read is made): the words for the row's message, those for its held_back column
    (create_only alone: if_empty is decided when the run reads HubSpot's values), and whether
    create_only leaves it nothing to send."""
    create_only = [p for p in sends if rules.get(p) is WriteRule.CREATE_ONLY]
    if_empty = [p for p in sends if rules.get(p) is WriteRule.IF_EMPTY]
    held = "; ".join(f"{p} (create_only)" for p in create_only)
    words = [f"would hold back {held}"] if held else []
    if if_empty:
        words.append(
            f"{', '.join(if_empty)} (if_empty): decided when the run reads HubSpot's values"
        )
    left = set(sends) - set(create_only) - {key_property}
    return "; ".join(words), held, bool(create_only) and not left
