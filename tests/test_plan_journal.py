"""The plan journal: a plan run is one entry of `runs`, `show` names its steps and writes its
workbook again, `undo` takes it back step by step, and a second run of the same plan waits."""

from __future__ import annotations

import csv
import fcntl
import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import requests

from importer.sandbox import Sandbox
from importer.state.plan_journal import list_plan_runs

from .conftest import CliRun, read_sheet
from .test_plans import run, shop

Runner = Callable[..., CliRun]


def spoil(plan: Path) -> None:
    """An unknown SKU and an unknown customer: issues on two steps."""
    path = plan.parents[2] / "data" / "shop.xlsx"
    book = openpyxl.load_workbook(path)
    book["Order lines"]["C2"] = "X-999"
    book["Orders"]["B3"] = "nobody@example.com"
    book.save(path)


def test_a_plan_run_is_one_entry_and_its_workbook_can_be_written_again(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    plan = shop(tmp_path)
    spoil(plan)
    state = tmp_path / "state"
    result = run(run_cli, sandbox, tmp_path, plan, "--summary-json", tmp_path / "s.json")
    assert result.code == 1, result.message
    summary = json.loads((tmp_path / "s.json").read_text())
    (recorded,) = list_plan_runs(state)
    assert summary["plan_run_id"] == recorded["plan_run_id"]
    # Keys no step's rows hold, each looked up once before the first write: the customers
    # (and the unknown one) by email, and the unknown SKU. Whether a key is unique comes from
    # the definitions the plan's check read (one rate limiter): never asked again.
    assert summary["plan_requests"]["lookups"] == 2
    assert recorded["plan_run_id"].startswith("plan-")
    assert [s["run_id"] for s in recorded["steps"]] == [s["run_id"] for s in summary["steps"]]
    assert all(s["state"] == "done" for s in recorded["steps"])
    assert recorded["workbook"] == str(tmp_path / "out.xlsx")

    listed = run_cli("runs", "--state-dir", state)
    assert listed.code == 0
    # One entry for the plan, its steps beneath it; the step runs are not listed again.
    assert listed.out.count(recorded["plan_run_id"]) == 1
    for step in recorded["steps"]:
        assert listed.out.count(step["run_id"]) == 1
    assert "Order lines (line_items), run " in listed.out

    shown = run_cli("show", "plan-", "--state-dir", state)
    assert shown.code == 0, shown.message
    assert "Plan journal:" in shown.out
    assert "3. Order lines (line_items)" in shown.out
    # A step's own `show` points at the plan's workbook.
    step = run_cli("show", recorded["steps"][0]["run_id"], "--state-dir", state)
    assert f"(a step of plan run {recorded['plan_run_id']})" in step.out

    again = run_cli("show", recorded["plan_run_id"], "--state-dir", state, "--out",
                    tmp_path / "again.xlsx")  # fmt: skip
    assert again.code == 0, again.message
    own = openpyxl.load_workbook(tmp_path / "out.xlsx").sheetnames
    assert openpyxl.load_workbook(tmp_path / "again.xlsx").sheetnames == own
    for sheet in own[1:]:
        assert read_sheet(tmp_path / "again.xlsx", sheet) == read_sheet(
            tmp_path / "out.xlsx", sheet
        )


def test_undo_of_a_plan_run_archives_its_records_last_step_first(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    plan = shop(tmp_path)
    state = tmp_path / "state"
    assert run(run_cli, sandbox, tmp_path, plan).code == 0
    (recorded,) = list_plan_runs(state)
    before = len(sandbox.received)
    undone = run_cli("undo", recorded["plan_run_id"], "--state-dir", state, "--yes",
                     "--base-url", sandbox.url)  # fmt: skip
    assert undone.code == 0, undone.message
    for kind in ("line_items", "orders", "products"):
        assert sandbox.records(kind) == []
    archives = [r.path.split("/")[-3] for r in sandbox.received[before:]
                if r.path.endswith("/batch/archive")]  # fmt: skip
    assert archives[0] == "line_items"  # the lines go before what they point at
    assert set(archives) == {"line_items", "orders", "products"}
    assert list_plan_runs(state)[0]["undone"]
    twice = run_cli("undo", recorded["plan_run_id"], "--state-dir", state, "--yes")
    assert twice.code == 0
    assert "already undone" in twice.out
    # The records can be imported again: the journals forgot what undo archived.
    assert run(run_cli, sandbox, tmp_path, plan).code == 0
    assert len(sandbox.records("line_items")) == 101


def test_a_second_run_of_the_same_plan_stops_before_sending_anything(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    plan = shop(tmp_path)
    state = tmp_path / "state"
    assert run(run_cli, sandbox, tmp_path, plan).code == 0
    (lock,) = (state / "plans").glob("*.lock")
    with lock.open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        before = len(sandbox.received)
        second = run(run_cli, sandbox, tmp_path, plan)
    assert second.code == 3
    assert "another import is running against this plan and portal" in second.message
    assert not [r for r in sandbox.received[before:] if r.method == "POST"]


def test_a_mistake_in_the_last_step_stops_the_plan_before_anything_is_written(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    plan = shop(tmp_path)
    lines = plan.with_name("line_items.yaml")
    lines.write_text(lines.read_text().replace("by: hs_sku}", "by: hs_skuu}"))
    result = run(run_cli, sandbox, tmp_path, plan)
    assert result.code == 2
    assert "`by: hs_skuu` is not a products property in this portal" in result.message
    assert "did you mean hs_sku" in result.message
    assert not [r for r in sandbox.received if r.path.endswith(("/batch/create", "/batch/upsert"))]
    assert list_plan_runs(tmp_path / "state") == []  # stopped before it began: not a run

    lines.write_text(lines.read_text().replace("by: hs_skuu}", "by: hs_sku}"))
    path = tmp_path / "data" / "shop.xlsx"
    book = openpyxl.load_workbook(path)
    book["Order lines"]["C1"] = "Sku code"  # the mapping's SKU column is gone
    book.save(path)
    result = run(run_cli, sandbox, tmp_path, plan)
    assert result.code == 2
    assert "column 'SKU' is not in shop.xlsx, sheet Order lines" in result.message
    assert not [r for r in sandbox.received if r.path.endswith("/batch/create")]


def test_a_step_that_cannot_start_after_others_wrote_is_reported_in_the_workbook(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    plan = shop(tmp_path)
    state = tmp_path / "state"
    # A check names the journals; then a single-sheet import of order lines (here: its lock)
    # holds their journal while the plan runs.
    first = run_cli("check", "--plan", plan, "--base-url", sandbox.url, "--state-dir", state,
                    "--out", tmp_path / "check.xlsx")  # fmt: skip
    assert first.code == 0, first.message
    (journal,) = state.glob("*-line_items.sqlite")
    with journal.with_suffix(".lock").open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = run(run_cli, sandbox, tmp_path, plan)
    assert result.code == 3, result.message
    assert len(sandbox.records("orders")) == 40  # the steps before it wrote
    assert sandbox.records("line_items") == []
    rows = read_sheet(tmp_path / "out.xlsx", "Results Order lines")
    assert len(rows) == 101
    assert {r["status"] for r in rows} == {"not_sent"}
    assert "this step could not run (another import is running" in rows[0]["message"]
    (recorded,) = list_plan_runs(state)
    assert [s["state"] for s in recorded["steps"]] == ["done", "done", "not run"]
    # Once the lock is free, the rerun sends only the lines.
    again = run(run_cli, sandbox, tmp_path, plan)
    assert again.code == 0, again.message
    assert len(sandbox.records("line_items")) == 101
    assert len(sandbox.records("orders")) == 40


def test_a_plan_run_against_another_portal_starts_afresh_there(
    make_sandbox: Callable[..., Sandbox],
    tmp_path: Path,
    run_cli: Runner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One base URL, two portals: the journals of the rehearsal portal do not stand for
    production (no row `unchanged` there, no key resolved to a rehearsal id)."""
    box = make_sandbox(
        portals={"pat-rehearsal": 111, "pat-production": 222},
        account_types={111: "DEVELOPER_TEST", 222: "STANDARD"},
    )
    plan = shop(tmp_path)
    # Ids are per portal: one record made first in production sets its ids apart from the
    # rehearsal's, so an id taken from the wrong journal shows.
    made = requests.post(
        f"{box.url}/crm/objects/2026-03/products/batch/create",
        json={"inputs": [{"properties": {"name": "Made by hand", "hs_sku": "HAND-1"}}]},
        headers={"Authorization": "Bearer pat-production"},
        timeout=10,
    )
    assert made.status_code == 201, made.text
    for token in ("pat-rehearsal", "pat-production"):
        monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", token)
        result = run(run_cli, box, tmp_path, plan)
        assert result.code == 0, result.message
        assert "101 rows: 101 created" in result.out
    rehearsal, production = box.tenant(111), box.tenant(222)
    book = openpyxl.load_workbook(tmp_path / "data" / "shop.xlsx")
    lines = {str(r[0]): (str(r[1]), str(r[2])) for r in book["Order lines"].iter_rows(
        min_row=2, values_only=True)}  # fmt: skip
    for portal in (rehearsal, production):
        sku = {r["properties"]["hs_sku"]: r["id"] for r in portal.records("products")}
        order = {r["properties"]["hs_external_order_id"]: r["id"] for r in portal.records("orders")}
        items = portal.records("line_items")
        assert len(items) == 101
        for item in items:
            order_ref, line_sku = lines[item["properties"]["name"]]
            assert item["properties"]["hs_product_id"] == sku[line_sku]
            linked = {t for t, *_ in portal.store.linked("line_items", item["id"], "orders")}
            assert linked == {order[order_ref]}
    ids = [{r["id"] for r in p.records("products")} for p in (rehearsal, production)]
    assert ids[0] != ids[1]
    state = tmp_path / "state"
    portals = sorted(r["portal"] for r in list_plan_runs(state))
    assert portals == ["111 (DEVELOPER_TEST)", "222 (STANDARD)"]
    assert len(list((state / "plans").glob("*.sqlite"))) == 2
    again = run(run_cli, box, tmp_path, plan)  # production's, tonight: nothing to write
    assert again.code == 0
    assert "101 rows: 101 unchanged" in again.out


def test_retry_files_keep_each_input_s_format(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    """Products from a semicolon CSV, the rest from the workbook: the bad products go back in
    a CSV like theirs, the bad order lines in a workbook sheet named as theirs."""
    plan = shop(tmp_path)
    book = openpyxl.load_workbook(tmp_path / "data" / "shop.xlsx")
    rows = [[str(c.value) for c in row] for row in book["Products"].iter_rows()]
    rows[3][2] = "n/a"  # a price that is not a number
    book["Order lines"]["C2"] = "X-999"
    book.save(tmp_path / "data" / "shop.xlsx")
    with (tmp_path / "data" / "products.csv").open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, delimiter=";").writerows(rows)
    plan.write_text(
        plan.read_text().replace("    sheet: Products", "    input: ../../data/products.csv")
    )
    result = run(run_cli, sandbox, tmp_path, plan, "--summary-json", tmp_path / "s.json")
    assert result.code == 1, result.message
    files = [Path(p) for p in json.loads((tmp_path / "s.json").read_text())["retry_files"]]
    assert [p.suffix for p in files] == [".xlsx", ".csv"]
    sheets = openpyxl.load_workbook(files[0])
    assert sheets.sheetnames == ["Orders", "Order lines"]
    assert sheets["Orders"].max_row == 1  # its header alone: no order was bad
    text = files[1].read_text(encoding="utf-8-sig").splitlines()
    assert text == [";".join(rows[0]), ";".join(rows[3])]
    assert f"Retry file (the rows to fix, for a CSV step): {files[1]}" in result.out


def test_a_damaged_plan_journal_is_named_and_its_records_are_not_lost(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    plan = shop(tmp_path)
    state = tmp_path / "state"
    assert run(run_cli, sandbox, tmp_path, plan).code == 0
    (journal,) = (state / "plans").glob("*.sqlite")
    for extra in (state / "plans").glob("*.sqlite-*"):
        extra.unlink()  # its write-ahead log: the damage is the file itself
    journal.write_bytes(b"this is not a database, " * 200)
    before = len(sandbox.received)
    broken = run(run_cli, sandbox, tmp_path, plan)
    assert broken.code == 2
    assert f"the plan journal {journal} cannot be read" in broken.message
    assert "Move it aside" in broken.message
    assert not [r for r in sandbox.received[before:] if r.method == "POST"]
    listed = run_cli("runs", "--state-dir", state)
    assert listed.code == 2
    assert str(journal) in listed.message

    journal.rename(journal.with_name(journal.name + ".damaged"))
    again = run(run_cli, sandbox, tmp_path, plan)
    assert again.code == 0, again.message
    # The records' journals were not touched: nothing is created twice.
    assert "101 rows: 101 unchanged" in again.out
    assert len(sandbox.records("line_items")) == 101


def test_a_signal_as_a_step_starts_is_reported_in_the_plan_s_workbook(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM while a later step loads (before its upload, whose own handling settles
    batches in flight): the steps before it are reported as done, its rows `not_sent`."""
    from importer.core import shutdown
    from importer.plans import runner as plans

    real = plans.run_import

    def signalled(options: Any, **kw: Any) -> Any:
        if options.sheet == "Order lines":
            raise shutdown.Stop(signal.SIGTERM)
        return real(options, **kw)

    monkeypatch.setattr(plans, "run_import", signalled)
    plan = shop(tmp_path)
    result = run(run_cli, sandbox, tmp_path, plan)
    assert result.code == 143, result.message
    assert len(sandbox.records("orders")) == 40
    rows = read_sheet(tmp_path / "out.xlsx", "Results Order lines")
    assert len(rows) == 101
    assert {r["status"] for r in rows} == {"not_sent"}
    assert rows[0]["message"].startswith("not sent: stopped by SIGTERM")
    (recorded,) = list_plan_runs(tmp_path / "state")
    assert [s["state"] for s in recorded["steps"]] == ["done", "done", "not run"]
    assert recorded["finished"]
    monkeypatch.setattr(plans, "run_import", real)
    again = run(run_cli, sandbox, tmp_path, plan)
    assert again.code == 0, again.message
    assert len(sandbox.records("line_items")) == 101


def test_the_retry_workbook_fixed_is_the_plan_s_next_input(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    """Fix the bad rows in the retry workbook, point the plan's `input:` at it, run: the rows
    left out are imported, each once, and the rows imported before are not sent again."""
    plan = shop(tmp_path)
    spoil(plan)
    first = run(run_cli, sandbox, tmp_path, plan, "--summary-json", tmp_path / "s.json")
    assert first.code == 1
    (retry,) = [Path(p) for p in json.loads((tmp_path / "s.json").read_text())["retry_files"]]
    book = openpyxl.load_workbook(retry)
    # Every step's sheet is there, so the workbook can stand in for the input.
    assert sorted(book.sheetnames) == ["Order lines", "Orders", "Products"]
    assert book["Products"].max_row == 1  # the header alone: no product row was bad
    lines = book["Order lines"]
    header = [c.value for c in lines[1]]
    for row in lines.iter_rows(min_row=2):
        cell = row[header.index("SKU")]
        if cell.value == "X-999":
            cell.value = "SH-0001"
    orders = book["Orders"]
    header = [c.value for c in orders[1]]
    for row in orders.iter_rows(min_row=2):
        row[header.index("Customer email")].value = "ada.lovelace@example.com"
    fixed = tmp_path / "fixed.xlsx"
    book.save(fixed)
    plan.write_text(plan.read_text().replace("input: ../../data/shop.xlsx", f"input: {fixed}"))
    before = len(sandbox.received)
    second = run(run_cli, sandbox, tmp_path, plan)
    assert second.code == 0, second.message
    # A sheet with its header alone is a step with nothing to do (no orders today), not an
    # error that stops the plan, as it is for a run of one sheet.
    assert "Products (products): 0 rows: nothing to do." in second.out
    assert len(sandbox.records("orders")) == 40
    assert len(sandbox.records("line_items")) == 101
    creates = [r for r in sandbox.received[before:] if r.path.endswith("/batch/create")]
    assert sum(len(r.body["inputs"]) for r in creates) == 1 + len(
        [r for r in read_sheet(tmp_path / "out.xlsx", "Results Order lines")]
    )
