"""A batch HubSpot refused as a whole: which of its rows fail with it, and when its one row
takes the record that holds its key instead. The uploader settles the batch in the journal by
this before it sends anything again, so that a workbook rebuilt from the journal says `failed`
of the rows the run's own workbook says it of."""

from __future__ import annotations

from typing import Any

from ..core.hubspot import EMAIL_PROPERTIES
from ..mapping.model import Mapping
from .answers import existing_id, refused_rows
from .decide import Action, Operation

__all__ = ["adopted_record", "failing_rows"]


def adopted_record(
    mapping: Mapping, batch: list[Action], operation: Operation, body: dict[str, Any], status: int
) -> str | None:
    """The record a one-row create was refused for (409: it holds the row's email): the row
    updates it. None for any other refusal."""
    if len(batch) != 1 or operation is not Operation.CREATE or status != 409:
        return None
    if (mapping.object_type, mapping.key_property) not in EMAIL_PROPERTIES:
        return None
    return existing_id(mapping, body)


def failing_rows(
    mapping: Mapping, batch: list[Action], operation: Operation, body: dict[str, Any], status: int
) -> list[Action]:
    """The rows of a batch refused whole that fail with it: those the error names, else its
    one row; none when it is split to find them, or its row takes a record (adopted_record)."""
    if adopted_record(mapping, batch, operation, body, status) is not None:
        return []
    culprits = refused_rows(batch, body)
    if culprits:
        return [a for a in batch if a.row.row in culprits]
    return list(batch) if len(batch) == 1 else []
