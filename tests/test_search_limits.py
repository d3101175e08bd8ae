"""The sandbox's search holds HubSpot's limits (since August 2024), over HTTP: 5 filter groups,
10 filters a group, 25 filters in all, 100 values in an `IN`, 200 results a page and 10,000 in
all. Up to each limit a search is answered; one past it is HubSpot's 400 error body."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from jsonschema import Draft202012Validator

from importer.sandbox import Sandbox
from importer.sandbox.search import SearchQuery

from .conftest import TOKEN

SEARCH = "/crm/objects/2026-03/contacts/search"
SCHEMAS = json.loads((Path(__file__).parent / "hubspot_schemas.json").read_text("utf-8"))


def search(box: Sandbox, body: Any) -> requests.Response:
    return requests.post(
        f"{box.url}{SEARCH}", json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )


def eq(n: int) -> dict[str, Any]:
    return {"propertyName": "lastname", "operator": "EQ", "value": f"Name {n}"}


def groups(*sizes: int) -> dict[str, Any]:
    """A body with a filter group of each size."""
    return {"filterGroups": [{"filters": [eq(n) for n in range(size)]} for size in sizes]}


def in_list(n: int) -> dict[str, Any]:
    """A body with one IN filter of `n` values."""
    values = [f"Name {i}" for i in range(n)]
    flt = {"propertyName": "lastname", "operator": "IN", "values": values}
    return {"filterGroups": [{"filters": [flt]}]}


def refused(r: requests.Response, problem: str) -> None:
    """HubSpot's 400 for a search past a limit: its error body, naming the limit."""
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["category"] == "VALIDATION_ERROR"
    assert problem in body["message"]
    validator = Draft202012Validator({**SCHEMAS, "$ref": "#/$defs/Error"})
    assert not [e.message for e in validator.iter_errors(body)]


PAST_10000 = "at most 10000 results"
LIMITS = [
    # (what, the body at the limit, the body one past it, what the 400 says)
    ("filter groups", groups(1, 1, 1, 1, 1), groups(1, 1, 1, 1, 1, 1), "Too many filter groups"),
    ("filters a group", groups(10), groups(11), "Too many filters in a group (11)"),
    ("filters in all", groups(10, 10, 5), groups(10, 10, 6), "Too many filters in all groups (26)"),
    ("IN values", in_list(100), in_list(101), "Too many values for IN (101)"),
    ("page", {"limit": 200}, {"limit": 201}, "limit must be between 0 and 200"),
    ("results in all", {"limit": 200, "after": 9_800}, {"limit": 200, "after": 9_801}, PAST_10000),
    ("past the last", {"limit": 1, "after": 9_999}, {"limit": 1, "after": 10_000}, PAST_10000),
]  # fmt: skip


@pytest.mark.parametrize(
    ("at", "past", "problem"), [limit[1:] for limit in LIMITS], ids=[limit[0] for limit in LIMITS]
)
def test_a_search_at_a_limit_is_answered_and_one_past_it_refused(
    sandbox: Sandbox, at: dict[str, Any], past: dict[str, Any], problem: str
) -> None:
    answered = search(sandbox, at)
    assert answered.status_code == 200, answered.text
    assert "results" in answered.json()
    refused(search(sandbox, past), problem)


def test_sorts_are_checked_as_hubspot_takes_them(sandbox: Sandbox) -> None:
    by_id = {"propertyName": "hs_object_id", "direction": "ASCENDING"}
    assert search(sandbox, {"sorts": [by_id]}).status_code == 200
    assert search(sandbox, {"sorts": ["createdate"]}).status_code == 200  # the spec's form
    refused(search(sandbox, {"sorts": [{"propertyName": "hs_object_id", "direction": "UP"}]}),
            "every sort needs a propertyName and a direction")  # fmt: skip
    refused(search(sandbox, {"sorts": "hs_object_id"}), "sorts must be a list")


def test_records_are_ordered_by_the_sorts_ties_by_id() -> None:
    records = [
        {"id": str(i), "properties": {"hs_object_id": str(i), "price": price}}
        for i, price in enumerate(["5", "12", "", "5", "7.5"], start=1)
    ]
    by = lambda body: [r["id"] for r in SearchQuery(body).ordered(records)]  # noqa: E731
    assert by({}) == ["1", "2", "3", "4", "5"]
    assert by({"sorts": [{"propertyName": "price", "direction": "ASCENDING"}]}) == [
        "1", "4", "5", "2", "3"  # 5 < 7.5 < 12 as numbers; no price last
    ]  # fmt: skip
    assert by({"sorts": [{"propertyName": "price", "direction": "DESCENDING"}]}) == [
        "2", "5", "1", "4", "3"
    ]  # fmt: skip
    assert by({"sorts": [{"propertyName": "hs_object_id", "direction": "DESCENDING"}]}) == [
        "5", "4", "3", "2", "1"
    ]  # fmt: skip
