"""The sandbox's associations batch API behaves as HubSpot's: both path families, type ids
checked against the object pair, pairs never duplicated, archive versus labels/archive,
HUBSPOT_DEFINED links read from both ends, paged reads, 207s for unknown ids, and answers that
match HubSpot's response schemas."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from importer.sandbox import Sandbox

from .test_sandbox_fidelity import call, conforms

A = "/crm/associations/2026-03"
CART_CONTACT = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 586}
PRIMARY_BUYER = {"associationCategory": "USER_DEFINED", "associationTypeId": 12}


def carts(box: Sandbox, n: int) -> list[str]:
    body = {
        "inputs": [
            {"properties": {"hs_external_cart_id": f"C{i}"}, "associations": []} for i in range(n)
        ]
    }
    r = call(box, "POST", "/crm/objects/2026-03/carts/batch/create", body)
    assert r.status_code == 201, r.text
    return sorted((x["id"] for x in r.json()["results"]), key=int)


def link(cart: str, contact: str, *types: dict[str, Any]) -> dict[str, Any]:
    return {"from": {"id": cart}, "to": {"id": contact}, "types": list(types)}


def read(box: Sandbox, from_type: str, to_type: str, *ids: str) -> dict[str, dict[str, Any]]:
    r = call(
        box, "POST", f"{A}/{from_type}/{to_type}/batch/read", {"inputs": [{"id": i} for i in ids]}
    )
    assert r.status_code in (200, 207), r.text
    return {
        res["from"]["id"]: {
            str(t["toObjectId"]): sorted(
                (a["category"], a["typeId"]) for a in t["associationTypes"]
            )
            for t in res["to"]
        }
        for res in r.json()["results"]
    }


def test_create_read_and_archive_links(sandbox: Sandbox) -> None:
    c1, c2 = carts(sandbox, 2)
    body = {
        "inputs": [link(c1, "1001", CART_CONTACT, PRIMARY_BUYER), link(c2, "1002", CART_CONTACT)]
    }
    r = call(sandbox, "POST", f"{A}/carts/contacts/batch/create", body)
    assert r.status_code == 201, r.text
    conforms(r.json(), "BatchResponseLabelsBetweenObjectPair")
    labels = {x["fromObjectId"]: x["labels"] for x in r.json()["results"]}
    assert labels == {c1: ["Primary buyer"], c2: []}
    assert {x["fromObjectTypeId"] for x in r.json()["results"]} == {"0-142"}

    # Creating a pair again adds nothing; read from either end (the default type's pair).
    again = call(
        sandbox,
        "POST",
        f"{A}/carts/contacts/batch/create",
        {"inputs": [link(c2, "1002", CART_CONTACT)]},
    )
    assert again.status_code == 201
    assert read(sandbox, "carts", "contacts", c1, c2) == {
        c1: {"1001": [("HUBSPOT_DEFINED", 586), ("USER_DEFINED", 12)]},
        c2: {"1002": [("HUBSPOT_DEFINED", 586)]},
    }
    assert read(sandbox, "contacts", "carts", "1002") == {"1002": {c2: [("HUBSPOT_DEFINED", 587)]}}

    # labels/archive removes only the label; archive removes every type between the pair.
    r = call(
        sandbox,
        "POST",
        f"{A}/carts/contacts/batch/labels/archive",
        {"inputs": [link(c1, "1001", PRIMARY_BUYER)]},
    )
    assert r.status_code == 204
    assert read(sandbox, "carts", "contacts", c1) == {c1: {"1001": [("HUBSPOT_DEFINED", 586)]}}
    r = call(
        sandbox,
        "POST",
        f"{A}/contacts/carts/batch/archive",
        {"inputs": [{"from": {"id": "1002"}, "to": [{"id": c2}]}]},
    )
    assert r.status_code == 204
    assert read(sandbox, "carts", "contacts", c2) == {c2: {}}


def test_removing_the_default_type_removes_the_labels_too(sandbox: Sandbox) -> None:
    (c1,) = carts(sandbox, 1)
    call(
        sandbox,
        "POST",
        f"{A}/carts/contacts/batch/create",
        {"inputs": [link(c1, "1001", CART_CONTACT, PRIMARY_BUYER)]},
    )
    r = call(
        sandbox,
        "POST",
        f"{A}/carts/contacts/batch/labels/archive",
        {"inputs": [link(c1, "1001", CART_CONTACT)]},
    )
    assert r.status_code == 204
    assert read(sandbox, "carts", "contacts", c1) == {c1: {}}


def test_associate_default(sandbox: Sandbox) -> None:
    (c1,) = carts(sandbox, 1)
    body = {"inputs": [{"from": {"id": c1}, "to": {"id": "1003"}}]}
    r = call(sandbox, "POST", f"{A}/carts/contacts/batch/associate/default", body)
    assert r.status_code == 200, r.text
    conforms(r.json(), "BatchResponsePublicDefaultAssociation")
    assert read(sandbox, "carts", "contacts", c1) == {c1: {"1003": [("HUBSPOT_DEFINED", 586)]}}


@pytest.mark.parametrize(
    ("prefix", "status"),
    [(A, 200), ("/crm/v4/associations", 207)],
    ids=["date-based-200-with-errors", "v4-207"],
)
def test_unknown_ids_and_wrong_type_ids_fail_per_input(
    make_sandbox: Callable[..., Sandbox], prefix: str, status: int
) -> None:
    # On the date-based paths HubSpot answers 200 and names the failed inputs in `errors`:
    # the status alone says nothing of them.
    sandbox = make_sandbox(legacy_paths=True)
    (c1,) = carts(sandbox, 1)
    body = {
        "inputs": [
            link(c1, "1001", CART_CONTACT),
            link(c1, "999999", CART_CONTACT),
            link(c1, "1002", {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 590}),
        ]
    }
    r = call(sandbox, "POST", f"{prefix}/carts/contacts/batch/create", body)
    assert r.status_code == status, r.text
    assert r.json()["numErrors"] == 2
    conforms(r.json(), "BatchResponseLabelsBetweenObjectPairWithErrors")
    contexts = [e["context"] for e in r.json()["errors"]]
    assert {"INVALID_OBJECT_IDS": ["999999"]} in contexts
    assert {"INVALID_ASSOCIATION_TYPE_ID": ["590"]} in contexts  # 590 goes cart -> line item
    assert read(sandbox, "carts", "contacts", c1) == {c1: {"1001": [("HUBSPOT_DEFINED", 586)]}}

    unknown = call(
        sandbox,
        "POST",
        f"{A}/carts/contacts/batch/read",
        {"inputs": [{"id": c1}, {"id": "424242"}]},
    )
    assert unknown.status_code == 207
    conforms(unknown.json(), "BatchResponsePublicAssociationMultiWithLabelWithErrors")
    assert unknown.json()["errors"][0]["context"] == {"fromObjectId": ["424242"]}


def test_reads_page_per_id(make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(association_page_size=2)
    (c1,) = carts(box, 1)
    contacts = [str(1001 + i) for i in range(5)]
    call(
        box,
        "POST",
        f"{A}/carts/contacts/batch/create",
        {"inputs": [link(c1, c, CART_CONTACT) for c in contacts]},
    )
    seen: list[str] = []
    after = None
    for _ in range(10):  # bounded: 3 pages expected
        item = {"id": c1, **({"after": after} if after else {})}
        r = call(box, "POST", f"{A}/carts/contacts/batch/read", {"inputs": [item]})
        conforms(r.json(), "BatchResponsePublicAssociationMultiWithLabel")
        (result,) = r.json()["results"]
        seen += [t["toObjectId"] for t in result["to"]]
        after = result.get("paging", {}).get("next", {}).get("after")
        if not after:
            break
    assert seen == contacts


@pytest.mark.parametrize(
    ("operation", "limit"), [("create", 100), ("archive", 100), ("read", 1000)]
)
def test_batch_sizes_are_limited(sandbox: Sandbox, operation: str, limit: int) -> None:
    item: dict[str, Any] = (
        {"id": "1"} if operation == "read" else {"from": {"id": "1"}, "to": [{"id": "2"}]}
    )
    r = call(
        sandbox, "POST", f"{A}/carts/contacts/batch/{operation}", {"inputs": [item] * (limit + 1)}
    )
    assert r.status_code == 400
    assert f"maximum number of inputs supported in a batch is {limit}" in r.json()["message"]


def test_the_numbered_path_family_serves_them_too(make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(legacy_paths=True)
    (c1,) = carts(box, 1)
    r = call(
        box,
        "POST",
        "/crm/v4/associations/carts/contacts/batch/create",
        {"inputs": [link(c1, "1001", CART_CONTACT)]},
    )
    assert r.status_code == 201
    assert read(box, "carts", "contacts", c1) == {c1: {"1001": [("HUBSPOT_DEFINED", 586)]}}
    off = make_sandbox()
    assert (
        call(
            off, "POST", "/crm/v4/associations/carts/contacts/batch/read", {"inputs": []}
        ).status_code
        == 404
    )
