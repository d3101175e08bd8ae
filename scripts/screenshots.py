"""Rebuild docs/workbook-summary.png, docs/workbook-results.png and docs/plan-summary.png
from real runs.

python scripts/screenshots.py      # needs LibreOffice (soffice) and poppler's pdftoppm

Imports the demo catalogue, with four cells spoiled as users spoil them, into a sandbox on
127.0.0.1, then prints the results workbook to PDF with LibreOffice and renders the first page
of the Summary and Results sheets to PNG.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import openpyxl

from importer import RunOptions, run_import, run_plan
from importer.sandbox import Sandbox, SandboxConfig

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SPOILED = {"D5": "12,50", "H9": "2026-02-30", "F12": "servce", "A15": "000013"}
"""Cell -> what a user typed: a decimal comma, a day that is not, a typo, a repeated SKU."""


def main() -> int:
    for tool in ("soffice", "pdftoppm"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (apt install libreoffice-calc-nogui poppler-utils)")
            return 2
    with tempfile.TemporaryDirectory() as folder, Sandbox(SandboxConfig()) as box:
        tmp = Path(folder)
        book = openpyxl.load_workbook(ROOT / "data" / "products.xlsx")
        sheet = book.active
        for cell, value in SPOILED.items():
            sheet[cell] = value
        data = tmp / "catalogue.xlsx"
        book.save(data)
        out = tmp / "results.xlsx"
        run_import(
            RunOptions(
                input_file=data,
                mapping_file=ROOT / "mappings" / "products.yaml",
                token="pat-screenshots",
                base_url=box.url,
                state_dir=tmp / "state",
                out=out,
            )
        )
        subprocess.run(
            ["soffice", "--headless", "--convert-to", "pdf", "--outdir", str(tmp), str(out)],
            check=True,
            capture_output=True,
            timeout=300,
        )
        pdf = tmp / "results.pdf"
        # Page 1 is the Summary sheet, page 2 the first of Results (15 columns on one page
        # wide: rendered larger, and its top left kept). Crops are in pixels at that scale.
        shots = (
            (1, "workbook-summary", 100, (60, 90, 980, 500)),
            (2, "workbook-results", 240, (170, 235, 1500, 560)),
        )
        for page, name, dpi, (x, y, w, h) in shots:
            subprocess.run(
                ["pdftoppm", "-png", "-r", str(dpi), "-f", str(page), "-l", str(page),
                 "-x", str(x), "-y", str(y), "-W", str(w), "-H", str(h),
                 "-singlefile", str(pdf), str(tmp / name)],
                check=True,
                timeout=120,
            )  # fmt: skip
            shutil.copy(tmp / f"{name}.png", DOCS / f"{name}.png")
            print(f"wrote {DOCS / f'{name}.png'}")
        # The shipped shop plan: its Summary sheet, a line per step.
        plan_out = tmp / "shop-results.xlsx"
        run_plan(
            ROOT / "mappings" / "shop" / "plan.yaml",
            RunOptions(
                token="pat-screenshots",
                base_url=box.url,
                state_dir=tmp / "state",
            ),
            out=plan_out,
        )
        subprocess.run(
            ["soffice", "--headless", "--convert-to", "pdf", "--outdir", str(tmp), str(plan_out)],
            check=True,
            capture_output=True,
            timeout=300,
        )
        subprocess.run(
            ["pdftoppm", "-png", "-r", "200", "-f", "1", "-l", "1", "-x", "130", "-y", "190",
             "-W", "1950", "-H", "330", "-singlefile", str(tmp / "shop-results.pdf"),
             str(tmp / "plan-summary")],
            check=True,
            timeout=120,
        )  # fmt: skip
        shutil.copy(tmp / "plan-summary.png", DOCS / "plan-summary.png")
        print(f"wrote {DOCS / 'plan-summary.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
