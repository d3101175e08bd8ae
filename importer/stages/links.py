"""Link stage: keep each row's associations as its cells say, through HubSpot's associations
batch API, once the records are written.

Create mode links new records inline on `batch/create` (one request); everything else goes
through `/crm/associations/{version}/{from}/{to}/batch/create` and `.../batch/labels/archive`:
upserts and updates (their inputs have no `associations`), changed cells on reruns, records
found by a lookup after a lost answer, and links refused earlier.

What to send comes from the journal, which keeps the links this tool made per row
(`Journal.made_links`), so a run with nothing changed sends nothing. Per association, the
mapping's `sync:` decides what goes:
- `sync`: links this mapping made that the cell no longer lists (others' links stay);
- `add`: nothing, ever;
- `replace`: every link of the association's types to the target type that the cell does not
  list, whoever made it (read from HubSpot, 1,000 records a request).
Both writes are idempotent (creating a pair that exists adds nothing; removing a missing one
removes nothing), so a link whose answer was lost is simply sent again by the next run.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import orjson

from ..api.client import HubSpotClient
from ..core.errors import HubSpotError, RunInterrupted
from ..core.hubspot import (
    MAX_ASSOCIATION_INPUTS,
    MAX_ASSOCIATION_READS,
    ONE_PARENT,
    canonical_object_type,
)
from ..core.outcome import RowResult, RowStatus
from ..core.prepared import Prepared
from ..core.shutdown import Stop, signal_name
from ..mapping.model import AssociationSpec, LinkPolicy, Mapping
from ..state.journal import Journal
from .link_answers import current_links, send_links, types_json

__all__ = ["LinkChange", "LinkDecisions", "apply_links", "association_id", "decide_links"]

log = logging.getLogger(__name__)

LINKED = frozenset({RowStatus.CREATED, RowStatus.UPDATED, RowStatus.UNCHANGED})
"""Rows whose record exists once the object writes are done: their links are kept in sync."""


def association_id(spec: AssociationSpec) -> str:
    """Names one association of a mapping in the journal: its column and target type."""
    return f"{spec.column}->{spec.to}"


@dataclass(frozen=True, slots=True)
class LinkChange:
    """One row's link changes for one association."""

    row: int
    row_key: str
    from_id: str
    association: int
    """Index into the mapping's associations."""
    add: tuple[str, ...]
    remove: tuple[str, ...]


@dataclass(kw_only=True)
class LinkDecisions:
    changes: list[LinkChange] = field(default_factory=list)
    inline: dict[int, list[tuple[str, str, str]]] = field(default_factory=dict)
    """Association -> (row key, record id, target id) made with the record by batch/create."""
    reads: int = 0
    """Requests spent reading links (the `replace` policy)."""

    def describe(self, mapping: Mapping) -> dict[int, str]:
        """Row -> `+ contacts 1007, - contacts 1001`: what the decisions change."""
        said: dict[int, list[str]] = {}
        for c in self.changes:
            to = mapping.associations[c.association].to
            said.setdefault(c.row, []).extend(
                [f"+ {to} {t}" for t in c.add] + [f"- {to} {t}" for t in c.remove]
            )
        return {row: "links: " + ", ".join(parts) for row, parts in said.items()}


def decide_links(
    mapping: Mapping,
    prepared: Prepared,
    journal: Journal,
    results: dict[int, RowResult],
    *,
    inline_rows: frozenset[int] = frozenset(),
    client: HubSpotClient | None = None,
) -> LinkDecisions:
    """What to add and remove so each row's links match its cells.

    `inline_rows`: rows created this run by batch/create, whose links went with them.
    `client`: reads current links for `replace`; None (a dry run) decides from the journal."""
    decisions = LinkDecisions()
    if not mapping.associations:
        return decisions
    positions = {row: i for i, row in enumerate(prepared.rows)}
    rows = [
        (row, positions[row], r.hubspot_id)
        for row, r in results.items()
        if r.status in LINKED and r.hubspot_id and row in positions
    ]
    for k, spec in enumerate(mapping.associations):
        made = journal.made_links(association_id(spec), (prepared.keys[i] for _, i, _ in rows))
        current = (
            current_links(client, mapping.object_type, spec, [hid for _, _, hid in rows])
            if spec.sync is LinkPolicy.REPLACE and client is not None
            else None
        )
        if current is not None:
            decisions.reads += -(-len(rows) // MAX_ASSOCIATION_READS)
        for row, i, hid in rows:
            key = prepared.keys[i]
            wanted = list(dict.fromkeys(prepared.targets(k, i)))
            if row in inline_rows:
                decisions.inline.setdefault(k, []).extend((key, hid, t) for t in wanted)
                continue
            # Links made from another record (the row's record was re-created) are not its.
            ours = {t for t, f in made.get(key, {}).items() if f == hid}
            there = ours | (current.get(hid, set()) if current is not None else set())
            add = tuple(t for t in wanted if t not in ours)
            remove: tuple[str, ...] = ()
            if spec.sync is not LinkPolicy.ADD:
                remove = tuple(sorted(there - set(wanted), key=lambda t: (len(t), t)))
            if add or remove:
                decisions.changes.append(
                    LinkChange(
                        row=row, row_key=key, from_id=hid, association=k, add=add, remove=remove
                    )
                )
    return decisions


@dataclass(frozen=True, slots=True)
class _Job:
    association: int
    operation: str  # "create" or "labels/archive"
    items: tuple[tuple[LinkChange, str], ...]
    """(change, target id) per input."""


def apply_links(
    decisions: LinkDecisions,
    mapping: Mapping,
    journal: Journal,
    client: HubSpotClient,
    run_id: str,
    results: dict[int, RowResult],
    *,
    batch_size: int = MAX_ASSOCIATION_INPUTS,
    senders: int = 8,
    run_in_parallel: Callable[[Callable[[_Job], None], Sequence[_Job], int], None] | None = None,
) -> tuple[int, HubSpotError | RunInterrupted | None]:
    """Send the link changes decided, record what HubSpot confirmed, and update `results`:
    a row whose links changed is `updated` (if it was `unchanged`), one with a refused link
    `incomplete`. Returns the requests sent and the error that stopped it, if any."""
    _record_inline(decisions, mapping, journal, run_id)
    if not decisions.changes:
        return 0, None
    jobs = _jobs(decisions, mapping, batch_size)
    sending = _Sending(client, mapping, journal, run_id)
    if canonical_object_type(mapping.object_type) in ONE_PARENT:
        interrupted = _move_one_parent(sending, jobs, senders, run_in_parallel)
    else:
        interrupted = _send_all(sending, jobs, senders, run_in_parallel)
    _settle_rows(decisions, mapping, results, sending.refused, sending.done)
    return sending.sent, interrupted or (sending.stopped[0] if sending.stopped else None)


def _record_inline(
    decisions: LinkDecisions, mapping: Mapping, journal: Journal, run_id: str
) -> None:
    """Record the links made with their records by batch/create, as not made by this stage."""
    for k, made in decisions.inline.items():
        spec = mapping.associations[k]
        journal.record_links(
            run_id,
            association_id(spec),
            orjson.dumps(types_json(spec)).decode(),
            from_type=mapping.object_type,
            to_type=str(spec.to),
            added=made,
            made=False,
        )


def _jobs(decisions: LinkDecisions, mapping: Mapping, batch_size: int) -> list[_Job]:
    """The decisions's changes as batches: per association, its creates, then its removals."""
    jobs: list[_Job] = []
    for k in range(len(mapping.associations)):
        for operation, side in (("create", "add"), ("labels/archive", "remove")):
            items = [
                (c, t) for c in decisions.changes if c.association == k for t in getattr(c, side)
            ]
            for start in range(0, len(items), batch_size):
                jobs.append(_Job(k, operation, tuple(items[start : start + batch_size])))
    return jobs


@dataclass
class _Sending:
    """Sends link batches, from any number of threads, and keeps what HubSpot answered."""

    client: HubSpotClient
    mapping: Mapping
    journal: Journal
    run_id: str
    refused: dict[tuple[int, str, str], str] = field(default_factory=dict)
    """(association, from id, to id) -> why HubSpot did not carry that change out."""
    done: set[tuple[int, str, str]] = field(default_factory=set)
    """(association, from id, to id) of every change sent, carried out or not."""
    sent: int = 0
    """Requests sent."""
    stopped: list[HubSpotError] = field(default_factory=list)
    """The errors that stopped the sending: once there is one, no further batch is sent."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, job: _Job) -> None:
        """Send one batch (unless the sending stopped) and journal what HubSpot confirmed."""
        if self.stopped:
            return
        spec = self.mapping.associations[job.association]
        try:
            pairs = [(c.from_id, t) for c, t in job.items]
            failures = send_links(self.client, self.mapping.object_type, spec, job.operation, pairs)
        except HubSpotError as exc:
            with self.lock:
                self.stopped.append(exc)
            failures = {(c.from_id, t): f"not confirmed ({exc})" for c, t in job.items}
        ok_add = [(c.row_key, c.from_id, t) for c, t in job.items if (c.from_id, t) not in failures]
        link_types = orjson.dumps(types_json(spec)).decode()
        self.journal.record_links(
            self.run_id,
            association_id(spec),
            link_types,
            from_type=self.mapping.object_type,
            to_type=str(spec.to),
            added=ok_add if job.operation == "create" else (),
            removed=ok_add if job.operation != "create" else (),
        )
        with self.lock:
            self.sent += 1
            for (from_id, t), why in failures.items():
                self.refused[(job.association, from_id, t)] = why
            self.done.update((job.association, c.from_id, t) for c, t in job.items)


def _move_one_parent(
    sending: _Sending,
    jobs: list[_Job],
    senders: int,
    run_in_parallel: Callable[[Callable[[_Job], None], Sequence[_Job], int], None] | None,
) -> RunInterrupted | None:
    """Links of records with one parent (line items): every removal first, then the links
    to the new parents of the records whose old links are gone, so a record never has two
    parents, not for a moment and not after a refusal; a record whose removal was refused
    or not sent keeps its old parent and is not linked to the new one."""
    removals = [j for j in jobs if j.operation != "create"]
    interrupted = _send_all(sending, removals, senders, run_in_parallel)
    if interrupted is not None or sending.stopped:
        return interrupted
    kept = {
        (j.association, c.from_id): t
        for j in removals
        for c, t in j.items
        if (j.association, c.from_id, t) in sending.refused
    }
    adds: list[_Job] = []
    for job in (j for j in jobs if j.operation == "create"):
        items = tuple((c, t) for c, t in job.items if (job.association, c.from_id) not in kept)
        for c, t in job.items:
            old = kept.get((job.association, c.from_id))
            if old is not None:
                why = f"not linked, as removing its link to {old} was refused (one parent only)"
                sending.refused[(job.association, c.from_id, t)] = why
                sending.done.add((job.association, c.from_id, t))
        if items:
            adds.append(_Job(job.association, job.operation, items))
    return _send_all(sending, adds, senders, run_in_parallel)


def _send_all(
    sending: _Sending,
    jobs: list[_Job],
    senders: int,
    run_in_parallel: Callable[[Callable[[_Job], None], Sequence[_Job], int], None] | None,
) -> RunInterrupted | None:
    """Send every batch, `senders` at a time with `run_in_parallel`, else one by one;
    returns the interruption that stopped it, if a signal did."""
    try:
        if run_in_parallel is not None and jobs:
            # Sent from threads, even one: a signal reaches this thread, which waits for the
            # batches in flight to be answered and recorded. As the uploader does, the first
            # burst goes out together, not trickling while the senders start, which every
            # later window of the rolling limit would repeat.
            senders = max(1, min(senders, len(jobs)))
            if senders > 1:
                sending.client.limiter.start_together(senders)
            # No cyclic collection while sending, as in the uploader: a full collection
            # stalls every sender, and the rolling window carries it into every later window.
            collecting = gc.isenabled()
            gc.disable()
            try:
                run_in_parallel(sending.send, jobs, senders)
            finally:
                if collecting:
                    gc.enable()
        else:
            for job in jobs:
                sending.send(job)
    except Stop as signalled:
        # The batches in flight have settled (links are idempotent: one cut short in this
        # thread is sent again by the next run); the rest are not sent.
        interrupted = RunInterrupted(signalled.signum, signal_name(signalled.signum))
        log.warning("%s", interrupted)
        return interrupted
    return None


def _settle_rows(
    decisions: LinkDecisions,
    mapping: Mapping,
    results: dict[int, RowResult],
    refused: dict[tuple[int, str, str], str],
    done: set[tuple[int, str, str]],
) -> None:
    """Each row's result with its links: those HubSpot confirmed, those it refused (the row
    is incomplete), and those not sent because the run stopped (the next run sends them)."""
    said: dict[int, list[str]] = {}
    bad: dict[int, list[str]] = {}
    left: dict[int, list[str]] = {}
    for c in decisions.changes:
        to = mapping.associations[c.association].to
        for sign, targets in (("+", c.add), ("-", c.remove)):
            for t in targets:
                why = refused.get((c.association, c.from_id, t))
                if (c.association, c.from_id, t) not in done:
                    left.setdefault(c.row, []).append(f"{sign} {to} {t}")
                elif why is None:
                    said.setdefault(c.row, []).append(f"{sign} {to} {t}")
                else:
                    verb = "linking" if sign == "+" else "unlinking"
                    bad.setdefault(c.row, []).append(f"{verb} {to} {t} was refused: {why}")
    for row in {*said, *bad, *left}:
        before = results[row]
        status = before.status
        changed = row in said or row in bad
        # "unchanged since run ..." no longer holds of a row whose links changed.
        keep = before.message and not (changed and status is RowStatus.UNCHANGED)
        parts = [before.message] if keep else []
        if row in bad:
            status = RowStatus.INCOMPLETE
        elif changed and status is RowStatus.UNCHANGED:
            status = RowStatus.UPDATED
        if row in said:
            parts.append("links: " + ", ".join(said[row]))
        parts += bad.get(row, [])
        if row in left:
            parts.append(
                "links not sent, the run stopped first: "
                + ", ".join(left[row])
                + " (the next run sends them)"
            )
        results[row] = RowResult(
            row=row, status=status, hubspot_id=before.hubspot_id, message="; ".join(parts)
        )
