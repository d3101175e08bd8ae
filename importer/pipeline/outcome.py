"""What became of each row: the statuses the workbook, the summary and exit codes speak of."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pandas as pd
import pyarrow as pa

from ..sheets._text import text_series

__all__ = ["GOOD_STATUSES", "RowResult", "RowStatus", "results_frame"]


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
