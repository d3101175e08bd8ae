"""Start-up: how long help and the version take, against the interpreter's own start.

    python benchmarks/startup.py            # 15 runs of each command
    python benchmarks/startup.py --short    # 5 runs of each: what CI runs

Each command runs in a fresh process (`python -m importer ...`, output discarded) and its
median wall time is shown with its ratio to `python -c pass`, the floor. Before the timed
runs, one run with `-X importtime` lists the heavy libraries the command imported: pandas,
pandera and the spreadsheet libraries belong to the work, so help and the version should load
none of them. Nothing touches the network.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("pandas", "pandera", "numpy", "pyarrow", "openpyxl", "python_calamine", "lxml", "isal")
COMMANDS = [
    ("python -c pass", ["-c", "pass"]),
    ("python -m importer --help", ["-m", "importer", "--help"]),
    ("python -m importer run --help", ["-m", "importer", "run", "--help"]),
    ("python -m importer --version", ["-m", "importer", "--version"]),
]
TIMEOUT = 60.0
"""Seconds one run may take before the benchmark gives up on it."""


def _python(args: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    """One fresh interpreter running `args`: its wall time and what it printed on stderr."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    return time.perf_counter() - started, done


def seconds(args: list[str]) -> float:
    """The wall time of one fresh interpreter running `args`."""
    elapsed, done = _python(args)
    if done.returncode != 0:
        raise SystemExit(
            f"python {' '.join(args)} exited {done.returncode}:\n{done.stderr[-2000:]}"
        )
    return elapsed


def heavy_imports(args: list[str]) -> list[str]:
    """The heavy libraries `args` imports, read from `-X importtime` (one line per module)."""
    _, done = _python(["-X", "importtime", *args])
    names = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return sorted(names & set(HEAVY))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="5 runs of each command (CI)")
    parser.add_argument(
        "--runs", type=int, default=None, help="runs of each command, the median kept (15)"
    )
    args = parser.parse_args()
    runs = args.runs or (5 if args.short else 15)
    print(f"{'command':32} {'median s':>8} {'x pass':>7}  heavy modules loaded")
    floor = None
    loaded_any = False
    for name, command in COMMANDS:
        heavy = heavy_imports(command)  # also the warm-up: bytecode compiled, files cached
        median = statistics.median(seconds(command) for _ in range(runs))
        floor = floor or median
        loaded_any = loaded_any or bool(heavy)
        print(f"{name:32} {median:>8.3f} {median / floor:>7.2f}  {', '.join(heavy) or 'none'}")
    missed = " (MISSED)" if loaded_any else ""
    print(
        f"\n{runs} runs of each, the median shown; heavy: {', '.join(HEAVY)}\n"
        f"target: help and the version load none of them{missed}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
