"""Find records by the key property, to learn whether a create whose answer was lost happened.

batch/read by a unique property is consistent: what it does not find does not exist. Whether
HubSpot holds the property unique is read from its definition (`hasUniqueValue`), never
guessed from a read that worked: a batch is never sent by a property HubSpot does not hold
unique, and every record holding a value is then found by search. (Only when HubSpot does not
answer the definitions is the read tried; HubSpot refuses it by a property it does not hold
unique, and the lookup searches.) Record ids
(`hs_object_id`) are read as ids. Search lags writes by seconds, so a record created a moment
ago may not be found yet: a search for a write younger than `settle` seconds first waits
until the write is that old, and the search itself is paced under search's own limit.

A search stays within HubSpot's limits: one filter group of one `IN` filter of at most 100
values (more keys are more searches), sorted on `hs_object_id` ascending and paged with
`after`, so a page boundary neither skips nor repeats a record; past the 10,000 results a
search may page through, it goes on with those whose id is greater than the last one's. Every
page of every search adds to one set of findings, so a key two records hold is noticed
whichever pages they are on.

Each record found is read with what proves who made it and when (authorship.py), so that a
record this run created can be told from one that merely has the same key.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from ..core.hubspot import (
    MAX_BATCH_INPUTS,
    SEARCH_IN_VALUES_MAX,
    SEARCH_PAGE_MAX,
    SEARCH_TOTAL_MAX,
    held_unique,
    stored_value,
)
from .authorship import PROOF_PROPERTIES, Window, not_ours
from .client import HubSpotClient, Reply, UncertainDelivery, Verdict, route_missing
from .limiter import RateLimiter

__all__ = ["DEFAULT_SEARCH_SETTLE", "Finder", "remember_unique", "unique_properties"]

log = logging.getLogger(__name__)

READ_TRIES = 3
DEFAULT_SEARCH_SETTLE = 10.0
"""Seconds after a write by which HubSpot's search is taken to have caught up with it."""
BY_ID = [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]
"""The order a search pages in: ids are unique and new records get higher ones, so paging by
offset in it neither skips nor repeats a record."""
RECORD_ID = "hs_object_id"
"""A record's id as a property: read by id, never as an `idProperty`, which HubSpot refuses
("non-unique ... property hs_object_id")."""

_UNIQUE: weakref.WeakKeyDictionary[RateLimiter, dict[str, dict[str, bool]]] = (
    weakref.WeakKeyDictionary()
)
"""Per rate limiter (one run's, or one plan's, which its steps and checks share), object type
-> property -> whether HubSpot holds it unique: each type's definitions are read once however
many lookups and clients need them."""
_UNIQUE_LOCK = threading.Lock()


def remember_unique(client: HubSpotClient, object_type: str, known: dict[str, bool]) -> None:
    """Keep what the type's definitions, read elsewhere (the portal check), say of each
    property's uniqueness, so that no lookup of this client asks for them again."""
    with _UNIQUE_LOCK:
        _UNIQUE.setdefault(client.limiter, {})[object_type] = dict(known)


def unique_properties(client: HubSpotClient, object_type: str) -> dict[str, bool] | None:
    """Property -> whether HubSpot holds its values unique (`hasUniqueValue`), read from the
    type's definitions once per client; None when HubSpot did not answer them."""
    with _UNIQUE_LOCK:
        known = _UNIQUE.get(client.limiter, {}).get(object_type)
    if known is not None:
        return known
    try:
        reply = client.request("GET", client.paths.properties(object_type))
    except UncertainDelivery as exc:
        log.warning("could not read the %s property definitions (%s)", object_type, exc)
        return None
    if reply.verdict is not Verdict.SUCCESS:
        log.warning(
            "could not read the %s property definitions: %s",
            object_type,
            reply.body.get("message", reply.status),
        )
        return None
    known = {
        str(p["name"]): held_unique(object_type, str(p["name"]), p.get("hasUniqueValue") is True)
        for p in reply.body.get("results") or []
        if isinstance(p, dict) and "name" in p
    }
    remember_unique(client, object_type, known)
    return known


class Finder:
    """Looks records up by a property: batch/read when HubSpot holds it unique (its
    definition says so), search otherwise."""

    def __init__(
        self,
        client: HubSpotClient,
        object_type: str,
        prop: str,
        *,
        settle: float = DEFAULT_SEARCH_SETTLE,
        page_size: int = SEARCH_PAGE_MAX,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        unique: bool | None = None,
    ) -> None:
        if not 1 <= page_size <= SEARCH_PAGE_MAX:
            raise ValueError(f"a search page holds 1 to {SEARCH_PAGE_MAX} results, not {page_size}")
        self.client = client
        self.object_type = object_type
        self.prop = prop
        self.settle = settle
        self.page_size = page_size
        self._clock = clock
        self._sleep = sleep
        self._unique: bool | None = True if prop == RECORD_ID else unique
        """Whether HubSpot holds the property unique; None until its definition is read."""
        self.records: dict[str, dict[str, object]] = {}
        """Record id -> its properties as read, for the records found so far."""
        self.held: dict[str, list[str]] = {}
        """Value (as HubSpot stores it) -> every record id found holding it, oldest first."""
        self.app_id: int | None = None
        """The app the token belongs to (account.token_app): only the records it created can
        be this tool's. None: not known, and a record's source, creation date and values
        decide (authorship.py)."""
        self.unserved: str | None = None
        """Why HubSpot could not be asked at all: it does not serve the API version's path
        (a 404 for the path itself). None while it answers."""

    @property
    def holders(self) -> dict[str, set[str]]:
        """Value -> every record id that holds it, for values more than one record holds."""
        return {value: set(ids) for value, ids in self.held.items() if len(ids) > 1}

    @property
    def unique(self) -> bool:
        """Whether HubSpot holds the property unique (its definition says so, and it was read
        by it): a value found on a record is on no other, and a value not found is on none."""
        return self._unique is True

    def known_unique(self) -> None:
        """Take the property as unique without reading its definition: the caller read it
        (a mapping checked against the portal)."""
        if self._unique is None:
            self._unique = True

    def holds_unique(self) -> bool | None:
        """Whether HubSpot holds the property unique, by its definition (read once); None
        when HubSpot did not answer it."""
        if self._unique is None:
            defined = unique_properties(self.client, self.object_type)
            if defined is not None:
                self._unique = defined.get(self.prop, False)
        return self._unique

    def find(
        self, values: Sequence[str], written: float | None = None, *, read: Sequence[str] = ()
    ) -> dict[str, str] | None:
        """Value (as HubSpot stores it) -> record id for the values HubSpot has; None if it
        cannot tell. Values compare exactly, but for what HubSpot normalises (emails).

        `written`: when (epoch seconds) the records may have been written; a search waits
        until that is `settle` seconds ago, so that "not found" means not there. `read`:
        properties to read of each record found (into `records`), besides the key and what
        proves who made it and when."""
        found: dict[str, str] = {}
        wanted = list(dict.fromkeys(values))
        reading = list(dict.fromkeys([self.prop, *PROOF_PROPERTIES, *read]))
        for value in wanted:  # what this lookup finds replaces what an earlier one found
            self.held.pop(stored_value(self.object_type, self.prop, value), None)
        try:
            for start in range(0, len(wanted), MAX_BATCH_INPUTS):
                chunk = wanted[start : start + MAX_BATCH_INPUTS]
                # Definitions HubSpot did not answer (None): the read is tried, as HubSpot
                # refuses one by a property it does not hold unique (then search).
                part = self._read(chunk, reading) if self.holds_unique() is not False else None
                if part is None and self.unserved is None:
                    self._wait_for_search(written)
                    part = self._search(chunk, reading)
                if part is None:
                    return None
                found.update(part)
        except UncertainDelivery as exc:
            log.warning("could not look records up (%s)", exc)
            return None
        return found

    def not_ours(self, record_id: str, window: Window, sent: dict[str, str] | None) -> str | None:
        """Why a record found is not proven created by this tool inside `window` with the
        values `sent` (None: not known), in words; None when it is."""
        props = self.records.get(record_id)
        if props is None:
            return "it was not read"
        return not_ours(self.object_type, props, window, self.app_id, sent)

    def holding(self, value: str) -> list[str]:
        """Every record found holding `value` (as HubSpot stores it), oldest first."""
        return list(self.held.get(stored_value(self.object_type, self.prop, value), []))

    def _wait_for_search(self, written: float | None) -> None:
        if written is None:
            return
        wait = written + self.settle - self._clock()
        if wait > 0:
            log.info(
                "waiting %.1f s for HubSpot's search to catch up with the write before looking "
                "%s up by %s",
                wait,
                self.object_type,
                self.prop,
            )
            self._sleep(wait)

    def _request(self, path: str, body: dict[str, Any], *, search: bool = False) -> Any:
        limiter = self.client.search_limiter if search else None
        for attempt in range(1, READ_TRIES + 1):
            try:
                return self.client.request("POST", path, body, limiter=limiter)
            except UncertainDelivery:
                if attempt == READ_TRIES:
                    raise
        raise AssertionError("unreachable")

    def _read(self, values: list[str], reading: list[str]) -> dict[str, str] | None:
        """Value -> record id for `values`, read by the property (each record's `reading`
        properties kept); None when HubSpot does not read by it, or does not serve the path."""
        path = self.client.paths.batch(self.object_type, "read")
        body: dict[str, Any] = {
            "inputs": [{"id": v} for v in values],
            "properties": reading,
            "propertiesWithHistory": [],
        }
        if self.prop != RECORD_ID:
            body["idProperty"] = self.prop
        reply = self._request(path, body)
        if self._not_served(reply, path):
            return None
        if reply.verdict is Verdict.REJECTED:
            # Not readable by it after all: fall back to search for good.
            log.info(
                "cannot read %s by %s (%s); searching instead",
                self.object_type,
                self.prop,
                reply.body.get("message", reply.status),
            )
            self._unique = False
            return None
        self._unique = True
        return self._collect(reply.body.get("results") or [], {})

    def _not_served(self, reply: Reply, path: str) -> bool:
        """Whether HubSpot answered 404 for `path` itself (its API version is not served
        here), which `unserved` then says."""
        if not route_missing(reply):
            return False
        self.unserved = f"{self.client.version_hint()} (HTTP 404 for {path})"
        log.warning("could not look %s up by %s: %s", self.object_type, self.prop, self.unserved)
        return True

    def _search(self, values: list[str], reading: list[str]) -> dict[str, str] | None:
        """Value -> record id for `values`, searched 100 values a request (each record's
        `reading` properties kept); None if a search failed."""
        found: dict[str, str] = {}
        for start in range(0, len(values), SEARCH_IN_VALUES_MAX):
            hits = self._matching(values[start : start + SEARCH_IN_VALUES_MAX], reading)
            if hits is None:
                return None
            self._collect(hits, found)
        return found

    def _matching(self, values: list[str], reading: list[str]) -> list[Any] | None:
        """Every record whose property is one of `values` (at most 100), by id, page after
        page; None if a search failed. Past the results one search may page through, the
        next pages are of a search for ids above the last one found."""
        hits: list[Any] = []
        after: str | None = None
        paged = 0
        above: str | None = None
        while True:
            limit = min(self.page_size, SEARCH_TOTAL_MAX - paged)
            if limit <= 0:
                last = hits[-1] if hits else None
                if not isinstance(last, dict) or "id" not in last:
                    return None
                after, paged, above = None, 0, str(last["id"])
                continue
            path = self.client.paths.search(self.object_type)
            body = self._search_body(values, reading, limit, after, above)
            reply = self._request(path, body, search=True)
            if reply.verdict is not Verdict.SUCCESS:
                if not self._not_served(reply, path):
                    log.warning(
                        "search for %s failed: %s",
                        self.object_type,
                        reply.body.get("message", reply.status),
                    )
                return None
            page = reply.body.get("results") or []
            hits += page
            paged += len(page)
            after = ((reply.body.get("paging") or {}).get("next") or {}).get("after")
            if not after or not page:
                return hits

    def _search_body(
        self,
        values: list[str],
        reading: list[str],
        limit: int,
        after: str | None,
        above: str | None,
    ) -> dict[str, Any]:
        """A search for records whose property is one of `values` (and whose id is above
        `above`), sorted by id, a page of `limit` from `after`, reading `reading`."""
        filters: list[dict[str, Any]] = [
            {"propertyName": self.prop, "operator": "IN", "values": values}
        ]
        if above is not None:
            filters.append({"propertyName": "hs_object_id", "operator": "GT", "value": above})
        body: dict[str, Any] = {
            "filterGroups": [{"filters": filters}],
            "sorts": BY_ID,
            "properties": reading,
            "limit": limit,
        }
        if after:
            body["after"] = after
        return body

    def _collect(self, results: list[Any], found: dict[str, str]) -> dict[str, str]:
        """`found` with the records of `results` added (value as HubSpot stores it -> id); a
        value a second record holds is in `holders` too, and every record's properties are
        kept in `records`."""
        for result in results:
            if not isinstance(result, dict) or "id" not in result:
                continue
            props = result.get("properties") or {}
            value = props.get(self.prop)
            if value is None:
                continue
            key = stored_value(self.object_type, self.prop, str(value))
            rid = str(result["id"])
            self.records[rid] = dict(props)
            holding = self.held.setdefault(key, [])
            if rid not in holding:
                holding.append(rid)
            if key in found and found[key] != rid:
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
