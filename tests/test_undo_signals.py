"""A signal during `undo` waits for the archive batch on the wire, records what HubSpot did
exactly as an undo that ran to its end would, sends nothing more and exits 128 + the signal,
saying how many records were archived and how many are left; a second signal leaves the
batch, and the next undo reads HubSpot first and counts those it finds archived as archived.

The signals are real: the undo runs in a subprocess that sends them to itself from a call of
`importer.history.runs._archive` (before or after it), as no timing could place them."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from importer.sandbox import Sandbox

from .conftest import ROOT, SKU_NAME_PRICE, TOKEN, CliRun, write_csv, write_mapping

Runner = Callable[..., CliRun]

SIGNALLING = """\
import os, signal, sys
from importer.cli import entry_point
from importer.history import runs
real, calls = runs._archive, []

def fire():
    os.kill(os.getpid(), signal.SIGTERM)
    if os.environ.get("SECOND"):
        os.kill(os.getpid(), signal.SIGINT)

def signalling(*args, **kwargs):
    calls.append(1)
    if len(calls) == 1 and os.environ["WHEN"] == "before":
        fire()
    answer = real(*args, **kwargs)
    if len(calls) == 1 and os.environ["WHEN"] == "after":
        fire()
    return answer

runs._archive = signalling
sys.argv = ["hubspot-import", *sys.argv[1:]]
entry_point()
"""

ROWS = 150


def _import(box: Sandbox, tmp_path: Path, run_cli: Runner) -> tuple[list[str], str]:
    """Import 150 products; the command line and the run's id."""
    mapping = write_mapping(tmp_path / "m.yaml", SKU_NAME_PRICE)
    data = write_csv(
        tmp_path / "w.csv",
        [["SKU", "Name", "Price"]] + [[f"S{i:03d}", f"P {i}", str(i)] for i in range(ROWS)],
    )
    args = ["run", "-m", str(mapping), str(data), "--base-url", box.url,
            "--state-dir", str(tmp_path / "state"), "--out", str(tmp_path / "o.xlsx")]  # fmt: skip
    done = run_cli(*args)
    assert done.code == 0, done.message
    listed = run_cli("runs", "--state-dir", tmp_path / "state")
    return args, listed.out.split()[0]


def _undo_signalled(tmp_path: Path, run_id: str, when: str, *, second: bool = False) -> CliRun:
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": TOKEN, "WHEN": when}
    if second:
        env["SECOND"] = "1"
    args = ["undo", run_id, "--state-dir", str(tmp_path / "state"), "--yes"]
    done = subprocess.run(
        [sys.executable, "-c", SIGNALLING, *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    return CliRun(done.returncode, done.stdout, done.stderr)


def _undone(tmp_path: Path, run_id: str) -> int:
    """Records the journal says an undo of `run_id` archived."""
    (journal,) = (tmp_path / "state").glob("*.sqlite")
    with sqlite3.connect(journal) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM undone WHERE run_id = ?", (run_id,)).fetchone()
    return int(count)


def test_a_signal_during_undo_records_the_batch_on_the_wire_and_the_next_undo_finishes(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    args, run_id = _import(sandbox, tmp_path, run_cli)
    stopped = _undo_signalled(tmp_path, run_id, "after")
    assert stopped.code == 143, stopped.err
    assert "Traceback" not in stopped.err
    assert (
        "stopped by SIGTERM: 100 of the 150 records to archive were archived, 50 are left: "
        f"`hubspot-import undo {run_id}` finishes it"
    ) in stopped.err
    # No batch left after the signal: HubSpot archived the first hundred only.
    assert len(sandbox.records("products")) == ROWS - 100
    assert _undone(tmp_path, run_id) == 100
    shown = run_cli("show", run_id, "--state-dir", tmp_path / "state")
    assert "part way: 100 archived, 50 left" in shown.out
    # The import run again creates the archived ones, and knows the 50 others.
    again = run_cli(*args)
    assert again.code == 0, again.message
    assert "100 created, 50 unchanged" in again.out
    finished = run_cli("undo", run_id, "--state-dir", tmp_path / "state", "--yes")
    assert finished.code == 0, finished.message
    assert "Archived 50 products" in finished.out
    assert _undone(tmp_path, run_id) == ROWS
    assert len(sandbox.records("products")) == 100  # the ones the second import created


def test_a_signal_before_the_first_batch_leaves_sends_nothing_more(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    """The signal comes as the first batch leaves: that batch is answered and recorded, the
    second never sent."""
    _, run_id = _import(sandbox, tmp_path, run_cli)
    stopped = _undo_signalled(tmp_path, run_id, "before")
    assert stopped.code == 143, stopped.err
    assert "100 of the 150 records to archive were archived, 50 are left" in stopped.err
    assert len(sandbox.records("products")) == ROWS - 100
    assert _undone(tmp_path, run_id) == 100


def test_a_second_signal_leaves_the_batch_and_the_next_undo_counts_it_as_archived(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path, run_cli: Runner
) -> None:
    box = make_sandbox(latency=1.5)  # carried out as it arrives, answered 1.5 s later
    _, run_id = _import(box, tmp_path, run_cli)
    started = time.monotonic()
    stopped = _undo_signalled(tmp_path, run_id, "before", second=True)
    assert stopped.code in (130, 143), stopped.err
    assert "Traceback" not in stopped.err
    assert "a second signal" in stopped.err
    assert "the batch of 100 records on the wire was left without HubSpot's answer" in stopped.err
    assert "0 of the 150 records to archive were archived, 150 are left" in stopped.err
    assert time.monotonic() - started < 30  # the wait was given up, not spent
    deadline = time.monotonic() + 10
    while len(box.records("products")) != ROWS - 100 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(box.records("products")) == ROWS - 100
    finished = run_cli("undo", run_id, "--state-dir", tmp_path / "state", "--yes")
    assert finished.code == 0, finished.message
    assert "Archived 150 products" in finished.out
    assert "no longer" not in finished.out + finished.err
    assert _undone(tmp_path, run_id) == ROWS
    shown = run_cli("show", run_id, "--state-dir", tmp_path / "state")
    assert "Undone:          20" in shown.out
