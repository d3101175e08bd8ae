"""The sandbox's associations batch API (`/crm/associations/{version}/{from}/{to}/batch/...`
and `/crm/v4/associations/...`): create, associate/default, archive, labels/archive, read.

As in HubSpot: type ids are checked against the object pair; creating a pair that exists adds
only the types it lacks; archive removes every type between a pair, labels/archive only those
named (the unlabelled default type takes the labelled ones with it); HUBSPOT_DEFINED links read
from both ends; reads page per id; unknown ids are per-input errors of a 207. On the date-based
paths every write answers HubSpot's `BatchResponse`, whose `errors` may name inputs that were
not carried out although the status is 200 or 201 (never trust the status alone); on the
numbered (v4) paths a create answers 207 with them and archives 204.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.hubspot import (
    DEFAULT_ASSOCIATION_TYPES,
    MAX_ASSOCIATION_INPUTS,
    MAX_ASSOCIATION_READS,
    OBJECT_TYPE_IDS,
    AssociationCategory,
)
from .replies import Reply, batch_response, error, refused_whole
from .store import now_iso

if TYPE_CHECKING:
    from .emulator import Emulator

__all__ = ["OPERATIONS", "associations_batch"]

OPERATIONS = ("create", "associate/default", "archive", "labels/archive", "read")


_Link = tuple[str, str, list[tuple[str, int]]]
"""One input of a batch: the from id, the to id and its association types (category, id)."""


def associations_batch(
    sandbox: Emulator, from_type: str, to_type: str, operation: str, body: Any, *, dated: bool
) -> tuple[int, Any]:
    """HubSpot's answer to one associations batch request: its status and body (`dated`: asked
    at a date version rather than at /crm/v4)."""
    started = now_iso()
    limit = MAX_ASSOCIATION_READS if operation == "read" else MAX_ASSOCIATION_INPUTS
    inputs = _inputs(body, limit)
    if operation == "read":
        return _read(sandbox, from_type, to_type, inputs, started)
    if operation == "archive":
        return _archive(sandbox, from_type, to_type, inputs, started, dated)
    links = [
        (
            _id(item.get("from"), n, "from"),
            _id(item.get("to"), n, "to"),
            [("HUBSPOT_DEFINED", _default_type(from_type, to_type))]
            if operation == "associate/default"
            else _types(item.get("types"), n),
        )
        for n, item in enumerate(inputs)
    ]
    if operation == "labels/archive":
        return _archive_labels(sandbox, from_type, to_type, links, started, dated)
    return _link(sandbox, operation, from_type, to_type, links, started, dated)


def _archive(
    sandbox: Emulator,
    from_type: str,
    to_type: str,
    inputs: list[dict[str, Any]],
    started: str,
    dated: bool,
) -> tuple[int, Any]:
    """Remove every association type between each pair named: a 204, or on a date-based path
    a 200 naming the pairs refused."""
    pairs: list[tuple[str, str, list[tuple[str, int]] | None]] = []
    for n, item in enumerate(inputs):
        from_id = _id(item.get("from"), n, "from")
        targets = item.get("to")
        if not isinstance(targets, list):
            raise _bad(f"inputs[{n}].to must be an array of objects with an id")
        pairs += [(from_id, _id(t, n, f"to[{m}]"), None) for m, t in enumerate(targets)]
    refused = [p for p in pairs if dated and sandbox.refuse_link()]
    with sandbox.write_lock:
        sandbox.store.unlink(from_type, to_type, [p for p in pairs if p not in refused])
    errors = [_refusal(from_type, f, to_type, t, "unlinked") for f, t, _ in refused]
    return _written(errors, started, done=[])


def _archive_labels(
    sandbox: Emulator,
    from_type: str,
    to_type: str,
    links: list[_Link],
    started: str,
    dated: bool,
) -> tuple[int, Any]:
    """Remove the types named of each valid pair: a 204; on a numbered path a 400 with the
    first input's error when any was invalid (the valid ones are removed all the same), on a
    date-based one a 200 naming the inputs invalid or refused."""
    with sandbox.write_lock:
        good, errors = _valid(sandbox, from_type, to_type, links)
        refused = [g for g in good if dated and sandbox.refuse_link()]
        done: list[tuple[str, str, list[tuple[str, int]] | None]] = [
            (f, t, list(k)) for f, t, k in good if (f, t, k) not in refused
        ]
        sandbox.store.unlink(from_type, to_type, done)
    if errors and not dated:
        raise refused_whole(errors[0])
    errors += [_refusal(from_type, f, to_type, t, "unlinked") for f, t, _ in refused]
    return _written(errors, started, done=[])


def _link(
    sandbox: Emulator,
    operation: str,
    from_type: str,
    to_type: str,
    links: list[_Link],
    started: str,
    dated: bool,
) -> tuple[int, Any]:
    """Create the valid links (create, associate/default): a 201 or 200, with the errors of
    the invalid (and refused) inputs: in a 207 on a numbered path, in the 200 itself on a
    date-based one."""
    with sandbox.write_lock:
        good, errors = _valid(sandbox, from_type, to_type, links)
        refused = [g for g in good if dated and sandbox.refuse_link()]
        good = [g for g in good if g not in refused]
        after = sandbox.store.link(from_type, to_type, good)
        done = [
            _result(sandbox, operation, from_type, f, to_type, t, now)
            for (f, t, _), now in zip(good, after, strict=True)
        ]
    errors += [_refusal(from_type, f, to_type, t, "linked") for f, t, _ in refused]
    if errors:  # on a date-based path the 200 itself carries them
        return _written(errors, started, done=done, status=200 if dated else 207)
    return _written(errors, started, done=done, status=201 if operation == "create" else 200)


def _written(
    errors: list[dict[str, Any]],
    started: str,
    *,
    done: list[dict[str, Any]],
    status: int | None = None,
) -> tuple[int, Any]:
    """The answer to a write: `status` (a create's), or for an archive 204 when nothing was
    refused, else (on a date-based path) a 200; the body is HubSpot's BatchResponse with the
    errors of the inputs not carried out."""
    if status is None and not errors:
        return 204, None
    return (200 if status is None else status), batch_response(done, errors, started)


def _refusal(from_type: str, from_id: str, to_type: str, to_id: str, done: str) -> dict[str, Any]:
    """HubSpot's per-input error for an association write it would not carry out although
    the input was valid (the portal's association limit for the record was reached)."""
    message = (
        f"The association limit for {from_type} {from_id} to {to_type} was reached: "
        f"{to_id} was not {done}"
    )
    return _pair_error(message, from_id, to_id)


def _valid(
    sandbox: Emulator, from_type: str, to_type: str, links: list[_Link]
) -> tuple[list[_Link], list[dict[str, Any]]]:
    """The inputs that can be carried out, and HubSpot's errors for the others (under the
    write lock, so no write comes between the check and the change)."""
    present = {
        kind: sandbox.store.exists(kind, ids)
        for kind, ids in (
            (from_type, [f for f, _, _ in links]),
            (to_type, [t for _, t, _ in links]),
        )
    }
    good: list[_Link] = []
    errors: list[dict[str, Any]] = []
    for from_id, to_id, types in links:
        problem = _problem(sandbox, from_type, from_id, to_type, to_id, types, present)
        if problem is not None:
            errors.append(problem)
        else:
            good.append((from_id, to_id, types))
    return good, errors


def _inputs(body: Any, limit: int) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise _bad("expected an object with an inputs array.")
    inputs: list[Any] = body["inputs"]
    if len(inputs) > limit:
        raise Reply(
            400,
            error(
                f"The maximum number of inputs supported in a batch is {limit}. The number of "
                f"inputs provided was {len(inputs)}.",
                "VALIDATION_ERROR",
            ),
        )
    for n, item in enumerate(inputs):
        if not isinstance(item, dict):
            raise _bad(f"inputs[{n}] must be an object.")
    return inputs


def _bad(detail: str) -> Reply:
    return Reply(400, error(f"Invalid input JSON: {detail}", "VALIDATION_ERROR"))


def _id(value: Any, n: int, field: str) -> str:
    if not isinstance(value, dict) or not isinstance(value.get("id"), str | int):
        raise _bad(f"inputs[{n}].{field} must be an object with an id.")
    return str(value["id"])


def _types(raw: Any, n: int) -> list[tuple[str, int]]:
    if not isinstance(raw, list) or not raw:
        raise _bad(f"inputs[{n}].types must be a non-empty array.")
    types = []
    for t in raw:
        category = t.get("associationCategory") if isinstance(t, dict) else None
        type_id = t.get("associationTypeId") if isinstance(t, dict) else None
        if category not in AssociationCategory.__members__ or not isinstance(type_id, int):
            raise _bad(
                f"inputs[{n}].types: each needs an associationCategory "
                f"({', '.join(AssociationCategory.__members__)}) and an integer associationTypeId."
            )
        types.append((str(category), type_id))
    return types


def _default_type(from_type: str, to_type: str) -> int:
    default = DEFAULT_ASSOCIATION_TYPES.get(from_type, {}).get(to_type)
    if default is None:
        raise Reply(
            400,
            error(
                f"There is no default association type from {from_type} to {to_type}.",
                "VALIDATION_ERROR",
            ),
        )
    return default


def _problem(
    sandbox: Emulator,
    from_type: str,
    from_id: str,
    to_type: str,
    to_id: str,
    types: list[tuple[str, int]],
    present: dict[str, set[str]],
) -> dict[str, Any] | None:
    """Why one input cannot be carried out (HubSpot's per-input error), or None.
    `present`: the ids of the batch that exist, per object type."""
    wrong = [
        str(n) for c, n in types if sandbox.portal.association_target(from_type, c, n) != to_type
    ]
    if wrong:
        context = {"INVALID_ASSOCIATION_TYPE_ID": wrong}
        message = (
            f"association type id {', '.join(wrong)} does not go from {from_type} to {to_type}"
        )
    else:
        missing = [
            i for kind, i in ((from_type, from_id), (to_type, to_id)) if i not in present[kind]
        ]
        if not missing:
            return _second_parent(sandbox, from_type, from_id, to_type, to_id)
        context = {"INVALID_OBJECT_IDS": missing}
        message = f"No object with id {', '.join(missing)} exists"
    return {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": f"One or more associations are invalid ({message})",
        "errors": [{"message": message, "code": "INVALID_ASSOCIATION", "context": context}],
        "context": context,
    }


_PARENTS = frozenset({"deals", "orders", "carts", "quotes"})
"""What a line item belongs to: one record of each at most."""


def _second_parent(
    sandbox: Emulator, from_type: str, from_id: str, to_type: str, to_id: str
) -> dict[str, Any] | None:
    """HubSpot's error for a link that would give a line item a second parent of a type (it
    belongs to one order, deal, cart or quote), or None."""
    if from_type == "line_items" and to_type in _PARENTS:
        item, parent_type, parent = from_id, to_type, to_id
    elif to_type == "line_items" and from_type in _PARENTS:
        item, parent_type, parent = to_id, from_type, from_id
    else:
        return None
    held = {i for i, _, _, _ in sandbox.store.linked("line_items", item, parent_type)} - {parent}
    if not held:
        return None
    message = (
        f"A line item belongs to one {parent_type.rstrip('s')}: line item {item} is associated "
        f"with {parent_type} {', '.join(sorted(held))}; remove that association first"
    )
    return _pair_error(message, from_id, to_id)


def _pair_error(message: str, from_id: str, to_id: str) -> dict[str, Any]:
    """HubSpot's per-input error for a valid pair it would not link, naming the pair."""
    context = {"fromObjectId": [from_id], "toObjectId": [to_id]}
    return {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": message,
        "errors": [{"message": message, "code": "ASSOCIATION_LIMIT_EXCEEDED", "context": context}],
        "context": context,
    }


def _type_id(object_type: str, sandbox: Emulator) -> str:
    return OBJECT_TYPE_IDS.get(object_type) or sandbox.portal.custom_type_id(object_type)


def _result(
    sandbox: Emulator,
    operation: str,
    from_type: str,
    from_id: str,
    to_type: str,
    to_id: str,
    types: list[tuple[str, int]],
) -> dict[str, Any]:
    if operation == "associate/default":
        return {
            "from": {"id": from_id},
            "to": {"id": to_id},
            "associationSpec": {
                "associationCategory": "HUBSPOT_DEFINED",
                "associationTypeId": _default_type(from_type, to_type),
            },
        }
    return {
        "fromObjectTypeId": _type_id(from_type, sandbox),
        "fromObjectId": from_id,
        "toObjectTypeId": _type_id(to_type, sandbox),
        "toObjectId": to_id,
        "labels": [
            label
            for c, n in types
            if (label := sandbox.portal.label_of(from_type, to_type, c, n)) is not None
        ],
    }


def _read(
    sandbox: Emulator, from_type: str, to_type: str, inputs: list[dict[str, Any]], started: str
) -> tuple[int, Any]:
    """Each record's links, a page per record: a 200, or a 207 naming the ids not found."""
    results, missing = [], []
    for n, item in enumerate(inputs):
        if not isinstance(item.get("id"), str | int):
            raise _bad(f"inputs[{n}] must be an object with an id.")
        rid = str(item["id"])
        if not sandbox.store.exists(from_type, [rid]):
            missing.append(rid)
            continue
        results.append(_read_one(sandbox, from_type, to_type, rid, str(item.get("after") or "")))
    errors = [
        {
            "category": "OBJECT_NOT_FOUND",
            "message": f"No {from_type} with id {rid} exists",
            "context": {"fromObjectId": [rid]},
        }
        for rid in missing
    ]
    return (207 if missing else 200), batch_response(results, errors, started)


def _read_one(
    sandbox: Emulator, from_type: str, to_type: str, rid: str, after: str
) -> dict[str, Any]:
    """One record's page of links to `to_type`, from the one after `after`, with their types
    and labels and the next page's `after` when there is one."""
    page = sandbox.config.association_page_size
    by_target: dict[str, list[tuple[str, int]]] = {}
    for to_id, category, type_id, _ in sandbox.store.linked(from_type, rid, to_type):
        by_target.setdefault(to_id, [])
        if (category, type_id) not in by_target[to_id]:
            by_target[to_id].append((category, type_id))
    ordered = sorted(by_target, key=lambda i: (len(i), i))
    start = ordered.index(after) + 1 if after in ordered else 0
    chunk = ordered[start : start + page]
    entry: dict[str, Any] = {
        "from": {"id": rid},
        "to": [
            {
                "toObjectId": to_id,
                "associationTypes": [
                    {"category": c, "typeId": t}
                    | (
                        {"label": label}
                        if (label := sandbox.portal.label_of(from_type, to_type, c, t))
                        else {}
                    )
                    for c, t in by_target[to_id]
                ],
            }
            for to_id in chunk
        ],
    }
    if start + page < len(ordered):
        entry["paging"] = {"next": {"after": chunk[-1]}}
    return entry
