"""Excel's own limits, kept in every workbook the tool writes: a cell holds at most 32,767
characters (counted as Excel does, in UTF-16 units: an emoji is 2), a sheet 1,048,576 rows
and 16,384 columns. Excel refuses to open a workbook beyond them ("We found a problem with
some content"), so a longer cell (a header's included) is cut, ending in a note that says so,
and its whole value is kept in a CSV file beside the workbook."""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..core.outcome import RowIssue
from .table import Table

__all__ = [
    "EXCEL_MAX_CELL",
    "EXCEL_MAX_COLUMNS",
    "EXCEL_MAX_ROWS",
    "LongCells",
    "fit_cells",
    "long_cells_path",
]

log = logging.getLogger(__name__)

EXCEL_MAX_CELL = 32_767
EXCEL_MAX_ROWS = 1_048_576
EXCEL_MAX_COLUMNS = 16_384


class _Step(Protocol):
    """A plan step's results, as the plan's workbook writes them (`plan_results.StepResult`)."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def name(self) -> str: ...
    @property
    def outcome(self) -> pd.DataFrame: ...
    @property
    def table(self) -> Table: ...
    @property
    def issues(self) -> tuple[RowIssue, ...]: ...


_S = TypeVar("_S", bound=_Step)


def long_cells_path(workbook: Path) -> Path:
    """`<workbook>-long-cells.csv` beside the workbook: the whole values of its cut cells."""
    return workbook.with_name(f"{workbook.stem}-long-cells.csv")


def _units(text: str) -> int:
    """`text`'s length as Excel counts it: UTF-16 code units (a character beyond U+FFFF,
    such as an emoji, is 2)."""
    return len(text.encode("utf-16-le")) // 2


def _too_long(text: str) -> bool:
    """Whether `text` is longer than a cell holds (encoded only when it may be)."""
    if len(text) > EXCEL_MAX_CELL:
        return True
    return 2 * len(text) > EXCEL_MAX_CELL and _units(text) > EXCEL_MAX_CELL


def _note(value: str, side: Path) -> str:
    units = _units(value)
    counted = "" if units == len(value) else f" ({units:,} as Excel counts them)"
    return (
        f" … [cut: {len(value):,} characters{counted}, over Excel's {EXCEL_MAX_CELL:,}; "
        f"whole in {side.name}]"
    )


def _cut(value: str, side: Path) -> str:
    """`value` cut to fit a cell, ending in the note that says where it is whole."""
    note = _note(value, side)
    kept = value.encode("utf-16-le")[: 2 * (EXCEL_MAX_CELL - _units(note))]
    if kept and 0xD800 <= int.from_bytes(kept[-2:], "little") <= 0xDBFF:
        kept = kept[:-2]  # half of a surrogate pair: the character goes whole or not at all
    return kept.decode("utf-16-le") + note


def _long_positions(column: pd.Series) -> list[int]:
    """Positions of the texts in `column` longer than a cell holds (a few C passes; only the
    texts of more UTF-8 bytes than a cell's units, which is never fewer, are counted one by
    one)."""
    data = column.array
    if isinstance(data, pd.arrays.ArrowStringArray):
        values = data.__arrow_array__()
    else:
        try:
            values = pa.array(
                column.to_numpy(dtype=object), type=pa.large_string(), from_pandas=True
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # not text: numbers, dates
            return [p for p, v in enumerate(column.tolist()) if isinstance(v, str) and _too_long(v)]
    over = pc.fill_null(pc.greater(pc.binary_length(values), EXCEL_MAX_CELL), False)
    maybe = [int(p) for p in np.flatnonzero(over.to_numpy(zero_copy_only=False))]
    texts = column.iloc[maybe].tolist() if maybe else []
    return [p for p, v in zip(maybe, texts, strict=True) if _too_long(str(v))]


class LongCells:
    """The cells of one workbook cut to fit (`fit_frame`, `fit_issues`), and their whole values
    written beside it (`write`, when any was cut)."""

    def __init__(self, workbook: Path) -> None:
        self.side = long_cells_path(workbook)
        self.kept: list[tuple[str, str, str, str]] = []
        """(sheet, sheet row, column, whole value) of each cut cell."""

    def fit_frame(self, frame: pd.DataFrame, sheet: str, header_row: int = 1) -> pd.DataFrame:
        """`frame` (indexed by sheet row, its header on `header_row`) with every text too long
        for a cell cut, its column names too; the same frame when none is (no copy made)."""
        fitted = self._fit_header(frame, sheet, header_row)
        for j, name in enumerate(fitted.columns):
            positions = _long_positions(frame.iloc[:, j])
            if not positions:
                continue
            if fitted is frame:
                fitted = frame.copy(deep=False)  # the columns cut are replaced, not the rest
            column = frame.iloc[:, j].copy()
            rows = frame.index[positions].tolist()
            wholes = column.iloc[positions].tolist()
            self.kept += [(sheet, str(r), str(name), v) for r, v in zip(rows, wholes, strict=True)]
            column.iloc[positions] = [_cut(v, self.side) for v in wholes]
            fitted.isetitem(j, column.array)
        return fitted

    def _fit_header(self, frame: pd.DataFrame, sheet: str, header_row: int) -> pd.DataFrame:
        """`frame` with each column name too long for a cell cut (its whole name kept, on the
        header row); the same frame when none is."""
        names = [str(c) for c in frame.columns]
        long = [n for n in names if _too_long(n)]
        if not long:
            return frame
        self.kept += [(sheet, str(header_row), self.fit_text(n), n) for n in long]
        fitted = frame.copy(deep=False)
        fitted.columns = pd.Index([self.fit_text(n) for n in names], dtype=object)
        return fitted

    def fit_text(self, text: str) -> str:
        """`text` cut to fit a cell when it is too long for one (its whole value is not kept:
        it is a copy of one that is)."""
        return _cut(text, self.side) if _too_long(text) else text

    def fit_issues(self, issues: Sequence[RowIssue]) -> list[RowIssue]:
        """The issues with a text too long for a cell cut (the value and the column are the
        cell's and the header's, which `fit_frame` keeps whole where the sheet is written)."""
        fitted = []
        for issue in issues:
            texts = (issue.column, issue.value, issue.message, issue.hint)
            if any(_too_long(t) for t in texts):
                column, value, message, hint = (self.fit_text(t) for t in texts)
                issue = replace(issue, column=column, value=value, message=message, hint=hint)
            fitted.append(issue)
        return fitted

    def fit_step(self, step: _S) -> _S:
        """A plan step's results with their cells fitted (its outcome, sheet and issues)."""
        table = replace(step.table, frame=self.fit_frame(step.table.frame, step.name))
        return replace(
            step,
            outcome=self.fit_frame(step.outcome, step.name),
            table=table,
            issues=tuple(self.fit_issues(step.issues)),
        )

    def write(self) -> Path | None:
        """Write the whole values of the cut cells beside the workbook (sheet, row, column,
        value), readable by its owner alone; None when no cell was cut."""
        if not self.kept:
            return None
        tmp = self.side.with_name(f".{self.side.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["sheet", "row", "column", "value"])
            writer.writerows(self.kept)
        os.replace(tmp, self.side)
        log.warning(
            "%d cells were longer than an Excel cell holds (%s characters): cut in the "
            "workbook, each ending in a note; their whole values are in %s",
            len(self.kept),
            f"{EXCEL_MAX_CELL:,}",
            self.side,
        )
        return self.side


def fit_cells(
    workbook: Path,
    frames: Sequence[tuple[str, pd.DataFrame]],
    issues: Sequence[RowIssue],
    header_row: int = 1,
) -> tuple[list[pd.DataFrame], list[RowIssue]]:
    """`frames` (each a sheet's name and its cells by sheet row, its header on `header_row`)
    and `issues` fitted to Excel's cells, the whole values of the cells cut written beside
    `workbook`."""
    long = LongCells(workbook)
    fitted = [long.fit_frame(frame, sheet, header_row) for sheet, frame in frames]
    fitted_issues = long.fit_issues(issues)
    long.write()
    return fitted, fitted_issues
