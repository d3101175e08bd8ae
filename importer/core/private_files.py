"""Files the tool appends to (its log file, a crash report) opened readable by their owner
alone: created 0600, and one an older version (or another umask) left open to others made so
when it is opened again, as journals are."""

from __future__ import annotations

import io
import logging
import os
import stat
from pathlib import Path

__all__ = ["PrivateFileHandler", "open_private"]

log = logging.getLogger(__name__)


def open_private(path: Path | str) -> io.TextIOWrapper:
    """`path` opened to append text, created 0600 or tightened to it (see `_tighten`)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        _tighten(fd, Path(path))
        return open(fd, "a", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise


def _tighten(fd: int, path: Path) -> None:
    """Drop the group's and others' permissions on the open file `fd` when it has any; a file
    that is not this user's is left as it is, with a warning."""
    # By the descriptor, not the name: the file made private is the one written to.
    seen = os.fstat(fd)
    if not seen.st_mode & 0o077 or not stat.S_ISREG(seen.st_mode):
        return  # a pipe or /dev/stderr given as the log file is not ours to change
    if seen.st_uid != os.geteuid():
        log.warning("%s is open to other users and not yours: it was left as it is", path)
        return
    os.fchmod(fd, stat.S_IMODE(seen.st_mode) & 0o600)
    log.info("%s was open to other users: it is its owner's alone now", path)


class PrivateFileHandler(logging.FileHandler):
    """A log file handler whose file is its owner's alone (`open_private`)."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(path, mode="a", encoding="utf-8")

    def _open(self) -> io.TextIOWrapper:
        """The log file, opened by `open_private`."""
        return open_private(self.baseFilename)
