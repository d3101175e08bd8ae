"""Find records by the key property, to learn whether a create whose answer was lost happened."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from .client import HubSpotClient, UncertainDelivery, Verdict
from .hubspot import MAX_BATCH_INPUTS

__all__ = ["Finder", "normalise"]

log = logging.getLogger(__name__)

SEARCH_PAGE = 200
SEARCH_IN_VALUES = 100
READ_TRIES = 3


def normalise(value: Any) -> str:
    """A value as HubSpot may normalise it: trimmed, case-folded, numbers and times canonical."""
    text = str(value).strip()
    try:
        number = Decimal(text)
        if number.is_finite():
            return format(number.normalize(), "f")
    except InvalidOperation:
        pass
    if len(text) >= 10 and text[4:5] == "-" and text[7:8] == "-":
        try:
            stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if stamp.tzinfo is None:
                stamp = stamp.replace(tzinfo=dt.UTC)
            return str(int(stamp.timestamp() * 1000))
        except ValueError:
            pass
    return text.casefold()


class Finder:
    """Looks records up by a property: batch/read when it is unique, search otherwise."""

    def __init__(self, client: HubSpotClient, object_type: str, prop: str) -> None:
        self.client = client
        self.object_type = object_type
        self.prop = prop
        self._unique: bool | None = None

    def find(self, values: Sequence[str]) -> dict[str, str] | None:
        """normalised value -> record id for the values HubSpot has; None if it cannot tell."""
        found: dict[str, str] = {}
        wanted = list(dict.fromkeys(values))
        try:
            for start in range(0, len(wanted), MAX_BATCH_INPUTS):
                chunk = wanted[start : start + MAX_BATCH_INPUTS]
                part = self._read(chunk) if self._unique is not False else None
                if part is None:
                    part = self._search(chunk)
                if part is None:
                    return None
                found.update(part)
        except UncertainDelivery as exc:
            log.warning("could not look records up (%s)", exc)
            return None
        return found

    def _request(self, path: str, body: dict[str, Any]) -> Any:
        for attempt in range(1, READ_TRIES + 1):
            try:
                return self.client.request("POST", path, body)
            except UncertainDelivery:
                if attempt == READ_TRIES:
                    raise
        raise AssertionError("unreachable")

    def _read(self, values: list[str]) -> dict[str, str] | None:
        reply = self._request(
            f"/crm/v3/objects/{self.object_type}/batch/read",
            {
                "idProperty": self.prop,
                "inputs": [{"id": v} for v in values],
                "properties": [self.prop],
                "propertiesWithHistory": [],
            },
        )
        if reply.verdict is Verdict.REJECTED:
            # Not a unique property (or not readable by it): fall back to search for good.
            log.info(
                "cannot read %s by %s (%s); searching instead",
                self.object_type,
                self.prop,
                reply.body.get("message", reply.status),
            )
            self._unique = False
            return None
        self._unique = True
        return self._collect(reply.body.get("results") or [])

    def _search(self, values: list[str]) -> dict[str, str] | None:
        found: dict[str, str] = {}
        for start in range(0, len(values), SEARCH_IN_VALUES):
            chunk = values[start : start + SEARCH_IN_VALUES]
            after: str | None = None
            while True:
                body: dict[str, Any] = {
                    "filterGroups": [
                        {
                            "filters": [
                                {"propertyName": self.prop, "operator": "IN", "values": chunk}
                            ]
                        }
                    ],
                    "properties": [self.prop],
                    "limit": SEARCH_PAGE,
                }
                if after:
                    body["after"] = after
                reply = self._request(f"/crm/v3/objects/{self.object_type}/search", body)
                if reply.verdict is not Verdict.SUCCESS:
                    log.warning(
                        "search for %s failed: %s",
                        self.object_type,
                        reply.body.get("message", reply.status),
                    )
                    return None
                found.update(self._collect(reply.body.get("results") or []))
                after = ((reply.body.get("paging") or {}).get("next") or {}).get("after")
                if not after:
                    break
        return found

    def _collect(self, results: list[Any]) -> dict[str, str]:
        found: dict[str, str] = {}
        for result in results:
            if not isinstance(result, dict) or "id" not in result:
                continue
            value = (result.get("properties") or {}).get(self.prop)
            if value is None:
                continue
            key = normalise(value)
            if key in found and found[key] != str(result["id"]):
                log.warning(
                    "%s %r is held by more than one record (%s, %s)",
                    self.prop,
                    value,
                    found[key],
                    result["id"],
                )
                continue
            found[key] = str(result["id"])
        return found
