"""The retry file: the input's own rows that were invalid or failed, in the input's format, to
fix and feed straight back in."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
from openpyxl import Workbook

from ..core.outcome import RowStatus
from .excel_limits import fit_cells
from .table import Table
from .workbook import _atomic, _Sheet

RETRY_STATUSES = frozenset(
    {RowStatus.INVALID.value, RowStatus.FAILED.value, RowStatus.INCOMPLETE.value}
)


def add_rows_sheet(wb: Workbook, name: str, rows: pd.DataFrame, table: Table | None = None) -> None:
    """A sheet of input rows as they were read: the header (on the input's header row, when
    `table` gives it), then every cell as text (a SKU 00420 stays 00420), the cells beyond
    the header too, to fix and feed back in."""
    ws = _Sheet(wb.create_sheet(name))
    for _ in range((table.header_row if table else 1) - 1):
        ws.ws.append([])
    ws.append([str(c) for c in rows.columns], bold=True)
    for cells in _rows(rows, table):
        ws.ws.append([ws.cell(v) for v in cells])


def _rows(rows: pd.DataFrame, table: Table | None) -> list[list[str]]:
    """Each row's cells, with the cells it holds beyond the header where it has any: a row
    that had too many cells comes back with them, still too long, never silently cut to fit."""
    width = len(rows.columns)
    extras = table.extra_cells if table is not None else {}
    out = []
    for row, values in zip(
        rows.index.tolist(), rows.itertuples(index=False, name=None), strict=True
    ):
        cells = ["" if v is None else str(v) for v in values]
        for ref, value in extras.get(int(row), []):
            at = _column_index(ref)
            cells += [""] * (at + 1 - len(cells)) if at >= len(cells) else []
            if at >= width:
                cells[at] = value
        out.append(cells)
    return out


def _column_index(ref: str) -> int:
    """`E3` -> 4: a cell's 0-based column."""
    number = 0
    for letter in ref.rstrip("0123456789").split("!")[-1]:
        number = number * 26 + ord(letter.upper()) - ord("A") + 1
    return number - 1


def write_retry_file(path: Path, table: Table, outcome: pd.DataFrame) -> Path | None:
    """The input's own rows that were invalid or failed, in the input's format, to fix and
    feed straight back in: the header on the input's own header row (a mapping's
    `header_row:` still finds it), every cell each row held. None when there are no such
    rows."""
    wanted = outcome.index[outcome["status"].isin(RETRY_STATUSES)]
    if len(wanted) == 0:
        return None
    rows = table.frame.loc[wanted]
    path = Path(path)
    with _atomic(path) as tmp:
        if path.suffix == ".csv":
            # As the input was written: a BOM only where it had one, its own line ending.
            encoding = (
                "utf-8" if table.encoding == "utf-8-sig" and not table.bom else table.encoding
            )
            with tmp.open("w", newline="", encoding=encoding) as fh:
                writer = csv.writer(fh, delimiter=table.delimiter, lineterminator=table.line_end)
                writer.writerows([[]] * (table.header_row - 1))
                writer.writerow(rows.columns)
                writer.writerows(_rows(rows, table))
        else:
            wb = Workbook(write_only=True)
            (rows,), _ = fit_cells(path, [(table.sheet or "Sheet1", rows)], [], table.header_row)
            add_rows_sheet(wb, table.sheet or "Sheet1", rows, table)
            wb.save(tmp)
    return path
