"""The sandbox's object endpoints: batch create, update, upsert, archive and read, search,
listing and reading one record, with HubSpot's checks of every input and its reply shapes
(201/207 with per-input errors, whole-batch 400s, unique-value conflicts, shuffled results)."""

from __future__ import annotations

import json
import random
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from ..core.hubspot import MAX_BATCH_INPUTS, AssociationCategory
from .checks import _check_value, _normalised, _query_int, _ReadQuery, _singular
from .config import Fault, SandboxConfig
from .portal import Portal
from .replies import Reply, error, standard_error
from .search import SearchIndex, SearchQuery, SearchRefused
from .store import Record, Store, now_iso

__all__ = ["DEFAULT_PROPERTIES", "SYSTEM_PROPERTIES", "ObjectEndpoints"]

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


class ObjectEndpoints:
    """The object endpoints of `Sandbox`, which holds the account's state."""

    if TYPE_CHECKING:
        config: SandboxConfig
        write_lock: threading.Lock
        _lock: threading.Lock
        _rng: random.Random

        @property
        def store(self) -> Store: ...

        @property
        def portal(self) -> Portal: ...

        @property
        def search_index(self) -> SearchIndex: ...

        @property
        def url(self) -> str: ...

    def _whole_batch_400(self, traces: list[Any], errors: list[tuple[int, dict[str, Any]]]) -> None:
        """Without a unique trace id on every input, one bad input fails the whole batch."""
        all_traced = all(isinstance(t, str) and t for t in traces) and len(set(traces)) == len(
            traces
        )
        if errors and not (all_traced and self.config.multi_status):
            first = errors[0][1]
            raise Reply(
                400,
                error(
                    first["message"],
                    first.get("category", "VALIDATION_ERROR"),
                    errors=first.get("errors", []),
                    context=first.get("context", {}),
                ),
            )

    def _batch_reply(
        self,
        ok_status: int,
        results: list[dict[str, Any]],
        traces: list[Any],
        errors: list[tuple[int, dict[str, Any]]],
        started: str,
        status: str = "COMPLETE",
    ) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self._rng.shuffle(results)
        reply: dict[str, Any] = {
            "status": status,
            "results": results,
            "startedAt": started,
            "completedAt": now_iso(),
        }
        if not errors:
            return ok_status, reply
        reply["numErrors"] = len(errors)
        reply["errors"] = [
            standard_error(
                {**err, "context": {**err.get("context", {}), "objectWriteTraceId": [traces[i]]}}
            )
            for i, err in errors
        ]
        return 207, reply

    def _echo(self, record: dict[str, Any], trace: Any) -> dict[str, Any]:
        if self.config.echo_trace_ids and trace:
            return {**record, "objectWriteTraceId": trace}
        return record

    def _unique_props(self, object_type: str) -> list[str]:
        defs = self.portal.property_defs(object_type) or {}
        return [name for name, d in defs.items() if d.unique and name != "hs_object_id"]

    def _conflicts(
        self, object_type: str, props_list: list[dict[str, str]], own_ids: list[str | None]
    ) -> dict[int, dict[str, Any]]:
        """Inputs that would give a unique property a value another record already has."""
        conflicts: dict[int, dict[str, Any]] = {}
        for prop in self._unique_props(object_type):
            values = [p.get(prop) for p in props_list]
            existing = self.store.find(object_type, prop, [v for v in values if v])
            seen: dict[str, int] = {}
            for i, value in enumerate(values):
                if not value:
                    continue
                holders = [rid for rid in existing.get(value, []) if rid != own_ids[i]]
                other = holders[0] if holders else None
                if other is None and value in seen:
                    other = f"input {seen[value]} of this batch"
                seen.setdefault(value, i)
                if other is not None:
                    message = (
                        f'A {object_type} record with {prop} "{value}" already exists. '
                        f"Existing ID: {other}"
                    )
                    conflicts[i] = {
                        "status": "error",
                        "category": "CONFLICT",
                        "message": message,
                        "errors": [
                            {
                                "message": message,
                                "code": "CONFLICT",
                                "context": {"propertyName": [prop]},
                            }
                        ],
                        "context": {"propertyName": [prop]},
                    }
        return conflicts

    def batch_create(self, object_type: str, body: Any, fault: Fault | None) -> tuple[int, Any]:
        started = now_iso()
        inputs = self._inputs(body)
        traces = [item.get("objectWriteTraceId") for item in inputs]
        with self.write_lock:
            checked = [self._check_input(object_type, i, item) for i, item in enumerate(inputs)]
            conflicts = self._conflicts(object_type, [c[0] for c in checked], [None] * len(inputs))
            errors = [
                (i, err if err is not None else conflicts[i])
                for i, (_, _, err) in enumerate(checked)
                if err is not None or i in conflicts
            ]
            self._whole_batch_400(traces, errors)
            bad = {i for i, _ in errors}
            good = [
                (i, props, links) for i, (props, links, _) in enumerate(checked) if i not in bad
            ]
            status = "COMPLETE"
            if fault is not None and fault.canceled:
                good = good[: len(good) // 2]
                status = "CANCELED"
            created = self.store.create_many(object_type, [(p, lk) for _, p, lk in good])
        results = [
            self._echo(record, traces[i]) for (i, _, _), record in zip(good, created, strict=True)
        ]
        return self._batch_reply(201, results, traces, errors, started, status)

    def _resolve(
        self, object_type: str, inputs: list[dict[str, Any]], verb: str
    ) -> list[str | None]:
        """The record id each input addresses (by id, or by a unique idProperty)."""
        props = {item.get("idProperty") for item in inputs} - {None}
        if len(props) > 1:
            raise Reply(400, error("All inputs must use the same idProperty", "VALIDATION_ERROR"))
        prop = props.pop() if props else None
        ids = [str(_normalised(object_type, str(prop), str(i.get("id", "")))) for i in inputs]
        if len(set(ids)) != len(ids):
            raise Reply(
                400,
                error(
                    f"Duplicate IDs found in batch input: {ids}. IDs must be unique",
                    "VALIDATION_ERROR",
                ),
            )
        if prop is None or prop == "hs_object_id":
            present = self.store.exists(object_type, ids)
            # A merged-away id leads to the record it was merged into, as in HubSpot.
            merged = self.store.merged_into(object_type, [i for i in ids if i not in present])
            return [i if i in present else merged.get(i) for i in ids]
        if prop not in self._unique_props(object_type):
            raise Reply(
                400,
                error(
                    f"Unable to perform {verb} by non-unique property: {prop}", "VALIDATION_ERROR"
                ),
            )
        found = self.store.find(object_type, prop, ids)
        return [found[i][0] if i in found else None for i in ids]

    def batch_update(self, object_type: str, body: Any) -> tuple[int, Any]:
        started = now_iso()
        inputs = self._inputs(body)
        traces = [item.get("objectWriteTraceId") for item in inputs]
        with self.write_lock:
            targets = self._resolve(object_type, inputs, "update")
            checked = [
                self._check_input(object_type, i, item, associations=False)
                for i, item in enumerate(inputs)
            ]
            conflicts = self._conflicts(object_type, [c[0] for c in checked], targets)
            errors: list[tuple[int, dict[str, Any]]] = []
            for i, ((_, _, err), target) in enumerate(zip(checked, targets, strict=True)):
                if target is None:
                    err = error(
                        "Could not find the object to update. Check that the id is valid.",
                        "OBJECT_NOT_FOUND",
                        context={"ids": [str(inputs[i].get("id"))]},
                    )
                err = err or conflicts.get(i)
                if err is not None:
                    errors.append((i, err))
            self._whole_batch_400(traces, errors)
            bad = {i for i, _ in errors}
            results = []
            for i, ((props, _, _), target) in enumerate(zip(checked, targets, strict=True)):
                if i not in bad and target is not None:
                    record = self.store.update(object_type, target, props)
                    if record is not None:
                        results.append(self._echo(record, traces[i]))
        return self._batch_reply(200, results, traces, errors, started)

    def batch_upsert(self, object_type: str, body: Any) -> tuple[int, Any]:
        started = now_iso()
        inputs = self._inputs(body)
        traces = [item.get("objectWriteTraceId") for item in inputs]
        prop = inputs[0].get("idProperty") if inputs else None
        if inputs and (not prop or prop not in self._unique_props(object_type)):
            raise Reply(
                400,
                error(
                    f"Unable to perform update/upsert by non-unique property: {prop}",
                    "VALIDATION_ERROR",
                ),
            )
        with self.write_lock:
            targets = self._resolve(object_type, inputs, "update/upsert")
            checked = [
                self._check_input(object_type, i, item, associations=False)
                for i, item in enumerate(inputs)
            ]
            errors = [(i, err) for i, (_, _, err) in enumerate(checked) if err is not None]
            self._whole_batch_400(traces, errors)
            bad = {i for i, _ in errors}
            results = []
            for i, ((props, _, _), target) in enumerate(zip(checked, targets, strict=True)):
                if i in bad:
                    continue
                if target is not None:
                    record = self.store.update(object_type, target, props)
                    new = False
                else:
                    key = _normalised(object_type, str(prop), str(inputs[i]["id"]))
                    (record,) = self.store.create_many(
                        object_type, [({**props, str(prop): key}, [])]
                    )
                    new = True
                if record is not None:
                    results.append(self._echo({**record, "new": new}, traces[i]))
        return self._batch_reply(200, results, traces, errors, started)

    def batch_archive(self, object_type: str, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
            raise Reply(400, error("Invalid input JSON: expected inputs", "VALIDATION_ERROR"))
        if len(body["inputs"]) > MAX_BATCH_INPUTS:
            raise Reply(
                400,
                error(
                    f"The maximum number of inputs supported in a batch is {MAX_BATCH_INPUTS}.",
                    "VALIDATION_ERROR",
                ),
            )
        with self.write_lock:
            self.store.archive(object_type, [str(i.get("id", "")) for i in body["inputs"]])
        return 204, None

    def batch_read(self, object_type: str, body: Any) -> tuple[int, Any]:
        started = now_iso()
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
            raise Reply(400, error("Invalid input JSON: expected inputs", "VALIDATION_ERROR"))
        inputs = body["inputs"]
        if len(inputs) > MAX_BATCH_INPUTS:
            raise Reply(
                400,
                error(
                    f"The maximum number of inputs supported in a batch is {MAX_BATCH_INPUTS}.",
                    "VALIDATION_ERROR",
                ),
            )
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
            raise Reply(
                400, error("Invalid input JSON: properties must be a list", "VALIDATION_ERROR")
            )
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
        reply: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": now_iso(),
        }
        if not missing:
            return 200, reply
        reply["numErrors"] = 1
        reply["errors"] = [
            standard_error(
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": f"Could not get some {object_type} objects, they may be "
                    "deleted or not exist. Check that ids are valid.",
                    "context": {"ids": missing},
                }
            )
        ]
        return 207, reply

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

    def _inputs(self, body: Any) -> list[dict[str, Any]]:
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
            raise Reply(
                400,
                error(
                    "Invalid input JSON: expected an object with an inputs array.",
                    "VALIDATION_ERROR",
                ),
            )
        inputs: list[Any] = body["inputs"]
        if len(inputs) > MAX_BATCH_INPUTS:
            raise Reply(
                400,
                error(
                    f"The maximum number of inputs supported in a batch is {MAX_BATCH_INPUTS}. The "
                    f"number of inputs provided was {len(inputs)}.",
                    "VALIDATION_ERROR",
                ),
            )
        for n, item in enumerate(inputs):
            if not isinstance(item, dict) or not isinstance(item.get("properties", {}), dict):
                raise Reply(
                    400,
                    error(
                        f"Invalid input JSON: inputs[{n}] must be an object "
                        "with a properties object.",
                        "VALIDATION_ERROR",
                    ),
                )
            for name, value in item.get("properties", {}).items():
                if not isinstance(value, str):
                    kind = type(value).__name__.replace("int", "number").replace("float", "number")
                    raise Reply(
                        400,
                        error(
                            f"Invalid input JSON: inputs[{n}].properties.{name} must be a string, "
                            f"not a {kind}.",
                            "VALIDATION_ERROR",
                        ),
                    )
        return inputs

    def _check_input(
        self, object_type: str, n: int, item: dict[str, Any], *, associations: bool = True
    ) -> tuple[dict[str, str], list[tuple[str, str, str, int]], dict[str, Any] | None]:
        props: dict[str, str] = {
            name: _normalised(object_type, name, value)
            for name, value in item.get("properties", {}).items()
        }
        defs = self.portal.property_defs(object_type)
        problems: list[dict[str, Any]] = []
        for name, value in props.items():
            code, message = _check_value(defs.get(name), name, value)
            if code:
                problems.append(
                    {"message": message, "code": code, "context": {"propertyName": [name]}}
                )
        if problems:
            listing = json.dumps(
                [
                    {
                        "isValid": False,
                        "message": p["message"],
                        "error": p["code"],
                        "name": p["context"]["propertyName"][0],
                    }
                    for p in problems
                ]
            )
            return (
                props,
                [],
                {
                    "status": "error",
                    "category": "VALIDATION_ERROR",
                    "message": f"Property values were not valid: {listing}",
                    "errors": problems,
                    "context": {
                        "propertyName": [p["context"]["propertyName"][0] for p in problems]
                    },
                },
            )
        if not associations:
            return props, [], None
        links, error = self._check_associations(object_type, item.get("associations", []))
        return props, links, error

    def _check_associations(
        self, object_type: str, raw: Any
    ) -> tuple[list[tuple[str, str, str, int]], dict[str, Any] | None]:
        if not isinstance(raw, list):
            raw = []
        links: list[tuple[str, str, str, int]] = []
        bad_ids: list[str] = []
        bad_types: list[str] = []
        for assoc in raw:
            to_id = str(((assoc or {}).get("to") or {}).get("id", ""))
            for t in (assoc or {}).get("types") or []:
                category = str(t.get("associationCategory", ""))
                type_id = t.get("associationTypeId")
                target = None
                if category in AssociationCategory.__members__ and isinstance(type_id, int):
                    target = self.portal.association_target(object_type, category, type_id)
                if target is None:
                    bad_types.append(str(type_id))
                    continue
                if not self.store.exists(target, [to_id]):
                    bad_ids.append(to_id)
                    continue
                links.append((target, to_id, category, type_id))
        if not bad_ids and not bad_types:
            return links, None
        context: dict[str, list[str]] = {}
        if bad_ids:
            context["INVALID_OBJECT_IDS"] = sorted(set(bad_ids))
        if bad_types:
            context["INVALID_ASSOCIATION_TYPE_ID"] = sorted(set(bad_types))
        detail = "; ".join(f"{k}: {', '.join(v)}" for k, v in context.items())
        return [], {
            "status": "error",
            "category": "VALIDATION_ERROR",
            "message": "One or more associations are invalid",
            "errors": [
                {
                    "message": f"One or more associations are invalid ({detail})",
                    "code": "INVALID_ASSOCIATION",
                    "context": context,
                }
            ],
            "context": context,
        }

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
            for to_id, category, type_id, outgoing in self.store.linked(
                object_type, record["id"], to_type
            ):
                kind = (
                    f"{_singular(object_type)}_to_{_singular(to_type)}"
                    if category == "HUBSPOT_DEFINED"
                    else str(type_id)
                )
                if outgoing or category == "HUBSPOT_DEFINED":
                    seen[(to_id, kind)] = None
            if seen:
                links[to_name] = {"results": [{"id": i, "type": k} for i, k in seen]}
        return {**shaped, "associations": links} if links else shaped
