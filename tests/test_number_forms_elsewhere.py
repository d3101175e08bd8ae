"""HubSpot answers a number as the number it holds (`9.5` for the `9.50` sent, `1` for a key
`001`): the answers of keyless rows and the keys of `missing_rows:` must compare numbers so."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from importer.sandbox import Sandbox
from importer.sandbox.portal import PropertyDef

from .conftest import CliRun, read_sheet, write_csv, write_mapping

Runner = Callable[..., CliRun]


def run(run_cli: Runner, box: Sandbox, tmp_path: Path, mapping: str, rows: list[list[str]],
        out: str) -> CliRun:  # fmt: skip
    return run_cli(
        "run", "-m", write_mapping(tmp_path / "m.yaml", mapping),
        write_csv(tmp_path / f"{out}.csv", rows), "--base-url", box.url,
        "--state-dir", tmp_path / "state", "--out", tmp_path / f"{out}.xlsx",
    )  # fmt: skip


def test_keyless_rows_with_trailing_zeros_match_their_answers_without_trace_ids(
    run_cli: Runner, make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    box = make_sandbox(echo_trace_ids=False)  # answers are matched by the values sent
    mapping = "object_type: products\ncolumns:\n  Name: name\n  Price: price\n"
    rows = [["Name", "Price"], ["Mug", "7.50"], ["Cup", "8.10"]]
    result = run(run_cli, box, tmp_path, mapping, rows, "1")
    assert result.out.startswith("products: 2 rows: 2 created."), result.err
    held = {r["properties"]["name"]: r["id"] for r in box.records("products")}
    assert {r["Name"]: r["hubspot_id"] for r in read_sheet(tmp_path / "1.xlsx")} == held


def test_an_invalid_row_keeps_the_record_of_its_padded_number_key_from_missing_rows(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.portal.add_property(
        "products", PropertyDef(name="code", label="Code", type="number", unique=True)
    )
    mapping = (
        "object_type: products\nkey: Code\ncolumns:\n  Code: code\n  Name: name\n"
        "  Price: price\nmissing_rows: archive\n"
    )
    rows = [["Code", "Name", "Price"]] + [[f"{i:03d}", f"P{i}", "1"] for i in range(1, 21)]
    assert run(run_cli, sandbox, tmp_path, mapping, rows, "1").code == 0
    rows[1][2] = "not a price"  # row 001 is invalid tonight: its key is still in the feed
    second = run(run_cli, sandbox, tmp_path, mapping, rows, "2")
    assert second.out.startswith("products: 20 rows: 19 unchanged, 1 invalid."), second.err
    held = sorted(int(r["properties"]["code"]) for r in sandbox.records("products"))
    assert held == list(range(1, 21))
