"""A file's fingerprint: its size, SHA-256 and modification time (and, for a file read from a
store that gives one, its ETag), taken once per run by streaming the file, so that a run can
tell whether the feed is the one an earlier run imported (`run --skip-unchanged`)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Fingerprint", "take_fingerprint"]


@dataclass(frozen=True, kw_only=True)
class Fingerprint:
    """What tells one version of a file from another."""

    size: int
    """Bytes."""
    sha256: str
    """The content's SHA-256, in hex."""
    mtime: str
    """When the file was last modified (ISO 8601, UTC): shown, never compared, since a mirror
    that downloads the same feed again gives it a new time."""
    etag: str | None = None
    """The store's ETag of a remote file (None for a local one)."""

    def same_content(self, other: Fingerprint) -> bool:
        """Whether both are of the same bytes (size and SHA-256; the times may differ)."""
        return self.size == other.size and self.sha256 == other.sha256

    def as_json(self) -> dict[str, Any]:
        return {"size": self.size, "sha256": self.sha256, "mtime": self.mtime, "etag": self.etag}

    @classmethod
    def from_json(cls, data: object) -> Fingerprint | None:
        """A fingerprint from `as_json`'s shape; None for anything else (an older record)."""
        if not isinstance(data, dict):
            return None
        size, sha256, mtime = data.get("size"), data.get("sha256"), data.get("mtime")
        etag = data.get("etag")
        if not isinstance(size, int) or not isinstance(sha256, str) or not isinstance(mtime, str):
            return None
        return cls(
            size=size, sha256=sha256, mtime=mtime, etag=etag if isinstance(etag, str) else None
        )

    def describe(self) -> str:
        """`320,112 bytes, SHA-256 3f9a..., modified 2026-11-23T04:00:12+00:00` for people."""
        etag = f", ETag {self.etag}" if self.etag else ""
        return f"{self.size:,} bytes, SHA-256 {self.sha256}, modified {self.mtime}{etag}"


_BLOCK = 1 << 20


def take_fingerprint(path: Path) -> Fingerprint:
    """The fingerprint of the file at `path`, read once in 1 MiB blocks (hashlib hashes them
    outside the interpreter's lock: a 100 MB file takes a fraction of a second). The size is
    of the bytes hashed and the time of the handle read, so all three describe the same file
    even if it is replaced meanwhile. Raises OSError when the file cannot be read."""
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(_BLOCK)
    view = memoryview(buffer)
    with Path(path).open("rb", buffering=0) as fh:
        modified = dt.datetime.fromtimestamp(os.fstat(fh.fileno()).st_mtime, dt.UTC)
        while n := fh.readinto(view):
            digest.update(view[:n])
            size += n
    return Fingerprint(
        size=size, sha256=digest.hexdigest(), mtime=modified.isoformat(timespec="seconds")
    )
