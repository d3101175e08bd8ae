"""From API version 2026-09 HubSpot enforces a portal's validation rules on API writes: a value
that breaks one is refused for its input only, so that row fails with the rule named and the
rest of its batch is written; 2026-03 and the numbered paths do not enforce them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from importer.sandbox import Sandbox

from .conftest import CliRun, read_sheet, write_csv, write_mapping

Runner = Callable[..., CliRun]

MAPPING = """\
object_type: products
key: SKU
columns:
  SKU: {property: hs_sku, required: true}
  Name: {property: name, required: true}
  Price: {property: price, type: number}
  Type: hs_product_type
  Description: description
"""
RULES: dict[str, Any] = {
    "products": {
        "hs_sku": [{"ruleType": "ALPHANUMERIC", "ruleArguments": ["NUMERIC_ONLY"]}],
        "price": [{"ruleType": "MAX_NUMBER", "ruleArguments": ["100"]}],
    }
}
REQUIRED_WHEN = {"products": {"description": ("hs_product_type", "service")}}
ROWS = [
    ["SKU", "Name", "Price", "Type", "Description"],
    ["0001", "Mug", "12", "inventory", ""],
    ["AB-2", "Hoodie", "45", "inventory", ""],  # not numbers only
    ["0003", "Sofa", "250", "inventory", ""],  # over the maximum price
    ["0004", "Setup", "80", "service", ""],  # a service needs a description
    ["0005", "Repair", "60", "service", "On site"],
]


def run(run_cli: Runner, box: Sandbox, tmp: Path, rows: list[list[str]], *extra: str) -> CliRun:
    return run_cli(
        "run", "-m", write_mapping(tmp / "m.yaml", MAPPING), write_csv(tmp / "p.csv", rows),
        "--base-url", box.url, "--state-dir", tmp / "state", "--out", tmp / "out.xlsx", *extra,
    )  # fmt: skip


def test_a_value_breaking_a_validation_rule_fails_its_row_only(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path, run_cli: Runner
) -> None:
    box = make_sandbox(validation_rules=RULES, required_when=REQUIRED_WHEN)
    first = run(run_cli, box, tmp_path, ROWS)
    assert first.code == 1
    assert first.out.startswith("products: 5 rows: 2 created, 3 failed."), first.out
    rows = {r["SKU"]: r for r in read_sheet(tmp_path / "out.xlsx")}
    assert rows["0001"]["status"] == rows["0005"]["status"] == "created"
    assert "validation rule ALPHANUMERIC for hs_sku" in str(rows["AB-2"]["message"])
    assert "validation rule MAX_NUMBER for price: 250 must be at most 100" in str(
        rows["0003"]["message"]
    )
    assert "description is required when hs_product_type is 'service'" in str(
        rows["0004"]["message"]
    )
    assert {r["properties"]["hs_sku"] for r in box.records("products")} == {"0001", "0005"}

    fixed = [row[:] for row in ROWS]
    fixed[2][0], fixed[3][2], fixed[4][4] = "0002", "99", "Two hours"
    second = run(run_cli, box, tmp_path, fixed)
    assert second.code == 0, second.err
    assert second.out.startswith("products: 5 rows: 3 created, 2 unchanged."), second.out
    assert len(box.records("products")) == 5


@pytest.mark.parametrize("version", ["2026-03", "legacy"])
def test_earlier_versions_do_not_enforce_validation_rules(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path, run_cli: Runner, version: str
) -> None:
    box = make_sandbox(validation_rules=RULES, required_when=REQUIRED_WHEN, legacy_paths=True)
    result = run(run_cli, box, tmp_path, ROWS, "--api-version", version)
    assert result.code == 0, result.err
    assert len(box.records("products")) == 5
