"""What the journal holds, as values (row states, batch outcomes, known rows, batch rows),
and the machine-wide lock beside each journal."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import logging
import os
import socket
import sqlite3
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError, LockHeld

log = logging.getLogger(__name__)


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
    LOST = "lost"  # not carried out (or not known to be): the next run sends it again
    GONE = "gone"  # the record the journal knew is no longer in HubSpot: forget it


_ROW_STATES = {
    Outcome.CREATED: RowState.SYNCED,
    Outcome.UPDATED: RowState.SYNCED,
    Outcome.FOUND: RowState.SYNCED,
    Outcome.UNCERTAIN: RowState.UNCERTAIN,
}
"""What the journal remembers of a row after each outcome (nothing after the others)."""


class BatchState(StrEnum):
    SENT = "sent"
    CONFIRMED = "confirmed"


@dataclass(frozen=True, kw_only=True, slots=True)
class KnownRow:
    state: RowState
    hubspot_id: str | None
    sent_hash: str | None
    run_id: str
    updated: str | None = None
    """When the journal last changed this row (ISO 8601, UTC)."""
    sent: str | None = None
    """What HubSpot holds from this tool for the row: its properties as JSON (None in rows
    an older version wrote)."""

    @property
    def updated_epoch(self) -> float | None:
        return _epoch(self.updated)


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
    created: str | None = None
    """When the batch was recorded, just before it was sent (ISO 8601, UTC)."""

    @property
    def created_epoch(self) -> float | None:
        return _epoch(self.created)


def _epoch(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        moment = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()


MACHINE_LOCKS = "hubspot-import-locks"
"""A folder per user (`hubspot-import-locks-<uid>`) in the system's temporary folder, shared
by every state folder of that user; no other user can read, hold or remove its locks."""


def _machine_lock_path(journal: Path) -> Path | None:
    """One lock per portal and object type for this user on this machine, whatever the state
    folder, named as the journal is. None, with a warning, when the user's lock folder cannot
    be made or is not safely theirs (a link, another owner, open to others): the journal's
    own lock still holds."""
    folder = Path(tempfile.gettempdir()) / f"{MACHINE_LOCKS}-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        seen = os.lstat(folder)
    except OSError as exc:
        log.warning("no lock across state folders: %s cannot be made (%s)", folder, exc.strerror)
        return None
    if not stat.S_ISDIR(seen.st_mode) or seen.st_uid != os.getuid() or seen.st_mode & 0o077:
        log.warning(
            "no lock across state folders: %s is not a folder of this user's alone (a link, "
            "another user's, or open to others); remove it",
            folder,
        )
        return None
    return folder / journal.with_suffix(".lock").name


def _release_lock(fh: Any) -> None:
    fcntl.flock(fh, fcntl.LOCK_UN)
    fh.close()


@contextlib.contextmanager
def _immediate(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken at once (BEGIN IMMEDIATE), rolled back on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class JournalTables:
    """What the mixins of `Journal` over its tables use of one another: the connection and
    its transactions (`Journal`), and a batch's rows (`BatchTables`)."""

    _db: sqlite3.Connection

    def _txn(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _rows_of(
        self, batch_id: int, items: str | None
    ) -> list[tuple[BatchRow, str | None, str | None]]:
        raise NotImplementedError


def _take_lock(lock_path: Path, what: str = "this portal and object type") -> Any:
    """Hold the lock file `lock_path` (LockHeld if another process does), writing who holds
    it. A link there is refused, never followed: its target would be overwritten."""
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        why = "it is a link, which is not followed" if exc.errno == errno.ELOOP else exc.strerror
        raise ConfigError(f"cannot open the lock file {lock_path} ({why})") from exc
    fh = os.fdopen(fd, "r+", encoding="utf-8")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "another process"
        fh.close()
        raise LockHeld(
            f"another import is running against {what} ({holder}); "
            f"it holds {lock_path}. Wait for it to finish, or check that it is still alive."
        ) from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()} on {socket.gethostname()} since {_now()}")
    fh.flush()
    return fh


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
