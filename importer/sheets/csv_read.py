"""CSV reading: encodings (BOMs, UTF-16 without one), the delimiter, Arrow's parser, and
Python's csv module for the files Arrow cannot read plainly."""

from __future__ import annotations

import codecs
import csv
import io
import logging
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import pyarrow as pa
from pyarrow import csv as pa_csv

from ..core.errors import InputFileError
from ..core.text import TEXT, text_series
from .header import FIRST_ROWS, Header, find_header, forced_header
from .read_limits import check_columns
from .table import (
    CSV_DELIMITERS,
    CSV_SNIFF_BYTES,
    OLE_MAGIC,
    Table,
    _finish,
    _header_names,
    column_letter,
)

log = logging.getLogger(__name__)

# Python's csv module refuses a cell over 131,072 characters by default, which Arrow's reader
# takes: both read the same files. (A stray quote still ends in an error at the file's end.)
csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))

# --- CSV -------------------------------------------------------------------------------------


def _load_csv(path: Path, encoding: str | None, header_row: int | None = None) -> Table:
    """A CSV file, every cell as text: its header found in its first rows (or the row asked
    for), the rows below it read by Arrow, else by the careful reader."""
    with path.open("rb") as fh:
        sample_bytes = fh.read(CSV_SNIFF_BYTES)
    enc = encoding or _detect_encoding(path, sample_bytes)
    try:
        text_encoding = codecs.lookup(enc)._is_text_encoding
    except LookupError:
        raise InputFileError(
            f"{path}: unknown encoding {enc!r}; try utf-8, cp1252 or latin-1."
        ) from None
    if not text_encoding:  # base64, rot13, zlib...: codecs Python has, but not of text files
        raise InputFileError(
            f"{path}: {enc!r} is not a text encoding; try utf-8, cp1252 or latin-1."
        )
    complete = len(sample_bytes) < CSV_SNIFF_BYTES
    sample = _decode_sample(path, sample_bytes, enc, complete=complete)
    delimiter = _sniff_delimiter(sample)
    first = _sample_records(sample, delimiter, complete=complete, header_row=header_row)
    header = _csv_header(path, first.records, header_row, whole=first.whole)
    if header is not None:
        at = header.row - 1
        check_columns(str(path), len(first.records[at]))  # before the rows are read
        fast = _read_csv_arrow(
            path, enc, delimiter, first.records[at], skip=first.lines[at], first_row=header.row + 1
        )
        if fast is not None:
            header_cells, frame = fast
            names, repeated = _header_names(header_cells)
            frame.columns = pd.Index(names)
            table = _finish(
                path, None, frame, repeated, header_row=header.row, header_note=header.note
            )
            table = replace(table, delimiter=delimiter, encoding=enc)
            return _with_layout(table, sample_bytes, sample)
    table = _read_csv_records(path, enc, delimiter, header, header_row)
    return _with_layout(table, sample_bytes, sample)


def _with_layout(table: Table, head: bytes, sample: str) -> Table:
    """`table` knowing whether the file starts with a UTF-8 BOM, and its line ending: a retry
    file is written the same way, so a tool that reads the input reads it too."""
    if "\r\n" in sample:
        line_end = "\r\n"
    else:
        line_end = "\r" if "\r" in sample and "\n" not in sample else "\n"
    return replace(table, bom=head.startswith(codecs.BOM_UTF8), line_end=line_end)


@dataclass(frozen=True)
class _FirstRecords:
    """The first records of a file's sample, parsed as the file will be."""

    records: list[list[str]]
    lines: list[int]
    """Before each record, the lines the file holds above it (what Arrow skips to reach it)."""
    whole: bool
    """Whether `records` are every record of the file."""


def _sample_records(
    sample: str, delimiter: str, *, complete: bool, header_row: int | None
) -> _FirstRecords:
    """The sample's first records: enough to find the header in (or to reach the row asked
    for). The last record of a cut sample is left out: it may be cut too."""
    reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter)
    records: list[list[str]] = []
    lines = [0]
    filled = 0
    ended = True
    try:
        for record in reader:
            records.append(record)
            lines.append(reader.line_num)
            filled += any(c.strip() for c in record)
            if filled >= FIRST_ROWS and len(records) >= (header_row or 0):
                ended = False
                break
    except csv.Error:
        ended = False  # the careful reader says what is wrong, if the file is read that far
    if ended and not complete and records:
        records.pop()
    return _FirstRecords(records=records, lines=lines, whole=ended and complete)


def _csv_header(
    path: Path, records: list[list[str]], header_row: int | None, *, whole: bool
) -> Header | None:
    """The header among a file's first `records` (`whole`: they are every record), or the
    row asked for; None when these records cannot tell (the whole file then does)."""
    if header_row is None:
        return find_header(path, None, ((n + 1, r) for n, r in enumerate(records)))
    if header_row <= len(records) or whole:
        cells = records[header_row - 1] if header_row <= len(records) else None
        return forced_header(path, None, header_row, cells, len(records))
    return None


def _read_csv_records(
    path: Path, enc: str, delimiter: str, header: Header | None, header_row: int | None
) -> Table:
    """The careful reader, for files Arrow's fast path does not take (other encodings, rows
    of other widths): Python's csv module, which also reads CR-only line endings. `header`:
    as found in the file's first rows; None to find it here, among every record. A row
    with more cells than the header is that row's problem, wherever it is."""
    records = _csv_records(path, enc, delimiter)
    if header is None:
        header = _csv_header(path, records, header_row, whole=True)
    if header is None:
        raise InputFileError(f"{path}: the file holds no values; export the sheet again.")
    cells = records[header.row - 1]
    width = len(cells)
    body = records[header.row :]
    extras: dict[int, list[tuple[str, str]]] = {}
    columns: list[list[str]] = [[] for _ in range(width)]
    for n, record in enumerate(body):
        row = header.row + 1 + n
        extra = [
            (f"{column_letter(width + k)}{row}", value)
            for k, value in enumerate(record[width:])
            if value.strip()
        ]
        if extra:
            extras[row] = extra
        for j, column in enumerate(columns):
            column.append(record[j] if j < len(record) else "")
    names, repeated = _header_names(cells)
    index = pd.RangeIndex(header.row + 1, header.row + 1 + len(body))
    frame = pd.DataFrame(dict(zip(names, columns, strict=True)), index=index, dtype=TEXT)
    table = _finish(path, None, frame, repeated, header_row=header.row, header_note=header.note)
    return replace(table, delimiter=delimiter, encoding=enc, extra_cells=extras)


def _csv_records(path: Path, enc: str, delimiter: str) -> list[list[str]]:
    """Every record of the file, by Python's csv module; a malformed file is refused."""
    reader = None
    try:
        with path.open(encoding=enc, newline="") as fh:
            reader = csv.reader(fh, delimiter=delimiter, strict=True)
            return list(reader)
    except UnicodeDecodeError as exc:
        raise InputFileError(_decode_hint(path, enc, exc)) from None
    except UnicodeError as exc:
        raise InputFileError(f"{path}: cannot be read as {enc} ({exc})") from None
    except csv.Error as exc:
        line = f" at line {reader.line_num}" if reader is not None else ""
        raise InputFileError(
            f"{path}: not a well-formed CSV file{line} ({exc}). Check for a stray quote, "
            "or export the sheet again."
        ) from None


_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
ZIP_MAGIC = b"PK\x03\x04"


def _detect_encoding(path: Path, head: bytes) -> str:
    """The encoding a BOM names (UTF-8, -16, -32), UTF-16 told by its NUL bytes when there is
    no BOM, else UTF-8. A workbook named like a text file is said to be one."""
    if head.startswith(ZIP_MAGIC) or head.startswith(OLE_MAGIC):
        kind = ".xlsx" if head.startswith(ZIP_MAGIC) else ".xls"
        raise InputFileError(
            f"{path}: this is an Excel workbook, not a text file, though its name ends in "
            f"{path.suffix or '(nothing)'}: rename it to end in {kind} (or export the sheet "
            "as CSV again) and run again."
        )
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    sample = head[:4096]
    if len(sample) >= 4:
        even, odd = sample[0::2], sample[1::2]
        if odd.count(0) > 0.3 * len(odd) and even.count(0) < 0.05 * len(even):
            return "utf-16-le"
        if even.count(0) > 0.3 * len(even) and odd.count(0) < 0.05 * len(odd):
            return "utf-16-be"
    return "utf-8-sig"


def _read_csv_arrow(
    path: Path, enc: str, delimiter: str, header: list[str], *, skip: int, first_row: int
) -> tuple[list[str], pd.DataFrame] | None:
    """The header cells and the rows below them (numbered from `first_row`), read by Arrow's
    multithreaded CSV parser (~5x faster than pandas' C parser, and the cells stay Arrow
    text), the `skip` lines above the header left unread. None when the file is not plain
    UTF-8 with as many cells in every row as in the header: the careful reader then reads
    it, and says what is wrong."""
    width = len(header)
    if codecs.lookup(enc).name not in {"utf-8", "utf-8-sig"} or not any(c.strip() for c in header):
        return None
    try:
        table = pa_csv.read_csv(
            path,
            # The header is read as a row of text too: a header such as "2024" must not
            # turn its column into numbers.
            read_options=pa_csv.ReadOptions(autogenerate_column_names=True, skip_rows=skip),
            parse_options=pa_csv.ParseOptions(
                delimiter=delimiter, newlines_in_values=True, ignore_empty_lines=False
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types={f"f{j}": pa.large_string() for j in range(width)},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                null_values=[],
            ),
        )
    except (pa.ArrowInvalid, UnicodeError):
        return None  # ragged rows, bad UTF-8, a stray quote: the careful path says which
    if table.num_columns != width or table.num_rows == 0:
        return None
    read = [str(table.column(j)[0]) for j in range(width)]
    if skip and read != header:
        return None  # Arrow skips lines, not records: it must land on the header found
    body = table.slice(1)
    index = pd.RangeIndex(first_row, first_row + body.num_rows)
    frame = pd.DataFrame(
        {f"f{j}": text_series(body.column(j), index) for j in range(width)}, index=index
    )
    return read, frame


def _decode_sample(path: Path, data: bytes, enc: str, *, complete: bool) -> str:
    decoder = codecs.getincrementaldecoder(enc)()
    try:
        # A multi-byte character may be cut at the end of the sample: only fail on real errors.
        return decoder.decode(data, final=complete)
    except UnicodeDecodeError as exc:
        raise InputFileError(_decode_hint(path, enc, exc)) from None
    except (UnicodeError, TypeError, ValueError) as exc:  # utf-16 without a BOM, punycode...
        raise InputFileError(
            f"{path}: cannot be read as {enc} ({exc}); the file was probably saved in another "
            "encoding: run again without --encoding, or with --encoding utf-8 or cp1252."
        ) from None


def _decode_hint(path: Path, enc: str, exc: UnicodeDecodeError) -> str:
    bad = exc.object[exc.start : exc.start + 1].hex() if isinstance(exc.object, bytes) else "?"
    suggestion = "cp1252" if enc.lower().replace("-", "").startswith("utf") else "utf-8"
    return (
        f"{path}: byte 0x{bad} at position {exc.start} is not valid {enc}. The file was "
        f"probably saved in another encoding (Excel on Windows uses cp1252): "
        f"run again with --encoding {suggestion}."
    )


def _sniff_delimiter(sample: str) -> str:
    lines = sample.splitlines()[:50]
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=CSV_DELIMITERS).delimiter
    except csv.Error:
        return _most_regular_delimiter(lines)


def _most_regular_delimiter(lines: list[str]) -> str:
    """The delimiter that splits the most lines into as many cells (then: into the most), or a
    comma when none appears: for what csv.Sniffer gives up on, one column, ragged rows, or a
    title or notes above the header (the header line's count alone would read the title)."""
    best, score = ",", (0, 0)
    for delimiter in CSV_DELIMITERS:
        counts = Counter(n for n in (line.count(delimiter) for line in lines) if n)
        for count, sharing in counts.items():
            if (sharing, count) > score:
                best, score = delimiter, (sharing, count)
    return best


def _delimiter_name(delimiter: str) -> str:
    return {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}.get(delimiter, delimiter)
