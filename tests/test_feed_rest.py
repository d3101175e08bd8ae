"""The nightly feed's remaining promises: a header-only feed under `missing_rows:` is judged by
max_missing and says so in its summary; `check` says which set records came back and what is
put back; `runs` and `show` count what the rule did; a download that finds no room says where
and how much; an entry undo leaves alone is settled once. Every run is the real CLI against the
sandbox (and a real HTTP server on loopback), whose own store tells what HubSpot holds."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from importer.sandbox import Sandbox
from importer.sandbox.portal import PropertyDef
from importer.sandbox.sources import RecordSource
from importer.state.journal import Journal
from importer.state.missing_table import MissingState

from .conftest import SKU_NAME_PRICE, TOKEN, CliRun, read_sheet, write_csv, write_mapping
from .remote_servers import HttpFiles
from .remote_servers import http_files_fixture as http_files_fixture  # the fixture

Runner = Callable[..., CliRun]

ARCHIVE = SKU_NAME_PRICE + "missing_rows: archive\n"
SET = SKU_NAME_PRICE + "missing_rows: {set: {status: Discontinued}}\n"


def catalogue(path: Path, skus: range | list[int]) -> Path:
    rows: list[list[str]] = [["SKU", "Name", "Price"]]
    rows += [[f"{i:05d}", f"Product {i}", "9.50"] for i in skus]
    return write_csv(path, rows)


def night(
    run_cli: Runner,
    box: Sandbox,
    tmp: Path,
    data: Path | str,
    *extra: Any,
    command: str = "run",
    mapping: str = ARCHIVE,
) -> CliRun:
    path = write_mapping(tmp / "m.yaml", mapping)
    return run_cli(command, "-m", path, data, "--base-url", box.url, "--state-dir",
                   tmp / "state", "--out", tmp / "out.xlsx", "--summary-json", tmp / "s.json",
                   *extra)  # fmt: skip


def summary(tmp: Path) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((tmp / "s.json").read_text())
    return found


def live(box: Sandbox) -> dict[str, dict[str, Any]]:
    """SKU -> the live record that holds it."""
    return {r["properties"]["hs_sku"]: r for r in box.records("products")}


def writes(box: Sandbox, since: int = 0) -> list[str]:
    """The requests after the `since`-th that would change something in HubSpot."""
    return [
        r.path
        for r in box.received[since:]
        if r.method == "POST" and not r.path.endswith(("/batch/read", "/search"))
    ]


def with_status(box: Sandbox) -> None:
    box.portal.add_property(
        "products",
        PropertyDef(
            name="status", label="Status", type="enumeration", options=("active", "discontinued")
        ),
    )


def entries(tmp: Path, **where: Any) -> list[Any]:
    (path,) = (tmp / "state").glob("*products.sqlite")
    journal = Journal(path)
    try:
        return journal.missing_entries(**where)
    finally:
        journal.close()


def undo(run_cli: Runner, box: Sandbox, tmp: Path, run_id: str) -> CliRun:
    return run_cli("undo", run_id, "--yes", "--state-dir", tmp / "state", "--base-url", box.url)


# --- a download that finds no room ---------------------------------------------------------


def _limit_file_size(limit: int) -> Callable[[], None]:
    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limited


def test_a_download_with_no_room_names_the_downloads_folder_and_the_room_needed(
    sandbox: Sandbox, tmp_path: Path, http_files: HttpFiles
) -> None:
    """A copy that cannot be written for want of room (here a file size limit, which makes
    writes fail as a full disk does) is exit 2 naming `<state>/downloads` and the file's
    size, never "cannot be reached", and leaves no partial file behind."""
    rows = [f"{i:05d},Product {i} {'x' * 40},9.50\n" for i in range(40_000)]
    big = ("SKU,Name,Price\n" + "".join(rows)).encode()
    assert len(big) > 2_000_000
    url = http_files.put("/feeds/products.csv", big)
    mapping = write_mapping(tmp_path / "m.yaml", SKU_NAME_PRICE)
    state = tmp_path / "state"
    command = [
        sys.executable, "-m", "importer", "run", "-m", str(mapping), url, "--base-url",
        sandbox.url, "--state-dir", str(state), "--out", str(tmp_path / "out.xlsx"),
    ]  # fmt: skip
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": TOKEN}
    done = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limit_file_size(1_000_000),
        check=False,
    )
    assert done.returncode == 2, done.stderr
    said = [line for line in done.stderr.splitlines() if line.startswith("hubspot-import:")]
    downloads = state / "downloads"
    # The fix is the limit, not room on the disk.
    assert said == [
        f"hubspot-import: error: {url}: its copy cannot be saved in {downloads}: the file is "
        "larger than this process may write (ulimit -f) (File too large); it is "
        f"{len(big) / 1e6:,.1f} MB, and this process may write files of 1.0 MB at most: raise "
        "that limit (`ulimit -f unlimited` in the shell or script that starts the run; "
        "LimitFSIZE=infinity in a systemd unit), and run again"
    ]
    assert "cannot be reached" not in done.stderr
    left = [p.name for p in downloads.rglob("*") if p.is_file()]
    assert left == []
    assert writes(sandbox) == []


# --- what undo leaves alone is settled once ------------------------------------------------


def test_an_archived_record_undo_leaves_alone_is_settled_and_said_once(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    """A person made a product with the archived SKU since: undo leaves it alone and says
    so once; the entry is settled (left, with the reason), the run counts as undone, and a
    second undo says nothing of it again."""
    night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(20)))
    night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(1, 20)))
    run_id = summary(tmp_path)["run_id"]
    made = [({"hs_sku": "00000", "name": "Made by hand"}, [])]
    (record,) = sandbox.store.create_many("products", made, source=RecordSource.by_hand())
    first = undo(run_cli, sandbox, tmp_path, run_id)
    assert first.code == 0, first.message
    said = f"HubSpot holds hs_sku=00000 in record {record['id']}, made by CRM_UI"
    assert said in first.out
    assert "not brought back" not in first.out
    (entry,) = entries(tmp_path, run_id=run_id)
    assert entry.state is MissingState.LEFT
    assert entry.message.startswith(said)
    second = undo(run_cli, sandbox, tmp_path, run_id)
    assert second.code == 0, second.message
    assert second.out.startswith(f"Run {run_id} was already undone")
    assert said not in second.out
    assert live(sandbox)["00000"]["id"] == str(record["id"])


def test_a_set_record_merged_since_is_left_alone_by_undo_never_its_survivor_written(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    """The rule set 00000 discontinued; a person then merged it into 00001's record. Undo
    writes nothing (an update by the merged-away id would land on 00001's record), says so
    once, and settles the entry; the next night does not speak of it again."""
    with_status(sandbox)
    night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(20)), mapping=SET)
    for record in sandbox.records("products"):
        sandbox.store.update("products", record["id"], {"status": "active"})
    night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(1, 20)), mapping=SET)
    run_id = summary(tmp_path)["run_id"]
    ids = {sku: r["id"] for sku, r in live(sandbox).items()}
    sandbox.store.merge("products", ids["00000"], ids["00001"])
    sandbox.store.update("products", ids["00001"], {"status": "discontinued"})
    before = len(sandbox.received)
    first = undo(run_cli, sandbox, tmp_path, run_id)
    assert first.code == 0, first.message
    assert (
        f"  00000: {ids['00000']} (HubSpot no longer has record {ids['00000']} (merged into "
        "another, or deleted): nothing written back, left as it is)" in first.out
    ), first.out
    assert writes(sandbox, before) == []
    assert live(sandbox)["00001"]["properties"]["status"] == "discontinued"
    assert [e.state for e in entries(tmp_path, run_id=run_id)] == [MissingState.LEFT]
    second = undo(run_cli, sandbox, tmp_path, run_id)
    assert second.out.startswith(f"Run {run_id} was already undone"), second.out
    later = night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(1, 20)),
                  mapping=SET)  # fmt: skip
    assert later.code == 0, later.message
    assert "every one of the 19 records it holds is in the feed" in later.out, later.out


# --- runs and show count what the rule did ---------------------------------------------------


def test_runs_and_show_count_what_missing_rows_did_per_run(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(20)))
    first = summary(tmp_path)["run_id"]
    night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(2, 20)))
    archiving = summary(tmp_path)["run_id"]
    back = night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(1, 20)))
    assert back.code == 0, back.message  # 00001 is back in the feed: created again
    listed = run_cli("runs", "--state-dir", tmp_path / "state")
    lines = listed.out.splitlines()
    at = lines.index(next(line for line in lines if line.startswith(archiving)))
    assert lines[at + 2] == "    missing_rows: 2 archived; since then 1 back in the feed"
    assert not any(
        line.startswith("    missing_rows:")
        for line in lines[lines.index(next(x for x in lines if x.startswith(first))) :][1:3]
    )
    assert sum(line.startswith("    missing_rows:") for line in lines) == 1

    undone = undo(run_cli, sandbox, tmp_path, archiving)
    assert undone.code == 0, undone.message
    listed = run_cli("runs", "--state-dir", tmp_path / "state")
    assert (
        "    missing_rows: 2 archived; since then 1 restored by undo, 1 back in the feed"
        in listed.out.splitlines()
    ), listed.out
    shown = run_cli("show", archiving, "--state-dir", tmp_path / "state")
    assert (
        "Missing records: 2 archived; since then 1 restored by undo, 1 back in the feed"
        in shown.out.splitlines()
    ), shown.out


# --- check says which set records came back --------------------------------------------------


@pytest.mark.parametrize("case", ["untouched", "edited-since", "sheet-holds-it"])
def test_check_says_which_set_records_came_back_and_what_is_put_back(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, case: str
) -> None:
    """00000 left the feed and the rule set it discontinued; tonight it is back. `check`
    names it and says, per property the rule set, whether its earlier value is written back,
    the sheet's value set (the mapping writes status itself), or HubSpot's kept (changed by
    hand since); it writes nothing, and the run then does what check said."""
    with_status(sandbox)
    columns = "  Status: status\n" if case == "sheet-holds-it" else ""
    mapping = SKU_NAME_PRICE + columns + "missing_rows: {set: {status: Discontinued}}\n"
    header = ["SKU", "Name", "Price", *(["Status"] if columns else [])]

    def feed(skus: range) -> Path:
        rows = [[f"{i:05d}", f"Product {i}", "9.50", *(["active"] if columns else [])]
                for i in skus]  # fmt: skip
        return write_csv(tmp_path / "c.csv", [header, *rows])

    night(run_cli, sandbox, tmp_path, feed(range(10)), mapping=mapping)
    if not columns:
        for record in sandbox.records("products"):
            sandbox.store.update("products", record["id"], {"status": "active"})
    night(run_cli, sandbox, tmp_path, feed(range(1, 10)), mapping=mapping)
    setting = summary(tmp_path)["run_id"]
    gone = live(sandbox)["00000"]
    assert gone["properties"]["status"] == "discontinued"
    if case == "edited-since":
        sandbox.store.update("products", gone["id"], {"status": "service"})
    before = len(sandbox.received)
    checked = night(run_cli, sandbox, tmp_path, feed(range(10)), command="check", mapping=mapping)
    assert checked.code == 0, checked.message
    said = {
        "untouched": "its earlier values would be written back: status: active",
        "edited-since": "left as HubSpot holds them, changed since the rule set them: "
        "status: service",
        "sheet-holds-it": "its row would set status: active",
    }[case]
    note = f"back in the feed: run {setting} had set it (missing_rows); {said}"
    (row,) = [r for r in read_sheet(tmp_path / "out.xlsx") if r["SKU"] == "00000"]
    assert note in row["message"], row
    lines = read_sheet(tmp_path / "out.xlsx", "Missing")
    assert [(m["key"], m["action"], m["message"]) for m in lines] == [("00000", "returned", note)]
    assert summary(tmp_path)["missing"]["returned"] == 1
    assert "; 1 back in the feed." in checked.out, checked.out
    assert writes(sandbox, before) == []
    assert live(sandbox)["00000"]["properties"]["status"] == gone["properties"]["status"] or (
        case == "edited-since"
    )

    ran = night(run_cli, sandbox, tmp_path, feed(range(10)), mapping=mapping)
    assert ran.code == 0, ran.message
    expected = {"untouched": "active", "edited-since": "service", "sheet-holds-it": "active"}
    assert live(sandbox)["00000"]["properties"]["status"] == expected[case]


# --- a header-only feed --------------------------------------------------------------------


@pytest.mark.parametrize("extra", [[], ["--max-missing", "100%"]], ids=["default", "allowed"])
@pytest.mark.parametrize("command", ["run", "check"])
def test_a_header_only_feed_is_stopped_by_max_missing_and_the_summary_says_so(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, command: str, extra: list[str]
) -> None:
    """The feed arrives with its header and no rows: every record the mapping holds left
    it. max_missing stops the run before anything is written (exit 3), whatever its limit,
    and the summary has the guard and a `missing` object, as any run of the mapping has."""
    night(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", range(5)))
    before = len(sandbox.received)
    empty = catalogue(tmp_path / "c.csv", [])
    result = night(run_cli, sandbox, tmp_path, empty, *extra, command=command)
    assert result.code == 3, result.message
    limit = "--max-missing 100 %" if extra else "the default max_missing 10 %"
    reason = (
        "the feed has no data rows: 5 of 5 records the mapping holds are no longer in it "
        f"(100 %); a feed without rows is never mirrored, whatever {limit} allows"
    )
    verdict = "would stop" if command == "check" else "stops"
    said = summary(tmp_path)
    assert (said["exit_code"], said["guard"]) == (3, "max_missing")
    assert said["guards"] == [
        f"max_missing {limit.rsplit(' ', 2)[-2]} %: 5 of 5 records the mapping holds would be "
        f"archived (100 %): {verdict} the run"
    ]
    missing = said["missing"]
    assert (missing["rule"], missing["held"], missing["missing"]) == ("archive", 5, 5)
    assert missing["sits_out"] is None
    if command == "run":
        assert said["stopped_by"] == f"the run stopped before writing: {reason}"
        assert (missing["not_sent"], missing["archived"]) == (5, 0)
        assert f"Guard max_missing stopped the run before writing: {reason}." in result.out
    else:
        assert missing["would_archive"] == 5
    assert writes(sandbox, before) == []
    assert len(live(sandbox)) == 5


def test_a_header_only_first_feed_is_nothing_to_import_with_what_the_rule_did(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    """With nothing held yet, a header-only feed is what it always was (exit 2, nothing to
    import); its summary still says what missing_rows: did: it sat out."""
    empty = catalogue(tmp_path / "c.csv", [])
    result = night(run_cli, sandbox, tmp_path, empty)
    assert result.code == 2, result.message
    assert "the header row is there but no data rows follow; nothing to import." in (result.message)
    said = summary(tmp_path)
    assert said["exit_code"] == 2
    assert said["missing"] == {
        "rule": "archive", "held": 0, "missing": 0, "archived": 0, "set": 0, "failed": 0,
        "not_sent": 0, "gone": 0, "returned": 0, "sits_out": "the feed has no data rows",
    }  # fmt: skip
    assert writes(sandbox) == []
