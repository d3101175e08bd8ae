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
A link is this tool's only when it made it: before adding links to a record this run did not
create, its links are read (`link_reads`), and one the cell lists that HubSpot holds already
is someone else's (`links_found`), never recorded as added, so neither `sync` nor undo
removes it. A link to add is journaled as an intent before it is sent (`link_send`): one a
killed run may have made is this tool's when the next run finds it. So is a link sent inline
with a record on batch/create, its record's id not yet known: the intent is the record's
that the journal says that run created for the row (answered, or found by the next run's
recovery), and any other link on that record is someone else's. Both writes are
idempotent (creating a pair that exists adds nothing; removing a missing one removes
nothing), so a link whose answer was lost is simply sent again by the next run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import orjson

from ..api.client import HubSpotClient
from ..core import shutdown
from ..core.errors import HubSpotError, RunInterrupted
from ..core.hubspot import MAX_ASSOCIATION_INPUTS
from ..core.outcome import RowResult, RowStatus
from ..core.prepared import Prepared
from ..mapping.model import AssociationSpec, LinkPolicy, Mapping
from ..state.journal import Journal
from ..state.links_table import INLINE, LinkFindings
from .link_answers import types_json
from .link_reads import LinkReads, read_links
from .link_send import LinkChange, LinkJob, Sending, association_id, send_jobs

__all__ = ["LinkChange", "LinkDecisions", "apply_links", "association_id", "decide_links"]

log = logging.getLogger(__name__)

LINKED = frozenset({RowStatus.CREATED, RowStatus.UPDATED, RowStatus.UNCHANGED})
"""Rows whose record exists once the object writes are done: their links are kept in sync."""


@dataclass(kw_only=True)
class LinkDecisions:
    changes: list[LinkChange] = field(default_factory=list)
    inline: dict[int, list[tuple[str, str, str]]] = field(default_factory=dict)
    """Association -> (row key, record id, target id) made with the record by batch/create."""
    reads: int = 0
    """Requests spent reading links (before adding, and for the `replace` policy)."""
    findings: dict[int, LinkFindings] = field(default_factory=dict)
    """Association -> what its read taught the journal (kept by `apply_links`)."""
    notes: dict[int, list[str]] = field(default_factory=dict)
    """Row -> what its message says besides its changes: links others made, links a stopped
    run made, links not read."""
    unread: set[int] = field(default_factory=set)
    """Rows whose links were not changed because reading them failed: `incomplete`."""
    unsure: set[str] | None = None
    """Keys of the rows whose create is uncertain, whose inline intents stay for the next
    run (the run's others go); None: not known, none go."""
    stopped: RunInterrupted | None = None
    """A signal came during the reads: nothing is sent."""

    def describe(self, mapping: Mapping) -> dict[int, str]:
        """Row -> `+ contacts 1007, - contacts 1001`: what the decisions change."""
        said: dict[int, list[str]] = {}
        for c in self.changes:
            to = mapping.associations[c.association].to
            said.setdefault(c.row, []).extend(
                [f"+ {to} {t}" for t in c.add] + [f"- {to} {t}" for t in c.remove]
            )
        return {row: "links: " + ", ".join(parts) for row, parts in said.items()}

    def note(self, row: int, text: str) -> None:
        self.notes.setdefault(row, []).append(text)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Row:
    """A row whose record exists, as the link stage sees it."""

    row: int
    position: int
    """Its index in the prepared rows."""
    key: str
    hubspot_id: str
    created: bool
    """Created by this run: its record can hold no link but those this run made."""


@dataclass(frozen=True, slots=True)
class _Mine:
    """One row's links for one association as the journal knows them, from its record."""

    ours: frozenset[str]
    """Links this tool made."""
    pending: dict[str, str]
    """Target -> the run that was about to send it and never heard back (an intent)."""
    others: frozenset[str]
    """Links the cell lists that others made."""
    stale: frozenset[str]
    """Inline intents of a run the journal does not say created this record: not its."""


@dataclass(frozen=True, slots=True)
class _Known:
    """What the journal holds of one association's links, for the rows of a run."""

    made: dict[str, dict[str, str]]
    pending: dict[str, dict[str, tuple[str, str]]]
    found: dict[str, dict[str, str]]
    created: frozenset[tuple[str, str, str]] = frozenset()
    """(run id, row key, record id): what the runs of the inline intents created."""

    @classmethod
    def load(cls, journal: Journal, association: str, keys: list[str]) -> _Known:
        return cls(
            made=journal.made_links(association, keys),
            pending=journal.link_intents(association, keys),
            found=journal.links_found(association, keys),
        )

    def mine(self, r: _Row) -> _Mine:
        """The row's links, those made from another record left out (the row's record was
        made again: they are not its); an inline intent is this record's when the journal
        says its run created the record for the row."""
        hid = r.hubspot_id
        intents = self.pending.get(r.key, {}).items()
        inline = {t: (run, r.key, hid) in self.created for t, (f, run) in intents if f == INLINE}
        return _Mine(
            ours=frozenset(t for t, f in self.made.get(r.key, {}).items() if f == hid),
            pending={t: run for t, (f, run) in intents if f == hid or inline.get(t, False)},
            others=frozenset(t for t, f in self.found.get(r.key, {}).items() if f == hid),
            stale=frozenset(t for t, proven in inline.items() if not proven),
        )


def _created(journal: Journal, known: list[_Known]) -> frozenset[tuple[str, str, str]]:
    """(run id, row key, record id) of the records the runs that left inline intents created
    (or found by a lookup), as the journal says: only such a record holds their links."""
    runs = {run for k in known for t in k.pending.values() for f, run in t.values() if f == INLINE}
    return frozenset(
        (run, key, hid) for run in runs for key, hid in journal.written_by(run)["created"]
    )


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
    `client`: reads the links records hold before any is added, and for `replace`; None (a
    dry run) decides from the journal alone."""
    decisions = LinkDecisions()
    if not mapping.associations:
        return decisions
    rows = _rows(prepared, results)
    outside = [r for r in rows if r.row not in inline_rows]
    keys = [r.key for r in outside]
    known = [_Known.load(journal, association_id(s), keys) for s in mapping.associations]
    created = _created(journal, known)
    known = [replace(k, created=created) for k in known]
    decisions.unsure = _unsure(prepared, results)
    reading: dict[int, set[int]] = {}
    reads = LinkReads()
    if client is not None:
        reading, reads = _read_first(client, mapping, prepared, known, outside)
        decisions.reads, decisions.stopped = reads.requests, reads.stopped
    for k, spec in enumerate(mapping.associations):
        for r in rows:
            wanted = _wanted(prepared, k, r)
            if r.row in inline_rows:
                decisions.inline.setdefault(k, []).extend((r.key, r.hubspot_id, t) for t in wanted)
                continue
            held = None
            if r.row in reading.get(k, ()):
                held = _held(decisions, reads, k, spec, r)
                if held is None:
                    continue
            _decide_row(decisions, k, spec, r, wanted, known[k].mine(r), held)
    return decisions


def _unsure(prepared: Prepared, results: dict[int, RowResult]) -> set[str]:
    """The keys of the rows whose result is uncertain."""
    rows = {row for row, r in results.items() if r.status is RowStatus.UNCERTAIN}
    if not rows:
        return set()
    return {key for row, key in zip(prepared.rows, prepared.keys, strict=True) if row in rows}


def _rows(prepared: Prepared, results: dict[int, RowResult]) -> list[_Row]:
    """The rows whose record exists once the object writes are done."""
    positions = {row: i for i, row in enumerate(prepared.rows)}
    return [
        _Row(
            row=row,
            position=positions[row],
            key=prepared.keys[positions[row]],
            hubspot_id=r.hubspot_id,
            created=r.status is RowStatus.CREATED,
        )
        for row, r in results.items()
        if r.status in LINKED and r.hubspot_id and row in positions
    ]


def _read_first(
    client: HubSpotClient,
    mapping: Mapping,
    prepared: Prepared,
    known: list[_Known],
    rows: list[_Row],
) -> tuple[dict[int, set[int]], LinkReads]:
    """Read the links of the records that must be read before deciding (`_to_read`):
    association -> the rows read, and what the reads found."""
    reading = {
        k: [r for r in rows if _to_read(spec, r, known[k].mine(r), _wanted(prepared, k, r))]
        for k, spec in enumerate(mapping.associations)
    }
    wanted = {
        k: (mapping.associations[k], [r.hubspot_id for r in these]) for k, these in reading.items()
    }
    reads = read_links(client, mapping.object_type, wanted)
    return {k: {r.row for r in these} for k, these in reading.items()}, reads


def _wanted(prepared: Prepared, k: int, r: _Row) -> list[str]:
    """The targets the row's cell lists for association `k`, each once, in order."""
    return list(dict.fromkeys(prepared.targets(k, r.position)))


def _to_read(spec: AssociationSpec, r: _Row, mine: _Mine, wanted: list[str]) -> bool:
    """Whether the row's record's links must be read first: never when this run created it
    (it holds no link this run did not make); always for `replace`; else when a link is to
    be added (the record may hold it already), or a stopped run may have made one."""
    if r.created:
        return False
    if spec.sync is LinkPolicy.REPLACE:
        return True
    return bool(mine.pending) or any(t not in mine.ours and t not in mine.others for t in wanted)


def _held(
    decisions: LinkDecisions, reads: LinkReads, k: int, spec: AssociationSpec, r: _Row
) -> set[str] | None:
    """The targets the row's record holds as read; None when the read did not happen (a
    signal: the row's links are not checked) or failed (the row is incomplete)."""
    if reads.stopped is not None:
        decisions.note(r.row, f"{spec.to} links not checked: the run stopped first")
        return None
    failed = reads.failed.get(k)
    if failed is not None:
        decisions.unread.add(r.row)
        decisions.note(
            r.row,
            f"{spec.to} links not changed: reading the record's links from HubSpot failed "
            f"({failed}); the next run tries again",
        )
        return None
    return reads.current.get(k, {}).get(r.hubspot_id, set())


def _decide_row(
    decisions: LinkDecisions,
    k: int,
    spec: AssociationSpec,
    r: _Row,
    wanted: list[str],
    mine: _Mine,
    held: set[str] | None,
) -> None:
    """The row's changes for association `k`, from what the journal knows (`mine`) and, when
    the record's links were read, what it holds (`held`); what the read taught goes to the
    association's findings, and the row's message says it."""
    findings = decisions.findings.setdefault(k, LinkFindings())
    ours, others, there = set(mine.ours), set(mine.others) & set(wanted), set(mine.ours)
    if held is not None:
        adopted = {t: run for t, run in mine.pending.items() if t in held and t not in ours}
        findings.adopted.extend((run, r.key, r.hubspot_id, t) for t, run in adopted.items())
        findings.forgotten.extend(
            (r.key, t) for t in mine.pending if t not in held or t in mine.ours
        )
        ours |= set(adopted)
        others = (set(wanted) & held) - ours
        findings.found.extend((r.key, r.hubspot_id, t) for t in sorted(others - mine.others))
        there = ours | held
        _say_found(decisions, spec, r.row, adopted, others - mine.others)
    findings.forgotten.extend((r.key, t) for t in (mine.others - others) | mine.stale)
    add = tuple(t for t in wanted if t not in there and t not in others)
    remove: tuple[str, ...] = ()
    if spec.sync is not LinkPolicy.ADD:
        gone = (there if spec.sync is LinkPolicy.REPLACE else ours) - set(wanted)
        remove = tuple(sorted(gone, key=lambda t: (len(t), t)))
    if add or remove:
        decisions.changes.append(LinkChange(
            row=r.row, row_key=r.key, from_id=r.hubspot_id, association=k, add=add, remove=remove
        ))  # fmt: skip


def _say_found(
    decisions: LinkDecisions,
    spec: AssociationSpec,
    row: int,
    adopted: dict[str, str],
    others: set[str],
) -> None:
    """The row's message on links a read found: made by a stopped run, or by others."""
    for t, run in sorted(adopted.items()):
        decisions.note(
            row, f"links: {spec.to} {t} made by run {run}, which never heard back: recorded now"
        )
    if others:
        which = ", ".join(f"{spec.to} {t}" for t in sorted(others, key=lambda t: (len(t), t)))
        # `replace` removes whatever the cell does not list; the other policies only their own.
        leaves = (
            "undo never removes it"
            if spec.sync is LinkPolicy.REPLACE
            else "neither undo nor sync removes it"
        )
        decisions.note(row, f"links: {which} linked already, not by this tool ({leaves})")


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
) -> tuple[int, HubSpotError | RunInterrupted | None]:
    """Send the link changes decided, record what HubSpot confirmed, and update `results`:
    a row whose links changed is `updated` (if it was `unchanged`), one with a refused link
    or whose links could not be read `incomplete`, one whose batch a second signal left
    unanswered `uncertain`. Returns the requests sent and what stopped it, if anything.
    The batches go from sender threads (`link_send`)."""
    _record_inline(decisions, mapping, journal, run_id)
    if decisions.unsure is not None:
        journal.drop_inline_intents(run_id, keep=decisions.unsure)
    _keep_findings(decisions, mapping, journal, run_id)
    sending = Sending(client, mapping, journal, run_id)
    interrupted = decisions.stopped
    if decisions.changes and interrupted is None:
        interrupted = send_jobs(sending, _jobs(decisions, mapping, batch_size), senders)
    with shutdown.deferred():  # the rows say what the journal now holds, a signal or not
        _settle_rows(decisions, mapping, results, sending)
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


def _keep_findings(
    decisions: LinkDecisions, mapping: Mapping, journal: Journal, run_id: str
) -> None:
    """Journal what the reads found, before anything is sent (see `LinkFindings`)."""
    for k, findings in decisions.findings.items():
        if findings:
            spec = mapping.associations[k]
            journal.settle_findings(
                association_id(spec),
                orjson.dumps(types_json(spec)).decode(),
                findings,
                from_type=mapping.object_type,
                to_type=str(spec.to),
                run_id=run_id,
            )


def _jobs(decisions: LinkDecisions, mapping: Mapping, batch_size: int) -> list[LinkJob]:
    """The decisions's changes as batches: per association, its creates, then its removals."""
    jobs: list[LinkJob] = []
    for k in range(len(mapping.associations)):
        for operation, side in (("create", "add"), ("labels/archive", "remove")):
            items = [
                (c, t) for c in decisions.changes if c.association == k for t in getattr(c, side)
            ]
            for start in range(0, len(items), batch_size):
                jobs.append(LinkJob(k, operation, tuple(items[start : start + batch_size])))
    return jobs


@dataclass
class _Said:
    """What a row's message says of its links, by kind."""

    done: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)


def _settle_rows(
    decisions: LinkDecisions,
    mapping: Mapping,
    results: dict[int, RowResult],
    sending: Sending,
) -> None:
    """Each row's result with its links: those HubSpot confirmed, those it refused or that
    could not be read (the row is incomplete), those a second signal left unanswered (the
    row is uncertain), and those not sent because the run stopped (the next run sends them)."""
    said: dict[int, _Said] = {row: _Said() for row in decisions.notes}
    for c in decisions.changes:
        to = mapping.associations[c.association].to
        for sign, targets in (("+", c.add), ("-", c.remove)):
            for t in targets:
                pair = (c.association, c.from_id, t)
                these = said.setdefault(c.row, _Said())
                why = sending.refused.get(pair)
                if pair in sending.unanswered:
                    these.unanswered.append(f"{sign} {to} {t}")
                elif pair not in sending.done:
                    these.left.append(f"{sign} {to} {t}")
                elif why is None:
                    these.done.append(f"{sign} {to} {t}")
                else:
                    verb = "linking" if sign == "+" else "unlinking"
                    these.refused.append(f"{verb} {to} {t} was refused: {why}")
    for row, these in said.items():
        results[row] = _settled(results[row], these, decisions.notes.get(row, []),
                                unread=row in decisions.unread)  # fmt: skip


def _settled(before: RowResult, said: _Said, notes: list[str], *, unread: bool) -> RowResult:
    """A row's result once its links are settled (see `_settle_rows`)."""
    status = before.status
    changed = bool(said.done or said.refused)
    # "unchanged since run ..." no longer holds of a row whose links changed.
    keep = before.message and not (changed and status is RowStatus.UNCHANGED)
    parts = [before.message] if keep else []
    if said.refused or unread:
        status = RowStatus.INCOMPLETE
    elif said.unanswered:
        status = RowStatus.UNCERTAIN
    elif changed and status is RowStatus.UNCHANGED:
        status = RowStatus.UPDATED
    if said.done:
        parts.append("links: " + ", ".join(said.done))
    parts += said.refused
    if said.unanswered:
        parts.append(
            "uncertain: links sent, but the run was stopped before HubSpot answered: "
            + ", ".join(said.unanswered)
            + " (the next run reads them and sends what is missing)"
        )
    if said.left:
        parts.append(
            "links not sent, the run stopped first: "
            + ", ".join(said.left)
            + " (the next run sends them)"
        )
    parts += notes
    return RowResult(
        row=before.row,
        status=status,
        hubspot_id=before.hubspot_id,
        message="; ".join(parts),
        held_back=before.held_back,
    )
