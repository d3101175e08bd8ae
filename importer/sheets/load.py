"""Load stage: read a CSV or Excel sheet into a frame of text cells numbered as in the sheet."""

from __future__ import annotations

from pathlib import Path

from ..core.errors import InputFileError
from .csv_read import _load_csv
from .excel_read import MAX_CELLS, _load_excel
from .excel_xml import NO_SAVED_VALUE
from .inputs import shown_name
from .read_limits import check_columns, check_unzipped, out_of_memory
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
    try:
        return _load_table(path, sheet, encoding, header_row)
    except OSError as exc:  # a name too long, a file no one may read, a disk that failed
        reason = exc.strerror or type(exc).__name__
        raise InputFileError(f"{shown_name(path)}: cannot be read ({reason}).") from None
    except InputFileError as exc:
        # A download is named by its URL (secrets hidden), never by its private copy.
        shown = shown_name(path)
        if shown == str(path):
            raise
        raise InputFileError(str(exc).replace(str(path), shown)) from None


def _load_table(
    path: Path, sheet: str | None, encoding: str | None, header_row: int | None
) -> Table:
    """`load_table`, its OSErrors left to it to say."""
    if not path.exists():
        raise InputFileError(f"{path}: no such file. Check the path and the working directory.")
    if path.is_dir():
        raise InputFileError(f"{path}: is a folder, not a spreadsheet file.")
    if path.stat().st_size == 0:
        raise InputFileError(f"{path}: the file is empty; export the sheet again.")
    excel = path.suffix.lower() in EXCEL_SUFFIXES
    if excel and encoding is not None:
        raise InputFileError(f"{path}: --encoding applies to CSV files only, not workbooks.")
    if not excel and sheet is not None:
        raise InputFileError(f"{path}: --sheet applies to Excel workbooks only, not CSV files.")
    if excel:
        check_unzipped(path)
    try:
        table = (
            _load_excel(path, sheet, header_row) if excel else _load_csv(path, encoding, header_row)
        )
    except MemoryError:
        raise InputFileError(out_of_memory(path)) from None
    except BaseException as exc:
        # calamine (Rust) reports a failure it did not foresee as a panic, which is no
        # Exception: a workbook it cannot read, said as one.
        if type(exc).__name__ != "PanicException":
            raise
        raise InputFileError(
            f"{path}: cannot be read as an Excel workbook (the reader failed: {exc}). The file "
            "may be damaged: open it in Excel and save it again as .xlsx."
        ) from None
    check_columns(table.where(), len(table.frame.columns))
    return table
