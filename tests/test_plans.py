"""Plans: the shipped shop workbook in one command, every reference resolved and read back,
a second run that writes nothing, bad keys named by cell, and plan files that are wrong."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from importer.sandbox import Sandbox

from .conftest import ROOT, CliRun, read_sheet, write_mapping

Runner = Callable[..., CliRun]


def shop(tmp: Path) -> Path:
    """A copy of the shipped example (plan, mappings, workbook) to change freely."""
    shutil.copytree(ROOT / "mappings" / "shop", tmp / "mappings" / "shop")
    (tmp / "data").mkdir()
    shutil.copy(ROOT / "data" / "shop.xlsx", tmp / "data" / "shop.xlsx")
    return tmp / "mappings" / "shop" / "plan.yaml"


def run(run_cli: Runner, box: Sandbox, tmp: Path, plan: Path, *extra: Any) -> CliRun:
    return run_cli("run", "--plan", plan, "--base-url", box.url, "--state-dir", tmp / "state",
                   "--out", tmp / "out.xlsx", *extra)  # fmt: skip


def linked(box: Sandbox, from_type: str, rid: str, to_type: str) -> set[str]:
    return {t for t, *_ in box.store.linked(from_type, rid, to_type)}


def test_the_shop_imports_in_one_command_with_every_reference_resolved(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    plan = shop(tmp_path)
    result = run(run_cli, sandbox, tmp_path, plan)
    assert result.code == 0, result.message
    # Steps run in the order their references need, whatever the plan file's order.
    order = [line.split(" (")[0] for line in result.out.splitlines() if " rows: " in line]
    assert order.index("Order lines") > max(order.index("Orders"), order.index("Products"))
    names = openpyxl.load_workbook(tmp_path / "out.xlsx").sheetnames
    assert names == ["Summary", *[f"Results {n}" for n in order], "Issues"]

    book = openpyxl.load_workbook(ROOT / "data" / "shop.xlsx")
    emails = {
        str(o[0]): str(o[1]).strip().lower()
        for o in book["Orders"].iter_rows(min_row=2, values_only=True)
    }
    lines = list(book["Order lines"].iter_rows(min_row=2, values_only=True))
    contacts = {r["properties"]["email"]: r["id"] for r in sandbox.records("contacts")}
    orders = {r["properties"]["hs_external_order_id"]: r["id"] for r in sandbox.records("orders")}
    products = {r["properties"]["hs_sku"]: r["id"] for r in sandbox.records("products")}
    assert len(orders) == 40
    for ref, email in emails.items():
        assert linked(sandbox, "orders", orders[ref], "contacts") == {contacts[email]}
    made = {r["properties"]["name"]: r for r in sandbox.records("line_items")}
    assert len(made) == len(lines)
    for line_ref, order_ref, sku, *_ in lines:
        item = made[str(line_ref)]
        assert item["properties"]["hs_product_id"] == products[str(sku)]
        assert linked(sandbox, "line_items", item["id"], "orders") == {orders[str(order_ref)]}

    before = len(sandbox.received)
    again = run(run_cli, sandbox, tmp_path, plan)
    assert again.code == 0, again.message
    posts = [r.path for r in sandbox.received[before:] if r.method == "POST"]
    # No write; the one lookup is of the customers, which no step imports (contacts by email).
    assert posts == ["/crm/objects/2026-03/contacts/batch/read"]
    assert "101 rows: 101 unchanged" in again.out


def test_bad_keys_are_named_by_cell_and_dependants_of_a_bad_row_are_invalid(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    plan = shop(tmp_path)
    path = tmp_path / "data" / "shop.xlsx"
    book = openpyxl.load_workbook(path)
    book["Order lines"]["C2"] = "X-999"  # an unknown SKU
    book["Orders"]["B3"] = "nobody@example.com"  # an unknown customer: WEB-10002 is invalid
    second_order = book["Orders"]["A3"].value
    book.save(path)
    result = run(run_cli, sandbox, tmp_path, plan)
    assert result.code == 1
    issues = {i["cell"]: i for i in read_sheet(tmp_path / "out.xlsx", "Issues")}
    assert issues["'Order lines'!C2"]["message"] == 'no products record has hs_sku "X-999"'
    assert issues["Orders!B3"]["message"] == 'no contacts record has email "nobody@example.com"'
    dependants = [i for i in issues.values() if i["problem"] == "depends_on"]
    assert dependants
    assert all(f'"{second_order}" (Orders!A3) was not imported' in i["message"] for i in dependants)
    lines = read_sheet(tmp_path / "out.xlsx", "Results Order lines")
    bad = {r["Line ref"] for r in lines if r["status"] == "invalid"}
    assert {r["Line ref"] for r in lines if r["Order ref"] == second_order} <= bad
    # The retry workbook has the bad rows of each step under its sheet's name.
    (retry,) = tmp_path.glob("plan-retry-*.xlsx")  # beside the results workbook
    assert set(openpyxl.load_workbook(retry).sheetnames) == {"Orders", "Order lines"}


def test_check_reports_unresolved_references_without_writing(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    plan = shop(tmp_path)
    path = tmp_path / "data" / "shop.xlsx"
    book = openpyxl.load_workbook(path)
    book["Order lines"]["C5"] = "X-404"
    book.save(path)
    result = run_cli("check", "--plan", plan, "--base-url", sandbox.url,
                     "--state-dir", tmp_path / "state", "--out", tmp_path / "out.xlsx")  # fmt: skip
    assert result.code == 1
    issues = read_sheet(tmp_path / "out.xlsx", "Issues")
    assert [i["cell"] for i in issues] == ["'Order lines'!C5"]
    assert [
        r.path for r in sandbox.received if r.method == "POST" and "/batch/create" in r.path
    ] == []
    lines = read_sheet(tmp_path / "out.xlsx", "Results Order lines")
    assert {r["status"] for r in lines} == {"would_create", "invalid"}


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ("steps: []\n", "steps: required"),
        ("input: nowhere.xlsx\nsteps:\n  - mapping: m.yaml\n", "steps[0].input: "),
        ("steps:\n  - mapping: m.yaml\n    sheets: A\n", "steps[0].sheets: not a step key"),
        ("steps:\n  - mapping: m.yaml\n    input: d.csv\n  - mapping: m.yaml\n    input: d.csv\n"
         "steps: []\n", "'steps' is given twice"),
    ],
)  # fmt: skip
def test_a_wrong_plan_file_is_named(
    tmp_path: Path, run_cli: Runner, plan: str, message: str
) -> None:
    write_mapping(tmp_path / "m.yaml", "object_type: products\ncolumns: {SKU: hs_sku}\n")
    (tmp_path / "d.csv").write_text("SKU\nA\n", encoding="utf-8")
    (tmp_path / "plan.yaml").write_text(plan, encoding="utf-8")
    result = run_cli("check", "--plan", tmp_path / "plan.yaml", "--base-url", "http://127.0.0.1:9")
    assert result.code == 2
    assert message in result.message


def test_steps_that_refer_to_each_other_are_a_cycle(tmp_path: Path, run_cli: Runner) -> None:
    link = "associations:\n  - {{column: {c}, to: {t}, by: {b}, types: [{{associationCategory: "
    link += "HUBSPOT_DEFINED, associationTypeId: {n}}}]}}\n"
    write_mapping(
        tmp_path / "a.yaml",
        "object_type: orders\nkey: Ref\ncolumns:\n  Ref: hs_external_order_id\n"
        + link.format(c="Line", t="line_items", b="name", n=513),
    )
    write_mapping(
        tmp_path / "b.yaml",
        "object_type: line_items\nkey: Line\ncolumns:\n  Line: name\n"
        + link.format(c="Ref", t="orders", b="hs_external_order_id", n=514),
    )
    (tmp_path / "d.csv").write_text("Ref,Line\nO1,L1\n", encoding="utf-8")
    (tmp_path / "plan.yaml").write_text(
        "input: d.csv\nsteps:\n  - mapping: a.yaml\n  - mapping: b.yaml\n", encoding="utf-8"
    )
    result = run_cli("check", "--plan", tmp_path / "plan.yaml", "--base-url", "http://127.0.0.1:9")
    assert result.code == 2
    assert (
        "the steps refer to each other in a cycle: d (orders) -> d (line_items) -> d (orders)"
        in result.message
    )


def test_plan_and_mapping_together_are_refused(tmp_path: Path, run_cli: Runner) -> None:
    result = run_cli(
        "run", "--plan", tmp_path / "p.yaml", "-m", tmp_path / "m.yaml", tmp_path / "d.csv"
    )
    assert result.code == 2
    assert "give --plan alone" in result.message
    missing = run_cli("run", tmp_path / "d.csv")
    assert missing.code == 2
    assert "--mapping is missing" in missing.message
