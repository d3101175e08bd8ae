"""Write rules per column (`write: if_empty`, `write: create_only`): creates send every value;
writes to records that exist hold back what a rule forbids, HubSpot's values read first (and
only when a rule needs them); the workbook says per row what was held back, and a second night
with the same sheet sends nothing, reads included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from importer.sandbox import Sandbox
from importer.sandbox.config import Fault, Received
from importer.state.journal import Journal, journal_path

from .conftest import TOKEN, CliRun, read_sheet, write_csv, write_mapping

Runner = Callable[..., CliRun]

MAPPING = """\
object_type: products
key: SKU
columns:
  SKU: {property: hs_sku, required: true}
  Name: name
  Price: {property: price, type: number}
  Description: {property: description, write: if_empty}
  Brand: {property: brand, write: create_only}
"""
HEADER = ["SKU", "Name", "Price", "Description", "Brand"]
HAS_VALUE = "description (if_empty: HubSpot has a value)"


def night(
    run_cli: Runner, box: Sandbox, tmp: Path, rows: Sequence[Sequence[str]], out: str, *extra: str
) -> tuple[CliRun, list[Received], dict[str, dict[str, Any]]]:
    """One run of the sheet `rows`: its CLI result, the requests HubSpot received, and the
    Results rows by SKU."""
    mapping = write_mapping(tmp / "m.yaml", MAPPING)
    data = write_csv(tmp / f"{out}.csv", [HEADER, *rows])
    before = len(box.received)
    result = run_cli(
        "run", "-m", mapping, data, "--base-url", box.url, "--state-dir", tmp / "state",
        "--out", tmp / f"{out}.xlsx", *extra,
    )  # fmt: skip
    sheet = {r["SKU"]: r for r in read_sheet(tmp / f"{out}.xlsx")}
    return result, list(box.received[before:]), sheet


def batches(received: list[Received]) -> Counter[str]:
    """The batch requests received, by what they do (create, update, upsert, read)."""
    return Counter(r.path.rsplit("/", 1)[-1] for r in received if "/batch/" in r.path)


def bodies(received: list[Received], what: str) -> list[dict[str, Any]]:
    """Every input of the batch requests that `what` (create, update, ...)."""
    return [i for r in received if r.path.endswith(f"/batch/{what}") for i in r.body["inputs"]]


def held(sheet: dict[str, dict[str, Any]], sku: str) -> str:
    return sheet[sku]["held_back"] or ""


def by_sku(box: Sandbox) -> dict[str, dict[str, Any]]:
    return {r["properties"].get("hs_sku"): r for r in box.records("products")}


def holds(box: Sandbox, tmp: Path, sku: str) -> dict[str, str]:
    """What the journal records HubSpot holds from this tool for the row of `sku`."""
    journal = Journal(journal_path(tmp / "state", box.url, "products", box.portal.portal_id))
    try:
        known = journal.known([f"key:hs_sku={sku}"])[f"key:hs_sku={sku}"]
    finally:
        journal.close()
    return dict(orjson.loads(known.sent)) if known.sent else {}


def existing(box: Sandbox, *records: dict[str, str]) -> dict[str, str]:
    """Records someone made in HubSpot by hand: SKU -> id."""
    made = box.store.create_many("products", [(props, []) for props in records])
    return {r["properties"]["hs_sku"]: r["id"] for r in made}


NIGHT_1 = [
    ["WR-A1", "Alpha", "1", "alpha text", "Acme"],
    ["WR-B2", "Beta", "2", "beta text", "Bolt"],
    ["WR-C3", "Gamma", "3", "", "Cog"],
]
NIGHT_2 = [
    ["WR-A1", "Alpha", "10", "alpha text v2", "Acme"],  # price and description changed
    ["WR-B2", "Beta", "2", "beta text v2", "Bolt 2"],  # only ruled columns changed
    ["WR-C3", "Gamma", "3", "gamma text", "Cog"],  # description now given; HubSpot's empty
    ["WR-D4", "Delta", "4", "delta text", "Dyn"],  # new
]


def test_create_mode_holds_back_what_the_rules_forbid_and_a_rerun_sends_nothing(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    first, sent, sheet = night(run_cli, sandbox, tmp_path, NIGHT_1, "1")
    assert first.code == 0, first.err
    assert batches(sent) == {"create": 1}  # a create sends every value, and reads nothing
    made = {i["properties"]["hs_sku"]: i["properties"] for i in bodies(sent, "create")}
    assert (made["WR-A1"]["description"], made["WR-A1"]["brand"]) == ("alpha text", "Acme")
    assert all(held(sheet, sku) == "" for sku in sheet)
    ids = {sku: r["id"] for sku, r in by_sku(sandbox).items()}
    sandbox.store.update("products", ids["WR-B2"], {"description": "edited by hand"})

    second, sent, sheet = night(run_cli, sandbox, tmp_path, NIGHT_2, "2")
    assert second.code == 0, second.err
    assert batches(sent) == {"read": 1, "update": 1, "create": 1}
    (read,) = [r.body for r in sent if r.path.endswith("/batch/read")]
    assert read["properties"] == ["description"]
    assert "idProperty" not in read
    assert sorted(i["id"] for i in read["inputs"]) == sorted(
        ids[s] for s in ("WR-A1", "WR-B2", "WR-C3")
    )
    updates = {i["id"]: i["properties"] for i in bodies(sent, "update")}
    assert updates == {ids["WR-A1"]: {"price": "10"}, ids["WR-C3"]: {"description": "gamma text"}}
    (created,) = bodies(sent, "create")
    assert created["properties"]["description"] == "delta text"
    assert created["properties"]["brand"] == "Dyn"

    assert sheet["WR-A1"]["status"] == "updated"
    assert held(sheet, "WR-A1") == HAS_VALUE
    assert f"held back by write rules: {HAS_VALUE}" in sheet["WR-A1"]["message"]
    assert sheet["WR-B2"]["status"] == "unchanged"
    assert sheet["WR-B2"]["hubspot_id"] == ids["WR-B2"]
    assert held(sheet, "WR-B2") == f"{HAS_VALUE}; brand (create_only)"
    assert "nothing to send: write rules held back" in sheet["WR-B2"]["message"]
    assert (sheet["WR-C3"]["status"], held(sheet, "WR-C3")) == ("updated", "")
    assert (sheet["WR-D4"]["status"], held(sheet, "WR-D4")) == ("created", "")
    now = by_sku(sandbox)
    assert now["WR-A1"]["properties"]["description"] == "alpha text"
    assert now["WR-A1"]["properties"]["price"] == "10"
    assert now["WR-B2"]["properties"]["description"] == "edited by hand"
    assert now["WR-B2"]["properties"]["brand"] == "Bolt"
    assert now["WR-C3"]["properties"]["description"] == "gamma text"
    # What was held back was not sent, so the journal does not say HubSpot holds it.
    assert holds(sandbox, tmp_path, "WR-A1")["description"] == "alpha text"
    assert holds(sandbox, tmp_path, "WR-A1")["price"] == "10"
    assert holds(sandbox, tmp_path, "WR-B2")["brand"] == "Bolt"

    third, sent, sheet = night(run_cli, sandbox, tmp_path, NIGHT_2, "3")
    assert third.code == 0, third.err
    assert batches(sent) == {}  # no write and no read
    assert {r["status"] for r in sheet.values()} == {"unchanged"}


def test_a_row_whose_other_cells_change_updates_those_and_still_holds_back(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    night(run_cli, sandbox, tmp_path, NIGHT_1, "1")
    night(run_cli, sandbox, tmp_path, NIGHT_2, "2")
    renamed = [["WR-A1", "Alpha renamed", "10", "alpha text v2", "Acme 2"], *NIGHT_2[1:]]
    result, sent, sheet = night(run_cli, sandbox, tmp_path, renamed, "3")
    assert result.code == 0, result.err
    assert batches(sent) == {"read": 1, "update": 1}
    assert [i["properties"] for i in bodies(sent, "update")] == [{"name": "Alpha renamed"}]
    assert sheet["WR-A1"]["status"] == "updated"
    assert held(sheet, "WR-A1") == f"{HAS_VALUE}; brand (create_only)"
    record = by_sku(sandbox)["WR-A1"]["properties"]
    assert (record["brand"], record["description"]) == ("Acme", "alpha text")
    again, sent, _ = night(run_cli, sandbox, tmp_path, renamed, "4")
    assert again.code == 0
    assert batches(sent) == {}


def test_create_only_alone_needs_no_read_and_is_never_updated(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    night(run_cli, sandbox, tmp_path, NIGHT_1, "1")
    rebranded = [[*row[:4], f"{row[4]} new"] for row in NIGHT_1]
    result, sent, sheet = night(run_cli, sandbox, tmp_path, rebranded, "2")
    assert result.code == 0, result.err
    assert batches(sent) == {}
    assert {(r["status"], r["held_back"]) for r in sheet.values()} == {
        ("unchanged", "brand (create_only)")
    }
    assert {r["properties"]["brand"] for r in by_sku(sandbox).values() if "WR" in str(
        r["properties"].get("hs_sku"))} == {"Acme", "Bolt", "Cog"}  # fmt: skip
    again, sent, _ = night(run_cli, sandbox, tmp_path, rebranded, "3")
    assert again.code == 0
    assert batches(sent) == {}


def test_update_mode_reads_by_the_key_and_holds_back(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    ids = existing(
        sandbox,
        {"hs_sku": "WR-U1", "name": "U1", "description": "theirs", "brand": "Old"},
        {"hs_sku": "WR-U2", "name": "U2"},
    )
    rows = [["WR-U1", "U one", "5", "ours", "New"], ["WR-U2", "U two", "6", "ours 2", "New"]]
    result, sent, sheet = night(run_cli, sandbox, tmp_path, rows, "1", "--mode", "update")
    assert result.code == 0, result.err
    assert batches(sent) == {"read": 1, "update": 1}
    (read,) = [r.body for r in sent if r.path.endswith("/batch/read")]
    assert read["idProperty"] == "hs_sku"
    assert sorted(i["id"] for i in read["inputs"]) == ["WR-U1", "WR-U2"]
    updates = {i["id"]: i["properties"] for i in bodies(sent, "update")}
    assert updates == {
        "WR-U1": {"hs_sku": "WR-U1", "name": "U one", "price": "5"},
        "WR-U2": {"hs_sku": "WR-U2", "name": "U two", "price": "6", "description": "ours 2"},
    }
    assert held(sheet, "WR-U1") == f"{HAS_VALUE}; brand (create_only)"
    assert held(sheet, "WR-U2") == "brand (create_only)"
    assert sheet["WR-U1"]["hubspot_id"] == ids["WR-U1"]
    props = sandbox.store.get("products", ids["WR-U1"])["properties"]
    assert (props["description"], props["brand"]) == ("theirs", "Old")
    again, sent, sheet = night(run_cli, sandbox, tmp_path, rows, "2", "--mode", "update")
    assert again.code == 0
    assert batches(sent) == {}
    assert {r["status"] for r in sheet.values()} == {"unchanged"}


def test_upsert_mode_updates_records_that_exist_and_creates_the_others_whole(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    ids = existing(
        sandbox,
        {"hs_sku": "WR-X1", "name": "X1", "description": "theirs", "brand": "Old"},
        {"hs_sku": "WR-X2", "name": "X2"},
        {"hs_sku": "WR-X4", "name": "X4", "description": "theirs too"},
    )
    rows = [
        ["WR-X1", "X one", "1", "ours", "New"],
        ["WR-X2", "X two", "2", "ours 2", "New"],
        ["WR-X3", "X three", "3", "ours 3", "Brand 3"],
        ["WR-X4", "", "", "ours 4", "Brand 4"],  # every value held back: nothing to send
    ]
    result, sent, sheet = night(run_cli, sandbox, tmp_path, rows, "1", "--mode", "upsert")
    assert result.code == 0, result.err
    assert batches(sent) == {"read": 1, "update": 1, "upsert": 1}
    (read,) = [r.body for r in sent if r.path.endswith("/batch/read")]
    assert read["idProperty"] == "hs_sku"
    assert sorted(read["properties"]) == ["description", "hs_sku"]
    assert sorted(i["id"] for i in read["inputs"]) == ["WR-X1", "WR-X2", "WR-X3", "WR-X4"]
    updates = {i["id"]: i for i in bodies(sent, "update")}
    assert updates["WR-X1"]["idProperty"] == "hs_sku"
    assert updates["WR-X1"]["properties"] == {"hs_sku": "WR-X1", "name": "X one", "price": "1"}
    assert updates["WR-X2"]["properties"]["description"] == "ours 2"
    assert "brand" not in updates["WR-X2"]["properties"]
    (upsert,) = bodies(sent, "upsert")
    assert upsert["properties"]["brand"] == "Brand 3"
    assert upsert["properties"]["description"] == "ours 3"

    assert (sheet["WR-X1"]["status"], held(sheet, "WR-X1")) == (
        "updated", f"{HAS_VALUE}; brand (create_only)"
    )  # fmt: skip
    assert (sheet["WR-X2"]["status"], held(sheet, "WR-X2")) == ("updated", "brand (create_only)")
    assert (sheet["WR-X3"]["status"], held(sheet, "WR-X3")) == ("created", "")
    assert (sheet["WR-X4"]["status"], sheet["WR-X4"]["hubspot_id"]) == ("unchanged", ids["WR-X4"])
    records = by_sku(sandbox)
    assert records["WR-X1"]["properties"]["brand"] == "Old"
    assert records["WR-X3"]["properties"]["brand"] == "Brand 3"
    assert records["WR-X4"]["properties"]["description"] == "theirs too"
    assert holds(sandbox, tmp_path, "WR-X1") == {"hs_sku": "WR-X1", "name": "X one", "price": "1"}
    assert "brand" not in holds(sandbox, tmp_path, "WR-X2")
    assert holds(sandbox, tmp_path, "WR-X3")["brand"] == "Brand 3"

    again, sent, sheet = night(run_cli, sandbox, tmp_path, rows, "2", "--mode", "upsert")
    assert again.code == 0, again.err
    assert batches(sent) == {}
    assert {r["status"] for r in sheet.values()} == {"unchanged"}


def test_records_the_read_does_not_return_are_held_back_and_decided_again(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    night(run_cli, sandbox, tmp_path, NIGHT_1, "1")
    ids = {sku: r["id"] for sku, r in by_sku(sandbox).items()}
    changed = [
        ["WR-A1", "Alpha", "10", "alpha text v2", "Acme"],
        ["WR-B2", "Beta", "20", "beta text v2", "Bolt"],
        ["WR-C3", "Gamma", "30", "gamma text", "Cog"],
    ]
    # HubSpot's answer: A1's description empty, C3 named as not found, B2 left unsaid.
    sandbox.inject(
        Fault(
            status=207,
            path="/products/batch/read",
            body={
                "status": "COMPLETE",
                "results": [{"id": ids["WR-A1"], "properties": {"description": None}}],
                "errors": [
                    {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND",
                        "message": "Could not get some products objects",
                        "context": {"ids": [ids["WR-C3"]]},
                    }
                ],
            },
        )
    )
    result, sent, sheet = night(run_cli, sandbox, tmp_path, changed, "2")
    assert result.code == 0, result.err
    updates = {i["id"]: i["properties"] for i in bodies(sent, "update")}
    assert updates == {
        ids["WR-A1"]: {"price": "10", "description": "alpha text v2"},
        ids["WR-B2"]: {"price": "20"},
        ids["WR-C3"]: {"price": "30"},
    }
    assert held(sheet, "WR-A1") == ""
    assert held(sheet, "WR-B2") == (
        "description (if_empty: HubSpot's value could not be read: HubSpot's read did not "
        "return the record)"
    )
    assert held(sheet, "WR-C3") == (
        "description (if_empty: HubSpot's value could not be read: HubSpot's read found no "
        "such record)"
    )
    assert (
        "held back by write rules: description (if_empty: HubSpot's value could not be"
        in (sheet["WR-B2"]["message"])
    )
    # Held back without knowing HubSpot's value: the next run reads it again and decides
    # (B2's HubSpot holds a description, C3's none), then the rows are settled.
    third, sent, sheet = night(run_cli, sandbox, tmp_path, changed, "3")
    assert third.code == 0, third.err
    assert batches(sent) == {"read": 1, "update": 1}
    (read,) = [r.body for r in sent if r.path.endswith("/batch/read")]
    assert sorted(i["id"] for i in read["inputs"]) == sorted([ids["WR-B2"], ids["WR-C3"]])
    assert bodies(sent, "update") == [
        {"id": ids["WR-C3"], "properties": {"description": "gamma text"},
         "objectWriteTraceId": bodies(sent, "update")[0]["objectWriteTraceId"]},
    ]  # fmt: skip
    assert (sheet["WR-B2"]["status"], held(sheet, "WR-B2")) == ("unchanged", HAS_VALUE)
    assert (sheet["WR-C3"]["status"], held(sheet, "WR-C3")) == ("updated", "")
    fourth, sent, _ = night(run_cli, sandbox, tmp_path, changed, "4")
    assert fourth.code == 0
    assert batches(sent) == {}


def test_a_read_refused_whole_sends_nothing(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    night(run_cli, sandbox, tmp_path, NIGHT_1, "1")
    sandbox.inject(
        Fault(
            status=400,
            path="/products/batch/read",
            body={"status": "error", "category": "VALIDATION_ERROR", "message": "bad read"},
        )
    )
    result, sent, sheet = night(run_cli, sandbox, tmp_path, NIGHT_2, "2")
    assert result.code != 0
    assert batches(sent) == {"read": 1}  # not even the new row's create
    assert {r["status"] for r in sheet.values()} == {"not_sent"}
    assert (
        "could not read HubSpot's values for the write rules first" in (sheet["WR-A1"]["message"])
    )
    assert "bad read" in sheet["WR-A1"]["message"]
    again, sent, sheet = night(run_cli, sandbox, tmp_path, NIGHT_2, "3")
    assert again.code == 0, again.err
    assert batches(sent) == {"read": 1, "update": 1, "create": 1}


def test_check_says_what_create_only_would_hold_back_and_reads_nothing(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    night(run_cli, sandbox, tmp_path, NIGHT_1, "1")
    rows = [
        ["WR-A1", "Alpha", "10", "alpha text v2", "Acme 2"],
        ["WR-B2", "Beta", "2", "beta text", "Bolt 2"],
        ["WR-C3", "Gamma", "3", "", "Cog"],
    ]
    data = write_csv(tmp_path / "check.csv", [HEADER, *rows])
    before = len(sandbox.received)
    checked = run_cli(
        "check", "-m", tmp_path / "m.yaml", data, "--base-url", sandbox.url,
        "--state-dir", tmp_path / "state", "--out", tmp_path / "check.xlsx",
    )  # fmt: skip
    assert checked.code == 0, checked.err
    assert batches(list(sandbox.received[before:])) == {}
    plan = {r["SKU"]: r for r in read_sheet(tmp_path / "check.xlsx")}
    assert plan["WR-A1"]["status"] == "would_update"
    assert plan["WR-A1"]["message"].endswith(
        "would hold back brand (create_only); description (if_empty): decided when the run "
        "reads HubSpot's values"
    )
    assert plan["WR-A1"]["held_back"] == "brand (create_only)"
    assert plan["WR-B2"]["status"] == "unchanged"
    assert plan["WR-B2"]["message"].endswith("nothing to send: would hold back brand (create_only)")
    assert (plan["WR-C3"]["status"], plan["WR-C3"]["held_back"]) == ("unchanged", None)


def test_a_plan_step_applies_the_rules_and_its_sheet_says_what_was_held_back(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    write_mapping(tmp_path / "m.yaml", MAPPING)
    plan = tmp_path / "plan.yaml"
    plan.write_text("steps:\n  - mapping: m.yaml\n    input: c.csv\n", encoding="utf-8")

    def run_plan(rows: Sequence[Sequence[str]]) -> tuple[CliRun, list[Received]]:
        write_csv(tmp_path / "c.csv", [HEADER, *rows])
        before = len(sandbox.received)
        result = run_cli("run", "--plan", plan, "--base-url", sandbox.url, "--state-dir",
                         tmp_path / "state", "--out", tmp_path / "out.xlsx")  # fmt: skip
        return result, list(sandbox.received[before:])

    assert run_plan(NIGHT_1)[0].code == 0
    result, sent = run_plan(NIGHT_2)
    assert result.code == 0, result.err
    assert batches(sent) == {"read": 1, "update": 1, "create": 1}
    sheet = {r["SKU"]: r for r in read_sheet(tmp_path / "out.xlsx", "Results c")}
    assert sheet["WR-B2"]["held_back"] == f"{HAS_VALUE}; brand (create_only)"
    assert sheet["WR-B2"]["status"] == "unchanged"
    assert batches(run_plan(NIGHT_2)[1]) == {}


def test_a_mapping_without_rules_keeps_the_results_columns(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    mapping = write_mapping(tmp_path / "plain.yaml", MAPPING.replace(", write: if_empty", "")
                            .replace(", write: create_only", ""))  # fmt: skip
    data = write_csv(tmp_path / "p.csv", [HEADER, *NIGHT_1])
    result = run_cli("run", "-m", mapping, data, "--base-url", sandbox.url, "--state-dir",
                     tmp_path / "state", "--out", tmp_path / "p.xlsx")  # fmt: skip
    assert result.code == 0, result.err
    first = read_sheet(tmp_path / "p.xlsx")[0]
    assert list(first)[:5] == ["source_row", "status", "hubspot_id", "message", "SKU"]


def test_verify_leaves_hubspots_values_to_the_rules_and_fills_an_emptied_one(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    night(run_cli, sandbox, tmp_path, NIGHT_1, "1")
    ids = {sku: r["id"] for sku, r in by_sku(sandbox).items()}
    sandbox.store.update("products", ids["WR-A1"], {"description": ""})  # emptied by hand
    sandbox.store.update("products", ids["WR-B2"], {"description": "edited by hand"})
    sandbox.store.update("products", ids["WR-C3"], {"brand": "Cog by hand"})
    result, sent, sheet = night(run_cli, sandbox, tmp_path, NIGHT_1, "2", "--verify")
    assert result.code == 0, result.err
    assert batches(sent) == {"read": 2, "update": 1}  # --verify's read, then the rules'
    (update,) = bodies(sent, "update")
    assert update["id"] == ids["WR-A1"]
    assert update["properties"]["description"] == "alpha text"
    assert "brand" not in update["properties"]
    assert (sheet["WR-A1"]["status"], held(sheet, "WR-A1")) == ("updated", "brand (create_only)")
    for sku in ("WR-B2", "WR-C3"):
        assert sheet[sku]["status"] == "unchanged"
        assert "set back" not in sheet[sku]["message"]
    records = by_sku(sandbox)
    assert records["WR-B2"]["properties"]["description"] == "edited by hand"
    assert records["WR-C3"]["properties"]["brand"] == "Cog by hand"


def test_a_record_deleted_by_hand_whose_changes_a_rule_holds_is_created_again(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    night(run_cli, sandbox, tmp_path, NIGHT_1, "1")
    gone = by_sku(sandbox)["WR-C3"]["id"]
    sandbox.store.archive("products", [gone])
    # Only C3's if_empty description changed: the rule's read finds no such record.
    changed = [*NIGHT_1[:2], ["WR-C3", "Gamma", "3", "gamma text", "Cog"]]
    result, _, sheet = night(run_cli, sandbox, tmp_path, changed, "2")
    assert result.code == 0, result.err
    assert sheet["WR-C3"]["status"] == "created"
    assert str(sheet["WR-C3"]["hubspot_id"]) != gone
    again = by_sku(sandbox)["WR-C3"]["properties"]
    assert (again["description"], again["brand"]) == ("gamma text", "Cog")
    third, sent, _ = night(run_cli, sandbox, tmp_path, changed, "3")
    assert third.code == 0
    assert batches(sent) == {}


def test_an_adopted_records_empty_if_empty_value_is_written_by_the_next_run(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    """A record made elsewhere holds the key (the state folder is new): the create is
    refused and the row adopts it, its if_empty value held back unread; the next run reads
    HubSpot's value, finds it empty, and writes the sheet's."""
    made = existing(sandbox, {"hs_sku": "WR-A1", "name": "Alpha", "description": ""})
    first, _, sheet = night(run_cli, sandbox, tmp_path, NIGHT_1[:1], "1")
    assert first.code == 0, first.err
    assert sheet["WR-A1"]["status"] == "updated"
    assert "description (if_empty: not read)" in sheet["WR-A1"]["held_back"]
    second, sent, _ = night(run_cli, sandbox, tmp_path, NIGHT_1[:1], "2")
    assert second.code == 0, second.err
    assert by_sku(sandbox)["WR-A1"]["properties"]["description"] == "alpha text"
    assert by_sku(sandbox)["WR-A1"]["id"] == made["WR-A1"]
    assert batches(sent) == {"read": 1, "update": 1}
    _, sent, _ = night(run_cli, sandbox, tmp_path, NIGHT_1[:1], "3")
    assert batches(sent) == {}


def test_an_update_answered_504_after_hubspot_carried_it_out_holds_back_all_the_same(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    """HubSpot writes the update, then its gateway answers 504: the update is sent again
    (an update is safe to repeat), still without what the rules hold back, and the next
    night sends nothing."""
    night(run_cli, sandbox, tmp_path, NIGHT_1, "1")
    ids = {sku: r["id"] for sku, r in by_sku(sandbox).items()}
    sandbox.store.update("products", ids["WR-B2"], {"description": "edited by hand"})
    sandbox.inject(Fault(status=504, after=True, path="/products/batch/update"))
    result, sent, sheet = night(run_cli, sandbox, tmp_path, NIGHT_2, "2")
    assert result.code == 0, result.err
    assert batches(sent)["update"] == 2  # the first answered 504, the second 200
    for body in bodies(sent, "update"):
        assert "brand" not in body["properties"]
    now = by_sku(sandbox)
    assert now["WR-B2"]["properties"]["description"] == "edited by hand"
    assert now["WR-B2"]["properties"]["brand"] == "Bolt"
    assert now["WR-A1"]["properties"]["description"] == "alpha text"
    assert Counter(p["properties"]["hs_sku"] for p in sandbox.records("products")) == Counter(
        {"WR-A1": 1, "WR-B2": 1, "WR-C3": 1, "WR-D4": 1}
    )
    assert {sku: r["status"] for sku, r in sheet.items()} == {
        "WR-A1": "updated", "WR-B2": "unchanged", "WR-C3": "updated", "WR-D4": "created",
    }  # fmt: skip
    _, sent, _ = night(run_cli, sandbox, tmp_path, NIGHT_2, "3")
    assert batches(sent) == {}


def test_sigterm_mid_update_settles_what_was_sent_and_the_rerun_holds_back_the_same(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    """SIGTERM while a night's updates go out: those sent are settled, the rest not_sent,
    every row once in the workbook; the next run sends the rest, and no run ever writes a
    value a rule holds back (descriptions edited in HubSpot, brands after creation)."""
    box = make_sandbox(latency=0.2)
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    skus = [f"S-{i:03d}" for i in range(200)]
    first = [[s, f"Name {i}", "1", f"text {i}", "Brand"] for i, s in enumerate(skus)]
    data = write_csv(tmp_path / "p.csv", [HEADER, *first])
    command = [
        sys.executable, "-m", "importer", "run", "-m", str(mapping), str(data),
        "--base-url", box.url, "--state-dir", str(tmp_path / "state"), "--batch-size", "10",
        "--concurrency", "1",
    ]  # fmt: skip
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": TOKEN}
    made = subprocess.run([*command, "--out", str(tmp_path / "1.xlsx")], env=env,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert made.returncode == 0, made.stderr
    for record in box.records("products"):
        box.store.update("products", record["id"], {"description": "polished by hand"})
    # Tonight: new prices, new supplier texts, new brands for every row.
    second = [[s, f"Name {i}", "2", f"new text {i}", "New brand"] for i, s in enumerate(skus)]
    write_csv(data, [HEADER, *second])
    before = len(box.received)
    out = tmp_path / "2.xlsx"
    with subprocess.Popen([*command, "--out", str(out)], env=env, stderr=subprocess.PIPE,
                          text=True) as victim:  # fmt: skip
        deadline = time.monotonic() + 60
        while (
            time.monotonic() < deadline
            and sum(r.path.endswith("/batch/update") for r in box.received[before:]) < 3
        ):
            time.sleep(0.02)
        victim.send_signal(signal.SIGTERM)
        _, err = victim.communicate(timeout=60)
    assert victim.returncode == 143, err
    rows = read_sheet(out)
    assert sorted(r["SKU"] for r in rows) == skus
    assert {r["status"] for r in rows} <= {"updated", "not_sent"}
    again = subprocess.run([*command, "--out", str(tmp_path / "3.xlsx")], env=env,
                           capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert again.returncode == 0, again.stderr
    held = {r["properties"]["hs_sku"]: r["properties"] for r in box.records("products")}
    assert sorted(held) == skus  # nothing created twice, nothing lost
    assert {(p["price"], p["description"], p["brand"]) for p in held.values()} == {
        ("2", "polished by hand", "Brand")
    }
