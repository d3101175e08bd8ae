"""Link stage, the sending: link batches sent from sender threads, each journaled as intents
before it leaves and recorded once HubSpot's answer says what became of it.

A link to add is written to the journal as an intent before its request leaves: a run killed
with the request on the wire leaves the intent, and the next run, finding the link in HubSpot,
knows it is this tool's (`link_reads`). A signal stops the sending as the uploader's does:
no further batch goes, a batch still waiting for a rate-limit slot is not sent, and the
batches on the wire are waited for (HUBSPOT_IMPORT_STOP_WAIT seconds at most); a second
signal ends that wait, and their rows are `uncertain` (their intents stay for the next run).
The links a batch/create sends inline with its records are journaled so too
(`intend_inline`), without a record id (none is known yet): the next run takes them as the
record's that the journal says their run created for the row.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from ..api.client import HubSpotClient
from ..api.limiter import Halted
from ..core.errors import HubSpotError, RunInterrupted
from ..core.hubspot import ONE_PARENT, canonical_object_type
from ..core.prepared import PreparedRow
from ..core.shutdown import RunAbandoned, Stop, interrupted
from ..mapping.model import AssociationSpec, Mapping
from ..state.journal import Journal
from .link_answers import LinkAnswer, send_links, types_json
from .parallel import in_parallel

__all__ = ["LinkChange", "LinkJob", "Sending", "association_id", "intend_inline", "send_jobs"]

log = logging.getLogger(__name__)

Pair = tuple[int, str, str]
"""(association, from id, to id): one link change."""


def association_id(spec: AssociationSpec) -> str:
    """Names one association of a mapping in the journal: its column and target type."""
    return f"{spec.column}->{spec.to}"


def intend_inline(
    journal: Journal, run_id: str, mapping: Mapping, rows: Sequence[PreparedRow]
) -> None:
    """Journal the links a batch/create is about to send inline with its records as intents,
    before it leaves: a run killed before it reads HubSpot's answer (or whose answer was lost)
    leaves them, and the next run, finding the record the journal says that run created
    holding them, knows they are its (`links.decide_links`). Nothing is written for a batch
    without links."""
    if not mapping.associations:
        return
    owners = _owners(mapping)
    links = [
        (r.key, owner, str(a["to"]["id"]))
        for r in rows
        for a in r.associations
        if (owner := owners.get(orjson.dumps(a["types"]))) is not None
    ]
    if links:
        journal.intend_inline(run_id, [r.key for r in rows], links)


def _owners(mapping: Mapping) -> dict[bytes, str]:
    """The mapping's associations by the types an inline link of theirs carries. Types two
    associations share tell neither: their links are left out (taken as others' if found)."""
    seen: dict[bytes, list[str]] = {}
    for spec in mapping.associations:
        seen.setdefault(orjson.dumps(types_json(spec)), []).append(association_id(spec))
    return {types: ids[0] for types, ids in seen.items() if len(ids) == 1}


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


@dataclass(frozen=True, slots=True)
class LinkJob:
    association: int
    operation: str  # "create" or "labels/archive"
    items: tuple[tuple[LinkChange, str], ...]
    """(change, target id) per input."""


@dataclass
class Sending:
    """Sends link batches, from any number of threads, and keeps what HubSpot answered."""

    client: HubSpotClient
    mapping: Mapping
    journal: Journal
    run_id: str
    refused: dict[Pair, str] = field(default_factory=dict)
    """Why HubSpot did not carry a change out (or it is not known that it did)."""
    done: set[Pair] = field(default_factory=set)
    """Every change sent and answered, carried out or not."""
    unanswered: set[Pair] = field(default_factory=set)
    """Changes sent whose answer a second signal left unawaited: uncertain."""
    sent: int = 0
    """Requests sent."""
    stopped: list[HubSpotError] = field(default_factory=list)
    """The errors that stopped the sending: once there is one, no further batch is sent."""
    stop: threading.Event = field(default_factory=threading.Event)
    """Set by a signal: a batch not on the wire yet is not sent."""
    abandoned: bool = False
    """A second signal left the batches in flight: answers that come after are not taken."""
    flying: dict[int, LinkJob] = field(default_factory=dict)
    """The batches on the wire, by id()."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, job: LinkJob) -> None:
        """Send one batch (unless the sending stopped) and journal what HubSpot confirmed."""
        if self.stopped or self.stop.is_set():
            return
        association = association_id(self.mapping.associations[job.association])
        if job.operation == "create":
            self.journal.intend_links(
                self.run_id, association, [(c.row_key, c.from_id, t) for c, t in job.items]
            )
        with self.lock:
            self.flying[id(job)] = job
        try:
            answer = self._answer(job)
        except Halted:  # stopped while waiting for a slot: never sent (the intents may stay)
            return
        finally:
            with self.lock:
                self.flying.pop(id(job), None)
        with self.lock:
            if self.abandoned:
                return  # the workbook says uncertain: the intents tell the next run
        self._record(job, association, answer)

    def _answer(self, job: LinkJob) -> LinkAnswer:
        """HubSpot's answer to one batch, or every input unsure when HubSpot failed for good."""
        spec = self.mapping.associations[job.association]
        pairs = [(c.from_id, t) for c, t in job.items]
        try:
            with self.client.limiter.halted_by(self.stop):
                return send_links(self.client, self.mapping.object_type, spec, job.operation, pairs)
        except HubSpotError as exc:
            with self.lock:
                self.stopped.append(exc)
            return LinkAnswer({p: f"not confirmed ({exc})" for p in pairs}, set(pairs))

    def _record(self, job: LinkJob, association: str, answer: LinkAnswer) -> None:
        """Journal what HubSpot confirmed of one batch and keep its answer for the rows."""
        spec = self.mapping.associations[job.association]
        failures = answer.failures
        ok = [(c.row_key, c.from_id, t) for c, t in job.items if (c.from_id, t) not in failures]
        creates = job.operation == "create"
        self.journal.record_links(
            self.run_id,
            association,
            orjson.dumps(types_json(spec)).decode(),
            from_type=self.mapping.object_type,
            to_type=str(spec.to),
            added=ok if creates else (),
            removed=() if creates else ok,
            # A refusal settles an intent; an input whose fate is unknown keeps it.
            settled=[
                (c.row_key, c.from_id, t)
                for c, t in job.items
                if creates and (c.from_id, t) in failures and (c.from_id, t) not in answer.unsure
            ],
        )
        with self.lock:
            self.sent += 1
            for (from_id, t), why in failures.items():
                self.refused[(job.association, from_id, t)] = why
            self.done.update((job.association, c.from_id, t) for c, t in job.items)

    def abandon(self) -> int:
        """A second signal: the batches in flight are left unanswered; returns their rows."""
        with self.lock:
            self.abandoned = True
            for job in self.flying.values():
                self.unanswered.update((job.association, c.from_id, t) for c, t in job.items)
            return len({c.row for job in self.flying.values() for c, _ in job.items})


def send_jobs(sending: Sending, jobs: list[LinkJob], senders: int) -> RunInterrupted | None:
    """Send every batch, `senders` at a time (records with one parent: `_move_one_parent`);
    returns the interruption that stopped it, if a signal did."""
    if canonical_object_type(sending.mapping.object_type) in ONE_PARENT:
        return _move_one_parent(sending, jobs, senders)
    return _send_all(sending, jobs, senders)


def _move_one_parent(sending: Sending, jobs: list[LinkJob], senders: int) -> RunInterrupted | None:
    """Links of records with one parent (line items): every removal first, then the links
    to the new parents of the records whose old links are gone, so a record never has two
    parents, not for a moment and not after a refusal; a record whose removal was refused
    or not sent keeps its old parent and is not linked to the new one."""
    removals = [j for j in jobs if j.operation != "create"]
    interrupted = _send_all(sending, removals, senders)
    if interrupted is not None or sending.stopped:
        return interrupted
    kept = {
        (j.association, c.from_id): t
        for j in removals
        for c, t in j.items
        if (j.association, c.from_id, t) in sending.refused
    }
    adds: list[LinkJob] = []
    for job in (j for j in jobs if j.operation == "create"):
        items = tuple((c, t) for c, t in job.items if (job.association, c.from_id) not in kept)
        for c, t in job.items:
            old = kept.get((job.association, c.from_id))
            if old is not None:
                why = f"not linked, as removing its link to {old} was refused (one parent only)"
                sending.refused[(job.association, c.from_id, t)] = why
                sending.done.add((job.association, c.from_id, t))
        if items:
            adds.append(LinkJob(job.association, job.operation, items))
    return _send_all(sending, adds, senders)


def _send_all(sending: Sending, jobs: list[LinkJob], senders: int) -> RunInterrupted | None:
    """Send every batch from `senders` threads (even one: a signal then reaches this thread,
    which waits for the batches in flight to be answered and recorded); returns the
    interruption that stopped it, if a signal did."""
    if not jobs:
        return None
    # As the uploader does, the first burst goes out together, not trickling while the
    # senders start, which every later window of the rolling limit would repeat.
    senders = max(1, min(senders, len(jobs)))
    if senders > 1:
        sending.client.limiter.start_together(senders)
    # No cyclic collection while sending, as in the uploader: a full collection stalls
    # every sender, and the rolling window carries it into every later window.
    collecting = gc.isenabled()
    gc.disable()
    try:
        in_parallel(sending.send, jobs, senders, sending.stop, abandon=True)
    except Stop as signalled:
        sending.stop.set()
        if signalled.abandoned is not None:
            abandoned = RunAbandoned(signalled.signum, signalled.abandoned, sending.abandon())
            log.warning("%s", abandoned)
            return abandoned
        # The batches in flight have settled; the rest are not sent (the next run sends them).
        stopped = interrupted(signalled.signum)
        log.warning("%s", stopped)
        return stopped
    finally:
        if collecting:
            gc.enable()
    return None
