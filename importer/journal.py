"""Run journal: what each row key became in HubSpot, and every batch's intent and outcome.

One SQLite file per HubSpot portal (base URL) and object type. A batch is written as `sent`
in its own transaction *before* the request leaves, and `confirmed` with its outcome after the
answer; a `sent` batch found at start-up is one a crashed run never heard back from, and is
reconciled before anything else is sent.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Generic, TypeVar

import platformdirs

from ._errors import HubSpotImportError

__all__ = [
    "BatchRow",
    "Journal",
    "KnownRow",
    "LockHeld",
    "OpenBatch",
    "Outcome",
    "RowState",
    "default_state_dir",
    "journal_path",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    started TEXT NOT NULL,
    finished TEXT,
    input_file TEXT NOT NULL,
    sheet TEXT,
    mapping_file TEXT NOT NULL,
    mode TEXT NOT NULL,
    base_url TEXT NOT NULL,
    object_type TEXT NOT NULL,
    pid INTEGER NOT NULL,
    counts TEXT,
    workbook TEXT,
    stopped_by TEXT,
    undone TEXT,
    archived INTEGER
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (
    row_key TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    hubspot_id TEXT,
    sent_hash TEXT,
    run_id TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    batch_id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    operation TEXT NOT NULL,
    state TEXT NOT NULL,
    created TEXT NOT NULL,
    settled TEXT
);
CREATE TABLE IF NOT EXISTS batch_rows (
    batch_id INTEGER NOT NULL REFERENCES batches (batch_id),
    row_key TEXT NOT NULL,
    key_value TEXT,
    trace_id TEXT NOT NULL,
    sent_hash TEXT NOT NULL,
    record_id TEXT,
    source_row INTEGER NOT NULL,
    outcome TEXT,
    hubspot_id TEXT
);
-- settle() updates one row of a batch at a time: found directly, not by scanning the batch.
-- The same index finds a batch's rows; a second one on batch_id alone only slowed inserts.
CREATE INDEX IF NOT EXISTS batch_rows_row ON batch_rows (batch_id, row_key);
DROP INDEX IF EXISTS batch_rows_batch;
CREATE INDEX IF NOT EXISTS batches_state ON batches (state);
"""


INIT_WAIT_SECONDS = 10.0


class LockHeld(HubSpotImportError):
    """Another run holds this journal's lock: do not send anything."""


class RowState(StrEnum):
    SYNCED = "synced"  # HubSpot has the record; hubspot_id and the hash of what was sent
    UNCERTAIN = "uncertain"  # a create may or may not have happened; never created again


class Outcome(StrEnum):
    """What became of one row of one batch."""

    CREATED = "created"
    UPDATED = "updated"
    FOUND = "found"  # the answer was lost, and a lookup found the record: it was created
    UNCERTAIN = "uncertain"
    FAILED = "failed"  # HubSpot refused it: nothing to remember
    LOST = "lost"  # not carried out (or not known to be): the next plan sends it again

    @property
    def row_state(self) -> RowState | None:
        if self in (Outcome.CREATED, Outcome.UPDATED, Outcome.FOUND):
            return RowState.SYNCED
        return RowState.UNCERTAIN if self is Outcome.UNCERTAIN else None


class BatchState(StrEnum):
    SENT = "sent"
    CONFIRMED = "confirmed"


@dataclass(frozen=True, kw_only=True, slots=True)
class KnownRow:
    state: RowState
    hubspot_id: str | None
    sent_hash: str | None
    run_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class BatchRow:
    row_key: str
    key_value: str | None
    trace_id: str
    sent_hash: str
    source_row: int
    record_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class OpenBatch:
    batch_id: int
    run_id: str
    operation: str
    rows: tuple[BatchRow, ...]


def default_state_dir() -> Path:
    return Path(platformdirs.user_data_dir("hubspot-import", appauthor=False))


def journal_path(state_dir: Path, base_url: str, object_type: str) -> Path:
    """`<state-dir>/<host-and-port>-<object type>.sqlite`: one journal per portal and type."""
    target = re.sub(r"^[a-z]+://", "", base_url.rstrip("/"))
    slug = re.sub(r"[^A-Za-z0-9.]+", "_", target).strip("_")
    return state_dir / f"{slug}-{re.sub(r'[^A-Za-z0-9_-]+', '_', object_type)}.sqlite"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


_T = TypeVar("_T")


class _Job(Generic[_T]):
    """One thread's work waiting for a group commit."""

    def __init__(self, work: Callable[[sqlite3.Connection], _T]) -> None:
        self.work = work
        self.done = False
        self.value: _T | None = None
        self.error: BaseException | None = None

    def result(self) -> _T:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


class Journal:
    """The journal file; every method is one transaction."""

    def __init__(self, path: Path, *, lock: bool = False) -> None:
        """Open (creating) the journal; with `lock`, take the run lock first (or LockHeld)."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fh: Any = None
        if lock:
            self.lock()
        # Upload workers settle batches from their own threads: one connection, one lock.
        self._mutex = threading.RLock()
        self._group = threading.Condition()
        self._queue: list[_Job[Any]] = []
        self._leading = False
        self._db = sqlite3.connect(
            str(self.path), isolation_level=None, timeout=30, check_same_thread=False
        )
        deadline = time.monotonic() + INIT_WAIT_SECONDS
        while True:
            try:
                # Switching a new file to WAL needs it to itself: a reader may be opening it too.
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")  # an intent must survive a power cut
                self._db.executescript(_SCHEMA)
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    self.unlock()
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        self.unlock()
        self._db.close()

    @contextlib.contextmanager
    def _txn(self) -> Iterator[sqlite3.Connection]:
        with self._mutex:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _grouped(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run `work` as its own transaction, made durable by a commit it may share with other
        threads' concurrent work (group commit): a burst of senders' intents take one commit
        instead of waiting for the connection in turn, one transaction each, which spread the
        burst's sends over a tenth of a second.

        Each `work` runs in a savepoint, so one that fails is undone alone; the call returns
        only once its changes are committed, as with `_txn`."""
        job = _Job(work)
        with self._group:
            self._queue.append(job)
            while not job.done and self._leading:
                self._group.wait()
            if job.done:
                return job.result()
            self._leading = True  # this thread commits what is queued, its own work included
            jobs, self._queue = self._queue, []
        try:
            with self._txn() as db:
                for queued in jobs:
                    db.execute("SAVEPOINT work")
                    try:
                        queued.value = queued.work(db)
                    except Exception as exc:
                        db.execute("ROLLBACK TO work")
                        queued.error = exc
                    db.execute("RELEASE work")
        except BaseException as exc:
            for queued in jobs:
                queued.error = queued.error or exc
            raise
        finally:
            with self._group:
                for queued in jobs:
                    queued.done = True
                self._leading = False
                self._group.notify_all()
        return job.result()

    # --- locking ------------------------------------------------------------------------------

    def lock(self) -> None:
        """Take the journal's lock, or raise LockHeld naming the run that has it."""
        lock_path = self.path.with_suffix(".lock")
        fh = lock_path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise LockHeld(
                f"another import is running against this portal and object type ({holder}); "
                f"it holds {lock_path}. Wait for it to finish, or check that it is still alive."
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} since {_now()}")
        fh.flush()
        self._lock_fh = fh

    def unlock(self) -> None:
        if self._lock_fh is not None:
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None

    # --- runs ---------------------------------------------------------------------------------

    def start_run(
        self,
        run_id: str,
        *,
        input_file: str,
        sheet: str | None,
        mapping_file: str,
        mode: str,
        base_url: str,
        object_type: str,
    ) -> None:
        with self._txn() as db:
            db.execute(
                "INSERT INTO runs (run_id, started, input_file, sheet, mapping_file, mode, "
                "base_url, object_type, pid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    _now(),
                    input_file,
                    sheet,
                    mapping_file,
                    mode,
                    base_url,
                    object_type,
                    os.getpid(),
                ),
            )

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._txn() as db:
            db.execute(
                "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
                "value = excluded.value",
                (key, value),
            )

    def run(self, run_id: str) -> dict[str, Any] | None:
        return next((r for r in self.runs() if r["run_id"] == run_id), None)

    def written_by(self, run_id: str) -> dict[str, list[tuple[str, str]]]:
        """Records a run created and updated: 'created'/'updated' -> [(row key, HubSpot id)]."""
        found: dict[str, list[tuple[str, str]]] = {"created": [], "updated": []}
        for row_key, outcome, hid in self._db.execute(
            "SELECT r.row_key, r.outcome, r.hubspot_id FROM batch_rows r "
            "JOIN batches b ON b.batch_id = r.batch_id WHERE b.run_id = ? AND r.outcome IN "
            "(?, ?, ?) AND r.hubspot_id IS NOT NULL ORDER BY r.rowid",
            (run_id, Outcome.CREATED.value, Outcome.FOUND.value, Outcome.UPDATED.value),
        ):
            kind = "updated" if outcome == Outcome.UPDATED else "created"
            found[kind].append((row_key, hid))
        return found

    def record_undo(self, run_id: str, archived: Sequence[tuple[str, str]]) -> None:
        """The run's created records were archived: forget them, so they can be created again."""
        with self._txn() as db:
            for row_key, hid in archived:
                db.execute("DELETE FROM rows WHERE row_key = ? AND hubspot_id = ?", (row_key, hid))
            db.execute(
                "UPDATE runs SET undone = ?, archived = ? WHERE run_id = ?",
                (_now(), len(archived), run_id),
            )

    def finish_run(
        self, run_id: str, *, counts: dict[str, int], workbook: str | None, stopped_by: str | None
    ) -> None:
        with self._txn() as db:
            db.execute(
                "UPDATE runs SET finished = ?, counts = ?, workbook = ?, stopped_by = ? "
                "WHERE run_id = ?",
                (_now(), json.dumps(counts), workbook, stopped_by, run_id),
            )

    def runs(self) -> list[dict[str, Any]]:
        cur = self._db.execute("SELECT * FROM runs ORDER BY started, run_id")
        names = [c[0] for c in cur.description]
        out = []
        for row in cur.fetchall():
            record = dict(zip(names, row, strict=True))
            record["counts"] = json.loads(record["counts"]) if record["counts"] else {}
            out.append(record)
        return out

    # --- rows ---------------------------------------------------------------------------------

    def known(self, keys: Iterable[str]) -> dict[str, KnownRow]:
        wanted = list(keys)
        found: dict[str, KnownRow] = {}
        (stored,) = self._db.execute("SELECT COUNT(*) FROM rows").fetchone()
        if stored == 0 or not wanted:
            return found  # a first run: nothing to look up
        select = "SELECT row_key, state, hubspot_id, sent_hash, run_id FROM rows"
        want = set(wanted)

        def keep(cursor: sqlite3.Cursor) -> None:
            for key, state, hid, sent_hash, run_id in cursor:
                if key in want:
                    found[key] = KnownRow(
                        state=RowState(state), hubspot_id=hid, sent_hash=sent_hash, run_id=run_id
                    )

        if stored <= len(wanted):
            keep(self._db.execute(select))  # reading the whole table once beats many queries
        else:
            for start in range(0, len(wanted), 900):  # SQLite's bound-parameter limit
                chunk = wanted[start : start + 900]
                keep(
                    self._db.execute(
                        f"{select} WHERE row_key IN ({','.join('?' * len(chunk))})", chunk
                    )
                )
        return found

    def forget_uncertain(self) -> int:
        """Drop rows left uncertain, so the next plan creates them: the user checked HubSpot."""
        with self._txn() as db:
            cur = db.execute("DELETE FROM rows WHERE state = ?", (RowState.UNCERTAIN.value,))
        return cur.rowcount

    def resolve(self, run_id: str, found: dict[str, str | None]) -> None:
        """Settle uncertain rows after looking them up: an id -> synced; None -> never created."""
        now = _now()
        with self._txn() as db:
            for row_key, hubspot_id in found.items():
                if hubspot_id is None:
                    db.execute(
                        "DELETE FROM rows WHERE row_key = ? AND state = ?",
                        (row_key, RowState.UNCERTAIN.value),
                    )
                else:
                    db.execute(
                        "UPDATE rows SET state = ?, hubspot_id = ?, run_id = ?, updated = ? "
                        "WHERE row_key = ? AND state = ?",
                        (
                            RowState.SYNCED.value,
                            hubspot_id,
                            run_id,
                            now,
                            row_key,
                            RowState.UNCERTAIN.value,
                        ),
                    )

    # --- batches ------------------------------------------------------------------------------

    def begin_batch(self, run_id: str, operation: str, rows: Sequence[BatchRow]) -> int:
        """Record the intent to send `rows`; committed before the request leaves."""

        def work(db: sqlite3.Connection) -> int:
            cur = db.execute(
                "INSERT INTO batches (run_id, operation, state, created) VALUES (?, ?, ?, ?)",
                (run_id, operation, BatchState.SENT.value, _now()),
            )
            batch_id = int(cur.lastrowid or 0)
            db.executemany(
                "INSERT INTO batch_rows (batch_id, row_key, key_value, trace_id, sent_hash, "
                "record_id, source_row) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        batch_id,
                        r.row_key,
                        r.key_value,
                        r.trace_id,
                        r.sent_hash,
                        r.record_id,
                        r.source_row,
                    )
                    for r in rows
                ],
            )
            return batch_id

        return self._grouped(work)

    def settle(
        self, batch_id: int, run_id: str, outcomes: Sequence[tuple[BatchRow, Outcome, str | None]]
    ) -> None:
        """Record each row's outcome and close the batch, in one transaction."""
        now = _now()
        remembered = [
            (row.row_key, state.value, hubspot_id, row.sent_hash, run_id, now)
            for row, outcome, hubspot_id in outcomes
            if (state := outcome.row_state) is not None
        ]

        def work(db: sqlite3.Connection) -> None:
            db.executemany(
                "UPDATE batch_rows SET outcome = ?, hubspot_id = ? "
                "WHERE batch_id = ? AND row_key = ?",
                [(outcome.value, hid, batch_id, row.row_key) for row, outcome, hid in outcomes],
            )
            db.executemany(
                "INSERT INTO rows (row_key, state, hubspot_id, sent_hash, run_id, updated)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (row_key) DO UPDATE SET "
                "state = excluded.state, hubspot_id = excluded.hubspot_id, "
                "sent_hash = excluded.sent_hash, run_id = excluded.run_id, "
                "updated = excluded.updated",
                remembered,
            )
            db.execute(
                "UPDATE batches SET state = ?, settled = ? WHERE batch_id = ?",
                (BatchState.CONFIRMED.value, now, batch_id),
            )

        self._grouped(work)

    def open_batches(self) -> list[OpenBatch]:
        """Batches sent but never confirmed: a run died while they were in flight."""
        batches = self._db.execute(
            "SELECT batch_id, run_id, operation FROM batches WHERE state = ? ORDER BY batch_id",
            (BatchState.SENT.value,),
        ).fetchall()
        out = []
        for batch_id, run_id, operation in batches:
            rows = tuple(
                BatchRow(
                    row_key=k, key_value=kv, trace_id=t, sent_hash=h, source_row=sr, record_id=rid
                )
                for k, kv, t, h, sr, rid in self._db.execute(
                    "SELECT row_key, key_value, trace_id, sent_hash, source_row, record_id "
                    "FROM batch_rows WHERE batch_id = ? ORDER BY rowid",
                    (batch_id,),
                )
            )
            out.append(OpenBatch(batch_id=batch_id, run_id=run_id, operation=operation, rows=rows))
        return out
