"""Shared fixtures: a real sandbox on 127.0.0.1, file writers, CLI runner, workbook reader."""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from importer.cli import main
from importer.sandbox import Sandbox, SandboxConfig

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "pat-test-0000-secret"


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
    monkeypatch.delenv("HUBSPOT_BASE_URL", raising=False)
    # Journals go to the user's data directory by default: keep each test's apart.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., Sandbox]]:
    """Start sandboxes with a given config; all are stopped after the test.

    Numbered paths answer 404 unless a test asks for them, as after HubSpot's sunset: the
    suite proves the importer's default never touches them."""
    started: list[Sandbox] = []

    def start(**config: Any) -> Sandbox:
        box = Sandbox(SandboxConfig(**{"legacy_paths": False, **config})).start()
        started.append(box)
        return box

    yield start
    for box in started:
        box.stop()


@pytest.fixture
def sandbox(make_sandbox: Callable[..., Sandbox]) -> Sandbox:
    return make_sandbox()


def write_csv(
    path: Path, rows: Sequence[Sequence[str]], *, delimiter: str = ",", encoding: str = "utf-8"
) -> Path:
    with path.open("w", newline="", encoding=encoding) as fh:
        csv.writer(fh, delimiter=delimiter).writerows(rows)
    return path


def write_xlsx(
    path: Path,
    rows: Sequence[Sequence[Any]],
    *,
    sheet: str = "Sheet1",
    extra_sheets: Sequence[str] = (),
) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet
    for row in rows:
        ws.append(list(row))
    for name in extra_sheets:
        wb.create_sheet(name)
    wb.save(path)
    return path


def write_mapping(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


LOG_LINE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{4} [A-Z]+ ")


@dataclass
class CliRun:
    code: int
    out: str
    err: str

    @property
    def messages(self) -> list[str]:
        """Standard error without the timestamped log lines: what the user is told."""
        return [line for line in self.err.splitlines() if not LOG_LINE.match(line)]

    @property
    def message(self) -> str:
        return "\n".join(self.messages)


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliRun]:
    def invoke(*args: str | Path) -> CliRun:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliRun(code, captured.out, captured.err)

    return invoke


def read_sheet(path: Path, sheet: str = "Results") -> list[dict[str, Any]]:
    """A results sheet as dicts keyed by header, read back with openpyxl."""
    wb = openpyxl.load_workbook(path)
    rows = list(wb[sheet].iter_rows(values_only=True))
    header = [str(h) for h in rows[0]]
    return [dict(zip(header, r, strict=True)) for r in rows[1:]]


def creates(sandbox: Sandbox) -> list[dict[str, Any]]:
    """Bodies of the batch/create requests the sandbox received."""
    return [r.body for r in sandbox.received if r.path.endswith("/batch/create")]


SKU_NAME_PRICE = """\
object_type: products
key: SKU
columns:
  SKU: {property: hs_sku, required: true}
  Name: name
  Price: {property: price, type: number}
"""
"""The smallest products mapping most tests of a run's behaviour need."""
PRODUCTS_MAPPING = """\
object_type: products
key: SKU
columns:
  SKU: {property: hs_sku, required: true}
  Name: {property: name, required: true}
  Price: {property: price, type: number}
  Launched: {property: launch_date, type: date}
  In stock: {property: in_stock, type: bool}
"""

PRODUCT_ROWS: list[list[Any]] = [
    ["SKU", "Name", "Price", "Launched", "In stock"],
    ["00420", "Hoodie, grey", 45, dt.date(2026, 11, 23), True],
    ["00421", 'Mug "XL"', 12.5, dt.date(2025, 1, 2), False],
    ["00422", "Café crème", "12,50", "2026-02-30", "maybe"],
    ["00423", "Écharpe", 7, None, None],
]
