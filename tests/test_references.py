"""References by business key: a cell names another record by its SKU, email or order ref,
and the record's HubSpot id is what is sent (a property, or association targets)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from importer.sandbox import Sandbox

from .conftest import CliRun, read_sheet, write_csv, write_mapping

Runner = Callable[..., CliRun]

PRODUCTS = """\
object_type: products
key: SKU
columns:
  SKU: hs_sku
  Name: name
"""
ORDERS = """\
object_type: orders
key: Ref
columns:
  Ref: hs_external_order_id
associations:
  - column: Customer
    to: contacts
    by: email
    types: [{associationCategory: HUBSPOT_DEFINED, associationTypeId: 507}]
"""
LINES = """\
object_type: line_items
columns:
  Name: name
  SKU: {{property: hs_product_id, to: products, by: hs_sku{on_missing}}}
  Qty: {{property: quantity, type: number}}
associations:
  - column: Order
    to: orders
    by: hs_external_order_id
    types: [{{associationCategory: HUBSPOT_DEFINED, associationTypeId: 514}}]
"""


def run(run_cli: Runner, box: Sandbox, tmp: Path, mapping: Path, data: Path, *extra: Any) -> CliRun:
    return run_cli("run", "-m", mapping, data, "--base-url", box.url, "--state-dir",
                   tmp / "state", "--out", tmp / f"{data.stem}-out.xlsx", *extra)  # fmt: skip


def setup(run_cli: Runner, box: Sandbox, tmp: Path) -> None:
    products = write_csv(tmp / "products.csv", [["SKU", "Name"], ["A-1", "Mug"], ["B-2", "Cap"]])
    assert run(run_cli, box, tmp, write_mapping(tmp / "p.yaml", PRODUCTS), products).code == 0
    orders = write_csv(
        tmp / "orders.csv",
        [
            ["Ref", "Customer"],
            ["O-1", "  Ada.Lovelace@EXAMPLE.com "],
            ["O-2", "alan.turing@example.com"],
        ],
    )
    result = run(run_cli, box, tmp, write_mapping(tmp / "o.yaml", ORDERS), orders)
    assert result.code == 0, result.message


def by(box: Sandbox, object_type: str, prop: str) -> dict[str, str]:
    return {r["properties"][prop]: r["id"] for r in box.records(object_type)}


def test_keys_become_ids_and_links_and_unknown_keys_name_their_cell(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    setup(run_cli, sandbox, tmp_path)
    orders = by(sandbox, "orders", "hs_external_order_id")
    # The customer was found by email, compared as HubSpot stores it (trimmed, lowercased).
    assert {t for t, *_ in sandbox.store.linked("orders", orders["O-1"], "contacts")} == {"1001"}

    lines = write_csv(
        tmp_path / "lines.csv",
        [["Name", "SKU", "Qty", "Order"],
         ["Mug x2", "A-1", "2", "O-1"],
         ["Cap", "B-2", "1", "O-1;O-2"],
         ["Ghost", "X-999", "1", "O-2"],
         ["Lost order", "A-1", "1", "O-404"]],
    )  # fmt: skip
    mapping = write_mapping(tmp_path / "l.yaml", LINES.format(on_missing=""))
    result = run(run_cli, sandbox, tmp_path, mapping, lines)
    assert result.code == 1
    rows = {r["Name"]: r for r in read_sheet(tmp_path / "lines-out.xlsx")}
    assert rows["Ghost"]["status"] == "invalid"
    assert rows["Ghost"]["message"].startswith('B4 (SKU): no products record has hs_sku "X-999"')
    assert 'no orders record has hs_external_order_id "O-404"' in rows["Lost order"]["message"]
    issues = read_sheet(tmp_path / "lines-out.xlsx", "Issues")
    assert {(i["cell"], i["problem"]) for i in issues} == {("B4", "not_found"), ("D5", "not_found")}

    products = by(sandbox, "products", "hs_sku")
    made = {r["properties"]["name"]: r for r in sandbox.records("line_items")}
    assert set(made) == {"Mug x2", "Cap"}  # the invalid rows were not sent
    assert made["Mug x2"]["properties"]["hs_product_id"] == products["A-1"]
    assert made["Cap"]["properties"]["hs_product_id"] == products["B-2"]
    linked = {t for t, *_ in sandbox.store.linked("line_items", made["Cap"]["id"], "orders")}
    assert linked == {orders["O-1"], orders["O-2"]}


def test_keys_resolve_from_the_journal_without_asking_hubspot(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    setup(run_cli, sandbox, tmp_path)
    lines = write_csv(
        tmp_path / "lines.csv", [["Name", "SKU", "Qty", "Order"], ["Mug", "A-1", "1", "O-2"]]
    )
    before = len(sandbox.received)
    result = run(
        run_cli,
        sandbox,
        tmp_path,
        write_mapping(tmp_path / "l.yaml", LINES.format(on_missing="")),
        lines,
    )
    assert result.code == 0, result.message
    asked = [r for r in sandbox.received[before:] if r.path.endswith(("/batch/read", "/search"))]
    # Products and orders were imported by this machine: their journals know the keys, and
    # HubSpot is asked only whether those records are still there (by id, one read a type).
    assert [r.path.split("/")[-3] for r in asked] == ["products", "orders"]
    assert all("idProperty" not in r.body for r in asked)


def test_on_missing_skip_leaves_the_reference_out_and_says_so(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    setup(run_cli, sandbox, tmp_path)
    lines = write_csv(
        tmp_path / "lines.csv", [["Name", "SKU", "Qty", "Order"], ["Ghost", "X-999", "1", "O-1"]]
    )
    mapping = write_mapping(tmp_path / "l.yaml", LINES.format(on_missing=", on_missing: skip"))
    result = run(run_cli, sandbox, tmp_path, mapping, lines)
    assert result.code == 0, result.message
    (row,) = read_sheet(tmp_path / "lines-out.xlsx")
    assert row["status"] == "created"
    assert row["message"] == 'SKU: no products record has hs_sku "X-999", so it was left out'
    (made,) = sandbox.records("line_items")
    assert "hs_product_id" not in {k for k, v in made["properties"].items() if v}


def test_a_key_two_records_have_is_invalid(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    products = write_csv(tmp_path / "p.csv", [["SKU", "Name"], ["A-1", "Mug"], ["A-2", "Mug"]])
    assert (
        run(run_cli, sandbox, tmp_path, write_mapping(tmp_path / "p.yaml", PRODUCTS), products).code
        == 0
    )
    mapping = write_mapping(
        tmp_path / "l.yaml",
        "object_type: line_items\ncolumns:\n  Line: name\n"
        "  Product: {property: hs_product_id, to: products, by: name}\n",
    )
    lines = write_csv(tmp_path / "lines.csv", [["Line", "Product"], ["one", "Mug"]])
    result = run(run_cli, sandbox, tmp_path, mapping, lines, "--search-settle", "0")
    assert result.code == 1
    (row,) = read_sheet(tmp_path / "lines-out.xlsx")
    assert row["status"] == "invalid"
    assert '2 products have name "Mug"' in row["message"]


def test_a_misspelt_by_is_named_before_anything_is_sent(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    mapping = write_mapping(
        tmp_path / "l.yaml",
        "object_type: line_items\ncolumns:\n  Line: name\n"
        "  Product: {property: hs_product_id, to: products, by: hs_skuu}\n",
    )
    lines = write_csv(tmp_path / "lines.csv", [["Line", "Product"], ["one", "A-1"]])
    result = run(run_cli, sandbox, tmp_path, mapping, lines)
    assert result.code == 2
    assert (
        "`by: hs_skuu` is not a products property in this portal (did you mean hs_sku"
        in result.message
    )
    assert sandbox.records("line_items") == []


def test_a_key_search_has_not_caught_up_with_is_invalid_then_found_by_the_next_run(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path, run_cli: Runner
) -> None:
    """Search lags writes: a product made a moment ago elsewhere is not found by name yet.
    The row is invalid (written nowhere, with no guessed id), and the next run links it."""
    import time

    import requests

    from .conftest import TOKEN

    box = make_sandbox(search_lag=1.0)
    made = requests.post(
        f"{box.url}/crm/objects/2026-09/products/batch/create",
        json={"inputs": [{"properties": {"hs_sku": "N-1", "name": "Fresh mug"}}]},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    product = made.json()["results"][0]["id"]
    mapping = write_mapping(
        tmp_path / "l.yaml",
        "object_type: line_items\nkey: Line\ncolumns:\n  Line: name\n"
        "  Product: {property: hs_product_id, to: products, by: name}\n",
    )
    lines = write_csv(tmp_path / "lines.csv", [["Line", "Product"], ["L1", "Fresh mug"]])
    first = run(run_cli, box, tmp_path, mapping, lines, "--search-settle", "0")
    assert first.code == 1
    (row,) = read_sheet(tmp_path / "lines-out.xlsx")
    assert row["status"] == "invalid"
    assert 'no products record has name "Fresh mug"' in row["message"]
    assert box.records("line_items") == []
    time.sleep(1.2)  # search catches up
    second = run(run_cli, box, tmp_path, mapping, lines, "--search-settle", "0")
    assert second.code == 0, second.message
    (item,) = box.records("line_items")
    assert item["properties"]["hs_product_id"] == product
