"""A download that found no room where its copy is saved (a full disk, a used-up quota, a
file size limit): said with the downloads folder and the room the file needs (past a file size
limit: the limit, and how to raise it, since no room made helps), never as a store that cannot
be reached. The words for room and limits are shared with the journal's (state/no_room.py)."""

from __future__ import annotations

import errno
import os
import resource
import shutil
from pathlib import Path
from typing import Any

__all__ = [
    "NO_ROOM",
    "RAISE_SIZE_LIMIT",
    "NoRoom",
    "amount",
    "file_size_limit",
    "free_in",
    "no_room",
]

NO_ROOM = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
           errno.EFBIG: "the file is larger than this process may write (ulimit -f)"}  # fmt: skip
"""Errors of a write that found no room for the copy -> what they mean."""
RAISE_SIZE_LIMIT = (
    "raise that limit (`ulimit -f unlimited` in the shell or script that starts the run; "
    "LimitFSIZE=infinity in a systemd unit)"
)
"""The fix for a file larger than the process may write: no room made on a disk helps."""


class NoRoom(Exception):
    """The copy did not fit where it is saved: `written` bytes of it were, `size` the whole
    file's (None: the store did not say)."""

    def __init__(self, cause: OSError, written: int, size: int | None) -> None:
        super().__init__(cause.strerror or str(cause))
        self.cause = cause
        self.written = written
        self.size = size

    def said(self, folder: Path | None) -> str:
        """`its copy cannot be saved in <folder>: the disk is full (...): it needs ...`, or
        past a file size limit `...: it is <size>, and this process may write <limit>...`."""
        where = folder.parent if folder is not None else None
        size = (
            amount(self.size)
            if self.size is not None
            else f"more than {amount(self.written)} (the store did not say its size)"
        )
        why = NO_ROOM.get(self.cause.errno or 0, "no room")
        said = f"its copy cannot be saved in {where or 'the downloads folder'}: {why} ({self}); "
        limit = file_size_limit()
        if self.cause.errno == errno.EFBIG and limit is not None:
            return (
                f"{said}it is {size}, and this process may write files of {amount(limit)} at "
                f"most: {RAISE_SIZE_LIMIT}, and run again"
            )
        free = free_in(where) if where else None
        return (
            f"{said}it needs {size} free there{f', {free} now' if free else ''}: make room "
            "there, or give --state-dir a folder on a disk with room"
        )


def file_size_limit() -> int | None:
    """The largest file this process may write, in bytes (`ulimit -f`, RLIMIT_FSIZE); None
    when there is no limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else soft


def free_in(folder: Path) -> str | None:
    """`73.8 GB free`: the room left on the disk of `folder`; None when it cannot be told."""
    try:
        return f"{amount(shutil.disk_usage(folder).free)} free"
    except OSError:
        return None


def no_room(exc: OSError, part: str, size: Any) -> NoRoom | None:
    """A NoRoom for a write that failed for want of room (the part written so far counted
    before it is removed), else None."""
    if exc.errno not in NO_ROOM:
        return None
    try:
        written = os.path.getsize(part)
    except OSError:
        written = 0
    return NoRoom(exc, written, size if isinstance(size, int) else None)


def amount(size: int) -> str:
    """`2.1 MB`, `830 KB`, `512 bytes`: a size as a person reads it (powers of 1,000)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:,.1f} {unit}"
    return f"{size:,} bytes"
