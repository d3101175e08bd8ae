"""Results stage: the workbook that accounts for every input row, and the retry file.

Streamed with openpyxl's write-only mode, written to a temporary file and renamed, so a crash
never leaves half a workbook. Every input value is a text cell: nothing is ever a formula.
The workbook's sheets are built by `summary` (Summary), `results_sheet` (Results) and here
(Issues); the retry file by `retry`.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from openpyxl import Workbook

from ..core.outcome import RowIssue
from ._sheetxml import StreamedSheet, splice
from .excel_limits import EXCEL_MAX_ROWS, fit_cells
from .results_missing import add_missing_sheet
from .results_sheet import (
    RESULT_COLUMNS,
    _column_widths,
    _record_links_note,
    add_results_sheet,
    result_columns,
)
from .retry import write_retry_file
from .summary import RunSummary, _summary_sheet
from .workbook import _atomic, _Sheet

__all__ = [
    "RESULT_COLUMNS",
    "RunSummary",
    "default_results_path",
    "record_url",
    "retry_path",
    "write_results",
    "write_retry_file",
]


def _stamp(started: dt.datetime) -> str:
    return started.astimezone().strftime("%Y%m%d-%H%M%S")


def default_results_path(input_file: Path, started: dt.datetime) -> Path:
    """`<input>-results-<timestamp>.xlsx` beside the input."""
    return input_file.with_name(f"{input_file.stem}-results-{_stamp(started)}.xlsx")


def retry_path(input_file: Path, started: dt.datetime) -> Path:
    """`<input>-retry-<timestamp>.csv|.xlsx` beside the input, in the input's format."""
    suffix = (
        ".csv"
        if input_file.suffix.lower() not in {".xlsx", ".xlsm", ".xlsb", ".xls", ".ods"}
        else ".xlsx"
    )
    return input_file.with_name(f"{input_file.stem}-retry-{_stamp(started)}{suffix}")


def record_url(ui_domain: str, portal_id: int, object_type_id: str) -> str:
    return f"https://{ui_domain}/contacts/{portal_id}/record/{object_type_id}/"


def write_results(
    path: Path,
    summary: RunSummary,
    outcome: pd.DataFrame,
    source: pd.DataFrame,
    issues: Sequence[RowIssue],
) -> Path:
    """Write Summary, Results (one row per input row), Issues and (when the mapping's
    `missing_rows:` is not keep) Missing; atomically replace `path`.

    `outcome` has columns status, hubspot_id, message (and held_back) indexed by sheet row;
    `source` the input's own columns with the same index. openpyxl writes the workbook with
    each Results sheet's settings and one row of its styled cells; the rows themselves are
    streamed in by `_sheetxml`, which is ~40x faster for a large sheet.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    (outcome, source), issues = fit_cells(path, [("Results", outcome), ("Results", source)], issues)
    wb = Workbook(write_only=True)
    per_sheet = EXCEL_MAX_ROWS - 1
    sheet_names = _results_sheet_names(len(outcome), per_sheet)
    links = _record_links_note(
        outcome,
        record_link=summary.record_link,
        per_sheet=per_sheet,
        sheets=len(sheet_names),
        issues=len(issues),
    )
    _summary_sheet(_Sheet(wb.create_sheet("Summary")), summary, sheet_names, links)
    first_issue = _first_issues(issues)
    header = [*result_columns(outcome), *[str(c) for c in source.columns]]
    widths = _column_widths(header, outcome, source)
    streamed: dict[str, Callable[[bytes], StreamedSheet]] = {}
    for n, name in enumerate(sheet_names):
        chunk = slice(n * per_sheet, (n + 1) * per_sheet)
        streamed[name] = add_results_sheet(
            wb,
            name,
            header=header,
            widths=widths,
            outcome=outcome.iloc[chunk],
            source=source.iloc[chunk],
            record_link=summary.record_link,
            first_issue=first_issue,
        )
    position = _positions(outcome, issues)
    _issues_sheet(_Sheet(wb.create_sheet("Issues")), issues, position, sheet_names, per_sheet)
    if summary.missing is not None:
        add_missing_sheet(wb, summary.missing, summary.record_link)
    return save_streamed(wb, path, streamed)


def _results_sheet_names(rows: int, per_sheet: int) -> list[str]:
    """`Results`, `Results (2)`, ...: a sheet for every `per_sheet` of the `rows`, at least one."""
    return [
        "Results" if n == 0 else f"Results ({n + 1})" for n in range(max(1, -(-rows // per_sheet)))
    ]


def _first_issues(issues: Sequence[RowIssue]) -> dict[int, int]:
    """Sheet row -> the Issues sheet's row of the row's first issue (its message links there)."""
    first_issue: dict[int, int] = {}
    for n, issue in enumerate(issues):
        first_issue.setdefault(issue.row, n + 2)
    return first_issue


def save_streamed(
    wb: Workbook, path: Path, streamed: dict[str, Callable[[bytes], StreamedSheet]]
) -> Path:
    """Save `wb` to `path` (atomically), its `streamed` sheets' rows spliced in."""
    template = io.BytesIO()
    wb.save(template)
    with _atomic(path) as tmp:
        splice(template.getvalue(), tmp, streamed)
    return path


def _positions(outcome: pd.DataFrame, issues: Sequence[RowIssue]) -> dict[int, int]:
    """Sheet row of an issue -> its place among the Results rows (rows not there are left out)."""
    issue_rows = sorted({i.row for i in issues})
    found = outcome.index.get_indexer(pd.Index(issue_rows, dtype="int64")).tolist()
    return {row: p for row, p in zip(issue_rows, found, strict=True) if p >= 0}


def _issues_sheet(
    ws: _Sheet,
    issues: Sequence[RowIssue],
    position: dict[int, int],
    result_sheets: list[str],
    per_sheet: int,
) -> None:
    """Every issue, a line each, its source_row linked back to the row's place in Results."""
    ws.ws.freeze_panes = "A2"
    header = ["cell", "source_row", "column", "value", "problem", "message", "hint"]
    ws.widths([16, 11, 18, 24, 16, 50, 50])
    ws.printable(repeat_header=True)
    ws.append(header, bold=True)
    for issue in issues:
        p = position.get(issue.row)
        back: Any = issue.row
        if p is not None:
            sheet = result_sheets[p // per_sheet]
            back = ws.cell(issue.row, link=f"#'{sheet}'!A{p % per_sheet + 2}")
        ws.ws.append(
            [
                ws.cell(issue.cell),
                back,
                ws.cell(issue.column),
                ws.cell(issue.value),
                issue.problem.value,
                ws.cell(issue.message),
                ws.cell(issue.hint),
            ]
        )
    ws.ws.auto_filter.ref = f"A1:G{len(issues) + 1}"
