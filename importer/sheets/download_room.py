"""A download that found no room where its copy is saved (a full disk, a used-up quota, a
file size limit): said with the downloads folder and the room the file needs, never as a store
that cannot be reached."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

__all__ = ["NO_ROOM", "NoRoom", "no_room"]

NO_ROOM = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
           errno.EFBIG: "the file is larger than this process may write (ulimit -f)"}  # fmt: skip
"""Errors of a write that found no room for the copy -> what they mean."""


class NoRoom(Exception):
    """The copy did not fit where it is saved: `written` bytes of it were, `size` the whole
    file's (None: the store did not say)."""

    def __init__(self, cause: OSError, written: int, size: int | None) -> None:
        super().__init__(cause.strerror or str(cause))
        self.cause = cause
        self.written = written
        self.size = size

    def said(self, folder: Path | None) -> str:
        """`its copy cannot be saved in <folder>: the disk is full (...): it needs ...`."""
        where = folder.parent if folder is not None else None
        need = (
            f"{_amount(self.size)} free there"
            if self.size is not None
            else f"more than {_amount(self.written)} free there (the store did not say its size)"
        )
        try:
            free = f", {_amount(shutil.disk_usage(where).free)} free now" if where else ""
        except OSError:
            free = ""
        why = NO_ROOM.get(self.cause.errno or 0, "no room")
        return (
            f"its copy cannot be saved in {where or 'the downloads folder'}: {why} ({self}); "
            f"it needs {need}{free}: make room there, or give --state-dir a folder on a disk "
            "with room"
        )


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


def _amount(size: int) -> str:
    """`2.1 MB`, `830 KB`, `512 bytes`: a size as a person reads it (powers of 1,000)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:,.1f} {unit}"
    return f"{size:,} bytes"
