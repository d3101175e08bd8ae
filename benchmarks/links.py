"""Association sync: carts whose two links each all change, against the rate limit's bound.

    python benchmarks/links.py            # 10,000 carts
    python benchmarks/links.py --short    # 1,000 carts: what CI runs
    python benchmarks/links.py --strict   # exit 1 if a target is missed

A sandbox in its own process, limited to 50 requests a second with 100 ms latency, holds the
20 demo contacts. Run 1 creates the carts, each linked to two contacts (inline on batch/create).
Run 2 changes every cart's cell to two other contacts: nothing else changes, so it sends only
association requests, 100 pairs each (one input is one pair): adds through batch/create and
removals through batch/labels/archive, after one read of the carts' current links per 1,000
(a link someone else made is never taken as this tool's). The minimum is ceil(pairs added /
100) + ceil(pairs removed / 100) + ceil(carts / 1,000); the bound is what the rate limit
allows for the requests sent, as in upload.py: (ceil(N / M) - 1) * W + L. Run 3 changes
nothing and must send no write.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from upload import Shape, sandbox_for

import importer.stages.run_links
from importer import RunOptions, run_import
from importer.core.hubspot import MAX_ASSOCIATION_READS

MAPPING = """\
object_type: carts
key: Ref
columns:
  Ref: hs_external_cart_id
associations:
  - column: Contacts
    to: contacts
    types: [{associationCategory: HUBSPOT_DEFINED, associationTypeId: 586}]
"""


def carts(path: Path, n: int, shift: int) -> Path:
    """Cart i links two of the 20 demo contacts; `shift` 5 gives each cart two others."""
    lines = ["Ref,Contacts"]
    for i in range(n):
        k = (i + shift) % 10
        lines.append(f"C{i:06d},{1001 + k};{1011 + k}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@contextlib.contextmanager
def timed_link_stage() -> Iterator[list[float]]:
    """Seconds spent in the link stage of each run (apply_links), beside the whole run's."""
    spent: list[float] = []
    original = importer.stages.run_links.apply_links

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - start)

    importer.stages.run_links.apply_links = timed  # type: ignore[assignment]
    try:
        yield spent
    finally:
        importer.stages.run_links.apply_links = original  # type: ignore[assignment]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="1,000 carts (CI)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--carts", type=int, default=None)
    args = parser.parse_args()
    n = args.carts or (1_000 if args.short else 10_000)
    shape = Shape("scaled: 50 per 1 s, 100 ms", 50, 1.0, 0.1, 0)
    failures: list[str] = []
    with (
        tempfile.TemporaryDirectory() as folder,
        timed_link_stage() as spent,
        sandbox_for(shape) as url,
    ):
        tmp = Path(folder)
        mapping = tmp / "carts.yaml"
        mapping.write_text(MAPPING, encoding="utf-8")

        def run(data: Path) -> tuple[float, Any]:
            options = RunOptions(
                input_file=data,
                mapping_file=mapping,
                token="pat-benchmark",
                base_url=url,
                state_dir=tmp / "state",
                out=tmp / f"{data.stem}.xlsx",
            )
            start = time.perf_counter()
            result = run_import(options)
            return time.perf_counter() - start, result.summary

        _, first = run(carts(tmp / "first.csv", n, 0))
        time.sleep(2 * shape.window)  # the next night: run 1's requests have left the window
        calls = len(spent)
        seconds, second = run(carts(tmp / "second.csv", n, 5))
        link_s = sum(spent[calls:])  # the stage records, then sends: one or two calls a run
        _, third = run(carts(tmp / "third.csv", n, 5))

    pairs = 2 * n
    minimum = 2 * math.ceil(pairs / 100) + math.ceil(n / MAX_ASSOCIATION_READS)
    sent = second.link_requests
    bound = (math.ceil(sent / shape.limit) - 1) * shape.window + shape.latency
    header = (
        f"{'carts':>7} {'pairs +/-':>10} {'link reqs':>9} {'minimum':>7} {'x min':>6} "
        f"{'link s':>7} {'bound s':>7} {'x bound':>7} {'run s':>6} {'rows updated':>12}"
    )
    print(f"shape: {shape.name}; run 1 created {first.counts['created']:,} linked carts")
    print(header)
    print("-" * len(header))
    print(
        f"{n:>7,} {pairs:>10,} {sent:>9} {minimum:>7} {sent / minimum:>6.2f} {link_s:>7.2f} "
        f"{bound:>7.2f} {link_s / bound:>7.3f} {seconds:>6.2f} {second.counts['updated']:>12,}"
    )
    print(
        f"\nrun 3 (nothing changed): {third.link_requests} association requests, "
        f"{third.counts['unchanged']:,} rows unchanged"
    )
    if sent != minimum:
        failures.append(f"{sent} association requests, not the minimum {minimum}")
    # Within a window or two, the bound is one latency and fixed costs dominate: judged from
    # 5 windows of requests on (the full run's 400 requests are 8).
    if sent >= 5 * shape.limit and link_s > 1.10 * bound:
        failures.append(f"link stage {link_s / bound:.3f}x the bound (target 1.10)")
    if second.counts["updated"] != n:
        failures.append(f"{second.counts['updated']} rows updated, not {n}")
    if third.link_requests != 0 or third.counts["unchanged"] != n:
        failures.append("the third run was not a no-op")
    print("\n" + ("; ".join(failures) if failures else "every target met"))
    return 1 if failures and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
