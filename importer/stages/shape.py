"""Shape stage: grouped rows filled down (`fill_down:`) and rows that are no record skipped
(`skip_rows_without:`, `skip_rows_where:`, and rows with every mapped cell empty)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..core.outcome import RowIssue, RowResult, RowStatus
from ..core.text import Distinct, arrow, blank, flags, text_series, trimmed, whole
from ..mapping.model import Mapping, fold
from ..sheets.table import Table

__all__ = ["EMPTY_ROW", "Shaped", "shape"]

log = logging.getLogger(__name__)

EMPTY_ROW = "skipped: empty (no mapped cell holds a value)"
WHERE = "skip_rows_where"
WITHOUT = "skip_rows_without"


@dataclass(frozen=True, kw_only=True)
class Shaped:
    """The sheet as the later stages read it."""

    table: Table
    """Every row, fill_down's cells filled: what the journal, the workbook and the retry file
    show (a retried row carries its group's values itself)."""
    kept: Table
    """The rows to validate and send: `table` without the skipped ones."""
    skipped: dict[int, RowResult]
    """Sheet row -> its `skipped` result, for the rows that are no record."""
    carried: dict[str, pd.Series]
    """fill_down column -> the sheet row of each cell it filled -> the row the value is from."""

    def with_carried(self, issues: tuple[RowIssue, ...]) -> tuple[RowIssue, ...]:
        """`issues`, those of a filled cell saying the row its value was carried down from."""
        if not self.carried:
            return issues
        said = []
        for issue in issues:
            rows = self.carried.get(issue.column)
            source = rows.get(issue.row) if rows is not None else None
            if source is not None:
                message = f"{issue.message} (carried down from row {source} by fill_down)"
                issue = replace(issue, message=message)
            said.append(issue)
        return tuple(said)


def shape(table: Table, mapping: Mapping, *, quiet: bool = False) -> Shaped:
    """The sheet with its groups' values carried down their rows, and the rows to skip: those
    with a `skip_rows_where:` value, those with an empty `skip_rows_without:` cell, and those
    whose mapped cells are all empty. `quiet`: the counts are not logged (a plan's look ahead;
    its step logs them)."""
    filled, carried = fill_down(table, mapping)
    skipped = skipped_rows(filled, mapping)
    if carried and not quiet:
        log.info("fill_down carried %d cells down their groups", sum(map(len, carried.values())))
    if skipped and not quiet:
        said = [r.message or "" for r in skipped.values()]
        log.info(
            "%d rows skipped: %d by skip_rows_where, %d by skip_rows_without, %d with every "
            "mapped cell empty",
            len(skipped),
            sum(1 for m in said if m.endswith(f"({WHERE})")),
            sum(1 for m in said if m.endswith(f"({WITHOUT})")),
            said.count(EMPTY_ROW),
        )
    kept = filled
    if skipped:
        keep = ~filled.frame.index.isin(list(skipped))
        kept = replace(
            filled,
            frame=filled.frame[keep],
            unreadable={k: v for k, v in filled.unreadable.items() if k[0] not in skipped},
        )
    return Shaped(table=filled, kept=kept, skipped=skipped, carried=carried)


def fill_down(table: Table, mapping: Mapping) -> tuple[Table, dict[str, pd.Series]]:
    """`table` with each fill_down column's empty cells given the value of their group's first
    row, and, per column, the rows filled -> the row each value came from."""
    frame = table.frame
    if not mapping.fill_down or frame.empty:
        return table, {}
    first = group_firsts(frame, mapping)
    frame = frame.copy(deep=False)  # the columns filled are replaced, not written into
    carried: dict[str, pd.Series] = {}
    for column in mapping.fill_down:
        cells = whole(arrow(frame[column]))
        source = cells.take(pa.array(first))
        into = _empty(frame, table, column) & (first != np.arange(len(frame))) & ~blank(source)
        if not into.any():
            continue
        frame[column] = text_series(pc.if_else(pa.array(into), source, cells), frame.index)
        carried[column] = pd.Series(frame.index[first[into]], index=frame.index[into])
    return replace(table, frame=frame), carried


def group_firsts(frame: pd.DataFrame, mapping: Mapping) -> np.ndarray:
    """Each row's group's first row, by position: a group is a run of equal `group_by` cells
    (an empty one is a group of its own), or without `group_by` it starts at each row whose
    first fill_down cell is filled (a row before the first such row is in none: itself)."""
    positions = np.arange(len(frame))
    if mapping.group_by is not None:
        cells = whole(trimmed(whole(arrow(frame[mapping.group_by]))))
        starts = np.ones(len(frame), dtype=bool)
        starts[1:] = flags(pc.not_equal(cells.slice(1), cells.slice(0, len(frame) - 1)))
        starts |= flags(pc.equal(cells, ""))
    else:
        starts = ~blank(arrow(frame[mapping.fill_down[0]]))
    firsts = np.maximum.accumulate(np.where(starts, positions, -1))
    return np.where(firsts < 0, positions, firsts)


def skipped_rows(table: Table, mapping: Mapping) -> dict[int, RowResult]:
    """Sheet row -> `skipped` result of each row with a `skip_rows_where:` value (said first:
    it tells what the row is), with an empty `skip_rows_without:` cell, or with every mapped
    cell empty. A row with more cells than the header is never skipped: its cells may have
    shifted, and the validate stage says so."""
    frame = table.frame
    held = ~frame.index.isin(list(table.extra_cells))
    said = np.full(len(frame), EMPTY_ROW, dtype=object)
    chosen = np.zeros(len(frame), dtype=bool)
    for found in (
        _marked(table, mapping.skip_rows_where, held),
        _missing(table, mapping.skip_rows_without, held),
    ):
        if found is not None:
            rows, messages = found
            said[rows & ~chosen] = messages[rows & ~chosen]
            chosen |= rows
    # Without a mapped column (constants alone) no row is empty.
    empty = held & ~chosen & bool(mapping.source_columns)
    for column in mapping.source_columns:
        if not empty.any():
            break
        empty &= _empty(frame, table, column)
    picked = np.flatnonzero(chosen | empty)
    return {
        row: RowResult(row=row, status=RowStatus.SKIPPED, message=message)
        for row, message in zip(frame.index[picked].tolist(), said[picked].tolist(), strict=True)
    }


def _marked(
    table: Table, where: tuple[tuple[str, tuple[str, ...]], ...], held: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """The rows (among `held`) whose cell in a `where` column is one of its values (trimmed,
    without regard to case), and per row its message naming the first such column and the
    cell (made once per distinct cell); None when none."""
    if not where:
        return None
    rows = np.zeros(len(table.frame), dtype=bool)
    messages = np.full(len(table.frame), None, dtype=object)
    for column, values in where:
        wanted = {fold(v) for v in values}
        cells = Distinct.of(trimmed(whole(arrow(table.frame[column]))))
        codes = cells.codes.to_numpy()
        said = np.array(
            [
                f"skipped: {column} is {v} ({WHERE})" if fold(v) in wanted else ""
                for v in cells.values
            ],
            dtype=object,
        )
        hit = (said[codes] != "") & held & ~rows
        messages[hit] = said[codes[hit]]
        rows |= hit
    return (rows, messages) if rows.any() else None


def _missing(
    table: Table, columns: tuple[str, ...], held: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """The rows (among `held`) with an empty cell in any of `columns`, and per row its message
    naming those columns (made once per combination of empty columns); None when none."""
    if not columns:
        return None
    empty = np.column_stack([_empty(table.frame, table, c) for c in columns]) & held[:, None]
    rows = empty.any(axis=1)
    if not rows.any():
        return None
    combinations, which = np.unique(empty[rows], axis=0, return_inverse=True)
    said = np.array(
        [
            f"skipped: no {', '.join(c for c, e in zip(columns, combo, strict=True) if e)} "
            f"({WITHOUT})"
            for combo in combinations.tolist()
        ],
        dtype=object,
    )
    messages = np.full(len(rows), None, dtype=object)
    messages[rows] = said[which.ravel()]
    return rows, messages


def _empty(frame: pd.DataFrame, table: Table, column: str) -> np.ndarray:
    """Which cells of `column` are empty (or whitespace): a cell holding an Excel error or a
    formula without a saved value reads as empty, but is not."""
    empty = blank(arrow(frame[column]))
    unreadable = [row for row, name in table.unreadable if name == column]
    if unreadable:
        empty &= ~frame.index.isin(unreadable)
    return empty
