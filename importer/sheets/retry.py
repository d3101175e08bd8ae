"""The retry file: the input's own rows that were invalid or failed, in the input's format, to
fix and feed straight back in."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
from openpyxl import Workbook

from ..core.outcome import RowStatus
from .table import Table
from .workbook import _atomic, _Sheet

RETRY_STATUSES = frozenset(
    {RowStatus.INVALID.value, RowStatus.FAILED.value, RowStatus.INCOMPLETE.value}
)


def add_rows_sheet(wb: Workbook, name: str, rows: pd.DataFrame) -> None:
    """A sheet of input rows as they were read: the header, then every cell as text (a SKU
    00420 stays 00420), to fix and feed back in."""
    ws = _Sheet(wb.create_sheet(name))
    ws.append([str(c) for c in rows.columns], bold=True)
    for values in rows.itertuples(index=False, name=None):
        ws.ws.append([ws.cell(v) for v in values])


def write_retry_file(path: Path, table: Table, outcome: pd.DataFrame) -> Path | None:
    """The input's own rows that were invalid or failed, in the input's format, to fix and
    feed straight back in. None when there are no such rows."""
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
                writer.writerow(rows.columns)
                writer.writerows(rows.itertuples(index=False, name=None))
        else:
            wb = Workbook(write_only=True)
            add_rows_sheet(wb, table.sheet or "Sheet1", rows)
            wb.save(tmp)
    return path
