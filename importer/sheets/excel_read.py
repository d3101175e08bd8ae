"""Excel reading: calamine's values, and from the sheet's XML what they leave out (error
cells, unsaved formulas, zero-padded numbers); absurd used ranges read cell by cell."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import re
import struct
import threading
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from isal import isal_zlib

from ..core.errors import InputFileError
from ..core.text import TEXT, flags, text_series
from .table import OLE_MAGIC, Table, _finish, _header_names, column_letter

log = logging.getLogger(__name__)

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
    first_row = start + 2
    index = pd.RangeIndex(first_row, first_row + len(body))
    # Each column straight to Arrow strings: twice as fast as pandas' checks of every value.
    columns = {
        name: text_series(_arrow_text(_column_text(cells)), index)
        for name, cells in zip(header, _transposed(body, width), strict=True)
    }
    frame = pd.DataFrame(columns, index=index) if columns else pd.DataFrame(index=index)
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
        {
            header[j]: text_series(
                _arrow_text(_column_text([cells[r].get(j, "") for r in body])), index
            )
            for j in used
        },
        index=index,
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


def _arrow_text(text: list[str] | pa.Array) -> pa.Array:
    return text if isinstance(text, pa.Array) else pa.array(text, type=pa.large_string())


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


def _column_text(cells: list[Any]) -> list[str] | pa.Array:
    """A column's cells as text. Columns of one kind of cell (text, numbers, dates) are
    converted by one C-level map; others cell by cell."""
    kinds = set(map(type, cells))
    if kinds <= {str}:
        return cells
    if kinds == {float}:
        return _floats_text(cells)
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


def _floats_text(cells: list[float]) -> pa.Array:
    """`_float_text` of a column of numbers, in C: whole numbers through int64, others by
    Arrow's shortest round-trip text, which is Python's repr but where either writes an
    exponent (those few go through `_float_text`)."""
    values = np.asarray(cells, dtype=np.float64)
    whole = (np.floor(values) == values) & (np.abs(values) < 1e16)
    text = pc.if_else(
        pa.array(whole),
        pc.cast(pa.array(np.where(whole, values, 0).astype(np.int64)), pa.large_string()),
        pc.cast(pa.array(values), pa.large_string()),
    )
    odd = np.flatnonzero(flags(pc.match_substring(text, "e")))
    if len(odd) == 0:
        return text
    fixed = text.to_pylist()
    for i in odd.tolist():
        fixed[i] = _float_text(cells[i])
    return pa.array(fixed, type=pa.large_string())


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
