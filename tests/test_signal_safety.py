"""A signal is never lost and never costs the run its record: one that comes as the object
batches end still has the links made with the records journaled and the workbook written;
one Python swallows (raised in a weakref callback) still stops the run; one during the read
`missing_rows:` makes before a write leaves that write unsent; one during a read before the
first write still gives the run its workbook, every row `not_sent`. Exit 143 each time.

The signals are real SIGTERMs. Where one must come at an exact point of the run's own work
(between two requests), the run is started by `SIGNALLING`, which sends it from the first
call of a function (`SIGNAL_AT`, a journal method say): as the sandbox saw no request then, no
timing could."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from importer.core import shutdown
from importer.sandbox import Sandbox
from importer.state.journal import journal_path

from .conftest import ROOT, SKU_NAME_PRICE, TOKEN, CliRun, read_sheet, write_csv, write_mapping
from .test_links import CARTS, cart_ids, links

Runner = Callable[..., CliRun]

SIGNALLING = """\
import importlib, os, signal, sys, weakref
from importer.cli import entry_point
*path, name = os.environ["SIGNAL_AT"].split(".")
for cut in range(len(path), 0, -1):  # the longest importable start names a module
    try:
        owner = importlib.import_module(".".join(path[:cut]))
        break
    except ImportError:
        continue
for attribute in path[cut:]:
    owner = getattr(owner, attribute)
real, fired = getattr(owner, name), []

def swallowed():
    # A weakref callback, as Python runs them while it frees memory: whatever it raises,
    # Python prints and ignores.
    class Box: pass
    def callback(_):
        os.kill(os.getpid(), signal.SIGTERM)  # handled here, at the loop's first jump
        for _ in range(3): pass
    box = Box()
    ref = weakref.ref(box, callback)
    del box

def signalling(*args, **kwargs):
    if not fired:
        fired.append(True)
        if os.environ.get("SIGNAL_HOW") == "swallowed":
            swallowed()
        else:
            os.kill(os.getpid(), signal.SIGTERM)
    return real(*args, **kwargs)

setattr(owner, name, signalling)
sys.argv = ["hubspot-import", *sys.argv[1:]]
entry_point()
"""


def _signalled(at: str, args: list[Any], how: str = "raised") -> subprocess.CompletedProcess[str]:
    """Run the command line with a SIGTERM sent to itself from the first call of `at`
    (`module.Class.method`), raised as it comes or in a weakref callback (`swallowed`)."""
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": TOKEN, "SIGNAL_AT": at, "SIGNAL_HOW": how}
    return subprocess.run(
        [sys.executable, "-c", SIGNALLING, *map(str, args)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _summary(tmp_path: Path) -> dict[str, Any]:
    return dict(json.loads((tmp_path / "s.json").read_text(encoding="utf-8")))


def _statuses(path: Path) -> Counter[str]:
    return Counter(r["status"] for r in read_sheet(path))


# --- a signal as the object batches end -----------------------------------------------------


CARTS_LINKED = 20


def _carts(box: Sandbox, tmp_path: Path) -> list[Any]:
    """A run creating twenty carts, each linked inline to three contacts."""
    mapping = write_mapping(tmp_path / "m.yaml", CARTS.format(to="", policy="sync"))
    data = write_csv(
        tmp_path / "c.csv",
        [["Ref", "Name", "Contacts"]]
        + [[f"C{i:02d}", f"Cart {i}", "1001;1002;1003"] for i in range(CARTS_LINKED)],
    )
    return ["run", "-m", mapping, data, "--base-url", box.url, "--state-dir", tmp_path / "state",
            "--out", tmp_path / "out.xlsx", "--summary-json", tmp_path / "s.json"]  # fmt: skip


@pytest.mark.parametrize(
    "at",
    [
        "gc.enable",  # the uploader's last answers are recorded (a collection may follow)
        "importer.state.journal.Journal.made_links",  # the links are being decided
        "importer.state.journal.Journal.record_links",  # the inline links are being journaled
    ],
)
def test_a_signal_as_the_object_batches_end_keeps_the_links_made_and_writes_the_workbook(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner, at: str
) -> None:
    args = _carts(sandbox, tmp_path)
    run = _signalled(at, args)
    assert run.returncode == 143, run.stderr
    assert "Traceback" not in run.stderr
    assert "hubspot-import: stopped by SIGTERM" in run.stderr
    # Every cart was created with its links: the run says so, and its journal holds them.
    assert _statuses(tmp_path / "out.xlsx") == {"created": CARTS_LINKED}
    report = _summary(tmp_path)
    assert report["run_id"]
    assert report["exit_code"] == 143
    assert report["counts"]["created"] == CARTS_LINKED
    path = journal_path(tmp_path / "state", sandbox.url, "carts", sandbox.portal.portal_id)
    with sqlite3.connect(path) as db:
        (linked,) = db.execute("SELECT COUNT(*) FROM links").fetchone()
    assert linked == 3 * CARTS_LINKED
    # So the next run knows them as its own: a cell dropping a contact removes that link.
    ids = cart_ids(sandbox)
    data = write_csv(
        tmp_path / "c.csv",
        [["Ref", "Name", "Contacts"]]
        + [[f"C{i:02d}", f"Cart {i}", "1001"] for i in range(CARTS_LINKED)],
    )
    args[args.index("-m") + 2] = data
    again = run_cli(*args)
    assert again.code == 0, again.message
    assert {ref: links(sandbox, i) for ref, i in ids.items()} == {ref: {"1001"} for ref in ids}


# --- a signal Python swallowed --------------------------------------------------------------


def test_a_signal_raised_in_a_weakref_callback_still_stops_the_process() -> None:
    """The handler raises `Stop` in a weakref callback, where Python ignores exceptions: the
    signal is delivered again, and the main thread is stopped all the same."""
    restore = shutdown.install()
    stopped: list[shutdown.Stop] = []
    try:

        class Box:
            pass

        def callback(_: object) -> None:
            os.kill(os.getpid(), signal.SIGTERM)  # handled at the loop's first jump, in here
            for _ in range(3):
                pass

        box = Box()
        ref = weakref.ref(box, callback)
        try:
            del box  # the callback runs now, and its Stop is ignored
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                time.sleep(0.01)
        except shutdown.Stop as exc:
            stopped.append(exc)
        del ref
    finally:
        restore()
    assert stopped, "the signal was lost"
    assert stopped[0].signum == signal.SIGTERM
    assert shutdown.arrived() is None  # forgotten once the handlers are restored


def test_a_swallowed_signal_is_raised_once_where_the_run_s_stages_hand_over() -> None:
    """Until the signal is delivered again, `raise_if_stopped` (called where a run's stages
    hand over) raises it; then it is not delivered again: one stop, not two."""
    restore = shutdown.install()
    raised: list[shutdown.Stop] = []
    try:
        # Held, the lock keeps the thread that delivers the signal again waiting.
        with shutdown._lock:
            shutdown._on_unraisable(  # as Python reports a Stop raised in a callback
                _Unraisable(shutdown.Stop(signal.SIGTERM)), before=sys.__unraisablehook__
            )
            try:
                shutdown.raise_if_stopped()
            except shutdown.Stop as exc:
                raised.append(exc)
        _until(lambda: not any(t.name == "signal-again" for t in threading.enumerate()))
        time.sleep(0.2)  # a signal delivered again would be handled (and raised) by now
        shutdown.raise_if_stopped()  # nothing left
    finally:
        restore()
    assert [s.signum for s in raised] == [signal.SIGTERM]


class _Unraisable:
    """What Python hands `sys.unraisablehook`."""

    def __init__(self, exc: BaseException) -> None:
        self.exc_type = type(exc)
        self.exc_value = exc
        self.exc_traceback = None
        self.err_msg = None
        self.object = None


def _until(done: Callable[[], bool], seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_signal_python_swallowed_stops_the_run_with_its_workbook(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """SIGTERM handled in a weakref callback as the run reconciles (no request sent yet):
    the run stops before its first write, exit 143, its workbook every row `not_sent`."""
    mapping = write_mapping(tmp_path / "m.yaml", SKU_NAME_PRICE)
    data = write_csv(
        tmp_path / "p.csv", [["SKU", "Name", "Price"], *[[f"{i:03d}", "P", "1"] for i in range(30)]]
    )
    args = ["run", "-m", mapping, data, "--base-url", sandbox.url, "--state-dir",
            tmp_path / "state", "--out", tmp_path / "out.xlsx", "--summary-json",
            tmp_path / "s.json"]  # fmt: skip
    run = _signalled("importer.state.journal.Journal.open_batches", args, how="swallowed")
    assert run.returncode == 143, run.stderr
    assert "Exception ignored" not in run.stderr
    assert "Traceback" not in run.stderr
    assert not sandbox.records("products")  # nothing was sent after the signal
    assert _statuses(tmp_path / "out.xlsx") == {"not_sent": 30}
    report = _summary(tmp_path)
    assert report["run_id"]
    assert report["counts"]["not_sent"] == 30


# --- a signal while missing_rows: reads ----------------------------------------------------


def test_sigterm_during_the_missing_rows_read_sends_no_archive(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    mapping = write_mapping(tmp_path / "m.yaml", SKU_NAME_PRICE + "missing_rows: archive\n")

    def feed(skus: range) -> Path:
        rows = [[f"{i:03d}", f"P {i}", "1"] for i in skus]
        return write_csv(tmp_path / "p.csv", [["SKU", "Name", "Price"], *rows])

    def args(data: Path, out: str) -> list[Any]:
        return ["run", "-m", mapping, data, "--base-url", sandbox.url, "--state-dir",
                tmp_path / "state", "--out", tmp_path / out, "--summary-json",
                tmp_path / "s.json", "--max-missing", "100%"]  # fmt: skip

    assert run_cli(*args(feed(range(30)), "1.xlsx")).code == 0
    sandbox.config.hang_seconds, sandbox.config.hang_rate = 1.5, 1.0  # every answer late
    before = len(sandbox.received)
    command = [sys.executable, "-m", "importer", *map(str, args(feed(range(10, 30)), "2.xlsx"))]
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": TOKEN}
    with subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) as victim:
        _until(lambda: any(r.path.endswith("/batch/read") for r in sandbox.received[before:]), 60)
        victim.send_signal(signal.SIGTERM)  # the read is on the wire, no archive yet
        _, err = victim.communicate(timeout=60)
    assert victim.returncode == 143, err
    assert "Traceback" not in err
    assert not [r for r in sandbox.received[before:] if r.path.endswith("/batch/archive")]
    assert len(sandbox.records("products")) == 30
    missing = _summary(tmp_path)["missing"]
    assert (missing["missing"], missing["archived"], missing["not_sent"]) == (10, 0, 10)
    lines = read_sheet(tmp_path / "2.xlsx", "Missing")
    assert all(line["message"].startswith("not archived: the run stopped") for line in lines)

    sandbox.config.hang_rate = 0.0
    again = run_cli(*args(tmp_path / "p.csv", "3.xlsx"))
    assert again.code == 0, again.message
    assert _summary(tmp_path)["missing"]["archived"] == 10
    assert len(sandbox.records("products")) == 20


# --- a signal during a read before the first write -----------------------------------------


def test_sigterm_during_the_verify_read_writes_the_workbook_every_row_not_sent(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    from importer.history.runs import list_runs

    mapping = write_mapping(tmp_path / "m.yaml", SKU_NAME_PRICE)

    def args(price: str, out: str) -> list[Any]:
        rows = [[f"{i:03d}", f"P {i}", price] for i in range(30)]
        data = write_csv(tmp_path / "p.csv", [["SKU", "Name", "Price"], *rows])
        return ["run", "-m", mapping, data, "--base-url", sandbox.url, "--state-dir",
                tmp_path / "state", "--out", tmp_path / out, "--summary-json",
                tmp_path / "s.json", "--verify"]  # fmt: skip

    assert run_cli(*args("1", "1.xlsx")).code == 0
    sandbox.config.hang_seconds, sandbox.config.hang_rate = 3.0, 1.0
    before = len(sandbox.received)
    command = [sys.executable, "-m", "importer", *map(str, args("2", "2.xlsx"))]
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": TOKEN}
    with subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) as victim:
        _until(lambda: any(r.path.endswith("/batch/read") for r in sandbox.received[before:]), 60)
        victim.send_signal(signal.SIGTERM)
        _, err = victim.communicate(timeout=60)
    assert victim.returncode == 143, err
    assert "Traceback" not in err
    assert [r.path for r in sandbox.received[before:] if r.method == "POST"] == [
        r.path for r in sandbox.received[before:] if r.path.endswith("/batch/read")
    ]  # nothing but the read
    rows = read_sheet(tmp_path / "2.xlsx")
    assert {r["status"] for r in rows} == {"not_sent"}
    assert rows[0]["message"] == (
        "not sent: the run was stopped by SIGTERM before anything was sent (the next run sends it)"
    )
    report = _summary(tmp_path)
    assert report["run_id"]
    assert report["counts"]["not_sent"] == 30
    latest = list_runs(tmp_path / "state")[0]
    assert latest["run_id"] == report["run_id"]
    assert latest["finished"]

    sandbox.config.hang_rate = 0.0
    again = run_cli(*args("2", "3.xlsx"))
    assert again.code == 0, again.message
    assert _statuses(tmp_path / "3.xlsx") == {"updated": 30}
