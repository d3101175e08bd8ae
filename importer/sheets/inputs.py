"""INPUT opened for a command: a local file as it is, a glob's match picked, a URL downloaded
once per run (`remote`). A command opens its inputs inside `reading_inputs`, which says where
downloads are kept and how globs pick; a plan read twice in one run (checked, then run) reads
each of its inputs once, and a later stage finds what a file it is given was read from
(`source_of`), to show and record the URL rather than the private copy."""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import glob as globbing
import logging
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import InputFileError
from .fingerprint import Fingerprint, take_fingerprint
from .picking import Match, pick_match
from .remote import RemoteFile, download
from .sources import Location, locate

__all__ = [
    "DOWNLOADS_FOLDER",
    "Inputs",
    "Source",
    "fingerprint_of",
    "open_input",
    "reading_inputs",
    "showing_as",
    "shown_name",
    "source_of",
]

log = logging.getLogger(__name__)

DOWNLOADS_FOLDER = "downloads"
"""In the state folder: the copy of the last download of each remote INPUT."""


@dataclass(frozen=True, kw_only=True)
class Source:
    """INPUT as this run reads it."""

    location: Location
    local: Path
    """The file the reader opens: the local file, a glob's match, or a download's copy."""
    picked: str | None = None
    """A glob's match, as shown (a path, or a URL without its secrets)."""
    matches: int = 0
    pick: str | None = None
    remote: RemoteFile | None = None

    @property
    def shown(self) -> str:
        """The file read, as shown and recorded: a glob's match, a URL without its secrets, or
        the local path."""
        return self.picked or self.location.shown

    def as_json(self) -> dict[str, Any]:
        """For the summary: what INPUT was given, the file read, and how."""
        return {
            "given": self.location.shown,
            "read": self.shown,
            "remote": self.location.remote,
            "glob_matches": self.matches if self.location.glob else None,
            "pick": self.pick if self.location.glob else None,
            "reused_download": self.remote.reused if self.remote is not None else None,
        }


class Inputs:
    """The inputs one command reads, each read once."""

    def __init__(self, folder: Path | None, pick: str = "name") -> None:
        self.folder = folder
        """Where downloads are kept (`<state folder>/downloads`); None: a private temporary
        folder, removed as the process ends."""
        self.pick = pick
        self.read: dict[tuple[str, Path | None], Source] = {}
        self.failed: dict[tuple[str, Path | None], InputFileError] = {}
        """Inputs that could not be read, each tried once however many steps name it."""
        self.names: dict[Path, str] = {}
        """Files named otherwise than by their path (`showing_as`)."""

    def open(self, text: str, base: Path | None = None) -> Source:
        """INPUT `text` (a plan's input: relative to the plan's folder, `base`), read once; one
        that cannot be read is tried once, its error raised again."""
        key = (text, base)
        known = self.read.get(key)
        if known is not None:
            return known
        failed = self.failed.get(key)
        if failed is not None:
            raise InputFileError(str(failed))
        try:
            source = self._source(locate(text, base))
        except InputFileError as exc:
            self.failed[key] = exc
            raise
        self.read[key] = source
        return source

    def _source(self, location: Location) -> Source:
        """The input at `location`: downloaded, a glob's match picked, or the local file."""
        if location.remote:
            remote = download(location, self._downloads(), self.pick)
            return Source(
                location=location,
                local=remote.local,
                picked=remote.url if location.glob else None,
                matches=remote.matches,
                pick=self.pick,
                remote=remote,
            )
        if location.glob:
            return self._local_match(location)
        assert location.path is not None, "a local location has its path"
        return Source(location=location, local=location.path)

    def _downloads(self) -> Path:
        if self.folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="hubspot-import-"))
            atexit.register(shutil.rmtree, self.folder, ignore_errors=True)
        return self.folder

    def _local_match(self, location: Location) -> Source:
        """A local glob's match (`pick`); InputFileError when it matches no file."""
        assert location.path is not None, "a local location has its path"
        files = [Path(p) for p in globbing.glob(str(location.path)) if Path(p).is_file()]
        if not files:
            raise InputFileError(
                f"{location.shown}: no file matches. Check the pattern and the working folder."
            )
        matches = [Match(str(p), _modified(p)) for p in files]
        chosen = Path(pick_match(matches, self.pick).name)
        log.info(
            "INPUT %s: read %s, the %s of %d matches",
            location.shown,
            chosen,
            "last by name" if self.pick == "name" else "newest by modification time",
            len(files),
        )
        return Source(
            location=location, local=chosen, picked=str(chosen), matches=len(files), pick=self.pick
        )

    def source_of(self, path: Path) -> Source | None:
        """What the file at `path` was read from, when this command read it as an INPUT."""
        for source in self.read.values():
            if source.local == path:
                return source
        return None


def _modified(path: Path) -> dt.datetime:
    """When the local file was last modified."""
    return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)


_ACTIVE: list[Inputs] = []
_DEFAULT = Inputs(None)
"""For a library caller that reads a plan outside any command."""


@contextlib.contextmanager
def reading_inputs(folder: Path | None, pick: str = "name") -> Iterator[Inputs]:
    """Inputs opened meanwhile (`open_input`) keep their downloads in `folder` and pick a
    glob's match by `pick`."""
    inputs = Inputs(folder, pick)
    _ACTIVE.append(inputs)
    try:
        yield inputs
    finally:
        _ACTIVE.remove(inputs)


def _inputs() -> Inputs:
    return _ACTIVE[-1] if _ACTIVE else _DEFAULT


def open_input(text: str, base: Path | None = None) -> Source:
    """INPUT `text` as this command reads it (see `Inputs.open`)."""
    return _inputs().open(text, base)


def source_of(path: Path) -> Source | None:
    """What the file at `path` was read from, when this command read it as an INPUT."""
    return _inputs().source_of(path)


@contextlib.contextmanager
def showing_as(path: Path, shown: str) -> Iterator[None]:
    """Meanwhile, the input at `path` is named `shown` (a run's workbook written again from
    its journal names the URL the run read, not the path it was kept under)."""
    with reading_inputs(None) as inputs:
        inputs.names[path] = shown
        yield


def shown_name(path: Path) -> str:
    """How the input at `path` is named wherever a run records it (journal, workbook, log):
    the URL it was downloaded from (secrets hidden) or the glob's match, else the path."""
    named = _inputs().names.get(path)
    if named is not None:
        return named
    source = source_of(path)
    if source is not None and (source.location.remote or source.location.glob):
        return source.shown
    return str(path)


def fingerprint_of(path: Path) -> Fingerprint:
    """The input's fingerprint: taken as it was downloaded (with the store's ETag), else
    from the file. Raises OSError when the file cannot be read."""
    source = source_of(path)
    if source is not None and source.remote is not None:
        return source.remote.fingerprint
    return take_fingerprint(path)
