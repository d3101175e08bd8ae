"""What a run did (`RunSummary`), and the Summary sheet that shows it first in its workbook:
the run's facts, its rows by status, and a chart of them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openpyxl.chart import BarChart, Reference
from openpyxl.chart.marker import DataPoint

from ..core.hubspot import DEFAULT_API_VERSION
from ..core.outcome import RowStatus
from .fingerprint import Fingerprint
from .inputs import shown_name
from .results_missing import MissingReport
from .workbook import _GREY, STATUS_COLOURS, _Sheet

STATUS_ORDER = tuple(s.value for s in RowStatus)


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
    guard: str | None = None
    """The guard that stopped the run before it wrote anything (`max_invalid`, ...); in a dry
    run, the guard that would have."""
    guards: list[str] = field(default_factory=list)
    """What each guard of the run said (`max_invalid 10 %: 3 of 200 rows invalid (1.5 %):
    passes`)."""
    workbook: Path | None = None
    retry_file: Path | None = None
    record_link: str | None = None
    """`https://app.hubspot.com/contacts/{portal}/record/{type}/` when the portal is known."""
    input_fingerprint: Fingerprint | None = None
    """The input file's size, SHA-256 and time, taken before it was read (None: unreadable)."""
    run_settings: str | None = None
    """A digest of the mapping file and the options that read the input: with the
    fingerprint, what `run --skip-unchanged` compares with the last run's."""
    missing: MissingReport | None = None
    """What the mapping's `missing_rows:` did to the records whose key left the feed (None:
    `keep`, the default)."""

    @property
    def duration(self) -> float:
        end = self.finished or dt.datetime.now(dt.UTC)
        return (end - self.started).total_seconds()


def _summary_sheet(ws: _Sheet, summary: RunSummary, result_sheets: list[str], links: str) -> None:
    """The run's facts, then its rows by status beside a chart of them."""
    rows = _run_facts(summary, result_sheets, links)
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
    ws.ws.add_chart(_counts_chart(ws, statuses, counts_at), "D3")


def _run_facts(summary: RunSummary, result_sheets: list[str], links: str) -> list[tuple[str, Any]]:
    """The Summary sheet's (label, value) lines: what ran, against what, when, and its files."""
    local = summary.started.astimezone()
    finished = summary.finished.astimezone() if summary.finished else None
    return [
        ("Run id", summary.run_id),
        ("Object type", summary.object_type),
        ("Input file", shown_name(summary.input_file)),
        ("Sheet", summary.sheet or "(CSV)"),
        ("Input fingerprint", _described(summary.input_fingerprint)),
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
        ("Guards", "\n".join(summary.guards) or "none set"),
        *([("Missing records", summary.missing.said())] if summary.missing else []),
        ("Retry file", str(summary.retry_file or "none: no invalid or failed rows")),
        ("Journal", str(summary.journal or "")),
        ("Results", ", ".join(result_sheets)),
        ("Record links", links),
    ]


def _described(fingerprint: Fingerprint | None) -> str:
    return fingerprint.describe() if fingerprint is not None else "not taken"


def _counts_chart(ws: _Sheet, statuses: list[str], counts_at: int) -> BarChart:
    """A bar a status, in its colour, over the counts table whose header is row `counts_at`."""
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
    return chart
