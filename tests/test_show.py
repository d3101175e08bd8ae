"""`show RUN --out FILE`: a run's results workbook written again from its journal, when the
run's own could not be written, or the run was stopped before it wrote it."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from importer.history.runs import list_runs
from importer.sandbox import Sandbox
from importer.state import rundata

from .conftest import TOKEN, CliRun, read_sheet, write_csv, write_mapping

Runner = Callable[..., CliRun]

MAPPING = """\
object_type: products
key: SKU
columns:
  SKU: {property: hs_sku, required: true}
  Name: name
  Price: {property: price, type: number}
"""


def catalogue(path: Path, n: int, *, bad: int | None = None) -> Path:
    rows = [["SKU", "Name", "Price"]]
    rows += [[f"{i:05d}", f"Product {i}", "n/a" if i == bad else f"{i}.5"] for i in range(n)]
    return write_csv(path, rows)


def run_args(data: Path, mapping: Path, box: Sandbox, state: Path, out: Path) -> list[Any]:
    return [
        "run", "-m", mapping, data, "--base-url", box.url, "--state-dir", state, "--out", out,
    ]  # fmt: skip


def only_run(state: Path) -> str:
    (run,) = list_runs(state)
    return str(run["run_id"])


def test_show_out_writes_the_same_results_as_the_run(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    data = catalogue(tmp_path / "c.csv", 120, bad=7)
    state = tmp_path / "state"
    first = run_cli(*run_args(data, mapping, sandbox, state, tmp_path / "run.xlsx"))
    assert first.code == 1, first.message
    run_id = only_run(state)

    again = run_cli("show", run_id[:12], "--state-dir", state, "--out", tmp_path / "again.xlsx")
    assert again.code == 0, again.message
    assert "Wrote the results workbook" in again.out
    assert read_sheet(tmp_path / "again.xlsx") == read_sheet(tmp_path / "run.xlsx")
    assert read_sheet(tmp_path / "again.xlsx", "Issues") == read_sheet(
        tmp_path / "run.xlsx", "Issues"
    )
    # The data the workbook is written from is what the sheet held (leading zeros kept).
    assert [r["SKU"] for r in read_sheet(tmp_path / "again.xlsx")][:2] == ["00000", "00001"]


def test_show_out_never_overwrites_the_input(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    data = catalogue(tmp_path / "c.csv", 3)
    state = tmp_path / "state"
    assert run_cli(*run_args(data, mapping, sandbox, state, tmp_path / "r.xlsx")).code == 0
    before = data.read_bytes()
    refused = run_cli("show", only_run(state), "--state-dir", state, "--out", mapping)
    assert refused.code == 2
    assert "m.yaml" in refused.message
    assert data.read_bytes() == before


def test_a_workbook_that_cannot_be_written_after_sending_says_how_to_get_it(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    data = catalogue(tmp_path / "c.csv", 40)
    state = tmp_path / "state"

    def disk_full(path: Path, *args: Any, **kwargs: Any) -> Path:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr("importer.stages.write.write_results", disk_full)
    failed = run_cli(*run_args(data, mapping, sandbox, state, tmp_path / "r.xlsx"))
    assert failed.code == 2
    run_id = only_run(state)
    assert "No space left on device" in failed.message
    assert f"hubspot-import show {run_id} --out" in failed.message
    assert len(sandbox.records("products")) == 40  # sent, and recorded:
    (run,) = list_runs(state)
    assert run["counts"]["created"] == 40
    assert run["finished"]
    monkeypatch.undo()

    shown = run_cli("show", run_id, "--state-dir", state, "--out", tmp_path / "later.xlsx")
    assert shown.code == 0, shown.message
    rows = read_sheet(tmp_path / "later.xlsx")
    ids = {r["properties"]["hs_sku"]: r["id"] for r in sandbox.records("products")}
    assert {r["SKU"]: r["hubspot_id"] for r in rows} == ids
    assert {r["status"] for r in rows} == {"created"}


def test_only_the_newest_runs_keep_their_rows(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rundata, "KEPT_RUNS", 2)
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    state = tmp_path / "state"
    for n in range(3):
        data = catalogue(tmp_path / "c.csv", 3 + n)
        assert run_cli(*run_args(data, mapping, sandbox, state, tmp_path / f"{n}.xlsx")).code == 0
    *newer, oldest = [r["run_id"] for r in list_runs(state)]  # newest first
    gone = run_cli("show", oldest, "--state-dir", state, "--out", tmp_path / "old.xlsx")
    assert gone.code == 2
    assert "newest 2 runs" in gone.message
    assert "0.xlsx" in gone.message  # where the run's own workbook is
    for run_id in newer:
        kept = run_cli("show", run_id, "--state-dir", state, "--out", tmp_path / "new.xlsx")
        assert kept.code == 0, kept.message


def test_a_killed_run_is_rebuilt_from_its_batches(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path, run_cli: Runner
) -> None:
    box = make_sandbox(latency=0.25)
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    data = catalogue(tmp_path / "c.csv", 300, bad=42)
    state = tmp_path / "state"
    args = run_args(data, mapping, box, state, tmp_path / "killed.xlsx")
    victim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "importer",
            *map(str, args),
            "--batch-size",
            "10",
            "--concurrency",
            "2",
        ],
        env={**os.environ, "HUBSPOT_ACCESS_TOKEN": TOKEN},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while len(box.received) < 6 and time.monotonic() < deadline and victim.poll() is None:
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait(timeout=30) == -signal.SIGKILL
    assert not (tmp_path / "killed.xlsx").exists()

    shown = run_cli("show", only_run(state), "--state-dir", state, "--out", tmp_path / "r.xlsx")
    assert shown.code == 0, shown.message
    assert "did not finish" in shown.out
    rows = read_sheet(tmp_path / "r.xlsx")
    assert [r["SKU"] for r in rows] == [f"{i:05d}" for i in range(300)]  # each row once
    status = {r["SKU"]: r for r in rows}
    assert status["00042"]["status"] == "invalid"
    # Every record HubSpot holds is either recorded as created, with its id, or was in flight.
    for record in box.records("products"):
        row = status[record["properties"]["hs_sku"]]
        assert (row["status"], row["hubspot_id"] or record["id"]) in {
            ("created", record["id"]),
            ("uncertain", record["id"]),
        }
    counts = Counter(r["status"] for r in rows)
    assert counts["created"] + counts["uncertain"] >= len(box.records("products"))
    assert counts["not_sent"] > 0, counts
