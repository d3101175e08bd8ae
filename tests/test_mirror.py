"""Mirror: `missing_rows:` archives (or sets properties of) the records a mapping holds whose
key left the feed, counts them for the max_missing guard before anything is written, lists
them in the Missing sheet, the summary and the console, and `undo` brings them back. Every run
is the real CLI against the sandbox, whose own store tells what HubSpot holds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from importer.sandbox import Fault, Sandbox
from importer.sandbox.portal import PropertyDef
from importer.sandbox.sources import RecordSource
from importer.state.journal import Journal
from importer.state.missing_table import MissingState

from .conftest import SKU_NAME_PRICE, TOKEN, CliRun, read_sheet, write_csv, write_mapping

Runner = Callable[..., CliRun]

ARCHIVE = SKU_NAME_PRICE + "missing_rows: archive\n"
SET = SKU_NAME_PRICE + "missing_rows: {set: {status: Discontinued}}\n"


def catalogue(path: Path, skus: range | list[int], *, header: list[str] | None = None) -> Path:
    rows: list[list[str]] = [header or ["SKU", "Name", "Price"]]
    rows += [[f"{i:05d}", f"Product {i}", "9.50"] for i in skus]
    return write_csv(path, rows)


def night(
    run_cli: Runner,
    box: Sandbox,
    tmp: Path,
    data: Path,
    *extra: Any,
    command: str = "run",
    mapping: str = ARCHIVE,
) -> CliRun:
    path = write_mapping(tmp / "m.yaml", mapping)
    return run_cli(command, "-m", path, data, "--base-url", box.url, "--state-dir",
                   tmp / "state", "--out", tmp / "out.xlsx", "--summary-json", tmp / "s.json",
                   *extra)  # fmt: skip


def undo(run_cli: Runner, box: Sandbox, tmp: Path, run_id: str) -> CliRun:
    return run_cli("undo", run_id, "--yes", "--state-dir", tmp / "state", "--base-url", box.url)


def live(box: Sandbox) -> dict[str, dict[str, Any]]:
    """SKU -> the live record that holds it."""
    return {r["properties"]["hs_sku"]: r for r in box.records("products")}


def summary(tmp: Path) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((tmp / "s.json").read_text())
    return found


def missing_sheet(tmp: Path) -> list[tuple[str, str, str]]:
    return [
        (m["key"], m["hubspot_id"], m["action"]) for m in read_sheet(tmp / "out.xlsx", "Missing")
    ]


def facts(tmp: Path) -> dict[str, Any]:
    wb = openpyxl.load_workbook(tmp / "out.xlsx")
    return {r[0]: r[1] for r in wb["Summary"].iter_rows(values_only=True) if r[0]}


def writes(box: Sandbox, since: int = 0) -> list[str]:
    """The requests after the `since`-th that would change something in HubSpot."""
    return [
        f"{r.method} {r.path.rsplit('/', 2)[-2]}/{r.path.rsplit('/', 1)[-1]}"
        for r in box.received[since:]
        if r.method == "POST" and not r.path.endswith(("/batch/read", "/search"))
    ]


def entries(tmp: Path, **where: Any) -> list[Any]:
    """The journal's `missing` records (see state/missing_table.py)."""
    (path,) = (tmp / "state").glob("*products.sqlite")
    journal = Journal(path)
    try:
        return journal.missing_entries(**where)
    finally:
        journal.close()


def with_status(box: Sandbox) -> None:
    """The portal has a status property whose options are active and discontinued, and every
    product is active."""
    box.portal.add_property(
        "products",
        PropertyDef(
            name="status", label="Status", type="enumeration", options=("active", "discontinued")
        ),
    )


def test_archive_then_undo_creates_them_again(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    """Two products leave the feed: archived after their values are read and kept; the
    Missing sheet, the summary and the console say so; undo creates them again (new ids,
    said old -> new) and the journal points at them, so the full feed is unchanged after."""
    assert night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(20))).code == 0
    ids = {sku: r["id"] for sku, r in live(sandbox).items()}
    before = len(sandbox.received)
    second = night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(2, 20)))
    assert second.code == 0, second.message
    assert second.out.splitlines()[:3] == [
        "products: 18 rows: 18 unchanged.",
        "guard max_missing 10 %: 2 of 20 records the mapping holds would be archived (10 %): "
        "passes",
        "missing_rows archive: 2 of the 20 records it holds are no longer in the feed: 2 archived.",
    ]
    assert sorted(live(sandbox)) == [f"{i:05d}" for i in range(2, 20)]
    assert writes(sandbox, before) == ["POST batch/archive"]
    archive = next(r for r in sandbox.received[before:] if r.path.endswith("/batch/archive"))
    assert archive.body == {"inputs": [{"id": ids["00000"]}, {"id": ids["00001"]}]}
    rows = read_sheet(tmp_path / "out.xlsx", "Missing")
    assert [(m["key"], m["hubspot_id"], m["action"]) for m in rows] == [
        ("00000", ids["00000"], "archived"),
        ("00001", ids["00001"], "archived"),
    ]
    assert rows[0]["values_before"] == "hs_sku: 00000; name: Product 0; price: 9.5"
    assert (
        "recycling bin restores the original record (same id) within 90 days"
        in (rows[0]["message"])
    )
    first_run = rows[0]["last_imported_by"]
    run_id = summary(tmp_path)["run_id"]
    assert first_run != run_id
    assert summary(tmp_path)["missing"] == {
        "rule": "archive", "held": 20, "missing": 2, "archived": 2, "set": 0, "failed": 0,
        "not_sent": 0, "gone": 0, "returned": 0, "sits_out": None,
    }  # fmt: skip
    assert facts(tmp_path)["Missing records"] == (
        "missing_rows archive: 2 of the 20 records it holds are no longer in the feed: 2 archived"
    )

    undone = undo(run_cli, sandbox, tmp_path, run_id)
    assert undone.code == 0, undone.message
    now = live(sandbox)
    assert sorted(now) == [f"{i:05d}" for i in range(20)]
    assert now["00000"]["properties"]["name"] == "Product 0"
    assert now["00000"]["id"] != ids["00000"]
    assert f"  00000: {ids['00000']} -> {now['00000']['id']} (created again)" in undone.out
    assert "HubSpot's recycling bin, within 90 days" in undone.out
    again = undo(run_cli, sandbox, tmp_path, run_id)
    assert again.out.startswith(f"Run {run_id} was already undone")

    before = len(sandbox.received)
    full = night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(20)))
    assert full.out.startswith("products: 20 rows: 20 unchanged.")
    assert writes(sandbox, before) == []


def test_set_is_not_sent_twice_and_undo_writes_the_earlier_values_back(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    with_status(sandbox)
    night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(10)), mapping=SET)
    for record in sandbox.records("products"):
        sandbox.store.update("products", record["id"], {"status": "active"})
    before = len(sandbox.received)
    second = night(
        run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(1, 10)), mapping=SET
    )
    assert second.code == 0, second.message
    assert "1 of the 10 records it holds are no longer in the feed: 1 set" in second.out
    gone = live(sandbox)["00000"]
    assert gone["properties"]["status"] == "discontinued"  # the option's label, as its value
    update = next(r for r in sandbox.received[before:] if r.path.endswith("/batch/update"))
    assert update.body["inputs"][0]["properties"] == {"status": "discontinued"}
    (line,) = read_sheet(tmp_path / "out.xlsx", "Missing")
    assert (line["action"], line["values_set"], line["values_before"]) == (
        "set",
        "status: discontinued",
        "status: active",
    )
    run_id = summary(tmp_path)["run_id"]

    before = len(sandbox.received)
    third = night(
        run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(1, 10)), mapping=SET
    )
    assert "guard max_missing 10 %: 0 of 9 records the mapping holds would be set" in third.out
    assert writes(sandbox, before) == []

    undone = undo(run_cli, sandbox, tmp_path, run_id)
    assert undone.code == 0, undone.message
    assert f"  00000: {gone['id']} (earlier values written back: status: active)" in undone.out
    assert live(sandbox)["00000"]["properties"]["status"] == "active"


def test_a_product_back_the_next_night_is_created_again_and_undo_leaves_it(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(10)))
    old = live(sandbox)["00003"]["id"]
    night(
        run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", [i for i in range(10) if i != 3])
    )
    archiving = summary(tmp_path)["run_id"]
    assert "00003" not in live(sandbox)

    checked = night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(10)),
                    command="check")  # fmt: skip
    assert checked.code == 0, checked.message
    row = read_sheet(tmp_path / "out.xlsx")[3]
    assert (row["status"], row["message"]) == (
        "would_create",
        f"back in the feed: run {archiving} had archived record {old} (missing_rows); would be "
        "created again",
    )
    assert summary(tmp_path)["missing"]["returned"] == 1
    assert "00003" not in live(sandbox)

    back = night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(10)))
    assert back.code == 0, back.message
    assert back.out.splitlines()[0] == "products: 10 rows: 1 created, 9 unchanged."
    new = live(sandbox)["00003"]["id"]
    assert new != old
    row = read_sheet(tmp_path / "out.xlsx")[3]
    assert (row["status"], row["hubspot_id"]) == ("created", new)
    assert f"had archived record {old} (missing_rows); created again as {new}" in row["message"]
    assert missing_sheet(tmp_path) == [("00003", new, "returned")]

    undone = undo(run_cli, sandbox, tmp_path, archiving)
    assert "1 records it archived or set came back in the feed since" in undone.out
    assert undone.out.rstrip().endswith("Nothing to archive.")
    shown = run_cli("show", archiving, "--state-dir", tmp_path / "state")
    assert (
        "Undone:          nothing left to undo (what its missing_rows: did came back in the "
        "feed since)" in shown.out
    )
    assert [
        r["id"] for r in sandbox.records("products") if r["properties"]["hs_sku"] == "00003"
    ] == [new]


def test_the_guard_stops_a_feed_that_lost_a_third_of_its_products(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(30)))
    before = len(sandbox.received)
    short = catalogue(tmp_path / "c.csv", range(20))
    stopped = night(run_cli, sandbox, tmp_path, short)
    assert stopped.code == 3, stopped.message
    reason = (
        "10 of 30 records the mapping holds are no longer in the feed (33.3 %), more than the "
        "default max_missing 10 %"
    )
    assert stopped.out.splitlines()[:3] == [
        "products: 20 rows: 20 unchanged.",
        f"Guard max_missing stopped the run before writing: {reason}.",
        "missing_rows archive: 10 of the 30 records it holds are no longer in the feed: "
        "10 not sent.",
    ]
    assert writes(sandbox, before) == []
    assert len(live(sandbox)) == 30
    lines = read_sheet(tmp_path / "out.xlsx", "Missing")
    assert {(m["action"], m["message"]) for m in lines} == {
        ("not sent", f"not archived: the run stopped before writing: {reason}")
    }
    said = summary(tmp_path)
    assert (said["exit_code"], said["guard"]) == (3, "max_missing")
    assert (said["missing"]["not_sent"], said["missing"]["archived"]) == (10, 0)
    assert facts(tmp_path)["Stopped early"] == f"the run stopped before writing: {reason}"
    assert entries(tmp_path) == []

    allowed = night(run_cli, sandbox, tmp_path, short, "--max-missing", "50%")
    assert allowed.code == 0, allowed.message
    assert "guard max_missing 50 %: 10 of 30 records the mapping holds would be archived " in (
        allowed.out
    )
    assert sorted(live(sandbox)) == [f"{i:05d}" for i in range(20)]


def test_the_default_guard_only_with_a_rule_and_guards_max_missing_overrides_it(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    night(
        run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(10)), mapping=SKU_NAME_PRICE
    )
    half = catalogue(tmp_path / "c.csv", range(5))
    kept = night(run_cli, sandbox, tmp_path, half, mapping=SKU_NAME_PRICE)
    assert kept.code == 0
    assert kept.out.splitlines()[1].startswith("Results: ")  # no guard, no missing_rows line
    assert "Missing" not in openpyxl.load_workbook(tmp_path / "out.xlsx").sheetnames
    assert summary(tmp_path)["missing"] is None
    assert len(live(sandbox)) == 10

    ruled = ARCHIVE + "guards: {max_missing: 60%}\n"
    archived = night(run_cli, sandbox, tmp_path, half, mapping=ruled)
    assert archived.code == 0, archived.message
    assert archived.out.splitlines()[1] == (
        "guard max_missing 60 %: 5 of 10 records the mapping holds would be archived (50 %): passes"
    )
    assert len(live(sandbox)) == 5


def test_invalid_and_skipped_rows_count_as_present(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    """A row invalid tonight, or one a row rule skips, still names its product: only the
    products no row names are archived."""
    mapping = SKU_NAME_PRICE.replace("Name: name", "Name: name\n  Stage: description") + (
        "missing_rows: archive\nskip_rows_where: {Stage: [draft]}\n"
    )
    header = ["SKU", "Name", "Price", "Stage"]
    rows = [[f"{i:05d}", f"Product {i}", "9.50", "live"] for i in range(10)]
    night(
        run_cli, sandbox, tmp_path, write_csv(tmp_path / "c.csv", [header, *rows]), mapping=mapping
    )
    rows[1][2] = "not a price"  # invalid
    rows[2][3] = "draft"  # skipped
    rows[3][0] = f"  {rows[3][0]} "  # read as the key is read: trimmed
    tonight = [header, *rows[:9]]  # 00009 left the feed
    result = night(run_cli, sandbox, tmp_path, write_csv(tmp_path / "c.csv", tonight),
                   "--max-missing", "1", mapping=mapping)  # fmt: skip
    assert result.code == 1, result.message  # the invalid row
    assert missing_sheet(tmp_path) == [("00009", missing_sheet(tmp_path)[0][1], "archived")]
    assert sorted(live(sandbox)) == [f"{i:05d}" for i in range(9)]


def test_a_feed_with_no_key_to_read_sits_out(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(5)))
    blank = write_csv(tmp_path / "c.csv", [["SKU", "Name", "Price"], ["", "Mystery", "1"]])
    result = night(run_cli, sandbox, tmp_path, blank)
    assert result.code == 1  # the row without its required SKU
    assert "guard max_missing 10 %: missing_rows sits out (no row of the feed has a key to " in (
        result.out
    )
    assert "missing_rows archive: no row of the feed has a key to read." in result.out
    assert read_sheet(tmp_path / "out.xlsx", "Missing") == []
    said = summary(tmp_path)["missing"]
    assert (said["sits_out"], said["held"]) == ("no row of the feed has a key to read", 5)
    assert len(live(sandbox)) == 5


@pytest.mark.parametrize("feed", ["missing", "header only", "not a sheet"])
def test_a_feed_that_fails_to_load_never_archives(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, feed: str
) -> None:
    data = catalogue(tmp_path / "c.csv", range(5))
    night(run_cli, sandbox, tmp_path, data)
    before = len(sandbox.received)
    if feed == "missing":
        data.unlink()
    elif feed == "header only":
        data.write_text("SKU,Name,Price\n")
    else:
        data.write_bytes(b"PK\x03\x04 not really a workbook")
    result = night(run_cli, sandbox, tmp_path, data)
    # A header-only feed lost every row the mapping holds: the max_missing guard stops it.
    assert result.code == (3 if feed == "header only" else 2), result.message
    assert writes(sandbox, before) == []
    assert len(live(sandbox)) == 5


def test_a_plan_step_with_a_rule_is_refused(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    # Refused when the plan is read: not even the step before it writes.
    write_mapping(tmp_path / "first.yaml", ARCHIVE.replace("missing_rows: archive", ""))
    write_mapping(tmp_path / "m.yaml", ARCHIVE)
    catalogue(tmp_path / "c.csv", range(3))
    catalogue(tmp_path / "d.csv", range(3, 6))
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "steps:\n  - {mapping: first.yaml, input: d.csv}\n  - {mapping: m.yaml, input: c.csv}\n"
    )
    result = run_cli("run", "--plan", plan, "--base-url", sandbox.url, "--state-dir",
                     tmp_path / "state", "--out", tmp_path / "out.xlsx")  # fmt: skip
    assert result.code == 2
    assert "missing_rows: archive is not run in a plan's step" in result.message
    assert writes(sandbox) == []


def test_check_lists_what_would_be_archived_and_changes_nothing(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(10)))
    before = len(sandbox.received)
    checked = night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(1, 10)),
                    command="check")  # fmt: skip
    assert checked.code == 0, checked.message
    assert checked.out.splitlines()[1:3] == [
        "guard max_missing 10 %: 1 of 10 records the mapping holds would be archived (10 %): "
        "passes",
        "missing_rows archive: 1 of the 10 records it holds are no longer in the feed: "
        "1 would archive.",
    ]
    assert missing_sheet(tmp_path)[0][::2] == ("00000", "would archive")
    assert summary(tmp_path)["missing"]["would_archive"] == 1
    assert writes(sandbox, before) == []
    assert len(live(sandbox)) == 10
    assert entries(tmp_path) == []

    too_many = night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(5)),
                     command="check")  # fmt: skip
    assert too_many.code == 3
    assert (
        "guard max_missing 10 %: 5 of 10 records the mapping holds would be archived (50 %): "
        "would stop the run" in too_many.out
    )


def test_a_207_naming_some_archive_inputs_fails_those_and_the_next_run_sees_them_gone(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(20)))
    ids = {sku: r["id"] for sku, r in live(sandbox).items()}
    refused = {
        "status": "COMPLETE",
        "results": [],
        "numErrors": 1,
        "errors": [
            {
                "status": "error",
                "category": "VALIDATION_ERROR",
                "message": "Record is locked by a workflow",
                "context": {"ids": [ids["00001"]]},
            }
        ],
    }
    sandbox.inject(Fault(status=207, body=refused, after=True, path="/batch/archive"))
    result = night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(2, 20)))
    assert result.code == 1, result.message
    lines = read_sheet(tmp_path / "out.xlsx", "Missing")
    assert [(m["key"], m["action"]) for m in lines] == [("00000", "archived"), ("00001", "failed")]
    assert lines[1]["message"] == (
        "not archived: HubSpot refused it: Record is locked by a workflow"
    )
    assert summary(tmp_path)["missing"]["failed"] == 1
    # HubSpot carried the whole request out after all: the next run finds it gone, forgets it
    # (the same feed, but --skip-unchanged does not skip a run that left a record failed).
    again = night(
        run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(2, 20)), "--skip-unchanged"
    )
    assert again.code == 0, again.message
    assert summary(tmp_path).get("status") != "skipped_unchanged"
    assert [(m["key"], m["action"]) for m in read_sheet(tmp_path / "out.xlsx", "Missing")] == [
        ("00001", "gone")
    ]
    third = night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(2, 20)))
    assert "every one of the 18 records it holds is in the feed" in third.out


def test_answers_lost_are_asked_again_and_never_left_unrecorded(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    """An archive carried out whose answer is lost is sent again (archiving twice is
    harmless) and recorded; one lost three times stays recorded as sent, and the next run
    reads what HubSpot holds before anything else."""
    night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(20)))
    sandbox.inject(Fault(drop=True, after=True, path="/batch/archive"))
    once = night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(1, 20)))
    assert once.code == 0, once.message
    assert missing_sheet(tmp_path)[0][::2] == ("00000", "archived")
    assert sum(r.path.endswith("/batch/archive") for r in sandbox.received) == 2

    sandbox.inject(Fault(drop=True, path="/batch/archive", times=3))  # never carried out
    lost = night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(2, 20)))
    assert lost.code == 1, lost.message
    (line,) = read_sheet(tmp_path / "out.xlsx", "Missing")
    assert line["action"] == "failed"
    assert "the next run finds out first whether it was archived" in line["message"]
    assert [e.state for e in entries(tmp_path, states=[MissingState.SENDING])] == [
        MissingState.SENDING
    ]
    assert "00001" in live(sandbox)

    settled = night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(2, 20)))
    assert settled.code == 0, settled.message
    assert missing_sheet(tmp_path)[0][::2] == ("00001", "archived")
    assert entries(tmp_path, states=[MissingState.SENDING]) == []
    states = [e.state for e in entries(tmp_path) if e.key_value == "00001"]
    assert sorted(states) == [MissingState.DONE, MissingState.FAILED]
    assert "00001" not in live(sandbox)


def test_undo_of_a_run_whose_archive_answers_were_lost_finds_out_first(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    """Undo right after a run that never heard whether it archived: a record HubSpot still
    holds is left as it is, one it archived is created again; nothing twice."""
    night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(20)))
    ids = {sku: r["id"] for sku, r in live(sandbox).items()}
    sandbox.inject(Fault(drop=True, path="/batch/archive", times=3))  # never carried out
    lost = night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(1, 20)))
    assert lost.code == 1, lost.message
    undone = undo(run_cli, sandbox, tmp_path, summary(tmp_path)["run_id"])
    assert undone.code == 0, undone.message
    assert (
        f"  00000: {ids['00000']} (never archived (its run stopped before the answer): left as "
        "it is)" in undone.out
    )
    assert live(sandbox)["00000"]["id"] == ids["00000"]
    assert len(sandbox.records("products")) == 20


def _cli(box: Sandbox, tmp: Path, data: Path, out: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "importer", "run", "-m", str(tmp / "m.yaml"), str(data),
        "--base-url", box.url, "--state-dir", str(tmp / "state"), "--out", str(tmp / out),
        *extra,
    ]  # fmt: skip


def _stop_at_first_archive(box: Sandbox, command: list[str], signum: int) -> tuple[int, str]:
    """Run `command`, send it `signum` once its first archive request reached HubSpot."""
    before = len(box.received)
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": TOKEN}
    with subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) as victim:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
            r.path.endswith("/batch/archive") for r in box.received[before:]
        ):
            time.sleep(0.01)
        victim.send_signal(signum)
        _, err = victim.communicate(timeout=60)
    return victim.returncode, err


def test_sigterm_mid_archive_records_what_was_sent_and_the_rerun_archives_the_rest(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path, run_cli: Runner
) -> None:
    box = make_sandbox(latency=0.3)
    write_mapping(tmp_path / "m.yaml", ARCHIVE)
    night(run_cli, box, tmp_path, catalogue(tmp_path / "c.csv", range(250)))
    short = catalogue(tmp_path / "c.csv", range(100))
    code, err = _stop_at_first_archive(
        box, _cli(box, tmp_path, short, "2.xlsx", "--max-missing", "100%"), signal.SIGTERM
    )
    assert code == 143, err
    lines = read_sheet(tmp_path / "2.xlsx", "Missing")
    assert len(lines) == 150
    assert sorted({m["action"] for m in lines}) == ["archived", "not sent"]
    archived = {m["key"] for m in lines if m["action"] == "archived"}
    assert len(archived) == 100  # the request in flight was answered and recorded
    assert not archived & set(live(box))
    rerun = night(run_cli, box, tmp_path, short, "--max-missing", "100%")
    assert rerun.code == 0, rerun.message
    assert "50 of the 150 records it holds are no longer in the feed: 50 archived" in rerun.out
    assert sorted(live(box)) == [f"{i:05d}" for i in range(100)]
    sent = [
        i["id"] for r in box.received if r.path.endswith("/batch/archive") for i in r.body["inputs"]
    ]
    assert len(sent) == len(set(sent)) == 150  # each once


def test_sigkill_after_the_archive_committed_is_settled_by_the_next_run(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path, run_cli: Runner
) -> None:
    box = make_sandbox(latency=0.3)
    write_mapping(tmp_path / "m.yaml", ARCHIVE)
    night(run_cli, box, tmp_path, catalogue(tmp_path / "c.csv", range(20)))
    old = live(box)["00000"]["id"]
    code, _ = _stop_at_first_archive(
        box, _cli(box, tmp_path, catalogue(tmp_path / "c.csv", range(1, 20)), "2.xlsx"),
        signal.SIGKILL,
    )  # fmt: skip
    assert code == -signal.SIGKILL
    time.sleep(0.4)  # HubSpot carries it out
    assert [e.state for e in entries(tmp_path)] == [MissingState.SENDING]
    # The product is back tonight: the archive left open is settled first, so its row is
    # created again, never left pointing at the archived record.
    back = night(run_cli, box, tmp_path, catalogue(tmp_path / "c.csv", range(20)))
    assert back.code == 0, back.message
    assert [e.state for e in entries(tmp_path)] == [MissingState.RETURNED]
    assert back.out.startswith("products: 20 rows: 1 created, 19 unchanged.")
    assert live(box)["00000"]["id"] != old


CARTS = """\
object_type: carts
key: Ref
columns:
  Ref: hs_external_cart_id
  Name: hs_cart_name
associations:
  - column: Contacts
    types: [{associationCategory: HUBSPOT_DEFINED, associationTypeId: 586}]
missing_rows: archive
guards: {max_missing: 1}
"""


def test_undo_creates_an_archived_cart_again_with_the_links_the_journal_knew(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    header = ["Ref", "Name", "Contacts"]
    carts = [["C1", "Cart 1", "1001"], ["C2", "Cart 2", "1002;1003"]]
    data = write_csv(tmp_path / "c.csv", [header, *carts])
    assert night(run_cli, sandbox, tmp_path, data, mapping=CARTS).code == 0
    old = {r["properties"]["hs_external_cart_id"]: r["id"] for r in sandbox.records("carts")}
    gone = night(run_cli, sandbox, tmp_path, write_csv(data, [header, carts[0]]), mapping=CARTS)
    assert gone.code == 0, gone.message
    assert [r["properties"]["hs_external_cart_id"] for r in sandbox.records("carts")] == ["C1"]
    run_id = summary(tmp_path)["run_id"]

    undone = run_cli("undo", run_id, "--yes", "--state-dir", tmp_path / "state",
                     "--base-url", sandbox.url)  # fmt: skip
    assert undone.code == 0, undone.message
    new = {r["properties"]["hs_external_cart_id"]: r["id"] for r in sandbox.records("carts")}
    assert new["C2"] != old["C2"]
    assert f"  C2: {old['C2']} -> {new['C2']} (created again)" in undone.out
    linked = {to for to, _, _, _ in sandbox.store.linked("carts", new["C2"], "contacts")}
    assert linked == {"1002", "1003"}
    # The journal's links are the new record's: the full feed again changes nothing.
    before = len(sandbox.received)
    again = night(run_cli, sandbox, tmp_path, write_csv(data, [header, *carts]), mapping=CARTS)
    assert again.out.startswith("carts: 2 rows: 2 unchanged."), again.out
    assert writes(sandbox, before) == []


def test_undo_of_a_run_that_created_and_archived_does_both(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(10)))
    swapped = catalogue(tmp_path / "c.csv", [*range(9), 10])  # 00009 out, 00010 in
    assert night(run_cli, sandbox, tmp_path, swapped).code == 0
    assert sorted(live(sandbox))[-2:] == ["00008", "00010"]
    undone = undo(run_cli, sandbox, tmp_path, summary(tmp_path)["run_id"])
    assert undone.code == 0, undone.message
    assert "Archived 1 products created by run" in undone.out
    assert sorted(live(sandbox)) == [f"{i:05d}" for i in range(10)]


@pytest.mark.parametrize(
    ("rule", "mapping", "said"),
    [
        (
            "{set: {status: gone}}",
            SKU_NAME_PRICE,
            "missing_rows.set.status: 'gone' is not an option of status; its options are: "
            "active, discontinued",
        ),
        (
            "{set: {statuss: discontinued}}",
            SKU_NAME_PRICE,
            "missing_rows.set.statuss: products have no property 'statuss' in this portal; did "
            "you mean 'status'?",
        ),
        (
            "{set: {price: free}}",
            SKU_NAME_PRICE,
            "missing_rows.set.price: price takes a plain number such as 12.5, not 'free'",
        ),
        (
            "{set: {createdate: '2026-01-01'}}",
            SKU_NAME_PRICE,
            "missing_rows.set.createdate: 'createdate' is set by HubSpot (read-only)",
        ),
        (
            "archive",
            SKU_NAME_PRICE.replace("key: SKU\n", ""),
            "missing_rows: archive needs a key: without `key:` no run can tell which records "
            "left the feed",
        ),
        ("delete", SKU_NAME_PRICE, "missing_rows: 'delete' is not a rule: give keep, archive"),
        (
            "{set: {hs_sku: X}}",
            SKU_NAME_PRICE,
            "missing_rows.set.hs_sku: the key finds the record: it cannot be set",
        ),
    ],
)
def test_a_rule_that_cannot_work_is_a_mapping_error_before_anything_is_sent(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, rule: str, mapping: str, said: str
) -> None:
    with_status(sandbox)
    data = catalogue(tmp_path / "c.csv", range(3))
    result = night(run_cli, sandbox, tmp_path, data, mapping=f"{mapping}missing_rows: {rule}\n")
    assert result.code == 2
    assert said in result.message
    assert writes(sandbox) == []


def test_a_mapping_holds_only_the_records_its_own_runs_wrote(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    """Two feeds of one object type, each with its mapping file: a product of the other
    feed is never missing from this one (the journal's row was last written by a run of
    another mapping file)."""
    other = write_mapping(tmp_path / "other.yaml", ARCHIVE)
    supplier = catalogue(tmp_path / "s.csv", range(100, 105))
    args = ["--base-url", sandbox.url, "--state-dir", tmp_path / "state", "--out",
            tmp_path / "other.xlsx"]  # fmt: skip
    assert run_cli("run", "-m", other, supplier, *args).code == 0
    assert night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(10))).code == 0
    ours = night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(1, 10)))
    assert "1 of the 10 records it holds are no longer in the feed: 1 archived" in ours.out
    assert sorted(live(sandbox))[-5:] == [f"{i:05d}" for i in range(100, 105)]


def test_two_mapping_files_named_alike_in_two_folders_hold_their_own_records(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two shops, each run from its own folder as `--mapping m.yaml`, one state folder: shop A's
    # first night must not take shop B's 40 products for its own and archive them.
    state = tmp_path / "state"
    for shop, skus in (("b", range(100, 140)), ("a", range(2))):
        folder = tmp_path / shop
        folder.mkdir()
        write_mapping(folder / "m.yaml", ARCHIVE)
        catalogue(folder / "feed.csv", skus)
        monkeypatch.chdir(folder)
        result = run_cli("run", "-m", "m.yaml", "feed.csv", "--base-url", sandbox.url,
                         "--state-dir", state, "--out", folder / "out.xlsx")  # fmt: skip
        assert result.code == 0, result.message
    assert len(live(sandbox)) == 42
    monkeypatch.chdir(tmp_path / "b")
    again = run_cli("check", "-m", "m.yaml", "feed.csv", "--base-url", sandbox.url,
                    "--state-dir", state, "--out", tmp_path / "b" / "check.xlsx")  # fmt: skip
    assert "every one of the 40 records it holds is in the feed" in again.out, again.out


def test_a_second_mapping_that_updates_a_record_never_takes_it_over(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    # The catalogue creates five products; a stock feed (another mapping file, archive too)
    # updates them. The catalogue still holds its five; the stock mapping holds none, so a
    # stock feed without one of them archives nothing.
    state = tmp_path / "state"
    catalogue_mapping = write_mapping(tmp_path / "catalogue.yaml", ARCHIVE)
    stock_mapping = write_mapping(tmp_path / "stock.yaml", ARCHIVE)

    def run(mapping: Path, feed: Path, *extra: str) -> CliRun:
        return run_cli(*extra or ("run",), "-m", mapping, feed, "--base-url", sandbox.url,
                       "--state-dir", state, "--out", tmp_path / "o.xlsx")  # fmt: skip

    assert run(catalogue_mapping, catalogue(tmp_path / "c.csv", range(5))).code == 0
    stock = write_csv(tmp_path / "s.csv", [["SKU", "Name", "Price"]]
                      + [[f"{i:05d}", f"Product {i}", "7.00"] for i in range(5)])  # fmt: skip
    assert run(stock_mapping, stock).code == 0
    said = run(catalogue_mapping, tmp_path / "c.csv", "check").out
    assert "every one of the 5 records it holds is in the feed" in said, said
    fewer = write_csv(tmp_path / "s2.csv", [["SKU", "Name", "Price"]]
                      + [[f"{i:05d}", f"Product {i}", "7.00"] for i in range(1, 5)])  # fmt: skip
    result = run(stock_mapping, fewer)
    assert result.code == 0, result.message
    assert len(live(sandbox)) == 5


def test_undo_never_takes_a_record_a_person_made_with_the_archived_key(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    """After the archive, a person makes a product with the archived SKU in HubSpot: undo
    leaves it alone and says so, the journal never points at it, and the next night (the SKU
    still out of the feed) does not archive it."""
    night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(20)))
    night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(1, 20)))
    run_id = summary(tmp_path)["run_id"]
    by_hand = RecordSource.by_hand()
    made = [({"hs_sku": "00000", "name": "Made by hand"}, [])]
    (record,) = sandbox.store.create_many("products", made, source=by_hand)
    theirs = str(record["id"])
    undone = undo(run_cli, sandbox, tmp_path, run_id)
    assert f"HubSpot holds hs_sku=00000 in record {theirs}, made by CRM_UI (user " in undone.out, (
        undone.out
    )
    assert (
        ": left as it is, not taken back; the archived record stays in HubSpot's recycling bin"
        in undone.out
    )
    assert "taken as it is" not in undone.out
    (path,) = (tmp_path / "state").glob("*products.sqlite")
    journal = Journal(path)
    try:
        assert theirs not in journal.holders([theirs])
    finally:
        journal.close()
    again = night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(1, 20)))
    assert again.code == 0, again.message
    assert live(sandbox)["00000"]["id"] == theirs


@pytest.mark.parametrize("mode", ["update", "upsert"])
def test_records_a_mapping_only_updated_are_never_held(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, mode: str
) -> None:
    """Products people made in HubSpot, updated by the feed (update mode, or an upsert that
    finds them there): the mapping did not make them, so it never archives them when their
    SKU leaves the feed; one it created is held and archived (update mode creates none)."""
    by_hand = RecordSource.by_hand()
    made = [({"hs_sku": f"{i:05d}", "name": "By hand"}, []) for i in range(20)]
    sandbox.store.create_many("products", made, source=by_hand)
    ruled = ARCHIVE + "guards: {max_missing: 100%}\n"
    feed = range(21 if mode == "upsert" else 20)
    first = night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", feed),
                  "--mode", mode, mapping=ruled)  # fmt: skip
    assert first.code == 0, first.message
    second = night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(2, 19)),
                   "--mode", mode, mapping=ruled)  # fmt: skip
    assert second.code == 0, second.message
    kept = live(sandbox)
    assert {f"{i:05d}" for i in range(20)} <= set(kept)
    assert "00020" not in kept


def test_undo_of_the_run_that_brought_a_product_back_then_of_the_archive_creates_it_again(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    """The feed brings back a product missing_rows: archived; undo of that night archives
    the product it created, and undo of the night that archived it creates it again, so the
    product is not left nowhere."""
    night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(10)))
    old = live(sandbox)["00003"]["id"]
    fewer = catalogue(tmp_path / "c.csv", [i for i in range(10) if i != 3])
    assert night(run_cli, sandbox, tmp_path, fewer).code == 0
    archiving = summary(tmp_path)["run_id"]
    assert night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(10))).code == 0
    brought, back = summary(tmp_path)["run_id"], live(sandbox)["00003"]["id"]
    first = undo(run_cli, sandbox, tmp_path, brought)
    assert first.code == 0, first.message
    assert "Archived 1 products created by run" in first.out
    assert "00003" not in live(sandbox)
    second = undo(run_cli, sandbox, tmp_path, archiving)
    assert second.code == 0, second.message
    now = live(sandbox)["00003"]["id"]
    assert now not in (old, back)
    assert f"  00003: {old} -> {now} (created again)" in second.out, second.out


def test_undo_of_a_run_whose_records_missing_rows_archived_since_says_only_what_it_archived(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    """A night creates ten products; the next archives two (missing_rows:); undo of the first
    archives the eight still there and says eight, never asking HubSpot about the two."""
    night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(10)))
    created = summary(tmp_path)["run_id"]
    ruled = ARCHIVE + "guards: {max_missing: 50%}\n"
    fewer = night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(2, 10)),
                  mapping=ruled)  # fmt: skip
    assert fewer.code == 0, fewer.message
    before = len(sandbox.received)
    undone = undo(run_cli, sandbox, tmp_path, created)
    assert undone.code == 0, undone.message
    assert "Archived 8 products created by run" in undone.out, undone.out
    sent = [r for r in sandbox.received[before:] if r.path.endswith("/batch/archive")]
    assert sum(len(r.body["inputs"]) for r in sent) == 8
    assert live(sandbox) == {}


@pytest.mark.parametrize("owner", ["71000002", "anna.weber@example.com", "Anna Weber"])
def test_set_takes_an_owner_by_id_email_or_name(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, owner: str
) -> None:
    """`set: {hubspot_owner_id: ...}` takes an owner as an owner column's cells do: the
    records set get the owner's id."""
    ruled = SKU_NAME_PRICE + f'missing_rows: {{set: {{hubspot_owner_id: "{owner}"}}}}\n'
    night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(20)), mapping=ruled)
    fewer = night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(1, 20)),
                  mapping=ruled)  # fmt: skip
    assert fewer.code == 0, fewer.message
    assert live(sandbox)["00000"]["properties"]["hubspot_owner_id"] == "71000002"


def test_set_refuses_an_owner_the_portal_does_not_have(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    ruled = SKU_NAME_PRICE + 'missing_rows: {set: {hubspot_owner_id: "nobody@example.com"}}\n'
    result = night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(3)),
                   mapping=ruled)  # fmt: skip
    assert result.code != 0
    assert (
        "missing_rows.set.hubspot_owner_id: 'nobody@example.com' is not one of the portal's "
        "owners; hubspot_owner_id takes an owner's id, email or full name" in result.message
    ), result.message
    assert sandbox.records("products") == []


def test_a_key_back_in_another_unicode_form_is_not_missing(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    """A SKU written composed one night (Ü as one character) and decomposed the next (U and
    a combining diaeresis) is the same SKU: its product is not archived."""
    composed = unicodedata.normalize("NFC", "MÜLLER-1")
    decomposed = unicodedata.normalize("NFD", "MÜLLER-1")
    assert composed != decomposed
    rows = [[f"{i:05d}", f"Product {i}", "9.50"] for i in range(1, 20)]
    first = write_csv(tmp_path / "a.csv", [["SKU", "Name", "Price"], [composed, "M", "1"], *rows])
    assert night(run_cli, sandbox, tmp_path, first).code == 0
    made = live(sandbox)[composed]["id"]
    second = write_csv(
        tmp_path / "b.csv", [["SKU", "Name", "Price"], [decomposed, "M", "1"], *rows]
    )
    result = night(run_cli, sandbox, tmp_path, second)
    assert result.code == 0, result.message
    assert made in {r["id"] for r in sandbox.records("products")}
    assert not entries(tmp_path, action="archive")


@pytest.mark.parametrize("edited", [False, True], ids=["untouched", "edited-since"])
def test_a_set_product_back_in_the_feed_gets_its_earlier_values_unless_someone_changed_them(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, edited: bool
) -> None:
    with_status(sandbox)
    night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(10)), mapping=SET)
    for record in sandbox.records("products"):
        sandbox.store.update("products", record["id"], {"status": "active"})
    night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(1, 10)), mapping=SET)
    gone = live(sandbox)["00000"]
    assert gone["properties"]["status"] == "discontinued"
    if edited:  # someone moved it on by hand while it was out of the feed
        sandbox.store.update("products", gone["id"], {"status": "service"})
    back = night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(10)), mapping=SET)
    assert back.code == 0, back.message
    status = live(sandbox)["00000"]["properties"]["status"]
    assert status == ("service" if edited else "active")
    (row,) = [r for r in read_sheet(tmp_path / "out.xlsx") if r["SKU"] == "00000"]
    if edited:
        assert (
            "left as HubSpot holds them, changed since the rule set them: status: service"
            in (row["message"])
        )


def test_undo_of_a_set_leaves_a_value_someone_changed_since(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    """Undo writes back only the values HubSpot still holds as the rule set them: a status a
    person moved on by hand since stays as they left it, and undo says so."""
    with_status(sandbox)
    sandbox.portal.add_property("products", PropertyDef(name="tax", label="Tax", type="string"))
    both = SKU_NAME_PRICE + "missing_rows: {set: {status: Discontinued, tax: none}}\n"
    night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(10)), mapping=both)
    for record in sandbox.records("products"):
        sandbox.store.update("products", record["id"], {"status": "active", "tax": "vat"})
    night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(1, 10)), mapping=both)
    run_id = summary(tmp_path)["run_id"]
    gone = live(sandbox)["00000"]
    assert (gone["properties"]["status"], gone["properties"]["tax"]) == ("discontinued", "none")
    sandbox.store.update("products", gone["id"], {"status": "service"})

    undone = undo(run_cli, sandbox, tmp_path, run_id)
    assert undone.code == 0, undone.message
    assert (
        f"  00000: {gone['id']} (earlier values written back: tax: vat; left as HubSpot holds "
        "them, changed since the rule set them: status: service)" in undone.out
    )
    props = live(sandbox)["00000"]["properties"]
    assert (props["status"], props["tax"]) == ("service", "vat")


@pytest.mark.parametrize("by_hand", ["deleted", "merged"])
def test_a_record_deleted_or_merged_by_hand_is_gone_never_its_survivor_archived(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, by_hand: str
) -> None:
    # The journal remembers record A for key 00000; someone deleted A, or merged it into the
    # record of 00001. Tonight's feed no longer has 00000: A is `gone`, and the record that
    # survived the merge (00001's, still in the feed) is never archived in A's place.
    night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(20)))
    ids = {sku: r["id"] for sku, r in live(sandbox).items()}
    if by_hand == "deleted":
        sandbox.store.archive("products", [ids["00000"]])
    else:
        sandbox.store.merge("products", ids["00000"], ids["00001"])
    result = night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(1, 20)))
    assert result.code == 0, result.message
    assert missing_sheet(tmp_path) == [("00000", ids["00000"], "gone")]
    assert live(sandbox)["00001"]["id"] == ids["00001"]
    assert len(live(sandbox)) == 19
