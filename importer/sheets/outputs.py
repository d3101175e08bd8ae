"""Where a run writes (workbook, retry file, summary, log, state), checked before anything is
sent: a run that has created records must be able to say so."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..core.errors import ConfigError

__all__ = ["prepare_file", "prepare_folder", "prepare_workbook"]


def prepare_folder(folder: Path, what: str) -> Path:
    """Make sure `folder` exists (creating it) and can be written in."""
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{what} {folder} is a file, not a folder; give a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".hubspot-import-", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"{what} {folder} cannot be written ({reason}); give a folder you may write in"
        ) from exc
    return folder


def _not_kept(path: Path, what: str, keep: tuple[Path, ...]) -> None:
    for kept in keep:
        if _same(path, kept):
            raise ConfigError(
                f"{what} {path} is {kept.name}, which this run reads: choose another path "
                f"(the file was left untouched)"
            )


def prepare_file(path: Path, what: str, *, keep: tuple[Path, ...] = ()) -> Path:
    """Make sure `path` can be written: its folder exists (created) and is writable, it is
    not a folder, and it is none of `keep` (the input and the mapping are never overwritten)."""
    _not_kept(path, what, keep)
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a folder; give a file name")
    prepare_folder(path.parent if str(path.parent) else Path("."), f"the folder of {what}")
    return path


def prepare_workbook(path: Path, *, keep: tuple[Path, ...]) -> Path:
    _not_kept(path, "--out", keep)
    if path.suffix.lower() != ".xlsx":
        raise ConfigError(
            f"--out {path}: the results workbook is an Excel file; give a name ending in .xlsx"
        )
    return prepare_file(path, "--out", keep=keep)


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except (OSError, RuntimeError):  # RuntimeError: a link loop, which names no file
        return False
