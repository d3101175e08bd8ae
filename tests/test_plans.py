"""Plans: the shipped shop workbook in one command, every reference resolved and read back,
a second run that writes nothing, bad keys named by cell, and plan files that are wrong."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import requests

from importer.sandbox import Sandbox
from importer.state.plan_journal import list_plan_runs

from .conftest import ROOT, TOKEN, CliRun, read_sheet, write_csv, write_mapping

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
    assert posts == ["/crm/objects/2026-09/contacts/batch/read"]
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
    book = openpyxl.load_workbook(retry)
    assert set(book.sheetnames) == {"Orders", "Order lines", "Products"}
    assert book["Products"].max_row == 1  # its header alone: the workbook stands in for the input


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


def test_keys_of_records_this_machine_never_imported_are_read_or_searched(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    """No journal knows them: a unique property is read (batch/read), another searched."""
    body = {
        "inputs": [{"properties": {"hs_sku": f"E-{i}", "name": f"Elsewhere {i}"}} for i in range(3)]
    }
    made = requests.post(
        f"{sandbox.url}/crm/objects/2026-09/products/batch/create",
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert made.status_code == 201
    ids = {r["properties"]["hs_sku"]: r["id"] for r in made.json()["results"]}
    mapping = write_mapping(
        tmp_path / "l.yaml",
        "object_type: line_items\nkey: Line\ncolumns:\n  Line: name\n"
        "  SKU: {property: hs_product_id, to: products, by: hs_sku}\n",
    )
    named = write_mapping(
        tmp_path / "n.yaml",
        "object_type: line_items\nkey: Line\ncolumns:\n  Line: name\n"
        "  Product: {property: hs_product_id, to: products, by: name}\n",
    )
    data = write_csv(tmp_path / "l.csv", [["Line", "SKU", "Product"], ["L1", "E-1", "Elsewhere 2"]])
    before = len(sandbox.received)
    for mapping_file, suffix in ((mapping, "a"), (named, "b")):
        result = run_cli("run", "-m", mapping_file, data, "--base-url", sandbox.url,
                         "--state-dir", tmp_path / f"state-{suffix}", "--search-settle", "0",
                         "--out", tmp_path / f"{suffix}.xlsx")  # fmt: skip
        assert result.code == 0, result.message
    paths = [r.path for r in sandbox.received[before:] if r.method == "POST"]
    assert "/crm/objects/2026-09/products/batch/read" in paths  # hs_sku: unique in the portal
    assert "/crm/objects/2026-09/products/search" in paths  # name: not unique, so searched
    products = sorted(r["properties"]["hs_product_id"] for r in sandbox.records("line_items"))
    assert products == sorted([ids["E-1"], ids["E-2"]])


def test_a_crash_between_steps_and_the_rerun_lose_nothing_and_duplicate_nothing(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    box = make_sandbox(latency=0.2)
    plan = shop(tmp_path)
    args = ["run", "--plan", str(plan), "--base-url", box.url, "--state-dir",
            str(tmp_path / "state"), "--batch-size", "10", "--concurrency", "2"]  # fmt: skip
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": TOKEN}
    victim = subprocess.Popen(
        [sys.executable, "-m", "importer", *args, "--out", str(tmp_path / "killed.xlsx")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    # Orders and products done, the order lines under way: between and within steps.
    while time.monotonic() < deadline and victim.poll() is None:
        if len(box.records("line_items")) >= 20:
            break
        time.sleep(0.02)
    assert victim.poll() is None, "the plan finished before it could be killed"
    victim.send_signal(signal.SIGKILL)
    assert victim.wait(timeout=30) == -signal.SIGKILL
    assert 0 < len(box.records("line_items")) < 101

    # The killed plan's workbook, from its journals: every row once; every record HubSpot
    # holds is a row said created (with its id) or uncertain (sent, no answer recorded).
    (killed,) = list_plan_runs(tmp_path / "state")
    assert not killed["finished"]
    shown = subprocess.run(
        [sys.executable, "-m", "importer", "show", killed["plan_run_id"], "--state-dir",
         str(tmp_path / "state"), "--out", str(tmp_path / "rebuilt.xlsx")],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    lines = read_sheet(tmp_path / "rebuilt.xlsx", "Results Order lines")
    assert len(lines) == 101
    assert Counter(r["Line ref"] for r in lines).most_common(1)[0][1] == 1
    held = {r["id"] for r in box.records("line_items")}
    created = {r["hubspot_id"] for r in lines if r["status"] == "created"}
    uncertain = [r for r in lines if r["status"] == "uncertain"]  # no id known: looked up later
    assert created <= held
    assert len(held) <= len(created) + len(uncertain)
    assert {r["status"] for r in read_sheet(tmp_path / "rebuilt.xlsx", "Results Orders")} == {
        "created"
    }

    rerun = subprocess.run(
        [sys.executable, "-m", "importer", *args, "--out", str(tmp_path / "rerun.xlsx")],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert rerun.returncode == 0, rerun.stderr
    names = Counter(r["properties"]["name"] for r in box.records("line_items"))
    assert len(names) == 101
    assert set(names.values()) == {1}  # no duplicate
    assert len(box.records("orders")) == 40
    assert len(box.records("products")) == 24
    orders = {r["properties"]["hs_external_order_id"]: r["id"] for r in box.records("orders")}
    for item in box.records("line_items"):
        order_ref = item["properties"]["name"].split("/")[0]
        assert linked(box, "line_items", item["id"], "orders") == {orders[order_ref]}


def test_keys_no_step_imports_are_looked_up_before_anything_is_written(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    plan = shop(tmp_path)
    result = run(run_cli, sandbox, tmp_path, plan)
    assert result.code == 0, result.message
    posts = [r.path for r in sandbox.received if r.method == "POST"]
    first_write = next(i for i, p in enumerate(posts) if p.endswith("/batch/create"))
    lookups = [i for i, p in enumerate(posts) if p.endswith(("/batch/read", "/search"))]
    assert lookups  # the customers, by email
    assert max(lookups) < first_write
    assert posts.count("/crm/objects/2026-09/contacts/batch/read") == 1  # each key once


def test_a_key_the_plan_does_not_import_is_looked_up_before_the_first_write(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    """An order line for a product imported last month (not on the Products sheet): its SKU
    is looked up with the customers, before anything is written, and the line points at it."""
    made = requests.post(
        f"{sandbox.url}/crm/objects/2026-09/products/batch/create",
        json={"inputs": [{"properties": {"name": "Gift card", "hs_sku": "GIFT-25"}}]},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert made.status_code == 201, made.text
    gift = made.json()["results"][0]["id"]
    plan = shop(tmp_path)
    path = tmp_path / "data" / "shop.xlsx"
    book = openpyxl.load_workbook(path)
    book["Order lines"]["C4"] = "GIFT-25"
    line_ref = str(book["Order lines"]["A4"].value)
    book.save(path)
    before = len(sandbox.received)
    result = run(run_cli, sandbox, tmp_path, plan)
    assert result.code == 0, result.message
    posts = [r.path for r in sandbox.received[before:] if r.method == "POST"]
    first_write = next(i for i, p in enumerate(posts) if p.endswith("/batch/create"))
    reads = [i for i, p in enumerate(posts) if p.endswith("/products/batch/read")]
    assert len(reads) == 1
    assert reads[0] < first_write
    (item,) = [r for r in sandbox.records("line_items") if r["properties"]["name"] == line_ref]
    assert item["properties"]["hs_product_id"] == gift


def test_run_plan_from_python_needs_no_input_or_mapping_in_its_options(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    from importer import RunOptions, run_plan

    result = run_plan(
        ROOT / "mappings" / "shop" / "plan.yaml",
        RunOptions(token=TOKEN, base_url=sandbox.url, state_dir=tmp_path / "state"),
        out=tmp_path / "out.xlsx",
    )
    assert result.workbook == tmp_path / "out.xlsx"
