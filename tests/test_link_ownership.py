"""A link is this tool's only when it made it: links others made before a run are never
recorded as added (so neither `sync` nor undo removes them), links a run may have made
without hearing back are taken as its own by the next run, a read of links that fails for
good ends the run with its workbook, and a signal in the link stage waits for the request in
flight (bounded, a second signal abandons it) before the workbook is written."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from importer.sandbox import Fault, Sandbox
from importer.state.journal import journal_path

from .conftest import TOKEN, CliRun, read_sheet, write_mapping
from .test_links import CARTS, cart_ids, link_requests, links, run_args, three_carts

Runner = Callable[..., CliRun]

HAND = [("HUBSPOT_DEFINED", 586)]
"""The association type the mapping sends, as a person's link in HubSpot has it too."""


def link_creates(box: Sandbox, since: int = 0) -> list[tuple[str, str]]:
    """(from id, to id) of every link create sent since `since`."""
    return [
        (i["from"]["id"], i["to"]["id"])
        for r in box.received[since:]
        if "/associations/" in r.path and r.path.endswith("/batch/create")
        for i in r.body["inputs"]
    ]


def reads(box: Sandbox, since: int = 0) -> int:
    return sum(p.endswith("/batch/read") for p in link_requests(box, since))


def journal_rows(box: Sandbox, state: Path, query: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(journal_path(state, box.url, "carts", box.portal.portal_id)) as db:
        return list(db.execute(query, args))


def rows_by_ref(path: Path) -> dict[str, dict[str, Any]]:
    return {r["Ref"]: r for r in read_sheet(path)}


def test_a_link_made_by_hand_before_the_run_is_never_recorded_as_added_and_undo_leaves_it(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    from importer.history.runs import list_runs

    mapping = write_mapping(tmp_path / "m.yaml", CARTS.format(to="", policy="sync"))
    data = three_carts(tmp_path / "c.csv", {"C1": "1001", "C2": "1002", "C3": "1009"})
    assert run_cli(*run_args(data, mapping, sandbox, tmp_path)).code == 0
    ids = cart_ids(sandbox)
    sandbox.store.link("carts", "contacts", [(ids["C1"], "1005", HAND)])  # by a colleague

    data = three_carts(tmp_path / "c.csv", {"C1": "1001;1005;1007", "C2": "1002", "C3": "1009"})
    before = len(sandbox.received)
    second = run_cli(*run_args(data, mapping, sandbox, tmp_path))
    assert second.code == 0, second.message
    assert link_creates(sandbox, before) == [(ids["C1"], "1007")]  # 1005 is there already
    assert reads(sandbox, before) == 1  # the one record with a link to add, read first
    c1 = rows_by_ref(tmp_path / "out.xlsx")["C1"]
    assert c1["status"] == "updated"
    assert "links: + contacts 1007" in c1["message"]
    assert "contacts 1005 linked already, not by this tool" in c1["message"]
    run_id = list_runs(tmp_path / "state")[0]["run_id"]
    added = journal_rows(
        sandbox, tmp_path / "state",
        "SELECT to_id FROM link_changes WHERE run_id = ? AND change = 'add'", run_id,
    )  # fmt: skip
    assert added == [("1007",)]

    # Found once, it is not read again: the next night sends nothing, reads included.
    before = len(sandbox.received)
    assert run_cli(*run_args(data, mapping, sandbox, tmp_path)).code == 0
    assert link_requests(sandbox, before) == []

    undone = run_cli("undo", run_id, "--yes", "--state-dir", tmp_path / "state")
    assert undone.code == 0, undone.message
    assert links(sandbox, ids["C1"]) == {"1001", "1005"}  # the colleague's link stays


@pytest.mark.parametrize("policy", ["sync", "replace"])
def test_sync_never_removes_a_link_it_did_not_make_when_the_cell_drops_it_and_replace_does(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner, policy: str
) -> None:
    mapping = write_mapping(tmp_path / "m.yaml", CARTS.format(to="", policy=policy))
    data = three_carts(tmp_path / "c.csv", {"C1": "1001", "C2": "1002", "C3": "1009"})
    assert run_cli(*run_args(data, mapping, sandbox, tmp_path)).code == 0
    ids = cart_ids(sandbox)
    sandbox.store.link("carts", "contacts", [(ids["C1"], "1005", HAND)])
    listed = three_carts(tmp_path / "c.csv", {"C1": "1001;1005", "C2": "1002", "C3": "1009"})
    assert run_cli(*run_args(listed, mapping, sandbox, tmp_path)).code == 0
    assert links(sandbox, ids["C1"]) == {"1001", "1005"}

    dropped = three_carts(tmp_path / "c.csv", {"C1": "1001", "C2": "1002", "C3": "1009"})
    before = len(sandbox.received)
    third = run_cli(*run_args(dropped, mapping, sandbox, tmp_path))
    assert third.code == 0, third.message
    c1 = rows_by_ref(tmp_path / "out.xlsx")["C1"]
    if policy == "sync":
        assert links(sandbox, ids["C1"]) == {"1001", "1005"}  # not ours to remove
        assert c1["status"] == "unchanged"
        assert link_requests(sandbox, before) == []
    else:
        assert links(sandbox, ids["C1"]) == {"1001"}  # replace: whatever the cell leaves out
        assert c1["status"] == "updated"
        assert "- contacts 1005" in c1["message"]


def test_a_link_whose_answer_was_lost_is_taken_as_ours_by_the_next_run_and_undone_with_its_run(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    from importer.history.runs import list_runs

    mapping = write_mapping(tmp_path / "m.yaml", CARTS.format(to="", policy="sync"))
    data = three_carts(tmp_path / "c.csv", {"C1": "1001", "C2": "1002", "C3": "1009"})
    assert run_cli(*run_args(data, mapping, sandbox, tmp_path)).code == 0
    ids = cart_ids(sandbox)

    # Carried out, and the connection closed before the answer: the run cannot know.
    sandbox.inject(Fault(drop=True, after=True, path="/contacts/batch/create"))
    data = three_carts(tmp_path / "c.csv", {"C1": "1001;1002", "C2": "1002", "C3": "1009"})
    lost = run_cli(*run_args(data, mapping, sandbox, tmp_path))
    assert lost.code == 1
    assert rows_by_ref(tmp_path / "out.xlsx")["C1"]["status"] == "incomplete"
    assert links(sandbox, ids["C1"]) == {"1001", "1002"}
    lost_run = list_runs(tmp_path / "state")[0]["run_id"]

    before = len(sandbox.received)
    again = run_cli(*run_args(data, mapping, sandbox, tmp_path))
    assert again.code == 0, again.message
    assert link_creates(sandbox, before) == []  # found in HubSpot, and the intent says ours
    c1 = rows_by_ref(tmp_path / "out.xlsx")["C1"]
    assert f"links: contacts 1002 made by run {lost_run}, which never heard back" in c1["message"]
    assert journal_rows(sandbox, tmp_path / "state", "SELECT * FROM links_found") == []
    before = len(sandbox.received)
    assert run_cli(*run_args(data, mapping, sandbox, tmp_path)).code == 0
    assert link_requests(sandbox, before) == []

    undone = run_cli("undo", lost_run, "--yes", "--state-dir", tmp_path / "state")
    assert undone.code == 0, undone.message
    assert links(sandbox, ids["C1"]) == {"1001"}  # the lost run's link was ours: undone


def test_sigkill_with_a_link_batch_on_the_wire_then_the_next_run_records_it_as_the_killed_runs(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    from importer.history.runs import list_runs

    from .test_links import link_stage_setup

    box, refs, args, env = link_stage_setup(make_sandbox, tmp_path)
    with subprocess.Popen([sys.executable, "-m", "importer", *args], env=env,
                          stderr=subprocess.DEVNULL) as victim:  # fmt: skip
        # The sandbox carries a request out as it arrives and answers 0.3 s later: killed as
        # the third link batch arrives, the run never hears of it.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(link_creates(box)) < 15:
            time.sleep(0.002)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
    assert len(link_creates(box)) == 15
    state = tmp_path / "state"
    (killed,) = [r["run_id"] for r in list_runs(state) if not r["finished"]]
    count = "SELECT COUNT(*) FROM link_changes WHERE run_id = ? AND change = 'add'"
    assert journal_rows(box, state, count, killed) == [(10,)]  # two batches heard back

    before = len(box.received)
    again = subprocess.run([sys.executable, "-m", "importer", *args], env=env,
                           capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert len(link_creates(box, before)) == 60 - 15  # the third batch is not sent again
    assert journal_rows(box, state, count, killed) == [(15,)]  # it is the killed run's
    assert journal_rows(box, state, "SELECT * FROM links_found") == []
    assert journal_rows(box, state, "SELECT * FROM link_intents") == []
    assert {ref: links(box, rid) for ref, rid in cart_ids(box).items()} == {
        ref: {contact} for ref, contact in refs.items()
    }


def test_a_link_read_that_fails_for_good_ends_the_run_with_its_workbook_and_incomplete_rows(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    mapping = write_mapping(tmp_path / "m.yaml", CARTS.format(to="", policy="replace"))
    data = three_carts(tmp_path / "c.csv", {"C1": "1001", "C2": "1002", "C3": "1009"})
    assert run_cli(*run_args(data, mapping, sandbox, tmp_path)).code == 0
    ids = cart_ids(sandbox)

    # Answered 500, and --max-attempts 1 tries no more: the read fails for good.
    sandbox.inject(Fault(status=500, path="/contacts/batch/read"))
    data = three_carts(tmp_path / "c.csv", {"C1": "1007", "C2": "1002", "C3": "1009"})
    summary = tmp_path / "s.json"
    before = len(sandbox.received)
    failed = run_cli(*run_args(data, mapping, sandbox, tmp_path, "--max-attempts", "1",
                               "--summary-json", summary))  # fmt: skip
    assert failed.code == 1, failed.message
    assert link_creates(sandbox, before) == []
    assert links(sandbox, ids["C1"]) == {"1001"}
    rows = rows_by_ref(tmp_path / "out.xlsx")
    # `replace` reads every record: none can be told to match its cell.
    assert {r["status"] for r in rows.values()} == {"incomplete"}
    assert (
        "contacts links not changed: reading the record's links from HubSpot failed"
        in (rows["C1"]["message"])
    )
    report = json.loads(summary.read_text(encoding="utf-8"))
    assert report["run_id"]
    assert report["counts"]["incomplete"] == 3

    again = run_cli(*run_args(data, mapping, sandbox, tmp_path))
    assert again.code == 0, again.message
    assert links(sandbox, ids["C1"]) == {"1007"}


# --- signals ---------------------------------------------------------------------------------


def _signal_setup(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner, hang: float
) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """Twenty carts linked by a first run; the command of a second that moves every cart to
    another contact, five links a request, one request at a time, every POST answered `hang`
    seconds after it was carried out. Returns the command, its environment, and the carts'
    new contacts."""
    mapping = write_mapping(tmp_path / "m.yaml", CARTS.format(to="", policy="sync"))
    first = {f"C{i:02d}": f"{1001 + i % 10}" for i in range(20)}
    extra = ("--mode", "upsert", "--association-batch-size", "5", "--concurrency", "1")
    data = three_carts(tmp_path / "c.csv", first)
    assert run_cli(*run_args(data, mapping, sandbox, tmp_path, *extra)).code == 0
    moved = {ref: f"{1011 + i % 5}" for i, ref in enumerate(first)}
    data = three_carts(tmp_path / "c.csv", moved)
    args = [str(a) for a in run_args(data, mapping, sandbox, tmp_path, *extra,
                                     "--summary-json", tmp_path / "s.json")]  # fmt: skip
    sandbox.config.hang_seconds = hang
    sandbox.config.hang_rate = 1.0
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": TOKEN}
    return [sys.executable, "-m", "importer", *args], env, moved


def _wait_for(box: Sandbox, ending: str, since: int) -> None:
    """Until a link request whose path ends so has arrived since `since` (a minute at most)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
        p.endswith(ending) for p in link_requests(box, since)
    ):
        time.sleep(0.005)
    assert any(p.endswith(ending) for p in link_requests(box, since)), f"no {ending} arrived"


def test_sigterm_with_a_link_batch_in_flight_waits_for_its_answer_and_sends_no_more(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    command, env, moved = _signal_setup(sandbox, tmp_path, run_cli, hang=1.5)
    before = len(sandbox.received)
    with subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) as victim:
        _wait_for(sandbox, "/batch/create", before)
        victim.send_signal(signal.SIGTERM)
        _, err = victim.communicate(timeout=60)
    assert victim.returncode == 143, err
    assert "Traceback" not in err
    assert "waiting up to 30 s for the batch in flight" in err
    assert len(link_creates(sandbox, before)) == 5  # the one on the wire, no other
    rows = rows_by_ref(tmp_path / "out.xlsx")
    done = {ref for ref, r in rows.items() if "links: + contacts" in r["message"]}
    assert len(done) == 5  # its answer was read and recorded
    assert all(rows[ref]["status"] == "updated" for ref in done)
    left = {
        ref for ref, r in rows.items() if "links not sent, the run stopped first" in r["message"]
    }
    assert left == set(moved)  # the removals of the five too: each batch of them waited
    assert not any(p.endswith("/labels/archive") for p in link_requests(sandbox, before))
    report = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert report["run_id"]
    assert "SIGTERM" in report["stopped_by"]


@pytest.mark.parametrize("ending", ["a second signal", "the stop wait"])
def test_a_link_batch_left_unanswered_after_a_signal_makes_its_rows_uncertain(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner, ending: str
) -> None:
    """A second signal, or HUBSPOT_IMPORT_STOP_WAIT passing, ends the wait for the batch in
    flight: its rows are `uncertain`, and the next run, finding its links in HubSpot, takes
    them as the stopped run's without sending them again."""
    command, env, moved = _signal_setup(sandbox, tmp_path, run_cli, hang=4.0)
    if ending == "the stop wait":
        env["HUBSPOT_IMPORT_STOP_WAIT"] = "1"
    before = len(sandbox.received)
    with subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) as victim:
        _wait_for(sandbox, "/batch/create", before)
        victim.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        if ending == "a second signal":
            time.sleep(0.5)
            victim.send_signal(signal.SIGINT)
        _, err = victim.communicate(timeout=60)
    assert victim.returncode == 143, err
    assert time.monotonic() - signalled < 3.5  # never waited the 4 s answer out
    assert "Traceback" not in err
    assert len(link_creates(sandbox, before)) == 5
    rows = rows_by_ref(tmp_path / "out.xlsx")
    uncertain = {ref for ref, r in rows.items() if r["status"] == "uncertain"}
    assert len(uncertain) == 5
    assert all("links sent, but the run was stopped" in rows[r]["message"] for r in uncertain)
    report = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert report["counts"]["uncertain"] == 5

    sandbox.config.hang_rate = 0.0
    before = len(sandbox.received)
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120,
                           check=False)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert len(link_creates(sandbox, before)) == 15  # the uncertain five are there: not resent
    assert {ref: links(sandbox, rid) for ref, rid in cart_ids(sandbox).items()} == {
        ref: {contact} for ref, contact in moved.items()
    }


def test_sigterm_during_the_link_read_sends_no_link_and_writes_the_workbook(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    command, env, _ = _signal_setup(sandbox, tmp_path, run_cli, hang=1.5)
    before = len(sandbox.received)
    with subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) as victim:
        _wait_for(sandbox, "/batch/read", before)
        victim.send_signal(signal.SIGTERM)
        _, err = victim.communicate(timeout=60)
    assert victim.returncode == 143, err
    assert "Traceback" not in err
    assert "waiting up to 30 s for the batch in flight" in err
    assert link_creates(sandbox, before) == []
    rows = rows_by_ref(tmp_path / "out.xlsx")
    assert len(rows) == 20
    assert all("contacts links not checked: the run stopped first" in r["message"]
               for r in rows.values())  # fmt: skip
    report = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert report["run_id"]
    assert "SIGTERM" in report["stopped_by"]
