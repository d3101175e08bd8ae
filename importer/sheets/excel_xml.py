"""What an xlsx sheet's XML says that calamine's values leave out: numbers shown zero-padded,
Excel errors, formulas whose value was never saved; and how far the sheet's used range
reaches, from its <dimension> or from its cells."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pandas as pd

from ..core.text import TEXT
from .read_limits import inflate_part
from .table import Table

_CELL_REF = re.compile(rb'<c r="([A-Z]{1,3})(\d+)"')
_VALUE = re.compile(rb"<v>([^<]*)</v>")
_NOT_A_NUMBER = re.compile(rb'\bt="(?!n")')
NO_SAVED_VALUE = "a formula without a saved value"


def _sheet_xml(path: Path, sheet: str) -> tuple[bytes, dict[bytes, str]] | None:
    """The sheet's XML and its zero-padding styles, or None when they cannot be read."""
    try:
        with zipfile.ZipFile(path) as book:
            return _inflated(path, book.getinfo(_sheet_part(book, sheet))), _padded_styles(book)
    except (KeyError, StopIteration, OSError, zipfile.BadZipFile, ET.ParseError, ValueError):
        return None


def _inflated(path: Path, member: zipfile.ZipInfo) -> bytes:
    """A ZIP member's bytes, never inflated beyond its declared size (see `inflate_part`)."""
    return inflate_part(path, member)


def _as_excel_shows(table: Table, xml: bytes, padded: dict[bytes, str]) -> Table:
    """What calamine's values leave out, from the sheet's XML: numbers shown zero-padded
    (a SKU 421 formatted 00000 reads 00421, as Excel shows it), and the cells that read as
    empty but are not (Excel errors, formulas whose value was never saved)."""
    by_letter = {letter: column for column, letter in table.letters.items()}
    shown = _padded_cells(xml, padded, by_letter, table) if padded else {}
    if shown:
        frame = table.frame.copy()
        # Blank rows are not in the frame: a row's place is looked up, never computed.
        place = {int(row): i for i, row in enumerate(frame.index)}
        for column in {c for _, c in shown}:
            cells = frame[column].tolist()
            for (row, col), text in shown.items():
                if col == column:
                    cells[place[row]] = text
            frame[column] = pd.Series(cells, index=frame.index, dtype=TEXT)
        table = replace(table, frame=frame)
    return replace(table, unreadable=_unreadable_cells(xml, by_letter, table))


_DIMENSION = re.compile(rb'<dimension ref="([A-Z]{1,3})(\d+)(?::([A-Z]{1,3})(\d+))?"')


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
    """A column's 1-based number from its letters: A -> 1, AA -> 27."""
    number = 0
    for letter in letters if isinstance(letters, str) else letters.decode():
        number = number * 26 + ord(letter) - ord("A") + 1
    return number


PERCENT = "%"
"""The style of a cell shown as a percentage."""
_PERCENT_IDS = ("9", "10")
"""Excel's built-in percent formats (0% and 0.00%)."""
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
    # Percent formats: the built-in 0% and 0.00%, and any code with % outside quotes.
    padding.update({fid: PERCENT for fid in _PERCENT_IDS})
    padding.update(
        {fid: PERCENT for fid, code in codes.items() if "%" in re.sub(r'"[^"]*"|\\.', "", code)}
    )
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
        code = styles[hit.group(1)]
        if code == PERCENT:
            # 0.15 shown as 15 %: read as Excel shows it, never as a number 100 times smaller.
            shown[(row, column)] = format((number * 100).normalize(), "f") + "%"
        elif number == number.to_integral_value() and number >= 0:
            shown[(row, column)] = _pad(int(number), code)
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
