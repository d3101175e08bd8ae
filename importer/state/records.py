"""What the journal holds, as values (row states, batch outcomes, known rows, batch rows),
and the machine-wide lock beside each journal."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import logging
import os
import re
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
from .no_room import unwritable

log = logging.getLogger(__name__)


KEEP_OWNER = (
    "owner_run = CASE WHEN rows.hubspot_id IS excluded.hubspot_id "
    "THEN coalesce(rows.owner_run, excluded.owner_run) ELSE excluded.owner_run END"
)
"""An upsert of a `rows` row keeps the run that made its record while the record is the
same one; a new record (created again) is the new run's."""


def keep_private(path: Path) -> None:
    """Make a journal an older version (or another umask) left readable by others its
    owner's alone (0600), with its -wal and -shm files and its folder (0700); a file that is
    not this user's is left as it is, with a warning."""
    for each in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        _tighten(each, 0o600)
    _tighten(path.parent, 0o700)


def _tighten(path: Path, mode: int) -> None:
    """Drop the group's and others' permissions on `path` when it has any (and it is ours)."""
    try:
        seen = os.lstat(path)
    except OSError:
        return
    if not seen.st_mode & 0o077 or stat.S_ISLNK(seen.st_mode):
        return
    if seen.st_uid != os.geteuid():
        log.warning("%s is open to other users and not yours: it was left as it is", path)
        return
    with contextlib.suppress(OSError):
        os.chmod(path, stat.S_IMODE(seen.st_mode) & mode)
        log.info("%s was open to other users: it is its owner's alone now", path)


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
    """Release a lock `_take_lock` took, emptied first: a lock file that still names its
    holder was left by a run that ended without releasing it (see `_took_over`)."""
    with contextlib.suppress(OSError, ValueError):
        fh.seek(0)
        fh.truncate()
        fh.flush()
    fcntl.flock(fh, fcntl.LOCK_UN)
    fh.close()


@contextlib.contextmanager
def _immediate(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken at once (BEGIN IMMEDIATE), rolled back on any error. A
    write the disk refused (full, a quota, a file size limit) is StateUnwritable: the
    machine's doing, said with the journal and the room left, never as a bug."""
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            _roll_back(db)
            raise
    except sqlite3.Error as exc:
        refused = unwritable(exc, db=db)
        if refused is None:
            raise
        raise refused from exc


def _roll_back(db: sqlite3.Connection) -> None:
    """End the transaction left open by an error, if SQLite has not ended it itself (it does
    after some failed writes): the connection must take the next one, and a failed rollback
    must not hide the error that called for it."""
    if db.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")


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
    it. A link there is refused, never followed (its target would be overwritten), and so is
    anything but this user's own plain file: it is never truncated. A lock left by a run that
    ended without releasing it (killed) is free again, and said."""
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise ConfigError(
            f"cannot open the lock file {lock_path} ({_refusal(lock_path, exc)})"
        ) from exc
    try:
        _check_own(lock_path, os.fstat(fd))
    except BaseException:
        os.close(fd)
        raise
    fh = os.fdopen(fd, "r+", encoding="utf-8", errors="replace")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fh) or "another process"
        fh.close()
        raise LockHeld(
            f"another import is running against {what} ({holder}); "
            f"it holds {lock_path}. Wait for it to finish, or check that it is still alive."
        ) from None
    except BaseException:
        fh.close()
        raise
    _took_over(lock_path, _holder(fh))
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()} on {socket.gethostname()} since {_now()}")
    fh.flush()
    return fh


def _refusal(lock_path: Path, exc: OSError) -> str:
    """Why the lock file could not be opened, in words: a link, another user's file."""
    if exc.errno == errno.ELOOP:
        return "it is a link, which is not followed"
    if exc.errno in (errno.EACCES, errno.EPERM):
        with contextlib.suppress(OSError):
            owner = os.lstat(lock_path).st_uid
            if owner != os.geteuid():
                return (
                    f"{exc.strerror}: it is user {owner}'s, whose run may hold it; give a "
                    "--state-dir of your own"
                )
    return exc.strerror or str(exc)


def _check_own(lock_path: Path, seen: os.stat_result) -> None:
    """ConfigError unless the lock file opened is this user's own plain file, with no other
    name (a hard link to another file would be truncated with it)."""
    if not stat.S_ISREG(seen.st_mode):
        why = "it is not a plain file"
    elif seen.st_uid != os.geteuid():
        why = f"it is user {seen.st_uid}'s, not yours"
    elif seen.st_nlink != 1:
        why = f"it has {seen.st_nlink} names (hard links), so it may be another file"
    else:
        return
    raise ConfigError(
        f"cannot use the lock file {lock_path} ({why}); it was left as it is. Remove it if no "
        "run of yours is using it, or give another --state-dir."
    )


def _holder(fh: Any) -> str:
    """What the lock file says of who holds it (empty when no one said)."""
    fh.seek(0)
    return str(fh.read(500)).strip()


_HOLDER = re.compile(r"^pid (\d+) on (\S+) since (\S+)$")


def _took_over(lock_path: Path, left: str) -> None:
    """Say so when the lock just taken names a holder: that run ended without releasing it
    (it was killed, or the machine stopped), and its batches are settled first."""
    if not left:
        return
    found = _HOLDER.match(left)
    alive = ""
    if found and found.group(2) == socket.gethostname():
        alive = " (no longer running)" if not _running(int(found.group(1))) else ""
    log.warning(
        "%s was left by %s%s, which ended without releasing it (killed, or the machine "
        "stopped): taking it over; what that run left unconfirmed is settled first",
        lock_path,
        left[:200],
        alive,
    )


def _running(pid: int) -> bool:
    """Whether a process with this id runs on this machine (any user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's: it exists
    return True


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
