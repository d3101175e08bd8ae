"""Which row of a sheet holds its header: the row asked for (`--header-row`, `header_row:`),
else the first of the sheet's first rows that looks like a header, the titles and notes above
it skipped and said. CSV and Excel readers hand it the same thing: rows of text cells.

A row *could be the header* when it holds at least two values (one, in a sheet of one
column) and the rows below it are no wider than it; looked for first among rows whose values
read as names (mostly text, not numbers or dates, mostly distinct), then among any. The rows
above it must all be *narrower*: fewer values than it, and either one value, at most half
as many, or two that do not read as names (a title beside its date). Data rows wider than a
header (extra cells on every row) are thus never taken for the header with the real one
skipped as a note. In each search, the
first row that could be the header is taken when every row above it is narrower; when one is
not, the data starts above it, and the search finds nothing. When neither finds a header,
the first row with a value is the header, as it always was (refused when it is one value over
wider rows: a title whose header could not be told).

Only the first rows are read (`FIRST_ROWS`), so a large sheet costs nothing more to load.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import InputFileError

__all__ = ["FIRST_ROWS", "Header", "find_header", "forced_header"]

log = logging.getLogger(__name__)

LOOK_ROWS = 30
"""The header is looked for among this many of the sheet's first rows that hold a value."""
BELOW_ROWS = 10
"""The rows below a candidate whose widths tell whether it is as wide as the data."""
FIRST_ROWS = LOOK_ROWS + BELOW_ROWS
"""The rows holding a value that `find_header` reads, at most."""
SHOWN = 60
"""Characters of a skipped row quoted in the message."""
CHOOSE = "--header-row N (or header_row: in the mapping)"
GIVE = "Give the row that holds the column names: --header-row N, or header_row: in the mapping."

Row = tuple[int, Sequence[str]]
"""A sheet row's number (1 is the first row) and its cells as text."""

_NUMBER = re.compile(r"[-+(]?[$€£¥]?\s?\d[\d.,'\s]*(?:[eE][-+]?\d+)?\s?[%$€£¥)]?")
_TIME = r"\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
_DATE = re.compile(rf"\d{{1,4}}[-/.]\d{{1,2}}[-/.]\d{{1,4}}(?:[ T]{_TIME})?|{_TIME}")
_BOOLEAN = frozenset({"TRUE", "FALSE"})


@dataclass(frozen=True)
class Header:
    """The sheet row taken as the header, and what was said of the rows skipped above it."""

    row: int
    note: str | None = None


def find_header(path: Path, sheet: str | None, rows: Iterable[Row]) -> Header | None:
    """The header among the sheet's rows (in order; only the first FIRST_ROWS holding a value
    are read); None when no row holds a value. Titles and notes skipped above it are said:
    logged as a warning, and kept in `note` for the run to report."""
    first = list(itertools.islice(((n, c) for n, c in rows if _filled(c)), FIRST_ROWS))
    if not first:
        return None
    at = _header_at(first, names=True)
    if at is None:
        at = _header_at(first, names=False)
    if at is None:
        _refuse_a_lone_title(path, sheet, first)
        at = 0
    row = first[at][0]
    if at == 0:
        return Header(row)  # at most blank rows above it: nothing worth saying
    note = _skipped_note(path, sheet, row, first[:at])
    log.warning("%s", note)
    return Header(row, note)


def forced_header(
    path: Path, sheet: str | None, row: int, cells: Sequence[str] | None, last_row: int
) -> Header:
    """The header row asked for, checked: it is in the sheet and holds a value. `cells`: that
    row's (None past the last row); `last_row`: the sheet's last row."""
    where = _where(path, sheet)
    if row > last_row or cells is None:
        ends = f"the last row is row {last_row}" if last_row else "it holds no rows"
        raise InputFileError(f"{where}: the header was asked for on row {row}, but {ends}. {GIVE}")
    if not _filled(cells):
        raise InputFileError(
            f"{where}: the header was asked for on row {row}, which is empty. {GIVE}"
        )
    return Header(row)


def _header_at(first: list[Row], *, names: bool) -> int | None:
    """The position in `first` of the first row that could be the header with only narrower
    rows above it; None when none could be, or the first that could has a wider row above."""
    for k in range(min(LOOK_ROWS, len(first))):
        if _could_be_header(first, k, names=names):
            cells = first[k][1]
            return k if all(_narrower(above, cells) for _, above in first[:k]) else None
    return None


def _could_be_header(first: list[Row], k: int, *, names: bool) -> bool:
    """Whether row `k` could be the header: two values or more (one, when the rows below hold
    one each), the rows below no wider, and (with `names`) values that read as names."""
    cells = first[k][1]
    below = first[k + 1 : k + 1 + BELOW_ROWS]
    if below and _median(_span(c) for _, c in below) > _span(cells):
        return False
    # A title in A1 and a date in J1 reach as far as the data, but hold two values where the
    # rows below hold ten: no header is that much sparser than its data.
    if below and _median(_filled(c) for _, c in below) > 2 * max(_filled(cells), 1):
        return False
    one_column = not below or _median(_filled(c) for _, c in below) <= 1
    if _filled(cells) < (1 if one_column else 2):
        return False
    return not names or _reads_as_names(cells)


def _narrower(row: Sequence[str], header: Sequence[str]) -> bool:
    """Whether a row above the header is a title or notes beside it: fewer values, and one
    value, at most half as many, or two that do not read as names (a title and its date)."""
    filled, widest = _filled(row), _filled(header)
    if filled >= widest:
        return False
    return filled == 1 or 2 * filled <= widest or (filled == 2 and not _reads_as_names(row))


def _reads_as_names(cells: Sequence[str]) -> bool:
    """Whether a row's values read as column names: most are text (not numbers, dates or
    TRUE/FALSE), and most are distinct."""
    values = [c.strip() for c in cells if c.strip()]
    text = [v for v in values if not _is_value(v)]
    return 2 * len(text) > len(values) and 2 * len(set(values)) > len(values)


def _is_value(text: str) -> bool:
    """Whether a cell's text is a number, a date, a time or TRUE/FALSE (a value, not a name)."""
    return (
        _NUMBER.fullmatch(text) is not None
        or _DATE.fullmatch(text) is not None
        or text.upper() in _BOOLEAN
    )


def _refuse_a_lone_title(path: Path, sheet: str | None, first: list[Row]) -> None:
    """Refuse a first row of one value over rows that mostly hold more, when no header could
    be told below it: read as the header, the title would name one column and no other."""
    (row, cells), below = first[0], first[1:]
    if _filled(cells) != 1 or 2 * sum(1 for _, c in below if _filled(c) > 1) <= len(below):
        return
    where = _where(path, sheet)
    raise InputFileError(
        f'{where}: row {row} holds one value ("{_shown(cells)}") and most rows below it hold '
        f"more: it looks like a title above the header, but the header could not be told. "
        f"{GIVE}"
    )


def _where(path: Path, sheet: str | None) -> str:
    """The file (and sheet) an error names."""
    return f"{path}, sheet {sheet}" if sheet is not None else str(path)


def _skipped_note(path: Path, sheet: str | None, header: int, skipped: list[Row]) -> str:
    """What is said when titles or notes above the header were skipped."""
    where = f"{path.name}, sheet {sheet}" if sheet is not None else path.name
    above = "row 1 looks" if header == 2 else f"rows 1-{header - 1} look"
    quoted = ", ".join(f'"{_shown(cells)}"' for _, cells in skipped[:3])
    more = ", ..." if len(skipped) > 3 else ""
    return (
        f"{where}: took row {header} as the header ({above} like a title or notes: "
        f"{quoted}{more}); give {CHOOSE} to choose another"
    )


def _shown(cells: Sequence[str]) -> str:
    """A row's values as one short text: a note cut at its commas by a CSV reads whole."""
    text = ", ".join(c.strip() for c in cells if c.strip())
    return text if len(text) <= SHOWN else text[: SHOWN - 3].rstrip() + "..."


def _filled(cells: Sequence[str]) -> int:
    """How many cells hold a value (not empty, not only spaces)."""
    return sum(1 for c in cells if c.strip())


def _span(cells: Sequence[str]) -> int:
    """How far a row reaches: its last cell holding a value, counted from 1 (0: none)."""
    return next((j + 1 for j in range(len(cells) - 1, -1, -1) if cells[j].strip()), 0)


def _median(values: Iterable[int]) -> int:
    """The lower median: of two rows below, the narrower one counts (one stray cell does not
    make a row the data's width)."""
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]
