"""The importer's searches page with `after`, sorted on hs_object_id, within HubSpot's filter
limits, and see a key two records hold even when the two are on different pages (or beyond
the 10,000 results one search may page through).

450 products named K000..K448 in the sandbox, K039 twice: its two records are 40th and 41st by
id, so with pages of 40 they sit on either side of a page boundary."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from importer.api import lookup
from importer.api.client import HubSpotClient, RetryPolicy
from importer.api.lookup import Finder
from importer.core.hubspot import SEARCH_FILTER_GROUPS_MAX, SEARCH_FILTERS_MAX, SEARCH_IN_VALUES_MAX
from importer.sandbox import Sandbox
from importer.stages import resolve

from .conftest import TOKEN, CliRun, read_sheet, write_csv, write_mapping

FAST = RetryPolicy(max_attempts=4, backoff_base=0.01, backoff_max=0.05)
KEYS = [f"K{n:03d}" for n in range(449)]
TWICE = "K039"
BY_ID = [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]


@pytest.fixture
def shop(make_sandbox: Callable[..., Sandbox]) -> Sandbox:
    """A sandbox with the 450 products, created in this order (ids follow it)."""
    box = make_sandbox(seed_records=False)
    names = [*KEYS[:40], TWICE, *KEYS[40:]]
    for start in range(0, len(names), 100):
        inputs = [
            {"properties": {"name": name}, "associations": [], "objectWriteTraceId": f"t{n}"}
            for n, name in enumerate(names[start : start + 100], start)
        ]
        r = requests.post(
            f"{box.url}/crm/objects/2026-03/products/batch/create",
            json={"inputs": inputs},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        assert r.status_code == 201, r.text
    return box


@pytest.fixture
def client(shop: Sandbox) -> Iterator[HubSpotClient]:
    c = HubSpotClient(token=TOKEN, base_url=shop.url, retry=FAST)
    yield c
    c.close()


def by_id(box: Sandbox) -> list[dict[str, Any]]:
    return sorted(box.records("products"), key=lambda r: int(r["id"]))


def ids_of(box: Sandbox) -> dict[str, list[str]]:
    """Name -> the ids of the products with it, by id."""
    out: dict[str, list[str]] = {}
    for record in by_id(box):
        out.setdefault(record["properties"]["name"], []).append(record["id"])
    return out


def searches(box: Sandbox) -> list[dict[str, Any]]:
    return [r.body for r in box.received if r.path.endswith("/search")]


def within_limits(body: dict[str, Any]) -> bool:
    groups = body["filterGroups"]
    filters = [f for g in groups for f in g["filters"]]
    return (
        len(groups) <= SEARCH_FILTER_GROUPS_MAX
        and len(filters) <= SEARCH_FILTERS_MAX
        and all(len(f.get("values", ())) <= SEARCH_IN_VALUES_MAX for f in filters)
    )


def test_the_two_records_of_a_key_straddle_a_page_boundary(shop: Sandbox) -> None:
    # The premise of the tests below: by id, K039's records are the 40th and the 41st.
    names = [r["properties"]["name"] for r in by_id(shop)]
    assert len(names) == 450
    assert names[39] == names[40] == TWICE


def test_a_search_pages_sorted_by_id_and_sees_a_key_held_on_two_pages(
    shop: Sandbox, client: HubSpotClient
) -> None:
    finder = Finder(client, "products", "name", page_size=40)
    found = finder.find(KEYS)
    ids = ids_of(shop)
    assert finder.holders == {TWICE: set(ids[TWICE])}
    # Every key found, each with its own record: no page skipped or repeated a record.
    assert found is not None
    assert set(found) == set(KEYS)
    assert all(found[k] == ids[k][0] for k in KEYS)
    bodies = searches(shop)
    # 449 keys: 5 searches of at most 100 values (101, 100, 100, 100, 49 results), in pages
    # of 40 from `after`, each sorted by id and within every filter limit.
    assert len(bodies) == 3 + 3 + 3 + 3 + 2
    assert all(b["sorts"] == BY_ID and b["limit"] == 40 and within_limits(b) for b in bodies)
    assert [b.get("after") for b in bodies[:3]] == [None, "40", "80"]
    assert [len(b["filterGroups"][0]["filters"][0]["values"]) for b in bodies[::3]] == [
        100, 100, 100, 100, 49
    ]  # fmt: skip


def test_past_the_results_one_search_may_page_through_it_goes_on_above_the_last_id(
    shop: Sandbox, client: HubSpotClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # HubSpot pages no further than 10,000 results; here 40, so that K039's two records fall
    # on either side of that edge too.
    monkeypatch.setattr(lookup, "SEARCH_TOTAL_MAX", 40)
    finder = Finder(client, "products", "name", page_size=20)
    found = finder.find(KEYS[:100])
    ids = ids_of(shop)
    assert finder.holders == {TWICE: set(ids[TWICE])}
    assert found is not None
    assert set(found) == set(KEYS[:100])
    assert all(found[k] == ids[k][0] for k in KEYS[:100])
    bodies = searches(shop)
    assert all(int(b.get("after") or 0) + b["limit"] <= 40 for b in bodies)
    above = [f for b in bodies for f in b["filterGroups"][0]["filters"][1:]]
    first_k039 = ids[TWICE][0]
    assert above[0] == {"propertyName": "hs_object_id", "operator": "GT", "value": first_k039}
    assert all(within_limits(b) and b["sorts"] == BY_ID for b in bodies)


def test_a_reference_by_a_key_two_records_hold_on_two_pages_is_ambiguous(
    shop: Sandbox, tmp_path: Path, run_cli: Callable[..., CliRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(resolve, "Finder", functools.partial(Finder, page_size=40))
    lines = write_csv(tmp_path / "lines.csv", [["Line", "Product"], *[[f"L-{k}", k] for k in KEYS]])
    mapping = write_mapping(
        tmp_path / "lines.yaml",
        "object_type: line_items\n"
        "columns:\n"
        "  Line: name\n"
        "  Product: {property: hs_product_id, to: products, by: name}\n",
    )
    result = run_cli(
        "run", "-m", mapping, lines, "--base-url", shop.url, "--state-dir", tmp_path / "state",
        "--out", tmp_path / "out.xlsx",
    )  # fmt: skip
    assert result.code == 1, result.message
    ids = ids_of(shop)
    rows = {r["Line"]: r for r in read_sheet(tmp_path / "out.xlsx")}
    assert rows[f"L-{TWICE}"]["status"] == "invalid"
    assert (
        f'2 products have name "{TWICE}" ({", ".join(sorted(ids[TWICE]))})'
        in (rows[f"L-{TWICE}"]["message"])
    )
    made = {
        r["properties"]["name"]: r["properties"]["hs_product_id"]
        for r in shop.records("line_items")
    }
    assert made == {f"L-{k}": ids[k][0] for k in KEYS if k != TWICE}
    assert all(b["sorts"] == BY_ID and within_limits(b) for b in searches(shop))
