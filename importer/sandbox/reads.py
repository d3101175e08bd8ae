"""The sandbox's reads: batch read, search, listing and reading one record, each record
shaped as HubSpot returns it (the properties asked for, the system ones, associations)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from .checks import _normalised, _query_int, _ReadQuery, _singular
from .objects import ObjectEndpoints, batch_inputs
from .replies import Reply, batch_response, error
from .search import SearchQuery, SearchRefused
from .store import Record, now_iso

__all__ = ["DEFAULT_PROPERTIES", "SYSTEM_PROPERTIES", "ObjectReads"]

SYSTEM_PROPERTIES = ("hs_object_id", "createdate", "hs_lastmodifieddate")
"""Returned with every record, asked for or not."""
DEFAULT_PROPERTIES = {
    "contacts": ("email", "firstname", "lastname"),
    "products": ("name", "description", "price"),
    "companies": ("name", "domain"),
    "deals": ("dealname", "amount", "dealstage", "pipeline", "closedate"),
    "line_items": ("name", "quantity", "price"),
}
"""What a read returns when no properties are asked for, besides the system ones."""


def _read_request(body: Any) -> tuple[list[dict[str, Any]], list[str] | None]:
    """A batch read's inputs (each with an id) and the properties it asks for, or HubSpot's 400."""
    inputs = batch_inputs(body)
    for n, item in enumerate(inputs):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str | int):
            raise Reply(
                400,
                error(
                    f"Invalid input JSON: inputs[{n}] must be an object with an id.",
                    "VALIDATION_ERROR",
                ),
            )
    wanted = body.get("properties")
    if wanted is not None and (
        not isinstance(wanted, list) or not all(isinstance(p, str) for p in wanted)
    ):
        raise Reply(400, error("Invalid input JSON: properties must be a list", "VALIDATION_ERROR"))
    return inputs, wanted


class ObjectReads(ObjectEndpoints):
    """The read endpoints of `Sandbox`."""

    def batch_read(self, object_type: str, body: Any) -> tuple[int, Any]:
        """Records by id or unique property: a 200, or a 207 naming the ids not found."""
        started = now_iso()
        inputs, wanted = _read_request(body)
        prop = body.get("idProperty")
        ids = [str(i["id"]) for i in inputs]
        inputs = [
            {"id": i, "idProperty": prop} for i in dict.fromkeys(ids)
        ]  # a repeated id is read once
        targets = self._resolve(object_type, inputs, "read")
        results, missing = [], []
        for item, target in zip(inputs, targets, strict=True):
            record = self.store.get(object_type, target) if target else None
            if record is None:
                missing.append(str(item.get("id")))
                continue
            results.append(self.shaped(object_type, record, wanted))
        errors = [
            {
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "message": f"Could not get some {object_type} objects, they may be "
                "deleted or not exist. Check that ids are valid.",
                "context": {"ids": missing},
            }
        ]
        return (207 if missing else 200), batch_response(
            results, errors if missing else [], started
        )

    def shaped(self, object_type: str, record: Record, wanted: list[str] | None) -> dict[str, Any]:
        """A record with the properties a read asked for: the system ones always, the type's
        defaults when none were named; a named property the record has no value for comes
        back null, as HubSpot answers, and one the portal does not have is left out."""
        defs = self.portal.property_defs(object_type)
        props = record["properties"]
        if wanted is None:
            names = [*DEFAULT_PROPERTIES.get(object_type, ()), *SYSTEM_PROPERTIES]
        else:
            names = [*wanted, *SYSTEM_PROPERTIES]
        return {
            **record,
            "properties": {n: props.get(n) for n in names if n in defs or n in props},
        }

    def search(self, object_type: str, body: Any) -> tuple[int, Any]:
        """Search what the index sees (writes of the last `search_lag` seconds are not)."""
        try:
            query = SearchQuery(body)
        except SearchRefused as exc:
            raise Reply(400, error(str(exc), "VALIDATION_ERROR")) from None
        hits = [r for r in self.search_index.records(object_type) if query.matches(r["properties"])]
        hits = query.ordered(hits)
        page = hits[query.after : query.after + query.limit]
        wanted = query.properties or None
        reply: dict[str, Any] = {
            "total": len(hits),
            "results": [self.shaped(object_type, r, wanted) for r in page],
        }
        following = query.after + query.limit
        if following < len(hits) and query.limit:
            reply["paging"] = {"next": {"after": str(following)}}
        return 200, reply

    def list_objects(
        self, object_type: str, query: dict[str, list[str]], path: str
    ) -> dict[str, Any]:
        """GET objects: a page of records, with `properties`, `archived`, `associations`."""
        read = _ReadQuery(query)
        limit = min(100, max(1, _query_int(query, "limit", 10)))
        after = str(_query_int(query, "after", 0))
        page = self.store.page(object_type, after, limit + 1, archived=read.archived)
        body: dict[str, Any] = {
            "results": [self.with_links(object_type, r, read) for r in page[:limit]]
        }
        if len(page) > limit:
            nxt = page[limit - 1]["id"]
            kept = {k: v for k, v in query.items() if k not in ("after", "limit")}
            rest = urlencode({**kept, "after": nxt, "limit": limit}, doseq=True)
            body["paging"] = {"next": {"after": nxt, "link": f"{self.url}{path}?{rest}"}}
        return body

    def get_object(
        self, object_type: str, record_id: str, query: dict[str, list[str]]
    ) -> dict[str, Any]:
        """GET one object by id, or by a unique property (`idProperty`)."""
        read = _ReadQuery(query)
        rid: str | None = record_id
        if read.id_property and read.id_property != "hs_object_id":
            if read.id_property not in self._unique_props(object_type):
                raise Reply(
                    400,
                    error(
                        f"Unable to read by non-unique property: {read.id_property}",
                        "VALIDATION_ERROR",
                    ),
                )
            key = str(_normalised(object_type, read.id_property, record_id))
            rid = next(
                iter(self.store.find(object_type, read.id_property, [key]).get(key, [])), None
            )
        if rid and not read.archived and not self.store.exists(object_type, [rid]):
            rid = self.store.merged_into(object_type, [rid]).get(rid, rid)
        record = self.store.get(object_type, rid, archived=read.archived) if rid else None
        if record is None:
            raise Reply(
                404,
                error("Object not found. objectId are usually numeric.", "OBJECT_NOT_FOUND"),
            )
        return self.with_links(object_type, record, read)

    def with_links(self, object_type: str, record: Record, read: _ReadQuery) -> dict[str, Any]:
        shaped = self.shaped(object_type, record, read.properties)
        if not read.associations:
            return shaped
        links: dict[str, Any] = {}
        for to_name in read.associations:
            to_type = self.portal.object_type(to_name)
            if to_type is None:
                continue
            seen: dict[tuple[str, str], None] = {}
            # Each link as this end reads it: a label by this direction's type id.
            for to_id, category, type_id, _ in self.store.linked(
                object_type, record["id"], to_type
            ):
                kind = (
                    f"{_singular(object_type)}_to_{_singular(to_type)}"
                    if category == "HUBSPOT_DEFINED"
                    else str(type_id)
                )
                seen[(to_id, kind)] = None
            if seen:
                links[to_name] = {"results": [{"id": i, "type": k} for i, k in seen]}
        return {**shaped, "associations": links} if links else shaped
