"""Local speed: load, map, validate, build payloads and write the workbook, against the floor.

    python benchmarks/local.py            # 100k and 1M-row CSV, 100k-row XLSX
    python benchmarks/local.py --short    # 20k-row CSV and 5k-row XLSX (CI)

The floor is a bare pandas.read_csv (dtype=str) or calamine read of the same file. With pyarrow
installed (a dependency of this tool) pandas 3 builds Arrow strings for dtype=str, which makes
that read slower; beside it, for CSV files, are two other bare reads: read_csv with
dtype=object (pandas' C parser making Python strings, what read_csv costs without pyarrow) and
pyarrow.csv.read_csv (what the loader uses). The dry run is `hubspot-import run --dry-run`
without the portal check: everything but sending, the results workbook included. Each figure
comes from fresh processes (the best of three runs), so peak memory is its own.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MAPPING = """\
object_type: products
key: SKU
columns:
  SKU: {property: hs_sku, required: true}
  Name: name
  Description: description
  Price: {property: price, type: number}
  Unit cost: {property: hs_cost_of_goods_sold, type: number}
  Type: {property: hs_product_type, type: enumeration, options: [inventory, service]}
  Brand: brand
  Launch date: {property: launch_date, type: date}
  In stock: {property: in_stock, type: bool}
  Weight (kg): {property: weight_kg, type: number}
"""
HEADER = [
    "SKU",
    "Name",
    "Description",
    "Price",
    "Unit cost",
    "Type",
    "Brand",
    "Launch date",
    "In stock",
    "Weight (kg)",
]


def row(i: int, rng: random.Random) -> list[object]:
    return [
        f"{i:07d}",
        f"Product {i}",
        f'Cotton "relaxed" fit, size {i % 7}',
        f"{rng.uniform(1, 500):.2f}",
        f"{rng.uniform(1, 200):.2f}",
        rng.choice(["inventory", "service"]),
        rng.choice(["Nordlicht", "Café Olé", "Bergström"]),
        (dt.date(2024, 1, 1) + dt.timedelta(days=i % 900)).isoformat(),
        rng.choice(["yes", "no"]),
        f"{rng.uniform(0.1, 3):.3f}",
    ]


def make_csv(path: Path, n: int) -> None:
    rng = random.Random(n)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(row(i, rng) for i in range(n))


def make_xlsx(path: Path, n: int) -> None:
    from openpyxl import Workbook

    rng = random.Random(n)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Catalogue")
    ws.append(HEADER)
    for i in range(n):
        values = row(i, rng)
        values[3] = float(str(values[3]))  # numbers as numbers, as a person types them
        values[7] = dt.date.fromisoformat(str(values[7]))
        ws.append(values)
    wb.save(path)


def measure(what: str, path: str, folder: str) -> dict[str, float]:
    """One measurement in this process: seconds and peak resident memory. Libraries are
    imported before the clock starts: their import time is the same for every file size."""
    import pandas  # noqa: F401
    import python_calamine  # noqa: F401

    import importer.cli
    import importer.stages.run  # noqa: F401  (the CLI imports the stages when a run starts)
    from importer.core.text import use_system_allocator

    use_system_allocator()  # as the CLI does, for every figure (floors included)

    started = time.perf_counter()
    if what == "read_csv":
        import pandas as pd

        pd.read_csv(path, dtype=str, keep_default_na=False)
    elif what == "read_csv_object":
        import pandas as pd

        pd.read_csv(path, dtype=object, keep_default_na=False)
    elif what == "arrow_csv":
        from pyarrow import csv as pa_csv

        pa_csv.read_csv(path)
    elif what == "calamine":
        from python_calamine import CalamineWorkbook

        wb = CalamineWorkbook.from_path(path)
        wb.get_sheet_by_name(wb.sheet_names[0]).to_python()
    elif what == "load":
        from importer.sheets.load import load_table

        load_table(Path(path))
    elif what == "dry_run":
        from importer.cli import main

        mapping = Path(folder) / "mapping.yaml"
        mapping.write_text(MAPPING, encoding="utf-8")
        code = main(
            [
                "run",
                "--sandbox",
                "--dry-run",
                "--no-portal-check",
                "-m",
                str(mapping),
                path,
                "--out",
                str(Path(folder) / "dry.xlsx"),
                "--state-dir",
                str(Path(folder) / "state"),
            ]
        )
        if code != 0:
            raise SystemExit(f"dry run exited {code}")
    else:
        raise SystemExit(f"unknown measurement {what}")
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mb": peak}


def child(what: str, path: Path, folder: Path, repeat: int = 1) -> dict[str, float]:
    """The best time of `repeat` fresh processes (the least disturbed by the rest of the
    machine), and the highest peak memory."""
    runs = [_child(what, path, folder) for _ in range(repeat)]
    return {
        "seconds": min(r["seconds"] for r in runs),
        "peak_mb": max(r["peak_mb"] for r in runs),
    }


def _child(what: str, path: Path, folder: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", what, str(path), str(folder)],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{what} on {path.name} failed:\n{out.stderr[-2000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="small files only (CI)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="runs of each measurement, the best kept (default 3, 1 with --short)",
    )
    parser.add_argument(
        "--measure", nargs=3, metavar=("WHAT", "FILE", "FOLDER"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return 0
    repeat = args.repeat or (1 if args.short else 3)
    sizes = (
        [("csv", 20_000), ("xlsx", 5_000)]
        if args.short
        else [("csv", 100_000), ("csv", 1_000_000), ("xlsx", 100_000)]
    )
    print(
        f"{'file':20} {'floor s':>8} {'object s':>8} {'arrow s':>8} {'load s':>7} "
        f"{'load/floor':>10} {'dry run s':>9} {'dry/floor':>9} {'dry/object':>10} "
        f"{'rows/s':>8} {'peak MB':>7}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for kind, n in sizes:
            path = folder / f"catalogue-{n}.{kind}"
            (make_csv if kind == "csv" else make_xlsx)(path, n)
            csv_file = kind == "csv"
            floor = child("read_csv" if csv_file else "calamine", path, folder, repeat)
            plain = child("read_csv_object", path, folder, repeat) if csv_file else None
            arrow = child("arrow_csv", path, folder, repeat) if csv_file else None
            load = child("load", path, folder, repeat)
            dry = child("dry_run", path, folder, repeat)
            name = f"{n:,}-row {kind.upper()}"
            plain_s = f"{plain['seconds']:>8.2f}" if plain else f"{'-':>8}"
            arrow_s = f"{arrow['seconds']:>8.2f}" if arrow else f"{'-':>8}"
            dry_plain = f"{dry['seconds'] / plain['seconds']:>10.2f}" if plain else f"{'-':>10}"
            print(
                f"{name:20} {floor['seconds']:>8.2f} {plain_s} {arrow_s} {load['seconds']:>7.2f} "
                f"{load['seconds'] / floor['seconds']:>10.2f} {dry['seconds']:>9.2f} "
                f"{dry['seconds'] / floor['seconds']:>9.2f} {dry_plain} "
                f"{n / dry['seconds']:>8.0f} {dry['peak_mb']:>7.0f}"
            )
    print(
        "\ntargets: 1M-row CSV dry run <= 4x read_csv and <= 1.5 GB; 100k-row XLSX load "
        "<= 1.5x calamine\n(floor: read_csv dtype=str, Arrow strings with pyarrow installed; "
        "object: read_csv dtype=object; arrow: pyarrow.csv.read_csv)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
