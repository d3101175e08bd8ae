"""Sane limits on what is read, checked before it is read where they can be: a workbook whose
parts inflate to more than `HUBSPOT_IMPORT_MAX_UNZIPPED_MB` (or far more than a spreadsheet
compresses: a zip bomb), and a sheet with more columns than its results workbook can hold
beside its own. Each is refused with the limit named and how to raise it, if it can be."""

from __future__ import annotations

import zipfile
from pathlib import Path

from ..core.environment import env_number
from ..core.errors import InputFileError
from .excel_limits import EXCEL_MAX_COLUMNS

__all__ = [
    "MAX_INPUT_COLUMNS",
    "RATIO_ENV",
    "UNZIPPED_ENV",
    "check_columns",
    "check_unzipped",
    "out_of_memory",
]

UNZIPPED_ENV = "HUBSPOT_IMPORT_MAX_UNZIPPED_MB"
DEFAULT_UNZIPPED_MB = 1_000
"""A workbook's parts together, inflated: a sheet of a million rows by 20 columns is ~600 MB."""
RATIO_ENV = "HUBSPOT_IMPORT_MAX_ZIP_RATIO"
DEFAULT_RATIO = 100
"""Inflated to compressed, for a part of more than RATIO_FROM bytes: a real sheet is 5 to 25
times smaller compressed (measured on workbooks of repeated values: 23); a zip bomb, ~1,000."""
RATIO_FROM = 10_000_000
ZIP_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xlsb", ".ods"})
RESULT_OWN_COLUMNS = 5
"""Columns a results sheet puts before the input's: source_row, status, hubspot_id, message
and held_back (see sheets/results_sheet.py)."""
MAX_INPUT_COLUMNS = EXCEL_MAX_COLUMNS - RESULT_OWN_COLUMNS


def _setting(name: str, default: int) -> int:
    """A whole number from the environment variable `name`, else `default`."""
    return int(env_number(name, default, low=1, whole=True, takes="a whole number above 0"))


def check_unzipped(path: Path) -> None:
    """Refuse a zipped workbook (.xlsx, .xlsm, .xlsb, .ods) that would inflate beyond the
    limits, before any of it is inflated: its zip directory says each part's sizes (and a
    part larger than it says is refused by the readers as damaged)."""
    if path.suffix.lower() not in ZIP_SUFFIXES:
        return
    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # not a zip: the workbook reader says what is wrong with it
    limit = _setting(UNZIPPED_ENV, DEFAULT_UNZIPPED_MB)
    inflated = sum(p.file_size for p in parts)
    if inflated > limit * 1_000_000:
        raise InputFileError(
            f"{path}: the workbook inflates to {inflated / 1e6:,.0f} MB, more than the "
            f"{limit:,} MB read at most (set {UNZIPPED_ENV} to raise it, if the machine has "
            "the memory: reading takes about five times as much). A sheet this large is "
            "read faster saved as CSV."
        )
    ratio = _setting(RATIO_ENV, DEFAULT_RATIO)
    for part in parts:
        if part.file_size > RATIO_FROM and part.file_size > ratio * max(1, part.compress_size):
            raise InputFileError(
                f"{path}: its part {part.filename} inflates from {part.compress_size:,} bytes "
                f"to {part.file_size:,}, {part.file_size // max(1, part.compress_size):,} "
                f"times as much; a spreadsheet compresses 5 to 25 times, and this tool reads "
                f"at most {ratio:,} (a zip bomb is built so). If the workbook is genuine, save "
                f"it as CSV, or set {RATIO_ENV} to raise the limit."
            )


def check_columns(where: str, count: int) -> None:
    """Refuse a sheet with more columns than its results workbook can copy beside its own."""
    if count > MAX_INPUT_COLUMNS:
        raise InputFileError(
            f"{where}: {count:,} columns, more than the {MAX_INPUT_COLUMNS:,} a results "
            f"workbook can copy (an Excel sheet holds {EXCEL_MAX_COLUMNS:,} columns, "
            f"{RESULT_OWN_COLUMNS} of them the results' own). Remove the columns the mapping "
            "does not read, or split the file; nothing was sent."
        )


def out_of_memory(path: Path) -> str:
    """What is said of a sheet that could not be read for want of memory."""
    try:
        size = f"{path.stat().st_size / 1e6:,.1f} MB"
    except OSError:
        size = "its size unknown"
    return (
        f"{path} ({size}): not enough memory to read it (the machine, or a limit set on this "
        "process such as ulimit -v or a container's memory limit, allows too little). Give "
        "it more memory, remove the columns the mapping does not read, or split the file; "
        "nothing was sent."
    )
