"""Crash and fault soak: kill the importer at random moments, rerun, count duplicates and losses.

    python benchmarks/crash_soak.py            # 20 kills, 5 faulty-network runs, 5 lagging-search
    python benchmarks/crash_soak.py --short    # what CI runs

Three shapes. Kills and faults import products keyed on hs_sku, which HubSpot (and the
sandbox) holds unique. The third keys them on `name`, which HubSpot does not hold unique:
nothing but the importer keeps a record from being created twice. Its sandbox lags search
by a second (lookups can only search), answers 20% of creates 504 after carrying them out
and loses 5% of answers; each run is killed at a random moment, rerun at once, and run a
third time once search has caught up. Records are counted per key here, from the sandbox's
own store, not trusted to any uniqueness check.

Everything goes to a sandbox on 127.0.0.1; every loop is bounded.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from importer.sandbox import Sandbox, SandboxConfig
from importer.state.journal import Journal, journal_path

MAPPING = """\
object_type: products
key: SKU
columns:
  SKU: {property: hs_sku, required: true}
  Name: name
  Price: {property: price, type: number}
"""
BY_NAME = """\
object_type: products
key: Name
columns:
  Name: {property: name, required: true}
  Price: {property: price, type: number}
"""
TOKEN = "pat-soak"
SEARCH_LAG = 1.0
SEARCH_SETTLE = 2.0


def write_inputs(folder: Path, rows: int, mapping_text: str = MAPPING) -> tuple[Path, Path]:
    data = folder / "catalogue.csv"
    with data.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["SKU", "Name", "Price"])
        for i in range(rows):
            writer.writerow([f"{i:06d}", f"Product {i}", f"{i % 500}.99"])
    mapping = folder / "products.yaml"
    mapping.write_text(mapping_text, encoding="utf-8")
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


def tally(box: Sandbox, rows: int, by: str = "hs_sku") -> tuple[int, int]:
    """Records beyond one per key, and keys with no record, counted from the store."""
    held = Counter(r["properties"].get(by) for r in box.records("products"))
    keys = [f"{i:06d}" if by == "hs_sku" else f"Product {i}" for i in range(rows)]
    duplicates = sum(n - 1 for n in held.values() if n > 1)
    lost = sum(1 for key in keys if key not in held)
    return duplicates, lost


def kill_at_random(
    args: list[str], env: dict[str, str], box: Sandbox, state: Path, seed: int, within: float
) -> tuple[float, bool, int]:
    """Start the importer, SIGKILL it at a random moment of the `within` seconds after its
    first request: (when, whether it was still running, rows its journal left in flight)."""
    victim = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not box.received and time.monotonic() < deadline and victim.poll() is None:
        time.sleep(0.01)
    delay = random.Random(seed).uniform(0.0, within)
    time.sleep(delay)
    mid_run = victim.poll() is None
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    journal = Journal(journal_path(state, box.url, "products", box.portal.portal_id))
    open_rows = sum(len(b.rows) for b in journal.open_batches())
    journal.close()
    return delay, mid_run, open_rows


def kill_run(seed: int, rows: int, folder: Path) -> dict[str, object]:
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": TOKEN}
    data, mapping = write_inputs(folder, rows)
    state = folder / "state"
    latency, senders = 0.05, 2
    config = SandboxConfig(latency=latency, seed=seed, drop_rate=0.02, search_lag=SEARCH_LAG)
    with Sandbox(config) as box:
        # Two senders keep the upload about (rows / 10 / 2) * latency long, so most kills
        # land mid-upload rather than after the run finished.
        victim = [*command(data, mapping, box.url, state, folder / "k.xlsx"), "--concurrency", "2"]
        delay, mid_run, open_rows = kill_at_random(
            victim, env, box, state, seed, rows / 10 / senders * latency
        )
        at_kill = len(box.records("products"))
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
        seed=seed,
        error_rate=0.10,
        drop_rate=0.05,
        rate_limit=20,
        rate_interval_ms=1000,
        search_lag=SEARCH_LAG,
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


def run_with_summary(
    args: list[str], env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], dict[str, int]]:
    """Run the importer with --summary-json; its counts per status."""
    with tempfile.TemporaryDirectory() as folder:
        summary = Path(folder) / "summary.json"
        done = subprocess.run(
            [*args, "--summary-json", str(summary)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if not summary.exists():
            raise SystemExit(f"the run wrote no summary (exit {done.returncode}):\n{done.stderr}")
        return done, json.loads(summary.read_text(encoding="utf-8"))["counts"]


def lag_run(seed: int, rows: int, folder: Path) -> dict[str, object]:
    """A key HubSpot does not hold unique, lagging search, 504s after commit, a kill."""
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": TOKEN}
    data, mapping = write_inputs(folder, rows, BY_NAME)
    state = folder / "state"
    config = SandboxConfig(
        seed=seed, latency=0.05, late_error_rate=0.2, drop_rate=0.05, search_lag=SEARCH_LAG
    )
    settle = ["--search-settle", str(SEARCH_SETTLE), "--concurrency", "2"]
    with Sandbox(config) as box:
        victim = [*command(data, mapping, box.url, state, folder / "k.xlsx"), *settle]
        delay, mid_run, open_rows = kill_at_random(
            victim, env, box, state, seed, rows / 10 / 2 * 0.05 * 1.5
        )
        rerun, rerun_counts = run_with_summary(
            [*command(data, mapping, box.url, state, folder / "r.xlsx"), *settle], env
        )
        duplicates, _ = tally(box, rows, by="name")
        faults = dict(box.faults)
        # Once search has caught up (and the faults are over), a third run settles the rest.
        box.config.late_error_rate = box.config.drop_rate = 0.0
        time.sleep(SEARCH_LAG)
        final, final_counts = run_with_summary(
            [*command(data, mapping, box.url, state, folder / "f.xlsx"), *settle], env
        )
        final_duplicates, final_lost = tally(box, rows, by="name")
    return {
        "seed": seed,
        "killed_after_s": round(delay, 2),
        "mid_run": mid_run,
        "in_flight_rows": open_rows,
        "504_after_commit": faults.get("late_error", 0),
        "drops": faults.get("drop", 0),
        "rerun_exit": rerun.returncode,
        "rerun_uncertain": rerun_counts.get("uncertain", 0),
        "final_exit": final.returncode,
        "final_uncertain": final_counts.get("uncertain", 0),
        "duplicates": max(duplicates, final_duplicates),
        "lost": final_lost,
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
    parser.add_argument("--lagging", type=int, default=5)
    parser.add_argument("--rows", type=int, default=500)
    args = parser.parse_args()
    kills, faults, lagging, rows = (
        (3, 1, 1, 200) if args.short else (args.kills, args.faults, args.lagging, args.rows)
    )

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
    lag_rows = []
    for seed in range(lagging):
        with tempfile.TemporaryDirectory() as folder:
            lag_rows.append(lag_run(seed, rows, Path(folder)))
    table(
        f"key without unique values (name), search lagging {SEARCH_LAG:.0f} s, 20% of creates "
        f"504 after commit, 5% dropped answers, SIGKILL, rerun, final run ({rows} rows)",
        lag_rows,
    )

    everything = kill_rows + fault_rows + lag_rows
    dup = sum(int(str(r["duplicates"])) for r in everything)
    lost = sum(int(str(r["lost"])) for r in everything)
    left_uncertain = sum(int(str(r["final_uncertain"])) for r in lag_rows)
    mid = sum(1 for r in kill_rows + lag_rows if r["mid_run"])
    print(
        f"\nruns: {len(kill_rows)} kills + {len(fault_rows)} faulty + {len(lag_rows)} lagging "
        f"({mid} killed mid-run); rows per run: {rows}; duplicates found: {dup}; rows lost: "
        f"{lost}; rows left uncertain after the final runs: {left_uncertain}"
    )
    return 1 if dup or lost or left_uncertain else 0


if __name__ == "__main__":
    sys.exit(main())
