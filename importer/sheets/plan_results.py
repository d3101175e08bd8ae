"""A plan's one results workbook: Summary (a line per step), a Results sheet per step (the
same columns as a single run's), and one Issues sheet whose cells name their sheets; and its
retry workbook, a sheet per input sheet holding the bad rows of the steps that read it, under
that sheet's name (numbered when another file's sheet has it)."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from openpyxl import Workbook

from ..core.errors import ConfigError
from ..core.outcome import RowIssue, RowStatus
from ._sheetxml import StreamedSheet
from .excel_limits import EXCEL_MAX_ROWS, LongCells
from .inputs import shown_name
from .results import save_streamed
from .results_sheet import _column_widths, add_results_sheet, result_columns
from .retry import RETRY_STATUSES, add_rows_sheet, write_retry_file
from .summary import RunSummary
from .table import Table
from .workbook import STATUS_COLOURS, _atomic, _Sheet

__all__ = ["StepResult", "write_plan_results", "write_plan_retry"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class StepResult:
    """What one step of a plan did, for the plan's workbook."""

    name: str
    """The step's sheet (or file) name: `Order lines`."""
    summary: RunSummary
    outcome: pd.DataFrame
    table: Table
    issues: tuple[RowIssue, ...]


_NOT_IN_SHEET_NAMES = re.compile(r"[\[\]:*?/\\]")


def _sheet_names(steps: Sequence[StepResult]) -> list[str]:
    """`Results <step>`, unique and within Excel's 31 characters."""
    names: list[str] = []
    for step in steps:
        base = _NOT_IN_SHEET_NAMES.sub(" ", f"Results {step.name}")[:31]
        name, n = base, 2
        while name.lower() in {x.lower() for x in names}:
            name = f"{base[: 31 - len(str(n)) - 1]} {n}"
            n += 1
        names.append(name)
    return names


def _cell(step: StepResult, issue: RowIssue) -> str:
    """The issue's cell with its sheet: `'Order lines'!C7` (a CSV's named by its step)."""
    if "!" in issue.cell:
        return issue.cell
    sheet = step.name if step.name.replace("_", "").isalnum() else f"'{step.name}'"
    return f"{sheet}!{issue.cell}"


def write_plan_results(
    path: Path,
    *,
    plan_file: Path,
    started: dt.datetime,
    finished: dt.datetime | None,
    steps: Sequence[StepResult],
    stopped_by: str | None = None,
    plan_run_id: str | None = None,
    before_steps: tuple[int, int] | None = None,
) -> Path:
    """Write the plan's workbook to `path` (atomically)."""
    for step in steps:
        if len(step.outcome) > EXCEL_MAX_ROWS - 1:
            raise ConfigError(
                f"step {step.name} has {len(step.outcome):,} rows, more than one Excel sheet "
                "holds: import that sheet on its own (`run --mapping`), which continues on "
                "Results (2)"
            )
    long = LongCells(path)  # cells too long for Excel: cut, whole beside the workbook
    steps = [long.fit_step(step) for step in steps]
    long.write()
    wb = Workbook(write_only=True)
    names = _sheet_names(steps)
    _summary(_Sheet(wb.create_sheet("Summary")), plan_file, started, finished, steps, names,
             stopped_by, plan_run_id, before_steps)  # fmt: skip
    # Issues of every step, in step order; each row's first issue is linked from its message.
    first_issue: list[dict[int, int]] = []
    line = 2
    for step in steps:
        firsts: dict[int, int] = {}
        for issue in step.issues:
            firsts.setdefault(issue.row, line)
            line += 1
        first_issue.append(firsts)
    streamed: dict[str, Callable[[bytes], StreamedSheet]] = {}
    for step, name, firsts in zip(steps, names, first_issue, strict=True):
        source = step.table.frame
        header = [*result_columns(step.outcome), *[str(c) for c in source.columns]]
        streamed[name] = add_results_sheet(
            wb,
            name,
            header=header,
            widths=_column_widths(header, step.outcome, source),
            outcome=step.outcome,
            source=source,
            record_link=step.summary.record_link,
            first_issue=firsts,
        )
    _issues(_Sheet(wb.create_sheet("Issues")), steps, names)
    return save_streamed(wb, path, streamed)


def _summary(
    ws: _Sheet,
    plan_file: Path,
    started: dt.datetime,
    finished: dt.datetime | None,
    steps: Sequence[StepResult],
    names: list[str],
    stopped_by: str | None,
    plan_run_id: str | None,
    before_steps: tuple[int, int] | None,
) -> None:
    """The plan's facts, then a line per step (its rows by status, a link to its Results)."""
    ws.widths([14, 12, 12, 12, 8, *[13] * len(RowStatus), 10, 22])
    ws.printable()
    ws.ws.append([ws.cell(f"hubspot-import plan {plan_file.name}", bold=True)])
    ws.append([])
    facts = _plan_facts(plan_file, plan_run_id, steps, started, finished, stopped_by)
    facts += _plan_requests(before_steps)
    for name, value in facts:
        ws.ws.append([ws.cell(name, bold=True), ws.cell(value, align="left")])
    ws.append([])
    _step_lines(ws, steps, names)


def _plan_facts(
    plan_file: Path,
    plan_run_id: str | None,
    steps: Sequence[StepResult],
    started: dt.datetime,
    finished: dt.datetime | None,
    stopped_by: str | None,
) -> list[tuple[str, Any]]:
    """The Summary's (label, value) lines: the plan, where it ran, when and how it ended."""
    first = steps[0].summary if steps else None
    return [
        ("Plan", str(plan_file)),
        ("Plan run", plan_run_id or "none (nothing was sent)"),
        ("HubSpot", first.base_url if first else ""),
        ("API version", first.api_version if first else ""),
        ("Portal", (first.portal if first else None) or "unknown"),
        ("Started", started.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")),
        (
            "Finished",
            finished.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
            if finished
            else "did not finish",
        ),
        ("Duration (s)", round((finished - started).total_seconds(), 1) if finished else ""),
        ("Stopped early", stopped_by or "no"),
    ]


def _plan_requests(before_steps: tuple[int, int] | None) -> list[tuple[str, Any]]:
    """The Summary's line on the requests sent before the first step, when they were counted."""
    if before_steps is None:
        return []
    lookups, reads = before_steps
    return [
        ("Plan requests", f"before the first step: {lookups} lookup"
                          f"{'s' if lookups != 1 else ''} (keys no step's rows hold), "
                          f"{reads} portal read{'s' if reads != 1 else ''}")
    ]  # fmt: skip


def _input_shown(path: Path) -> str:
    """A step's input in the plan's sheet: a local file by its name, a download by its URL
    (secrets hidden), never by its private copy's name."""
    shown = shown_name(path)
    return path.name if shown == str(path) else shown


def _step_lines(ws: _Sheet, steps: Sequence[StepResult], names: list[str]) -> None:
    """A line per step: what it read, its rows by status, its requests and its Results sheet;
    then the totals of all steps."""
    header = [
        "Step", "Object type", "Input", "Sheet", "Mode",
        *[s.value for s in RowStatus], "Requests", "Results",
    ]  # fmt: skip
    ws.append(header, bold=True)
    totals = dict.fromkeys([s.value for s in RowStatus], 0)
    for step, sheet in zip(steps, names, strict=True):
        s = step.summary
        for status in totals:
            totals[status] += s.counts.get(status, 0)
        ws.ws.append(
            [
                ws.cell(step.name),
                ws.cell(s.object_type),
                ws.cell(_input_shown(Path(s.input_file))),
                ws.cell(s.sheet or "(CSV)"),
                ws.cell(s.mode),
                *[
                    ws.cell(s.counts.get(st.value, 0), fill=STATUS_COLOURS.get(st.value)
                            if s.counts.get(st.value, 0) else None, align="left")
                    for st in RowStatus
                ],
                ws.cell(s.requests, align="left"),
                ws.cell(sheet, link=f"#'{sheet}'!A1"),
            ]
        )  # fmt: skip
    ws.ws.append(
        [ws.cell("All steps", bold=True), "", "", "", "",
         *[ws.cell(n, bold=True, align="left") for n in totals.values()],
         ws.cell(sum(step.summary.requests for step in steps), bold=True, align="left")]
    )  # fmt: skip


def _issues(ws: _Sheet, steps: Sequence[StepResult], names: list[str]) -> None:
    ws.ws.freeze_panes = "A2"
    ws.widths([22, 11, 18, 24, 16, 50, 50])
    ws.printable(repeat_header=True)
    ws.append(["cell", "source_row", "column", "value", "problem", "message", "hint"], bold=True)
    count = 0
    for step, sheet in zip(steps, names, strict=True):
        position = {row: p for p, row in enumerate(step.outcome.index.tolist())}
        for issue in step.issues:
            count += 1
            p = position.get(issue.row)
            back: Any = (
                ws.cell(issue.row, link=f"#'{sheet}'!A{p + 2}") if p is not None else issue.row
            )
            ws.ws.append(
                [
                    ws.cell(_cell(step, issue)),
                    back,
                    ws.cell(issue.column),
                    ws.cell(issue.value),
                    issue.problem.value,
                    ws.cell(issue.message),
                    ws.cell(issue.hint),
                ]
            )
    ws.ws.auto_filter.ref = f"A1:G{count + 1}"


def write_plan_retry(path: Path, steps: Sequence[StepResult]) -> tuple[Path, ...]:
    """The bad rows of every step (invalid, failed, incomplete), in each input's format.

    Steps that read a workbook's sheet share one retry workbook at `path`: a sheet per input
    sheet, named as it, holding its bad rows (two steps of one sheet of one file: the rows bad
    in either), or its header alone when none is bad, so that the fixed workbook stands in for
    the plan's `input` as it is. Sheets of the same name in different files get sheets of
    their own, the later ones numbered (`Sheet1 (2)`), each named in a warning with the
    `sheet:` its step takes to read it. A step that reads a CSV gets a CSV of its own beside
    it (`<path stem>-<step>.csv`, in the input's delimiter and encoding). Returns the files
    written: none when no row is bad."""
    written: list[Path] = []
    for step in steps:
        if step.table.sheet is None:
            name = re.sub(r"[^A-Za-z0-9_-]+", "_", step.name).strip("_") or "step"
            csv_path = write_retry_file(
                path.with_name(f"{path.stem}-{name}.csv"), step.table, step.outcome
            )
            if csv_path is not None:
                written.append(csv_path)
    sheets = _retry_sheets(steps)
    if any(sheet.rows for sheet in sheets):
        wb = Workbook(write_only=True)
        long = LongCells(path)
        for sheet in sheets:
            table = sheet.table
            add_rows_sheet(
                wb,
                sheet.title,
                long.fit_frame(table.frame.loc[sorted(sheet.rows)], sheet.title, table.header_row),
                table,
            )
        with _atomic(path) as tmp:
            wb.save(tmp)
        long.write()
        _say_renamed(path, sheets)
        written.insert(0, path)
    return tuple(written)


@dataclass(kw_only=True)
class _RetrySheet:
    """One sheet of the retry workbook: an input sheet, the steps that read it, its bad rows."""

    title: str
    table: Table
    steps: list[str]
    rows: set[int]


def _retry_sheets(steps: Sequence[StepResult]) -> list[_RetrySheet]:
    """A retry sheet per input sheet that steps read (the same sheet of the same file: one),
    in step order, each titled as its input sheet; a title another file's sheet took first
    is numbered, within Excel's 31 characters and unique whatever the case."""
    sheets: dict[tuple[Path, str], _RetrySheet] = {}
    for step in steps:
        if step.table.sheet is None:
            continue
        title = _NOT_IN_SHEET_NAMES.sub(" ", step.table.sheet)[:31]
        sheet = sheets.setdefault(
            (step.table.source.resolve(), step.table.sheet.lower()),
            _RetrySheet(title=title, table=step.table, steps=[], rows=set()),
        )
        sheet.steps.append(step.name)
        wanted = step.outcome.index[step.outcome["status"].isin(RETRY_STATUSES)]
        sheet.rows.update(wanted.tolist())
    taken: set[str] = set()
    later: list[_RetrySheet] = []
    for sheet in sheets.values():  # every first sheet of a name keeps it: no number takes it
        if sheet.title.lower() in taken:
            later.append(sheet)
        taken.add(sheet.title.lower())
    for sheet in later:
        base, n = sheet.title, 2
        while sheet.title.lower() in taken:
            suffix = f" ({n})"
            sheet.title = f"{base[: 31 - len(suffix)].rstrip()}{suffix}"
            n += 1
        taken.add(sheet.title.lower())
    return list(sheets.values())


def _say_renamed(path: Path, sheets: Sequence[_RetrySheet]) -> None:
    """Warn of each sheet not named as its input sheet: which steps read it, and how."""
    for sheet in sheets:
        if sheet.table.sheet is not None and sheet.title != sheet.table.sheet:
            log.warning(
                "the retry rows of %s (step %s) are on sheet %r of %s: to run them again, "
                "give that step `input:` the fixed workbook and `sheet: %s`",
                f"{_input_shown(sheet.table.source)}, sheet {sheet.table.sheet}",
                ", ".join(sheet.steps),
                sheet.title,
                path,
                sheet.title,
            )
