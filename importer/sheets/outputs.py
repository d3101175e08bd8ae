"""Where a run writes (workbook, retry file, summary, log, state), checked before anything is
sent: a run that has created records must be able to say so."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from ..core.errors import ConfigError

__all__ = [
    "distinct_outputs",
    "prepare_file",
    "prepare_folder",
    "prepare_workbook",
    "replaced_or_written_into",
]


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


def prepare_file(
    path: Path, what: str, *, keep: tuple[Path, ...] = (), replaced: bool = False
) -> Path:
    """Make sure `path` can be written: its folder exists (created) and is writable, it is
    not a folder, and it is none of `keep` (the input and the mapping are never overwritten).
    `replaced`: the file is written whole and replaces what is there, which must then be a
    plain file, a terminal, /dev/null or a pipe (`replaced_or_written_into`)."""
    _not_kept(path, what, keep)
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a folder; give a file name")
    if replaced:
        replaced_or_written_into(path, what)
    prepare_folder(path.parent if str(path.parent) else Path("."), f"the folder of {what}")
    return path


def prepare_workbook(path: Path, *, keep: tuple[Path, ...]) -> Path:
    _not_kept(path, "--out", keep)
    if path.suffix.lower() != ".xlsx":
        raise ConfigError(
            f"--out {path}: the results workbook is an Excel file; give a name ending in .xlsx"
        )
    return prepare_file(path, "--out", keep=keep)


def replaced_or_written_into(path: Path, what: str) -> Literal["replace", "into"]:
    """How a file written whole goes to `path`: "replace" when it is absent or a plain file
    (a new file replaces it at once, so no reader sees half of it), "into" when it is a
    terminal, /dev/null or a pipe, even through a link such as /dev/stdout (written into,
    never replaced); ConfigError for anything else, which is left untouched: a link to a
    file (replacing would break the link, not write its file), a folder, a disk, a socket."""
    try:
        own = path.lstat()
    except FileNotFoundError:
        return "replace"
    except OSError as exc:
        raise ConfigError(
            f"{what} {path} cannot be read ({exc.strerror}); give another path"
        ) from None
    if stat.S_ISREG(own.st_mode):
        return "replace"
    try:
        target = path.stat().st_mode
    except OSError:
        target = own.st_mode  # a link to nothing
    if stat.S_ISCHR(target) or stat.S_ISFIFO(target):
        return "into"
    if stat.S_ISLNK(own.st_mode):
        raise ConfigError(
            f"{what} {path} is a link: the file is replaced whole, which would replace the "
            "link, not its file; give the path of the file itself (the link was left untouched)"
        )
    raise ConfigError(
        f"{what} {path} is not a plain file (a folder, a disk or a socket); give a file "
        "name (it was left untouched)"
    )


def distinct_outputs(outputs: Mapping[str, Path | None]) -> None:
    """ConfigError when two of a run's outputs (option -> path) are one file: each would
    overwrite the other (a summary written over the results workbook)."""
    given = [(option, path) for option, path in outputs.items() if path is not None]
    for i, (option, path) in enumerate(given):
        for other, other_path in given[i + 1 :]:
            if _same(path, other_path):
                raise ConfigError(
                    f"{option} {path} is also {other}: give each output a path of its own "
                    "(nothing was written)"
                )


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except (OSError, RuntimeError):  # RuntimeError: a link loop, which names no file
        return False
