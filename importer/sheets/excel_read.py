"""Excel reading: calamine's values, and from the sheet's XML what they leave out (error
cells, unsaved formulas, zero-padded numbers: `excel_xml`); absurd used ranges read cell by
cell. Cells become text in `excel_text`."""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..core.errors import InputFileError
from ..core.text import text_series
from .excel_text import _arrow_text, _cell_text, _column_text
from .excel_xml import (
    _as_excel_shows,
    _column_number,
    _declared_extent,
    _scanned_extent,
    _sheet_xml,
)
from .header import Header, find_header, forced_header
from .table import OLE_MAGIC, Table, _finish, _header_names, column_letter

if TYPE_CHECKING:
    from python_calamine import CalamineWorkbook

log = logging.getLogger(__name__)

# --- Excel -----------------------------------------------------------------------------------


def _load_excel(path: Path, sheet: str | None, header_row: int | None = None) -> Table:
    """The sheet asked for (else the first one a person sees), every cell as text: its header
    found in its first rows, or the row asked for (`header_row`)."""
    from python_calamine import CalamineError

    workbook = _open_workbook(path)
    chosen = _sheet_to_read(path, workbook, sheet)
    # The sheet's XML is read (and inflated) in a thread while calamine parses: what the
    # values leave out costs almost no time beside it.
    xml_facts = _Prefetch(_sheet_xml, path, chosen) if _is_xlsx(path) else None
    if xml_facts is not None and _beyond_a_grid(path, chosen, xml_facts):
        return _load_sparse(path, chosen, xml_facts.result(), header_row)
    try:
        reader = workbook.get_sheet_by_name(chosen)
        rows: list[list[Any]] = reader.to_python(skip_empty_area=False)
        spans = list(getattr(reader, "merged_cell_ranges", None) or [])
    except (CalamineError, ValueError) as exc:
        raise InputFileError(f"{path}, sheet {chosen}: cannot be read ({exc}).") from None
    table = _grid_table(path, chosen, rows, header_row)
    if spans:
        table = replace(table, merged=_merged_cells(spans, table))
    if xml_facts is not None:
        facts = xml_facts.result()
        if facts is not None:
            table = _as_excel_shows(table, *facts)
    return table


def _open_workbook(path: Path) -> CalamineWorkbook:
    """The workbook opened by calamine; an encrypted or damaged file is refused."""
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
    return workbook


def _sheet_to_read(path: Path, workbook: CalamineWorkbook, sheet: str | None) -> str:
    """The name of the sheet to read (see `_choose_sheet`), said when others were left."""
    names: list[str] = list(workbook.sheet_names)
    hidden = {
        m.name for m in workbook.sheets_metadata if str(m.visible).rsplit(".", 1)[-1] != "Visible"
    }
    chosen = _choose_sheet(path, names, sheet, hidden)
    if sheet is None and len(names) > 1:
        log.info("read sheet %r of %s (give --sheet to read another)", chosen, path.name)
    return chosen


def _beyond_a_grid(path: Path, sheet: str, xml_facts: _Prefetch) -> bool:
    """Whether the sheet's used range is too large for calamine's grid (said when it is)."""
    # calamine holds the sheet as one grid up to its farthest cell, and aborts the process
    # when that cannot be reserved: a sheet whose used range is absurd is read cell by
    # cell. The range is the sheet's <dimension> (Excel always writes it), else found in
    # the XML, which calamine then waits for.
    extent = _declared_extent(path, sheet)
    if extent is None:
        facts = xml_facts.result()
        extent = _scanned_extent(facts[0]) if facts is not None else None
    return extent is not None and _too_large(path, sheet, *extent)


def _grid_table(path: Path, chosen: str, rows: list[list[Any]], header_row: int | None) -> Table:
    """The table of calamine's grid: the rows below its header (see `_grid_header`), which
    keep the numbers Excel shows."""
    found = _grid_header(path, chosen, rows, header_row)
    start = found.row - 1
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
    return _finish(path, chosen, frame, repeated, header_row=found.row, header_note=found.note)


def _grid_header(path: Path, chosen: str, rows: list[list[Any]], header_row: int | None) -> Header:
    """The row asked for, checked; else the header found among the grid's first rows."""
    if header_row is not None and rows:
        cells = [_cell_text(v) for v in rows[header_row - 1]] if header_row <= len(rows) else None
        return forced_header(path, chosen, header_row, cells, len(rows))
    found = find_header(
        path,
        chosen,
        (
            (i + 1, [_cell_text(v) for v in r])
            for i, r in enumerate(rows)
            if any(v not in ("", None) for v in r)
        ),
    )
    if found is None:
        raise InputFileError(_empty(path, chosen))
    return found


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


def _merged_cells(
    spans: list[tuple[tuple[int, int], tuple[int, int]]], table: Table
) -> dict[tuple[int, str], str]:
    """(sheet row, column) of each merged cell but its range's top-left one -> the range."""
    by_letter = {letter: column for column, letter in table.letters.items()}
    merged: dict[tuple[int, str], str] = {}
    for (top, left), (bottom, right) in spans:
        name = f"{column_letter(left)}{top + 1}:{column_letter(right)}{bottom + 1}"
        for r in range(top, bottom + 1):
            for c in range(left, right + 1):
                column = by_letter.get(column_letter(c))
                # Rows above the header are not the sheet's data: a merged title says nothing.
                if (r, c) != (top, left) and column is not None and r + 1 > table.header_row:
                    merged[(r + 1, column)] = name
    return merged


MAX_CELLS = 50_000_000
"""A used range larger than this is a stray cell far from the data, not a sheet to read: the
whole grid would be reserved at once (XFD1048576 alone asks for 512 GB)."""


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


def _load_sparse(
    path: Path,
    sheet: str,
    xml_facts: tuple[bytes, dict[bytes, str]] | None,
    header_row: int | None = None,
) -> Table:
    """Read a sheet cell by cell, holding only the cells it has: for a used range too large to
    hold as a grid (a stray cell at XFD1048576 would reserve 512 GB in calamine)."""
    cells = _sparse_cells(path, sheet)
    found = _sparse_header(path, sheet, cells, header_row)
    header_cells = cells[found.row]
    cells = {r: held for r, held in cells.items() if r > found.row}
    width = max(max(row) for row in [*cells.values(), header_cells]) + 1
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
    table = _finish(
        path,
        sheet,
        frame,
        repeated,
        header_row=found.row,
        letters=letters,
        header_note=found.note,
    )
    return _as_excel_shows(table, *xml_facts) if xml_facts is not None else table


def _sparse_cells(path: Path, sheet: str) -> dict[int, dict[int, Any]]:
    """Sheet row -> 0-based column -> value, of the cells holding a value.

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
    return cells


def _sparse_header(
    path: Path, sheet: str, cells: dict[int, dict[int, Any]], header_row: int | None
) -> Header:
    """The row asked for, checked; else the header found among the sheet's first rows."""

    def text(held: dict[int, Any]) -> list[str]:
        return [_cell_text(held.get(j)) for j in range(max(held) + 1)]

    last = max(cells, default=0)
    if header_row is not None and last:
        held = cells.get(header_row)
        row_cells = text(held) if held else None if header_row > last else []
        return forced_header(path, sheet, header_row, row_cells, last)
    found = find_header(path, sheet, ((r, text(cells[r])) for r in sorted(cells)))
    if found is None:
        raise InputFileError(_empty(path, sheet))
    return found


def _empty(path: Path, sheet: str) -> str:
    """What is said of a sheet with no value in any cell."""
    return f"{path}, sheet {sheet}: the sheet is empty."


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
