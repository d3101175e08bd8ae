"""A Results sheet: a row per input row, its status, HubSpot id and message beside the input's
own cells. openpyxl writes the sheet's settings and a row of its styled cells; the rows are
streamed in by `_sheetxml`, in chunks, with links to records and to issues within Excel's
limit per sheet."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import pandas as pd
from openpyxl import Workbook
from openpyxl.utils import get_column_letter

from ..core.outcome import HELD_BACK
from ..core.text import arrow
from ._sheetxml import Link, StreamedSheet, TextColumns, cell_styles, chunked, rows_xml, text_cells
from .workbook import STATUS_COLOURS, _Sheet

RESULT_COLUMNS = ("source_row", "status", "hubspot_id", "message")
"""The Results sheet's own columns, before the input's; `held_back` follows `message` in runs
whose mapping has write rules (see `result_columns`)."""
WIDTH_SAMPLE = 1_000
ROWS_PER_CHUNK = 20_000
"""Rows of a Results sheet built and compressed at a time (~10 MB of XML)."""
MAX_LINKS_PER_SHEET = 65_530
"""Excel refuses more hyperlinks than this in one worksheet; openpyxl also keeps every link in
memory until the sheet is written, so beyond it ids are plain text."""


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


def result_columns(outcome: pd.DataFrame) -> list[str]:
    """The Results sheet's own columns for `outcome`: `held_back` after `message` when the
    outcome says what write rules held back."""
    return [*RESULT_COLUMNS, *([HELD_BACK] if HELD_BACK in outcome.columns else [])]


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


def _record_links_note(
    outcome: pd.DataFrame, *, record_link: str | None, per_sheet: int, sheets: int, issues: int
) -> str:
    """Which hubspot_ids link to their records, for the Summary: every one, unless a Results
    sheet of `per_sheet` rows has more than Excel's limit leaves beside its `issues` links."""
    if not record_link:
        return "none (portal not known)"
    ids = outcome["hubspot_id"] != ""
    most = max(
        (int(ids.iloc[n * per_sheet : (n + 1) * per_sheet].sum()) for n in range(sheets)),
        default=0,
    )
    return (
        "on every hubspot_id"
        if most <= MAX_LINKS_PER_SHEET - issues
        else f"on the first {MAX_LINKS_PER_SHEET:,} rows of each Results sheet "
        "(Excel's limit per sheet)"
    )


def _results_sheet(
    template: bytes,
    *,
    header: list[str],
    outcome: pd.DataFrame,
    source: pd.DataFrame,
    record_link: str | None,
    first_issue: dict[int, int],
) -> StreamedSheet:
    """The rows of a Results sheet, in the styles of its template's cells, and their links."""
    issue_style, link_style, *status_styles = cell_styles(template, row=2)
    bold = cell_styles(template, row=1)[0]
    status_cells = {
        status: text_cells([status], style)[0]
        for status, style in zip(STATUS_COLOURS, status_styles, strict=True)
    }
    sheet = StreamedSheet(rows=())
    links = _RowLinks(
        sheet.links,
        record_link=record_link,
        id_style=link_style,
        first_issue=first_issue,
        issue_style=issue_style,
    )
    sheet.rows = _result_rows(
        links,
        header_row=b'<row r="1">' + b"".join(text_cells(header, bold)) + b"</row>",
        outcome=outcome,
        source=source,
        status_cells=status_cells,
    )
    return sheet


@dataclass
class _RowLinks:
    """The links a Results sheet's cells make, no more than Excel allows in one sheet."""

    made: list[Link]
    """The links made so far, for the sheet's relationships."""
    record_link: str | None
    id_style: int | None
    first_issue: dict[int, int]
    """Sheet row -> the Issues sheet's row of its first issue."""
    issue_style: int | None
    ids_left: int = 0
    issues_left: int = 0

    def share(self, sheet_rows: list[int]) -> None:
        """Share Excel's limit between links to issues and links to records."""
        # Links to issues come first: they point at what needs fixing. Excel allows 65,530.
        self.issues_left = min(
            MAX_LINKS_PER_SHEET, sum(1 for r in sheet_rows if r in self.first_issue)
        )
        self.ids_left = MAX_LINKS_PER_SHEET - self.issues_left if self.record_link else 0

    def id_cells(self, ids: list[str], excel_rows: range) -> list[bytes]:
        """The id cells of a chunk: those that have an id link to its record, while links last."""
        cells = text_cells(ids)
        if self.ids_left > 0:
            for i in (i for i, hid in enumerate(ids) if hid):
                if self.ids_left == 0:
                    break
                self.ids_left -= 1
                cells[i] = text_cells([ids[i]], self.id_style)[0]
                self.made.append(Link(f"C{excel_rows[i]}", target=f"{self.record_link}{ids[i]}"))
        return cells

    def message_cells(self, messages: list[str], rows: list[int], excel_rows: range) -> list[bytes]:
        """The message cells of a chunk: a row with issues links to its first, while links last."""
        cells = text_cells(messages)
        if self.issues_left > 0:
            first_issue = self.first_issue
            for i, row in enumerate(rows):
                target = first_issue.get(row)
                if target is not None and self.issues_left > 0:
                    self.issues_left -= 1
                    cells[i] = text_cells([messages[i]], self.issue_style)[0]
                    self.made.append(Link(f"D{excel_rows[i]}", location=f"Issues!A{target}"))
        return cells


def _result_rows(
    links: _RowLinks,
    *,
    header_row: bytes,
    outcome: pd.DataFrame,
    source: pd.DataFrame,
    status_cells: dict[str, bytes],
) -> Iterator[bytes]:
    """The header row, then the rows in chunks, a column at a time; adds the links it makes."""
    yield header_row
    sheet_rows: list[int] = outcome.index.tolist()
    links.share(sheet_rows)
    statuses_all = arrow(outcome["status"])
    ids_all = arrow(outcome["hubspot_id"])
    messages_all = arrow(outcome["message"])
    held_all = arrow(outcome[HELD_BACK]) if HELD_BACK in outcome.columns else None
    inputs = TextColumns([arrow(source.iloc[:, j]) for j in range(len(source.columns))])
    for part in chunked(len(outcome), ROWS_PER_CHUNK):
        n = part.stop - part.start
        rows = sheet_rows[part]
        excel_rows = range(part.start + 2, part.stop + 2)
        statuses = statuses_all.slice(part.start, n).to_pylist()
        ids = ids_all.slice(part.start, n).to_pylist()
        messages = messages_all.slice(part.start, n).to_pylist()
        id_cells = links.id_cells(ids, excel_rows)
        message_cells = links.message_cells(messages, rows, excel_rows)
        cells = [
            c or text_cells([s])[0]
            for c, s in zip(map(status_cells.get, statuses), statuses, strict=True)
        ]
        if held_all is not None:
            held = text_cells(held_all.slice(part.start, n).to_pylist())
            cells = list(map(b"".join, zip(cells, id_cells, message_cells, held, strict=True)))
        elif any(ids) or any(messages):
            cells = list(map(b"".join, zip(cells, id_cells, message_cells, strict=True)))
        else:  # no id and no message in this chunk (a dry run): two blanks after each status
            blanks = {c: c + id_cells[0] + message_cells[0] for c in set(cells)}
            cells = list(map(blanks.__getitem__, cells))
        opens, values, closes = inputs.pieces(part)
        # The row's start, number, status, id, message (and held_back) cells, and what opens
        # its inputs' first cell, made by one formatting per row; then one join for the chunk.
        heads = [
            b'<row r="%d"><c><v>%d</v></c>%b%b' % t
            for t in zip(excel_rows, rows, cells, opens, strict=True)
        ]
        yield inputs.blank_cells(rows_xml([heads, values, closes]))
