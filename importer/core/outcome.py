"""What became of each row: the statuses the workbook, the summary and exit codes speak of, and
the issues of bad cells (why a row was not sent)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import pandas as pd
import pyarrow as pa

from .text import text_series

__all__ = [
    "GOOD_STATUSES",
    "HELD_BACK",
    "CellNamer",
    "Problem",
    "RowIssue",
    "RowResult",
    "RowStatus",
    "issue_messages",
    "results_frame",
    "with_held_back",
]


class RowStatus(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    INVALID = "invalid"
    FAILED = "failed"
    INCOMPLETE = "incomplete"  # written, but some of its links were refused (message: which)
    NOT_SENT = "not_sent"
    UNCERTAIN = "uncertain"
    WOULD_CREATE = "would_create"  # check / --dry-run: nothing was sent
    WOULD_UPDATE = "would_update"


GOOD_STATUSES = frozenset(
    {
        RowStatus.CREATED,
        RowStatus.UPDATED,
        RowStatus.UNCHANGED,
        RowStatus.SKIPPED,
        RowStatus.WOULD_CREATE,
        RowStatus.WOULD_UPDATE,
    }
)
"""Statuses that need nobody's attention: a run with only these exits 0."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RowResult:
    row: int
    status: RowStatus
    hubspot_id: str = ""
    message: str = ""
    held_back: str = ""
    """The properties a write rule kept out of what was sent, and why (`description
    (if_empty: HubSpot has a value); cost (create_only)`)."""


def uncertain_advice(keyed: bool) -> str:
    """What to do about an uncertain row. With a key the next run looks the record up again
    (`--forget-uncertain` would send it again: a duplicate when HubSpot holds it); without one
    only the user can tell whether HubSpot holds it."""
    if keyed:
        return (
            "the next run looks it up again by its key; if HubSpot holds two or more records "
            "with it, delete the extra ones first"
        )
    return (
        "check HubSpot: if it holds no record for this row, run with --forget-uncertain to "
        "send it again (if it does, sending it again would make a second one)"
    )


HELD_BACK = "held_back"
"""The outcome's column, after `message`, of what write rules held back (mappings with rules)."""


def results_frame(
    results: dict[int, RowResult], index: pd.Index, *, otherwise: RowStatus | None = None
) -> pd.DataFrame:
    """Status, id and message per sheet row, in sheet order. Rows missing from `results` get
    status `otherwise` (and no id or message); without it, every row must have a result."""
    n = len(index)
    status = [otherwise.value if otherwise is not None else ""] * n
    ids = [""] * n
    messages = [""] * n
    positions = index.get_indexer(pd.Index(list(results)))
    if (positions < 0).any():
        raise KeyError("results for rows that are not in the sheet")
    if otherwise is None and len(results) != n:
        raise KeyError(f"{n - len(results)} rows have no result")
    for p, r in zip(positions.tolist(), results.values(), strict=True):
        status[p] = r.status.value
        ids[p] = r.hubspot_id
        messages[p] = r.message
    columns = {"status": status, "hubspot_id": ids, "message": messages}
    return pd.DataFrame(
        {
            name: text_series(pa.array(values, type=pa.large_string()), index)
            for name, values in columns.items()
        },
        index=index,
    )


def with_held_back(outcome: pd.DataFrame, held: dict[int, str]) -> pd.DataFrame:
    """`outcome` (from `results_frame`) with a `held_back` column after `message`: per sheet
    row what write rules held back, empty for the rows they held nothing back from."""
    values = [held.get(row, "") for row in outcome.index.tolist()]
    frame = outcome.copy()
    frame.insert(
        list(frame.columns).index("message") + 1,
        HELD_BACK,
        text_series(pa.array(values, type=pa.large_string()), outcome.index),
    )
    return frame


class CellNamer(Protocol):
    """A loaded sheet, as far as naming its cells goes (`sheets.table.Table`)."""

    def cell_ref(self, row: int, column: str) -> str: ...


class Problem(StrEnum):
    """Why a cell was refused; stable codes for callers and the workbook."""

    REQUIRED = "required"
    NOT_A_NUMBER = "not_a_number"
    NOT_A_BOOL = "not_a_bool"
    NOT_A_DATE = "not_a_date"
    NOT_A_DATETIME = "not_a_datetime"
    NOT_AN_OPTION = "not_an_option"
    UNKNOWN_VALUE = "unknown_value"  # not one of the words the mapping or the portal gives
    TOO_LONG = "too_long"
    DUPLICATE_KEY = "duplicate_key"
    NOT_UNIQUE = "not_unique"
    NOT_A_RECORD_ID = "not_a_record_id"
    EXTRA_CELLS = "extra_cells"
    EXCEL_ERROR = "excel_error"
    NO_SAVED_VALUE = "no_saved_value"
    NOT_FOUND = "not_found"  # a reference's key that no record has
    AMBIGUOUS = "ambiguous"  # a reference's key that several records have
    DEPENDS_ON = "depends_on"  # refers to a row of this run that is invalid or failed


@dataclass(frozen=True, kw_only=True)
class RowIssue:
    """One bad cell: where it is, what it holds, what is wrong and how to fix it."""

    row: int
    column: str
    cell: str
    value: str
    problem: Problem
    message: str
    hint: str

    @classmethod
    def at(
        cls,
        table: CellNamer,
        row: int,
        column: str,
        value: str,
        problem: Problem,
        message: str,
        hint: str,
    ) -> RowIssue:
        """The issue of the cell of `table` at `row` and `column`, named as Excel names it."""
        return cls(
            row=row,
            column=column,
            cell=table.cell_ref(row, column),
            value=value,
            problem=problem,
            message=message,
            hint=hint,
        )

    def describe(self, where: str) -> str:
        """`products.xlsx, sheet Catalogue, cell D14 (Price): "12,50" is not a number; ...`."""
        cell = self.cell.split("!")[-1]
        return f"{where}, cell {cell} ({self.column}): {self.message}; {self.hint}"


def issue_messages(issues: Sequence[RowIssue]) -> dict[int, str]:
    """Each invalid row's message in the workbook: its bad cells, what is wrong, how to fix."""
    by_row: dict[int, list[str]] = {}
    for issue in issues:
        cell = issue.cell.split("!")[-1]
        by_row.setdefault(issue.row, []).append(
            f"{cell} ({issue.column}): {issue.message}; {issue.hint}"
        )
    return {row: " | ".join(msgs) for row, msgs in by_row.items()}
