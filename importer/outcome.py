"""What became of each row: the statuses the workbook, the summary and exit codes speak of."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pandas as pd

__all__ = ["GOOD_STATUSES", "RowResult", "RowStatus", "results_frame"]


class RowStatus(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    INVALID = "invalid"
    FAILED = "failed"
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


def results_frame(results: dict[int, RowResult], index: pd.Index) -> pd.DataFrame:
    """Status, id and message per sheet row, in sheet order."""
    rows = [results[int(r)] for r in index]
    return pd.DataFrame(
        {
            "status": [r.status.value for r in rows],
            "hubspot_id": [r.hubspot_id for r in rows],
            "message": [r.message for r in rows],
        },
        index=index,
    )
