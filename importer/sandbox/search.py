"""The sandbox's CRM search: an index that lags writes, HubSpot's limits, its filters and sorts.

The limits are HubSpot's since 26 August 2024: 5 filter groups, 10 filters a group, 25 in
all, 100 values in an `IN`, 200 results a page and 10,000 in all. HubSpot documents no wording
for the 400s it answers past them; these say which limit, in HubSpot's error body
(`VALIDATION_ERROR`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from ..core.hubspot import (
    SEARCH_FILTER_GROUPS_MAX,
    SEARCH_FILTERS_MAX,
    SEARCH_FILTERS_PER_GROUP_MAX,
    SEARCH_IN_VALUES_MAX,
    SEARCH_PAGE_MAX,
    SEARCH_TOTAL_MAX,
)
from .store import Record

__all__ = ["SearchIndex", "SearchQuery", "SearchRefused"]

_OPERATORS = frozenset(
    {
        "EQ",
        "NEQ",
        "IN",
        "NOT_IN",
        "HAS_PROPERTY",
        "NOT_HAS_PROPERTY",
        "LT",
        "LTE",
        "GT",
        "GTE",
        "CONTAINS_TOKEN",
        "NOT_CONTAINS_TOKEN",
        "BETWEEN",
    }
)
_DIRECTIONS = frozenset({"ASCENDING", "DESCENDING"})


class SearchRefused(Exception):
    """A search HubSpot answers 400 for; the message is HubSpot's kind of message."""


class SearchIndex:
    """What search sees: every record as it was `lag` seconds ago.

    HubSpot's search is fed asynchronously from its record store, so a record created or
    changed a moment ago is not found (or found with its old values) for a few seconds, and
    an archived one is still found. Writes are queued here and applied once they are `lag`
    old; with no lag they apply at once.
    """

    def __init__(
        self,
        records: Iterable[tuple[str, Record]],
        lag: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lag = lag
        self._clock = clock
        self._lock = threading.Lock()
        self._visible: dict[str, dict[str, Record]] = {}
        for object_type, record in records:
            self._visible.setdefault(object_type, {})[record["id"]] = record
        self._pending: deque[tuple[float, str, str, Record | None]] = deque()

    def write(self, object_type: str, record_id: str, record: Record | None) -> None:
        """A record was created or changed (`record`), or archived (None)."""
        with self._lock:
            if self.lag <= 0:
                self._apply(object_type, record_id, record)
            else:
                self._pending.append((self._clock() + self.lag, object_type, record_id, record))

    def _apply(self, object_type: str, record_id: str, record: Record | None) -> None:
        records = self._visible.setdefault(object_type, {})
        if record is None:
            records.pop(record_id, None)
        else:
            records[record_id] = record

    def records(self, object_type: str) -> list[Record]:
        """The records of a type that search sees now, by id."""
        with self._lock:
            now = self._clock()
            while self._pending and self._pending[0][0] <= now:
                _, kind, rid, record = self._pending.popleft()
                self._apply(kind, rid, record)
            found = list(self._visible.get(object_type, {}).values())
        return sorted(found, key=lambda r: int(r["id"]))


class SearchQuery:
    """A search request body, checked as HubSpot checks it."""

    def __init__(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise SearchRefused("Invalid input JSON: the search body must be an object")
        self.limit = _integer(body.get("limit", 10), "limit")
        self.after = _integer(body.get("after", 0), "after")
        if not 0 <= self.limit <= SEARCH_PAGE_MAX:
            raise SearchRefused(f"limit must be between 0 and {SEARCH_PAGE_MAX}")
        if self.after < 0:
            raise SearchRefused("after must not be negative")
        if self.after + self.limit > SEARCH_TOTAL_MAX:
            raise SearchRefused(
                f"The search API can page through at most {SEARCH_TOTAL_MAX} results: "
                f"after ({self.after}) plus limit ({self.limit}) is past it"
            )
        self.groups = _filter_groups(body.get("filterGroups") or [])
        self.sorts = _sorts(body.get("sorts") or [])
        properties = body.get("properties") or []
        if not isinstance(properties, list) or not all(isinstance(p, str) for p in properties):
            raise SearchRefused("Invalid input JSON: properties must be a list of names")
        self.properties: list[str] = properties

    def matches(self, props: dict[str, Any]) -> bool:
        return not self.groups or any(all(_matches(props, f) for f in g) for g in self.groups)

    def ordered(self, records: list[Record]) -> list[Record]:
        """`records` (by id) in the order of the request's sorts, the first sort first; ties
        and a search without sorts stay by id. A record without the property comes last."""
        for name, descending in reversed(self.sorts):
            present = [r for r in records if r["properties"].get(name) not in (None, "")]
            absent = [r for r in records if r["properties"].get(name) in (None, "")]
            present.sort(key=lambda r: _sort_key(r["properties"][name]), reverse=descending)
            records = present + absent
        return records


def _filter_groups(value: Any) -> list[list[dict[str, Any]]]:
    """The filter groups of a body, each a list of checked filters, within HubSpot's limits."""
    groups = _at_most(_objects(value, "filterGroups"), SEARCH_FILTER_GROUPS_MAX, "filter groups")
    checked = []
    for group in groups:
        filters = _at_most(
            _objects(group.get("filters") or [], "filters"),
            SEARCH_FILTERS_PER_GROUP_MAX,
            "filters in a group",
        )
        for flt in filters:
            _check_filter(flt)
        checked.append(filters)
    _at_most([f for g in checked for f in g], SEARCH_FILTERS_MAX, "filters in all groups")
    return checked


def _sorts(value: Any) -> list[tuple[str, bool]]:
    """(property, descending) per sort of a body: a property's name (ascending), or an object
    with `propertyName` and `direction`, as HubSpot takes them."""
    if not isinstance(value, list):
        raise SearchRefused("Invalid input JSON: sorts must be a list")
    sorts = []
    for sort in value:
        if isinstance(sort, str) and sort:
            sorts.append((sort, False))
            continue
        name = sort.get("propertyName") if isinstance(sort, dict) else None
        direction = sort.get("direction", "ASCENDING") if isinstance(sort, dict) else None
        if not isinstance(name, str) or not name or direction not in _DIRECTIONS:
            raise SearchRefused(
                "Invalid input JSON: every sort needs a propertyName and a direction "
                "(ASCENDING or DESCENDING)"
            )
        sorts.append((name, direction == "DESCENDING"))
    return sorts


def _sort_key(value: Any) -> tuple[int, float, str]:
    """Numbers before text, numbers by value, text without regard to case."""
    number = _number(value)
    return (0, number, "") if number is not None else (1, 0.0, _folded(value))


def _objects(value: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise SearchRefused(f"Invalid input JSON: {what} must be a list of objects")
    return value


def _at_most(items: list[Any], limit: int, what: str) -> list[Any]:
    if len(items) > limit:
        raise SearchRefused(f"Too many {what} ({len(items)}); at most {limit} are allowed")
    return items


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise SearchRefused(f"{name} must be a whole number, not {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise SearchRefused(f"{name} must be a whole number, not {value!r}")


def _check_filter(flt: dict[str, Any]) -> None:
    if not isinstance(flt.get("propertyName"), str) or not flt["propertyName"]:
        raise SearchRefused("Invalid input JSON: every filter needs a propertyName")
    operator = flt.get("operator", "EQ")
    if operator not in _OPERATORS:
        raise SearchRefused(f"Unknown filter operator {operator!r}")
    if operator in ("IN", "NOT_IN"):
        values = flt.get("values")
        if not isinstance(values, list):
            raise SearchRefused(f"The {operator} operator needs a values list")
        if len(values) > SEARCH_IN_VALUES_MAX:
            raise SearchRefused(
                f"Too many values for {operator} ({len(values)}); at most "
                f"{SEARCH_IN_VALUES_MAX} are allowed"
            )


def _folded(value: Any) -> str:
    return str(value).casefold()


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _matches(props: dict[str, Any], flt: dict[str, Any]) -> bool:
    """One filter. Text compares without regard to case, as HubSpot's search does."""
    value = props.get(str(flt.get("propertyName")))
    present = value not in (None, "")
    op = flt.get("operator", "EQ")
    if op == "HAS_PROPERTY":
        return present
    if op == "NOT_HAS_PROPERTY":
        return not present
    if op in ("IN", "NOT_IN"):
        inside = present and _folded(value) in {_folded(v) for v in flt.get("values") or []}
        return inside if op == "IN" else not inside
    if op in ("EQ", "NEQ"):
        equal = present and _folded(value) == _folded(flt.get("value"))
        return equal if op == "EQ" else not equal
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        token = _folded(flt.get("value")).strip("*")
        inside = present and token in _folded(value)
        return inside if op == "CONTAINS_TOKEN" else not inside
    number, low = _number(value), _number(flt.get("value"))
    if number is None or low is None:
        return False
    if op == "BETWEEN":
        high = _number(flt.get("highValue"))
        return high is not None and low <= number <= high
    return {
        "LT": number < low,
        "LTE": number <= low,
        "GT": number > low,
        "GTE": number >= low,
    }[op]
