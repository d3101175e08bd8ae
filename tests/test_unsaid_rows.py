"""A 2xx answer is not proof of anything it does not say: created rows an answer neither lists
nor refuses are looked up by key before anything is reported (never taken as failed, which
would create them twice; never taken as created without HubSpot's word)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from importer.sandbox import Fault, Sandbox

from .conftest import CliRun, read_sheet, write_csv, write_mapping

Runner = Callable[..., CliRun]

MAPPING = """\
object_type: products
key: SKU
columns:
  SKU: {property: hs_sku, required: true}
  Name: {property: name, required: true}
"""
ROWS = [["SKU", "Name"], *[[f"S-{n:03d}", f"Product {n}"] for n in range(12)]]

EMPTY_ANSWER: dict[str, Any] = {
    "status": "COMPLETE",
    "results": [],
    "startedAt": "2026-12-06T02:00:00.000Z",
    "completedAt": "2026-12-06T02:00:01.000Z",
}


def run(run_cli: Runner, box: Sandbox, tmp: Path, mapping: str = MAPPING) -> CliRun:
    data = write_csv(tmp / "p.csv", ROWS)
    return run_cli(
        "run", "-m", write_mapping(tmp / "m.yaml", mapping), data, "--base-url", box.url,
        "--state-dir", tmp / "state", "--out", tmp / "out.xlsx",
    )  # fmt: skip


def by_sku(box: Sandbox) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for record in box.records("products"):
        found.setdefault(record["properties"]["hs_sku"], []).append(record["id"])
    return found


def test_rows_a_2xx_left_unsaid_but_created_are_found_not_created_twice(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    # HubSpot carried the batch out, then answered 200 listing nothing.
    sandbox.inject(Fault(status=200, body=EMPTY_ANSWER, after=True, path="products/batch/create"))
    first = run(run_cli, sandbox, tmp_path)
    assert first.code == 0, first.err
    held = by_sku(sandbox)
    assert all(len(ids) == 1 for ids in held.values())
    assert len(held) == 12
    rows = {r["SKU"]: r for r in read_sheet(tmp_path / "out.xlsx")}
    for sku, ids in held.items():
        assert rows[sku]["status"] == "created"
        assert rows[sku]["hubspot_id"] == ids[0]
        assert "confirmed by looking it up" in str(rows[sku]["message"])
    again = run(run_cli, sandbox, tmp_path)
    assert again.code == 0
    assert by_sku(sandbox) == held
    assert {r["status"] for r in read_sheet(tmp_path / "out.xlsx")} == {"unchanged"}


def test_rows_a_2xx_left_unsaid_and_not_created_are_sent_once_more(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    # Not carried out, yet answered 200 COMPLETE listing nothing.
    sandbox.inject(Fault(status=200, body=EMPTY_ANSWER, path="products/batch/create"))
    first = run(run_cli, sandbox, tmp_path)
    assert first.code == 0, first.err
    held = by_sku(sandbox)
    assert len(held) == 12
    assert all(len(ids) == 1 for ids in held.values())
    creates = [r for r in sandbox.received if r.path.endswith("products/batch/create")]
    assert len(creates) == 2


def test_rows_left_unsaid_twice_fail_and_the_next_run_creates_them_once(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    sandbox.inject(Fault(status=200, body=EMPTY_ANSWER, path="products/batch/create", times=2))
    first = run(run_cli, sandbox, tmp_path)
    assert first.code == 1
    rows = read_sheet(tmp_path / "out.xlsx")
    assert {r["status"] for r in rows} == {"failed"}
    assert "twice" in str(rows[0]["message"])
    assert by_sku(sandbox) == {}
    second = run(run_cli, sandbox, tmp_path)
    assert second.code == 0, second.err
    assert len(by_sku(sandbox)) == 12


def test_without_a_key_rows_left_unsaid_are_uncertain_not_sent_again(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    keyless = "object_type: products\ncolumns:\n  SKU: hs_sku\n  Name: name\n"
    sandbox.inject(Fault(status=200, body=EMPTY_ANSWER, after=True, path="products/batch/create"))
    first = run(run_cli, sandbox, tmp_path, keyless)
    assert first.code == 1
    rows = read_sheet(tmp_path / "out.xlsx")
    assert {r["status"] for r in rows} == {"uncertain"}
    assert "--forget-uncertain" in str(rows[0]["message"])
    second = run(run_cli, sandbox, tmp_path, keyless)
    assert all(len(ids) == 1 for ids in by_sku(sandbox).values())  # nothing created twice
    assert second.code == 1


def test_an_upsert_error_naming_its_input_by_key_keeps_hubspots_message(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    # An upsert's inputs are addressed by the key: HubSpot may name a refused one by it
    # (`context.ids`) rather than by its trace id.
    refused = {
        **EMPTY_ANSWER,
        "numErrors": 1,
        "errors": [
            {
                "status": "error",
                "category": "VALIDATION_ERROR",
                "message": "Property values were not valid: name breaks the portal's rule",
                "context": {"propertyName": ["name"], "ids": ["S-002"]},
            }
        ],
    }
    sandbox.inject(Fault(status=207, body=refused, path="products/batch/upsert"))
    result = run(run_cli, sandbox, tmp_path, MAPPING + "mode: upsert\n")
    assert result.code == 1
    rows = {r["SKU"]: r for r in read_sheet(tmp_path / "out.xlsx")}
    assert rows["S-002"]["status"] == "failed"
    assert "name breaks the portal's rule" in str(rows["S-002"]["message"])
    again = run(run_cli, sandbox, tmp_path, MAPPING + "mode: upsert\n")
    assert again.code == 0, again.err
    assert len(by_sku(sandbox)) == 12
