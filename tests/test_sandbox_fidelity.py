"""The sandbox is as strict as HubSpot: search limits and lag, normalised values, real dates,
GET parameters, 400s for malformed requests, both path families, and answers that match
HubSpot's own response schemas (tests/hubspot_schemas.json, trimmed from its OpenAPI specs)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from jsonschema import Draft202012Validator

from importer.sandbox import Fault, Sandbox

from .conftest import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}
V = "/crm/objects/2026-03"
SCHEMAS = json.loads((Path(__file__).parent / "hubspot_schemas.json").read_text("utf-8"))


def conforms(body: Any, schema: str) -> None:
    """Fail with every way `body` departs from HubSpot's schema named `schema`."""
    validator = Draft202012Validator({**SCHEMAS, "$ref": f"#/$defs/{schema}"})
    problems = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
    assert not problems, "\n".join(problems)


def call(box: Sandbox, method: str, path: str, body: Any = None, **kw: Any) -> requests.Response:
    return requests.request(method, f"{box.url}{path}", json=body, headers=AUTH, timeout=10, **kw)


def product(n: int, **props: str) -> dict[str, Any]:
    return {
        "properties": {"name": f"P{n}", "hs_sku": f"{n:05d}", **props},
        "associations": [],
        "objectWriteTraceId": f"t{n}",
    }


def one_correlation_id(r: requests.Response) -> None:
    body = r.json()
    assert body["correlationId"] == r.headers["X-HubSpot-Correlation-Id"]


# --- HubSpot's response schemas, endpoint by endpoint ------------------------------------------


def test_every_answer_matches_hubspots_response_schemas(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    box = make_sandbox(search_lag=0.0)
    created = call(box, "POST", f"{V}/products/batch/create", {"inputs": [product(1), product(2)]})
    assert created.status_code == 201
    conforms(created.json(), "BatchResponseSimplePublicObject")

    partial = call(
        box, "POST", f"{V}/products/batch/create", {"inputs": [product(3), product(4, price="x")]}
    )
    assert partial.status_code == 207
    conforms(partial.json(), "BatchResponseSimplePublicObjectWithErrors")

    ids = [r["id"] for r in created.json()["results"]]
    update = {"inputs": [{"id": ids[0], "properties": {"price": "5"}}]}
    updated = call(box, "POST", f"{V}/products/batch/update", update)
    conforms(updated.json(), "BatchResponseSimplePublicObject")
    missing = {"inputs": [{"id": "1", "properties": {"price": "5"}, "objectWriteTraceId": "m"}]}
    not_found = call(box, "POST", f"{V}/products/batch/update", missing)
    assert not_found.status_code == 207
    conforms(not_found.json(), "BatchResponseSimplePublicObjectWithErrors")

    upsert = {"inputs": [{"id": "00009", "idProperty": "hs_sku", "properties": {"name": "U"}}]}
    upserted = call(box, "POST", f"{V}/products/batch/upsert", upsert)
    conforms(upserted.json(), "BatchResponseSimplePublicUpsertObject")

    read = {"idProperty": "hs_sku", "inputs": [{"id": "00001"}, {"id": "nope"}], "properties": []}
    partly = call(box, "POST", f"{V}/products/batch/read", read)
    assert partly.status_code == 207
    conforms(partly.json(), "BatchResponseSimplePublicObjectWithErrors")

    found = call(box, "POST", f"{V}/products/search", {"limit": 1})
    assert found.json()["paging"]["next"]["after"] == "1"
    conforms(found.json(), "CollectionResponseWithTotalSimplePublicObject")

    listed = call(box, "GET", f"{V}/products?limit=2&properties=price")
    conforms(listed.json(), "CollectionResponseSimplePublicObjectWithAssociationsForwardPaging")
    cart = call(
        box,
        "POST",
        f"{V}/carts/batch/create",
        {
            "inputs": [
                {
                    "properties": {"hs_cart_name": "C"},
                    "associations": [
                        {
                            "to": {"id": "1001"},
                            "types": [
                                {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 586}
                            ],
                        }
                    ],
                }
            ]
        },
    ).json()["results"][0]
    one = call(box, "GET", f"{V}/carts/{cart['id']}?associations=contacts")
    conforms(one.json(), "SimplePublicObjectWithAssociations")

    props = call(box, "GET", "/crm/properties/2026-03/products")
    conforms(props.json(), "CollectionResponsePropertyNoPaging")
    labels = call(box, "GET", "/crm/associations/2026-03/carts/contacts/labels")
    conforms(labels.json(), "CollectionResponseAssociationSpecWithLabelNoPaging")
    account = call(box, "GET", "/account-info/2026-03/details")
    conforms(account.json(), "AccountDetails")

    for r in (
        call(box, "POST", f"{V}/products/batch/create", {"inputs": [{"properties": {"x": "1"}}]}),
        call(box, "POST", f"{V}/prodcts/batch/create", {"inputs": []}),
        call(box, "GET", f"{V}/products/1"),
        call(box, "GET", "/crm/v3/objects/products"),
        requests.get(f"{box.url}{V}/products", timeout=10),  # no token
    ):
        assert r.status_code in (400, 401, 404), r.text
        conforms(r.json(), "Error")
        one_correlation_id(r)


# --- path families -----------------------------------------------------------------------------


def test_numbered_paths_answer_404_when_switched_off(make_sandbox: Callable[..., Sandbox]) -> None:
    after_sunset = make_sandbox()  # the suite's default: legacy_paths=False
    today = make_sandbox(legacy_paths=True)
    for path in (
        "/crm/v3/objects/products",
        "/crm/v3/properties/products",
        "/crm/v4/associations/carts/contacts/labels",
        "/account-info/v3/details",
    ):
        assert call(after_sunset, "GET", path).status_code == 404, path
        assert call(today, "GET", path).status_code == 200, path
    for box in (after_sunset, today):
        assert call(box, "GET", f"{V}/products").status_code == 200
        assert call(box, "GET", "/crm/objects/2025-09/products").status_code == 404


# --- search --------------------------------------------------------------------------------------


def test_search_has_its_own_limit_per_second_and_no_ten_second_headers(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    box = make_sandbox(rate_limit=100)
    answers = [call(box, "POST", f"{V}/contacts/search", {"limit": 1}) for _ in range(8)]
    statuses = [r.status_code for r in answers]
    # At most 5 a second: the burst of 8 (well within one second here) has 429s at its end.
    assert statuses.count(200) <= 5 < len(statuses)
    refused = answers[statuses.index(429)].json()
    assert (refused["errorType"], refused["policyName"]) == ("RATE_LIMIT", "SECONDLY")
    ok = answers[0]
    assert "X-HubSpot-RateLimit-Max" not in ok.headers
    assert "X-HubSpot-RateLimit-Daily-Remaining" in ok.headers
    # Searches are not counted in the rolling window of the other endpoints.
    window = call(box, "GET", f"{V}/contacts")
    assert window.headers["X-HubSpot-RateLimit-Remaining"] == "99"
    time.sleep(1.05)
    assert call(box, "POST", f"{V}/contacts/search", {"limit": 1}).status_code == 200


def test_search_lags_writes(make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(search_lag=0.4)
    query = {
        "filterGroups": [{"filters": [{"propertyName": "hs_sku", "operator": "EQ", "value": "7"}]}]
    }
    written = time.monotonic()
    assert call(box, "POST", f"{V}/products/batch/create", {"inputs": [product(7)]}).ok
    query["filterGroups"][0]["filters"][0]["value"] = "00007"
    assert call(box, "POST", f"{V}/products/search", query).json()["total"] == 0
    # Consistent reads see it at once; search only once the lag has passed.
    read = {"idProperty": "hs_sku", "inputs": [{"id": "00007"}]}
    assert call(box, "POST", f"{V}/products/batch/read", read).status_code == 200
    time.sleep(max(0.0, written + 0.45 - time.monotonic()))
    assert call(box, "POST", f"{V}/products/search", query).json()["total"] == 1


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"limit": 201}, "limit must be between 0 and 200"),
        ({"limit": 100, "after": 9_950}, "at most 10000 results"),
        ({"after": "abc"}, "after must be a whole number"),
        ({"limit": "ten"}, "limit must be a whole number"),
        ({"filterGroups": [{"filters": []}] * 6}, "Too many filter groups"),
        (
            {"filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ"}] * 11}]},
            "Too many filters in a group",
        ),
        (
            {
                "filterGroups": [
                    {
                        "filters": [
                            {
                                "propertyName": "email",
                                "operator": "IN",
                                "values": [str(n) for n in range(101)],
                            }
                        ]
                    }
                ]
            },
            "Too many values for IN",
        ),
        ({"filterGroups": "email"}, "filterGroups must be a list"),
        ([1, 2], "the search body must be an object"),
    ],
    ids=[
        "page-over-200",
        "past-10000",
        "after-not-a-number",
        "limit-not-a-number",
        "6-groups",
        "11-filters",
        "101-in-values",
        "groups-not-a-list",
        "body-not-an-object",
    ],
)
def test_search_refuses_what_hubspot_refuses(sandbox: Sandbox, body: Any, problem: str) -> None:
    r = call(sandbox, "POST", f"{V}/contacts/search", body)
    assert r.status_code == 400
    assert problem in r.json()["message"]
    conforms(r.json(), "Error")


def test_search_compares_text_without_regard_to_case(sandbox: Sandbox) -> None:
    query = {
        "filterGroups": [
            {
                "filters": [
                    {
                        "propertyName": "email",
                        "operator": "IN",
                        "values": ["ADA.LOVELACE@example.com"],
                    }
                ]
            }
        ],
        "properties": ["email"],
    }
    (hit,) = call(sandbox, "POST", f"{V}/contacts/search", query).json()["results"]
    assert hit["properties"]["email"] == "ada.lovelace@example.com"


# --- values as HubSpot stores them ---------------------------------------------------------------


def test_emails_are_trimmed_lowercased_and_unique_without_regard_to_case(
    sandbox: Sandbox,
) -> None:
    new = {"properties": {"email": "  Mary.Shelley@Example.COM "}, "objectWriteTraceId": "a"}
    twin = {"properties": {"email": "ADA.LOVELACE@EXAMPLE.COM"}, "objectWriteTraceId": "b"}
    # A held email refuses a contact create whole, trace ids or not (HubSpot's 409).
    r = call(sandbox, "POST", f"{V}/contacts/batch/create", {"inputs": [new, twin]})
    assert r.status_code == 409
    assert r.json()["category"] == "CONFLICT"
    assert r.json()["message"] == "Contact already exists. Existing ID: 1001"
    r = call(sandbox, "POST", f"{V}/contacts/batch/create", {"inputs": [new]})
    assert r.status_code == 201
    (made,) = r.json()["results"]
    assert made["properties"]["email"] == "mary.shelley@example.com"
    read = {"idProperty": "email", "inputs": [{"id": "MARY.SHELLEY@example.com"}]}
    (again,) = call(sandbox, "POST", f"{V}/contacts/batch/read", read).json()["results"]
    assert again["id"] == made["id"]


@pytest.mark.parametrize(
    ("object_type", "props"),
    [
        ("products", {"launch_date": "2026-02-30"}),
        ("products", {"launch_date": "2026-13-01"}),
        ("carts", {"hs_external_created_date": "2026-02-30T10:00:00Z"}),
        ("carts", {"hs_external_created_date": "2026-11-23T25:00:00Z"}),
        ("quotes", {"hs_expiration_date": "2026-04-31"}),
        ("p4242424_pets", {"birth_date": "2025-02-29"}),
    ],
    ids=["date-feb-30", "date-month-13", "datetime-feb-30", "datetime-hour-25", "quote", "custom"],
)
def test_dates_must_be_days_of_the_calendar_on_every_type(
    sandbox: Sandbox, object_type: str, props: dict[str, str]
) -> None:
    r = call(
        sandbox, "POST", f"{V}/{object_type}/batch/create", {"inputs": [{"properties": props}]}
    )
    assert r.status_code == 400
    assert r.json()["errors"][0]["code"] in ("INVALID_DATE", "INVALID_DATETIME")


# --- GET parameters ------------------------------------------------------------------------------


def test_get_honours_properties_archived_id_property_and_associations(sandbox: Sandbox) -> None:
    made = call(
        sandbox, "POST", f"{V}/products/batch/create", {"inputs": [product(1, price="9")]}
    ).json()["results"][0]
    rid = made["id"]
    one = call(sandbox, "GET", f"{V}/products/{rid}?properties=price,brand,no_such_prop").json()
    assert one["properties"]["price"] == "9"
    assert one["properties"]["brand"] is None  # asked for, not set: null, as HubSpot answers
    assert "no_such_prop" not in one["properties"]
    assert "hs_sku" not in one["properties"]  # not asked for
    default = call(sandbox, "GET", f"{V}/products/{rid}").json()["properties"]
    assert {"name", "price", "hs_object_id", "createdate"} <= set(default)
    assert "hs_sku" not in default

    by_sku = call(sandbox, "GET", f"{V}/products/00001?idProperty=hs_sku&properties=hs_sku")
    assert by_sku.json()["id"] == rid
    assert call(sandbox, "GET", f"{V}/products/00001?idProperty=name").status_code == 400

    call(sandbox, "POST", f"{V}/products/batch/archive", {"inputs": [{"id": rid}]})
    assert call(sandbox, "GET", f"{V}/products/{rid}").status_code == 404
    gone = call(sandbox, "GET", f"{V}/products/{rid}?archived=true").json()
    assert (gone["id"], gone["archived"]) == (rid, True)
    assert call(sandbox, "GET", f"{V}/products").json()["results"] == []
    archived = call(sandbox, "GET", f"{V}/products?archived=true").json()["results"]
    assert [r["id"] for r in archived] == [rid]

    link = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 586}
    cart = call(
        sandbox,
        "POST",
        f"{V}/carts/batch/create",
        {"inputs": [{"properties": {}, "associations": [{"to": {"id": "1002"}, "types": [link]}]}]},
    ).json()["results"][0]
    linked = call(sandbox, "GET", f"{V}/carts/{cart['id']}?associations=contacts").json()
    assert linked["associations"]["contacts"]["results"] == [
        {"id": "1002", "type": "cart_to_contact"}
    ]
    # HUBSPOT_DEFINED links read from both ends.
    contact = call(sandbox, "GET", f"{V}/contacts/1002?associations=carts").json()
    assert contact["associations"]["carts"]["results"] == [
        {"id": cart["id"], "type": "contact_to_cart"}
    ]


# --- malformed requests: a 400 with HubSpot's error body, never a dropped connection ------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", f"{V}/products/batch/read", {"inputs": ["00001"]}),
        ("POST", f"{V}/products/batch/read", {"inputs": [{"id": "1"}], "properties": "name"}),
        ("POST", f"{V}/products/batch/create", {"inputs": "all"}),
        ("POST", f"{V}/products/batch/create", {"inputs": [{"properties": {"name": 5}}]}),
        ("GET", f"{V}/products?limit=abc", None),
        ("GET", f"{V}/products?after=xyz", None),
        ("GET", f"{V}/products?archived=maybe", None),
    ],
    ids=[
        "read-input-not-object",
        "read-properties-not-list",
        "inputs-not-list",
        "value-not-string",
        "limit-not-number",
        "after-not-number",
        "archived-not-bool",
    ],
)
def test_malformed_requests_answer_400(sandbox: Sandbox, method: str, path: str, body: Any) -> None:
    r = call(sandbox, method, path, body)
    assert r.status_code == 400, r.text
    conforms(r.json(), "Error")
    one_correlation_id(r)


def test_a_body_that_is_not_json_answers_400(sandbox: Sandbox) -> None:
    r = requests.post(
        f"{sandbox.url}{V}/products/batch/create", data=b"{not json", headers=AUTH, timeout=10
    )
    assert r.status_code == 400
    assert r.json()["message"].startswith("Invalid input JSON")


# --- faults ------------------------------------------------------------------------------------


def test_a_fault_after_the_work_commits_then_answers_504(sandbox: Sandbox) -> None:
    sandbox.inject(Fault(status=504, after=True, path="/batch/create"))
    r = call(sandbox, "POST", f"{V}/products/batch/create", {"inputs": [product(1)]})
    assert r.status_code == 504
    assert len(sandbox.records("products")) == 1  # carried out all the same


def test_late_errors_are_drawn_and_counted(make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(late_error_rate=1.0)
    r = call(box, "POST", f"{V}/products/batch/create", {"inputs": [product(1)]})
    assert r.status_code == 504
    assert box.faults["late_error"] == 1
    assert len(box.records("products")) == 1
