"""Associations in every mode, kept in sync night after night: what each policy adds and
removes, links made by others, refused links (`incomplete`), and runs that send nothing."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from importer.sandbox import Sandbox

from .conftest import ROOT, CliRun, read_sheet, write_csv, write_mapping

Runner = Callable[..., CliRun]

CARTS = """\
object_type: carts
key: Ref
columns:
  Ref: hs_external_cart_id
  Name: hs_cart_name
associations:
  - column: Contacts
    separator: ";"
    {to}
    sync: {policy}
    types:
      - {{associationCategory: HUBSPOT_DEFINED, associationTypeId: 586}}
"""


def links(box: Sandbox, cart_id: str) -> set[str]:
    """The contacts a cart is linked to, as HubSpot reads them (either end's links)."""
    return {to for to, _, _, _ in box.store.linked("carts", cart_id, "contacts")}


def cart_ids(box: Sandbox) -> dict[str, str]:
    return {r["properties"]["hs_external_cart_id"]: r["id"] for r in box.records("carts")}


def link_requests(box: Sandbox, since: int = 0) -> list[str]:
    return [
        r.path for r in box.received[since:] if "/associations/" in r.path and "/batch/" in r.path
    ]


def writes(box: Sandbox, since: int = 0) -> list[str]:
    return [
        r.path
        for r in box.received[since:]
        if r.method == "POST" and not r.path.endswith("/search")
    ]


def run_args(data: Path, mapping: Path, box: Sandbox, tmp: Path, *extra: Any) -> list[Any]:
    return ["run", "-m", mapping, data, "--base-url", box.url, "--state-dir", tmp / "state",
            "--out", tmp / "out.xlsx", *extra]  # fmt: skip


@pytest.mark.parametrize("mode", ["create", "upsert", "update"])
def test_the_demo_carts_are_linked_in_every_mode(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner, mode: str
) -> None:
    data, mapping = ROOT / "data" / "carts.csv", ROOT / "mappings" / "carts.yaml"
    with data.open(encoding="utf-8") as fh:
        wanted = {
            r["Cart ref"]: set(r["Contact ids"].split(";")) - {""} for r in csv.DictReader(fh)
        }
    if mode == "update":
        # The records exist (created by an import without links); update mode links them.
        plain = write_mapping(tmp_path / "plain.yaml", "object_type: carts\nkey: Cart ref\n"
                              "columns:\n  Cart ref: hs_external_cart_id\n"
                              "  Status: {property: hs_cart_status, required: true}\n")  # fmt: skip
        first = run_cli(*run_args(data, plain, sandbox, tmp_path / "plain"))
        assert first.code == 0, first.message
        assert all(not links(sandbox, i) for i in cart_ids(sandbox).values())
    result = run_cli(*run_args(data, mapping, sandbox, tmp_path, "--mode", mode))
    assert result.code == 0, result.message
    ids = cart_ids(sandbox)
    assert len(ids) == 60
    assert {ref: links(sandbox, i) for ref, i in ids.items()} == wanted
    if mode == "create":
        assert link_requests(sandbox) == []  # inline on batch/create: no request of their own
    else:
        assert link_requests(sandbox)  # through the associations batch API
    # The next run has nothing to send, links included.
    before = len(sandbox.received)
    again = run_cli(*run_args(data, mapping, sandbox, tmp_path, "--mode", mode))
    assert again.code == 0, again.message
    assert writes(sandbox, before) == []
    assert {r["status"] for r in read_sheet(tmp_path / "out.xlsx")} == {"unchanged"}


def three_carts(path: Path, contacts: dict[str, str]) -> Path:
    return write_csv(
        path, [["Ref", "Name", "Contacts"], *[[r, f"Cart {r}", c] for r, c in contacts.items()]]
    )


@pytest.mark.parametrize(
    ("policy", "c1", "c2"),
    [
        # Ours: 1001 -> 1007 on C1, 1002 -> 1003;1004 on C2. A colleague linked C1 to 1005.
        ("sync", {"1007", "1005"}, {"1003", "1004"}),
        ("add", {"1001", "1007", "1005"}, {"1002", "1003", "1004"}),
        ("replace", {"1007"}, {"1003", "1004"}),
    ],
)
def test_changed_cells_are_applied_by_policy_and_others_links_respected(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner, policy: str, c1: set[str], c2: set[str]
) -> None:
    mapping = write_mapping(tmp_path / "m.yaml", CARTS.format(to="", policy=policy))
    data = three_carts(tmp_path / "c.csv", {"C1": "1001", "C2": "1002", "C3": "1009"})
    assert run_cli(*run_args(data, mapping, sandbox, tmp_path)).code == 0
    ids = cart_ids(sandbox)
    sandbox.store.link("carts", "contacts", [(ids["C1"], "1005", [("HUBSPOT_DEFINED", 586)])])

    data = three_carts(tmp_path / "c.csv", {"C1": "1007", "C2": "1003;1004", "C3": "1009"})
    before = len(sandbox.received)
    second = run_cli(*run_args(data, mapping, sandbox, tmp_path))
    assert second.code == 0, second.message
    assert links(sandbox, ids["C1"]) == c1
    assert links(sandbox, ids["C2"]) == c2
    assert links(sandbox, ids["C3"]) == {"1009"}
    rows = {r["Ref"]: r for r in read_sheet(tmp_path / "out.xlsx")}
    assert rows["C1"]["status"] == "updated"  # an association change alone
    assert "+ contacts 1007" in rows["C1"]["message"]
    assert ("- contacts 1001" in rows["C1"]["message"]) == (policy != "add")
    assert ("- contacts 1005" in rows["C1"]["message"]) == (policy == "replace")
    assert rows["C3"]["status"] == "unchanged"
    sent = link_requests(sandbox, before)
    # One create and (but for add) one removal: the minimum for 2 rows' changes.
    assert sum(p.endswith("/batch/create") for p in sent) == 1
    assert sum(p.endswith("/batch/labels/archive") for p in sent) == (0 if policy == "add" else 1)
    assert not any(p.endswith("/batch/archive") for p in sent)  # never every label of a pair

    before = len(sandbox.received)
    third = run_cli(*run_args(data, mapping, sandbox, tmp_path))
    assert third.code == 0
    link_writes = [p for p in link_requests(sandbox, before) if not p.endswith("/read")]
    assert link_writes == []
    if policy != "replace":  # replace reads every night: others' links may have appeared
        assert writes(sandbox, before) == []


def test_a_refused_link_makes_the_row_incomplete_and_a_later_run_links_it(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    mapping = write_mapping(tmp_path / "m.yaml", CARTS.format(to="to: contacts", policy="sync"))
    data = three_carts(tmp_path / "c.csv", {"C1": "1001;999999", "C2": "1002", "C3": ""})
    result = run_cli(*run_args(data, mapping, sandbox, tmp_path, "--mode", "upsert"))
    assert result.code == 1
    rows = {r["Ref"]: r for r in read_sheet(tmp_path / "out.xlsx")}
    assert rows["C1"]["status"] == "incomplete"
    assert rows["C1"]["hubspot_id"]
    assert "linking contacts 999999 was refused" in rows["C1"]["message"]
    assert rows["C2"]["status"] == "created"
    ids = cart_ids(sandbox)
    assert links(sandbox, ids["C1"]) == {"1001"}

    sandbox.store.seed("contacts", [("999999", {"email": "late@example.com"})])
    later = run_cli(*run_args(data, mapping, sandbox, tmp_path, "--mode", "upsert"))
    assert later.code == 0, later.message
    assert links(sandbox, ids["C1"]) == {"1001", "999999"}
    rows = {r["Ref"]: r for r in read_sheet(tmp_path / "out.xlsx")}
    assert rows["C1"]["status"] == "updated"
    assert rows["C1"]["message"] == "links: + contacts 999999"


def test_a_mapping_whose_target_cannot_be_known_names_to(tmp_path: Path, run_cli: Runner) -> None:
    mapping = write_mapping(
        tmp_path / "m.yaml",
        "object_type: carts\ncolumns: {Ref: hs_external_cart_id}\nassociations:\n"
        "  - column: Buyers\n"
        "    types: [{associationCategory: USER_DEFINED, associationTypeId: 12}]\n",
    )
    data = three_carts(tmp_path / "c.csv", {"C1": "1001"})
    result = run_cli("check", "-m", mapping, data, "--base-url", "http://127.0.0.1:9")
    assert result.code == 2
    assert "associations[0].to: required" in result.message


def test_check_and_dry_run_show_the_link_changes_from_the_journal_alone(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    mapping = write_mapping(tmp_path / "m.yaml", CARTS.format(to="", policy="sync"))
    data = three_carts(tmp_path / "c.csv", {"C1": "1001", "C2": "1002", "C3": "1009"})
    assert run_cli(*run_args(data, mapping, sandbox, tmp_path)).code == 0
    data = three_carts(tmp_path / "c.csv", {"C1": "1007", "C2": "1002;1003", "C3": "1009"})
    before = len(sandbox.received)
    for command in (["check"], ["run", "--dry-run"]):
        out = tmp_path / "plan.xlsx"
        shown = run_cli(*command, "-m", mapping, data, "--base-url", sandbox.url,
                        "--state-dir", tmp_path / "state", "--out", out)  # fmt: skip
        assert shown.code == 0, shown.message
        rows = {r["Ref"]: r for r in read_sheet(tmp_path / "plan.xlsx")}
        assert rows["C1"]["status"] == "would_update"
        assert rows["C1"]["message"] == "links: + contacts 1007, - contacts 1001"
        assert rows["C2"]["message"] == "links: + contacts 1003"
        assert rows["C3"]["status"] == "unchanged"
    assert writes(sandbox, before) == []
    assert link_requests(sandbox, before) == []  # no association read either


def test_undo_reverts_the_links_a_run_changed_on_records_it_did_not_create(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    from importer.history.runs import list_runs

    mapping = write_mapping(tmp_path / "m.yaml", CARTS.format(to="", policy="sync"))
    data = three_carts(tmp_path / "c.csv", {"C1": "1001", "C2": "1002", "C3": "1009"})
    assert run_cli(*run_args(data, mapping, sandbox, tmp_path)).code == 0
    ids = cart_ids(sandbox)
    data = three_carts(tmp_path / "c.csv", {"C1": "1007", "C2": "1002", "C3": "1009", "C4": "1004"})
    assert run_cli(*run_args(data, mapping, sandbox, tmp_path)).code == 0
    assert links(sandbox, ids["C1"]) == {"1007"}
    second = list_runs(tmp_path / "state")[0]["run_id"]

    undone = run_cli("undo", second, "--yes", "--state-dir", tmp_path / "state")
    assert undone.code == 0, undone.message
    assert "added 1 and removed 1 links of records it did not create" in undone.out
    assert "reverted 2 links" in undone.out
    assert links(sandbox, ids["C1"]) == {"1001"}
    assert links(sandbox, ids["C2"]) == {"1002"}
    assert set(cart_ids(sandbox)) == {"C1", "C2", "C3"}  # C4, which the run created, archived
    # An undo is done once: a second says so and changes nothing.
    assert (
        "already undone" in run_cli("undo", second, "--yes", "--state-dir", tmp_path / "state").out
    )


def test_in_create_mode_a_refused_inline_link_does_not_keep_the_record_out(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    mapping = write_mapping(tmp_path / "m.yaml", CARTS.format(to="", policy="sync"))
    data = three_carts(tmp_path / "c.csv", {"C1": "1001;999999", "C2": "1002", "C3": "1003"})
    result = run_cli(*run_args(data, mapping, sandbox, tmp_path))
    assert result.code == 1
    rows = {r["Ref"]: r for r in read_sheet(tmp_path / "out.xlsx")}
    assert rows["C1"]["status"] == "incomplete"
    assert "linking contacts 999999 was refused" in rows["C1"]["message"]
    assert [rows[r]["status"] for r in ("C2", "C3")] == ["created", "created"]
    ids = cart_ids(sandbox)
    assert links(sandbox, ids["C1"]) == {"1001"}
    assert links(sandbox, ids["C2"]) == {"1002"}  # inline, with its record
    assert len(ids) == 3


def test_a_link_request_answered_504_after_it_was_carried_out_is_sent_again_harmlessly(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    """Links are idempotent: a 5xx after the work committed is retried, nothing doubles."""
    from importer.sandbox import Fault

    mapping = write_mapping(tmp_path / "m.yaml", CARTS.format(to="", policy="sync"))
    data = three_carts(tmp_path / "c.csv", {"C1": "1001;1002", "C2": "1003", "C3": "1004"})
    sandbox.inject(Fault(status=504, after=True, path="/contacts/batch/create"))
    result = run_cli(*run_args(data, mapping, sandbox, tmp_path, "--mode", "upsert"))
    assert result.code == 0, result.message
    creates = [p for p in link_requests(sandbox) if p.endswith("/batch/create")]
    assert len(creates) == 2  # the one answered 504, and its resend
    ids = cart_ids(sandbox)
    assert len(ids) == 3
    assert links(sandbox, ids["C1"]) == {"1001", "1002"}
    pairs = sandbox.store.pair_types("carts", ids["C1"], "contacts", "1001")
    assert pairs == [("HUBSPOT_DEFINED", 586)]  # once, not twice
    before = len(sandbox.received)
    assert run_cli(*run_args(data, mapping, sandbox, tmp_path, "--mode", "upsert")).code == 0
    assert writes(sandbox, before) == []


def link_stage_setup(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> tuple[Sandbox, dict[str, str], list[str], dict[str, str]]:
    """60 carts upserted with slow answers and five links a request, one batch at a time: a
    link stage long enough to stop in the middle. Returns the sandbox, the carts' contacts,
    the command's arguments and its environment."""
    import os

    from .conftest import TOKEN

    box = make_sandbox(latency=0.3)
    mapping = write_mapping(tmp_path / "m.yaml", CARTS.format(to="", policy="sync"))
    refs = {f"C{i}": f"{1001 + i % 20}" for i in range(60)}
    data = three_carts(tmp_path / "c.csv", refs)
    extra = ("--mode", "upsert", "--association-batch-size", "5", "--concurrency", "1")
    args = [str(a) for a in run_args(data, mapping, box, tmp_path, *extra)]
    return box, refs, args, {**os.environ, "HUBSPOT_ACCESS_TOKEN": TOKEN}


def mid_link_stage(box: Sandbox) -> None:
    """Wait (a minute at most) for the first link request, then for a few more."""
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not link_requests(box):
        time.sleep(0.01)
    time.sleep(0.5)  # a few link batches in, most to go


def test_sigterm_during_the_link_stage_records_what_was_linked_and_the_rerun_links_the_rest(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    import signal
    import subprocess
    import sys

    box, refs, args, env = link_stage_setup(make_sandbox, tmp_path)
    with subprocess.Popen([sys.executable, "-m", "importer", *args], env=env,
                          stderr=subprocess.PIPE, text=True) as victim:  # fmt: skip
        mid_link_stage(box)
        victim.send_signal(signal.SIGTERM)
        _, err = victim.communicate(timeout=60)
    assert victim.returncode == 143, err
    rows = read_sheet(tmp_path / "out.xlsx")
    assert sorted(r["Ref"] for r in rows) == sorted(refs)  # every row once
    ids = cart_ids(box)
    assert len(ids) == 60  # every record was written before the link stage
    assert all(r["hubspot_id"] == ids[r["Ref"]] for r in rows)
    linked_now = {ref for ref, rid in ids.items() if links(box, rid)}
    said_linked = {r["Ref"] for r in rows if "links: +" in (r["message"] or "")}
    said_left = {r["Ref"] for r in rows if "links not sent" in (r["message"] or "")}
    assert said_linked <= linked_now  # never claims a link HubSpot does not hold
    assert said_left  # the stop came mid-stage
    assert said_linked | said_left == set(refs)

    again = subprocess.run([sys.executable, "-m", "importer", *args], env=env,
                           capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert {ref: links(box, rid) for ref, rid in cart_ids(box).items()} == {
        ref: {contact} for ref, contact in refs.items()
    }
    assert len(cart_ids(box)) == 60  # nothing created twice


def test_sigkill_during_the_link_stage_then_a_rerun_links_every_row_once(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    """No signal handler runs: link batches in flight are unrecorded. Link writes are
    idempotent and recorded only once HubSpot confirms them, so the rerun sends what is not
    recorded, doubling nothing; `show --out` of the killed run lists every row once."""
    import signal
    import subprocess
    import sys

    box, refs, args, env = link_stage_setup(make_sandbox, tmp_path)
    with subprocess.Popen([sys.executable, "-m", "importer", *args], env=env,
                          stderr=subprocess.DEVNULL) as victim:  # fmt: skip
        mid_link_stage(box)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    ids = cart_ids(box)
    assert len(ids) == 60
    assert 0 < sum(1 for rid in ids.values() if links(box, rid)) < 60  # killed mid-stage

    from importer.history.runs import list_runs

    state = tmp_path / "state"
    (killed,) = [r for r in list_runs(state) if not r["finished"]]
    shown = subprocess.run(
        [sys.executable, "-m", "importer", "show", killed["run_id"], "--state-dir", str(state),
         "--out", str(tmp_path / "killed.xlsx")],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert sorted(r["Ref"] for r in read_sheet(tmp_path / "killed.xlsx")) == sorted(refs)

    before = len(box.received)
    again = subprocess.run([sys.executable, "-m", "importer", *args], env=env,
                           capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert {ref: links(box, rid) for ref, rid in cart_ids(box).items()} == {
        ref: {contact} for ref, contact in refs.items()
    }
    assert len(cart_ids(box)) == 60  # nothing created twice
    assert link_requests(box, before)  # the links the killed run never recorded
    # Every link is recorded now: the next night sends no association write.
    settled = len(box.received)
    third = subprocess.run([sys.executable, "-m", "importer", *args], env=env,
                           capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert third.returncode == 0, third.stderr
    assert link_requests(box, settled) == []
