"""Sane limits on what is read, checked before it is read where they can be: a workbook whose
parts inflate to more than `HUBSPOT_IMPORT_MAX_UNZIPPED_MB` (or far more than a spreadsheet
compresses: a zip bomb), a part neither stored nor deflated (as every spreadsheet application
writes them) or encrypted, and a sheet with more columns than its results workbook can hold
beside its own. Each is refused with the limit named and how to raise it, if it can be."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path
from typing import BinaryIO

from isal import isal_zlib

from ..core.environment import env_number
from ..core.errors import InputFileError
from .excel_limits import EXCEL_MAX_COLUMNS

__all__ = [
    "MAX_INPUT_COLUMNS",
    "RATIO_ENV",
    "UNZIPPED_ENV",
    "check_columns",
    "check_unzipped",
    "inflate_part",
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
    _check_ratio(path, parts)
    # The readers (calamine's among them) inflate a part whole whatever size the directory
    # declares: each is inflated here, kept no longer than a chunk, to hold it to its word.
    for part in parts:
        inflate_part(path, part, keep=False)


def _check_ratio(path: Path, parts: list[zipfile.ZipInfo]) -> None:
    """Refuse a part declared to inflate far more than a spreadsheet compresses."""
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


CHUNK = 1 << 20


def inflate_part(path: Path, member: zipfile.ZipInfo, *, keep: bool = True) -> bytes:
    """A zip member's bytes (`keep`; else only checked, a chunk at a time), never inflated
    beyond the size its zip directory declares nor the unzipped limit: a part that would be is
    refused. Deflated ones are inflated by ISA-L, twice as fast as zlib."""
    _check_method(path, member)
    if member.compress_type == zipfile.ZIP_STORED:
        # zipfile stops at the declared size itself (and says a part cut short is damaged).
        with zipfile.ZipFile(path) as book:
            return book.read(member) if keep else b""
    cap = min(member.file_size, _setting(UNZIPPED_ENV, DEFAULT_UNZIPPED_MB) * 1_000_000)
    inflater = isal_zlib.decompressobj(-15)
    kept: list[bytes] = []
    size, crc = 0, 0
    with path.open("rb") as fh:
        left = _seek_data(fh, member)
        while left > 0 or inflater.unconsumed_tail:
            compressed = inflater.unconsumed_tail or fh.read(min(CHUNK, left))
            left -= 0 if inflater.unconsumed_tail else len(compressed)
            if not compressed:
                break
            data = inflater.decompress(compressed, cap + 1 - size)
            size, crc = size + len(data), isal_zlib.crc32(data, crc)
            if size > cap:
                raise InputFileError(_overstated(path, member))
            if keep:
                kept.append(data)
    if size != member.file_size or crc != member.CRC:
        raise zipfile.BadZipFile(f"{member.filename} is damaged (its checksum differs)")
    return b"".join(kept)


READ_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
"""The zip methods read: what Excel, LibreOffice and every other spreadsheet application
write. Any other is refused before anything is read."""
UNREAD_METHODS = {zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "LZMA"}
"""Zip compression methods no spreadsheet application writes and calamine does not read;
Python's zipfile inflates them whole, whatever size is declared (a bomb's memory)."""
OTHER_METHODS = {9: "Deflate64", 93: "Zstandard", 95: "xz", 98: "PPMd"}
"""Names of other zip methods met in the wild (Windows' and 7-Zip's zip tools write
Deflate64 when a workbook is zipped again by hand)."""
AES_METHOD = 99
"""The method a part encrypted with AES (WinZip's, 7-Zip's) says it has."""
ENCRYPTED_FLAG = 0x1
"""A part's general-purpose flag bit set when it is encrypted (with a zip password)."""


def _check_method(path: Path, member: zipfile.ZipInfo) -> None:
    """Refuse a part the workbook readers do not read (encrypted, or compressed by another
    method than stored or deflate), before any of it is read."""
    method = member.compress_type
    if member.flag_bits & ENCRYPTED_FLAG or method == AES_METHOD:
        how = "AES, zip method 99" if method == AES_METHOD else "a zip password"
        raise InputFileError(
            f"{path}: its part {member.filename} is encrypted ({how}): the workbook is "
            "encrypted (password-protected), and this tool cannot read it; it was not read. "
            "Remove the password in Excel (or in the zip tool that set it), or save it as CSV; "
            "nothing was sent."
        )
    if method in READ_METHODS:
        return
    if method in UNREAD_METHODS:
        how = f"{UNREAD_METHODS[method]} (zip method {method})"
        why = (
            "which spreadsheet applications do not write and this tool does not read "
            "(inflating it could exhaust memory: a zip bomb is built so)"
        )
    else:
        named = OTHER_METHODS.get(method)
        how = f"{named} (zip method {method})" if named else f"zip method {method}"
        why = "which this tool does not read (it reads deflate, which Excel writes)"
    raise InputFileError(
        f"{path}: its part {member.filename} is compressed with {how}, {why}; it was not "
        "read. If the workbook is genuine, open it in Excel and save it again, or save it as "
        "CSV; nothing was sent."
    )


def _seek_data(fh: BinaryIO, member: zipfile.ZipInfo) -> int:
    """`fh` moved to the start of `member`'s compressed bytes; returns how many there are."""
    fh.seek(member.header_offset)
    local = fh.read(30)
    if local[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"no local header for {member.filename}")
    name_length, extra_length = struct.unpack("<HH", local[26:30])
    fh.seek(member.header_offset + 30 + name_length + extra_length)
    return member.compress_size


def _overstated(path: Path, member: zipfile.ZipInfo) -> str:
    """What is said of a part that inflates beyond its declared size or the limit."""
    limit = _setting(UNZIPPED_ENV, DEFAULT_UNZIPPED_MB)
    return (
        f"{path}: its part {member.filename} inflates to more than the {member.file_size:,} "
        f"bytes its zip directory declares, or than the {limit:,} MB read at most (set "
        f"{UNZIPPED_ENV} to raise that limit): the workbook is damaged or built to exhaust "
        "memory (a zip bomb), and was not read. If it is genuine, open it in Excel and save "
        "it again, or save it as CSV; nothing was sent."
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
