"""The sandbox's batch writes: create, update, upsert and archive, with HubSpot's checks of
every input and its reply shapes (201/207 with per-input errors, whole-batch 400s, unique-value
conflicts, a contact create's whole-batch 409, line items filled from their product, shuffled
results)."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from ..core.hubspot import MAX_BATCH_INPUTS, AssociationCategory, stored_number
from .catalogue import value_problems
from .checks import _check_value, _normalised
from .config import Fault
from .objects import ObjectEndpoints, batch_inputs
from .portal import PropertyDef
from .replies import Reply, batch_response, error, refused_whole
from .rules import rule_problems
from .store import now_iso

__all__ = ["BatchWrites"]

_Link = tuple[str, str, str, int]
"""A link an input asks for: (to type, to id, category, type id)."""
_Checked = tuple[dict[str, str], list[_Link], dict[str, Any] | None]
"""An input as checked: its properties as stored, its links, and HubSpot's error or None."""

REFUSED_WHOLE: dict[str, tuple[str, str]] = {"contacts": ("email", "Contact")}
"""Types whose batch create HubSpot refuses whole (409 CONFLICT, nothing written) when an input
gives this unique property a value a record holds already: type -> (property, the word its
message opens with). Other unique properties are refused input by input."""
FROM_PRODUCT = ("name", "price", "description")
"""What a line item takes from the product its hs_product_id names, where its input gives none:
HubSpot's products guide ("it will inherit property values from the product, such as price")
and its line items v1 example (name, price and description). hs_sku is not verified: left."""


class BatchWrites(ObjectEndpoints):
    """The batch write endpoints of `Sandbox`."""

    def _whole_batch_400(self, traces: list[Any], errors: list[tuple[int, dict[str, Any]]]) -> None:
        """Without a unique trace id on every input, one bad input fails the whole batch."""
        all_traced = all(isinstance(t, str) and t for t in traces) and len(set(traces)) == len(
            traces
        )
        if errors and not (all_traced and self.config.multi_status):
            raise refused_whole(errors[0][1])

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
        traced = [
            {**err, "context": {**err.get("context", {}), "objectWriteTraceId": [traces[i]]}}
            for i, err in errors
        ]
        return (207 if errors else ok_status), batch_response(results, traced, started, status)

    def _echo(self, record: dict[str, Any], trace: Any) -> dict[str, Any]:
        """A result with its input's trace id when `echo_trace_ids` is on: a string, as the
        schema types it, whatever JSON the input sent it as."""
        if self.config.echo_trace_ids and trace:
            return {**record, "objectWriteTraceId": str(trace)}
        return record

    def _conflicts(
        self,
        object_type: str,
        props_list: list[dict[str, str]],
        own_ids: list[str | None],
        skip: str | None = None,
    ) -> dict[int, dict[str, Any]]:
        """Inputs that would give a unique property (other than `skip`) a value another record
        already has."""
        conflicts: dict[int, dict[str, Any]] = {}
        for prop in self._unique_props(object_type):
            if prop == skip:
                continue
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

    def _refuse_held_key(self, object_type: str, inputs: list[tuple[int, dict[str, str]]]) -> None:
        """HubSpot's 409 for a create whose input (n, properties) gives the property
        REFUSED_WHOLE names (a contact's email) a value a record holds, or two inputs the same
        one: the batch is refused whole, naming the first such input (HubSpot names one)."""
        rule = REFUSED_WHOLE.get(object_type)
        if rule is None:
            return
        prop, noun = rule
        values = [(n, props[prop]) for n, props in inputs if props.get(prop)]
        held = self.store.find(object_type, prop, [v for _, v in values])
        first: dict[str, int] = {}
        for n, value in values:
            if value in held:
                message = f"{noun} already exists. Existing ID: {held[value][0]}"
            elif value in first:
                # HubSpot answers 409 "Contact already exists" here too; its wording is not
                # known, so this one says which inputs collide.
                message = (
                    f"{noun} already exists. inputs[{first[value]}] and inputs[{n}] give the "
                    f"same {prop}: {value}"
                )
            else:
                first[value] = n
                continue
            raise Reply(409, error(message, "CONFLICT"))

    def _with_product(self, object_type: str, checked: _Checked, target: str | None) -> _Checked:
        """A line item's input with what it takes from the product its hs_product_id names
        (FROM_PRODUCT), or HubSpot's error when that names no live product. An update (of
        record `target`) is looked at only when it changes the product."""
        props, links, err = checked
        product_id = props.get("hs_product_id")
        if err is not None or object_type != "line_items" or not product_id:
            return checked
        if target is not None:
            current = self.store.get(object_type, target)
            if current is not None and current["properties"].get("hs_product_id") == product_id:
                return checked
        product = self.store.get("products", product_id)
        if product is None:
            # UNVERIFIED: HubSpot's code and wording for an unknown product were not found;
            # the shape is that of its other property value errors.
            problem = {
                "message": f"No product with id {product_id} exists.",
                "code": "INVALID_PRODUCT_ID",
                "context": {"propertyName": ["hs_product_id"]},
            }
            return props, [], _invalid_properties([problem])
        own = product["properties"]
        taken = {name: own[name] for name in FROM_PRODUCT if own.get(name) and name not in props}
        return {**props, **taken}, links, None

    def batch_create(self, object_type: str, body: Any, fault: Fault | None) -> tuple[int, Any]:
        started = now_iso()
        inputs = self._inputs(body)
        traces = [item.get("objectWriteTraceId") for item in inputs]
        with self.write_lock:
            checked = [
                self._with_product(object_type, self._check_input(object_type, i, item), None)
                for i, item in enumerate(inputs)
            ]
            # A property refused whole is checked once the inputs are known valid (below).
            whole = REFUSED_WHOLE[object_type][0] if object_type in REFUSED_WHOLE else None
            conflicts = self._conflicts(
                object_type, [c[0] for c in checked], [None] * len(inputs), skip=whole
            )
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
            self._refuse_held_key(object_type, [(i, props) for i, props, _ in good])
            status = "COMPLETE"
            if fault is not None and fault.canceled:
                good = good[: len(good) // 2]
                status = "CANCELED"
            created = self.store.create_many(
                object_type, [(p, lk) for _, p, lk in good], self.writer
            )
        results = [
            self._echo(record, traces[i]) for (i, _, _), record in zip(good, created, strict=True)
        ]
        return self._batch_reply(201, results, traces, errors, started, status)

    def batch_update(self, object_type: str, body: Any) -> tuple[int, Any]:
        started = now_iso()
        inputs = self._stored_ids(object_type, self._inputs(body))
        traces = [item.get("objectWriteTraceId") for item in inputs]
        with self.write_lock:
            targets = self._resolve(object_type, inputs, "update/upsert")
            checked = [
                self._with_product(
                    object_type,
                    self._check_input(object_type, i, item, associations=False, target=target),
                    target,
                )
                for i, (item, target) in enumerate(zip(inputs, targets, strict=True))
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
        inputs = self._stored_ids(object_type, self._inputs(body))
        traces = [item.get("objectWriteTraceId") for item in inputs]
        prop = inputs[0].get("idProperty") if inputs else None
        if inputs and (not prop or prop not in self._unique_props(object_type)):
            raise self.non_unique(object_type, prop, "update/upsert")
        with self.write_lock:
            targets = self._resolve(object_type, inputs, "update/upsert")
            checked = [
                self._check_input(object_type, i, item, associations=False, target=target)
                for i, (item, target) in enumerate(zip(inputs, targets, strict=True))
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
                        object_type, [({**props, str(prop): key}, [])], self.writer
                    )
                    new = True
                if record is not None:
                    results.append(self._echo({**record, "new": new}, traces[i]))
        return self._batch_reply(200, results, traces, errors, started)

    def batch_archive(self, object_type: str, body: Any) -> tuple[int, Any]:
        inputs = batch_inputs(body)
        with self.write_lock:
            self.store.archive(object_type, [str(i.get("id", "")) for i in inputs])
        return 204, None

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

    def _stored_ids(self, object_type: str, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The inputs, each addressed (`id`) by its idProperty's value as HubSpot stores it:
        a record whose unique number property holds `7` is the one `007` names, and an upsert
        that creates one stores `7`."""
        defs = self.portal.property_defs(object_type)
        return [
            {**item, "id": stored_number(str(item["id"]))}
            if _is_number(defs.get(str(item.get("idProperty")))) and "id" in item
            else item
            for item in inputs
        ]

    def _check_input(
        self,
        object_type: str,
        n: int,
        item: dict[str, Any],
        *,
        associations: bool = True,
        target: str | None = None,
    ) -> _Checked:
        """An input checked as HubSpot checks it (`target`: the record an update writes)."""
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
        current = partial(self._properties_of, object_type, target)
        problems += value_problems(self.config, object_type, defs, props, current)
        problems += rule_problems(
            self.config.validation_rules.get(object_type, {}),
            self.config.required_when.get(object_type, {}),
            props,
            version=self.request_version,
            creating=associations,
        )
        if problems:
            return props, [], _invalid_properties(problems)
        props = _as_stored(defs, props)
        if not associations:
            return props, [], None
        links, error = self._check_associations(object_type, item.get("associations", []))
        return props, links, error

    def _properties_of(self, object_type: str, target: str | None) -> dict[str, str] | None:
        """The properties of the record an update writes (None for a create)."""
        record = self.store.get(object_type, target) if target is not None else None
        return record["properties"] if record is not None else None

    def _check_associations(
        self, object_type: str, raw: Any
    ) -> tuple[list[_Link], dict[str, Any] | None]:
        if not isinstance(raw, list):
            raw = []
        links: list[_Link] = []
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


def _is_number(prop: PropertyDef | None) -> bool:
    """Whether `prop` is a property of type number (HubSpot stores its values as numbers)."""
    return prop is not None and prop.type == "number"


def _as_stored(defs: dict[str, PropertyDef], props: dict[str, str]) -> dict[str, str]:
    """Valid properties as HubSpot stores them: a number property's value as the number it
    is (`stored_number`), which every later read, search and unique-value check then sees."""
    return {
        name: stored_number(value) if _is_number(defs.get(name)) else value
        for name, value in props.items()
    }


def _invalid_properties(problems: list[dict[str, Any]]) -> dict[str, Any]:
    """HubSpot's error for an input with property values it refuses (each problem a message,
    a code and the property's name in its context)."""
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
    return {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": f"Property values were not valid: {listing}",
        "errors": problems,
        "context": {"propertyName": [p["context"]["propertyName"][0] for p in problems]},
    }
