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

from importer.api.account import CACHE_FILE
from importer.sandbox import Sandbox
from importer.sheets.fingerprint import Fingerprint, take_fingerprint
from importer.state.journal import Journal, journal_path
from importer.state.plan_journal import list_plan_runs

from .conftest import SKU_NAME_PRICE, CliRun, write_csv, write_mapping
from .remote_servers import HttpFiles, http_files_fixture  # noqa: F401  (the fixture)
from .test_notify import Webhook, webhook_fixture  # noqa: F401  (the fixture `webhook`)

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


# --- run --plan PLAN --skip-unchanged -----------------------------------------------------

CONTACTS = """\
object_type: contacts
key: Email
columns:
  Email: {property: email, required: true}
  First: firstname
"""
PEOPLE = [["Email", "First"], ["ada@example.com", "Ada"], ["alan@example.com", "Alan"]]
STEPS = (("products.yaml", "products.csv"), ("contacts.yaml", "contacts.csv"))


def _plan(tmp: Path, steps: tuple[tuple[str, str], ...] = STEPS, head: str = "") -> Path:
    """The plan file: each step a mapping and its own input (a file or a URL)."""
    lines = [f"  - mapping: {m}\n    input: {i}\n" for m, i in steps]
    plan = tmp / "plan.yaml"
    plan.write_text(f"{head}steps:\n{''.join(lines)}", encoding="utf-8")
    return plan


def _shop(tmp: Path) -> Path:
    """Products and contacts, a CSV each, and the plan that imports both."""
    write_mapping(tmp / "products.yaml", MAPPING)
    write_mapping(tmp / "contacts.yaml", CONTACTS)
    write_csv(tmp / "products.csv", ROWS)
    write_csv(tmp / "contacts.csv", PEOPLE)
    return _plan(tmp)


def _run_plan(
    run_cli: Runner, box: Sandbox, tmp: Path, out: str, *extra: Any
) -> tuple[CliRun, dict[str, Any]]:
    summary = tmp / f"{out}.json"
    result = run_cli(
        "run", "--plan", tmp / "plan.yaml", "--base-url", box.url, "--state-dir", tmp / "state",
        "--out", tmp / f"{out}.xlsx", "--summary-json", summary, *extra,
    )  # fmt: skip
    return result, json.loads(summary.read_text())


def _plan_runs(tmp: Path) -> list[dict[str, Any]]:
    """Every run of the plan, newest first."""
    return list_plan_runs(tmp / "state")


def test_an_unchanged_plan_ends_at_once_asking_hubspot_nothing_but_its_portal(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    _shop(tmp_path)
    first, before = _run_plan(run_cli, sandbox, tmp_path, "one", "--skip-unchanged")
    assert first.code == 1, first.err  # one invalid price; nothing to compare with: it ran
    assert "--skip-unchanged: no run of the plan is recorded in " in first.err
    requests = len(sandbox.received)
    os.utime(tmp_path / "products.csv", (1_000_000_000, 1_000_000_000))  # the same bytes
    result, summary = _run_plan(run_cli, sandbox, tmp_path, "two", "--skip-unchanged")
    assert result.code == 0, result.err
    (line,) = result.out.splitlines()
    said = (
        f"plan plan.yaml: every step's feed is unchanged since plan run {before['plan_run_id']} ("
    )
    assert line.startswith(said), result.out
    assert line.endswith("): nothing to do (--skip-unchanged)")
    assert len(sandbox.received) == requests  # the portal is remembered: not one request
    assert not (tmp_path / "two.xlsx").exists()
    assert summary["status"] == "skipped_unchanged"
    assert summary["exit_code"] == 0
    assert summary["plan_run_id"] is None
    since = summary["unchanged_since"]
    assert since["plan_run_id"] == before["plan_run_id"]
    assert since["workbook"] == str(tmp_path / "one.xlsx")
    assert since["finished"] >= since["started"]
    assert summary["workbook"] is None
    assert [s["unchanged_since"]["run_id"] for s in summary["steps"]] == [
        s["run_id"] for s in before["steps"]
    ]
    assert [s["counts"] for s in summary["steps"]] == [{}, {}]
    fingerprint = summary["steps"][0]["input_fingerprint"]
    assert fingerprint["sha256"] == before["steps"][0]["input_fingerprint"]["sha256"]
    assert fingerprint["mtime"] == "2001-09-09T01:46:40+00:00"
    assert len(_plan_runs(tmp_path)) == 1  # a skipped plan run is no run
    # A portal not remembered is identified once; nothing else is asked.
    (tmp_path / "state" / CACHE_FILE).unlink()
    requests = len(sandbox.received)
    again, summary = _run_plan(run_cli, sandbox, tmp_path, "three", "--skip-unchanged")
    assert summary["status"] == "skipped_unchanged", again.err
    asked = [(r.method, r.path) for r in sandbox.received[requests:]]
    assert asked == [("GET", "/account-info/2026-09/details")]
    assert summary["plan_requests"] == {"lookups": 0, "portal_reads": 1}


def test_a_step_whose_feed_changed_runs_the_plan_naming_the_step(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    _shop(tmp_path)
    _, before = _run_plan(run_cli, sandbox, tmp_path, "one")
    write_csv(tmp_path / "contacts.csv", [*PEOPLE, ["grace@example.com", "Grace"]])
    result, summary = _run_plan(run_cli, sandbox, tmp_path, "two", "--skip-unchanged")
    contacts = before["steps"][1]["run_id"]
    assert (
        f"--skip-unchanged: step contacts (contacts): the feed changed since the last run, "
        f"{contacts}: the plan runs" in result.err
    )
    assert summary.get("status") is None
    assert summary["plan_run_id"] is not None
    assert [s["counts"]["created"] for s in summary["steps"]] == [0, 1]
    # The mapping of a step edited: its run's settings differ.
    write_mapping(tmp_path / "products.yaml", MAPPING + "mode: upsert\n")
    edited, summary = _run_plan(run_cli, sandbox, tmp_path, "three", "--skip-unchanged")
    assert "step products (products): the mapping file, or --mode" in edited.err
    assert summary.get("status") is None
    # So does --mode given to the plan, which every step reads with.
    moded, _ = _run_plan(run_cli, sandbox, tmp_path, "four", "--skip-unchanged", "--mode", "update")
    assert "step products (products): the mapping file, or --mode" in moded.err
    same, summary = _run_plan(run_cli, sandbox, tmp_path, "five", "--skip-unchanged", "--mode",
                              "update")  # fmt: skip
    assert summary["status"] == "skipped_unchanged", same.err


def test_a_changed_plan_file_runs_the_plan(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    _shop(tmp_path)
    _, before = _run_plan(run_cli, sandbox, tmp_path, "one")
    write_csv(tmp_path / "more.csv", [ROWS[0], ["00009", "Cap", "9"]])
    _plan(tmp_path, (*STEPS, ("products.yaml", "more.csv")))  # a step added
    added, summary = _run_plan(run_cli, sandbox, tmp_path, "two", "--skip-unchanged")
    assert (
        f"--skip-unchanged: the last run of the plan, {before['plan_run_id']}, ran 2 steps; "
        "the plan has 3 now: the plan runs" in added.err
    )
    assert summary["steps"][2]["counts"]["created"] == 1
    # Two steps of one object type: each one's run is followed only by the plan's own.
    same, summary = _run_plan(run_cli, sandbox, tmp_path, "three", "--skip-unchanged")
    assert summary["status"] == "skipped_unchanged", same.err
    # A step reading another file, in the same place.
    write_csv(tmp_path / "other.csv", PEOPLE)
    _plan(tmp_path, (*STEPS[:1], ("contacts.yaml", "other.csv"), ("products.yaml", "more.csv")))
    moved, _ = _run_plan(run_cli, sandbox, tmp_path, "four", "--skip-unchanged")
    assert f"ran its step 2 on {tmp_path / 'contacts.csv'} with" in moved.err
    # The same steps, the plan file's bytes not: a comment added.
    _plan(tmp_path, (*STEPS[:1], ("contacts.yaml", "other.csv"), ("products.yaml", "more.csv")),
          head="# nightly\n")  # fmt: skip
    commented, summary = _run_plan(run_cli, sandbox, tmp_path, "five", "--skip-unchanged")
    assert "--skip-unchanged: the plan file changed since the last run of the plan" in (
        commented.err
    )
    assert summary.get("status") is None


def test_a_plan_journal_of_an_older_version_gets_the_digest_column_and_runs(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    _shop(tmp_path)
    _run_plan(run_cli, sandbox, tmp_path, "one")
    (run,) = _plan_runs(tmp_path)
    assert run["plan_digest"] == hashlib.sha256((tmp_path / "plan.yaml").read_bytes()).hexdigest()
    with contextlib.closing(sqlite3.connect(run["plan_journal"])) as db:
        db.execute("ALTER TABLE plan_runs DROP COLUMN plan_digest")  # as an older version left it
        db.commit()
    result, _ = _run_plan(run_cli, sandbox, tmp_path, "two", "--skip-unchanged")
    assert "kept no digest of the plan file (an older version made it): the plan runs" in (
        result.err
    )
    assert [r["plan_digest"] for r in _plan_runs(tmp_path)] == [run["plan_digest"], None]
    skipped, summary = _run_plan(run_cli, sandbox, tmp_path, "three", "--skip-unchanged")
    assert summary["status"] == "skipped_unchanged", skipped.err


def test_a_last_plan_run_stopped_by_a_guard_runs_the_plan(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    _shop(tmp_path)
    guarded, _ = _run_plan(run_cli, sandbox, tmp_path, "one", "--max-invalid", "0")
    assert guarded.code == 3, guarded.err
    (stopped,) = _plan_runs(tmp_path)
    assert stopped["stopped_by"]
    result, summary = _run_plan(run_cli, sandbox, tmp_path, "two", "--skip-unchanged")
    assert (
        f"--skip-unchanged: the last run of the plan, {stopped['plan_run_id']}, stopped early ("
        in result.err
    )
    assert result.code == 1  # the invalid price, the rest imported
    assert summary["steps"][1]["counts"]["created"] == 2
    # Rows found invalid would be invalid again: they leave nothing to do.
    again, summary = _run_plan(run_cli, sandbox, tmp_path, "three", "--skip-unchanged")
    assert summary["status"] == "skipped_unchanged", again.err
    # A plan run undone is no longer imported.
    undone = run_cli("undo", summary["unchanged_since"]["plan_run_id"], "--yes",
                     "--state-dir", tmp_path / "state")  # fmt: skip
    assert undone.code == 0, undone.err
    after, summary = _run_plan(run_cli, sandbox, tmp_path, "four", "--skip-unchanged")
    assert "was undone: the plan runs" in after.err
    assert summary["steps"][1]["counts"]["created"] == 2


def test_a_last_plan_run_with_a_failed_row_runs_the_plan(
    run_cli: Runner, make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    # The portal refuses a service without a description: that row fails, every night.
    box = make_sandbox(required_when={"products": {"description": ("hs_product_type", "service")}})
    _shop(tmp_path)
    write_mapping(tmp_path / "products.yaml", MAPPING + "  Type: hs_product_type\n")
    write_csv(tmp_path / "products.csv", [["SKU", "Name", "Price", "Type"],
                                          ["00001", "Setup", "80", "service"]])  # fmt: skip
    _, before = _run_plan(run_cli, box, tmp_path, "one")
    assert before["steps"][0]["counts"]["failed"] == 1
    assert before["stopped_by"] is None
    result, summary = _run_plan(run_cli, box, tmp_path, "two", "--skip-unchanged")
    failed = before["steps"][0]["run_id"]
    assert (
        f"step products (products): the last run, {failed}, left rows to send again (1 failed)"
        in result.err
    )
    assert summary["steps"][0]["counts"]["failed"] == 1


def test_a_run_of_one_sheet_since_the_plan_runs_the_plan(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    _shop(tmp_path)
    _run_plan(run_cli, sandbox, tmp_path, "one")
    fix = write_csv(tmp_path / "fix.csv", [ROWS[0], ["00001", "Mug (fixed)", "13"]])
    write_mapping(tmp_path / "m.yaml", MAPPING)
    fixed, done = _run(run_cli, sandbox, tmp_path, fix, "fix")
    assert fixed.code == 0, fixed.err
    result, summary = _run_plan(run_cli, sandbox, tmp_path, "two", "--skip-unchanged")
    assert f"step products (products): a later run, {done['run_id']}, read {fix} into" in (
        result.err
    )
    assert summary["steps"][0]["counts"]["updated"] == 1  # the feed's own values again


def test_a_plan_whose_step_reads_a_url_is_skipped_when_the_file_there_is_unchanged(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, http_files: HttpFiles
) -> None:
    feed = b"SKU,Name,Price\n00001,Mug,12\n00002,Hoodie,45\n"
    url = http_files.put("/feeds/products.csv", feed)
    _shop(tmp_path)
    _plan(tmp_path, (("products.yaml", url), STEPS[1]))
    first, _ = _run_plan(run_cli, sandbox, tmp_path, "one")
    assert first.code == 0, first.err
    again, summary = _run_plan(run_cli, sandbox, tmp_path, "two", "--skip-unchanged")
    assert summary["status"] == "skipped_unchanged", again.err
    assert summary["steps"][0]["input_file"] == url
    assert summary["steps"][0]["input_source"]["reused_download"] is True
    assert http_files.gets("/feeds/products.csv") == 1  # its ETag said it is the same file
    http_files.put("/feeds/products.csv", feed.replace(b"Mug,12", b"Mug,13"))
    changed, summary = _run_plan(run_cli, sandbox, tmp_path, "three", "--skip-unchanged")
    assert "step products (products): the feed changed since the last run" in changed.err
    assert summary["steps"][0]["counts"]["updated"] == 1


def test_a_skipped_plan_is_posted_as_unchanged(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, webhook: Webhook
) -> None:
    _shop(tmp_path)
    _run_plan(run_cli, sandbox, tmp_path, "one", "--notify", webhook.url)
    result, _ = _run_plan(
        run_cli, sandbox, tmp_path, "two", "--skip-unchanged", "--notify", webhook.url
    )
    assert result.code == 0, result.err
    text = webhook.received[-1].body["text"]
    assert "plan plan.yaml: every step's feed is unchanged since plan run" in text, text
