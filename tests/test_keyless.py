"""Mappings without a key never duplicate or drop silently: a finished import is not repeated
by accident, an unfinished one resumes, and identical rows of different files are different."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from importer.core.prepared import values_hash
from importer.sandbox import Sandbox
from importer.state.journal import BatchRow, Journal, Outcome, journal_path

from .conftest import CliRun, write_csv, write_mapping

Runner = Callable[..., CliRun]
KEYLESS = "object_type: products\ncolumns:\n  Name: name\n  Price: price\n"
ROWS = [["Name", "Price"], ["Mug", "5"], ["Cup", "3"], ["Mug", "5"]]


def run(run_cli: Runner, box: Sandbox, tmp_path: Path, data: Path, *extra: str) -> CliRun:
    return run_cli(
        "run", "-m", write_mapping(tmp_path / "m.yaml", KEYLESS), data, "--base-url", box.url,
        "--state-dir", tmp_path / "state", "--out", tmp_path / f"{data.stem}-out.xlsx", *extra,
    )  # fmt: skip


def test_a_finished_keyless_import_is_not_repeated_by_accident(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    data = write_csv(tmp_path / "leads.csv", ROWS)
    assert run(run_cli, sandbox, tmp_path, data).out.startswith("products: 3 rows: 3 created.")
    # Tonight's file has one cell edited: without a key, no run can tell it is the same row.
    write_csv(data, [*ROWS[:2], ["Cup", "4"], ROWS[3]])
    again = run(run_cli, sandbox, tmp_path, data)
    assert again.code == 2
    assert "already imported" in again.message
    assert "which has no key" in again.message
    assert "run with --import-again" in again.message
    assert len(sandbox.records("products")) == 3
    checked = run_cli(
        "check", "-m", tmp_path / "m.yaml", data, "--base-url", sandbox.url,
        "--state-dir", tmp_path / "state",
    )  # fmt: skip
    assert checked.code == 2
    told = run(run_cli, sandbox, tmp_path, data, "--import-again")
    assert told.out.startswith("products: 3 rows: 3 created."), told.err
    assert len(sandbox.records("products")) == 6


def test_an_unfinished_keyless_import_resumes(
    run_cli: Runner, make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    box = make_sandbox()
    data = write_csv(
        tmp_path / "leads.csv", [["Name", "Price"], *[[f"P{i}", "1"] for i in range(30)]]
    )
    box.config.daily_limit = 3  # account details, properties, one batch of 10, then spent
    first = run(run_cli, box, tmp_path, data, "--batch-size", "10", "--concurrency", "1")
    assert first.code == 1
    assert "10 created, 20 not_sent" in first.out
    box.config.daily_limit = 1_000
    second = run(run_cli, box, tmp_path, data, "--batch-size", "10")
    assert second.out.startswith("products: 30 rows: 20 created, 10 unchanged."), second.err
    names = sorted(r["properties"]["name"] for r in box.records("products"))
    assert names == sorted(f"P{i}" for i in range(30))
    assert run(run_cli, box, tmp_path, data).code == 2  # now finished


def test_identical_rows_in_different_files_are_different_rows(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    monday = write_csv(tmp_path / "monday.csv", ROWS)
    tuesday = write_csv(tmp_path / "tuesday.csv", ROWS)
    assert run(run_cli, sandbox, tmp_path, monday).out.startswith("products: 3 rows: 3 created.")
    assert run(run_cli, sandbox, tmp_path, tuesday).out.startswith("products: 3 rows: 3 created.")
    assert len(sandbox.records("products")) == 6


def test_a_journal_of_an_earlier_version_carries_on_with_its_value_keys(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    made = sandbox.store.create_many("products", [({"name": "Mug", "price": "5"}, [])])[0]["id"]
    journal = Journal(
        journal_path(tmp_path / "state", sandbox.url, "products", sandbox.portal.portal_id)
    )
    journal.start_run("old", input_file="x", sheet=None, mapping_file="m", mode="create",
                      base_url=sandbox.url, object_type="products")  # fmt: skip
    digest = values_hash({"name": "Mug", "price": "5"})
    row = BatchRow(row_key=f"hash:{digest}:1", key_value=None, trace_id="t", sent_hash=digest,
                   source_row=2)  # fmt: skip
    journal.settle(
        journal.begin_batch("old", "create", [row]), "old", [(row, Outcome.CREATED, made)]
    )
    journal.close()
    data = write_csv(tmp_path / "leads.csv", ROWS)
    result = run(run_cli, sandbox, tmp_path, data)
    assert result.out.startswith("products: 3 rows: 2 created, 1 unchanged."), result.err
    assert len(sandbox.records("products")) == 3


def test_upsert_asked_on_the_command_line_of_a_keyless_mapping_sends_nothing(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    # Upsert finds each record by its key: without one, every input would go out as
    # `"id": null`. The mapping file's own `mode: upsert` is refused when it is read; the
    # command line's is refused as the run starts, before anything is sent.
    data = write_csv(tmp_path / "leads.csv", ROWS)
    result = run(run_cli, sandbox, tmp_path, data, "--mode", "upsert")
    assert result.code == 2
    assert "--mode upsert needs a key, and this mapping has none" in result.message
    assert [r for r in sandbox.received if "/batch/" in r.path] == []


def test_a_keyless_create_says_that_reruns_cannot_recognise_its_records(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    result = run(run_cli, sandbox, tmp_path, write_csv(tmp_path / "leads.csv", ROWS))
    assert result.code == 0
    assert "m.yaml has no key: a run of it creates a record per row" in result.err
    assert "Add `key:`" in result.err
