"""Run journal: what each row key became in HubSpot, and every batch's intent and outcome.

One SQLite file per HubSpot portal (told apart by the token's account details) and object
type. A batch is written as `sent` in its own transaction *before* the request leaves, and
`confirmed` with its outcome after the answer; a `sent` batch found at start-up is one a
crashed run never heard back from, and is reconciled before anything else is sent.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from ..core.errors import ConfigError, LockHeld
from .batches_table import BatchTables
from .links_table import LINKS_SCHEMA, LinkTables
from .missing_table import MISSING_SCHEMA, MissingTables
from .no_room import unwritable
from .paths import default_state_dir, journal_path
from .records import (
    KEEP_OWNER,
    BatchRow,
    BatchState,
    KnownRow,
    OpenBatch,
    Outcome,
    RowState,
    _immediate,
    _machine_lock_path,
    _now,
    _release_lock,
    _take_lock,
    keep_private,
)
from .runs_table import RunTables

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
    archived INTEGER,
    input_fingerprint TEXT,  -- JSON: size, sha256, mtime, etag (see sheets/fingerprint.py)
    run_settings TEXT  -- a digest of the mapping file and the options that read the input
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
    settled TEXT,
    items TEXT,  -- the batch's rows as JSON (see _items); NULL in journals of older versions
    -- The key property the rows were sent with ('' without a key; NULL in journals of older
    -- versions, whose row keys name it): recovery settles the batch by it.
    key_property TEXT
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
-- Rows of batches written by older versions, which kept one row per batch row here.
CREATE INDEX IF NOT EXISTS batch_rows_row ON batch_rows (batch_id, row_key);
DROP INDEX IF EXISTS batch_rows_batch;
CREATE INDEX IF NOT EXISTS batches_state ON batches (state);
CREATE TABLE IF NOT EXISTS run_data (
    run_id TEXT NOT NULL,
    part TEXT NOT NULL,  -- 'input' or 'outcome' (see rundata.py)
    data BLOB NOT NULL,
    PRIMARY KEY (run_id, part)
);
CREATE TABLE IF NOT EXISTS links (
    -- The links this tool made and that HubSpot confirmed: per row, per association of the
    -- mapping (`links.association_id`), each target id with the types sent.
    row_key TEXT NOT NULL,
    association TEXT NOT NULL,
    from_id TEXT NOT NULL,
    to_id TEXT NOT NULL,
    types TEXT NOT NULL,
    run_id TEXT NOT NULL,
    PRIMARY KEY (row_key, association, to_id)
);
CREATE TABLE IF NOT EXISTS link_changes (
    -- Every link a run added or removed, for undo.
    run_id TEXT NOT NULL,
    from_type TEXT NOT NULL,
    to_type TEXT NOT NULL,
    from_id TEXT NOT NULL,
    to_id TEXT NOT NULL,
    types TEXT NOT NULL,
    change TEXT NOT NULL,  -- 'add' or 'remove'
    undone INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS link_changes_run ON link_changes (run_id);
CREATE TABLE IF NOT EXISTS undone (
    run_id TEXT NOT NULL,
    hubspot_id TEXT NOT NULL,
    archived TEXT NOT NULL,
    PRIMARY KEY (run_id, hubspot_id)
);
"""


INIT_WAIT_SECONDS = 10.0
KEY_FORMAT = "2"
"""Row keys name their property: `key:<property>=<value>` (format 1: `key:<value>`)."""


def _unusable(path: Path, exc: sqlite3.Error) -> ConfigError:
    """A journal that cannot be opened: said with what to do; never deleted here. One that
    cannot be written for want of room is no damage: StateUnwritable."""
    refused = unwritable(exc, path=path)
    if refused is not None:
        return refused
    if "locked" in str(exc):
        return ConfigError(
            f"the journal {path} stayed locked by another process for {INIT_WAIT_SECONDS:.0f} s "
            f"({exc}); wait for it to finish and run again"
        )
    return ConfigError(
        f"the journal {path} cannot be read ({exc}); it was left as it is. Move it aside "
        f"(e.g. rename it to {path.name}.damaged) and run again: a new journal starts, which "
        "knows no record of earlier runs, so rows keyed on a unique property find their "
        "records again (adopted), and others may be created again: check HubSpot first"
    )


_ADDED_COLUMNS = (
    ("batches", "items", "TEXT"),  # older: a batch's rows were kept in batch_rows alone
    ("rows", "sent", "TEXT"),  # older: the values sent were not kept
    ("runs", "input_fingerprint", "TEXT"),  # older: the input's fingerprint was not kept
    ("runs", "run_settings", "TEXT"),
    # The run that made the row's record the journal's (created or adopted it); later runs
    # that update it leave it: the mirror's records are the ones its mapping made.
    ("rows", "owner_run", "TEXT"),
    ("batches", "key_property", "TEXT"),  # older: recovery went by the next run's key
)
"""Columns later versions added to a table: a journal an older version made gets them."""


def _add_columns(db: sqlite3.Connection) -> None:
    """Add the columns `_ADDED_COLUMNS` names to a journal from an older version."""
    for table, column, kind in _ADDED_COLUMNS:
        columns = {c[1] for c in db.execute(f"PRAGMA table_info({table})")}
        if column not in columns:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


class Journal(BatchTables, RunTables, LinkTables, MissingTables):
    """The journal file; every method is one transaction."""

    def __init__(self, path: Path, *, lock: bool = False) -> None:
        """Open (creating) the journal; with `lock`, take the run lock first (or LockHeld)."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fh: Any = None
        self._machine_fh: Any = None
        if lock:
            self.lock()
        # Upload workers settle batches from their own threads: one connection, one lock.
        self._mutex = threading.RLock()
        self._start_group_commit()
        self._db = sqlite3.connect(
            str(self.path), isolation_level=None, timeout=30, check_same_thread=False
        )
        keep_private(self.path)
        deadline = time.monotonic() + INIT_WAIT_SECONDS
        while True:
            try:
                # Switching a new file to WAL needs it to itself: a reader may be opening it too.
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")  # an intent must survive a power cut
                self._db.executescript(_SCHEMA + MISSING_SCHEMA + LINKS_SCHEMA)
                _add_columns(self._db)
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    self.unlock()
                    self._db.close()
                    raise _unusable(self.path, exc) from exc
                time.sleep(0.05)
            except sqlite3.DatabaseError as exc:  # not a database, or a damaged one
                self.unlock()
                self._db.close()
                raise _unusable(self.path, exc) from exc

    def close(self) -> None:
        self.unlock()
        self._db.close()

    @contextlib.contextmanager
    def _txn(self) -> Iterator[sqlite3.Connection]:
        with self._mutex, _immediate(self._db) as db:
            yield db

    # --- locking ------------------------------------------------------------------------------

    def lock(self) -> None:
        """Take the journal's lock, and the machine's lock on the same portal and object type
        (two runs with different --state-dir must not both send); or raise LockHeld naming
        the run that has it."""
        self._lock_fh = _take_lock(self.path.with_suffix(".lock"))
        machine = _machine_lock_path(self.path)
        if machine is None:
            return
        try:
            self._machine_fh = _take_lock(machine)
        except BaseException:
            self.unlock()
            raise

    def unlock(self) -> None:
        for name in ("_machine_fh", "_lock_fh"):
            fh = getattr(self, name, None)
            if fh is not None:
                _release_lock(fh)
                setattr(self, name, None)

    # --- meta ---------------------------------------------------------------------------------

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

    # --- rows ---------------------------------------------------------------------------------

    def known(self, keys: Iterable[str]) -> dict[str, KnownRow]:
        wanted = list(keys)
        found: dict[str, KnownRow] = {}
        (stored,) = self._db.execute("SELECT COUNT(*) FROM rows").fetchone()
        if stored == 0 or not wanted:
            return found  # a first run: nothing to look up
        select = "SELECT row_key, state, hubspot_id, sent_hash, run_id, updated, sent FROM rows"
        want = set(wanted)

        def keep(cursor: sqlite3.Cursor) -> None:
            for key, state, hid, sent_hash, run_id, updated, sent in cursor:
                if key in want:
                    found[key] = KnownRow(
                        state=RowState(state),
                        hubspot_id=hid,
                        sent_hash=sent_hash,
                        run_id=run_id,
                        updated=updated,
                        sent=sent,
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

    def upgrade_keys(self, new_key: Callable[[str], str], current: str) -> int:
        """Rewrite row keys an earlier version wrote as `key:<value>` (without the key
        property) with `new_key(value)`, once per journal; keys that already start with
        `current` (`key:<property>=`) are left as they are. Returns how many were rewritten.
        Rows of open batches are rewritten too, so a crash from before is settled as usual."""
        if self.get_meta("key_format") == KEY_FORMAT:
            return 0
        with self._txn() as db:
            rows = [
                row
                for row in db.execute("SELECT row_key FROM rows WHERE row_key LIKE 'key:%'")
                if not row[0].startswith(current)
            ]
            for (old,) in rows:
                db.execute(
                    "UPDATE OR IGNORE rows SET row_key = ? WHERE row_key = ?",
                    (new_key(old[4:]), old),
                )
            for batch_id, items in db.execute(
                "SELECT batch_id, items FROM batches WHERE state = ? AND items IS NOT NULL",
                (BatchState.SENT.value,),
            ).fetchall():
                entries = orjson.loads(items)
                for entry in entries:
                    key = str(entry[0])
                    if key.startswith("key:") and not key.startswith(current):
                        entry[0] = new_key(key[4:])
                db.execute(
                    "UPDATE batches SET items = ? WHERE batch_id = ?",
                    (orjson.dumps(entries).decode(), batch_id),
                )
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('key_format', ?)", (KEY_FORMAT,)
            )
        return len(rows)

    def keyless_import(self, scope: str) -> dict[str, Any] | None:
        """The latest import of one file with one keyless mapping: its generation (the run
        that began it), whether it finished, and the run that last worked on it."""
        value = self.get_meta(f"keyless:{scope}")
        found = json.loads(value) if value else None
        return found if isinstance(found, dict) else None

    def record_keyless_import(self, scope: str, state: dict[str, Any]) -> None:
        self.set_meta(f"keyless:{scope}", json.dumps(state))

    def has_value_hash_keys(self) -> bool:
        """Rows an earlier version keyed by their values' hash alone (`hash:`)."""
        row = self._db.execute("SELECT 1 FROM rows WHERE row_key LIKE 'hash:%' LIMIT 1")
        return row.fetchone() is not None

    def forget(self, row_keys: Iterable[str]) -> None:
        """Rows whose record HubSpot no longer has (found by --verify): they start anew."""
        with self._txn() as db:
            db.executemany("DELETE FROM rows WHERE row_key = ?", [(k,) for k in row_keys])

    def repoint(self, moved: dict[str, str]) -> None:
        """Rows whose record was merged into another: row key -> the surviving record's id."""
        with self._txn() as db:
            db.executemany(
                "UPDATE rows SET hubspot_id = ?, updated = ? WHERE row_key = ?",
                [(hid, _now(), key) for key, hid in moved.items()],
            )

    def forget_uncertain(self) -> int:
        """Drop rows left uncertain, so the next run creates them: the user checked HubSpot."""
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

    def record_unchanged(self, run_id: str, rows: Iterable[tuple[str, str, str]]) -> None:
        """Rows this run settled without a request, as (row key, HubSpot id, fingerprint): a
        write rule held back every value that changed. Each is synced to its record with the
        fingerprint of the row's values, so the next run with the same values sends nothing;
        what HubSpot holds from this tool (`sent`) stays as it was, since nothing was sent."""
        now = _now()
        with self._txn() as db:
            db.executemany(
                "INSERT INTO rows (row_key, state, hubspot_id, sent_hash, run_id, updated, "
                "owner_run) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (row_key) DO UPDATE SET "
                f"state = excluded.state, hubspot_id = excluded.hubspot_id, {KEEP_OWNER}, "
                "sent_hash = excluded.sent_hash, run_id = excluded.run_id, "
                "updated = excluded.updated",
                [
                    # Nothing was created: a record this run only found owns nothing.
                    (key, RowState.SYNCED.value, hubspot_id, sent_hash, run_id, now, None)
                    for key, hubspot_id, sent_hash in rows
                ],
            )
