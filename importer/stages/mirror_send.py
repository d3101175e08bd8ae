"""The requests of `missing_rows:`: the records' values read first (batch/read, kept in the
journal: HubSpot's API cannot take a record out of its recycling bin), then batch/archive or
batch/update, 100 records a request, each request recorded before it leaves and settled after
its answer; and, at the start of a run, the requests an earlier run left without an answer,
settled by reading what HubSpot holds."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from ..api.client import HubSpotClient
from ..api.id_writes import IdWrite, write_by_id
from ..api.reads import read_values
from ..core.errors import HubSpotError, RunInterrupted
from ..core.hubspot import chunks, same_value
from ..core.outcome import RowResult, RowStatus
from ..core.prepared import Prepared
from ..core.shutdown import RunAbandoned, Stop, interrupted
from ..mapping.missing_keys import MissingAction
from ..sheets.results_missing import MissingLine, MissingOutcome
from ..state.journal import Journal
from ..state.missing_table import MissingEntry, MissingState
from .parallel import in_parallel

__all__ = [
    "Candidate",
    "Flight",
    "add_note",
    "back_line",
    "gone_message",
    "send_back",
    "send_entries",
    "settle_open",
    "trace_of",
    "uncertain",
    "would_return",
]

log = logging.getLogger(__name__)

_J = TypeVar("_J")
_A = TypeVar("_A")


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """A record the mapping holds whose key is no longer in the feed."""

    row_key: str
    hubspot_id: str
    last_run: str
    """The run that last wrote its journal row."""

    @property
    def key_value(self) -> str:
        """The key's value, from the row key `key:<property>=<value>`."""
        return self.row_key.partition("=")[2]


class Flight:
    """The requests of `missing_rows:`, sent from a sender thread of their own (`fly`): a
    signal waits for the one in flight to be answered and recorded, at most `stop_wait()`
    seconds, as the uploader's batches do (`parallel.in_parallel`); a second signal, or that
    wait spent, leaves it (`abandoned`). HubSpot's answer is then not taken, and the journal
    keeps its records as they were when it left (`sending`, `returning`): the next run finds
    out what became of them before anything else is sent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.flying: list[MissingEntry] = []
        """The entries of the request on the wire: recorded, their answer not yet."""
        self.abandoned = False

    def fly(self, work: Callable[[_J], None], jobs: Sequence[_J]) -> None:
        """Do `work` on each job from one sender thread. A signal raises `Stop` once the
        request in flight is answered and recorded, or left (`Stop.abandoned`, `abandoned`):
        no further job is taken either way."""
        try:
            in_parallel(work, jobs, 1, abandon=True)
        except Stop as signalled:
            if signalled.abandoned is not None:
                with self._lock:
                    self.abandoned = True  # the sender takes no answer from now on
            raise

    def send(
        self, entries: Sequence[MissingEntry], begin: Callable[[], None], call: Callable[[], _A]
    ) -> _A | None:
        """HubSpot's answer (`call`) about `entries`, which `begin` records in the journal
        before it is sent; None when the run left them: before they were recorded (nothing
        is recorded nor sent), or before the answer (it is not taken)."""
        with self._lock:
            if self.abandoned:
                return None
            begin()
            self.flying = list(entries)
        try:
            answer = call()
        except HubSpotError:
            if self._left():
                return None
            raise
        return None if self._left() else answer

    def land(self, settle: Callable[[], None]) -> None:
        """Record an answer (`settle`), unless the run left its request meanwhile."""
        with self._lock:
            if self.abandoned:
                return
            settle()
            self.flying = []

    def _left(self) -> bool:
        """Whether the run left the request in flight."""
        with self._lock:
            return self.abandoned

    def stopped(self, signalled: Stop) -> RunInterrupted:
        """What the signal stopped: a run whose request in flight was answered and recorded,
        or left without an answer (its records uncertain)."""
        if signalled.abandoned is None or not self.abandoned:
            return interrupted(signalled.signum)
        return RunAbandoned(signalled.signum, signalled.abandoned, len(self.flying))


def uncertain(signalled: Stop, verb: str) -> str:
    """What the Missing sheet says of a record whose request the run left unanswered."""
    return (
        f"uncertain: sent, then left unanswered as the run stopped ({signalled.abandoned}); "
        f"the next run finds out first whether it was {verb}"
    )


def trace_of(entry: MissingEntry) -> str:
    """The trace id an update of `entry` carries, so an error names the record it refused."""
    return f"{entry.run_id}-missing-{entry.hubspot_id}"


def send_entries(
    client: HubSpotClient, object_type: str, action: MissingAction, entries: Sequence[MissingEntry]
) -> dict[str, str]:
    """Archive `entries`' records, or set their values (`set_to`); row key -> why, for those
    HubSpot refused. HubSpotError when no answer came, or HubSpot stopped the run (the
    entries stay as they were recorded: the next run settles them)."""
    operation = "archive" if action is MissingAction.ARCHIVE else "update"
    inputs = [IdWrite(e.hubspot_id, e.set_to, trace_of(e)) for e in entries]
    refused = write_by_id(client, object_type, operation, inputs)
    return {e.row_key: refused[e.hubspot_id] for e in entries if e.hubspot_id in refused}


def send_back(
    client: HubSpotClient,
    journal: Journal,
    flight: Flight,
    object_type: str,
    entries: Sequence[MissingEntry],
) -> dict[str, str]:
    """Write back the earlier values of set records whose key is back (`entries`, each
    `set_to` the values to write), 100 a request from the flight's sender thread: each
    request recorded before it leaves (`returning`), its records settled by the answer
    (`returned`; `done` again for those HubSpot refused). Row key -> why, for those refused;
    a signal raises `Stop` (`Flight.fly`)."""
    failed: dict[str, str] = {}

    def work(chunk: list[MissingEntry]) -> None:
        """One request, from the sender thread."""
        answer = flight.send(
            chunk,
            lambda: journal.mark_missing(chunk, MissingState.RETURNING),
            lambda: send_entries(client, object_type, MissingAction.SET, chunk),
        )
        if answer is not None:
            flight.land(lambda: _written_back(journal, chunk, answer, failed))

    flight.fly(work, list(chunks(entries)))
    return failed


def _written_back(
    journal: Journal, chunk: list[MissingEntry], answer: dict[str, str], failed: dict[str, str]
) -> None:
    """One write-back request's answer recorded (and its refusals added to `failed`)."""
    journal.mark_missing(
        [e for e in chunk if e.row_key not in answer],
        MissingState.RETURNED,
        message="back in the feed",
    )
    journal.mark_missing([e for e in chunk if e.row_key in answer], MissingState.DONE)
    failed.update(answer)


def settle_open(client: HubSpotClient, journal: Journal, object_type: str) -> HubSpotError | None:
    """Settle the requests of `missing_rows:` an earlier run recorded and never heard back
    from (it died, or lost the answer): each record is read, and the request counts as done
    when HubSpot holds it as asked (archived: no longer live; set: holding the values).
    Returns what stopped the reading, if HubSpot did: nothing else may be sent then, since
    a row may point at a record that is no longer there."""
    entries = journal.missing_entries(states=(MissingState.SENDING,))
    if not entries:
        return None
    try:
        for chunk in chunks(entries):
            _settle_read(client, journal, object_type, chunk)
    except HubSpotError as exc:
        return exc
    log.warning(
        "settled %d missing_rows requests an earlier run left without an answer", len(entries)
    )
    return None


def _settle_read(
    client: HubSpotClient, journal: Journal, object_type: str, entries: list[MissingEntry]
) -> None:
    """One batch of open entries settled by what HubSpot holds of their records."""
    names = sorted({p for e in entries for p in e.set_to})
    ids = [e.hubspot_id for e in entries]
    live = read_values(client, object_type, ids, names, "settle a crashed run's missing_rows")
    failed: dict[str, str] = {}
    gone: list[MissingEntry] = []
    for e in entries:
        held = live.get(e.hubspot_id)
        if e.action == MissingAction.ARCHIVE:
            if held is not None:
                failed[e.row_key] = "not archived: the run that sent it stopped before the answer"
        elif held is None:
            gone.append(replace(e, state=MissingState.GONE, message=gone_message(e)))
        elif not all(same_value(object_type, p, held.get(p), v) for p, v in e.set_to.items()):
            failed[e.row_key] = "not set: the run that sent it stopped before the answer"
    if gone:
        journal.begin_missing(gone)
    keys = {e.row_key for e in gone}
    journal.settle_missing([e for e in entries if e.row_key not in keys], failed)


def gone_message(entry: MissingEntry) -> str:
    """What the Missing sheet says of a record HubSpot no longer had."""
    return (
        f"HubSpot no longer has record {entry.hubspot_id} (deleted, archived or merged outside "
        "this tool): nothing to do; the journal forgets it"
    )


def back_line(entry: MissingEntry, hubspot_id: str, note: str) -> MissingLine:
    """The Missing sheet's line of a record whose key came back."""
    return MissingLine(
        key=entry.key_value,
        hubspot_id=hubspot_id,
        outcome=MissingOutcome.RETURNED,
        message=note,
        values_set=entry.set_to,
        values_before=entry.before,
        last_run=entry.last_run,
    )


def add_note(results: dict[int, RowResult], row: int, note: str) -> None:
    """`note` added to the message of `row`'s result."""
    r = results.get(row)
    if r is None:
        return
    message = f"{r.message}; {note}" if r.message else note
    results[row] = replace(r, message=message)


def would_return(
    entries: list[MissingEntry],
    back: dict[str, int],
    rows: Prepared,
    results: dict[int, RowResult],
) -> list[MissingLine]:
    """A dry run's lines for archived records whose key is back in the feed and whose row
    would be created again (noted on the row too; a row the dry run left out is one)."""
    lines = []
    for e in entries:
        row = rows.rows[back[e.row_key]]
        result = results.setdefault(row, RowResult(row=row, status=RowStatus.WOULD_CREATE))
        if result.status is not RowStatus.WOULD_CREATE:
            continue
        note = (
            f"back in the feed: run {e.run_id} had archived record {e.hubspot_id} "
            "(missing_rows); would be created again"
        )
        add_note(results, row, note)
        lines.append(back_line(e, e.hubspot_id, note))
    return lines
