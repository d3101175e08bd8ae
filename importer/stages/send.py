"""Send stage: send the decided batches and account for every row, with the journal's help.

Each batch is written to the journal before it is sent and settled after the answer. HubSpot
returns results in any order and may not echo `objectWriteTraceId`, so a result is matched to
its row by the echoed trace id, else the record id, else the key property, else the values
sent. A create whose answer is lost (timeout, dropped connection) is looked up by its key
before anything is sent again, so no row is created twice.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import orjson

from ..api.client import (
    MAX_SENDERS,
    HubSpotClient,
    Reply,
    UncertainDelivery,
    Verdict,
    error_message,
    route_missing,
)
from ..api.limiter import Halted
from ..api.lookup import DEFAULT_SEARCH_SETTLE, Finder
from ..core.errors import ConfigError, HubSpotError, RunInterrupted
from ..core.hubspot import MAX_BATCH_INPUTS, chunks
from ..core.outcome import RowResult, RowStatus
from ..core.shutdown import RunAbandoned, Stop, interrupted
from ..mapping.model import Mapping, SyncMode
from ..state.journal import BatchRow, Journal, Outcome
from .answers import adopting, failed_row, given_up, settle_answer
from .decide import Action, Actions, Operation
from .link_send import intend_inline
from .lookups import LookingUp
from .options import DEFAULT_CONCURRENCY
from .parallel import in_parallel
from .refusals import adopted_record, failing_rows

__all__ = ["UploadReport", "Uploader"]

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class UploadReport:
    results: dict[int, RowResult]
    stopped_by: HubSpotError | RunInterrupted | None = None
    recovered: int = 0
    """Rows of batches left open by an earlier run that were settled at start-up."""


_Job = tuple[Operation, list[int]]
"""One batch to send: its operation and the indices of its actions."""


_OUTCOMES = {
    RowStatus.CREATED: Outcome.CREATED,
    RowStatus.UPDATED: Outcome.UPDATED,
    RowStatus.UNCERTAIN: Outcome.UNCERTAIN,
}
"""What the journal remembers of a row's result; any other status is a failure."""


def _batch_row(action: Action) -> BatchRow:
    r = action.row
    return BatchRow(
        row_key=r.key,
        key_value=r.key_value,
        trace_id=r.trace_id,
        sent_hash=r.sent_hash,
        source_row=r.row,
        record_id=action.record_id,
    )


class Uploader(LookingUp):
    """Executes a plan batch by batch; `report.results` gets one entry per action's row."""

    def __init__(
        self,
        client: HubSpotClient,
        mapping: Mapping,
        journal: Journal,
        run_id: str,
        *,
        batch_size: int = MAX_BATCH_INPUTS,
        concurrency: int = DEFAULT_CONCURRENCY,
        on_progress: Callable[[int], None] | None = None,
        search_settle: float = DEFAULT_SEARCH_SETTLE,
        mode: SyncMode = SyncMode.CREATE,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_INPUTS:
            raise ConfigError(f"batch size must be 1..{MAX_BATCH_INPUTS}, not {batch_size}")
        self.client = client
        self.mapping = mapping
        self.journal = journal
        self.run_id = run_id
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.mode = mode
        self.on_progress = on_progress or (lambda n: None)
        self._sent_again: set[str] = set()
        """Row keys sent again because an answer left them unsaid (once at most)."""
        self.unlinked: dict[int, Action] = {}
        """Rows created without their links, which HubSpot refused inline (by sheet row)."""
        self._in_flight: dict[int, list[Action]] = {}
        """Batches sent and not yet settled (by journal batch id): a second signal leaves
        their rows uncertain."""
        self._flight_lock = threading.Lock()
        self._abandoned = False
        """Set when a second signal left the batches in flight: their senders, still waiting
        for answers, then take no answer and send nothing more."""
        self._stop = threading.Event()  # the run stops: a batch awaiting a slot is not sent
        key_prop = mapping.key_property
        self.finder = (
            Finder(client, mapping.object_type, key_prop, settle=search_settle)
            if key_prop
            else None
        )

    # --- sending -----------------------------------------------------------------------------

    def execute(self, actions: Sequence[Action]) -> UploadReport:
        """Send every batch, `concurrency` at a time; the client's limiter paces them all."""
        report = UploadReport(results={})
        batches = self._batches(actions)
        stop = self._stop = threading.Event()
        lock = threading.Lock()

        def work(job: _Job) -> None:
            if stop.is_set():
                return
            operation, indices = job
            batch = [actions[i] for i in indices]
            try:
                self._send(batch, operation, report)
            except HubSpotError as exc:
                with lock:
                    report.stopped_by = report.stopped_by or exc
                stop.set()
                return
            except BaseException:
                stop.set()
                raise
            if any(a.row.row in report.results for a in batch):  # else stopped before it left
                with lock:
                    self.on_progress(len(batch))

        report = self._send_all(work, batches, stop, report)
        if report.stopped_by is not None:
            _settle_unsent(actions, report)
        return report

    def _batches(self, actions: Sequence[Action]) -> list[_Job]:
        """The batches to send, by operation (creates, then updates, then upserts)."""
        # Batches are lists of indices into `actions`; a plan's Actions makes each row's request
        # body only when its batch is sent.
        operations = (
            actions.operations if isinstance(actions, Actions) else [a.operation for a in actions]
        )
        return [
            (operation, batch)
            for operation in Operation
            for batch in chunks(
                [i for i, op in enumerate(operations) if op is operation], self.batch_size
            )
        ]

    def _send_all(
        self,
        work: Callable[[_Job], None],
        batches: list[_Job],
        stop: threading.Event,
        report: UploadReport,
    ) -> UploadReport:
        """Do `work` on every batch, `senders()` at a time; a signal stops it, and
        `report.stopped_by` says so. Returns the report to go by: `report`, or, when a second
        signal left batches in flight, what it held then (`_abandon`)."""
        senders = min(self.senders(), len(batches))
        # No cyclic collection while batches are sent. Each full collection rescans what
        # exists (the plan, the rows, the results so far) and stalls every sender for 10 to
        # 200 ms, which the rolling window then carries into every later window. Sending makes
        # no cyclic garbage (measured: none after a run), so nothing piles up meanwhile.
        collecting = gc.isenabled()
        gc.disable()
        try:
            if senders > 1:
                self.client.limiter.start_together(senders)
            # Even one sender sends from a thread of its own: a signal then reaches this
            # thread, which waits for the batch in flight to be answered and recorded,
            # instead of cutting the request off with HubSpot's answer unread.
            in_parallel(work, batches, max(1, senders), stop, abandon=True)
        except Stop as signalled:
            if signalled.abandoned is not None:
                return self._abandon(report, signalled.signum, signalled.abandoned)
            # The batches in flight have settled (a batch cut short in this thread stays
            # open in the journal, and the next run looks its rows up first).
            report.stopped_by = interrupted(signalled.signum)
            log.warning("%s", report.stopped_by)
        finally:
            if collecting:
                gc.enable()
        return report

    def _abandon(self, report: UploadReport, signum: int, cut: str) -> UploadReport:
        """What `report` holds now, the rows of the batches in flight uncertain: their senders
        still wait for HubSpot's answers, which no longer count (their batches stay open in
        the journal, so the next run looks their rows up before sending them again)."""
        self._abandoned = True
        with self._flight_lock:
            flying = [a for batch in self._in_flight.values() for a in batch]
        results = dict(report.results)  # the senders still write to the report they hold
        unanswered = {a.row.row for a in flying if a.row.row not in results}
        why = (
            f"uncertain: sent, but the run was stopped ({cut}) before HubSpot answered; "
            "the next run finds out what became of it before sending it again"
        )
        for row in unanswered:
            results[row] = RowResult(row=row, status=RowStatus.UNCERTAIN, message=why)
        stopped = RunAbandoned(signum, cut, len(unanswered))
        log.warning("%s", stopped)
        return UploadReport(results=results, stopped_by=stopped, recovered=report.recovered)

    def senders(self) -> int:
        """Requests in flight at once: as set, or as many as the learned limit allows in one
        window (8 to MAX_SENDERS)."""
        return self.concurrency or min(MAX_SENDERS, max(8, self.client.limiter.max_requests))

    def _body(self, action: Action, operation: Operation, trace: str) -> dict[str, Any]:
        r = action.row
        if operation is Operation.CREATE:
            return {
                "properties": r.properties,
                "associations": r.associations,
                "objectWriteTraceId": trace,
            }
        body: dict[str, Any] = {"properties": action.sends, "objectWriteTraceId": trace}
        if operation is Operation.UPDATE and action.record_id:
            body["id"] = action.record_id
        else:
            body["id"] = r.key_value
            body["idProperty"] = self.mapping.key_property
        return body

    def _send(
        self, batch: list[Action], operation: Operation, report: UploadReport, tries: int = 1
    ) -> None:
        """Send one batch, journaled before it goes, and settle its rows by the answer (or
        find out what became of them, if the answer was lost)."""
        if self._abandoned:
            return  # a second signal stopped the run: nothing more is sent
        rows = [_batch_row(a) for a in batch]
        if operation is Operation.CREATE:  # its links go inline: journaled as intents first
            intend_inline(self.journal, self.run_id, self.mapping, [a.row for a in batch])
        batch_id = self.journal.begin_batch(self.run_id, operation.value, rows)
        with self._flight_lock:
            self._in_flight[batch_id] = batch
        try:
            self._send_batch(batch, operation, report, tries, batch_id, rows)
        finally:
            with self._flight_lock:
                self._in_flight.pop(batch_id, None)

    def _send_batch(
        self,
        batch: list[Action],
        operation: Operation,
        report: UploadReport,
        tries: int,
        batch_id: int,
        rows: list[BatchRow],
    ) -> None:
        """Send the batch journaled as `batch_id` and settle its rows by the answer; an answer
        that comes after a second signal abandoned it is not taken (the batch stays open)."""
        sent = time.time()
        try:
            reply = self._post(batch, operation, rows)
        except Halted:  # it never left: its rows are `not sent` (`_settle_unsent`)
            with self._flight_lock:  # a second signal must not call them uncertain
                self._in_flight.pop(batch_id, None)
            self._not_carried_out(batch_id, rows)
            return
        except UncertainDelivery as exc:
            if not self._abandoned:
                self._lost_answer(batch, operation, batch_id, rows, report, tries, str(exc), sent)
            return
        except HubSpotError:
            self._not_carried_out(batch_id, rows)
            raise
        if self._abandoned:
            return
        if reply.verdict in (Verdict.SUCCESS, Verdict.PARTIAL):
            self._answered(batch, operation, batch_id, rows, reply.body, report, sent)
            return
        if reply.status == 404 or "Unable to infer object type" in str(reply.body.get("message")):
            self._not_carried_out(batch_id, rows, failed={r.row_key for r in rows})
            self._no_such_address(batch, operation, reply, report)
        self._rejected(batch, operation, reply.body, reply.status, report, (batch_id, rows))

    def _post(self, batch: list[Action], op: Operation, rows: list[BatchRow]) -> Reply:
        """HubSpot's answer to the batch; `Halted` if the run stopped before it got a slot."""
        path = self.client.paths.batch(self.mapping.object_type, op.value)
        body = {"inputs": [self._body(a, op, r.trace_id) for a, r in zip(batch, rows, strict=True)]}
        # A create or upsert answered 5xx may have been committed: it is settled by lookup, as
        # a lost answer (sent again, a create would be a second record, an upsert would say
        # `updated` of the record it created). The lookups after a stop are not halted.
        with self.client.limiter.halted_by(self._stop):
            return self.client.request("POST", path, body, resend_after_5xx=op is Operation.UPDATE)

    def _not_carried_out(
        self, batch_id: int, rows: list[BatchRow], failed: Collection[str] = ()
    ) -> None:
        """Close batch `batch_id`, not carried out (HubSpot refused its `failed` row keys)."""
        if not self._abandoned:
            said = [(r, Outcome.FAILED if r.row_key in failed else Outcome.LOST) for r in rows]
            self.journal.settle(batch_id, self.run_id, [(r, o, None) for r, o in said])

    def _answered(
        self,
        batch: list[Action],
        operation: Operation,
        batch_id: int,
        rows: list[BatchRow],
        body: dict[str, Any],
        report: UploadReport,
        sent: float,
    ) -> None:
        """Settle each row of a batch HubSpot carried out (in whole or in part), in the
        report and the journal, then send what the answer calls for next. Created rows the
        answer leaves unsaid are looked up first (`sent`: when the batch left)."""
        journaled = {r.row_key: r for r in rows}
        outcomes: dict[str, tuple[BatchRow, Outcome, str | None]] = {}
        held: dict[str, str] = {}

        def settle(action: Action, result: RowResult, outcome: Outcome | None = None) -> None:
            report.results[action.row.row] = result
            state = outcome or _OUTCOMES.get(result.status, Outcome.FAILED)
            key = action.row.key
            outcomes[key] = (journaled[key], state, result.hubspot_id or None)
            if state in (Outcome.CREATED, Outcome.UPDATED):
                # What HubSpot holds from us now: the next run sends only what changes.
                base = action.holds if operation is Operation.UPDATE else action.row.properties
                held[key] = orjson.dumps(base).decode()

        unsaid: list[Action] = []
        follow = settle_answer(
            batch,
            operation,
            body,
            settle,
            mapping=self.mapping,
            mode=self.mode,
            unlinked_rows=self.unlinked,
            unsaid=unsaid,
        )
        if unsaid:
            follow.extend(self._look_up_unsaid(unsaid, sent, settle))
        self.journal.settle(batch_id, self.run_id, list(outcomes.values()), held)
        for operation_next, actions in follow:
            self._send(actions, operation_next, report)

    def _no_such_address(
        self, batch: list[Action], operation: Operation, reply: Reply, report: UploadReport
    ) -> NoReturn:
        """Fail every row of a batch sent where HubSpot has no such object type or route, and
        stop the run there."""
        # Not a row's fault: every row of the batch fails with HubSpot's word for it (the
        # workbook says so), and no further batch is sent to an address that is not there.
        path = self.client.paths.batch(self.mapping.object_type, operation.value)
        why = error_message(reply.body, reply.status)
        if route_missing(reply):
            why = f"{self.client.version_hint()} (HTTP 404 for {path})"
        for action in batch:
            report.results[action.row.row] = failed_row(
                action.row.row, f"not {operation.value}d: HubSpot answered {why}"
            )
        raise HubSpotError(
            f"HubSpot answered {reply.status} to {operation.value} {self.mapping.object_type}"
            f" ({why}); no further batch was sent",
            status=reply.status,
        )

    def _lost_answer(
        self,
        batch: list[Action],
        operation: Operation,
        batch_id: int,
        rows: list[BatchRow],
        report: UploadReport,
        tries: int,
        why: str,
        sent: float,
    ) -> None:
        """The request may or may not have been carried out: find out before sending again
        (`LookingUp.settle_lost`: created, uncertain, an update of the record that holds the
        key, or sent again)."""
        try:
            lost = self.settle_lost(batch, operation, rows, sent, why)
        except HubSpotError as failed:  # the batch stays open: the next run looks again
            _unknown(batch, report, f"{why}, and finding out what became of it failed ({failed})")
            raise
        self.journal.settle(batch_id, self.run_id, lost.outcomes)
        report.results.update(lost.results)
        if lost.adopted:
            self._send(lost.adopted, Operation.UPDATE, report)
        resend = lost.resend
        if not resend:
            return
        if tries >= self.client.retry.max_attempts:
            for action in resend:
                report.results[action.row.row] = given_up(action, operation, f"{why} {tries} times")
            return
        self.client.backoff(
            tries,
            f"{why}; {len(resend)} of {len(batch)} rows were not {operation.value}d: sending "
            "them again",
        )
        self._send(resend, operation, report, tries + 1)

    def _rejected(
        self,
        batch: list[Action],
        operation: Operation,
        body: dict[str, Any],
        status: int,
        report: UploadReport,
        journaled: tuple[int, list[BatchRow]],
    ) -> None:
        """A whole batch refused: fail the rows the error names, or split until it does. A
        create refused whole because a record holds its key (contacts: 409 "Contact already
        exists. Existing ID: N"), once split to that one row, adopts the record as a per-input
        conflict does: the row updates it. The batch (`journaled`) is closed first."""
        message = f"HubSpot refused it: {error_message(body, status)}"
        failing = failing_rows(self.mapping, batch, operation, body, status)
        self._not_carried_out(*journaled, failed={a.row.key for a in failing})
        held = adopted_record(self.mapping, batch, operation, body, status)
        if held is not None:
            self._send([adopting(batch[0], held, self.mapping)], Operation.UPDATE, report)
            return
        if len(batch) > 1 and not failing:
            half = len(batch) // 2
            log.info(
                "batch of %d refused as a whole (%s); splitting to find the bad rows",
                len(batch),
                body.get("category", status),
            )
            self._send(batch[:half], operation, report)
            self._send(batch[half:], operation, report)
            return
        failed = {a.row.row for a in failing}
        for row in failed:
            report.results[row] = failed_row(row, message)
        rest = [a for a in batch if a.row.row not in failed]
        if rest:
            log.info("batch refused for %d named rows; resending %d", len(failed), len(rest))
            self._send(rest, operation, report)


def _unknown(batch: list[Action], report: UploadReport, why: str) -> None:
    """The rows of a batch sent whose fate is unknown, not yet settled, `uncertain`: its
    batch stays open in the journal, so the next run finds out before sending them again."""
    for action in batch:
        row = action.row.row
        if row not in report.results:
            report.results[row] = RowResult(
                row=row,
                status=RowStatus.UNCERTAIN,
                message=f"uncertain: {why}; the next run finds out before sending it again",
            )


def _settle_unsent(actions: Sequence[Action], report: UploadReport) -> None:
    """Give every row not settled when the run stopped its `not sent` result, naming why."""
    reason = f"not sent: the run stopped before this row ({report.stopped_by})"
    # An update names the record it would have been sent to, which stays the row's.
    rows = (
        [(actions.prepared.rows[p], actions.record_id(p)) for p in actions.positions]
        if isinstance(actions, Actions)
        else [(a.row.row, a.record_id) for a in actions]
    )
    for row, record_id in rows:
        if row not in report.results:
            report.results[row] = RowResult(
                row=row, status=RowStatus.NOT_SENT, hubspot_id=record_id or "", message=reason
            )
