"""Send stage, the lookups: what became of rows whose answer never came or said nothing of
them, and of batches a crashed run left open, found by the mapping's key; a mixin of the
uploader (`send.Uploader`), sharing its client, journal and finder."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence

from ..api.lookup import Finder
from ..core.hubspot import stored_value
from ..core.outcome import RowResult, RowStatus
from ..core.prepared import PreparedRow
from ..mapping.model import Mapping
from ..state.journal import BatchRow, Journal, OpenBatch, Outcome
from .answers import UNACCOUNTED, failed_row
from .decide import Action, Operation

__all__ = ["LookingUp"]

log = logging.getLogger(__name__)


class LookingUp:
    """Finding out by key what became of rows HubSpot did not say."""

    mapping: Mapping
    journal: Journal
    run_id: str
    finder: Finder | None
    _sent_again: set[str]
    """Row keys sent again because an answer left them unsaid (once at most)."""

    def recover(self, batches: Sequence[OpenBatch]) -> int:
        """Settle batches sent by a run that died before hearing the answer."""
        settled = 0
        for batch in batches:
            if batch.operation == Operation.CREATE:
                found = self._lookup([r.key_value for r in batch.rows], batch.created_epoch)
                outcomes = [self._looked_up(r, found) for r in batch.rows]
            else:
                # Updates and upserts are idempotent: the next decision simply sends them again.
                outcomes = [(r, Outcome.LOST, None) for r in batch.rows]
            self.journal.settle(batch.batch_id, batch.run_id, outcomes)
            settled += len(batch.rows)
            log.warning(
                "settled %s batch %d of run %s left open by a crash: %s",
                batch.operation,
                batch.batch_id,
                batch.run_id,
                _tally(outcomes),
            )
        return settled

    def _lookup(self, values: Sequence[str | None], written: float | None) -> dict[str, str] | None:
        """Found records by key value, or None when nothing can tell (no key). `written`:
        when the records may have been written, so a search waits for its lag."""
        if self.finder is None or any(v is None for v in values):
            return None
        return self.finder.find([v for v in values if v is not None], written)

    def _looked_up(
        self, row: BatchRow, found: dict[str, str] | None
    ) -> tuple[BatchRow, Outcome, str | None]:
        if found is None or row.key_value is None:
            return row, Outcome.UNCERTAIN, None
        hid = found.get(self._stored(row.key_value))
        return (row, Outcome.FOUND, hid) if hid else (row, Outcome.LOST, None)

    def _stored(self, value: str) -> str:
        """A key value as HubSpot stores it: exact, but for what HubSpot itself normalises
        (emails). `00420` and `420` are two keys, never one record."""
        return stored_value(self.mapping.object_type, self.mapping.key_property, value)

    def recheck_uncertain(self, rows: Sequence[PreparedRow], written: float | None) -> int:
        """Look up rows an earlier run left uncertain, now that HubSpot may answer. `written`:
        when the latest of them may have been written (a search waits for its lag)."""
        keyed = [r for r in rows if r.key_value is not None]
        if not keyed or self.finder is None:
            return 0
        found = self.finder.find([r.key_value for r in keyed if r.key_value is not None], written)
        if found is None:
            return 0
        self.journal.resolve(
            self.run_id,
            {r.key: found.get(self._stored(r.key_value)) for r in keyed if r.key_value},
        )
        return len(keyed)

    def _look_up_unsaid(
        self,
        actions: list[Action],
        journaled: dict[str, BatchRow],
        sent: float,
        settle: Callable[[Action, RowResult, Outcome | None], None],
    ) -> list[tuple[Operation, list[Action]]]:
        """Created rows a 2xx answer neither listed nor refused: found by key (created),
        not found (sent again), or, without a key, uncertain: never taken as failed, which
        would create them a second time."""
        log.warning("HubSpot's answer left %d created rows unsaid: looking them up", len(actions))
        found = self._lookup([a.row.key_value for a in actions], sent)
        again: list[Action] = []
        for action in actions:
            row, (_, state, hid) = action.row.row, self._looked_up(journaled[action.row.key], found)
            if state is Outcome.FOUND and hid:
                message = "created (HubSpot's answer did not list it; confirmed by looking it up)"
                result = RowResult(
                    row=row, status=RowStatus.CREATED, hubspot_id=hid, message=message
                )
                settle(action, result, Outcome.FOUND)
            elif state is Outcome.UNCERTAIN:
                message = (
                    f"{UNACCOUNTED}, and the mapping has no key to look it up by, so it is not "
                    "sent again; check HubSpot, then run with --forget-uncertain"
                )
                settle(
                    action, RowResult(row=row, status=RowStatus.UNCERTAIN, message=message), None
                )
            elif action.row.key in self._sent_again:  # unsaid twice: left to the next run
                why = f"{UNACCOUNTED} twice, nor found in HubSpot; not created (safe to run again)"
                settle(action, failed_row(row, why), Outcome.LOST)
            else:
                settle(
                    action, failed_row(row, f"{UNACCOUNTED}; not found in HubSpot"), Outcome.LOST
                )
                self._sent_again.add(action.row.key)
                again.append(action)
        return [(Operation.CREATE, again)] if again else []


def _tally(outcomes: Sequence[tuple[BatchRow, Outcome, str | None]]) -> str:
    counts: dict[str, int] = defaultdict(int)
    for _, state, _ in outcomes:
        counts["not created" if state is Outcome.LOST else state.value] += 1
    return ", ".join(f"{n} {s}" for s, n in counts.items())
