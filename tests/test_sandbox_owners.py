"""The sandbox serves the portal's owners as HubSpot's owners API does (filtered by email and
archived, paged, one by id) and refuses, input by input, an owner id written to a record that
is not an active owner's, as HubSpot does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from jsonschema import Draft202012Validator

from importer.sandbox import Sandbox
from importer.sandbox.owners import Owner

from .test_sandbox_fidelity import AUTH, call

OWNERS = "/crm/owners/2026-03"
V = "/crm/objects/2026-03"
ACTIVE = ["71000001", "71000002", "71000003", "71000004"]
ARCHIVED = "71000005"

# HubSpot's PublicOwner and its paged collection (crm owners spec, 2026-03). userId may be
# null: HubSpot's owners guide says an archived owner's is, its user id kept in
# userIdIncludingInactive.
_TEAM = {
    "type": "object",
    "required": ["id", "name", "primary"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "primary": {"type": "boolean"},
    },
    "additionalProperties": False,
}
PUBLIC_OWNER = {
    "type": "object",
    "required": ["archived", "createdAt", "id", "type", "updatedAt"],
    "properties": {
        "archived": {"type": "boolean"},
        "createdAt": {"type": "string"},
        "email": {"type": "string"},
        "firstName": {"type": "string"},
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "lastName": {"type": "string"},
        "teams": {"type": "array", "items": _TEAM},
        "type": {"enum": ["PERSON", "QUEUE"]},
        "updatedAt": {"type": "string"},
        "userId": {"type": ["integer", "null"]},
        "userIdIncludingInactive": {"type": "integer"},
    },
    "additionalProperties": False,
}
OWNER_PAGE = {
    "type": "object",
    "required": ["results"],
    "properties": {
        "results": {"type": "array", "items": PUBLIC_OWNER},
        "paging": {
            "type": "object",
            "properties": {
                "next": {
                    "type": "object",
                    "required": ["after"],
                    "properties": {"after": {"type": "string"}, "link": {"type": "string"}},
                }
            },
        },
    },
    "additionalProperties": False,
}


def matches(body: Any, schema: dict[str, Any]) -> None:
    """Fail with every way `body` departs from `schema`."""
    problems = [
        f"{list(e.absolute_path)}: {e.message}"
        for e in Draft202012Validator(schema).iter_errors(body)
    ]
    assert not problems, "\n".join(problems)


def owners_of(box: Sandbox, query: str = "", path: str = f"{OWNERS}/") -> list[dict[str, Any]]:
    r = call(box, "GET", f"{path}{query}")
    assert r.status_code == 200, r.text
    matches(r.json(), OWNER_PAGE)
    results: list[dict[str, Any]] = r.json()["results"]
    return results


def many_owners(count: int) -> tuple[Owner, ...]:
    return tuple(
        Owner(
            id=str(72_000_000 + n),
            email=f"user{n}@example.com",
            first_name=f"User{n}",
            last_name="Tester",
            user_id=82_000_000 + n,
        )
        for n in range(count)
    )


# --- listing --------------------------------------------------------------------------------


def test_the_owners_are_listed_with_or_without_the_trailing_slash(sandbox: Sandbox) -> None:
    with_slash = owners_of(sandbox)
    without = owners_of(sandbox, path=OWNERS)
    assert [o["id"] for o in with_slash] == ACTIVE == [o["id"] for o in without]
    anna = with_slash[0]
    assert anna == {
        "id": "71000001",
        "email": "anna.schmidt@example.com",
        "type": "PERSON",
        "firstName": "Anna",
        "lastName": "Schmidt",
        "userId": 81000001,
        "userIdIncludingInactive": 81000001,
        "createdAt": anna["createdAt"],
        "updatedAt": anna["updatedAt"],
        "archived": False,
        "teams": [{"id": "4100001", "name": "Sales DACH", "primary": True}],
    }
    # Two owners share a first name, so a name alone can be ambiguous.
    assert [o["lastName"] for o in with_slash if o["firstName"] == "Anna"] == ["Schmidt", "Weber"]
    assert "paging" not in call(sandbox, "GET", f"{OWNERS}/").json()


def test_archived_true_lists_the_deactivated_owners_alone(sandbox: Sandbox) -> None:
    (gone,) = owners_of(sandbox, "?archived=true")
    assert gone["id"] == ARCHIVED
    assert gone["archived"] is True
    assert gone["userId"] is None
    assert gone["userIdIncludingInactive"] == 81000005
    assert ARCHIVED not in [o["id"] for o in owners_of(sandbox, "?archived=false")]


def test_email_finds_one_owner_whatever_its_case_and_nothing_by_part(sandbox: Sandbox) -> None:
    (weber,) = owners_of(sandbox, "?email=ANNA.Weber@Example.COM")
    assert weber["id"] == "71000002"
    assert owners_of(sandbox, "?email=anna") == []
    assert owners_of(sandbox, "?email=jonas.becker@example.com") == []
    (jonas,) = owners_of(sandbox, "?email=jonas.becker@example.com&archived=true")
    assert jonas["id"] == ARCHIVED


@pytest.mark.parametrize("limit", ["501", "1000", "0", "ten"])
def test_a_limit_outside_1_to_500_is_refused(sandbox: Sandbox, limit: str) -> None:
    r = call(sandbox, "GET", f"{OWNERS}/?limit={limit}")
    assert r.status_code == 400
    assert r.json()["category"] == "VALIDATION_ERROR"
    assert "limit" in r.json()["message"]


def test_230_owners_come_in_pages_of_100_each_naming_the_next(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    box = make_sandbox(owners=many_owners(230))
    seen: list[str] = []
    sizes: list[int] = []
    url = f"{box.url}{OWNERS}/"
    while url:
        r = requests.get(url, headers=AUTH, timeout=10)
        assert r.status_code == 200, r.text
        matches(r.json(), OWNER_PAGE)
        page = r.json()
        sizes.append(len(page["results"]))
        seen += [o["id"] for o in page["results"]]
        nxt = page.get("paging", {}).get("next")
        if nxt:
            # The link asks for the page the cursor names, at the path the page was asked at.
            assert nxt["link"].startswith(f"{box.url}{OWNERS}/?")
            assert f"after={nxt['after']}" in nxt["link"]
        url = nxt["link"] if nxt else ""
    assert sizes == [100, 100, 30]
    assert seen == [str(72_000_000 + n) for n in range(230)]
    assert len(owners_of(box, "?limit=500")) == 230
    second = call(box, "GET", f"{OWNERS}/?limit=100&after=100").json()
    assert second["results"][0]["id"] == "72000100"


# --- one owner ------------------------------------------------------------------------------


def test_one_owner_by_id_or_user_id(sandbox: Sandbox) -> None:
    r = call(sandbox, "GET", f"{OWNERS}/71000003")
    assert r.status_code == 200
    matches(r.json(), PUBLIC_OWNER)
    assert r.json()["lastName"] == "Müller"
    by_user = call(sandbox, "GET", f"{OWNERS}/81000002?idProperty=userId")
    assert by_user.json()["id"] == "71000002"


def test_an_archived_owner_is_found_with_archived_true_alone(sandbox: Sandbox) -> None:
    assert call(sandbox, "GET", f"{OWNERS}/{ARCHIVED}").status_code == 404
    r = call(sandbox, "GET", f"{OWNERS}/{ARCHIVED}?archived=true")
    assert r.status_code == 200
    assert r.json()["archived"] is True
    assert call(sandbox, "GET", f"{OWNERS}/71000001?archived=true").status_code == 404


def test_an_owner_the_portal_lacks_is_not_found(sandbox: Sandbox) -> None:
    missing = call(sandbox, "GET", f"{OWNERS}/99999999")
    assert missing.status_code == 404
    assert missing.json()["category"] == "OBJECT_NOT_FOUND"
    assert call(sandbox, "GET", f"{OWNERS}/anna").status_code == 400
    assert call(sandbox, "GET", f"{OWNERS}/71000001?idProperty=email").status_code == 400


# --- versions and numbered paths ------------------------------------------------------------


def test_the_numbered_owners_path_is_served_only_while_legacy_paths_are(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    after_sunset = make_sandbox()  # the suite's default: legacy_paths=False
    today = make_sandbox(legacy_paths=True)
    for path in ("/crm/v3/owners/", "/crm/v3/owners", "/crm/v3/owners/71000001"):
        assert call(after_sunset, "GET", path).status_code == 404
        assert call(today, "GET", path).status_code == 200
    assert [o["id"] for o in owners_of(today, path="/crm/v3/owners/")] == ACTIVE


def test_owners_are_served_at_the_versions_the_sandbox_serves_alone(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    box = make_sandbox(api_versions=("2026-09",))
    assert call(box, "GET", "/crm/owners/2026-09/").status_code == 200
    assert call(box, "GET", "/crm/owners/2026-09").status_code == 200
    for path in ("/crm/owners/2026-03/", "/crm/owners/2026-03", "/crm/owners/2025-09/71000001"):
        r = call(box, "GET", path)
        assert r.status_code == 404
        assert r.json()["category"] == "RESOURCE_NOT_FOUND"


# --- the owner property ---------------------------------------------------------------------

OWNER_LABELS = {
    "products": "Owner",
    "contacts": "Contact owner",
    "companies": "Company owner",
    "deals": "Deal owner",
    "tickets": "Ticket owner",
    "orders": "Owner",
    "carts": "Owner",
}


@pytest.mark.parametrize(("object_type", "label"), OWNER_LABELS.items())
def test_the_owner_property_is_defined_as_hubspot_defines_it(
    sandbox: Sandbox, object_type: str, label: str
) -> None:
    props = call(sandbox, "GET", f"/crm/properties/2026-03/{object_type}").json()["results"]
    (owner,) = [p for p in props if p["name"] == "hubspot_owner_id"]
    assert owner["label"] == label
    assert (owner["type"], owner["fieldType"]) == ("enumeration", "select")
    assert owner["externalOptions"] is True
    assert owner["referencedObjectType"] == "OWNER"
    assert owner["options"] == []
    others = [p for p in props if p["name"] != "hubspot_owner_id"]
    assert all("referencedObjectType" not in p for p in others)


def test_line_items_have_no_owner_property(sandbox: Sandbox) -> None:
    props = call(sandbox, "GET", "/crm/properties/2026-03/line_items").json()["results"]
    assert "hubspot_owner_id" not in [p["name"] for p in props]


def deal(n: int, **props: str) -> dict[str, Any]:
    return {"properties": {"dealname": f"D{n}", **props}, "objectWriteTraceId": f"t{n}"}


def test_an_inactive_or_unknown_owner_id_is_refused_for_its_input_alone(
    sandbox: Sandbox,
) -> None:
    inputs = [
        deal(1, hubspot_owner_id="71000001"),
        deal(2, hubspot_owner_id=ARCHIVED),
        deal(3, hubspot_owner_id="99999999"),
        deal(4, hubspot_owner_id="81000001"),  # a user id, not an owner id
        deal(5, hubspot_owner_id=""),
    ]
    r = call(sandbox, "POST", f"{V}/deals/batch/create", {"inputs": inputs})
    assert r.status_code == 207
    body = r.json()
    created = {c["properties"]["dealname"] for c in body["results"]}
    assert created == {"D1", "D5"}
    refused = {e["context"]["objectWriteTraceId"][0]: e for e in body["errors"]}
    assert set(refused) == {"t2", "t3", "t4"}
    for trace, value in (("t2", ARCHIVED), ("t3", "99999999"), ("t4", "81000001")):
        err = refused[trace]
        assert err["category"] == "VALIDATION_ERROR"
        assert err["message"].startswith("Property values were not valid: ")
        (detail,) = err["errors"]
        assert detail["code"] == "INVALID_OWNER_ID"
        assert detail["context"]["propertyName"] == ["hubspot_owner_id"]
        assert value in detail["message"]
        assert "hubspot_owner_id" in detail["message"]
    stored = [r for r in sandbox.records("deals") if r["properties"]["dealname"] == "D1"]
    assert stored[0]["properties"]["hubspot_owner_id"] == "71000001"


def test_an_owner_id_is_checked_on_update_and_upsert_too(sandbox: Sandbox) -> None:
    update = {"inputs": [{"id": "2001", "properties": {"hubspot_owner_id": ARCHIVED}}]}
    r = call(sandbox, "POST", f"{V}/deals/batch/update", update)
    assert r.status_code == 400  # one input without a trace id: refused whole, as HubSpot does
    assert "INVALID_OWNER_ID" in r.json()["message"]
    good = {"inputs": [{"id": "2001", "properties": {"hubspot_owner_id": "71000004"}}]}
    assert call(sandbox, "POST", f"{V}/deals/batch/update", good).status_code == 200
    upsert = {
        "inputs": [
            {
                "id": "new.person@example.com",
                "idProperty": "email",
                "properties": {"hubspot_owner_id": "12345"},
                "objectWriteTraceId": "u1",
            },
            {
                "id": "ada.lovelace@example.com",
                "idProperty": "email",
                "properties": {"hubspot_owner_id": "71000002"},
                "objectWriteTraceId": "u2",
            },
        ]
    }
    r = call(sandbox, "POST", f"{V}/contacts/batch/upsert", upsert)
    assert r.status_code == 207
    (err,) = r.json()["errors"]
    assert err["context"]["objectWriteTraceId"] == ["u1"]
    assert err["errors"][0]["code"] == "INVALID_OWNER_ID"
    (ada,) = r.json()["results"]
    assert ada["properties"]["hubspot_owner_id"] == "71000002"


def test_the_owners_a_test_gives_are_the_ids_writes_accept(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    box = make_sandbox(owners=many_owners(3))
    inputs = [deal(1, hubspot_owner_id="72000002"), deal(2, hubspot_owner_id="71000001")]
    r = call(box, "POST", f"{V}/deals/batch/create", {"inputs": inputs})
    assert r.status_code == 207
    assert [e["context"]["objectWriteTraceId"] for e in r.json()["errors"]] == [["t2"]]
