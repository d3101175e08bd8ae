"""CSV reading: encodings (BOMs, UTF-16 without one), the delimiter, Arrow's parser, and
Python's csv module for the files Arrow cannot read plainly."""

from __future__ import annotations

import codecs
import csv
import io
import logging
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pyarrow as pa
from pyarrow import csv as pa_csv

from ..core.errors import InputFileError
from ..core.text import TEXT, text_series
from .table import (
    CSV_DELIMITERS,
    CSV_SNIFF_BYTES,
    HEADER_ROW,
    OLE_MAGIC,
    Table,
    _finish,
    _header_names,
    column_letter,
)

log = logging.getLogger(__name__)

# --- CSV -------------------------------------------------------------------------------------


def _load_csv(path: Path, encoding: str | None) -> Table:
    with path.open("rb") as fh:
        sample_bytes = fh.read(CSV_SNIFF_BYTES)
    enc = encoding or _detect_encoding(path, sample_bytes)
    try:
        codecs.lookup(enc)
    except LookupError:
        raise InputFileError(
            f"{path}: unknown encoding {enc!r}; try utf-8, cp1252 or latin-1."
        ) from None
    sample = _decode_sample(path, sample_bytes, enc, complete=len(sample_bytes) < CSV_SNIFF_BYTES)
    delimiter = _sniff_delimiter(sample)
    header_cells = next(csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter), [])
    fast = _read_csv_arrow(path, enc, delimiter, header_cells)
    if fast is not None:
        header_cells, frame = fast
        names, repeated = _header_names(header_cells)
        frame.columns = pd.Index(names)
        return replace(_finish(path, None, frame, repeated), delimiter=delimiter, encoding=enc)
    return _read_csv_records(path, enc, delimiter)


def _read_csv_records(path: Path, enc: str, delimiter: str) -> Table:
    """The careful reader, for files Arrow's fast path does not take (other encodings, rows
    of other widths, a blank line or a title above the header): Python's csv module, which
    also reads CR-only line endings. The header is the first row with a value in it, as in
    Excel; a row with more cells than the header is that row's problem, wherever it is."""
    records: list[list[str]] = []
    reader = None
    try:
        with path.open(encoding=enc, newline="") as fh:
            reader = csv.reader(fh, delimiter=delimiter, strict=True)
            records = list(reader)
    except UnicodeDecodeError as exc:
        raise InputFileError(_decode_hint(path, enc, exc)) from None
    except csv.Error as exc:
        line = f" at line {reader.line_num}" if reader is not None else ""
        raise InputFileError(
            f"{path}: not a well-formed CSV file{line} ({exc}). Check for a stray quote, "
            "or export the sheet again."
        ) from None
    start = next((i for i, r in enumerate(records) if any(c.strip() for c in r)), None)
    if start is None:
        raise InputFileError(f"{path}: the file holds no values; export the sheet again.")
    header = records[start]
    width = len(header)
    header_row = start + 1
    body = records[start + 1 :]
    extras: dict[int, list[tuple[str, str]]] = {}
    columns: list[list[str]] = [[] for _ in range(width)]
    for n, record in enumerate(body):
        row = header_row + 1 + n
        extra = [
            (f"{column_letter(width + k)}{row}", value)
            for k, value in enumerate(record[width:])
            if value.strip()
        ]
        if extra:
            extras[row] = extra
        for j, column in enumerate(columns):
            column.append(record[j] if j < len(record) else "")
    filled = sum(1 for c in header if c.strip())
    if filled == 1 and body and len(extras) > len(body) / 2:
        raise InputFileError(
            f"{path}: row {header_row} holds one value ({next(c for c in header if c.strip())!r})"
            f" and most rows below it hold more: it looks like a title above the header. "
            f"Delete the rows above the header, so the header is the first row, and run again."
        )
    names, repeated = _header_names(header)
    index = pd.RangeIndex(header_row + 1, header_row + 1 + len(body))
    frame = pd.DataFrame(dict(zip(names, columns, strict=True)), index=index, dtype=TEXT)
    table = _finish(path, None, frame, repeated, header_row=header_row)
    return replace(table, delimiter=delimiter, encoding=enc, extra_cells=extras)


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
    path: Path, enc: str, delimiter: str, header: list[str]
) -> tuple[list[str], pd.DataFrame] | None:
    """The header cells and the rows, read by Arrow's multithreaded CSV parser (~5x faster
    than pandas' C parser, and the cells stay Arrow text). None when the file is not plain
    UTF-8 with a header on its first line and as many cells in every row: the careful reader
    then reads it, and says what is wrong."""
    width = len(header)
    if codecs.lookup(enc).name not in {"utf-8", "utf-8-sig"} or not any(c.strip() for c in header):
        return None
    try:
        table = pa_csv.read_csv(
            path,
            # The header is read as a row of text too: a header such as "2024" must not
            # turn its column into numbers.
            read_options=pa_csv.ReadOptions(autogenerate_column_names=True),
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
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None  # ragged rows, bad UTF-8, a stray quote: the careful path says which
    if table.num_columns != width or table.num_rows == 0:
        return None
    header = [str(table.column(j)[0]) for j in range(width)]
    body = table.slice(1)
    index = pd.RangeIndex(HEADER_ROW + 1, HEADER_ROW + 1 + body.num_rows)
    frame = pd.DataFrame(
        {f"f{j}": text_series(body.column(j), index) for j in range(width)}, index=index
    )
    return header, frame


def _decode_sample(path: Path, data: bytes, enc: str, *, complete: bool) -> str:
    decoder = codecs.getincrementaldecoder(enc)()
    try:
        # A multi-byte character may be cut at the end of the sample: only fail on real errors.
        return decoder.decode(data, final=complete)
    except UnicodeDecodeError as exc:
        raise InputFileError(_decode_hint(path, enc, exc)) from None


def _decode_hint(path: Path, enc: str, exc: UnicodeDecodeError) -> str:
    bad = exc.object[exc.start : exc.start + 1].hex() if isinstance(exc.object, bytes) else "?"
    suggestion = "cp1252" if enc.lower().replace("-", "").startswith("utf") else "utf-8"
    return (
        f"{path}: byte 0x{bad} at position {exc.start} is not valid {enc}. The file was "
        f"probably saved in another encoding (Excel on Windows uses cp1252): "
        f"run again with --encoding {suggestion}."
    )


def _sniff_delimiter(sample: str) -> str:
    lines = sample.splitlines()
    head = "\n".join(lines[:50])
    try:
        return csv.Sniffer().sniff(head, delimiters=CSV_DELIMITERS).delimiter
    except csv.Error:
        # One column, or too irregular to sniff: count candidates on the header line.
        first = lines[0] if lines else ""
        counts = {d: first.count(d) for d in CSV_DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","


def _delimiter_name(delimiter: str) -> str:
    return {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}.get(delimiter, delimiter)
