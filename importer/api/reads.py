"""Batch reads of records by id (or by a unique property's values): an answer lost is asked
for again, and a refusal is a HubSpotError saying what could not be read. Used by the stages
(--verify, write rules, guards, the mirror) and by undo alike."""

from __future__ import annotations

from typing import Any

from ..core.errors import HubSpotError, UncertainDelivery
from .client import HubSpotClient, Verdict, error_message

__all__ = ["READ_TRIES", "read_batch", "read_values"]

READ_TRIES = 3
"""A read may be sent again as it is: an answer lost is asked for again, this often."""


def read_batch(
    client: HubSpotClient,
    object_type: str,
    ids: list[str],
    names: list[str],
    *,
    id_property: str | None = None,
    purpose: str = "read the records back (--verify)",
) -> dict[str, Any]:
    """HubSpot's answer to one batch read of `ids` (record ids, or values of the unique
    `id_property`) for the properties `names`: its results, and its errors naming what it did
    not return. An answer lost is asked for again (READ_TRIES in all); HubSpotError, saying
    it could not `purpose`, when HubSpot refuses the read."""
    body: dict[str, Any] = {
        "inputs": [{"id": i} for i in ids],
        "properties": names,
        "propertiesWithHistory": [],
    }
    if id_property is not None:
        body["idProperty"] = id_property
    for attempt in range(1, READ_TRIES + 1):
        try:
            reply = client.request("POST", client.paths.batch(object_type, "read"), body)
        except UncertainDelivery:
            if attempt == READ_TRIES:
                raise
            continue
        if reply.verdict not in (Verdict.SUCCESS, Verdict.PARTIAL):
            raise HubSpotError(
                f"could not {purpose}: {error_message(reply.body, reply.status)}",
                status=reply.status,
            )
        return reply.body
    return {}


def read_values(
    client: HubSpotClient, object_type: str, ids: list[str], names: list[str], purpose: str
) -> dict[str, dict[str, Any]]:
    """Record id -> its values of `names`, for the records HubSpot holds live under that id
    (one deleted, archived or merged into another is left out)."""
    body = read_batch(client, object_type, ids, names, purpose=purpose)
    found: dict[str, dict[str, Any]] = {}
    for result in body.get("results") or []:
        if isinstance(result, dict) and str(result.get("id")) in ids:
            props = result.get("properties") or {}
            found[str(result["id"])] = {n: props.get(n) for n in names}
    return found
