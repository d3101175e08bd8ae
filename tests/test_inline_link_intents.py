"""Links sent inline with their records on batch/create are journaled as intents before the
request leaves: when the run never reads HubSpot's answer (killed, or answered 504 after the
create was carried out and its lookups failed), the next run, finding the record the journal
proves that run created, takes the links it holds that the intents name as that run's
(recorded as added by it: `sync` removes them when the cell drops them, and undo of that run
archives the record with them), and every other link on it as someone else's."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from importer.sandbox import Fault, Sandbox
from importer.sandbox.sources import RecordSource
from importer.state.journal import journal_path

from .conftest import TOKEN, CliRun, read_sheet, write_csv, write_mapping
from .test_link_ownership import HAND, journal_rows, link_creates, reads, rows_by_ref
from .test_links import CARTS, cart_ids, link_requests, links, run_args, three_carts

Runner = Callable[..., CliRun]

MADE = "links: contacts {to} made by run {run}, which never heard back: recorded now"
ADDS = "SELECT COUNT(*) FROM link_changes WHERE run_id = ? AND change = 'add'"


def carts(tmp_path: Path, n: int) -> tuple[Path, dict[str, str]]:
    """`n` carts, each linked to one contact (kept in sync), and the contact of each."""
    refs = {f"C{i}": f"{1001 + i % 20}" for i in range(n)}
    return write_mapping(tmp_path / "m.yaml", CARTS.format(to="", policy="sync")), refs


def creates_arrived(box: Sandbox) -> bool:
    return any(r.path.endswith("/carts/batch/create") for r in box.received)


def first_run_unanswered(sandbox: Sandbox, tmp_path: Path, run_cli: Runner, data: Path) -> str:
    """A first run whose batch/create is carried out and answered 504, and whose lookups
    fail: its rows are uncertain, the batch stays open. Returns its run id."""
    from importer.history.runs import list_runs

    mapping = tmp_path / "m.yaml"
    sandbox.inject(Fault(status=504, after=True, path="/carts/batch/create"))
    for path in ("/carts/batch/read", "/carts/search"):
        sandbox.inject(Fault(status=500, path=path, times=3))
    first = run_cli(*run_args(data, mapping, sandbox, tmp_path, "--max-attempts", "1"))
    assert first.code == 1, first.message
    assert {r["status"] for r in rows_by_ref(tmp_path / "out.xlsx").values()} == {"uncertain"}
    assert link_requests(sandbox) == []  # inline: the create carried them
    return str(list_runs(tmp_path / "state")[0]["run_id"])


def test_sigkill_after_a_create_arrives_leaves_its_inline_links_the_killed_runs_for_sync_to_remove(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    from importer.history.runs import list_runs

    box = make_sandbox(latency=0.3)  # carried out as it arrives, answered 0.3 s later
    mapping, refs = carts(tmp_path, 10)
    data = three_carts(tmp_path / "c.csv", refs)
    args = [sys.executable, "-m", "importer",
            *[str(a) for a in run_args(data, mapping, box, tmp_path)]]  # fmt: skip
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": TOKEN}
    with subprocess.Popen(args, env=env, stderr=subprocess.DEVNULL) as victim:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not creates_arrived(box):
            time.sleep(0.002)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    while time.monotonic() < deadline and len(cart_ids(box)) < 10:
        time.sleep(0.01)  # the sandbox carries out a request it has read, its sender gone
    ids = cart_ids(box)
    assert {ref: links(box, ids[ref]) for ref in refs} == {r: {c} for r, c in refs.items()}
    state = tmp_path / "state"
    (killed,) = [r["run_id"] for r in list_runs(state) if not r["finished"]]
    assert journal_rows(box, state, "SELECT COUNT(*) FROM link_intents") == [(10,)]

    before = len(box.received)
    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120,
                           check=False)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert link_creates(box, before) == []
    assert reads(box, before) == 1  # the ten records the killed run left, in one read
    rows = rows_by_ref(tmp_path / "out.xlsx")
    for ref, contact in refs.items():
        assert rows[ref]["status"] == "unchanged"
        assert rows[ref]["message"] == (
            f"unchanged since run {killed}; " + MADE.format(to=contact, run=killed)
        )
    assert journal_rows(box, state, ADDS, killed) == [(10,)]  # recorded as the killed run's
    assert journal_rows(box, state, "SELECT * FROM link_intents") == []
    assert journal_rows(box, state, "SELECT * FROM links_found") == []

    refs["C0"] = "1015"
    data = three_carts(tmp_path / "c.csv", refs)
    third = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120,
                           check=False)  # fmt: skip
    assert third.returncode == 0, third.stderr
    assert links(box, ids["C0"]) == {"1015"}  # the killed run's 1001 was ours: sync removed it
    c0 = rows_by_ref(tmp_path / "out.xlsx")["C0"]
    assert c0["status"] == "updated"
    assert c0["message"] == "links: + contacts 1015, - contacts 1001"


def test_a_create_answered_504_after_it_was_carried_out_leaves_its_inline_links_to_its_run(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    mapping, refs = carts(tmp_path, 3)
    data = three_carts(tmp_path / "c.csv", refs)
    lost = first_run_unanswered(sandbox, tmp_path, run_cli, data)
    state = tmp_path / "state"
    assert journal_rows(sandbox, state, "SELECT COUNT(*) FROM link_intents") == [(3,)]

    before = len(sandbox.received)
    second = run_cli(*run_args(data, mapping, sandbox, tmp_path))
    assert second.code == 0, second.message
    assert link_creates(sandbox, before) == []
    rows = rows_by_ref(tmp_path / "out.xlsx")
    assert {ref: r["message"] for ref, r in rows.items()} == {
        ref: f"unchanged since run {lost}; " + MADE.format(to=contact, run=lost)
        for ref, contact in refs.items()
    }
    assert journal_rows(sandbox, state, ADDS, lost) == [(3,)]
    before = len(sandbox.received)
    assert run_cli(*run_args(data, mapping, sandbox, tmp_path)).code == 0
    assert link_requests(sandbox, before) == []  # settled: nothing read, nothing sent

    # Undo of the run that made them archives the records it created, their links with them.
    undone = run_cli("undo", lost, "--yes", "--state-dir", state)
    assert undone.code == 0, undone.message
    assert cart_ids(sandbox) == {}


def test_a_link_made_by_hand_on_a_record_whose_create_was_unanswered_stays_someone_elses(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    mapping, refs = carts(tmp_path, 3)
    lost = first_run_unanswered(sandbox, tmp_path, run_cli, three_carts(tmp_path / "c.csv", refs))
    ids = cart_ids(sandbox)
    sandbox.store.link("carts", "contacts", [(ids["C0"], "1007", HAND)])  # by a colleague

    listed = three_carts(tmp_path / "c.csv", {**refs, "C0": "1001;1007"})
    before = len(sandbox.received)
    second = run_cli(*run_args(listed, mapping, sandbox, tmp_path))
    assert second.code == 0, second.message
    assert link_creates(sandbox, before) == []
    c0 = rows_by_ref(tmp_path / "out.xlsx")["C0"]["message"]
    assert MADE.format(to="1001", run=lost) in c0
    assert "links: contacts 1007 linked already, not by this tool" in c0
    assert "contacts 1007 made by run" not in c0

    moved = three_carts(tmp_path / "c.csv", {**refs, "C0": "1015"})
    third = run_cli(*run_args(moved, mapping, sandbox, tmp_path))
    assert third.code == 0, third.message
    assert links(sandbox, ids["C0"]) == {"1007", "1015"}  # 1001 was ours, 1007 the colleague's


CONTACTS_DEALS = """\
object_type: contacts
key: Email
columns:
  Email: email
  First: firstname
associations:
  - column: Deals
    to: deals
    sync: sync
    types:
      - {associationCategory: HUBSPOT_DEFINED, associationTypeId: 4}
"""


def test_inline_links_sent_to_a_record_made_by_hand_never_make_its_links_ours(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    """The create runs into a contact a person made (its email held): the row updates that
    record, which this tool did not create, so the link the create carried inline, which
    the person had made too, is theirs."""
    (hand,) = sandbox.store.create_many(
        "contacts", [({"email": "ann@example.com"}, [])], RecordSource.by_hand()
    )
    sandbox.store.link("contacts", "deals", [(str(hand["id"]), "2001", [("HUBSPOT_DEFINED", 4)])])
    mapping = write_mapping(tmp_path / "m.yaml", CONTACTS_DEALS)
    rows: list[list[str]] = [["Email", "First", "Deals"], ["ann@example.com", "Ann", "2001"],
                             ["bob@example.com", "Bob", "2002"]]  # fmt: skip
    data = write_csv(tmp_path / "c.csv", rows)
    out = tmp_path / "out.xlsx"
    args: list[Any] = ["run", "-m", mapping, data, "--base-url", sandbox.url,
                       "--state-dir", tmp_path / "state", "--out", out]  # fmt: skip
    first = run_cli(*args)
    assert first.code == 0, first.message
    sheet = {r["Email"]: r for r in read_sheet(out)}
    assert sheet["ann@example.com"]["status"] == "updated"
    assert (
        "links: deals 2001 linked already, not by this tool"
        in (sheet["ann@example.com"]["message"])
    )
    assert sheet["bob@example.com"]["status"] == "created"
    journal = journal_path(tmp_path / "state", sandbox.url, "contacts", sandbox.portal.portal_id)
    with sqlite3.connect(journal) as db:
        assert list(db.execute("SELECT * FROM link_intents")) == []

    data = write_csv(tmp_path / "c.csv", [rows[0], ["ann@example.com", "Ann", "2003"], rows[2]])
    assert run_cli(*args).code == 0
    held = {to for to, _, _, _ in sandbox.store.linked("contacts", str(hand["id"]), "deals")}
    assert held == {"2001", "2003"}  # the person's link stays under sync


def test_a_first_run_spends_nothing_on_inline_intents_and_a_refused_create_leaves_none(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    mapping, refs = carts(tmp_path, 3)
    data = three_carts(tmp_path / "c.csv", refs)
    # Refused whole, naming no row, and so are its halves and its rows one by one (5 requests).
    refusal = {"status": "error", "message": "Property values were not valid",
               "category": "VALIDATION_ERROR"}  # fmt: skip
    sandbox.inject(Fault(status=400, body=refusal, path="/carts/batch/create", times=5))
    refused = run_cli(*run_args(data, mapping, sandbox, tmp_path))
    assert refused.code == 1
    assert {r["status"] for r in rows_by_ref(tmp_path / "out.xlsx").values()} == {"failed"}
    assert journal_rows(sandbox, tmp_path / "state", "SELECT * FROM link_intents") == []

    before = len(sandbox.received)
    first = run_cli(*run_args(data, mapping, sandbox, tmp_path))
    assert first.code == 0, first.message
    assert link_requests(sandbox, before) == []  # inline, and no read: the run created them
    assert journal_rows(sandbox, tmp_path / "state", "SELECT * FROM link_intents") == []
    made = "SELECT to_id FROM links ORDER BY to_id"
    assert journal_rows(sandbox, tmp_path / "state", made) == [(c,) for c in refs.values()]
