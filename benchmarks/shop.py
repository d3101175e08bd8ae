"""A whole shop in one plan: requests beside the minimum, time beside the rate limit's bound.

    python benchmarks/shop.py            # 10,000 products, 2,000 orders, 20,000 lines; 100 per 10 s
    python benchmarks/shop.py --short    # 1,000 / 200 / 2,000 at 50 per 1 s: what CI runs
    python benchmarks/shop.py --strict   # exit 1 if a target is missed

A sandbox in its own process holds the 20 demo contacts. The plan imports products (key SKU),
orders (key order ref, each linked to its customer found by email) and order lines (key line
ref; hs_product_id from the product's SKU, linked to its order by order ref). The minimum is
the writes, ceil(rows / 100) per object, plus one lookup request per 100 distinct keys that no
step imports (the customers' emails) and no link request (links go inline on batch/create).
The bound is what the rate limit allows for the requests sent: (ceil(N / M) - 1) * W + L.
A second run must send no write.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
import time
from pathlib import Path

from openpyxl import Workbook

sys.path.insert(0, str(Path(__file__).resolve().parent))

from upload import Shape, sandbox_for

from importer import RunOptions, run_plan

CUSTOMERS = [
    "ada.lovelace", "alan.turing", "grace.hopper", "linus.torvalds", "margaret.hamilton",
    "dennis.ritchie", "barbara.liskov", "ken.thompson", "frances.allen", "edsger.dijkstra",
]  # fmt: skip

MAPPINGS = {
    "products.yaml": "object_type: products\nkey: SKU\ncolumns:\n  SKU: hs_sku\n  Name: name\n",
    "orders.yaml": (
        "object_type: orders\nkey: Order ref\ncolumns:\n  Order ref: hs_external_order_id\n"
        "associations:\n  - {column: Customer, to: contacts, by: email, types: "
        "[{associationCategory: HUBSPOT_DEFINED, associationTypeId: 507}]}\n"
    ),
    "lines.yaml": (
        "object_type: line_items\nkey: Line ref\ncolumns:\n  Line ref: name\n"
        "  SKU: {property: hs_product_id, to: products, by: hs_sku}\n"
        "  Quantity: {property: quantity, type: number}\n"
        "associations:\n  - {column: Order ref, to: orders, by: hs_external_order_id, types: "
        "[{associationCategory: HUBSPOT_DEFINED, associationTypeId: 514}]}\n"
    ),
    "plan.yaml": (
        "input: shop.xlsx\nsteps:\n  - {mapping: lines.yaml, sheet: Order lines}\n"
        "  - {mapping: orders.yaml, sheet: Orders}\n  - {mapping: products.yaml, sheet: Products}\n"
    ),
}


def make_shop(folder: Path, products: int, orders: int, lines: int) -> None:
    rng = random.Random(20261202)
    wb = Workbook(write_only=True)
    sheet = wb.create_sheet("Products")
    sheet.append(["SKU", "Name"])
    for i in range(products):
        sheet.append([f"P-{i:06d}", f"Product {i}"])
    sheet = wb.create_sheet("Orders")
    sheet.append(["Order ref", "Customer"])
    for n in range(orders):
        sheet.append([f"O-{n:06d}", f"{rng.choice(CUSTOMERS)}@example.com"])
    sheet = wb.create_sheet("Order lines")
    sheet.append(["Line ref", "Order ref", "SKU", "Quantity"])
    for k in range(lines):
        order = k % orders
        sheet.append(
            [f"O-{order:06d}/{k}", f"O-{order:06d}", f"P-{rng.randrange(products):06d}", 1]
        )
    wb.save(folder / "shop.xlsx")
    for name, text in MAPPINGS.items():
        (folder / name).write_text(text, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="a tenth of the shop, scaled shape")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    products, orders, lines = (1_000, 200, 2_000) if args.short else (10_000, 2_000, 20_000)
    shape = (
        Shape("scaled: 50 per 1 s, 100 ms", 50, 1.0, 0.1, 0)
        if args.short
        else Shape("real: 100 per 10 s, 250 ms", 100, 10.0, 0.25, 0)
    )
    with tempfile.TemporaryDirectory() as name, sandbox_for(shape) as url:
        folder = Path(name)
        make_shop(folder, products, orders, lines)
        options = RunOptions(
            token="pat-benchmark",
            base_url=url,
            state_dir=folder / "state",
        )
        start = time.perf_counter()
        first = run_plan(folder / "plan.yaml", options, out=folder / "first.xlsx")
        seconds = time.perf_counter() - start
        time.sleep(shape.window)  # the next night
        second = run_plan(folder / "plan.yaml", options, out=folder / "second.xlsx")

    writes = sum(math.ceil(n / 100) for n in (products, orders, lines))
    minimum = writes + math.ceil(len(CUSTOMERS) / 100)
    # Every request is counted where it is sent: by each step's client (its writes, links and
    # any lookups of its own) and by the plan's (the customers' lookup before the first write,
    # and its reads of the portal: account details, each object's properties and labels).
    step_requests = sum(s.summary.requests for s in first.steps)
    portal_reads = first.portal_reads
    sent = step_requests + first.lookup_requests + portal_reads
    bound = (math.ceil(sent / shape.limit) - 1) * shape.window + shape.latency
    header = (
        f"{'shape':28} {'products':>8} {'orders':>7} {'lines':>7} {'requests':>8} {'minimum':>7} "
        f"{'portal reads':>12} {'seconds':>8} {'bound s':>8} {'x bound':>7}"
    )
    print(f"429s: none is the target; the steps share one rate limiter\n{header}")
    print("-" * len(header))
    print(
        f"{shape.name:28} {products:>8,} {orders:>7,} {lines:>7,} {sent:>8} {minimum:>7} "
        f"{portal_reads:>12} {seconds:>8.2f} {bound:>8.2f} {seconds / bound:>7.3f}"
    )
    created = {s.name: s.summary.counts.get("created", 0) for s in first.steps}
    unchanged = sum(s.summary.counts.get("unchanged", 0) for s in second.steps)
    second_writes = sum(s.summary.requests for s in second.steps) + second.lookup_requests
    print(f"\nrun 1 created: {created}")
    print(
        f"run 2: {unchanged:,} of {products + orders + lines:,} rows unchanged, "
        f"{second_writes} request{'s' if second_writes != 1 else ''} besides "
        f"{second.portal_reads} portal reads (the customers' lookup; no write)"
    )
    failures = []
    if created != {"Products": products, "Orders": orders, "Order lines": lines}:
        failures.append(f"created {created}")
    if sent - portal_reads != minimum:
        failures.append(f"{sent - portal_reads} requests beyond the portal reads, not {minimum}")
    if unchanged != products + orders + lines:
        failures.append("the second run changed rows")
    # The steps run one after another: each loads and checks its sheet while nothing is sent.
    if not args.short and seconds > 1.15 * bound:
        failures.append(f"{seconds / bound:.3f}x the bound (target 1.15)")
    print("\n" + ("; ".join(failures) if failures else "every target met"))
    return 1 if failures and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
