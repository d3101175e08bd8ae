"""Results stage: the workbook that accounts for every input row, and the retry file.

Streamed with openpyxl's write-only mode, written to a temporary file and renamed, so a crash
never leaves half a workbook. Every input value is a text cell: nothing is ever a formula.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import functools
import io
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.chart import BarChart, Reference
from openpyxl.chart.marker import DataPoint
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet.hyperlink import Hyperlink

from ..core.hubspot import DEFAULT_API_VERSION
from ..core.outcome import RowIssue, RowStatus
from ..core.text import arrow
from ._sheetxml import (
    Link,
    StreamedSheet,
    TextColumns,
    cell_styles,
    chunked,
    rows_xml,
    splice,
    text_cells,
)
from .load import Table

__all__ = [
    "RESULT_COLUMNS",
    "RunSummary",
    "default_results_path",
    "record_url",
    "retry_path",
    "write_results",
    "write_retry_file",
]

RESULT_COLUMNS = ("source_row", "status", "hubspot_id", "message")
EXCEL_MAX_ROWS = 1_048_576
STATUS_ORDER = tuple(s.value for s in RowStatus)
RETRY_STATUSES = frozenset(
    {RowStatus.INVALID.value, RowStatus.FAILED.value, RowStatus.INCOMPLETE.value}
)
WIDTH_SAMPLE = 1_000
ROWS_PER_CHUNK = 20_000
"""Rows of a Results sheet built and compressed at a time (~10 MB of XML)."""
MAX_LINKS_PER_SHEET = 65_530
"""Excel refuses more hyperlinks than this in one worksheet; openpyxl also keeps every link in
memory until the sheet is written, so beyond it ids are plain text."""

_GREEN = ("C6EFCE", "006100")
_GREY = ("EDEDED", "505050")
_RED = ("FFC7CE", "9C0006")
_AMBER = ("FFEB9C", "9C5700")
STATUS_COLOURS: dict[str, tuple[str, str]] = {
    "created": _GREEN,
    "updated": _GREEN,
    "unchanged": _GREY,
    "skipped": _GREY,
    "invalid": _RED,
    "failed": _RED,
    "uncertain": _AMBER,
    "not_sent": _AMBER,
    "incomplete": _AMBER,
    "would_create": _GREEN,
    "would_update": _GREEN,
}
_LINK_FONT = Font(color="0563C1", underline="single")


@dataclass(kw_only=True)
class RunSummary:
    """What a run did, for the Summary sheet, the CLI and schedulers."""

    run_id: str
    object_type: str
    input_file: Path
    sheet: str | None
    mapping_file: str
    base_url: str
    started: dt.datetime
    api_version: str = DEFAULT_API_VERSION
    portal: str | None = None
    """The portal id and its account type (`4242424 (SANDBOX)`), when HubSpot said."""
    mode: str = "create"
    journal: Path | None = None
    finished: dt.datetime | None = None
    counts: dict[str, int] = field(default_factory=dict)
    rows: int = 0
    requests: int = 0
    link_requests: int = 0
    """Of `requests`, those to the associations API (links added, removed or read)."""
    stopped_by: str | None = None
    workbook: Path | None = None
    retry_file: Path | None = None
    record_link: str | None = None
    """`https://app.hubspot.com/contacts/{portal}/record/{type}/` when the portal is known."""

    @property
    def duration(self) -> float:
        end = self.finished or dt.datetime.now(dt.UTC)
        return (end - self.started).total_seconds()


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


def _hyperlink(link: str) -> Hyperlink:
    """A link to a web page, or (starting with #) to a cell of this workbook."""
    if link.startswith("#"):
        return Hyperlink(ref="", location=link[1:])
    return Hyperlink(ref="", target=link)


def _text(value: Any) -> str:
    return str(ILLEGAL_CHARACTERS_RE.sub("", str(value)))


class _Sheet:
    """A write-only sheet whose string cells are always text, never formulas."""

    def __init__(self, ws: WriteOnlyWorksheet) -> None:
        self.ws = ws

    def cell(
        self,
        value: Any,
        *,
        bold: bool = False,
        fill: tuple[str, str] | None = None,
        link: str | None = None,
        wrap: bool = False,
        align: str | None = None,
    ) -> WriteOnlyCell:
        cell = WriteOnlyCell(self.ws, value=_text(value) if isinstance(value, str) else value)
        if isinstance(value, str):
            cell.data_type = "s"  # "=SUM(...)" stays text
        if fill is not None:
            cell.fill = PatternFill("solid", start_color=fill[0])
            cell.font = Font(color=fill[1], bold=bold)
        elif bold:
            cell.font = Font(bold=True)
        if link is not None:
            cell.hyperlink = _hyperlink(link)
            cell.font = _LINK_FONT
        if wrap or align:
            cell.alignment = Alignment(wrap_text=wrap, vertical="top", horizontal=align)
        return cell

    def append(self, values: Sequence[Any], *, bold: bool = False) -> None:
        row = []
        for v in values:
            if bold or (isinstance(v, str) and v.startswith("=")):
                row.append(self.cell(v, bold=bold))
            elif isinstance(v, str):
                row.append(_text(v))
            else:
                row.append(v)
        self.ws.append(row)

    def printable(self, *, repeat_header: bool = False) -> None:
        """Print landscape, one page wide (however many tall), the header on every page."""
        self.ws.page_setup.orientation = "landscape"
        self.ws.sheet_properties.pageSetUpPr.fitToPage = True
        self.ws.page_setup.fitToWidth = 1
        self.ws.page_setup.fitToHeight = 0
        if repeat_header:
            self.ws.print_title_rows = "1:1"

    def widths(self, widths: Sequence[float]) -> None:
        for j, width in enumerate(widths, start=1):
            self.ws.column_dimensions[get_column_letter(j)].width = width


def write_results(
    path: Path,
    summary: RunSummary,
    outcome: pd.DataFrame,
    source: pd.DataFrame,
    issues: Sequence[RowIssue],
) -> Path:
    """Write Summary, Results (one row per input row) and Issues; atomically replace `path`.

    `outcome` has columns status, hubspot_id, message indexed by sheet row; `source` the
    input's own columns with the same index. openpyxl writes the workbook with each Results
    sheet's settings and one row of its styled cells; the rows themselves are streamed in by
    `_sheetxml`, which is ~40x faster for a large sheet.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = Workbook(write_only=True)
    per_sheet = EXCEL_MAX_ROWS - 1
    sheet_names = [
        "Results" if n == 0 else f"Results ({n + 1})"
        for n in range(max(1, -(-len(outcome) // per_sheet)))
    ]
    links = "none (portal not known)"
    if summary.record_link:
        ids = outcome["hubspot_id"] != ""
        most = max(
            (
                int(ids.iloc[n * per_sheet : (n + 1) * per_sheet].sum())
                for n in range(len(sheet_names))
            ),
            default=0,
        )
        links = (
            "on every hubspot_id"
            if most <= MAX_LINKS_PER_SHEET - len(issues)
            else f"on the first {MAX_LINKS_PER_SHEET:,} rows of each Results sheet "
            "(Excel's limit per sheet)"
        )
    _summary_sheet(_Sheet(wb.create_sheet("Summary")), summary, sheet_names, links)
    issue_rows = sorted({i.row for i in issues})
    found = outcome.index.get_indexer(pd.Index(issue_rows, dtype="int64")).tolist()
    position = {row: p for row, p in zip(issue_rows, found, strict=True) if p >= 0}
    first_issue: dict[int, int] = {}
    for n, issue in enumerate(issues):
        first_issue.setdefault(issue.row, n + 2)
    header = [*RESULT_COLUMNS, *[str(c) for c in source.columns]]
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
    _issues_sheet(_Sheet(wb.create_sheet("Issues")), issues, position, sheet_names, per_sheet)
    return save_streamed(wb, path, streamed)


def save_streamed(
    wb: Workbook, path: Path, streamed: dict[str, Callable[[bytes], StreamedSheet]]
) -> Path:
    """Save `wb` to `path` (atomically), its `streamed` sheets' rows spliced in."""
    template = io.BytesIO()
    wb.save(template)
    with _atomic(path) as tmp:
        splice(template.getvalue(), tmp, streamed)
    return path


def add_results_sheet(
    wb: Workbook,
    name: str,
    *,
    header: list[str],
    widths: Sequence[float],
    outcome: pd.DataFrame,
    source: pd.DataFrame,
    record_link: str | None,
    first_issue: dict[int, int],
) -> Callable[[bytes], StreamedSheet]:
    """A Results sheet's settings, header and style template in `wb`; returns what streams
    its rows (`outcome` beside `source`) into the saved workbook."""
    ws = _Sheet(wb.create_sheet(name))
    ws.ws.freeze_panes = "B2"
    ws.widths(widths)
    ws.printable(repeat_header=True)
    ws.append(header, bold=True)
    # The template row: one cell of each style the streamed rows use.
    ws.ws.append(
        [
            ws.cell("issue", link=""),
            ws.cell("id", link=""),
            *[ws.cell(s, fill=c, align="center") for s, c in STATUS_COLOURS.items()],
        ]
    )
    ws.ws.auto_filter.ref = f"A1:{get_column_letter(len(header))}{len(outcome) + 1}"
    return functools.partial(
        _results_sheet,
        header=header,
        outcome=outcome,
        source=source,
        record_link=record_link,
        first_issue=first_issue,
    )


@contextlib.contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    """A temporary path beside `path`, renamed onto it only if the block completes."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _column_widths(header: list[str], outcome: pd.DataFrame, source: pd.DataFrame) -> list[float]:
    """Readable widths from the header and a sample of values, within 8..60 characters."""
    sample = pd.concat([outcome.head(WIDTH_SAMPLE), source.head(WIDTH_SAMPLE)], axis=1)
    widths = []
    for name in header:
        longest = len(name)
        if name == "source_row":
            longest = max(longest, len(str(outcome.index.max() if len(outcome) else 0)))
        elif name in sample.columns:
            column = sample[name]
            if isinstance(column, pd.DataFrame):  # an input column named like a result one
                column = column.iloc[:, -1]
            lengths = column.astype(str).str.len()
            longest = max(longest, int(lengths.max()) if len(lengths) else 0)
        widths.append(float(min(60, max(8, longest + 2))))
    return widths


def _results_sheet(
    template: bytes,
    *,
    header: list[str],
    outcome: pd.DataFrame,
    source: pd.DataFrame,
    record_link: str | None,
    first_issue: dict[int, int],
) -> StreamedSheet:
    issue_style, link_style, *status_styles = cell_styles(template, row=2)
    bold = cell_styles(template, row=1)[0]
    status_cells = {
        status: text_cells([status], style)[0]
        for status, style in zip(STATUS_COLOURS, status_styles, strict=True)
    }
    sheet = StreamedSheet(rows=())
    sheet.rows = _result_rows(
        sheet.links,
        header_row=b'<row r="1">' + b"".join(text_cells(header, bold)) + b"</row>",
        outcome=outcome,
        source=source,
        status_cells=status_cells,
        record_link=record_link,
        link_style=link_style,
        issue_style=issue_style,
        first_issue=first_issue,
    )
    return sheet


def _result_rows(
    links: list[Link],
    *,
    header_row: bytes,
    outcome: pd.DataFrame,
    source: pd.DataFrame,
    status_cells: dict[str, bytes],
    record_link: str | None,
    link_style: int | None,
    issue_style: int | None,
    first_issue: dict[int, int],
) -> Iterator[bytes]:
    """The header row, then the rows in chunks, a column at a time; adds the links it makes."""
    yield header_row
    sheet_rows: list[int] = outcome.index.tolist()
    # Links to issues come first: they point at what needs fixing. Excel allows 65,530.
    issue_links = min(MAX_LINKS_PER_SHEET, sum(1 for r in sheet_rows if r in first_issue))
    id_links = MAX_LINKS_PER_SHEET - issue_links if record_link else 0
    statuses_all = arrow(outcome["status"])
    ids_all = arrow(outcome["hubspot_id"])
    messages_all = arrow(outcome["message"])
    inputs = TextColumns([arrow(source.iloc[:, j]) for j in range(len(source.columns))])
    for part in chunked(len(outcome), ROWS_PER_CHUNK):
        n = part.stop - part.start
        rows = sheet_rows[part]
        excel_rows = range(part.start + 2, part.stop + 2)
        statuses = statuses_all.slice(part.start, n).to_pylist()
        ids = ids_all.slice(part.start, n).to_pylist()
        messages = messages_all.slice(part.start, n).to_pylist()
        id_cells = text_cells(ids)
        if id_links > 0:
            for i in (i for i, hid in enumerate(ids) if hid):
                if id_links == 0:
                    break
                id_links -= 1
                id_cells[i] = text_cells([ids[i]], link_style)[0]
                links.append(Link(f"C{excel_rows[i]}", target=f"{record_link}{ids[i]}"))
        message_cells = text_cells(messages)
        if issue_links > 0:
            for i, row in enumerate(rows):
                target = first_issue.get(row)
                if target is not None and issue_links > 0:
                    issue_links -= 1
                    message_cells[i] = text_cells([messages[i]], issue_style)[0]
                    links.append(Link(f"D{excel_rows[i]}", location=f"Issues!A{target}"))
        cells = [
            c or text_cells([s])[0]
            for c, s in zip(map(status_cells.get, statuses), statuses, strict=True)
        ]
        if any(ids) or any(messages):
            cells = list(map(b"".join, zip(cells, id_cells, message_cells, strict=True)))
        else:  # no id and no message in this chunk (a dry run): two blanks after each status
            blanks = {c: c + id_cells[0] + message_cells[0] for c in set(cells)}
            cells = list(map(blanks.__getitem__, cells))
        opens, values, closes = inputs.pieces(part)
        # The row's start, number, status, id and message cells, and what opens its inputs'
        # first cell, made by one formatting per row; then one join for the chunk.
        heads = [
            b'<row r="%d"><c><v>%d</v></c>%b%b' % t
            for t in zip(excel_rows, rows, cells, opens, strict=True)
        ]
        yield inputs.blank_cells(rows_xml([heads, values, closes]))


def _summary_sheet(ws: _Sheet, summary: RunSummary, result_sheets: list[str], links: str) -> None:
    local = summary.started.astimezone()
    finished = summary.finished.astimezone() if summary.finished else None
    rows: list[tuple[str, Any]] = [
        ("Run id", summary.run_id),
        ("Object type", summary.object_type),
        ("Input file", str(summary.input_file)),
        ("Sheet", summary.sheet or "(CSV)"),
        ("Mapping", summary.mapping_file),
        ("Mode", summary.mode),
        ("HubSpot", summary.base_url),
        ("API version", summary.api_version),
        ("Portal", summary.portal or "unknown (the journal is kept per base URL)"),
        ("Started", local.strftime("%Y-%m-%d %H:%M:%S %Z")),
        ("Finished", finished.strftime("%Y-%m-%d %H:%M:%S %Z") if finished else ""),
        ("Duration (s)", round(summary.duration, 1) if finished else ""),
        ("Rows", summary.rows),
        ("Requests sent", summary.requests),
        ("Association requests", summary.link_requests),
        ("Stopped early", summary.stopped_by or "no"),
        ("Retry file", str(summary.retry_file or "none: no invalid or failed rows")),
        ("Journal", str(summary.journal or "")),
        ("Results", ", ".join(result_sheets)),
        ("Record links", links),
    ]
    ws.widths([20, 70, 4, 14, 10])
    ws.printable()
    ws.ws.append([ws.cell(f"hubspot-import run {summary.run_id}", bold=True)])
    ws.append([])
    for name, value in rows:
        # Left-aligned, so numbers sit next to their labels in the wide value column.
        ws.ws.append(
            [ws.cell(name, bold=True), ws.cell(value, wrap=isinstance(value, str), align="left")]
        )
    ws.append([])
    counts_at = len(rows) + 4  # header row of the counts table
    ws.append(["Status", "Rows"], bold=True)
    statuses = [*STATUS_ORDER, *[s for s in summary.counts if s not in STATUS_ORDER]]
    for status in statuses:
        ws.ws.append(
            [
                ws.cell(status, fill=STATUS_COLOURS.get(status)),
                ws.cell(summary.counts.get(status, 0), align="left"),
            ]
        )
    chart = BarChart()
    chart.type = "bar"
    chart.title = "Rows by status"
    chart.legend = None
    chart.height, chart.width = 7.5, 14
    chart.x_axis.scaling.orientation = "maxMin"  # statuses top to bottom, as in the table
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    data = Reference(ws.ws, min_col=2, min_row=counts_at, max_row=counts_at + len(statuses))
    chart.add_data(data, titles_from_data=True)
    chart.set_categories(
        Reference(ws.ws, min_col=1, min_row=counts_at + 1, max_row=counts_at + len(statuses))
    )
    for n, status in enumerate(statuses):
        point = DataPoint(idx=n)
        point.graphicalProperties.solidFill = STATUS_COLOURS.get(status, _GREY)[1]
        chart.series[0].dPt.append(point)
    ws.ws.add_chart(chart, "D3")


def _issues_sheet(
    ws: _Sheet,
    issues: Sequence[RowIssue],
    position: dict[int, int],
    result_sheets: list[str],
    per_sheet: int,
) -> None:
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
            with tmp.open("w", newline="", encoding=table.encoding) as fh:
                writer = csv.writer(fh, delimiter=table.delimiter)
                writer.writerow(rows.columns)
                writer.writerows(rows.itertuples(index=False, name=None))
        else:
            wb = Workbook(write_only=True)
            add_rows_sheet(wb, table.sheet or "Sheet1", rows)
            wb.save(tmp)
    return path
