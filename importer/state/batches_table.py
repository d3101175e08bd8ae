"""The journal's `batches` table: each batch's intent, written before the request leaves, and
its outcome with what its rows became, both by group commit; and the batches a run left open
when it died, each with the key property it was sent with, so that whichever mapping runs next
settles it by that key. A mixin of `Journal`, sharing its connection."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from collections.abc import Mapping as AnyMapping
from dataclasses import dataclass
from typing import Any

import orjson

from .records import (
    _ROW_STATES,
    KEEP_OWNER,
    BatchRow,
    BatchState,
    JournalTables,
    OpenBatch,
    Outcome,
    _now,
)

__all__ = ["BatchTables", "SentBatch"]

_KEYED = re.compile(r"key:([A-Za-z0-9_]+)=")
"""A row key that names its key property (`key:<property>=<value>`, see core/prepared.py)."""


def _sent_key(rows: Iterable[BatchRow]) -> str | None:
    """The key property a batch's rows were sent with, as their row keys name it; None when
    they name none (a keyless mapping's rows, or keys an older version wrote without it)."""
    for row in rows:
        found = _KEYED.match(row.row_key)
        if found is not None:
            return found.group(1)
    return None


@dataclass(frozen=True, kw_only=True)
class SentBatch(OpenBatch):
    """A batch sent but never confirmed, with the key property it was sent with."""

    key_property: str | None = None
    """None: the rows carry no key (a keyless mapping's): a lookup cannot settle them."""


def _items(rows: Iterable[tuple[BatchRow, Outcome | None, str | None]]) -> str:
    """A batch's rows, with their outcomes once known, as one JSON text (`batches.items`).

    One row per batch, not one per batch row: a batch's intent and outcome are then one
    small write each. With a row each (and an index over them), the journal spent 2.5 ms of
    SQLite's time per batch, which a burst of senders waited for in turn."""
    return orjson.dumps(
        [
            [
                r.row_key,
                r.key_value,
                r.trace_id,
                r.sent_hash,
                r.record_id,
                r.source_row,
                outcome,  # a StrEnum (or None): orjson writes its value
                hubspot_id,
            ]
            for r, outcome, hubspot_id in rows
        ]
    ).decode()  # text, not bytes: SQLite would keep bytes as a BLOB, which json_each misreads


def _batch_rows(entries: Iterable[Sequence[Any]]) -> list[tuple[BatchRow, str | None, str | None]]:
    """Rows and outcomes back from `_items`' entries (or batch_rows' columns in that order)."""
    return [
        (
            BatchRow(
                row_key=key,
                key_value=key_value,
                trace_id=trace,
                sent_hash=sent_hash,
                source_row=source_row,
                record_id=record_id,
            ),
            outcome,
            hid,
        )
        for key, key_value, trace, sent_hash, record_id, source_row, outcome, hid in entries
    ]


@dataclass(frozen=True, slots=True)
class _Intent:
    """A batch about to be sent: its id is given when it is written."""

    run_id: str
    operation: str
    items: str
    key_property: str
    """"" for a keyless mapping's batch."""


@dataclass(frozen=True, slots=True)
class _Settled:
    """A batch's outcomes, and what the rows became."""

    batch_id: int
    run_id: str
    items: str
    remembered: list[list[Any]]
    forgotten: list[str]
    """Row keys whose record is gone from HubSpot (deleted or merged away)."""


class _Job:
    """One thread's intent or outcomes, waiting for a group commit."""

    def __init__(self, what: _Intent | _Settled) -> None:
        self.what = what
        self.done = False
        self.batch_id = 0
        self.error: BaseException | None = None


def _remembered_as(row: BatchRow, outcome: Outcome) -> Outcome:
    """What the journal remembers of a row's outcome. An update sent to a record the journal
    knows (`record_id`) whose outcome is not known leaves the row as it was, its record with
    it: the record exists, and sending the update again is safe. Remembered as uncertain,
    without the record, --forget-uncertain would have the next run create a second one."""
    if outcome is Outcome.UNCERTAIN and row.record_id:
        return Outcome.LOST
    return outcome


class BatchTables(JournalTables):
    """Methods of `Journal` over the `batches` table (and the `rows` a settled batch updates)."""

    _group: threading.Condition
    _queue: list[_Job]
    _leading: bool

    def _start_group_commit(self) -> None:
        """No thread is committing a group yet, and none is waiting to."""
        self._group = threading.Condition()
        self._queue = []
        self._leading = False

    def _grouped(self, what: _Intent | _Settled) -> int:
        """Write `what` in a transaction it may share with other threads' concurrent intents
        and outcomes (group commit); returns once it is committed, with the batch id of an
        intent. A burst of senders' intents then take one commit instead of waiting for the
        connection in turn, which spread the burst's sends over a tenth of a second.

        The group is written in a few statements, whatever its size, each stepping once per
        batch at most, never once per row: each step lets go of the GIL while SQLite works,
        and under a burst taking it back can wait for other senders for milliseconds. Written
        a batch at a time (and a row at a time by executemany), a group of 15 took 45 ms on
        average, and up to 190.

        A group that fails fails every job in it, and writes nothing."""
        job = _Job(what)
        with self._group:
            self._queue.append(job)
            while not job.done and self._leading:
                self._group.wait()
            if job.done:
                if job.error is not None:
                    raise job.error
                return job.batch_id
            self._leading = True  # this thread commits what is queued, its own job included
            jobs, self._queue = self._queue, []
        try:
            with self._txn() as db:
                self._write_group(db, jobs)
        except BaseException as exc:
            for queued in jobs:
                queued.error = exc
            raise
        finally:
            with self._group:
                for queued in jobs:
                    queued.done = True
                self._leading = False
                self._group.notify_all()
        return job.batch_id

    @staticmethod
    def _write_group(db: sqlite3.Connection, jobs: list[_Job]) -> None:
        now = _now()
        intents = [j for j in jobs if isinstance(j.what, _Intent)]
        if intents:
            # The ids AUTOINCREMENT would give, given here: one statement writes them all.
            (last,) = db.execute(
                "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'batches'), "
                "0), COALESCE((SELECT MAX(batch_id) FROM batches), 0))"
            ).fetchone()
            written = []
            for batch_id, job in enumerate(intents, start=int(last) + 1):
                assert isinstance(job.what, _Intent)
                job.batch_id = batch_id
                what = job.what
                written.append(
                    (
                        batch_id,
                        what.run_id,
                        what.operation,
                        BatchState.SENT.value,
                        now,
                        what.items,
                        what.key_property,
                    )
                )
            db.executemany(
                "INSERT INTO batches (batch_id, run_id, operation, state, created, items, "
                "key_property) VALUES (?, ?, ?, ?, ?, ?, ?)",
                written,
            )
        settled = [j.what for j in jobs if isinstance(j.what, _Settled)]
        if settled:
            db.executemany(
                "UPDATE batches SET state = ?, settled = ?, items = ? WHERE batch_id = ?",
                [(BatchState.CONFIRMED.value, now, s.items, s.batch_id) for s in settled],
            )
            gone = [key for s in settled for key in s.forgotten]
            if gone:
                db.executemany("DELETE FROM rows WHERE row_key = ?", [(k,) for k in gone])
            # What each row became, for every batch of the group in one statement: SQLite
            # splits the JSON itself, where executemany would step (and let go of the GIL,
            # and wait to take it back) once per row.
            db.execute(
                "INSERT INTO rows (row_key, state, hubspot_id, sent_hash, sent, run_id, updated, "
                "owner_run) SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
                "json_extract(value, '$[2]'), json_extract(value, '$[3]'), "
                "json_extract(value, '$[4]'), json_extract(value, '$[6]'), ?, "
                "CASE WHEN json_extract(value, '$[5]') THEN json_extract(value, '$[6]') END "
                "FROM json_each(?) WHERE true ON CONFLICT (row_key) DO UPDATE SET "
                f"state = excluded.state, hubspot_id = excluded.hubspot_id, {KEEP_OWNER}, "
                "sent_hash = excluded.sent_hash, sent = excluded.sent, "
                "run_id = excluded.run_id, updated = excluded.updated",
                (
                    now,
                    orjson.dumps([[*r, s.run_id] for s in settled for r in s.remembered]).decode(),
                ),
            )

    def _rows_of(
        self, batch_id: int, items: str | None
    ) -> list[tuple[BatchRow, str | None, str | None]]:
        """A batch's rows and their outcomes, also from journals of older versions."""
        if items is not None:
            return _batch_rows(orjson.loads(items))
        return _batch_rows(
            self._db.execute(
                "SELECT row_key, key_value, trace_id, sent_hash, record_id, source_row, "
                "outcome, hubspot_id FROM batch_rows WHERE batch_id = ? ORDER BY rowid",
                (batch_id,),
            )
        )

    def begin_batch(self, run_id: str, operation: str, rows: Sequence[BatchRow]) -> int:
        """Record the intent to send `rows`, with the key property they are sent with (the one
        their row keys name); committed before the request leaves."""
        key = _sent_key(rows) or ""
        items = _items((r, None, None) for r in rows)
        return self._grouped(_Intent(run_id, operation, items, key))

    def settle(
        self,
        batch_id: int,
        run_id: str,
        outcomes: Sequence[tuple[BatchRow, Outcome, str | None]],
        sent: AnyMapping[str, str] | None = None,
    ) -> None:
        """Record each row's outcome and close the batch, in one transaction. `sent`: row key
        -> what HubSpot now holds from this tool for the row (properties as JSON)."""
        sent = sent or {}
        # A row whose record an update found (update mode, an upsert of a record that was
        # there, a create refused because one held the key) owns nothing: the mapping did not
        # make that record, so its mirror never archives it (KEEP_OWNER keeps an owner).
        remembered = [
            [
                row.row_key,
                state,
                hubspot_id,
                row.sent_hash,
                sent.get(row.row_key),
                outcome is not Outcome.UPDATED,
            ]
            for row, outcome, hubspot_id in outcomes
            if (state := _ROW_STATES.get(_remembered_as(row, outcome))) is not None
        ]
        forgotten = [row.row_key for row, outcome, _ in outcomes if outcome is Outcome.GONE]
        self._grouped(_Settled(batch_id, run_id, _items(outcomes), remembered, forgotten))

    def open_batches(self) -> list[SentBatch]:
        """Batches sent but never confirmed: a run died while they were in flight. A batch an
        older version wrote without its key property has the one its row keys name."""
        batches = self._db.execute(
            "SELECT batch_id, run_id, operation, items, created, key_property FROM batches "
            "WHERE state = ? ORDER BY batch_id",
            (BatchState.SENT.value,),
        ).fetchall()
        found = []
        for batch_id, run_id, operation, items, created, key_property in batches:
            rows = tuple(row for row, _, _ in self._rows_of(batch_id, items))
            found.append(
                SentBatch(
                    batch_id=batch_id,
                    run_id=run_id,
                    operation=operation,
                    rows=rows,
                    created=created,
                    key_property=_sent_key(rows) if key_property is None else key_property or None,
                )
            )
        return found
