"""A signal sends nothing more: batches still waiting for a rate-limit slot when it comes are
settled as never sent (rows `not_sent`, their journal batches closed), and only the requests
already on the wire are waited for."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from importer.api.limiter import Halted, RateLimiter
from importer.sandbox import Sandbox
from importer.state.journal import journal_path

from .conftest import TOKEN, creates, read_sheet, write_csv, write_mapping

MAPPING = """\
object_type: products
key: SKU
columns:
  SKU: hs_sku
  Name: name
"""
ROWS = 300
SENDERS = 8
LIMIT = 4
WINDOW_S = 4.0


def _command(box: Sandbox, tmp_path: Path, out: str) -> list[str]:
    data = write_csv(
        tmp_path / "c.csv", [["SKU", "Name"], *[[f"{i:05d}", f"P {i}"] for i in range(ROWS)]]
    )
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    return [
        sys.executable, "-m", "importer", "run", "-m", str(mapping), str(data),
        "--base-url", box.url, "--state-dir", str(tmp_path / "state"),
        "--out", str(tmp_path / out), "--summary-json", str(tmp_path / "s.json"),
        "--batch-size", "10", "--concurrency", str(SENDERS),
    ]  # fmt: skip


def _open_batches(box: Sandbox, state: Path) -> int:
    """Batches the journal holds as sent and never settled."""
    path = journal_path(state, box.url, "products", box.portal.portal_id)
    with sqlite3.connect(path) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM batches WHERE state = 'sent'").fetchone()
    return int(count)


def _burst(box: Sandbox) -> int:
    """The creates of the first burst, once no more arrive (the next window is seconds away)."""
    seen = len(creates(box))
    while True:
        time.sleep(0.3)
        if len(creates(box)) == seen:
            return seen
        seen = len(creates(box))


def test_a_signal_sends_no_batch_still_waiting_for_a_rate_limit_slot(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    # Four requests per 4 s window and eight senders: after the first burst, every sender holds
    # a batch journaled and waiting in the limiter for the next window. The signal comes while
    # the burst is on the wire (each answer takes 2.5 s): the burst is answered and recorded,
    # the waiting batches are never sent.
    box = make_sandbox(latency=2.5, rate_limit=LIMIT, rate_interval_ms=int(WINDOW_S * 1000))
    command = _command(box, tmp_path, "o.xlsx")
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": TOKEN}
    with subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) as victim:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not creates(box):
            time.sleep(0.01)
        assert creates(box), "the run never sent a batch"
        on_the_wire = _burst(box)
        victim.send_signal(signal.SIGTERM)
        _, err = victim.communicate(timeout=60)
    assert victim.returncode == 143, err
    assert "Traceback" not in err
    # Only the batches on the wire are said to be waited for, not those halted in the limiter.
    said = re.search(r"waiting up to 30 s for the (?:(\d+) batches|batch) in flight", err)
    assert said, err
    assert int(said.group(1) or 1) <= on_the_wire
    # The waiting batches would have left at the next window: none did.
    assert len(creates(box)) == on_the_wire <= LIMIT < SENDERS, err
    statuses = Counter(r["status"] for r in read_sheet(tmp_path / "o.xlsx"))
    held = len(box.records("products"))
    assert held == 10 * on_the_wire
    assert statuses == {"created": held, "not_sent": ROWS - held}
    report = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert report["counts"]["not_sent"] == ROWS - held
    # Nothing is left open in the journal: the next run has nothing to look up.
    assert _open_batches(box, tmp_path / "state") == 0
    box.config.rate_limit = 190
    before = len(box.received)
    again = subprocess.run(
        _command(box, tmp_path, "2.xlsx"),
        env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "never confirmed" not in again.stderr  # no batch to reconcile, no row looked up
    assert not [r for r in box.received[before:] if r.path.endswith(("/search", "/batch/read"))]
    skus = Counter(r["properties"]["hs_sku"] for r in box.records("products"))
    assert skus == Counter({f"{i:05d}": 1 for i in range(ROWS)})


def test_a_halted_wait_for_a_slot_ends_at_once_and_takes_no_slot() -> None:
    limiter = RateLimiter(2, 10.0)
    limiter.acquire()
    limiter.acquire()  # the window is full for 10 s
    stop, ended = threading.Event(), []

    def waiting() -> None:
        with limiter.halted_by(stop):
            try:
                limiter.acquire()
            except Halted:
                ended.append(time.monotonic())

    sender = threading.Thread(target=waiting)
    sender.start()
    time.sleep(0.3)
    assert sender.is_alive()  # waiting for the next window
    stopped = time.monotonic()
    stop.set()
    sender.join(2.0)
    assert ended, "the wait was not halted"
    assert ended[0] - stopped < 0.5


def test_a_stopped_sender_takes_no_slot_even_a_free_one() -> None:
    limiter, stop = RateLimiter(1, 10.0), threading.Event()
    stop.set()
    with limiter.halted_by(stop), pytest.raises(Halted):
        limiter.acquire()
    started = time.monotonic()
    limiter.acquire()  # the one slot is still free, and the halt ended with its block
    assert time.monotonic() - started < 0.5
