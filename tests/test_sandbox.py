"""The sandbox answers as HubSpot does: limits, 207s, whole-batch 400s, auth, shuffling, headers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from importer.sandbox import Fault, Sandbox

from .conftest import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def post(
    box: Sandbox, path: str, body: Any, headers: dict[str, str] | None = None
) -> requests.Response:
    return requests.post(
        f"{box.url}{path}", json=body, headers=AUTH if headers is None else headers, timeout=10
    )


def product(n: int, **props: str) -> dict[str, Any]:
    return {
        "properties": {"name": f"P{n}", "hs_sku": f"{n:05d}", **props},
        "associations": [],
        "objectWriteTraceId": f"t{n}",
    }


CREATE = "/crm/objects/2026-03/products/batch/create"


def test_create_returns_string_ids_and_defaults(sandbox: Sandbox) -> None:
    r = post(sandbox, CREATE, {"inputs": [product(1, price="45")]})
    assert r.status_code == 201
    body = r.json()
    assert body["status"] == "COMPLETE"
    (res,) = body["results"]
    assert isinstance(res["id"], str)
    assert res["properties"]["price"] == "45"
    assert res["properties"]["hs_object_id"] == res["id"]
    assert {"createdate", "hs_lastmodifieddate"} <= set(res["properties"])
    assert "objectWriteTraceId" not in res  # not echoed unless configured
    assert {"startedAt", "completedAt"} <= set(body)


def test_object_type_id_addresses_the_same_objects(sandbox: Sandbox) -> None:
    post(sandbox, "/crm/objects/2026-03/0-7/batch/create", {"inputs": [product(1)]})
    assert len(sandbox.records("products")) == 1


def test_results_are_shuffled(sandbox: Sandbox) -> None:
    r = post(sandbox, CREATE, {"inputs": [product(n) for n in range(50)]})
    skus = [res["properties"]["hs_sku"] for res in r.json()["results"]]
    assert sorted(skus) == [f"{n:05d}" for n in range(50)]
    assert skus != sorted(skus)


def test_more_than_100_inputs_is_refused(sandbox: Sandbox) -> None:
    r = post(sandbox, CREATE, {"inputs": [product(n) for n in range(101)]})
    assert r.status_code == 400
    assert r.json()["message"] == (
        "The maximum number of inputs supported in a batch is 100. "
        "The number of inputs provided was 101."
    )
    assert r.json()["category"] == "VALIDATION_ERROR"
    assert sandbox.records("products") == []


def test_property_values_must_be_strings(sandbox: Sandbox) -> None:
    r = post(sandbox, CREATE, {"inputs": [{"properties": {"price": 45}}]})
    assert r.status_code == 400
    assert "inputs[0].properties.price must be a string, not a number" in r.json()["message"]


def test_207_when_every_input_has_a_unique_trace_id(sandbox: Sandbox) -> None:
    r = post(
        sandbox,
        CREATE,
        {"inputs": [product(1), product(2, colour="red"), product(3, price="12,50")]},
    )
    assert r.status_code == 207
    body = r.json()
    assert body["numErrors"] == 2
    assert len(body["results"]) == 1
    by_trace = {e["context"]["objectWriteTraceId"][0]: e for e in body["errors"]}
    assert by_trace["t2"]["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST"
    assert by_trace["t2"]["context"]["propertyName"] == ["colour"]
    assert by_trace["t3"]["errors"][0] == {
        "message": '"12,50" was not a valid number.',
        "code": "INVALID_INTEGER",
        "context": {"propertyName": ["price"]},
    }
    assert len(sandbox.records("products")) == 1


def test_without_trace_ids_one_bad_input_fails_the_batch(sandbox: Sandbox) -> None:
    inputs = [{"properties": {"name": "a"}}, {"properties": {"colour": "red"}}]
    r = post(sandbox, CREATE, {"inputs": inputs})
    assert r.status_code == 400
    assert r.json()["message"].startswith("Property values were not valid: ")
    assert sandbox.records("products") == []


def test_associations_are_checked(sandbox: Sandbox) -> None:
    def cart(n: int, to: str, type_id: int, category: str = "HUBSPOT_DEFINED") -> dict[str, Any]:
        return {
            "properties": {"hs_cart_name": f"c{n}"},
            "objectWriteTraceId": f"c{n}",
            "associations": [
                {
                    "to": {"id": to},
                    "types": [{"associationCategory": category, "associationTypeId": type_id}],
                }
            ],
        }

    r = post(
        sandbox,
        "/crm/objects/2026-03/carts/batch/create",
        {
            "inputs": [
                cart(1, "1001", 586),
                cart(2, "999999", 586),
                cart(3, "1001", 9999),
                cart(4, "1002", 12, "USER_DEFINED"),
            ]
        },
    )
    assert r.status_code == 207
    errors = {e["context"]["objectWriteTraceId"][0]: e for e in r.json()["errors"]}
    assert errors["c2"]["message"] == "One or more associations are invalid"
    assert errors["c2"]["context"]["INVALID_OBJECT_IDS"] == ["999999"]
    assert errors["c3"]["context"]["INVALID_ASSOCIATION_TYPE_ID"] == ["9999"]
    created = {res["properties"]["hs_cart_name"]: res["id"] for res in r.json()["results"]}
    assert set(created) == {"c1", "c4"}
    assert sandbox.store.associations("carts", created["c4"]) == [
        ("contacts", "1002", "USER_DEFINED", 12)
    ]


def test_missing_token_is_401(sandbox: Sandbox) -> None:
    r = post(sandbox, CREATE, {"inputs": []}, headers={})
    assert r.status_code == 401
    assert r.json()["category"] == "INVALID_AUTHENTICATION"
    assert r.json()["message"].startswith("Authentication credentials not found.")


def test_wrong_token_is_401(make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(token="pat-right")
    assert post(box, CREATE, {"inputs": []}).status_code == 401


def test_missing_scope_is_403_with_required_scopes(make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(denied_object_types={"products"})
    r = post(box, CREATE, {"inputs": [product(1)]})
    assert r.status_code == 403
    body = r.json()
    assert body["category"] == "MISSING_SCOPES"
    assert body["errors"][0]["context"]["requiredGranularScopes"] == [
        "e-commerce",
        "crm.objects.products.write",
    ]


def test_unknown_object_type(sandbox: Sandbox) -> None:
    r = post(sandbox, "/crm/objects/2026-03/prodcts/batch/create", {"inputs": [product(1)]})
    assert r.status_code == 400
    assert r.json()["message"] == "Unable to infer object type from: prodcts"


def test_custom_objects_are_the_portals_own_and_checked_like_any_type(sandbox: Sandbox) -> None:
    r = post(
        sandbox,
        "/crm/objects/2026-03/2-4242424/batch/create",
        {"inputs": [{"properties": {"name": "Rex", "birth_date": "2021-04-01"}}]},
    )
    assert r.status_code == 201
    assert len(sandbox.records("p4242424_pets")) == 1
    unknown = post(
        sandbox, "/crm/objects/2026-03/2-1234/batch/create", {"inputs": [{"properties": {}}]}
    )
    assert unknown.status_code == 400
    assert unknown.json()["message"] == "Unable to infer object type from: 2-1234"
    for bad in ({"anything": "x"}, {"birth_date": "2026-02-30"}):
        r = post(
            sandbox,
            "/crm/objects/2026-03/p4242424_pets/batch/create",
            {"inputs": [{"properties": bad}]},
        )
        assert r.status_code == 400, bad


def test_rate_limit_headers_and_429(make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(rate_limit=2, rate_interval_ms=60_000, retry_after=True)
    first = post(box, CREATE, {"inputs": []})
    assert first.headers["X-HubSpot-RateLimit-Max"] == "2"
    assert first.headers["X-HubSpot-RateLimit-Remaining"] == "1"
    assert first.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "60000"
    assert "X-HubSpot-RateLimit-Daily-Remaining" in first.headers
    assert "X-HubSpot-Correlation-Id" in first.headers
    post(box, CREATE, {"inputs": []})
    third = post(box, CREATE, {"inputs": []})
    assert third.status_code == 429
    body = third.json()
    assert (body["errorType"], body["policyName"]) == ("RATE_LIMIT", "TEN_SECONDLY_ROLLING")
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert 1 <= int(third.headers["Retry-After"]) <= 60


def test_daily_limit(make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(daily_limit=1)
    post(box, CREATE, {"inputs": []})
    r = post(box, CREATE, {"inputs": []})
    assert (r.status_code, r.json()["policyName"]) == (429, "DAILY")


def test_listing_pages_through_records(sandbox: Sandbox) -> None:
    post(sandbox, CREATE, {"inputs": [product(n) for n in range(25)]})
    seen: list[str] = []
    url: str | None = f"{sandbox.url}/crm/objects/2026-03/products?limit=10&properties=hs_sku"
    while url:
        page = requests.get(url, headers=AUTH, timeout=10).json()
        seen += [r["properties"]["hs_sku"] for r in page["results"]]
        url = page.get("paging", {}).get("next", {}).get("link")
    assert sorted(seen) == [f"{n:05d}" for n in range(25)]
    one = requests.get(
        f"{sandbox.url}/crm/objects/2026-03/products/{sandbox.records('products')[0]['id']}",
        headers=AUTH,
        timeout=10,
    )
    assert one.status_code == 200


def test_state_persists_in_sqlite(make_sandbox: Callable[..., Sandbox], tmp_path: Path) -> None:
    db = tmp_path / "portal.sqlite"
    box = make_sandbox(db=db)
    post(box, CREATE, {"inputs": [product(1)]})
    box.stop()
    again = make_sandbox(db=db)
    assert [r["properties"]["hs_sku"] for r in again.records("products")] == ["00001"]
    r = post(again, CREATE, {"inputs": [product(2)]})
    assert r.json()["results"][0]["id"] != again.records("products")[0]["id"]


def test_unique_values_follow_updates_archives_and_restarts(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    """hs_sku is unique: a value is taken while a live record holds it, whatever happened
    to the record since (updated, archived, the sandbox restarted from its file)."""
    box = make_sandbox(db=tmp_path / "portal.sqlite")

    def codes(body: dict[str, Any]) -> list[str]:
        return [e["category"] for e in body.get("errors", [])]

    first = post(box, CREATE, {"inputs": [product(1)]}).json()["results"][0]["id"]
    assert codes(post(box, CREATE, {"inputs": [product(11, hs_sku="00001")]}).json()) == [
        "CONFLICT"
    ]
    update = {"inputs": [{"id": first, "properties": {"hs_sku": "00002"}}]}
    assert post(box, "/crm/objects/2026-03/products/batch/update", update).status_code == 200
    # 00001 is free again; 00002 is now taken.
    assert codes(post(box, CREATE, {"inputs": [product(12, hs_sku="00001")]}).json()) == []
    assert codes(post(box, CREATE, {"inputs": [product(13, hs_sku="00002")]}).json()) == [
        "CONFLICT"
    ]
    archive = {"inputs": [{"id": first}]}
    assert post(box, "/crm/objects/2026-03/products/batch/archive", archive).status_code == 204
    box.stop()

    again = make_sandbox(db=tmp_path / "portal.sqlite")
    assert codes(post(again, CREATE, {"inputs": [product(14, hs_sku="00002")]}).json()) == []
    upsert = {"inputs": [{"id": "00001", "idProperty": "hs_sku", "properties": {"name": "X"}}]}
    (updated,) = post(again, "/crm/objects/2026-03/products/batch/upsert", upsert).json()["results"]
    assert updated["new"] is False
    assert updated["properties"]["name"] == "X"


def test_faults_are_scripted(sandbox: Sandbox) -> None:
    sandbox.inject(Fault(status=503, times=2))
    assert post(sandbox, CREATE, {"inputs": []}).status_code == 503
    assert post(sandbox, CREATE, {"inputs": []}).status_code == 503
    assert post(sandbox, CREATE, {"inputs": []}).status_code == 201
    sandbox.inject(Fault(canceled=True))
    body = post(sandbox, CREATE, {"inputs": [product(n) for n in range(4)]}).json()
    assert (body["status"], len(body["results"])) == ("CANCELED", 2)
