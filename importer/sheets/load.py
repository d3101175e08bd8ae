"""Load stage: read a CSV or Excel sheet into a frame of text cells numbered as in the sheet."""

from __future__ import annotations

from pathlib import Path

from ..core.errors import InputFileError
from .csv_read import _load_csv
from .excel_read import MAX_CELLS, _load_excel
from .excel_xml import NO_SAVED_VALUE
from .table import EXCEL_SUFFIXES, Table, column_letter

__all__ = ["EXCEL_SUFFIXES", "MAX_CELLS", "NO_SAVED_VALUE", "Table", "column_letter", "load_table"]


def load_table(
    path: Path,
    *,
    sheet: str | None = None,
    encoding: str | None = None,
    header_row: int | None = None,
) -> Table:
    """Read `path` (CSV or Excel) with every cell as text, keeping leading zeros.

    `header_row`: the sheet row (1 is the first) that holds the header; the rows above it are
    not read. None: the header is found among the first rows, titles and notes above it
    skipped and said (`Table.header_note`, and a warning logged)."""
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
        return _load_excel(path, sheet, header_row)
    if sheet is not None:
        raise InputFileError(f"{path}: --sheet applies to Excel workbooks only, not CSV files.")
    return _load_csv(path, encoding, header_row)
