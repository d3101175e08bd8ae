"""References resolved from a journal are checked to still be in HubSpot before they are sent:
a record deleted or archived since is looked up by its key again (or the row says why it has
no reference), one merged into another is followed to the survivor; and a reference by a
property search must look up waits out search's lag before it calls a key missing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from importer.sandbox import Sandbox
from importer.sandbox.sources import RecordSource

from .conftest import TOKEN, CliRun, read_sheet, write_csv, write_mapping

Runner = Callable[..., CliRun]

PRODUCTS = """\
object_type: products
key: SKU
columns:
  SKU: hs_sku
  Name: name
"""
LINES = """\
object_type: line_items
key: Line
columns:
  Line: name
  SKU: {{property: hs_product_id, to: products, by: {by}{on_missing}}}
"""


def run(run_cli: Runner, box: Sandbox, tmp: Path, mapping: Path, data: Path, *extra: Any) -> CliRun:
    return run_cli("run", "-m", mapping, data, "--base-url", box.url, "--state-dir",
                   tmp / "state", "--out", tmp / f"{data.stem}-out.xlsx", *extra)  # fmt: skip


def import_products(run_cli: Runner, box: Sandbox, tmp: Path, count: int = 2) -> dict[str, str]:
    """Products P-0, P-1... imported by this machine (their journal knows them): SKU -> id."""
    rows = [["SKU", "Name"], *[[f"P-{n}", f"Product {n}"] for n in range(count)]]
    products = write_csv(tmp / "products.csv", rows)
    assert run(run_cli, box, tmp, write_mapping(tmp / "p.yaml", PRODUCTS), products).code == 0
    return {r["properties"]["hs_sku"]: r["id"] for r in box.records("products")}


def import_lines(
    run_cli: Runner, box: Sandbox, tmp: Path, skus: list[str], *extra: Any, **mapping: str
) -> CliRun:
    lines = write_csv(tmp / "lines.csv", [["Line", "SKU"], *[[f"L-{s}", s] for s in skus]])
    text = LINES.format(by=mapping.get("by", "hs_sku"), on_missing=mapping.get("on_missing", ""))
    return run(run_cli, box, tmp, write_mapping(tmp / "l.yaml", text), lines, *extra)


def product_of(box: Sandbox) -> dict[str, str]:
    """Line name -> the product id it refers to."""
    return {
        r["properties"]["name"]: r["properties"].get("hs_product_id") or ""
        for r in box.records("line_items")
    }


def test_a_reference_whose_journal_record_was_archived_takes_the_record_now_holding_the_key(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    ids = import_products(run_cli, sandbox, tmp_path)
    sandbox.store.archive("products", [ids["P-0"]])
    (again,) = sandbox.store.create_many(
        "products", [({"hs_sku": "P-0", "name": "made again by hand"}, [])], RecordSource.by_hand()
    )
    done = import_lines(run_cli, sandbox, tmp_path, ["P-0", "P-1"])
    assert done.code == 0, done.message
    assert product_of(sandbox) == {"L-P-0": again["id"], "L-P-1": ids["P-1"]}


def test_a_reference_whose_journal_record_is_gone_is_invalid_saying_so(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    ids = import_products(run_cli, sandbox, tmp_path)
    sandbox.store.archive("products", [ids["P-0"]])
    done = import_lines(run_cli, sandbox, tmp_path, ["P-0", "P-1"])
    assert done.code == 1
    rows = {r["Line"]: r for r in read_sheet(tmp_path / "lines-out.xlsx")}
    assert rows["L-P-0"]["status"] == "invalid"
    assert rows["L-P-0"]["message"].startswith(
        f'B2 (SKU): no products record has hs_sku "P-0" (the journal\'s record for it, '
        f"{ids['P-0']}, is no longer in HubSpot)"
    )
    assert product_of(sandbox) == {"L-P-1": ids["P-1"]}


def test_a_reference_whose_journal_record_was_merged_follows_the_merge(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    ids = import_products(run_cli, sandbox, tmp_path)
    sandbox.store.merge("products", ids["P-0"], ids["P-1"])
    done = import_lines(run_cli, sandbox, tmp_path, ["P-0"])
    assert done.code == 0, done.message
    assert product_of(sandbox) == {"L-P-0": ids["P-1"]}


def test_journal_references_are_checked_one_read_per_hundred_ids(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    ids = import_products(run_cli, sandbox, tmp_path, count=150)
    before = len(sandbox.received)
    done = import_lines(run_cli, sandbox, tmp_path, sorted(ids))
    assert done.code == 0, done.message
    reads = [
        r.body
        for r in sandbox.received[before:]
        if r.path.endswith("/products/batch/read") or r.path.endswith("/products/search")
    ]
    assert [len(b["inputs"]) for b in reads] == [100, 50]
    assert all("idProperty" not in b for b in reads)


def test_a_non_key_reference_waits_out_search_lag_before_skipping_it(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path, run_cli: Runner
) -> None:
    """A product made a moment ago elsewhere is not found by name yet: the lookup searches
    again once --search-settle has passed, rather than leaving the reference out."""
    box = make_sandbox(search_lag=1.0)
    made = requests.post(
        f"{box.url}/crm/objects/2026-09/products/batch/create",
        json={"inputs": [{"properties": {"hs_sku": "N-1", "name": "Fresh mug"}}]},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    product = made.json()["results"][0]["id"]
    done = import_lines(
        run_cli, box, tmp_path, ["Fresh mug"], "--search-settle", "1.5",
        by="name", on_missing=", on_missing: skip",
    )  # fmt: skip
    assert done.code == 0, done.message
    (row,) = read_sheet(tmp_path / "lines-out.xlsx")
    assert (row["status"], row["message"]) == ("created", None)
    assert product_of(box) == {"L-Fresh mug": product}
