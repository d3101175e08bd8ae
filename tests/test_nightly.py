"""Safe to run every night: reruns, crashes, faults, limits and overlapping runs.

Each test runs the real CLI (in-process or as a subprocess) against the sandbox on 127.0.0.1
and then counts what the sandbox holds: duplicates and lost rows are measured, not assumed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from importer import RunOptions, run_import
from importer.api.client import RetryPolicy
from importer.sandbox import Sandbox
from importer.state.journal import Journal, journal_path

from .conftest import TOKEN, CliRun, read_sheet, write_csv, write_mapping

Runner = Callable[..., CliRun]
FAST = RetryPolicy(max_attempts=6, backoff_base=0.01, backoff_max=0.05)

MAPPING = """\
object_type: products
key: SKU
columns:
  SKU: {property: hs_sku, required: true}
  Name: name
  Price: {property: price, type: number}
"""


def catalogue(
    path: Path, n: int, *, changed: dict[int, str] | None = None, invalid: set[int] = frozenset()
) -> Path:  # type: ignore[assignment]
    rows = [["SKU", "Name", "Price"]]
    for i in range(n):
        price = "not a price" if i in invalid else (changed or {}).get(i, f"{i}.50")
        rows.append([f"{i:05d}", f"Product {i}", price])
    return write_csv(path, rows)


def skus(box: Sandbox) -> Counter[str]:
    return Counter(r["properties"]["hs_sku"] for r in box.records("products"))


def cli_args(
    data: Path, mapping: Path, box: Sandbox, state: Path, out: Path, *extra: Any
) -> list[str]:
    return [
        "run",
        "-m",
        str(mapping),
        str(data),
        "--base-url",
        box.url,
        "--state-dir",
        str(state),
        "--out",
        str(out),
        *map(str, extra),
    ]


def test_second_run_sends_nothing_and_third_run_updates_and_creates(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    data = catalogue(tmp_path / "c.csv", 250)
    state = tmp_path / "state"
    first = run_cli(*cli_args(data, mapping, sandbox, state, tmp_path / "1.xlsx"))
    assert first.code == 0
    assert first.out.startswith("products: 250 rows: 250 created.")

    writes = sum(1 for r in sandbox.received if r.method == "POST")
    second = run_cli(*cli_args(data, mapping, sandbox, state, tmp_path / "2.xlsx"))
    assert second.code == 0
    assert second.out.startswith("products: 250 rows: 250 unchanged.")
    # Only the preflight reads (properties): nothing was written, not even looked up.
    assert sum(1 for r in sandbox.received if r.method == "POST") == writes
    ids = {r["SKU"]: r["hubspot_id"] for r in read_sheet(tmp_path / "1.xlsx")}
    assert {r["SKU"]: r["hubspot_id"] for r in read_sheet(tmp_path / "2.xlsx")} == ids

    data = catalogue(tmp_path / "c.csv", 252, changed={3: "9.99", 100: "1", 249: "0.5"})
    third = run_cli(*cli_args(data, mapping, sandbox, state, tmp_path / "3.xlsx"))
    assert third.code == 0
    assert third.out.startswith("products: 252 rows: 2 created, 3 updated, 247 unchanged.")
    assert skus(sandbox) == Counter({f"{i:05d}": 1 for i in range(252)})
    by_sku = {r["properties"]["hs_sku"]: r for r in sandbox.records("products")}
    assert by_sku["00003"]["properties"]["price"] == "9.99"
    assert by_sku["00003"]["id"] == ids["00003"]  # updated in place, not re-created
    updates = [r.body for r in sandbox.received if r.path.endswith("/batch/update")]
    assert sorted(i["id"] for b in updates for i in b["inputs"]) == sorted(
        ids[s] for s in ("00003", "00100", "00249")
    )


def test_upsert_mode_creates_then_updates_by_unique_property(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING + "mode: upsert\n")
    state = tmp_path / "state"
    data = catalogue(tmp_path / "c.csv", 20)
    assert run_cli(*cli_args(data, mapping, sandbox, state, tmp_path / "1.xlsx")).code == 0
    data = catalogue(tmp_path / "c.csv", 20, changed={5: "1.23"})
    result = run_cli(*cli_args(data, mapping, sandbox, state, tmp_path / "2.xlsx"))
    assert result.out.startswith("products: 20 rows: 1 updated, 19 unchanged.")
    (body,) = [r.body for r in sandbox.received if r.path.endswith("/batch/upsert")][1:]
    assert body["inputs"] == [
        {
            "id": "00005",
            "idProperty": "hs_sku",
            "objectWriteTraceId": body["inputs"][0]["objectWriteTraceId"],
            "properties": {"hs_sku": "00005", "name": "Product 5", "price": "1.23"},
        }
    ]
    assert skus(sandbox) == Counter({f"{i:05d}": 1 for i in range(20)})


def test_update_mode_touches_only_existing_records(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    state = tmp_path / "state"
    assert (
        run_cli(
            *cli_args(
                catalogue(tmp_path / "c.csv", 5), mapping, sandbox, state, tmp_path / "1.xlsx"
            )
        ).code
        == 0
    )
    # A fresh journal: update mode must find records by the key property, and create none.
    data = catalogue(tmp_path / "c.csv", 7, changed={1: "7"})
    result = run_cli(
        *cli_args(
            data,
            mapping,
            sandbox,
            tmp_path / "other-state",
            tmp_path / "2.xlsx",
            "--mode",
            "update",
        )
    )
    rows = {r["SKU"]: r for r in read_sheet(tmp_path / "2.xlsx")}
    assert [rows[f"{i:05d}"]["status"] for i in range(7)] == ["updated"] * 5 + ["failed"] * 2
    assert "Could not find the object to update" in rows["00006"]["message"]
    assert result.code == 1
    assert len(sandbox.records("products")) == 5


def test_two_runs_at_once_one_exits_3(make_sandbox: Callable[..., Sandbox], tmp_path: Path) -> None:
    # 30 batches at 5 per second: the first run holds the lock for about 6 s after its first
    # batch, long enough for the second to start and find it held, however fast the uploader.
    box = make_sandbox(latency=0.05, rate_limit=5, rate_interval_ms=1000)
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    data = catalogue(tmp_path / "c.csv", 300)
    state = tmp_path / "state"
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": TOKEN}

    def start(n: int) -> subprocess.Popen[str]:
        args = cli_args(data, mapping, box, state, tmp_path / f"{n}.xlsx", "--batch-size", "10")
        return subprocess.Popen(
            [sys.executable, "-m", "importer", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    first = start(0)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and first.poll() is None:
        if any(r.path.endswith("/batch/create") for r in box.received):
            break
        time.sleep(0.02)
    second = start(1)
    outputs = [p.communicate(timeout=120) for p in (first, second)]
    assert (first.returncode, second.returncode) == (0, 3), outputs
    assert "another import is running against this portal and object type (pid" in outputs[1][1]
    assert skus(box) == Counter({f"{i:05d}": 1 for i in range(300)})


def test_a_held_lock_exits_3_without_sending(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    state = tmp_path / "state"
    holder = Journal(journal_path(state, sandbox.url, "products", sandbox.portal.portal_id))
    holder.lock()
    try:
        result = run_cli(
            *cli_args(
                catalogue(tmp_path / "c.csv", 5), mapping, sandbox, state, tmp_path / "o.xlsx"
            )
        )
    finally:
        holder.close()
    assert result.code == 3
    # Only which portal the token reaches was asked (to find the lock); nothing was sent.
    assert [r.path for r in sandbox.received] == ["/account-info/2026-09/details"]


def test_daily_limit_stops_cleanly_and_the_next_run_finishes(
    run_cli: Runner, make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    box = make_sandbox(daily_limit=5)  # preflight: properties and account details; 3 batches
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    data = catalogue(tmp_path / "c.csv", 50)
    state = tmp_path / "state"
    summary = tmp_path / "summary.json"
    first = run_cli(
        *cli_args(
            data,
            mapping,
            box,
            state,
            tmp_path / "1.xlsx",
            "--batch-size",
            "10",
            "--summary-json",
            summary,
        )
    )
    assert first.code == 1
    assert "daily API limit for this account is spent" in first.message
    statuses = Counter(r["status"] for r in read_sheet(tmp_path / "1.xlsx"))
    assert statuses == {"created": 30, "not_sent": 20}
    report = json.loads(summary.read_text(encoding="utf-8"))
    assert report["exit_code"] == 1
    assert report["api_version"] == "2026-09"
    assert report["counts"]["not_sent"] == 20
    assert report["workbook"] == str(tmp_path / "1.xlsx")
    assert report["stopped_by"].startswith("HubSpot's daily API limit")

    box.config.daily_limit = 1_000  # midnight in the account's time zone
    second = run_cli(
        *cli_args(data, mapping, box, state, tmp_path / "2.xlsx", "--batch-size", "10")
    )
    assert second.code == 0
    assert second.out.startswith("products: 50 rows: 20 created, 30 unchanged.")
    assert skus(box) == Counter({f"{i:05d}": 1 for i in range(50)})


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_faulty_network_and_tight_rate_limit_create_each_row_exactly_once(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path, seed: int
) -> None:
    box = make_sandbox(
        error_rate=0.10, drop_rate=0.05, rate_limit=8, rate_interval_ms=400, seed=seed
    )
    data = catalogue(tmp_path / "c.csv", 600, invalid={7, 300})
    options = RunOptions(
        input_file=data,
        mapping_file=write_mapping(tmp_path / "m.yaml", MAPPING),
        token=TOKEN,
        base_url=box.url,
        retry=FAST,
        out=tmp_path / "o.xlsx",
        state_dir=tmp_path / "state",
        batch_size=10,
    )
    result = run_import(options)
    assert {k: v for k, v in result.summary.counts.items() if v} == {"created": 598, "invalid": 2}
    assert skus(box) == Counter({f"{i:05d}": 1 for i in range(600) if i not in (7, 300)})
    assert box.faults["error"] >= 3
    assert box.faults["drop"] >= 1  # answers really were lost after processing


@pytest.mark.parametrize("seed", [11, 12, 13, 14, 15])
def test_sigkill_at_a_random_moment_then_rerun(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path, seed: int
) -> None:
    box = make_sandbox(latency=0.25, seed=seed)  # slow enough to kill 8 batches in flight
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    data = catalogue(tmp_path / "c.csv", 300, invalid={42})
    state = tmp_path / "state"
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": TOKEN}

    def command(out: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "importer",
            *cli_args(data, mapping, box, state, tmp_path / out, "--batch-size", "10"),
            # Four at a time: 30 batches then take about 2 s, so the kill lands mid-upload.
            "--concurrency",
            "4",
        ]

    victim = subprocess.Popen(
        command("killed.xlsx"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    # Wait for the first request, then kill at a random moment of the upload.
    deadline = time.monotonic() + 60
    while not box.received and time.monotonic() < deadline and victim.poll() is None:
        time.sleep(0.01)
    time.sleep(random.Random(seed).uniform(0.0, 0.6))
    assert victim.poll() is None, "the run finished before it could be killed"
    victim.send_signal(signal.SIGKILL)
    assert victim.wait(timeout=30) == -signal.SIGKILL
    assert len(box.records("products")) < 299  # killed mid-upload

    final = subprocess.run(
        command("final.xlsx"), env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert final.returncode == 1, final.stderr  # row 44 is invalid
    rows = read_sheet(tmp_path / "final.xlsx")
    assert len(rows) == 300
    statuses = Counter(r["status"] for r in rows)
    assert statuses["invalid"] == 1
    assert statuses["created"] + statuses["unchanged"] == 299, statuses
    assert skus(box) == Counter({f"{i:05d}": 1 for i in range(300) if i != 42})
    ids = {r["properties"]["hs_sku"]: r["id"] for r in box.records("products")}
    assert all(ids[r["SKU"]] == r["hubspot_id"] for r in rows if r["status"] != "invalid")
