"""Upload throughput against the rate limit's bound, beside a plain sequential loop.

    python benchmarks/upload.py            # the real shape (100 per 10 s, 250 ms) and a scaled one
    python benchmarks/upload.py --short    # the scaled shape only, 5 windows: what CI runs
    python benchmarks/upload.py --strict   # exit 1 if a target is missed

With at most M requests in any window of W seconds and a request latency of L, N requests
cannot all finish before (ceil(N/M) - 1) * W + L. Each run sends N = windows * M batch/create
requests of 100 records to a sandbox on 127.0.0.1 configured with that limit and latency.
The scaled shape runs three times and is judged by the median (--runs): on a shared virtual
machine one run can land in a burst of stolen CPU time, which the steal % column shows.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

from importer.api.client import HubSpotClient, RetryPolicy
from importer.core.hubspot import ApiPaths
from importer.core.prepared import PreparedRow
from importer.mapping.file import parse_mapping
from importer.stages.decide import Action, Operation
from importer.stages.send import DEFAULT_CONCURRENCY, Uploader
from importer.state.journal import Journal

BATCH = 100
TOKEN = "pat-benchmark"


@dataclass(frozen=True)
class Shape:
    name: str
    limit: int
    window: float
    latency: float
    windows: int

    @property
    def requests(self) -> int:
        return self.windows * self.limit

    @property
    def bound(self) -> float:
        return (math.ceil(self.requests / self.limit) - 1) * self.window + self.latency


def rows(n: int) -> list[PreparedRow]:
    return [
        PreparedRow(
            row=i + 2,
            key=f"key:{i:07d}",
            key_value=f"{i:07d}",
            properties={"hs_sku": f"{i:07d}", "name": f"Product {i}", "price": "9.99"},
            associations=(),
            run_id="bench",
            sent_hash=f"{i}",
        )
        for i in range(n)
    ]


def _cpu_ticks() -> tuple[int, int] | None:
    """(stolen, all) CPU ticks of the machine so far, from /proc/stat (Linux), else None."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [int(f) for f in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


@contextlib.contextmanager
def stolen() -> Iterator[list[float | None]]:
    """Yields a list that ends up holding the share of CPU time the hypervisor took from this
    machine meanwhile (steal time), or None where that is not known. On a shared virtual
    machine it can reach a third of the time, and the pacing figures with it."""
    share: list[float | None] = [None]
    before = _cpu_ticks()
    yield share
    after = _cpu_ticks()
    if before is not None and after is not None and after[1] > before[1]:
        share[0] = (after[0] - before[0]) / (after[1] - before[1])


def _one_core() -> Callable[[], None] | None:
    """Confine the sandbox to one core (the last), where the machine has more than one.

    HubSpot's servers do not run on the importer's machine. The sandbox does: with 50 requests
    in flight it wants more than a core (its handler threads, and SQLite beside them), and on a
    2-core machine it then takes the importer's CPU in bursts, which the rolling window carries
    from one window into all the later ones. Six runs of the scaled shape each, back to back:
    unconfined, 1.036-1.118x the bound with the last window's sends spread over 40-494 ms;
    confined, 1.037-1.040x and 35-70 ms. The importer keeps every core, the sandbox's
    included."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) < 2:
        return None
    last = cores[-1]
    return lambda: os.sched_setaffinity(0, {last})


@contextlib.contextmanager
def sandbox_for(shape: Shape) -> Iterator[str]:
    """A sandbox in its own process, as HubSpot is: its work must not share our GIL."""
    args = [
        sys.executable,
        "-m",
        "importer",
        "sandbox",
        "--port",
        "0",
        "--rate-limit",
        str(shape.limit),
        "--rate-window-ms",
        str(int(shape.window * 1000)),
        "--latency",
        str(shape.latency),
        "--daily-limit",
        "10000000",
    ]
    # No threads run here yet, so a preexec_fn is safe.
    with subprocess.Popen(args, stdout=subprocess.PIPE, text=True, preexec_fn=_one_core()) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            url = re.search(r"http://127\.0\.0\.1:\d+", line)
            if url is None:
                raise RuntimeError(f"the sandbox did not start: {line!r}")
            yield url.group(0)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def ours(shape: Shape, concurrency: int) -> tuple[float, int, int, float | None]:
    """Seconds, 429s, records created by the importer's uploader, and the steal share."""
    mapping = parse_mapping(
        {
            "object_type": "products",
            "key": "SKU",
            "columns": {"SKU": "hs_sku", "Name": "name", "Price": "price"},
        }
    )
    actions = [Action(row=r, operation=Operation.CREATE) for r in rows(shape.requests * BATCH)]
    with sandbox_for(shape) as url, tempfile.TemporaryDirectory() as folder:
        client = HubSpotClient(token=TOKEN, base_url=url, retry=RetryPolicy(max_attempts=8))
        journal = Journal(Path(folder) / "bench.sqlite", lock=True)
        uploader = Uploader(client, mapping, journal, "bench", concurrency=concurrency)
        # One request first, as a run's preflight does, so the limit is learned from headers.
        client.request("GET", client.paths.properties("products"))
        time.sleep(shape.window + 0.1)  # ...and let that request leave the window
        with stolen() as steal:
            started = time.monotonic()
            report = uploader.execute(actions)
            elapsed = time.monotonic() - started
        created = sum(1 for r in report.results.values() if r.status.value == "created")
        journal.close()
        client.close()
        return elapsed, client.rate_limited, created, steal[0]


def sequential(shape: Shape) -> tuple[float, int, int, float | None]:
    """The same batches sent one at a time by a plain loop (and the steal share)."""
    every = rows(shape.requests * BATCH)
    bodies = [every[i : i + BATCH] for i in range(0, len(every), BATCH)]
    limited = created = 0
    with sandbox_for(shape) as url, requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        with stolen() as steal:
            started = time.monotonic()
            for batch in bodies:
                body = {
                    "inputs": [
                        {
                            "properties": r.properties,
                            "associations": [],
                            "objectWriteTraceId": r.trace_id,
                        }
                        for r in batch
                    ]
                }
                for _ in range(50):  # bounded
                    reply = session.post(
                        f"{url}{ApiPaths().batch('products', 'create')}", json=body, timeout=60
                    )
                    if reply.status_code != 429:
                        created += len(reply.json().get("results", []))
                        break
                    limited += 1
                    time.sleep(float(reply.headers.get("Retry-After", 1)))
            elapsed = time.monotonic() - started
        return elapsed, limited, created, steal[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--short", action="store_true", help="the scaled shape only, 5 windows (CI)"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--windows",
        type=int,
        default=None,
        help="windows of requests per run (default: 5 at the real shape, 10 at the scaled one)",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=None,
        help="importer runs per shape, judged by their median (default: 1 at the real shape, "
        "3 at the scaled one)",
    )
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    args = parser.parse_args()
    if args.runs is not None and args.runs < 1:
        parser.error("--runs must be at least 1")
    # The issue asks for at least 5 windows so the steady state dominates. At the scaled
    # shape a window is 1 s, and the fixed costs (preparing the first burst, the last
    # answers) weigh 10x more against it than against HubSpot's 10 s windows: 10 windows.
    shapes = [
        Shape(
            "scaled: 50 per 1 s, 100 ms",
            50,
            1.0,
            0.1,
            args.windows or (5 if args.short else 10),
        )
    ]
    if not args.short:
        shapes.insert(0, Shape("real: 100 per 10 s, 250 ms", 100, 10.0, 0.25, args.windows or 5))

    header = (
        f"{'shape':28} {'sender':10} {'requests':>8} {'records':>8} {'seconds':>8} "
        f"{'records/s':>9} {'bound s':>8} {'x bound':>7} {'429s':>5} {'429 %':>6} "
        f"{'steal %':>7}"
    )
    print(header)
    print("-" * len(header))
    worst = 0.0
    failures = []
    for shape in shapes:
        count = args.runs or (1 if shape.window >= 10 else 3)
        runs = [ours(shape, args.concurrency) for _ in range(count)]
        seq_s, seq_429, seq_made, seq_steal = sequential(shape)
        lines = [(f"importer{f' {n}' if count > 1 else ''}", *run) for n, run in enumerate(runs, 1)]
        for sender, seconds, limited, made, steal in [
            *lines,
            ("sequential", seq_s, seq_429, seq_made, seq_steal),
        ]:
            share = 100 * limited / (shape.requests + limited)
            stolen_pct = f"{100 * steal:>7.1f}" if steal is not None else f"{'-':>7}"
            print(
                f"{shape.name:28} {sender:10} {shape.requests:>8} {made:>8} {seconds:>8.2f} "
                f"{made / seconds:>9.0f} {shape.bound:>8.2f} {seconds / shape.bound:>7.3f} "
                f"{limited:>5} {share:>6.2f} {stolen_pct}"
            )
        # Steal time comes and goes within minutes on a shared virtual machine: one run can
        # land in a burst of it. The median of a few runs is the shape's figure.
        ours_s = statistics.median(seconds for seconds, *_ in runs)
        ours_429 = sum(limited for _, limited, *_ in runs)
        speedup = seq_s / ours_s
        if count > 1:
            print(
                f"{'':28} median of {count} runs: {ours_s:.2f} s, "
                f"{ours_s / shape.bound:.3f}x the bound"
            )
        print(f"{'':28} importer is {speedup:.1f}x the sequential loop")
        worst = max(worst, ours_s / shape.bound)
        if ours_s > 1.05 * shape.bound:
            failures.append(f"{shape.name}: {ours_s / shape.bound:.3f}x the bound (target 1.05)")
        if 100 * ours_429 / (count * shape.requests) > 1:
            failures.append(f"{shape.name}: {ours_429} 429s in {count} runs (target at most 1%)")
        if speedup < 2:
            failures.append(f"{shape.name}: {speedup:.1f}x the sequential loop (target 2x)")
        for _, _, made, _ in runs:
            if made != shape.requests * BATCH:
                failures.append(
                    f"{shape.name}: {made} records created, not {shape.requests * BATCH}"
                )
    print(
        "\nsteal %: CPU time the hypervisor took from this machine during the run (from "
        "/proc/stat); the pacing figures suffer with it."
    )
    print(
        f"\nworst (median per shape): {worst:.3f}x the bound; targets "
        + ("met" if not failures else "MISSED: " + "; ".join(failures))
    )
    if args.short:
        print(
            "(short mode, for CI: 5 windows, against which the fixed costs of a run weigh twice "
            "as much as in the full run's 10; docs/speed.md's figures come from the full run)"
        )
    return 1 if failures and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
