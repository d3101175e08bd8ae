"""Writes to records by their id that may be sent again as they are: batch/archive and
batch/update. An answer lost is asked for again; an answer is read for the inputs its
`errors` name (by trace id, or by record id), whatever its status."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.hubspot import error_context
from .client import HubSpotClient, UncertainDelivery, Verdict, error_message

__all__ = ["WRITE_TRIES", "IdWrite", "write_by_id"]

log = logging.getLogger(__name__)

WRITE_TRIES = 3
"""Archiving and setting values are idempotent: an answer lost is asked for again, this often."""


@dataclass(frozen=True)
class IdWrite:
    """One input: the record's id, and for an update the values and a trace id."""

    id: str
    properties: dict[str, str] = field(default_factory=dict)
    trace: str = ""

    def body(self, operation: str) -> dict[str, Any]:
        """The input as `operation` (archive or update) takes it."""
        if operation == "archive":
            return {"id": self.id}
        return {"id": self.id, "properties": self.properties, "objectWriteTraceId": self.trace}


def write_by_id(
    client: HubSpotClient, object_type: str, operation: str, inputs: Sequence[IdWrite]
) -> dict[str, str]:
    """Send one batch (`archive` or `update`, at most 100 inputs); record id -> why, for the
    inputs HubSpot refused (an update's answer that leaves an input unsaid counts it as
    refused). Raises UncertainDelivery when no answer came after WRITE_TRIES, and what the
    client raises when HubSpot stops the run (401, 403, the daily limit, 5xx throughout)."""
    path = client.paths.batch(object_type, operation)
    body = {"inputs": [i.body(operation) for i in inputs]}
    for attempt in range(1, WRITE_TRIES + 1):
        try:
            reply = client.request("POST", path, body)
        except UncertainDelivery:
            if attempt == WRITE_TRIES:
                raise
            log.warning("no answer to %s of %d %s: asking again", operation, len(inputs),
                        object_type)  # fmt: skip
            continue
        if reply.verdict not in (Verdict.SUCCESS, Verdict.PARTIAL):
            why = f"HubSpot refused it: {error_message(reply.body, reply.status)}"
            return {i.id: why for i in inputs}
        return refused(reply.body, inputs, operation)
    return {}


def refused(body: dict[str, Any], inputs: Sequence[IdWrite], operation: str) -> dict[str, str]:
    """Record id -> why, for the inputs an answer's `errors` name (by trace id or record id;
    an error that names none names them all)."""
    by_trace = {i.trace: i.id for i in inputs if i.trace}
    ids = {i.id for i in inputs}
    found: dict[str, str] = {}
    for err in body.get("errors") or []:
        if not isinstance(err, dict):
            continue
        context = error_context(err)
        named = [by_trace.get(t) for t in context.get("objectWriteTraceId", [])]
        named += [i for i in context.get("ids", []) if i in ids]
        why = f"HubSpot refused it: {error_message(err, 0)}"
        for record in [n for n in named if n is not None] or sorted(ids):
            found.setdefault(record, why)
    results = body.get("results")
    if operation == "update" and isinstance(results, list):
        said = {str(r.get("id")) for r in results if isinstance(r, dict)}
        for i in inputs:
            if i.id not in said and i.id not in found:
                found[i.id] = "HubSpot's answer does not mention it: not written"
    return found
