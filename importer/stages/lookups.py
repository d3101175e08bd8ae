"""Send stage, the lookups: what became of rows whose answer never came or said nothing of
them, and of batches a crashed run left open, found by the mapping's key; a mixin of the
uploader (`send.Uploader`), sharing its client, journal and finder.

A record found by key counts as created by this run only when HubSpot's data proves it
(api/authorship.py: created inside the send window, by this app, with the values sent).
Anything else found by key is an existing record. When HubSpot holds the key unique (it is
read by batch/read), this run's create cannot have happened: the row updates that record.
When it does not, the row is `uncertain`, naming every record found: this run's own may not
be searchable yet. A row is never `created` on its key alone.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from ..api.account import client_token, fingerprint, token_app
from ..api.authorship import Window
from ..api.client import HubSpotClient
from ..api.lookup import Finder
from ..core.hubspot import stored_value
from ..core.outcome import RowResult, RowStatus, uncertain_advice
from ..core.prepared import PreparedRow
from ..mapping.model import Mapping
from ..state.journal import BatchRow, Journal, OpenBatch, Outcome
from .answers import UNACCOUNTED, adopting, failed_row, held_key
from .decide import Action, Operation

__all__ = ["Looked", "LookingUp", "LostAnswer"]

log = logging.getLogger(__name__)

FOUND_AFTER_LOSS = "created (confirmed by looking it up after the answer was lost: {proof})"
UNSAID_FOUND = "created (HubSpot's answer did not list it; confirmed by looking it up: {proof})"


@dataclass(frozen=True, kw_only=True)
class Looked:
    """What a lookup by key says became of the row sent with that key."""

    outcome: Outcome
    """FOUND (this run created `record_id`), LOST (not created) or UNCERTAIN (`why`)."""
    record_id: str | None = None
    adopt: str | None = None
    """LOST, and HubSpot holds the key unique on this existing record: the row updates it."""
    why: str = ""


@dataclass(kw_only=True)
class LostAnswer:
    """What became of the rows of a batch whose answer was lost."""

    outcomes: list[tuple[BatchRow, Outcome, str | None]] = field(default_factory=list)
    """Each row's outcome for the journal (LOST for rows sent again or adopted)."""
    results: dict[int, RowResult] = field(default_factory=dict)
    """The rows settled by the lookup (created, or uncertain), by sheet row."""
    adopted: list[Action] = field(default_factory=list)
    """Creates of a key HubSpot holds unique on another record: updates of that record."""
    resend: list[Action] = field(default_factory=list)
    """Rows not carried out: to be sent again as they were."""

    def settle(self, row: BatchRow, outcome: Outcome, result: RowResult) -> None:
        """The row is settled by the lookup: created or uncertain."""
        self.outcomes.append((row, outcome, result.hubspot_id or None))
        self.results[row.source_row] = result

    def adopt(self, row: BatchRow, update: Action) -> None:
        """The row updates the record that holds its key (not settled until it is answered)."""
        self.outcomes.append((row, Outcome.LOST, None))
        self.adopted.append(update)

    def send_again(self, row: BatchRow, action: Action) -> None:
        """The row was not carried out: it is sent again as it was."""
        self.outcomes.append((row, Outcome.LOST, None))
        self.resend.append(action)


class LookingUp:
    """Finding out by key what became of rows HubSpot did not say."""

    client: HubSpotClient
    mapping: Mapping
    journal: Journal
    run_id: str
    finder: Finder | None
    _sent_again: set[str]
    """Row keys sent again because an answer left them unsaid (once at most)."""

    @cached_property
    def _app_id(self) -> int | None:
        """The app the token belongs to: remembered in the portal's journal (per token
        fingerprint, never the token), or asked of HubSpot the first time a lookup needs it.
        Without it, the log says once how records are judged."""
        token = client_token(self.client)
        remembered = f"app:{fingerprint(self.client.base_url, token)}"
        known = self.journal.get_meta(remembered)
        if known is not None and known.isdigit():
            return int(known)
        app = token_app(self.client, token)
        if app is not None:
            self.journal.set_meta(remembered, str(app))
            return app
        log.warning(
            "HubSpot did not say which app this token belongs to: a record found by key "
            "after a lost answer counts as created by this run when HubSpot's data shows it "
            "was created during the send, not by a person or an import, with the values sent "
            "(which app created it cannot be checked)"
        )
        return None

    def recover(self, batches: Sequence[OpenBatch]) -> int:
        """Settle batches sent by a run that died before hearing the answer. The values sent
        are not kept: a record found proves a create by its window and author alone. An
        upsert's row whose record this run proved it created is that: `created` (undo takes
        it); the rest of an upsert, and every update, is sent again (both are idempotent)."""
        settled = 0
        for batch in batches:
            outcomes: list[tuple[BatchRow, Outcome, str | None]]
            if batch.operation == Operation.UPDATE:
                outcomes = [(r, Outcome.LOST, None) for r in batch.rows]
            else:
                looked = self._look([r.key_value for r in batch.rows], batch.created_epoch)
                outcomes = [self._journaled(r, looked) for r in batch.rows]
                if batch.operation == Operation.UPSERT:
                    outcomes = [(r, o if o is Outcome.FOUND else Outcome.LOST, i)
                                for r, o, i in outcomes]  # fmt: skip
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

    def _keyed(self) -> Finder | None:
        """The finder by the mapping's key, told the key is unique when the mapping's check
        against the portal said so; otherwise it reads the key's definition itself, and
        searches a key HubSpot does not hold unique (never a batch read by it)."""
        finder, key = self.finder, self.mapping.key
        if finder is not None and key is not None and self.mapping.by_column[key].unique:
            finder.known_unique()
        return finder

    def _look(
        self,
        values: Sequence[str | None],
        written: float | None,
        sent: dict[str, dict[str, str]] | None = None,
    ) -> dict[str, Looked] | None:
        """Key (as HubSpot stores it) -> what became of the row sent with it, for `values`;
        None when nothing can tell (no key, a lookup that failed). `written`: when the batch
        was sent (a search waits for its lag; None: not known); `sent`: key (as HubSpot
        stores it) -> the values sent (None: not known)."""
        finder = self._keyed()
        if finder is None or any(v is None for v in values):
            return None
        read = sorted({p for props in (sent or {}).values() for p in props})
        keys = [v for v in values if v is not None]
        if finder.find(keys, written, read=read) is None:
            return None
        if any(finder.holding(v) for v in keys):  # asked only when a record is to be judged
            finder.app_id = self._app_id
        window = Window(start=written, end=time.time())
        wanted = sent if sent is not None else {}
        return {
            self._stored(v): self._judge(finder, v, window, wanted.get(self._stored(v)))
            for v in keys
        }

    def _judge(
        self, finder: Finder, value: str, window: Window, sent: dict[str, str] | None
    ) -> Looked:
        """What the records `finder` found holding `value` say became of the row sent with
        it inside `window` with the values `sent` (None: not known)."""
        prop = self.mapping.key_property
        reasons = {hid: finder.not_ours(hid, window, sent) for hid in finder.holding(value)}
        ours = [hid for hid, why in reasons.items() if why is None]
        others = {hid: why for hid, why in reasons.items() if why is not None}
        if len(ours) == 1:
            return Looked(outcome=Outcome.FOUND, record_id=ours[0])
        if ours:
            why = (
                f"HubSpot holds {len(ours)} records with {prop} {value!r} that this app created "
                f"during the send with the values sent ({', '.join(ours)}): which one is this "
                "row's cannot be told"
            )
        elif not others:
            return Looked(outcome=Outcome.LOST)
        elif finder.unique and len(others) == 1:
            (held,) = others
            log.info(
                "%s %r is held by record %s, which this run did not create (%s): the row "
                "updates it",
                prop,
                value,
                held,
                others[held],
            )
            return Looked(outcome=Outcome.LOST, adopt=held, why=others[held])
        else:
            listed = "; ".join(f"{hid}: {why}" for hid, why in others.items())
            why = (
                f"HubSpot holds {len(others)} record{'s' if len(others) > 1 else ''} with "
                f"{prop} {value!r} that this run cannot prove it created ({listed}), and "
                f"{prop} is not unique in HubSpot: whether this row's record was created "
                "cannot be told"
            )
        log.warning("%s %r: %s", prop, value, why)
        return Looked(outcome=Outcome.UNCERTAIN, why=why)

    def _journaled(
        self, row: BatchRow, looked: dict[str, Looked] | None
    ) -> tuple[BatchRow, Outcome, str | None]:
        """A row's journal outcome by `_look`'s findings (UNCERTAIN when nothing can tell)."""
        seen = self._seen(looked, row.key_value)
        if seen is None:
            return row, Outcome.UNCERTAIN, None
        return row, seen.outcome, seen.record_id

    def _stored(self, value: str) -> str:
        """A key value as HubSpot stores it: exact, but for what HubSpot itself normalises
        (emails). `00420` and `420` are two keys, never one record."""
        return stored_value(self.mapping.object_type, self.mapping.key_property, value)

    def recheck_uncertain(self, rows: Sequence[PreparedRow], written: float | None) -> int:
        """Look up rows an earlier run left uncertain, now that HubSpot may answer: a key one
        record holds makes the row that record's (it is updated from now on, never taken as
        created: undo leaves it), a key none holds was not created, and a key several hold
        stays uncertain. `written`: when the latest of them may have been written (a search
        waits for its lag)."""
        keyed = [r for r in rows if r.key_value is not None]
        finder = self._keyed()
        if not keyed or finder is None:
            return 0
        found = finder.find([r.key_value for r in keyed if r.key_value is not None], written)
        if found is None:
            return 0
        settled: dict[str, str | None] = {}
        for row in keyed:
            held = finder.holding(row.key_value or "")
            if len(held) > 1:
                log.warning(
                    "row %d stays uncertain: %d records have %s %r (%s); %s",
                    row.row,
                    len(held),
                    self.mapping.key_property,
                    row.key_value,
                    ", ".join(held),
                    uncertain_advice(keyed=True),
                )
                continue
            settled[row.key] = held[0] if held else None
        self.journal.resolve(self.run_id, settled)
        return len(keyed)

    def settle_lost(
        self,
        batch: list[Action],
        operation: Operation,
        rows: list[BatchRow],
        sent: float,
        why: str,
    ) -> LostAnswer:
        """What became of a batch whose answer was lost (`why`), sent at `sent`: its creates
        and upserts are looked up by key. A record HubSpot's data proves this run created is
        `created`; a create's key HubSpot holds unique on another record makes the row an
        update of it; a create the lookup cannot settle is `uncertain`, never sent again;
        the rest (and every update) is sent again."""
        lost = LostAnswer()
        looked = (
            self._look([a.row.key_value for a in batch], sent, self._sent_values(batch, operation))
            if operation is not Operation.UPDATE
            else None
        )
        for action, row in zip(batch, rows, strict=True):
            seen = self._seen(looked, action.row.key_value)
            if seen is not None and seen.outcome is Outcome.FOUND:
                made = self._found(row.source_row, seen, FOUND_AFTER_LOSS)
                lost.settle(row, Outcome.FOUND, made)
            elif operation is not Operation.CREATE:
                lost.send_again(row, action)  # updates and upserts are safe to send again
            elif seen is not None and seen.adopt:
                lost.adopt(row, adopting(action, seen.adopt, self.mapping))
            elif seen is None or seen.outcome is Outcome.UNCERTAIN:
                message = f"{why}: {self._unsettled(action, seen)}"
                lost.settle(row, Outcome.UNCERTAIN, _uncertain(row.source_row, message))
            else:
                lost.send_again(row, action)
        return lost

    def _found(self, row: int, seen: Looked, message: str) -> RowResult:
        """A row created by this run, as a lookup proved it (`message` says how)."""
        app = self.finder.app_id if self.finder is not None else None
        who = "this app" if app is not None else "an app (which one could not be checked)"
        proof = f"HubSpot's data shows {who} created it during the send, with the values sent"
        return RowResult(
            row=row,
            status=RowStatus.CREATED,
            hubspot_id=seen.record_id or "",
            message=message.format(proof=proof),
        )

    def _seen(self, looked: dict[str, Looked] | None, value: str | None) -> Looked | None:
        """What `_look` found of the row sent with key `value` (None: nothing can tell)."""
        return looked.get(self._stored(value)) if looked is not None and value else None

    def _sent_values(self, batch: list[Action], operation: Operation) -> dict[str, dict[str, str]]:
        """Key (as HubSpot stores it) -> the values each keyed row of a batch sent (a create
        sends all its values)."""
        return {
            self._stored(a.row.key_value): (
                a.row.properties if operation is Operation.CREATE else a.sends
            )
            for a in batch
            if a.row.key_value is not None
        }

    def _unsettled(self, action: Action, seen: Looked | None) -> str:
        """Why a create whose answer was lost is not settled by looking it up, and what to do."""
        if seen is not None:
            why = seen.why
        elif self.finder is None or action.row.key_value is None:
            why = (
                "the record may or may not exist in HubSpot, and the mapping has no key to "
                "look it up by"
            )
        else:
            why = (
                "the record may or may not exist in HubSpot, and looking it up by "
                f"{self.mapping.key_property} failed"
            )
        keyed = self.finder is not None and action.row.key_value is not None
        return f"{why}, so it is not sent again; {uncertain_advice(keyed)}"

    def _look_up_unsaid(
        self,
        actions: list[Action],
        sent: float,
        settle: Callable[[Action, RowResult, Outcome | None], None],
    ) -> list[tuple[Operation, list[Action]]]:
        """Created rows a 2xx answer neither listed nor refused, looked up by key: created (a
        record HubSpot's data proves this run's), an update of the record holding a key
        HubSpot holds unique, not found (sent again), or uncertain (no key, or records not
        proven this run's hold a key HubSpot does not hold unique): never taken as failed,
        which would create them a second time."""
        log.warning("HubSpot's answer left %d created rows unsaid: looking them up", len(actions))
        values = self._sent_values(actions, Operation.CREATE)
        looked = self._look([a.row.key_value for a in actions], sent, values)
        again: list[Action] = []
        adopted: list[Action] = []
        for action in actions:
            row, seen = action.row.row, self._seen(looked, action.row.key_value)
            if seen is not None and seen.outcome is Outcome.FOUND:
                settle(action, self._found(row, seen, UNSAID_FOUND), Outcome.FOUND)
            elif seen is not None and seen.adopt:
                adopted.append(adopting(action, seen.adopt, self.mapping))
                settle(action, held_key(row, seen.adopt), Outcome.LOST)
            elif seen is None or seen.outcome is Outcome.UNCERTAIN:
                message = f"{UNACCOUNTED}: {self._unsettled(action, seen)}"
                settle(action, _uncertain(row, message), None)
            elif action.row.key in self._sent_again:  # unsaid twice: left to the next run
                why = f"{UNACCOUNTED} twice, nor found in HubSpot; not created (safe to run again)"
                settle(action, failed_row(row, why), Outcome.LOST)
            else:
                settle(
                    action, failed_row(row, f"{UNACCOUNTED}; not found in HubSpot"), Outcome.LOST
                )
                self._sent_again.add(action.row.key)
                again.append(action)
        follow = [(Operation.UPDATE, adopted)] if adopted else []
        return follow + ([(Operation.CREATE, again)] if again else [])


def _uncertain(row: int, message: str) -> RowResult:
    return RowResult(row=row, status=RowStatus.UNCERTAIN, message=message)


def _tally(outcomes: Sequence[tuple[BatchRow, Outcome, str | None]]) -> str:
    counts: dict[str, int] = defaultdict(int)
    for _, state, _ in outcomes:
        counts["not created" if state is Outcome.LOST else state.value] += 1
    return ", ".join(f"{n} {s}" for s, n in counts.items())
