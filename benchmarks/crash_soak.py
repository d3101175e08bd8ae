"""Crash and fault soak: kill the importer at random moments, rerun, count duplicates and losses.

    python benchmarks/crash_soak.py            # 20 kills and 5 faulty-network runs
    python benchmarks/crash_soak.py --short    # what CI runs

Everything goes to a sandbox on 127.0.0.1; every loop is bounded.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from importer.journal import Journal, journal_path
from importer.sandbox import Sandbox, SandboxConfig

MAPPING = """\
object_type: products
key: SKU
columns:
  SKU: {property: hs_sku, required: true}
  Name: name
  Price: {property: price, type: number}
"""
TOKEN = "pat-soak"


def write_inputs(folder: Path, rows: int) -> tuple[Path, Path]:
    data = folder / "catalogue.csv"
    with data.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["SKU", "Name", "Price"])
        for i in range(rows):
            writer.writerow([f"{i:06d}", f"Product {i}", f"{i % 500}.99"])
    mapping = folder / "products.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    return data, mapping


def command(data: Path, mapping: Path, url: str, state: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "importer",
        "run",
        "-m",
        str(mapping),
        str(data),
        "--base-url",
        url,
        "--state-dir",
        str(state),
        "--out",
        str(out),
        "--batch-size",
        "10",
        "--timeout",
        "2",
    ]


def tally(box: Sandbox, rows: int) -> tuple[int, int]:
    held = Counter(r["properties"]["hs_sku"] for r in box.records("products"))
    duplicates = sum(n - 1 for n in held.values() if n > 1)
    lost = sum(1 for i in range(rows) if f"{i:06d}" not in held)
    return duplicates, lost


def kill_run(seed: int, rows: int, folder: Path) -> dict[str, object]:
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": TOKEN}
    data, mapping = write_inputs(folder, rows)
    state = folder / "state"
    latency, senders = 0.05, 2
    with Sandbox(SandboxConfig(latency=latency, seed=seed, drop_rate=0.02)) as box:
        victim = subprocess.Popen(
            # Two senders keep the upload about (rows / 10 / 2) * latency long, so most kills
            # land mid-upload rather than after the run finished.
            [*command(data, mapping, box.url, state, folder / "k.xlsx"), "--concurrency", "2"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not box.received and time.monotonic() < deadline and victim.poll() is None:
            time.sleep(0.01)
        delay = random.Random(seed).uniform(0.0, rows / 10 / senders * latency)
        time.sleep(delay)
        mid_run = victim.poll() is None
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        at_kill = len(box.records("products"))
        journal = Journal(journal_path(state, box.url, "products"))
        open_rows = sum(len(b.rows) for b in journal.open_batches())
        journal.close()
        final = subprocess.run(
            command(data, mapping, box.url, state, folder / "f.xlsx"),
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        duplicates, lost = tally(box, rows)
    return {
        "seed": seed,
        "killed_after_s": round(delay, 2),
        "mid_run": mid_run,
        "created_at_kill": at_kill,
        "in_flight_rows": open_rows,
        "rerun_exit": final.returncode,
        "duplicates": duplicates,
        "lost": lost,
    }


def fault_run(seed: int, rows: int, folder: Path) -> dict[str, object]:
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": TOKEN}
    data, mapping = write_inputs(folder, rows)
    config = SandboxConfig(
        seed=seed, error_rate=0.10, drop_rate=0.05, rate_limit=20, rate_interval_ms=1000
    )
    with Sandbox(config) as box:
        started = time.monotonic()
        done = subprocess.run(
            command(data, mapping, box.url, folder / "state", folder / "o.xlsx"),
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        elapsed = time.monotonic() - started
        duplicates, lost = tally(box, rows)
        faults = dict(box.faults)
        throttled = sum(1 for r in box.received if r.path.endswith("/batch/create"))
    return {
        "seed": seed,
        "exit": done.returncode,
        "seconds": round(elapsed, 1),
        "5xx": faults.get("error", 0),
        "drops": faults.get("drop", 0),
        "create_requests": throttled,
        "duplicates": duplicates,
        "lost": lost,
    }


def table(title: str, rows: list[dict[str, object]]) -> None:
    print(f"\n{title}")
    if not rows:
        return
    heads = list(rows[0])
    widths = [max(len(h), *(len(str(r[h])) for r in rows)) for h in heads]
    print("  ".join(h.rjust(w) for h, w in zip(heads, widths, strict=True)))
    for r in rows:
        print("  ".join(str(r[h]).rjust(w) for h, w in zip(heads, widths, strict=True)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="a quick run for CI")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--faults", type=int, default=5)
    parser.add_argument("--rows", type=int, default=500)
    args = parser.parse_args()
    kills, faults, rows = (3, 1, 200) if args.short else (args.kills, args.faults, args.rows)

    kill_rows = []
    for seed in range(kills):
        with tempfile.TemporaryDirectory() as folder:
            kill_rows.append(kill_run(seed, rows, Path(folder)))
    table(f"SIGKILL at a random moment, then rerun ({rows} rows, 2% dropped answers)", kill_rows)
    fault_rows = []
    for seed in range(faults):
        with tempfile.TemporaryDirectory() as folder:
            fault_rows.append(fault_run(seed, rows, Path(folder)))
    table(f"10% 5xx, 5% dropped answers, 20 requests/s limit ({rows} rows)", fault_rows)

    dup = sum(int(str(r["duplicates"])) for r in kill_rows + fault_rows)
    lost = sum(int(str(r["lost"])) for r in kill_rows + fault_rows)
    mid = sum(1 for r in kill_rows if r["mid_run"])
    print(
        f"\nruns: {len(kill_rows)} kills ({mid} mid-run) + {len(fault_rows)} faulty; "
        f"rows per run: {rows}; duplicates found: {dup}; rows lost: {lost}"
    )
    return 1 if dup or lost else 0


if __name__ == "__main__":
    sys.exit(main())
