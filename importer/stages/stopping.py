"""How a run takes a signal outside the waits for HubSpot's answers (which the uploader, the
link stage and `missing_rows:` take themselves): before the first write, every row is
`not_sent`; after it, what HubSpot holds is recorded before the run stops (`shutdown.deferred`
keeps the signal meanwhile); a signal kept so, or one Python swallowed, stops the run where its
stages hand over (`noticed`). Either way the run writes its workbook and summary."""

from __future__ import annotations

import logging

from ..core import shutdown
from ..core.errors import HubSpotError, RunInterrupted
from ..core.outcome import RowResult, RowStatus
from ..core.prepared import Prepared
from ..core.shutdown import Stop
from ..state.journal import Outcome
from ..state.rundata import STATUS_OF
from .decide import Decisions
from .guards import GuardStop
from .send import Uploader
from .write_rules import Ruled

__all__ = ["Stopped", "journaled", "kept_signal", "noticed", "unsent", "upload"]

log = logging.getLogger(__name__)

Stopped = HubSpotError | RunInterrupted | GuardStop
"""What stopped a run part way: HubSpot, a signal, or (before anything was sent) a guard."""


def upload(uploader: Uploader, ruled: Ruled) -> tuple[dict[int, RowResult], Stopped | None]:
    """Send the actions decided: each row's result (the rows that needed no request with
    theirs) and what stopped the run, recorded whole before a signal may stop it. A signal
    the uploader did not take itself (while it made its batches, or as its last answers were
    recorded: Python may run a long collection then) leaves its report unsaid: each row is
    then what the journal recorded of it."""
    decisions = ruled.decisions
    try:
        report = uploader.execute(decisions.actions)
        with shutdown.deferred():
            return _marked(ruled, report.results), ruled.stopped_by or report.stopped_by
    except Stop as signalled:
        stopped = shutdown.interrupted(signalled.signum)
        log.warning("%s", stopped)
        with shutdown.deferred():
            sent = journaled(uploader, decisions, stopped)
            return _marked(ruled, sent), ruled.stopped_by or stopped


def _marked(ruled: Ruled, sent: dict[int, RowResult]) -> dict[int, RowResult]:
    """Each row's result: those sent, the others as decided, what the rules held back said."""
    results = {**ruled.decisions.settled, **sent}
    ruled.mark(results)
    return results


def journaled(
    uploader: Uploader, decisions: Decisions, stopped: RunInterrupted
) -> dict[int, RowResult]:
    """Each action's row as the journal recorded its batch: created, updated, refused; sent
    with no answer recorded (uncertain: the next run looks it up); or never sent."""
    sent = {
        row: (outcome, hubspot_id or "")
        for _, row, outcome, hubspot_id in uploader.journal.sent_rows(uploader.run_id)
    }
    actions = decisions.actions
    results = {}
    for position in actions.positions:
        row = actions.prepared.rows[position]
        if row not in sent:
            why = f"not sent: the run stopped before this row ({stopped})"
            record_id = actions.record_id(position) or ""
            results[row] = RowResult(row=row, status=RowStatus.NOT_SENT, hubspot_id=record_id,
                                     message=why)  # fmt: skip
            continue
        outcome, hubspot_id = sent[row]
        status, why = STATUS_OF.get(Outcome(outcome), _IN_FLIGHT) if outcome else _IN_FLIGHT
        results[row] = RowResult(row=row, status=status, hubspot_id=hubspot_id, message=why)
    return results


_IN_FLIGHT = (
    RowStatus.UNCERTAIN,
    "uncertain: sent, and the run was stopped before HubSpot's answer was recorded; the next "
    "run finds out what became of it before sending it again",
)


def unsent(rows: Prepared, signalled: Stop) -> tuple[dict[int, RowResult], RunInterrupted]:
    """Every row `not_sent`: a signal stopped the run before its first write."""
    name = shutdown.signal_name(signalled.signum)
    log.warning("%s came before the first write: nothing was sent", name)
    why = (
        f"not sent: the run was stopped by {name} before anything was sent (the next run sends it)"
    )
    results = {r: RowResult(row=r, status=RowStatus.NOT_SENT, message=why) for r in rows.rows}
    return results, shutdown.interrupted(signalled.signum)


def noticed(stopped_by: Stopped | None) -> Stopped | None:
    """`stopped_by`, else the stop of a signal the run has not seen yet (`kept_signal`)."""
    return stopped_by if stopped_by is not None else kept_signal()


def kept_signal() -> RunInterrupted | None:
    """The stop of a signal the run has not seen yet: one kept while what was done was
    recorded (`shutdown.deferred`), or one whose `Stop` Python swallowed."""
    signum = shutdown.take_signal()
    if signum is None:
        return None
    stopped = shutdown.interrupted(signum)
    log.warning("%s", stopped)
    return stopped
