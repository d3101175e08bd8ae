"""Load stage: read a CSV or Excel sheet into a frame of text cells numbered as in the sheet."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import itertools
import logging
import re
import struct
import threading
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from isal import isal_zlib
from pyarrow import csv as pa_csv

from .._errors import InputFileError
from ._text import TEXT, arrow, blank, text_series

__all__ = ["EXCEL_SUFFIXES", "Table", "column_letter", "load_table"]

log = logging.getLogger(__name__)

EXCEL_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xlsb", ".xls", ".ods"})
CSV_SNIFF_BYTES = 64 * 1024
CSV_DELIMITERS = ",;\t|"
# An encrypted (password-protected) .xlsx is not a zip but an OLE compound file.
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
HEADER_ROW = 1


def column_letter(index: int) -> str:
    """Excel's name for a 0-based column index: 0 -> A, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return letters


@dataclass(frozen=True, kw_only=True)
class Table:
    """A sheet as the user sees it: every cell text ("" when empty), indexed by sheet row."""

    frame: pd.DataFrame
    source: Path
    sheet: str | None
    letters: dict[str, str]
    header_row: int = HEADER_ROW
    duplicate_headers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Headers that appear more than once -> their cells ("A1", "F1")."""
    delimiter: str = ","
    """For CSV: the delimiter found, so a retry file can be written the same way."""
    encoding: str = "utf-8-sig"
    merged: dict[tuple[int, str], str] = field(default_factory=dict)
    """(sheet row, column) of a merged cell other than the top-left one, which alone holds the
    value -> the merged range (`B4:B5`)."""
    unreadable: dict[tuple[int, str], str] = field(default_factory=dict)
    """(sheet row, column) -> why a cell that reads as empty is not: an Excel error it holds
    (`#N/A`), or a formula without a saved value."""
    extra_cells: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    """Rows with more cells than the header: sheet row -> [(cell, value)] of the extra ones.
    Such a row is invalid (its cells may have shifted); empty extra cells are ignored."""

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.frame.columns]

    def where(self) -> str:
        """'products.xlsx, sheet Catalogue' or 'carts.csv'."""
        name = self.source.name
        return f"{name}, sheet {self.sheet}" if self.sheet is not None else name

    def cell_ref(self, row: int, column: str) -> str:
        """The cell as Excel names it, with the sheet when there is one: 'Catalogue!D14'."""
        ref = f"{self.letters.get(column, '?')}{row}"
        if self.sheet is None:
            return ref
        sheet = self.sheet if self.sheet.replace("_", "").isalnum() else f"'{self.sheet}'"
        return f"{sheet}!{ref}"


def load_table(path: Path, *, sheet: str | None = None, encoding: str | None = None) -> Table:
    """Read `path` (CSV or Excel) with every cell as text, keeping leading zeros."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: no such file. Check the path and the working directory.")
    if path.is_dir():
        raise InputFileError(f"{path}: is a folder, not a spreadsheet file.")
    if path.stat().st_size == 0:
        raise InputFileError(f"{path}: the file is empty; export the sheet again.")
    if path.suffix.lower() in EXCEL_SUFFIXES:
        if encoding is not None:
            raise InputFileError(f"{path}: --encoding applies to CSV files only, not workbooks.")
        return _load_excel(path, sheet)
    if sheet is not None:
        raise InputFileError(f"{path}: --sheet applies to Excel workbooks only, not CSV files.")
    return _load_csv(path, encoding)


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


# --- Excel -----------------------------------------------------------------------------------


def _load_excel(path: Path, sheet: str | None) -> Table:
    from python_calamine import CalamineError, CalamineWorkbook

    with path.open("rb") as fh:
        magic = fh.read(len(OLE_MAGIC))
    if magic == OLE_MAGIC and path.suffix.lower() in {".xlsx", ".xlsm", ".xlsb"}:
        raise InputFileError(
            f"{path}: the workbook is password-protected (encrypted). Open it in Excel, remove "
            "the password (File > Info > Protect Workbook > Encrypt with Password), save, "
            "and run again."
        )
    try:
        workbook = CalamineWorkbook.from_path(str(path))
    except (CalamineError, ValueError, OSError) as exc:
        raise InputFileError(
            f"{path}: cannot be read as an Excel workbook ({exc}). The file may be damaged or "
            "not really a workbook: open it in Excel and save it again as .xlsx."
        ) from None
    names: list[str] = list(workbook.sheet_names)
    hidden = {
        m.name for m in workbook.sheets_metadata if str(m.visible).rsplit(".", 1)[-1] != "Visible"
    }
    chosen = _choose_sheet(path, names, sheet, hidden)
    if sheet is None and len(names) > 1:
        log.info("read sheet %r of %s (give --sheet to read another)", chosen, path.name)
    # The sheet's XML is read (and inflated) in a thread while calamine parses: what the
    # values leave out costs almost no time beside it.
    xml_facts = _Prefetch(_sheet_xml, path, chosen) if _is_xlsx(path) else None
    if xml_facts is not None:
        # calamine holds the sheet as one grid up to its farthest cell, and aborts the process
        # when that cannot be reserved: a sheet whose used range is absurd is read cell by
        # cell. The range is the sheet's <dimension> (Excel always writes it), else found in
        # the XML, which calamine then waits for.
        extent = _declared_extent(path, chosen)
        if extent is None:
            facts = xml_facts.result()
            extent = _scanned_extent(facts[0]) if facts is not None else None
        if extent is not None and _too_large(path, chosen, *extent):
            return _load_sparse(path, chosen, xml_facts.result())
    try:
        reader = workbook.get_sheet_by_name(chosen)
        rows: list[list[Any]] = reader.to_python(skip_empty_area=False)
        spans = list(getattr(reader, "merged_cell_ranges", None) or [])
    except (CalamineError, ValueError) as exc:
        raise InputFileError(f"{path}, sheet {chosen}: cannot be read ({exc}).") from None
    # The header is the first non-empty row; rows keep the numbers Excel shows.
    start = next((i for i, r in enumerate(rows) if any(v not in ("", None) for v in r)), None)
    if start is None:
        raise InputFileError(f"{path}, sheet {chosen}: the sheet is empty.")
    header, repeated = _header_names([_cell_text(v) for v in rows[start]])
    width = len(header)
    body = rows[start + 1 :]
    columns = {
        name: _column_text(cells)
        for name, cells in zip(header, _transposed(body, width), strict=True)
    }
    first_row = start + 2
    frame = pd.DataFrame(columns, index=pd.RangeIndex(first_row, first_row + len(body)), dtype=TEXT)
    if width == 0:
        raise InputFileError(f"{path}, sheet {chosen}: the header row is empty.")
    table = _finish(path, chosen, frame, repeated, header_row=start + 1)
    if spans:
        table = replace(table, merged=_merged_cells(spans, table))
    if xml_facts is not None:
        facts = xml_facts.result()
        if facts is not None:
            table = _as_excel_shows(table, *facts)
    return table


_CELL_REF = re.compile(rb'<c r="([A-Z]{1,3})(\d+)"')
_VALUE = re.compile(rb"<v>([^<]*)</v>")
_NOT_A_NUMBER = re.compile(rb'\bt="(?!n")')
NO_SAVED_VALUE = "a formula without a saved value"


def _is_xlsx(path: Path) -> bool:
    return path.suffix.lower() in {".xlsx", ".xlsm"}


class _Prefetch:
    """A call run in a thread of its own; `result()` waits for it (None if it failed)."""

    def __init__(self, call: Callable[..., Any], *args: Any) -> None:
        self._value: Any = None
        self._thread = threading.Thread(target=self._run, args=(call, *args), daemon=True)
        self._thread.start()

    def _run(self, call: Callable[..., Any], *args: Any) -> None:
        try:
            self._value = call(*args)
        except Exception:  # the values calamine read still stand; only this extra is lost
            log.warning("could not read the sheet's XML beside its values", exc_info=True)

    def result(self) -> Any:
        self._thread.join()
        return self._value


def _sheet_xml(path: Path, sheet: str) -> tuple[bytes, dict[bytes, str]] | None:
    """The sheet's XML and its zero-padding styles, or None when they cannot be read."""
    try:
        with zipfile.ZipFile(path) as book:
            return _inflated(path, book.getinfo(_sheet_part(book, sheet))), _padded_styles(book)
    except (KeyError, StopIteration, OSError, zipfile.BadZipFile, ET.ParseError, ValueError):
        return None


def _inflated(path: Path, member: zipfile.ZipInfo) -> bytes:
    """A ZIP member's bytes; deflated ones inflated by ISA-L, twice as fast as zlib."""
    if member.compress_type != zipfile.ZIP_DEFLATED or member.flag_bits & 0x1:
        with zipfile.ZipFile(path) as book:
            return book.read(member)
    with path.open("rb") as fh:
        fh.seek(member.header_offset)
        local = fh.read(30)
        if local[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"no local header for {member.filename}")
        name_length, extra_length = struct.unpack("<HH", local[26:30])
        fh.seek(member.header_offset + 30 + name_length + extra_length)
        data = isal_zlib.decompressobj(-15).decompress(fh.read(member.compress_size))
    if len(data) != member.file_size or isal_zlib.crc32(data) != member.CRC:
        raise zipfile.BadZipFile(f"{member.filename} is damaged (its checksum differs)")
    return data


def _as_excel_shows(table: Table, xml: bytes, padded: dict[bytes, str]) -> Table:
    """What calamine's values leave out, from the sheet's XML: numbers shown zero-padded
    (a SKU 421 formatted 00000 reads 00421, as Excel shows it), and the cells that read as
    empty but are not (Excel errors, formulas whose value was never saved)."""
    by_letter = {letter: column for column, letter in table.letters.items()}
    shown = _padded_cells(xml, padded, by_letter, table) if padded else {}
    if shown:
        frame = table.frame.copy()
        for column in {c for _, c in shown}:
            cells = frame[column].tolist()
            first = int(frame.index[0])
            for (row, col), text in shown.items():
                if col == column:
                    cells[row - first] = text
            frame[column] = pd.Series(cells, index=frame.index, dtype=TEXT)
        table = replace(table, frame=frame)
    return replace(table, unreadable=_unreadable_cells(xml, by_letter, table))


MAX_CELLS = 50_000_000
"""A used range larger than this is a stray cell far from the data, not a sheet to read: the
whole grid would be reserved at once (XFD1048576 alone asks for 512 GB)."""
_DIMENSION = re.compile(rb'<dimension ref="([A-Z]{1,3})(\d+)(?::([A-Z]{1,3})(\d+))?"')


def _merged_cells(
    spans: list[tuple[tuple[int, int], tuple[int, int]]], table: Table
) -> dict[tuple[int, str], str]:
    by_letter = {letter: column for column, letter in table.letters.items()}
    merged: dict[tuple[int, str], str] = {}
    for (top, left), (bottom, right) in spans:
        name = f"{column_letter(left)}{top + 1}:{column_letter(right)}{bottom + 1}"
        for r in range(top, bottom + 1):
            for c in range(left, right + 1):
                column = by_letter.get(column_letter(c))
                if (r, c) != (top, left) and column is not None:
                    merged[(r + 1, column)] = name
    return merged


def _declared_extent(path: Path, sheet: str) -> tuple[str, int] | None:
    """The last column and row of the sheet's used range as its <dimension> gives them."""
    try:
        with zipfile.ZipFile(path) as book, book.open(_sheet_part(book, sheet)) as part:
            head = part.read(4096)
    except (KeyError, StopIteration, OSError, zipfile.BadZipFile, ET.ParseError):
        return None
    found = _DIMENSION.search(head)
    if found is None:
        return None
    if found.group(3) is None:
        return found.group(1).decode(), int(found.group(2))
    return found.group(3).decode(), int(found.group(4))


_WIDE_CELL = re.compile(rb'<c r="([A-Z]{2,3})\d')
_ROW_NUMBER = re.compile(rb'<row r="(\d+)"')


def _scanned_extent(xml: bytes) -> tuple[str, int]:
    """The last column and row holding a cell, from the XML (rows come in order). Only cells
    past column Z are looked at: most sheets have none."""
    found = {m.group(1) for m in _WIDE_CELL.finditer(xml)}
    widest = max(found, key=_column_number).decode() if found else "Z"
    at = xml.rfind(b'<row r="')
    last = _ROW_NUMBER.match(xml, at) if at >= 0 else None
    return widest, int(last.group(1)) if last else 1


def _column_number(letters: bytes | str) -> int:
    number = 0
    for letter in letters if isinstance(letters, str) else letters.decode():
        number = number * 26 + ord(letter) - ord("A") + 1
    return number


def _too_large(path: Path, sheet: str, last_column: str, last_row: int) -> bool:
    """Whether a used range is too large to hold as a grid; says so when it is."""
    width = _column_number(last_column)
    if width * last_row <= MAX_CELLS:
        return False
    log.warning(
        "%s, sheet %s: the used range reaches %s%d (%s columns by %s rows), far beyond the "
        "data: a stray value or format sits out there (Ctrl+End in Excel finds it). The sheet "
        "is read cell by cell instead, which is slower.",
        path,
        sheet,
        last_column,
        last_row,
        f"{width:,}",
        f"{last_row:,}",
    )
    return True


def _load_sparse(path: Path, sheet: str, xml_facts: tuple[bytes, dict[bytes, str]] | None) -> Table:
    """Read a sheet cell by cell, holding only the cells it has: for a used range too large to
    hold as a grid (a stray cell at XFD1048576 would reserve 512 GB in calamine).

    openpyxl's worksheet parser yields the cells present in each <row> (the read-only
    worksheet would pad every row to the used range's width); values are the same Python
    types calamine gives, so the text is the same."""
    import openpyxl
    from openpyxl.worksheet._reader import WorkSheetParser

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise InputFileError(f"{path}, sheet {sheet}: cannot be read ({exc}).") from None
    cells: dict[int, dict[int, Any]] = {}
    try:
        ws = book[sheet]
        with ws._get_source() as src:
            parser = WorkSheetParser(
                src,
                ws._shared_strings,
                data_only=True,
                epoch=book.epoch,
                date_formats=book._date_formats,
                timedelta_formats=book._timedelta_formats,
            )
            for row, found in parser.parse():
                held = {c["column"] - 1: c["value"] for c in found if c["value"] not in ("", None)}
                if held:
                    cells[row] = held
    finally:
        book.close()
    if not cells:
        raise InputFileError(f"{path}, sheet {sheet}: the sheet is empty.")
    header_at = min(cells)
    width = max(max(row) for row in cells.values()) + 1
    header_cells = cells.pop(header_at)
    header, repeated = _header_names([_cell_text(header_cells.get(j)) for j in range(width)])
    used = sorted({j for row in cells.values() for j in row} | set(header_cells))
    body = sorted(cells)
    index = pd.Index(body, dtype="int64")
    frame = pd.DataFrame(
        {header[j]: _column_text([cells[r].get(j, "") for r in body]) for j in used},
        index=index,
        dtype=TEXT,
    )
    letters = {header[j]: column_letter(j) for j in used}
    table = _finish(path, sheet, frame, repeated, header_row=header_at, letters=letters)
    return _as_excel_shows(table, *xml_facts) if xml_facts is not None else table


_ZERO_CODE = re.compile(r'(?:0|[-./ ]|\\.|"[^"]*")+')


def _padded_styles(book: zipfile.ZipFile) -> dict[bytes, str]:
    """Cell style index -> a number format that pads with zeros (`00000`, `000-000`)."""
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    try:
        styles = ET.fromstring(book.read("xl/styles.xml"))
    except KeyError:
        return {}
    codes = {
        f.get("numFmtId", ""): f.get("formatCode", "")
        for f in styles.iterfind("m:numFmts/m:numFmt", ns)
    }
    padding = {
        fid: code
        for fid, code in codes.items()
        if _ZERO_CODE.fullmatch(code) and re.sub(r'"[^"]*"|\\.', "", code).count("0") > 1
    }
    return {
        str(i).encode(): padding[xf.get("numFmtId", "")]
        for i, xf in enumerate(styles.iterfind("m:cellXfs/m:xf", ns))
        if xf.get("numFmtId", "") in padding
    }


def _padded_cells(
    xml: bytes, styles: dict[bytes, str], by_letter: dict[str, str], table: Table
) -> dict[tuple[int, str], str]:
    mark = re.compile(rb'\bs="(' + b"|".join(styles) + rb')"')
    shown: dict[tuple[int, str], str] = {}
    for hit in mark.finditer(xml):
        start = xml.rfind(b"<c ", 0, hit.start())
        end = xml.find(b"</c>", hit.end())
        ref = _CELL_REF.match(xml, start) if start >= 0 else None
        value = _VALUE.search(xml, hit.end(), end) if end >= 0 else None
        if ref is None or value is None or _NOT_A_NUMBER.search(xml, start, value.start()):
            continue  # text, an error or a boolean: not a number to pad
        column = by_letter.get(ref.group(1).decode())
        row = int(ref.group(2))
        if column is None or row not in table.frame.index:
            continue
        try:
            number = Decimal(value.group(1).decode())
        except ArithmeticError:
            continue
        if number == number.to_integral_value() and number >= 0:
            shown[(row, column)] = _pad(int(number), styles[hit.group(1)])
    return shown


def _pad(number: int, code: str) -> str:
    """`421` in `00000` -> `00421`; in `000-000` -> `000-421`; quoted text kept."""
    parts = re.findall(r'"[^"]*"|\\.|.', code)
    zeros = sum(1 for p in parts if p == "0")
    digits = str(number).zfill(zeros)
    extra, digits = digits[: len(digits) - zeros], digits[len(digits) - zeros :]
    out, k = [extra], 0
    for p in parts:
        if p == "0":
            out.append(digits[k])
            k += 1
        else:
            out.append(p.strip('"').removeprefix("\\"))
    return "".join(out)


def _unreadable_cells(
    xml: bytes, by_letter: dict[str, str], table: Table
) -> dict[tuple[int, str], str]:
    """Cells calamine reads as empty that are not: Excel errors (#N/A, #DIV/0!, ...) and
    formulas whose value was never saved (a file written by a program, not by Excel)."""
    found: dict[tuple[int, str], str] = {}
    # Found by plain searches for their marks (memchr speed: a regex with a word boundary
    # took 0.34 s over a 100k-row sheet), then each marked cell is read: such cells are few.
    for mark, error in ((b't="e"', True), (b"<f", False)):
        at = xml.find(mark)
        while at >= 0:
            end = xml.find(b"</c>", at)
            start = xml.rfind(b"<c ", 0, at)
            ref = _CELL_REF.match(xml, start) if start >= 0 and end >= 0 else None
            follows = xml[at + len(mark) : at + len(mark) + 1]
            if ref is not None and (error or follows in (b" ", b">", b"/")):
                column = by_letter.get(ref.group(1).decode())
                row = int(ref.group(2))
                if column is not None and row in table.frame.index:
                    value = _VALUE.search(xml, at, end)
                    if error and value is not None:
                        found[(row, column)] = value.group(1).decode(errors="replace")
                    elif not error and (value is None or not value.group(1).strip()):
                        found.setdefault((row, column), NO_SAVED_VALUE)
            at = xml.find(mark, max(at + 1, end))
    return found


def _sheet_part(book: zipfile.ZipFile, sheet: str) -> str:
    """The zip member holding `sheet`'s cells (workbook.xml names it, its rels place it)."""
    ns = {
        "m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
        "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    }
    workbook = ET.fromstring(book.read("xl/workbook.xml"))
    rel_id = next(
        s.get(f"{{{ns['r']}}}id")
        for s in workbook.iterfind("m:sheets/m:sheet", ns)
        if s.get("name") == sheet
    )
    rels = ET.fromstring(book.read("xl/_rels/workbook.xml.rels"))
    target = next(r.get("Target", "") for r in rels if r.get("Id") == rel_id)
    return target.lstrip("/") if target.startswith("/") else f"xl/{target}"


def _transposed(rows: list[list[Any]], width: int) -> list[list[Any]]:
    """The first `width` columns of `rows` (padded with "" where a row is short)."""
    if not rows:
        return [[] for _ in range(width)]
    if len(set(map(len, rows))) == 1 and len(rows[0]) >= width:
        grid = np.empty((len(rows), len(rows[0])), dtype=object)
        grid[:] = rows  # transposed in C: calamine's grids are rectangular
        return [grid[:, j].tolist() for j in range(width)]
    columns = list(itertools.zip_longest(*rows, fillvalue=""))[:width]
    columns += [("",) * len(rows)] * (width - len(columns))
    return [list(c) for c in columns]


def _column_text(cells: list[Any]) -> list[str]:
    """A column's cells as text. Columns of one kind of cell (text, numbers, dates) are
    converted by one C-level map; others cell by cell."""
    kinds = set(map(type, cells))
    if kinds <= {str}:
        return cells
    if len(kinds) == 1:
        return list(map(_CELL_TEXT.get(kinds.pop(), _cell_text), cells))
    return [v if type(v) is str else _cell_text(v) for v in cells]


def _choose_sheet(
    path: Path,
    names: Sequence[str],
    sheet: str | None,
    hidden: Collection[str] = (),
) -> str:
    """The sheet asked for, or the first one a person sees (hidden sheets are never picked
    by default: they hold lookups and leftovers, not the data to import)."""
    if not names:
        raise InputFileError(f"{path}: the workbook has no sheets.")
    if sheet is None:
        visible = [n for n in names if n not in hidden]
        if not visible:
            raise InputFileError(
                f"{path}: every sheet is hidden ({', '.join(names)}); give --sheet to read one."
            )
        return visible[0]
    if sheet in names:
        return sheet
    folded = {n.casefold().strip(): n for n in names}
    if sheet.casefold().strip() in folded:
        return folded[sheet.casefold().strip()]
    if sheet.isdigit() and 1 <= int(sheet) <= len(names):
        return names[int(sheet) - 1]
    listed = ", ".join(repr(n) for n in names)
    raise InputFileError(f"{path}: no sheet named {sheet!r}. The workbook has: {listed}.")


def _float_text(value: float) -> str:
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    text = repr(value)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text


def _datetime_text(value: dt.datetime) -> str:
    if value.time() == dt.time(0, 0):
        return value.date().isoformat()
    return value.isoformat(sep=" ", timespec="seconds")


_CELL_TEXT: dict[type, Callable[[Any], str]] = {
    str: lambda v: v,
    float: _float_text,
    int: str,
    bool: lambda v: "TRUE" if v else "FALSE",
    dt.date: dt.date.isoformat,
    dt.datetime: _datetime_text,
    dt.time: dt.time.isoformat,
    dt.timedelta: str,
    type(None): lambda v: "",
}


def _cell_text(value: Any) -> str:
    """A cell as Excel shows it by default: 12 not 12.0, dates as ISO, TRUE/FALSE."""
    convert = _CELL_TEXT.get(type(value))
    return convert(value) if convert is not None else str(value)


# --- shared ----------------------------------------------------------------------------------


Headers = tuple[list[str], dict[str, list[int]]]


def _header_names(cells: Sequence[str]) -> Headers:
    """Unique column names, and the positions of headers that appear more than once.

    A blank header over data gets Excel's name (`Column F`); a repeated header keeps its
    first column and the copies are named by letter (`Price (F)`), so every cell can still be
    reported; a mapping that uses a repeated name is refused (it cannot tell which is meant).
    """
    names = [str(c).strip() for c in cells]
    positions: dict[str, list[int]] = {}
    for j, name in enumerate(names):
        if name:
            positions.setdefault(name, []).append(j)
    unique = []
    taken = set(positions)
    for j, name in enumerate(names):
        if not name:
            made = f"Column {column_letter(j)}"
        elif positions[name][0] != j:
            made = f"{name} ({column_letter(j)})"
        else:
            unique.append(name)
            continue
        # A made-up name must not be a real header too (a header "Column B" beside a blank
        # B1): the cell's letter keeps it apart.
        while made in taken:
            made = f"{made} ({column_letter(j)})"
        taken.add(made)
        unique.append(made)
    return unique, {n: p for n, p in positions.items() if len(p) > 1}


def _blank_rows(frame: pd.DataFrame) -> np.ndarray:
    """Rows whose cells are all empty or whitespace. Column by column, looking only at rows
    still blank so far: the first column with data settles almost every row."""
    maybe = np.ones(len(frame), dtype=bool)
    for name in frame.columns:
        if not maybe.any():
            break
        maybe &= blank(arrow(frame[name]))
    return maybe


def _finish(
    path: Path,
    sheet: str | None,
    frame: pd.DataFrame,
    repeated: dict[str, list[int]],
    header_row: int = HEADER_ROW,
    letters: dict[str, str] | None = None,
) -> Table:
    """`letters`: each column's letter, when the frame does not hold every column from A."""
    if letters is None:
        letters = {str(c): column_letter(j) for j, c in enumerate(frame.columns)}
    # Drop blank-headed columns that hold nothing, and rows with no value in any cell.
    keep_cols = [
        c
        for c in frame.columns
        if not (c == f"Column {letters[str(c)]}" and blank(arrow(frame[c])).all())
    ]
    frame = frame[keep_cols].astype(TEXT)
    blank_rows = _blank_rows(frame)
    if blank_rows.any():
        frame = frame.loc[~blank_rows]
    where = f"{path}, sheet {sheet}" if sheet is not None else str(path)
    if frame.empty:
        raise InputFileError(
            f"{where}: the header row is there but no data rows follow; nothing to import."
        )
    duplicates = {
        name: tuple(f"{column_letter(j)}{header_row}" for j in cols)
        for name, cols in repeated.items()
    }
    return Table(
        frame=frame,
        source=path,
        sheet=sheet,
        letters=letters,
        header_row=header_row,
        duplicate_headers=duplicates,
    )
