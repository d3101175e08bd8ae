"""`undo`'s rules: it archives only the records a run proved it created, never those it
updated; it reads each one back first and leaves (lists) those someone changed since, unless
--force; and it never archives the survivor of a merge in place of a record the run made."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from importer.sandbox import Fault, Sandbox
from importer.sandbox.sources import RecordSource

from .conftest import CliRun, read_sheet, write_csv, write_mapping

Runner = Callable[..., CliRun]

PRODUCTS = """\
object_type: products
key: SKU
columns:
  SKU: hs_sku
  Name: name
  Price: price
"""


def catalogue(tmp: Path, rows: list[tuple[str, str, str]], name: str = "catalogue") -> Path:
    return write_csv(tmp / f"{name}.csv", [["SKU", "Name", "Price"], *map(list, rows)])


def run(run_cli: Runner, box: Sandbox, tmp: Path, data: Path) -> str:
    """Import `data` with PRODUCTS; the run's id."""
    mapping = write_mapping(tmp / "m.yaml", PRODUCTS)
    done = run_cli("run", "-m", mapping, data, "--base-url", box.url, "--state-dir",
                   tmp / "state", "--out", tmp / f"{data.stem}-out.xlsx")  # fmt: skip
    assert done.code == 0, done.message
    listed = run_cli("runs", "--state-dir", tmp / "state")
    return listed.out.split()[0]


def undo(run_cli: Runner, box: Sandbox, tmp: Path, run_id: str, *extra: str) -> CliRun:
    done = run_cli("undo", run_id, "--state-dir", tmp / "state", "--yes", "--base-url", box.url,
                   *extra)  # fmt: skip
    assert done.code == 0, done.err
    return done


def live(box: Sandbox) -> dict[str, dict[str, Any]]:
    """Live products by SKU."""
    return {r["properties"]["hs_sku"]: r for r in box.records("products")}


THREE = [("A-1", "Mug", "1.5"), ("B-2", "Cap", "2.5"), ("C-3", "Hat", "3.5")]


def test_undo_keeps_a_record_edited_by_hand_since_the_run_and_force_archives_it(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    run_id = run(run_cli, sandbox, tmp_path, catalogue(tmp_path, THREE))
    edited = live(sandbox)["B-2"]["id"]
    sandbox.store.update("products", edited, {"price": "9"})  # a person, in HubSpot

    said = undo(run_cli, sandbox, tmp_path, run_id)
    assert list(live(sandbox)) == ["B-2"]
    assert f"Archived 2 products created by run {run_id}." in said.out
    assert (
        "Kept 1 products the run created that were changed in HubSpot since (not archived; "
        f"`hubspot-import undo {run_id} --force` archives them too):\n"
        f"  {edited}: its price is '9', not '2.5' as this tool wrote it\n"
    ) in said.out
    shown = run_cli("show", run_id, "--state-dir", tmp_path / "state")
    assert "part way: 2 archived, 1 left" in shown.out

    forced = undo(run_cli, sandbox, tmp_path, run_id, "--force")
    assert live(sandbox) == {}
    assert f"Archived 1 products created by run {run_id}." in forced.out
    assert f"were changed in HubSpot since the run (--force): {edited}." in forced.out
    again = run_cli("undo", run_id, "--state-dir", tmp_path / "state", "--yes")
    assert f"Run {run_id} was already undone" in again.out


ALLOWANCE = 0.3
"""Seconds HubSpot's clock may differ from ours: the sandbox shares this machine's clock."""


@pytest.fixture
def same_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Undo allows ALLOWANCE for the clocks, so that a change a second later shows."""
    monkeypatch.setattr("importer.history.edited.CLOCK_ALLOWANCE", ALLOWANCE)


@pytest.mark.usefixtures("same_clock")
def test_undo_keeps_a_record_whose_unsent_property_someone_changed_after_the_run(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    # The values the run wrote are intact; HubSpot's last-modified time tells of the change.
    run_id = run(run_cli, sandbox, tmp_path, catalogue(tmp_path, THREE))
    time.sleep(3 * ALLOWANCE)
    edited = live(sandbox)["A-1"]["id"]
    sandbox.store.update("products", edited, {"description": "typed by hand"})
    said = undo(run_cli, sandbox, tmp_path, run_id)
    assert list(live(sandbox)) == ["A-1"]
    assert f"  {edited}: it was changed at " in said.out
    assert "after this tool last wrote it" in said.out


@pytest.mark.usefixtures("same_clock")
def test_undo_archives_records_a_later_run_of_the_same_mapping_changed(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    # What this tool wrote since is not someone else's change.
    first = run(run_cli, sandbox, tmp_path, catalogue(tmp_path, THREE))
    time.sleep(3 * ALLOWANCE)
    repriced = [(sku, name, "7") for sku, name, _ in THREE]
    run(run_cli, sandbox, tmp_path, catalogue(tmp_path, repriced, "repriced"))
    said = undo(run_cli, sandbox, tmp_path, first)
    assert live(sandbox) == {}
    assert "Kept" not in said.out


def test_undo_never_archives_records_the_run_updated(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    (hand,) = sandbox.store.create_many(
        "products", [({"hs_sku": "A-1", "name": "typed"}, [])], RecordSource.by_hand()
    )
    first = run(run_cli, sandbox, tmp_path, catalogue(tmp_path, THREE[1:2], "one"))
    second = run(run_cli, sandbox, tmp_path, catalogue(tmp_path, THREE))
    said = undo(run_cli, sandbox, tmp_path, second)
    # A-1 was there before (made by hand) and B-2 came from the first run: both updated.
    assert sorted(live(sandbox)) == ["A-1", "B-2"]
    assert live(sandbox)["A-1"]["id"] == hand["id"]
    assert f"Archived 1 products created by run {second}." in said.out
    assert "Updated records are left as they are" in said.out
    assert first != second


def test_undo_never_archives_the_survivor_of_a_merge_in_place_of_a_record_it_made(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    run_id = run(run_cli, sandbox, tmp_path, catalogue(tmp_path, THREE[:1]))
    made = live(sandbox)["A-1"]["id"]
    (hand,) = sandbox.store.create_many(
        "products", [({"hs_sku": "Z-9", "name": "kept by hand"}, [])], RecordSource.by_hand()
    )
    sandbox.store.merge("products", made, hand["id"])
    said = undo(run_cli, sandbox, tmp_path, run_id)
    assert [r["id"] for r in sandbox.records("products")] == [hand["id"]]
    assert "Archived 0 products" in said.out
    assert (
        "1 products the run created are no longer in HubSpot (deleted, archived or merged into "
        f"another record): nothing was archived in their place: {made}."
    ) in said.out


def test_undo_keeps_a_record_it_made_that_another_was_merged_into_since(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    # A colleague's record merged into the run's: archiving it would lose theirs too, even
    # after a later run wrote the record again (which hides the merge from its modified date).
    run_id = run(run_cli, sandbox, tmp_path, catalogue(tmp_path, THREE[:1]))
    made = live(sandbox)["A-1"]["id"]
    (hand,) = sandbox.store.create_many(
        "products", [({"hs_sku": "Z-9", "name": "kept by hand"}, [])], RecordSource.by_hand()
    )
    sandbox.store.merge("products", hand["id"], made)
    run(run_cli, sandbox, tmp_path, catalogue(tmp_path, [("A-1", "Mug", "9.5")], "later"))
    said = undo(run_cli, sandbox, tmp_path, run_id)
    assert [r["id"] for r in sandbox.records("products")] == [made]
    assert f"{made}: HubSpot merged record {hand['id']} into it since the run" in said.out


# --- the workbook rebuilt from the journal ---------------------------------------------------


def rows_of(path: Path) -> list[tuple[Any, ...]]:
    """A workbook's Results rows: sheet row, status and id."""
    return [(r["source_row"], r["status"], r["hubspot_id"]) for r in read_sheet(path)]


def test_a_rebuilt_workbook_says_failed_where_the_run_said_failed_for_a_batch_refused_whole(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    # The first batch is refused whole (400, naming no row): split, and its halves refused
    # too, each row fails; the second batch is created.
    refusal = {"status": "error", "message": "Property values were not valid",
               "category": "VALIDATION_ERROR"}  # fmt: skip
    sandbox.inject(Fault(status=400, body=refusal, path="/batch/create", times=3))
    mapping = write_mapping(tmp_path / "m.yaml", PRODUCTS)
    data = catalogue(tmp_path, [*THREE, ("D-4", "Bag", "4.5")])
    done = run_cli("run", "-m", mapping, data, "--base-url", sandbox.url, "--state-dir",
                   tmp_path / "state", "--out", tmp_path / "own.xlsx", "--batch-size", "2",
                   "--concurrency", "1")  # fmt: skip
    assert done.code == 1
    own = rows_of(tmp_path / "own.xlsx")
    assert sorted(status for _, status, _ in own) == ["created", "created", "failed", "failed"]
    run_id = run_cli("runs", "--state-dir", tmp_path / "state").out.split()[0]
    # The run is killed before its results are kept: the workbook comes from its batches.
    for journal in (tmp_path / "state").glob("*.sqlite"):
        with sqlite3.connect(journal) as db:
            db.execute("DELETE FROM run_data WHERE part = 'outcome'")
    shown = run_cli("show", run_id, "--state-dir", tmp_path / "state", "--out",
                    tmp_path / "rebuilt.xlsx")  # fmt: skip
    assert shown.code == 0, shown.err
    assert rows_of(tmp_path / "rebuilt.xlsx") == own


# --- the advice for uncertain rows ------------------------------------------------------------


def test_the_advice_for_uncertain_rows_names_a_flag_that_exists_and_what_works(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    # This app made a "Mug" a moment before; the run's create of another is answered by a
    # dropped connection: two records hold the key, and the row is uncertain.
    sandbox.store.create_many("products", [({"name": "Mug", "price": "5"}, [])])
    sandbox.inject(Fault(drop=True, after=True, path="/batch/create"))
    mapping = write_mapping(tmp_path / "m.yaml", PRODUCTS.replace("key: SKU", "key: Name"))
    data = write_csv(tmp_path / "mugs.csv", [["SKU", "Name", "Price"], ["", "Mug", "5"]])
    args = ("run", "-m", mapping, data, "--base-url", sandbox.url, "--state-dir",
            tmp_path / "state", "--out", tmp_path / "out.xlsx", "--search-settle", "0")  # fmt: skip
    first = run_cli(*args)
    assert first.code == 1
    assert (
        "products: 1 rows: 1 uncertain.\n"
        "1 row is uncertain: HubSpot may hold their records, so they are not sent again (each "
        "row's message says why). The next run looks those with a key up again: where HubSpot "
        "holds more than one record with a row's key, delete the extra ones first. Rows "
        "without a key are never looked up: --forget-uncertain sends every uncertain row "
        "again, so use it only once you have checked that HubSpot holds none of them, or it "
        "creates them twice.\n"
    ) in first.out
    assert "--forget-uncertain" in run_cli("run", "--help").out
    # Done as it says: the extra record deleted, the next run takes the one left.
    older, newer = sorted(r["id"] for r in sandbox.records("products"))
    sandbox.store.archive("products", [newer])
    second = run_cli(*args)
    assert second.code == 0, second.out
    assert "row is uncertain" not in second.out
    (row,) = read_sheet(tmp_path / "out.xlsx")
    assert str(row["hubspot_id"]) == older
    assert [r["id"] for r in sandbox.records("products")] == [older]
