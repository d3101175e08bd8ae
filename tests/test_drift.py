"""Records deleted, merged or edited in HubSpot, and records HubSpot had before the journal:
the journal follows what exists instead of repeating a failure every night."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

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
"""


def nightly(run_cli: Runner, box: Sandbox, tmp_path: Path, rows: list[list[str]], out: str,
            *extra: str) -> CliRun:  # fmt: skip
    data = write_csv(tmp_path / f"{out}.csv", [["SKU", "Name", "Price"], *rows])
    return run_cli(
        "run", "-m", write_mapping(tmp_path / "m.yaml", MAPPING), data, "--base-url", box.url,
        "--state-dir", tmp_path / "state", "--out", tmp_path / f"{out}.xlsx", *extra,
    )  # fmt: skip


ROWS = [["A1", "Alpha", "1"], ["B2", "Beta", "2"], ["C3", "Gamma", "3"]]


def ids(box: Sandbox) -> dict[str, str]:
    return {r["properties"]["hs_sku"]: r["id"] for r in box.records("products")}


def test_a_record_deleted_in_hubspot_is_created_again_when_its_row_changes(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    assert nightly(run_cli, sandbox, tmp_path, ROWS, "1").code == 0
    dead = ids(sandbox)["B2"]
    sandbox.store.archive("products", [dead])  # someone deleted it in HubSpot
    changed = [ROWS[0], ["B2", "Beta", "20"], ROWS[2]]
    second = nightly(run_cli, sandbox, tmp_path, changed, "2")
    assert second.code == 0, second.err
    row = {r["SKU"]: r for r in read_sheet(tmp_path / "2.xlsx")}["B2"]
    assert row["status"] == "created"
    assert row["hubspot_id"] == ids(sandbox)["B2"] != dead
    assert row["message"].startswith(f"created again: record {dead}")
    third = nightly(run_cli, sandbox, tmp_path, changed, "3")
    assert third.out.startswith("products: 3 rows: 3 unchanged."), third.err


def test_update_mode_says_the_record_is_gone_and_forgets_it(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    nightly(run_cli, sandbox, tmp_path, ROWS, "1")
    dead = ids(sandbox)["C3"]
    sandbox.store.archive("products", [dead])
    changed = [*ROWS[:2], ["C3", "Gamma", "30"]]
    second = nightly(run_cli, sandbox, tmp_path, changed, "2", "--mode", "update")
    assert second.code == 1
    row = {r["SKU"]: r for r in read_sheet(tmp_path / "2.xlsx")}["C3"]
    assert row["status"] == "failed"
    assert f"record {dead} is no longer in HubSpot (deleted or merged)" in row["message"]
    # Forgotten: the next run (create mode) creates it, instead of failing every night.
    third = nightly(run_cli, sandbox, tmp_path, changed, "3")
    assert third.code == 0, third.err
    assert "C3" in ids(sandbox)


def test_a_record_that_already_holds_the_key_is_adopted(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    # A colleague created B2 by hand before the first import: HubSpot answers CONFLICT.
    (theirs,) = sandbox.store.create_many("products", [({"hs_sku": "B2", "name": "by hand"}, [])])
    first = nightly(run_cli, sandbox, tmp_path, ROWS, "1")
    assert first.code == 0, first.err
    row = {r["SKU"]: r for r in read_sheet(tmp_path / "1.xlsx")}["B2"]
    assert (row["status"], row["hubspot_id"]) == ("updated", theirs["id"])
    assert f"HubSpot already held a record with hs_sku 'B2' (id {theirs['id']})" in row["message"]
    assert len(sandbox.records("products")) == 3
    assert sandbox.store.get("products", theirs["id"])["properties"]["name"] == "Beta"
    again = nightly(run_cli, sandbox, tmp_path, ROWS, "2")
    assert again.out.startswith("products: 3 rows: 3 unchanged."), again.err


def test_verify_recreates_deleted_follows_merged_and_restores_edited_records(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    assert nightly(run_cli, sandbox, tmp_path, ROWS, "1").code == 0
    first = ids(sandbox)
    sandbox.store.archive("products", [first["A1"]])  # deleted by someone
    (dup,) = sandbox.store.create_many("products", [({"name": "Beta (by hand)"}, [])])
    sandbox.merge("products", first["B2"], dup["id"])  # ours merged into a colleague's
    sandbox.store.update("products", first["C3"], {"price": "99"})  # edited in HubSpot
    before = len(sandbox.received)

    checked = run_cli(
        "check", "-m", tmp_path / "m.yaml", tmp_path / "1.csv", "--base-url", sandbox.url,
        "--state-dir", tmp_path / "state", "--verify", "--out", tmp_path / "check.xlsx",
    )  # fmt: skip
    plan = {r["SKU"]: r for r in read_sheet(tmp_path / "check.xlsx")}
    assert plan["A1"]["status"] == "would_create"
    assert plan["B2"]["status"] == "would_update"
    assert plan["C3"]["status"] == "would_update"
    assert "price had been changed in HubSpot" in plan["C3"]["message"]
    assert checked.code == 0
    sent = [r.path for r in sandbox.received[before:]]
    assert not [p for p in sent if p.endswith(("/create", "/update", "/upsert", "/archive"))]

    result = nightly(run_cli, sandbox, tmp_path, ROWS, "2", "--verify")
    assert result.code == 0, result.err
    rows = {r["SKU"]: r for r in read_sheet(tmp_path / "2.xlsx")}
    assert rows["A1"]["status"] == "created"
    assert (
        rows["A1"]["message"] == f"record {first['A1']} had been deleted in HubSpot; created again"
    )
    assert (rows["B2"]["status"], rows["B2"]["hubspot_id"]) == ("updated", dup["id"])
    assert f"record {first['B2']} had been merged into {dup['id']}" in rows["B2"]["message"]
    assert (rows["C3"]["status"], rows["C3"]["hubspot_id"]) == ("updated", first["C3"])
    assert (
        "set back to the sheet's values: price had been changed in HubSpot"
        in (rows["C3"]["message"])
    )
    held = {r["properties"]["hs_sku"]: r["properties"] for r in sandbox.records("products")}
    assert held["C3"]["price"] == "3"
    assert held["B2"]["name"] == "Beta"
    assert len(sandbox.records("products")) == 3
    again = nightly(run_cli, sandbox, tmp_path, ROWS, "3", "--verify")
    assert again.out.startswith("products: 3 rows: 3 unchanged."), again.err
