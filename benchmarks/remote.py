"""Remote INPUT: a 100k-row CSV imported from the local disk, from an HTTP server and from S3
(moto's server), all on this machine, and the remote runs' overhead against the local one.

    python benchmarks/remote.py            # 100k-row CSV, HubSpot's real rate limit and latency
    python benchmarks/remote.py --short    # 20k-row CSV, a scaled rate limit (CI)
    python benchmarks/remote.py --strict   # exit 1 if a full run misses the target

Target (issue #28): the remote read adds at most 10 % to a 100k-row run's time over a local
read of the same file. Two tables:

- Full runs, the target: `hubspot-import run` (sending, the portal check first, as a nightly
  run does it) of the CSV given as a path, an http:// URL or an s3:// URL, each into a fresh
  sandbox with HubSpot's rate limit for a private app and its latency (100 requests per 10 s,
  250 ms; benchmarks/upload.py's real shape) and an empty state folder, each timed from
  outside a fresh process: interpreter start, imports, the download, sending and the results
  workbook. 100k rows are 1,000 batch creates, which the limit spreads over about 100 s. The
  sources take turns, so a slow spell of a shared machine does not fall on one source alone.
  One run of each is enough to judge the target: a remote read's overhead is a fixed cost
  at the start (importing the backend, the download) of under a second, and a run's time
  varies by less than a second, both far below the 10 s that 10 % of a 100 s run allows
  (--runs 2 takes the best of two). With --short the CSV has 20k rows and the shape is upload.py's
  scaled one (50 per 1 s, 100 ms): the sending takes about 4 s instead of 90, so the same
  fixed cost and the same variation weigh over ten times more than in a real run; it takes
  the best of two runs, and its verdict (which --strict also obeys) is stricter than the
  issue's target.
- The read alone (dry run), informative: the figure benchmarks/local.py takes for a local read
  (`hubspot-import run --dry-run` without the portal check, timed in a fresh process once the
  importer's own modules are imported, the best of three) for each source. It includes
  importing the store's backend (aiohttp, or s3fs and botocore) and the download, and nothing
  of the sending.

Each remote run starts with an empty state folder, so it downloads the file (a run whose
store's ETag says the file is unchanged reads the copy kept from the last download instead,
which costs a local read and a HEAD request).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import local  # noqa: E402  (benchmarks/local.py: its CSV and its measurement)
import upload  # noqa: E402  (benchmarks/upload.py: its rate-limit shapes and sandbox)

from tests.remote_servers import HttpFiles, http_server, moto_server, s3_environment  # noqa: E402

TARGET = 0.10
"""At most 10 % over the local run."""

REAL = ("real: 100 per 10 s, 250 ms", 100, 10.0, 0.25)
SCALED = ("SCALED (not HubSpot's): 50 per 1 s, 100 ms", 50, 1.0, 0.1)
"""upload.py's two shapes (name, requests per window, window seconds, latency)."""


@dataclass(frozen=True)
class FullRun:
    """One timed `hubspot-import run`: its wall seconds, the requests it sent, and the share of
    CPU time the hypervisor took meanwhile (None where unknown)."""

    seconds: float
    requests: int
    steal: float | None


def fresh_folder(folder: Path) -> Path:
    """A new empty folder in `folder`, for one run's mapping, state and workbook."""
    made = folder / f"run-{time.monotonic_ns()}"
    made.mkdir()
    return made


def dry_run(given: str, folder: Path, repeat: int) -> float:
    """The best seconds of `repeat` dry runs of `given`, each a fresh process with an empty
    state folder (so each remote run downloads the file)."""
    best = float("inf")
    for _ in range(repeat):
        run_folder = fresh_folder(folder)
        done = subprocess.run(
            [sys.executable, str(HERE / "local.py"), "--measure", "dry_run", given,
             str(run_folder)],
            capture_output=True, text=True, timeout=3600, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"dry run of {given} failed:\n{done.stderr[-2000:]}")
        best = min(best, float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"]))
    return best


def shape_for(rows: int, short: bool) -> upload.Shape:
    """The rate-limit shape of the full runs, with as many windows as the batch creates of
    `rows` rows fill (so its `bound` is the least time their sending can take)."""
    name, limit, window, latency = SCALED if short else REAL
    windows = math.ceil(rows / upload.BATCH / limit)
    return upload.Shape(name, limit, window, latency, windows)


def full_run(given: str, folder: Path, shape: upload.Shape, rows: int) -> FullRun:
    """One `hubspot-import run` of `given` into a fresh sandbox of `shape`, with an empty state
    folder, timed from outside its process; every row must come back created."""
    run_folder = fresh_folder(folder)
    mapping = run_folder / "mapping.yaml"
    mapping.write_text(local.MAPPING, encoding="utf-8")
    summary = run_folder / "summary.json"
    args = [
        sys.executable, "-m", "importer", "run", "-m", str(mapping), given,
        "--state-dir", str(run_folder / "state"), "--out", str(run_folder / "results.xlsx"),
        "--summary-json", str(summary),
    ]  # fmt: skip
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": upload.TOKEN}
    with upload.sandbox_for(shape) as url, upload.stolen() as steal:
        started = time.perf_counter()
        done = subprocess.run(
            [*args, "--base-url", url], env=env, capture_output=True, text=True,
            timeout=3600, check=False,
        )  # fmt: skip
        seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"run of {given} exited {done.returncode}:\n{done.stderr[-2000:]}")
    facts = json.loads(summary.read_text(encoding="utf-8"))
    if facts["counts"]["created"] != rows:
        raise SystemExit(f"run of {given} created {facts['counts']['created']} of {rows} rows")
    return FullRun(seconds, int(facts["requests"]), steal[0])


def full_runs(
    sources: list[tuple[str, str]], folder: Path, shape: upload.Shape, rows: int, runs: int
) -> dict[str, list[FullRun]]:
    """`runs` full runs of each source, by source. The sources take turns, so that a slow
    spell of the machine does not fall on one of them alone."""
    done: dict[str, list[FullRun]] = {name: [] for name, _ in sources}
    for _ in range(runs):
        for name, given in sources:
            done[name].append(full_run(given, folder, shape, rows))
    return done


def print_table(
    title: str, figures: list[tuple[str, float, str]], extra: str, verdicts: tuple[str, str]
) -> list[str]:
    """Print each source's seconds (with `extra` columns) and its overhead over the first
    source's, the local floor, judged against the target; the sources that miss it."""
    print(title)
    header = (
        f"{'source':18} {'seconds':>8} {'over s':>7} {'over %':>7} {'target':>7}  "
        f"{'verdict':7} {extra}"
    )
    print(header)
    print("-" * len(header))
    floor = figures[0][1]
    missed = []
    for name, seconds, columns in figures:
        if name == figures[0][0]:
            print(f"{name:18} {seconds:>8.2f} {'-':>7} {'-':>7} {'-':>7}  {'(floor)':7} {columns}")
            continue
        over = seconds / floor - 1
        verdict = verdicts[0] if over <= TARGET else verdicts[1]
        if over > TARGET:
            missed.append(f"{name}: {over:+.1%}")
        print(
            f"{name:18} {seconds:>8.2f} {seconds - floor:>+7.2f} {over:>+7.1%} {TARGET:>7.0%}  "
            f"{verdict:7} {columns}"
        )  # fmt: skip
    return missed


def full_table(
    sources: list[tuple[str, str]], folder: Path, shape: upload.Shape, rows: int, runs: int
) -> list[str]:
    """Run and print the full runs' table; the sources that miss the target."""
    done = full_runs(sources, folder, shape, rows, runs)
    best = {name: min(tries, key=lambda run: run.seconds) for name, tries in done.items()}
    return print_table(
        f"Full runs (the target): {shape.name}, best of {runs}; sending "
        f"{shape.requests:,} batch creates takes at least {shape.bound:.2f} s",
        [
            (
                name,
                run.seconds,
                f"{run.requests:>8} {_percent(run.steal):>7}  "
                + " ".join(f"{tried.seconds:.2f}" for tried in done[name]),
            )
            for name, run in best.items()
        ],
        f"{'requests':>8} {'steal %':>7}  each run s",
        ("PASS", "MISS"),
    )


def _percent(share: float | None) -> str:
    """A share as a percentage with one decimal, or '-' where unknown."""
    return "-" if share is None else f"{100 * share:.1f}"


def stage(folder: Path, rows: int, http: HttpFiles, endpoint: str) -> list[tuple[str, str]]:
    """Write the CSV and serve it from the HTTP server and a moto bucket; each source (its
    name, the INPUT a run is given), the local disk first."""
    csv = folder / f"catalogue-{rows}.csv"
    local.make_csv(csv, rows)
    content = csv.read_bytes()
    os.environ.update(s3_environment(endpoint))  # for boto3 here, and the runs
    import boto3

    client = boto3.client("s3")
    client.create_bucket(Bucket="feeds")
    client.put_object(Bucket="feeds", Key=csv.name, Body=content)
    return [
        ("local disk", str(csv)),
        ("HTTP (loopback)", http.put(f"/{csv.name}", content)),
        ("S3 (moto)", f"s3://feeds/{csv.name}"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="a 20k-row CSV, scaled shape (CI)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a full run misses")
    parser.add_argument(
        "--repeat", type=int, default=None, help="dry runs per source, the best kept (default 3, "
        "1 with --short)",
    )  # fmt: skip
    parser.add_argument(
        "--runs", type=int, default=None, help="full runs per source, the best kept (default 1, "
        "2 with --short)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.runs is not None and args.runs < 1:
        parser.error("--runs must be at least 1")
    runs = args.runs or (2 if args.short else 1)
    rows = 20_000 if args.short else 100_000
    repeat = args.repeat or (1 if args.short else 3)
    shape = shape_for(rows, args.short)
    with tempfile.TemporaryDirectory() as tmp, http_server() as http, moto_server() as endpoint:
        folder = Path(tmp)
        sources = stage(folder, rows, http, endpoint)
        size = Path(sources[0][1]).stat().st_size
        print(f"{rows:,}-row CSV ({size / 1e6:.1f} MB)\n")
        # The dry runs come first: besides their own figures, they bring every module each
        # source's run imports into the page cache, so the first full run (the local one) is
        # not the only one to read them from disk.
        print_table(
            f"The read alone (dry run, informative, not the target), best of {repeat}",
            [(name, dry_run(given, folder, repeat), "") for name, given in sources],
            "",
            ("within", "over"),
        )
        print()
        missed = full_table(sources, folder, shape, rows, runs)
    print(
        f"\nfull runs: {'target met' if not missed else 'target MISSED: ' + '; '.join(missed)}"
        + (" (scaled shape: a short run, against which a remote read's fixed cost weighs "
           "many times more than in a real run; docs/speed.md's figures come from the full "
           "mode)" if args.short else "")
    )  # fmt: skip
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
