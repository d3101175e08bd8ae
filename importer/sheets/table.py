"""The loaded sheet (`Table`) and what CSV and Excel reading share: column letters, header
names, blank rows."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.errors import EmptySheetError
from ..core.text import TEXT, arrow, blank

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
    header_note: str | None = None
    """Said when titles or notes above the header were skipped (which row was taken, and
    what was skipped), for the run to report; None when the header was the first row with a
    value, or the row asked for."""
    duplicate_headers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Headers that appear more than once -> their cells ("A1", "F1")."""
    delimiter: str = ","
    """For CSV: the delimiter found, so a retry file can be written the same way."""
    encoding: str = "utf-8-sig"
    bom: bool = True
    """For CSV: the file starts with a UTF-8 byte order mark."""
    line_end: str = "\r\n"
    """For CSV: the line ending the file uses ("\r\n", "\n" or "\r")."""
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
    header_note: str | None = None,
) -> Table:
    """The table of a sheet's rows below its header. `letters`: each column's letter, when the
    frame does not hold every column from A."""
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
    duplicates = {
        name: tuple(f"{column_letter(j)}{header_row}" for j in cols)
        for name, cols in repeated.items()
    }
    table = Table(
        frame=frame,
        source=path,
        sheet=sheet,
        letters=letters,
        header_row=header_row,
        header_note=header_note,
        duplicate_headers=duplicates,
    )
    if frame.empty:
        raise EmptySheetError(
            f"{where}: the header row is there but no data rows follow; nothing to import.",
            table,
        )
    return table
