"""An update sends what changed and says so; an emptied cell changes nothing unless its column
asks to clear HubSpot's value (`clear_empty: true`)."""

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
  SKU: hs_sku
  Name: name
  Price: {property: price, type: number}
  Brand: brand
"""


def nightly(run_cli: Runner, box: Sandbox, tmp_path: Path, mapping: str,
            rows: list[list[str]], out: str) -> CliRun:  # fmt: skip
    data = write_csv(tmp_path / f"{out}.csv", [["SKU", "Name", "Price", "Brand"], *rows])
    return run_cli(
        "run", "-m", write_mapping(tmp_path / "m.yaml", mapping), data, "--base-url", box.url,
        "--state-dir", tmp_path / "state", "--out", tmp_path / f"{out}.xlsx",
    )  # fmt: skip


def updates(box: Sandbox) -> list[dict[str, Any]]:
    return [i for r in box.received if r.path.endswith("/batch/update") for i in r.body["inputs"]]


def held(box: Sandbox) -> dict[str, Any]:
    (record,) = box.records("products")
    return dict(record["properties"])


def test_an_update_sends_only_what_changed_and_says_so(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    nightly(run_cli, sandbox, tmp_path, MAPPING, [["A1", "Alpha", "10", "Acme"]], "1")
    second = nightly(run_cli, sandbox, tmp_path, MAPPING, [["A1", "Alpha", "12", "Acme"]], "2")
    assert second.out.startswith("products: 1 rows: 1 updated."), second.err
    (sent,) = updates(sandbox)
    assert sent["properties"] == {"price": "12"}
    (row,) = read_sheet(tmp_path / "2.xlsx")
    assert row["message"] == "changed: price"


def test_an_emptied_cell_alone_changes_nothing(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    nightly(run_cli, sandbox, tmp_path, MAPPING, [["A1", "Alpha", "10", "Acme"]], "1")
    second = nightly(run_cli, sandbox, tmp_path, MAPPING, [["A1", "Alpha", "10", ""]], "2")
    assert second.out.startswith("products: 1 rows: 1 unchanged."), second.err
    assert updates(sandbox) == []
    (row,) = read_sheet(tmp_path / "2.xlsx")
    assert row["message"] == (
        "emptied cells leave HubSpot's values as they are: brand (clear_empty: true clears them)"
    )
    assert held(sandbox)["brand"] == "Acme"
    # With another change, the emptied cell is still left alone, and the message says both.
    nightly(run_cli, sandbox, tmp_path, MAPPING, [["A1", "Alpha", "11", ""]], "3")
    (sent,) = updates(sandbox)
    assert sent["properties"] == {"price": "11"}
    (row,) = read_sheet(tmp_path / "3.xlsx")
    assert row["message"].startswith("changed: price; emptied cells leave HubSpot's values")


@pytest.mark.parametrize(
    "mapping",
    [
        MAPPING.replace("Brand: brand", "Brand: {property: brand, clear_empty: true}"),
        "clear_empty: true\n" + MAPPING,
    ],
    ids=["column", "mapping-wide"],
)
def test_clear_empty_clears_hubspots_value(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, mapping: str
) -> None:
    nightly(run_cli, sandbox, tmp_path, mapping, [["A1", "Alpha", "10", "Acme"]], "1")
    second = nightly(run_cli, sandbox, tmp_path, mapping, [["A1", "Alpha", "10", ""]], "2")
    assert second.out.startswith("products: 1 rows: 1 updated."), second.err
    (sent,) = updates(sandbox)
    assert sent["properties"] == {"brand": ""}
    assert held(sandbox)["brand"] == ""
    (row,) = read_sheet(tmp_path / "2.xlsx")
    assert row["message"] == "cleared: brand"
    third = nightly(run_cli, sandbox, tmp_path, mapping, [["A1", "Alpha", "10", ""]], "3")
    assert third.out.startswith("products: 1 rows: 1 unchanged."), third.err
