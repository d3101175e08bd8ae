"""A journal SQLite cannot write for want of room (a full disk, a used-up quota, a file size
limit): said as the machine's doing, never as a bug of this tool, with the journal, its folder,
the room left there and what to do. What was sent stays open in the journal: the next run
settles it before it sends anything."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from ..core.errors import StateUnwritable
from ..sheets.download_room import RAISE_SIZE_LIMIT, amount, file_size_limit, free_in

__all__ = ["NO_ROOM_CODES", "unwritable"]

NO_ROOM_CODES = frozenset({sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR})
"""SQLite's primary result codes for a write the disk refused: SQLITE_FULL (ENOSPC, EDQUOT),
SQLITE_IOERR (a write cut short: EFBIG past `ulimit -f`, and ENOSPC where SQLite cannot tell)."""
AT_LIMIT = 1 << 16
"""A journal file this close to the process's file size limit has run into it (SQLite writes
a page and its frame header at a time)."""


def unwritable(
    exc: BaseException, *, db: sqlite3.Connection | None = None, path: Path | None = None
) -> StateUnwritable | None:
    """What `exc` is when SQLite refused a write to the journal (`path`, else the file `db`
    has open) for want of room; None for any other error. With `db`, the error names the run
    this process had begun in the journal."""
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(exc, sqlite3.Error) or not isinstance(code, int):
        return None
    if code & 0xFF not in NO_ROOM_CODES:  # the primary code of an extended one
        return None
    journal = path or (_main_file(db) if db is not None else None)
    run_id = _begun(db) if db is not None else None
    if journal is None:
        return StateUnwritable(
            f"the journal cannot be written ({exc}): {_then(run_id)}", run_id=run_id
        )
    return StateUnwritable(_said(journal, exc, run_id), run_id=run_id)


def _said(journal: Path, exc: BaseException, run_id: str | None) -> str:
    """`the journal J cannot be written (why): F has N free. <the fix>, then run again...`."""
    folder = journal.parent
    free = free_in(folder)
    room = f"{folder} has {free}" if free else f"the room left in {folder} cannot be told"
    said = f"the journal {journal} cannot be written ({exc}): "
    limit = file_size_limit()
    if limit is not None and _largest(journal) + AT_LIMIT >= limit:
        fix = RAISE_SIZE_LIMIT[0].upper() + RAISE_SIZE_LIMIT[1:]
        return (
            f"{said}it has grown to the largest file this process may write, {amount(limit)} "
            f"(ulimit -f); {room}. {fix}, {_then(run_id)}"
        )
    return (
        f"{said}{room}. Make room there, or move {folder} (its journals with it) to a disk "
        f"with room and give --state-dir its new place, {_then(run_id)}"
    )


def _then(run_id: str | None) -> str:
    """What running again does with what was sent."""
    if run_id is None:
        return "then run again."
    return (
        f"then run again: the next run settles what run {run_id} sent before it sends "
        f"anything (`hubspot-import show {run_id} --out FILE.xlsx` writes its results)."
    )


def _main_file(db: sqlite3.Connection) -> Path | None:
    """The file `db` has open as its main database; None if it cannot say."""
    with contextlib.suppress(sqlite3.Error):
        for _, name, file in db.execute("PRAGMA database_list"):
            if name == "main" and file:
                return Path(file)
    return None


def _begun(db: sqlite3.Connection) -> str | None:
    """The run this process began in the journal `db` and has not finished (the newest); None
    before one began, or in a journal that keeps no runs (a plan's)."""
    with contextlib.suppress(sqlite3.Error):
        found = db.execute(
            "SELECT run_id FROM runs WHERE pid = ? AND finished IS NULL "
            "ORDER BY started DESC LIMIT 1",
            (os.getpid(),),
        ).fetchone()
        return str(found[0]) if found else None
    return None


def _largest(journal: Path) -> int:
    """The size of the largest of the journal's files (itself, its write-ahead log, its
    rollback journal), in bytes."""
    sizes = [0]
    for suffix in ("", "-wal", "-journal"):
        with contextlib.suppress(OSError):
            sizes.append(journal.with_name(journal.name + suffix).stat().st_size)
    return max(sizes)
