"""Hundreds of generated bad inputs through `check`: never a traceback, exit 0, 1 or 2 only, and
when a workbook is written, every row of the input in it exactly once.

The cases are seeded (HUBSPOT_IMPORT_FUZZ_SEED, HUBSPOT_IMPORT_FUZZ_CASES to run more), so a
failure is replayed by its id."""

from __future__ import annotations

import csv
import io
import os
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest

from importer.sandbox import Sandbox

from .conftest import CliRun, read_sheet, write_mapping

Runner = Callable[..., CliRun]
CASES = int(os.environ.get("HUBSPOT_IMPORT_FUZZ_CASES", "160"))
SEED = int(os.environ.get("HUBSPOT_IMPORT_FUZZ_SEED", "20261202"))
MAPPING = """\
object_type: products
key: SKU
columns:
  SKU: {property: hs_sku, required: true}
  Name: name
  Price: {property: price, type: number}
  Launched: {property: launch_date, type: date}
"""
HEADER = ["SKU", "Name", "Price", "Launched"]
ODD = ["", " ", "12,50", "1e3", "-0", "2026-02-30", "#N/A", "=SUM(A1)", "Zoë", "Łódź", "\t",
       "a\u200bb", "\u00a0", "x" * 300, "NULL", "TRUE", "00420", "😀", "\x07bell"]  # fmt: skip
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32", "cp1252"]


def _cell(rng: random.Random, n: int, column: int) -> str:
    if rng.random() < 0.3:
        return rng.choice(ODD)
    return [f"{n:05d}", f"Product {n}", f"{n}.5", f"2026-0{1 + n % 9}-1{n % 10}"][column]


def case(seed: int) -> tuple[str, bytes, int | None]:
    """A file: (suffix, bytes, data rows a person sees when that is certain, else None)."""
    rng = random.Random(seed)
    rows: list[list[str]] = []
    for n in range(rng.randint(1, 25)):
        cells = [_cell(rng, n, j) for j in range(4)]
        kind = rng.random()
        if kind < 0.15:
            cells += [rng.choice(["extra", "", "Smith"])] * rng.randint(1, 3)
        elif kind < 0.3:
            cells = cells[: rng.randint(1, 3)]
        rows.append(cells)
    if rng.random() < 0.25:  # an Excel workbook, error cells among them
        book = openpyxl.Workbook()
        sheet = book.active
        sheet.append(HEADER)
        for cells in rows:
            sheet.append([c.replace("\x07", "") for c in cells])
        for cell in sheet["C"][1:]:
            if rng.random() < 0.2:
                cell.value, cell.data_type = "#DIV/0!", "e"
        buffer = io.BytesIO()
        book.save(buffer)
        return ".xlsx", buffer.getvalue(), None
    delimiter = rng.choice([",", ";", "\t"])
    newline = rng.choice(["\n", "\r\n", "\r"])
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator=newline).writerows([HEADER, *rows])
    text = out.getvalue()
    quoted = False
    if rng.random() < 0.15:  # a stray quote somewhere
        at = rng.randrange(len(text))
        text, quoted = text[:at] + '"' + text[at:], True
    if rng.random() < 0.1:
        text = rng.choice(["\n", "Export of the catalogue\n"]) + text
        quoted = True  # a title line changes what the header is: no count to compare
    encoding = rng.choice(ENCODINGS)
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        data = text.encode("utf-8")
    seen = sum(1 for r in rows if any(c.strip() for c in r))
    return ".csv", data, None if quoted or '"' in "".join(map("".join, rows)) else seen


@pytest.fixture(scope="module")
def box() -> object:
    from importer.sandbox import SandboxConfig

    sandbox = Sandbox(SandboxConfig(legacy_paths=False)).start()
    yield sandbox
    sandbox.stop()


def test_generated_bad_inputs_never_crash_and_lose_no_row(
    run_cli: Runner, box: Sandbox, tmp_path: Path
) -> None:
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    codes: Counter[int] = Counter()
    counted = 0
    for n in range(CASES):
        suffix, data, rows = case(SEED + n)
        path = tmp_path / f"case{n}{suffix}"
        path.write_bytes(data)
        out = tmp_path / f"case{n}-out.xlsx"
        result = run_cli(
            "check", "-m", mapping, path, "--base-url", box.url, "--out", out,
            "--state-dir", tmp_path / "state",
        )  # fmt: skip
        codes[result.code] += 1
        where = f"case {SEED + n} ({suffix}): exit {result.code}\n{result.err}"
        assert result.code in (0, 1, 2), where
        assert "Traceback" not in result.err, where
        if result.code == 2:
            assert not out.exists(), where
            continue
        sheet = read_sheet(out)
        numbers = [r["source_row"] for r in sheet]
        assert len(numbers) == len(set(numbers)), where
        assert numbers == sorted(numbers), where
        if rows is not None:
            counted += 1
            assert len(sheet) == rows, where
    print(f"fuzz: {CASES} cases from seed {SEED}: exits {dict(sorted(codes.items()))}, "
          f"{counted} row counts compared")  # fmt: skip
    assert codes[0] + codes[1] > CASES // 3, codes  # most inputs are read, not refused
    assert counted > CASES // 4, counted
