"""The sandbox stamps every record with what made it, as HubSpot does: an app's API write
(INTEGRATION and the app's id), a person in HubSpot's UI (CRM_UI and the user), another app;
readable like any property, never writable; and says which app a token belongs to."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from importer.sandbox import Sandbox
from importer.sandbox.sources import DEFAULT_APP_ID, DEFAULT_USER_ID, RecordSource

from .conftest import TOKEN
from .test_sandbox_fidelity import AUTH, V, call, product

SOURCE = ["hs_object_source", "hs_object_source_id", "hs_object_source_label"]
USERS = ["hs_object_source_user_id", "hs_created_by_user_id"]
OTHER_TOKEN, OTHER_APP = "pat-other-app", 9_990_001


def source_of(box: Sandbox, record_id: str, token: str = TOKEN) -> dict[str, Any]:
    """The record's source properties, read by GET as an app reads them."""
    got = requests.get(
        f"{box.url}{V}/products/{record_id}",
        params={"properties": ",".join(SOURCE + USERS)},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert got.status_code == 200, got.text
    props: dict[str, Any] = got.json()["properties"]
    return {k: props.get(k) for k in SOURCE + USERS}


def refused(reply: requests.Response) -> list[str]:
    """The codes of the per-input errors of a batch answered 207."""
    assert reply.status_code == 207, reply.text
    return [e["code"] for err in reply.json()["errors"] for e in err["errors"]]


def test_records_carry_what_made_them(make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(app_ids={OTHER_TOKEN: OTHER_APP})
    created = call(box, "POST", f"{V}/products/batch/create", {"inputs": [product(1)]})
    (by_api,) = created.json()["results"]
    upserted = call(
        box, "POST", f"{V}/products/batch/upsert",
        {"inputs": [{"id": "00002", "idProperty": "hs_sku", "properties": {"name": "P2"}}]},
    )  # fmt: skip
    (by_upsert,) = upserted.json()["results"]
    theirs = requests.post(
        f"{box.url}{V}/products/batch/create",
        json={"inputs": [product(3)]},
        headers={"Authorization": f"Bearer {OTHER_TOKEN}"},
        timeout=10,
    ).json()["results"][0]
    (hand,) = box.store.create_many("products", [({"name": "typed"}, [])], RecordSource.by_hand())
    app = {"hs_object_source": "INTEGRATION", "hs_object_source_label": "INTEGRATION"}
    nobody = dict.fromkeys(USERS)
    assert source_of(box, by_api["id"]) == {
        **app, "hs_object_source_id": str(DEFAULT_APP_ID), **nobody
    }  # fmt: skip
    assert source_of(box, by_upsert["id"]) == source_of(box, by_api["id"])
    assert source_of(box, theirs["id"])["hs_object_source_id"] == str(OTHER_APP)
    assert source_of(box, hand["id"]) == {
        "hs_object_source": "CRM_UI",
        "hs_object_source_id": f"userId:{DEFAULT_USER_ID}",
        "hs_object_source_label": "CRM_UI",
        "hs_object_source_user_id": str(DEFAULT_USER_ID),
        "hs_created_by_user_id": str(DEFAULT_USER_ID),
    }


def test_the_source_is_read_by_batch_read_and_search_and_only_when_asked(
    sandbox: Sandbox,
) -> None:
    call(sandbox, "POST", f"{V}/products/batch/create", {"inputs": [product(1)]})
    read = call(
        sandbox, "POST", f"{V}/products/batch/read",
        {"idProperty": "hs_sku", "inputs": [{"id": "00001"}], "properties": SOURCE},
    ).json()["results"][0]["properties"]  # fmt: skip
    assert read["hs_object_source_id"] == str(DEFAULT_APP_ID)
    found = call(
        sandbox, "POST", f"{V}/products/search",
        {"filterGroups": [{"filters": [
            {"propertyName": "hs_object_source", "operator": "EQ", "value": "INTEGRATION"}]}],
         "properties": ["hs_sku", *SOURCE]},
    ).json()["results"]  # fmt: skip
    assert [r["properties"]["hs_sku"] for r in found] == ["00001"]
    plain = call(sandbox, "GET", f"{V}/products/{found[0]['id']}").json()["properties"]
    assert "hs_object_source" not in plain  # like any property, only when asked for


@pytest.mark.parametrize("prop", [*SOURCE, *USERS])
def test_the_source_cannot_be_written(sandbox: Sandbox, prop: str) -> None:
    created = call(
        sandbox, "POST", f"{V}/products/batch/create", {"inputs": [product(1, **{prop: "1"})]}
    )
    assert refused(created) == ["READ_ONLY_VALUE"]
    assert sandbox.records("products") == []
    (made,) = sandbox.store.create_many("products", [({"name": "x"}, [])])
    updated = call(
        sandbox, "POST", f"{V}/products/batch/update",
        {"inputs": [{"id": made["id"], "properties": {prop: "1"}, "objectWriteTraceId": "u"}]},
    )  # fmt: skip
    assert refused(updated) == ["READ_ONLY_VALUE"]
    assert source_of(sandbox, made["id"])["hs_object_source_id"] == str(DEFAULT_APP_ID)
    listed = call(sandbox, "GET", "/crm/properties/2026-03/products").json()["results"]
    (definition,) = [d for d in listed if d["name"] == prop]
    assert definition["modificationMetadata"]["readOnlyValue"] is True


def test_a_token_says_its_app_portal_and_user(make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(app_ids={"oauth-1": 5_550_001}, portals={"oauth-1": 111})
    info = "/oauth/v2/private-apps/get/access-token-info"
    private = requests.post(f"{box.url}{info}", json={"tokenKey": TOKEN}, headers=AUTH, timeout=10)
    assert private.status_code == 200
    assert private.json() | {"scopes": []} == {
        "userId": DEFAULT_USER_ID, "hubId": 4_242_424, "appId": DEFAULT_APP_ID, "scopes": []
    }  # fmt: skip
    assert "crm.objects.products.write" in private.json()["scopes"]
    oauth = call(box, "GET", "/oauth/v1/access-tokens/oauth-1").json()
    assert (oauth["app_id"], oauth["hub_id"], oauth["token_type"]) == (5_550_001, 111, "access")
    # Each endpoint describes its own kind of token only, and a token's details may be refused.
    assert call(box, "GET", f"/oauth/v1/access-tokens/{TOKEN}").status_code == 404
    other = requests.post(
        f"{box.url}{info}", json={"tokenKey": "oauth-1"}, headers=AUTH, timeout=10
    )
    assert other.status_code == 404
    assert "oauth-1" not in other.text
    assert requests.post(f"{box.url}{info}", json={}, headers=AUTH, timeout=10).status_code == 400
    box.config.token_info_status = 403
    refused = requests.post(f"{box.url}{info}", json={"tokenKey": TOKEN}, headers=AUTH, timeout=10)
    assert (refused.status_code, refused.json()["category"]) == (403, "MISSING_SCOPES")
