"""The feed's fingerprint (size, SHA-256, time) with each run, in its journal, its summary file
and its workbook; and `run --skip-unchanged`, which ends at once, asking HubSpot nothing, when
the last run in the journal imported this same feed with nothing left to do."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl

from importer.sandbox import Sandbox
from importer.sheets.fingerprint import Fingerprint, take_fingerprint
from importer.state.journal import Journal, journal_path

from .conftest import SKU_NAME_PRICE, CliRun, write_csv, write_mapping

Runner = Callable[..., CliRun]

MAPPING = SKU_NAME_PRICE
ROWS = [["SKU", "Name", "Price"], ["00001", "Mug", "12"], ["00002", "Hoodie", "x"]]


def _run(
    run_cli: Runner, box: Sandbox, tmp: Path, data: Path, out: str, *extra: Any
) -> tuple[CliRun, dict[str, Any]]:
    summary = tmp / f"{out}.json"
    result = run_cli(
        "run", "-m", tmp / "m.yaml", data, "--base-url", box.url, "--state-dir", tmp / "state",
        "--out", tmp / f"{out}.xlsx", "--summary-json", summary, *extra,
    )  # fmt: skip
    return result, json.loads(summary.read_text())


def _journal_runs(box: Sandbox, tmp: Path) -> list[dict[str, Any]]:
    journal = Journal(journal_path(tmp / "state", box.url, "products", box.portal.portal_id))
    try:
        return journal.runs()
    finally:
        journal.close()


def test_the_fingerprint_is_kept_in_the_journal_the_summary_and_the_workbook(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    write_mapping(tmp_path / "m.yaml", MAPPING)
    data = write_csv(tmp_path / "c.csv", ROWS)
    result, summary = _run(run_cli, sandbox, tmp_path, data, "one")
    assert result.code == 1
    content = data.read_bytes()
    expected = {"size": len(content), "sha256": hashlib.sha256(content).hexdigest()}
    fingerprint = summary["input_fingerprint"]
    assert {k: fingerprint[k] for k in expected} == expected
    assert fingerprint["etag"] is None
    assert fingerprint["mtime"].endswith("+00:00")
    (run,) = _journal_runs(sandbox, tmp_path)
    assert run["input_fingerprint"] == fingerprint
    facts = {
        row[0]: row[1]
        for row in openpyxl.load_workbook(tmp_path / "one.xlsx")["Summary"].iter_rows(
            values_only=True
        )
    }
    assert facts["Input fingerprint"] == (
        f"{len(content):,} bytes, SHA-256 {expected['sha256']}, modified {fingerprint['mtime']}"
    )
    # The workbook written again from the journal says it too.
    shown = run_cli("show", run["run_id"], "--state-dir", tmp_path / "state", "--out",
                    tmp_path / "again.xlsx")  # fmt: skip
    assert shown.code == 0, shown.err
    again = openpyxl.load_workbook(tmp_path / "again.xlsx")["Summary"]
    assert facts["Input fingerprint"] in [r[1] for r in again.iter_rows(values_only=True)]


def test_an_unchanged_feed_ends_at_once_asking_hubspot_nothing(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    write_mapping(tmp_path / "m.yaml", MAPPING)
    data = write_csv(tmp_path / "c.csv", ROWS)
    first, before = _run(run_cli, sandbox, tmp_path, data, "one", "--skip-unchanged")
    assert first.code == 1  # nothing to compare with: it ran
    requests = len(sandbox.received)
    os.utime(data, (1_000_000_000, 1_000_000_000))  # the same bytes, written again
    result, summary = _run(run_cli, sandbox, tmp_path, data, "two", "--skip-unchanged")
    assert result.code == 0, result.err
    (line,) = result.out.splitlines()
    said = f"products: the feed is unchanged since run {before['run_id']} ("
    assert line.startswith(said), result.out
    assert line.endswith("): nothing to do (--skip-unchanged)")
    assert len(sandbox.received) == requests  # not one request
    assert not (tmp_path / "two.xlsx").exists()
    assert summary["status"] == "skipped_unchanged"
    assert summary["exit_code"] == 0
    assert summary["run_id"] is None
    assert summary["unchanged_since"]["run_id"] == before["run_id"]
    assert summary["unchanged_since"]["workbook"] == str(tmp_path / "one.xlsx")
    assert summary["input_fingerprint"]["sha256"] == before["input_fingerprint"]["sha256"]
    assert summary["input_fingerprint"]["mtime"] == "2001-09-09T01:46:40+00:00"
    assert summary["counts"] == {}
    assert summary["rows"] == 0
    assert summary["workbook"] is None
    assert len(_journal_runs(sandbox, tmp_path)) == 1  # a skipped run is no run


def test_a_changed_feed_mapping_or_option_runs(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    write_mapping(tmp_path / "m.yaml", MAPPING)
    data = write_csv(tmp_path / "c.csv", ROWS)
    assert _run(run_cli, sandbox, tmp_path, data, "one")[0].code == 1
    write_csv(data, [*ROWS, ["00003", "Scarf", "7"]])
    changed, _ = _run(run_cli, sandbox, tmp_path, data, "two", "--skip-unchanged")
    assert changed.out.startswith("products: 3 rows: 1 created, 1 unchanged, 1 invalid."), (
        changed.out
    )
    assert "--skip-unchanged: the feed changed since the last run" in changed.err
    write_mapping(tmp_path / "m.yaml", MAPPING + "mode: create\n")
    edited, _ = _run(run_cli, sandbox, tmp_path, data, "three", "--skip-unchanged")
    assert edited.out.startswith("products: 3 rows: 2 unchanged, 1 invalid."), edited.out
    assert "the mapping file, or --mode, --sheet, --encoding or --header-row, changed" in (
        edited.err
    )
    other_mode, _ = _run(run_cli, sandbox, tmp_path, data, "four", "--skip-unchanged",
                         "--mode", "upsert")  # fmt: skip
    assert other_mode.out.startswith("products: 3 rows:"), other_mode.out
    same, _ = _run(run_cli, sandbox, tmp_path, data, "five", "--skip-unchanged",
                   "--mode", "upsert")  # fmt: skip
    assert "the feed is unchanged since run" in same.out


def test_another_feed_imported_since_makes_the_run_go_on(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    write_mapping(tmp_path / "m.yaml", MAPPING)
    data = write_csv(tmp_path / "c.csv", ROWS)
    fix = write_csv(tmp_path / "fix.csv", [ROWS[0], ["00001", "Mug (fixed)", "13"]])
    assert _run(run_cli, sandbox, tmp_path, data, "one")[0].code == 1
    fixed, summary = _run(run_cli, sandbox, tmp_path, fix, "fix")
    assert fixed.code == 0
    result, _ = _run(run_cli, sandbox, tmp_path, data, "two", "--skip-unchanged")
    assert f"the last run, {summary['run_id']}, read {fix} with" in result.err
    # The feed's own values are sent again over the fix's.
    assert result.out.startswith("products: 2 rows: 1 updated, 1 invalid."), result.out


def test_a_last_run_that_left_rows_to_send_again_makes_the_run_go_on(
    run_cli: Runner, make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    # The portal refuses a service without a description: that row fails, every night.
    box = make_sandbox(required_when={"products": {"description": ("hs_product_type", "service")}})
    write_mapping(tmp_path / "m.yaml", MAPPING + "  Type: hs_product_type\n")
    data = write_csv(tmp_path / "c.csv", [["SKU", "Name", "Price", "Type"],
                                          ["00001", "Setup", "80", "service"]])  # fmt: skip
    _, summary = _run(run_cli, box, tmp_path, data, "one")
    assert summary["counts"]["failed"] == 1
    again, _ = _run(run_cli, box, tmp_path, data, "two", "--skip-unchanged")
    assert f"the last run, {summary['run_id']}, left rows to send again (1 failed)" in again.err
    assert again.out.startswith("products: 1 rows: 1 failed."), again.out


def test_skip_unchanged_with_a_plan_is_refused(run_cli: Runner, tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("steps: []\n")
    result = run_cli("run", "--plan", plan, "--skip-unchanged", "--sandbox")
    assert result.code == 2
    assert "--skip-unchanged is for a run of one sheet: a plan cannot skip its run yet" in (
        result.err
    )


def test_a_journal_of_an_older_version_gets_the_new_columns_and_its_runs_are_not_skipped(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    write_mapping(tmp_path / "m.yaml", MAPPING)
    data = write_csv(tmp_path / "c.csv", ROWS)
    assert _run(run_cli, sandbox, tmp_path, data, "one")[0].code == 1
    path = journal_path(tmp_path / "state", sandbox.url, "products", sandbox.portal.portal_id)
    with contextlib.closing(sqlite3.connect(path)) as db:  # as an older version left it
        db.execute("ALTER TABLE runs DROP COLUMN input_fingerprint")
        db.execute("ALTER TABLE runs DROP COLUMN run_settings")
        db.commit()
    (old,) = _journal_runs(sandbox, tmp_path)
    assert old["input_fingerprint"] is None
    assert old["run_settings"] is None
    result, summary = _run(run_cli, sandbox, tmp_path, data, "two", "--skip-unchanged")
    assert "kept no fingerprint of its input (an older version made it)" in result.err
    assert result.out.startswith("products: 2 rows: 1 unchanged, 1 invalid."), result.out
    kept = _journal_runs(sandbox, tmp_path)[-1]["input_fingerprint"]
    assert kept == summary["input_fingerprint"]
    skipped, _ = _run(run_cli, sandbox, tmp_path, data, "three", "--skip-unchanged")
    assert "the feed is unchanged since run" in skipped.out


def test_a_fingerprint_is_of_the_bytes_not_the_time(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(3 * (1 << 20) + 17))  # more than one block, not a whole one
    taken = take_fingerprint(path)
    assert taken.size == path.stat().st_size
    assert taken.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    os.utime(path, (0, 0))
    later = take_fingerprint(path)
    assert later.mtime == "1970-01-01T00:00:00+00:00" != taken.mtime
    assert later.same_content(taken)
    with path.open("r+b") as fh:
        fh.write(b"x")
    assert not take_fingerprint(path).same_content(taken)
    assert Fingerprint.from_json(taken.as_json()) == taken
    assert Fingerprint.from_json({"size": "1"}) is None
