"""One object type, one identity: a custom object named by its fully qualified name or by its
type id has one journal and one lock; a key is one key in either Unicode spelling; two steps of
one plan never write one record twice."""

from __future__ import annotations

import sqlite3
import unicodedata
from collections.abc import Callable
from pathlib import Path

from importer.core.prepared import journal_key
from importer.sandbox import Fault, Sandbox
from importer.state.journal import BatchRow, Journal, journal_path
from importer.state.key_forms import compose_keys

from .conftest import CliRun, creates, write_csv, write_mapping

Runner = Callable[..., CliRun]
PORTAL = 4_242_424
PETS = """\
object_type: {kind}
key: Chip
columns:
  Chip: chip_id
  Name: name
"""
BY_SKU = """\
object_type: products
key: SKU
columns:
  SKU: hs_sku
  Name: name
"""
NFC = unicodedata.normalize("NFC", "Café")
NFD = unicodedata.normalize("NFD", "Café")


def run(run_cli: Runner, box: Sandbox, tmp_path: Path, mapping: str, rows: list[list[str]],
        out: str, *extra: str) -> CliRun:  # fmt: skip
    data = write_csv(tmp_path / f"{out}.csv", rows)
    m = write_mapping(tmp_path / f"{out}.yaml", mapping)
    return run_cli(
        "run", "-m", m, data, "--base-url", box.url, "--state-dir", tmp_path / "state",
        "--out", tmp_path / f"{out}.xlsx", *extra,
    )  # fmt: skip


def journals(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "state").glob("*.sqlite"))


def test_a_custom_object_named_two_ways_has_one_journal_and_one_lock(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    rows = [["Chip", "Name"], ["C-1", "Rex"], ["C-2", "Tom"]]
    first = run(run_cli, sandbox, tmp_path, PETS.format(kind="p4242424_pets"), rows, "a")
    assert first.code == 0, first.err
    by_id = journal_path(tmp_path / "state", sandbox.url, "2-4242424", PORTAL)
    assert journals(tmp_path) == [by_id.name]
    # The other name finds the same journal, and so the same lock: a run of it while the
    # first holds the lock is refused.
    for name in ("p4242424_pets", "pets", "2-4242424"):
        assert journal_path(tmp_path / "state", sandbox.url, name, PORTAL) == by_id
    holder = Journal(by_id, lock=True)
    try:
        held = run(run_cli, sandbox, tmp_path, PETS.format(kind="2-4242424"), rows, "b")
    finally:
        holder.close()
    assert held.code != 0, held.err
    assert "another import is running" in held.message, held.err


def test_a_custom_object_whose_schema_cannot_be_read_is_imported_under_its_name_with_a_warning(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    # A token without crm.schemas.custom.read: refusing would stop every import of the type.
    sandbox.inject(Fault(status=403, path="/schemas/", times=5))
    rows = [["Chip", "Name"], ["C-1", "Rex"]]
    done = run(run_cli, sandbox, tmp_path, PETS.format(kind="p4242424_pets"), rows, "a")
    assert done.code == 0, done.err
    assert "could not read the schema of custom object 'p4242424_pets'" in done.err
    assert "crm.schemas.custom.read" in done.err
    assert len(sandbox.records("p4242424_pets")) == 1


def test_a_rerun_by_the_other_name_of_a_custom_object_sends_nothing(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    rows = [["Chip", "Name"], ["C-1", "Rex"], ["C-2", "Tom"]]
    assert run(run_cli, sandbox, tmp_path, PETS.format(kind="p4242424_pets"), rows, "a").code == 0
    sent = len(sandbox.received)
    again = run(run_cli, sandbox, tmp_path, PETS.format(kind="2-4242424"), rows, "b")
    assert again.code == 0, again.err
    assert "2 unchanged" in again.out, again.out
    writes = [r.path for r in sandbox.received[sent:] if "/batch/" in r.path]
    assert writes == [], writes
    assert len(sandbox.records("p4242424_pets")) == 2


def test_a_journal_kept_under_a_custom_objects_name_is_adopted(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    rows = [["Chip", "Name"], ["C-1", "Rex"]]
    assert run(run_cli, sandbox, tmp_path, PETS.format(kind="p4242424_pets"), rows, "a").code == 0
    state = tmp_path / "state"
    # As an earlier version kept it: under the name the mapping gave, nothing remembered.
    by_id = journal_path(state, sandbox.url, "2-4242424", PORTAL)
    by_name = by_id.with_name(by_id.name.replace("2-4242424", "p4242424_pets"))
    by_id.rename(by_name)
    (state / "object-types.json").unlink()
    again = run(run_cli, sandbox, tmp_path, PETS.format(kind="2-4242424"), rows, "b")
    assert again.code == 0, again.err
    assert "1 unchanged" in again.out, again.out
    assert f"moved the journal {by_name} to {by_id}" in again.err
    assert by_id.is_file()
    assert not by_name.exists()
    assert len(sandbox.records("p4242424_pets")) == 1


def test_two_journals_of_one_custom_object_are_refused_not_ignored(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    rows = [["Chip", "Name"], ["C-1", "Rex"]]
    assert run(run_cli, sandbox, tmp_path, PETS.format(kind="pets"), rows, "a").code == 0
    by_id = journal_path(tmp_path / "state", sandbox.url, "2-4242424", PORTAL)
    other = by_id.with_name(by_id.name.replace("2-4242424", "p4242424_pets"))
    other.write_bytes(by_id.read_bytes())
    sent = len(sandbox.received)
    refused = run(run_cli, sandbox, tmp_path, PETS.format(kind="pets"), rows, "b")
    assert refused.code == 2, refused.err
    assert f"{other} and {by_id} are both journals of one object type" in refused.message
    assert not [r for r in sandbox.received[sent:] if "/batch/" in r.path]


def test_an_unknown_custom_object_is_refused_before_anything_is_sent(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    rows = [["Chip", "Name"], ["C-1", "Rex"]]
    refused = run(run_cli, sandbox, tmp_path, PETS.format(kind="p4242424_cats"), rows, "a")
    assert refused.code == 2, refused.err
    assert "HubSpot has no object type 'p4242424_cats'" in refused.message
    assert journals(tmp_path) == []


def test_a_key_typed_in_its_decomposed_unicode_form_finds_its_record(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    first = run(run_cli, sandbox, tmp_path, BY_SKU, [["SKU", "Name"], [NFC, "Latte"]], "a")
    assert first.code == 0, first.err
    again = run(run_cli, sandbox, tmp_path, BY_SKU, [["SKU", "Name"], [NFD, "Latte 2"]], "b")
    assert again.code == 0, again.err
    assert "1 updated" in again.out, again.out
    assert len(sandbox.records("products")) == 1
    assert journal_key("products", "hs_sku", NFD) == journal_key("products", "hs_sku", NFC)


def test_an_upsert_of_a_key_spelt_anew_updates_its_record_never_makes_a_second(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    # HubSpot holds the composed spelling; an upsert by the decomposed one would not find it.
    upsert = ("--mode", "upsert")
    first = run(run_cli, sandbox, tmp_path, BY_SKU, [["SKU", "Name"], [NFC, "Latte"]], "a", *upsert)
    assert first.code == 0, first.err
    again = run(run_cli, sandbox, tmp_path, BY_SKU, [["SKU", "Name"], [NFD, "Latte 2"]], "b",
                *upsert)  # fmt: skip
    assert again.code == 0, again.err
    assert "1 updated" in again.out, again.out
    (record,) = sandbox.records("products")
    assert record["properties"]["name"] == "Latte 2"


def test_an_upsert_of_a_key_spelt_anew_after_a_lost_answer_updates_its_record(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    # The first upsert's answer is lost: the record is found by lookup, and the journal keeps
    # no record of what was sent; the spelling HubSpot holds cannot be told, so update by id.
    upsert = ("--mode", "upsert", "--search-settle", "0")
    sandbox.inject(Fault(drop=True, after=True, path="/batch/upsert"))
    first = run(run_cli, sandbox, tmp_path, BY_SKU, [["SKU", "Name"], [NFC, "Latte"]], "a", *upsert)
    assert first.code == 0, first.err
    again = run(run_cli, sandbox, tmp_path, BY_SKU, [["SKU", "Name"], [NFD, "Latte 2"]], "b",
                *upsert)  # fmt: skip
    assert again.code == 0, again.err
    (record,) = sandbox.records("products")
    assert record["properties"]["name"] == "Latte 2"


def test_an_upsert_by_id_of_a_record_deleted_since_creates_it_again(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    # Upsert mode updates by id where the journal cannot tell the spelling; a record gone
    # since is created again, as an upsert would, never failed as in update mode.
    upsert = ("--mode", "upsert", "--search-settle", "0")
    sandbox.inject(Fault(drop=True, after=True, path="/batch/upsert"))
    assert run(run_cli, sandbox, tmp_path, BY_SKU, [["SKU", "Name"], [NFC, "Latte"]], "a",
               *upsert).code == 0  # fmt: skip
    (gone,) = sandbox.records("products")
    sandbox.store.archive("products", [gone["id"]])
    again = run(run_cli, sandbox, tmp_path, BY_SKU, [["SKU", "Name"], [NFC, "Latte 2"]], "b",
                *upsert)  # fmt: skip
    assert again.code == 0, again.err
    (record,) = sandbox.records("products")
    assert record["id"] != gone["id"]
    assert record["properties"]["name"] == "Latte 2"


def test_an_old_journal_with_a_decomposed_key_still_finds_its_record(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    assert run(run_cli, sandbox, tmp_path, BY_SKU, [["SKU", "Name"], [NFD, "Latte"]], "a").code == 0
    path = journal_path(tmp_path / "state", sandbox.url, "products", PORTAL)
    # As an earlier version wrote it: the key as the sheet spelled it, decomposed.
    with sqlite3.connect(path) as db:
        db.execute("UPDATE rows SET row_key = ?", (f"key:hs_sku={NFD}",))
        db.execute("DELETE FROM meta WHERE key = 'key_form'")
    again = run(run_cli, sandbox, tmp_path, BY_SKU, [["SKU", "Name"], [NFC, "Latte 2"]], "b")
    assert again.code == 0, again.err
    assert "1 updated" in again.out, again.out
    assert not creates(sandbox)[1:]
    assert len(sandbox.records("products")) == 1


def test_an_open_batch_with_a_decomposed_key_is_settled_under_the_composed_key(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.sqlite"
    journal = Journal(path)
    journal.start_run("r1", input_file="a.csv", sheet=None, mapping_file="m.yaml",
                      mode="create", base_url="http://x", object_type="products")  # fmt: skip
    journal.begin_batch("r1", "create", [BatchRow(row_key=f"key:hs_sku={NFD}", key_value=NFD,
                        trace_id="t", sent_hash="h", source_row=2)])  # fmt: skip
    journal.close()
    assert compose_keys(path) == []
    reopened = Journal(path)
    try:
        (batch,) = reopened.open_batches()
        assert [r.row_key for r in batch.rows] == [f"key:hs_sku={NFC}"]
    finally:
        reopened.close()


def plan_of(tmp_path: Path, steps: list[tuple[str, str, list[list[str]]]]) -> Path:
    """A plan file of steps (name, mapping, rows), each its own CSV."""
    lines = ["steps:"]
    for name, mapping, rows in steps:
        write_mapping(tmp_path / f"{name}.yaml", mapping)
        write_csv(tmp_path / f"{name}.csv", rows)
        lines += [f"  - mapping: {name}.yaml", f"    input: {name}.csv"]
    plan = tmp_path / "plan.yaml"
    plan.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return plan


def run_plan(run_cli: Runner, box: Sandbox, tmp_path: Path, plan: Path) -> CliRun:
    return run_cli("run", "--plan", plan, "--base-url", box.url, "--state-dir",
                   tmp_path / "state", "--out", tmp_path / "out.xlsx")  # fmt: skip


def test_the_same_key_in_two_steps_of_a_plan_is_refused_before_anything_is_sent(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    plan = plan_of(tmp_path, [
        ("shoes", BY_SKU, [["SKU", "Name"], ["S-1", "Boot"], ["S-2", "Clog"]]),
        ("sale", BY_SKU, [["SKU", "Name"], ["S-9", "Sock"], [NFD, "x"], ["S-2", "Clog -20%"]]),
    ])  # fmt: skip
    result = run_plan(run_cli, sandbox, tmp_path, plan)
    assert result.code == 2, result.err
    assert (
        "steps shoes and sale both write products records keyed by hs_sku: 'S-2' is in "
        "shoes.csv row 3 and in sale.csv row 4. One record would be written twice, the later "
        "step over the earlier one." in result.message
    ), result.message
    assert not [r for r in sandbox.received if r.method == "POST"]
    assert sandbox.records("products") == []


def test_two_steps_naming_one_custom_object_two_ways_share_its_keys(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    plan = plan_of(tmp_path, [
        ("cats", PETS.format(kind="p4242424_pets"), [["Chip", "Name"], [NFC, "Tom"]]),
        ("dogs", PETS.format(kind="2-4242424"), [["Chip", "Name"], ["D-1", "Rex"], [NFD, "Tom"]]),
    ])  # fmt: skip
    result = run_plan(run_cli, sandbox, tmp_path, plan)
    assert result.code == 2, result.err
    assert f"steps cats and dogs both write 2-4242424 records keyed by chip_id: {NFD!r}" in (
        result.message
    ), result.message
    assert sandbox.records("p4242424_pets") == []
