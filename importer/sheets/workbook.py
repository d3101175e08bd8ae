"""What every results workbook is built from: a write-only sheet whose string cells are text
(never formulas), the colours of the row statuses, and the atomic write to a file."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet.hyperlink import Hyperlink

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
