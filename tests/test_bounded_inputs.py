"""Hostile inputs meet limits, not memory: a YAML alias bomb, a zip bomb, a sheet too wide or
too long for its results workbook, cells longer than Excel holds, running out of memory; and
a plan's files are the ones it checked (read through a link, changed since, a keyless step)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest

import importer.stages.write
from importer.sandbox import Sandbox

from .conftest import CliRun, creates, read_sheet, write_csv, write_mapping, write_xlsx

Runner = Callable[..., CliRun]
MAPPING = "object_type: products\nkey: SKU\ncolumns:\n  SKU: hs_sku\n  Name: name\n"
LEVELS = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9 if prev else ['x'] * 9)}]\n"
    for prev, name in zip(["", "a", "b", "c", "d", "e", "f", "g"], "abcdefgh", strict=True)
)
"""Aliases of aliases: `h` stands for 9**8, 43 million values."""


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "c.csv", [["SKU", "Name"], ["1", "a"], ["2", "b"]])


# --- YAML ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (f"{LEVELS}object_type: products\nkey: *h\ncolumns: {{SKU: hs_sku}}\n",
         "holds more than 100,000 values once its aliases (*name) are expanded"),
        (f"{LEVELS}object_type: products\ncolumns: {{SKU: {{property: *h}}}}\n",
         "holds more than 100,000 values once its aliases (*name) are expanded"),
        ("object_type: products\ncolumns: " + "[" * 500 + "]" * 500 + "\n",
         "nested more than 50 levels deep"),
        ("object_type: products\ncolumns: &a {SKU: *a}\n",
         "an alias (*name) stands for a value that holds it"),
        ("object_type: products\ncolumns:\n  ? [SKU, Name]\n  : hs_sku\n",
         "is a list or a mapping; a key is a word: quote it"),
        (f"s: &s \"{'x' * 1_000_000}\"\nobject_type: products\ncolumns:\n"
         f"  SKU: {{property: hs_sku, type: [{', '.join(['*s'] * 50)}]}}\n",
         "holds more than 10,000,000 characters once its aliases (*name) are expanded"),
    ],
    ids=["alias-bomb-key", "alias-bomb-property", "deep", "self-alias", "list-as-key",
         "aliases-of-a-long-word"],
)  # fmt: skip
def test_a_hostile_mapping_is_a_short_clear_error(
    run_cli: Runner, sandbox: Sandbox, data: Path, tmp_path: Path, text: str, said: str
) -> None:
    mapping = write_mapping(tmp_path / "m.yaml", text)
    summary = tmp_path / "s.json"
    started = time.monotonic()
    result = run_cli(
        "run", "-m", mapping, data, "--base-url", sandbox.url, "--summary-json", summary
    )
    assert time.monotonic() - started < 10
    assert result.code == 2
    assert said in result.message
    assert len(result.err) < 2_000  # the bomb is never expanded into the message
    assert "Traceback" not in result.err
    assert json.loads(summary.read_text(encoding="utf-8"))["exit_code"] == 2
    assert sandbox.received == []


def test_a_long_value_is_quoted_short_in_every_message(
    run_cli: Runner, sandbox: Sandbox, data: Path, tmp_path: Path
) -> None:
    word = "y" * 300_000
    mapping = write_mapping(tmp_path / "m.yaml",
        f'object_type: "p {word}"\nkey: SKU\ncolumns:\n  SKU: hs_sku\n'
        f'  Name: {{property: name, type: "{word}", format: "{word}"}}\n'
        f'constants:\n  ? "{word}"\n  : [1]\n')  # fmt: skip
    summary = tmp_path / "s.json"
    result = run_cli("check", "-m", mapping, data, "--base-url", sandbox.url,
                     "--summary-json", summary)  # fmt: skip
    assert result.code == 2
    assert "4 mistakes in the mapping" in result.message
    assert f"object_type: 'p {'y' * 197}… is not an object type name or id" in result.message
    assert "is not a type (allowed: string, number" in result.message  # the advice is kept
    assert "give a single value" in result.message
    assert len(result.err) < 3_000
    assert len(summary.read_text(encoding="utf-8")) < 5_000


def test_a_mapping_without_a_size_is_read_no_further_than_the_limit(
    run_cli: Runner, sandbox: Sandbox, data: Path, tmp_path: Path
) -> None:
    pipe = tmp_path / "m.fifo"
    os.mkfifo(pipe)

    def feed() -> None:
        with contextlib.suppress(BrokenPipeError), pipe.open("wb") as end:
            for _ in range(30):  # 30 MB, never all read
                end.write(b"# " + b"x" * 999_997 + b"\n")

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    for mapping in ("/dev/zero", pipe):
        result = run_cli("check", "-m", mapping, data, "--base-url", sandbox.url)
        assert result.code == 2, result.message
        assert "the file is over 10,000,000 bytes; a mapping is a few kilobytes" in result.message
    feeder.join(timeout=10)
    assert not feeder.is_alive()
    assert sandbox.received == []


def test_a_plan_file_is_bounded_as_a_mapping_is(
    run_cli: Runner, sandbox: Sandbox, data: Path, tmp_path: Path
) -> None:
    write_mapping(tmp_path / "m.yaml", MAPPING)
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"{LEVELS}steps:\n  - {{mapping: m.yaml, input: *h}}\n", encoding="utf-8")
    result = run_cli("run", "--plan", plan, "--base-url", sandbox.url)
    assert result.code == 2
    assert "holds more than 100,000 values" in result.message
    assert len(result.err) < 2_000


# --- spreadsheets ------------------------------------------------------------------------------


def _zip_bomb(path: Path, megabytes: int) -> Path:
    """A real workbook whose one cell is `megabytes` MB of one letter: a few hundred KB."""
    template = io.BytesIO()
    write_xlsx(template, [["SKU", "Name"], ["1", "a"]])  # type: ignore[arg-type]
    source = zipfile.ZipFile(template)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bomb:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename != "xl/worksheets/sheet1.xml":
                bomb.writestr(item, data)
                continue
            head, tail = data.split(b"<sheetData>")[0], data.split(b"</sheetData>")[1]
            with bomb.open(item.filename, "w", force_zip64=True) as part:
                part.write(head + b'<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>SKU')
                part.write(b'</t></is></c></row><row r="2"><c r="A2" t="inlineStr"><is><t>')
                for _ in range(megabytes):
                    part.write(b"A" * 1_000_000)
                part.write(b"</t></is></c></row></sheetData>" + tail)
    return path


def test_a_zip_bomb_workbook_is_refused_before_it_is_inflated(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = _zip_bomb(tmp_path / "bomb.xlsx", 60)
    assert bomb.stat().st_size < 1_000_000
    mapping = write_mapping(tmp_path / "m.yaml", "object_type: products\ncolumns: {SKU: hs_sku}\n")
    summary = tmp_path / "s.json"
    result = run_cli("run", "-m", mapping, bomb, "--base-url", sandbox.url,
                     "--summary-json", summary)  # fmt: skip
    assert result.code == 2
    assert "times as much" in result.message
    assert "set HUBSPOT_IMPORT_MAX_ZIP_RATIO to raise the limit" in result.message
    assert json.loads(summary.read_text(encoding="utf-8"))["exit_code"] == 2
    assert sandbox.received == []
    # Raised, the limit lets the workbook be read: its one huge cell is that row's problem.
    monkeypatch.setenv("HUBSPOT_IMPORT_MAX_ZIP_RATIO", "100000")
    read = run_cli("check", "-m", mapping, bomb, "--base-url", sandbox.url,
                   "--out", tmp_path / "o.xlsx")  # fmt: skip
    assert read.code == 1, read.message
    assert "HubSpot takes at most 65,536" in read.err


def test_a_workbook_larger_than_the_limit_names_it_and_how_to_raise_it(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = tmp_path / "big.xlsx"
    write_xlsx(book, [["SKU", "Name"], *[[str(i), "x" * 200] for i in range(10_000)]])
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    monkeypatch.setenv("HUBSPOT_IMPORT_MAX_UNZIPPED_MB", "1")
    result = run_cli("check", "-m", mapping, book, "--base-url", sandbox.url)
    assert result.code == 2
    assert "more than the 1 MB read at most (set HUBSPOT_IMPORT_MAX_UNZIPPED_MB" in result.message
    monkeypatch.setenv("HUBSPOT_IMPORT_MAX_UNZIPPED_MB", "50")
    assert run_cli("check", "-m", mapping, book, "--base-url", sandbox.url).code == 0


def test_more_columns_than_a_results_workbook_holds_are_refused_before_sending(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    header = ["SKU", "Name", *[f"X{i}" for i in range(16_400)]]
    data = write_csv(tmp_path / "wide.csv", [header, *[[str(i), "a", *["v"] * 16_400]
                                                        for i in range(3)]])  # fmt: skip
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    result = run_cli("run", "-m", mapping, data, "--base-url", sandbox.url,
                     "--state-dir", tmp_path / "st")  # fmt: skip
    assert result.code == 2
    assert "16,402 columns, more than the 16,379 a results workbook can copy" in result.message
    assert "Traceback" not in result.err
    assert not creates(sandbox)


def test_running_out_of_memory_after_records_were_created_is_no_bug(
    run_cli: Runner,
    sandbox: Sandbox,
    data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_memory(*args: object, **kwargs: object) -> None:
        raise MemoryError

    monkeypatch.setattr(importer.stages.write, "write_results", no_memory)
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    summary = tmp_path / "s.json"
    result = run_cli(
        "run", "-m", mapping, data, "--base-url", sandbox.url, "--state-dir", tmp_path / "st",
        "--summary-json", summary, "--out", tmp_path / "o.xlsx",
    )  # fmt: skip
    assert result.code == 2
    assert "ran out of memory" in result.message
    assert "`hubspot-import show RUN --out FILE.xlsx` writes its workbook" in result.message
    assert "internal error" not in result.err
    assert json.loads(summary.read_text(encoding="utf-8"))["exit_code"] == 2
    assert len(sandbox.records("products")) == 2


# --- Excel's limits in what is written ----------------------------------------------------------


def test_cells_longer_than_excel_holds_are_cut_and_kept_whole_beside(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    notes, name = "n" * 40_000, "N" * 70_000  # an unmapped cell, and a mapped one too long
    data = write_csv(tmp_path / "c.csv", [["SKU", "Name", "Notes"], ["1", "a", notes],
                                          ["2", name, "x"]])  # fmt: skip
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    out = tmp_path / "o.xlsx"
    result = run_cli("run", "-m", mapping, data, "--base-url", sandbox.url,
                     "--state-dir", tmp_path / "st", "--out", out)  # fmt: skip
    assert result.code == 1
    book = openpyxl.load_workbook(out)
    longest = max(
        len(str(c.value)) for ws in book for row in ws.iter_rows() for c in row if c.value
    )
    assert longest <= 32_767
    rows = read_sheet(out)
    assert rows[0]["Notes"].endswith(
        "… [cut: 40,000 characters, over Excel's 32,767; whole in o-long-cells.csv]"
    )
    assert rows[0]["Notes"].startswith("n" * 30_000)
    side = tmp_path / "o-long-cells.csv"
    with side.open(encoding="utf-8", newline="") as fh:
        kept = {(r["row"], r["column"]): r["value"] for r in csv.DictReader(fh)}
    assert kept == {("2", "Notes"): notes, ("3", "Name"): name}
    assert "2 cells were longer than an Excel cell holds" in result.err
    # The row HubSpot took has its whole value there; the too-long one is invalid.
    assert [r["properties"]["hs_sku"] for r in sandbox.records("products")] == ["1"]


def test_a_plan_step_longer_than_a_sheet_is_refused_before_sending(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    rows = 1_048_576
    with (tmp_path / "big.csv").open("w", encoding="utf-8") as fh:
        fh.write("SKU,Name\n")
        fh.writelines(f"{i},a\n" for i in range(rows))
    write_mapping(tmp_path / "m.yaml", MAPPING)
    plan = tmp_path / "plan.yaml"
    plan.write_text("steps:\n  - {mapping: m.yaml, input: big.csv}\n", encoding="utf-8")
    result = run_cli("run", "--plan", plan, "--base-url", sandbox.url,
                     "--state-dir", tmp_path / "st")  # fmt: skip
    assert result.code == 2
    assert "1,048,576 rows, more than one sheet of the plan's results workbook holds" in (
        result.message
    )
    assert not creates(sandbox)


# --- plans ----------------------------------------------------------------------------------------


def _plan(folder: Path, *steps: tuple[str, str]) -> Path:
    plan = folder / "plan.yaml"
    listed = "".join(f"  - {{mapping: {m}, input: {i}}}\n" for m, i in steps)
    plan.write_text(f"steps:\n{listed}", encoding="utf-8")
    return plan


def test_a_plan_reached_through_a_link_reads_the_files_beside_the_plan(
    run_cli: Runner, sandbox: Sandbox, data: Path, tmp_path: Path
) -> None:
    write_mapping(tmp_path / "m.yaml", MAPPING)
    plan = _plan(tmp_path, ("m.yaml", "c.csv"))
    elsewhere = tmp_path / "nightly"
    elsewhere.mkdir()
    (elsewhere / "plan.yaml").symlink_to(plan)
    result = run_cli("run", "--plan", elsewhere / "plan.yaml", "--base-url", sandbox.url,
                     "--state-dir", tmp_path / "st")  # fmt: skip
    assert result.code == 0, result.message
    assert len(sandbox.records("products")) == 2


def test_a_file_changed_after_the_plan_checked_it_is_not_imported(
    run_cli: Runner, make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    box = make_sandbox(latency=0.5)
    write_csv(tmp_path / "c.csv", [["SKU", "Name"], ["1", "a"]])
    people = write_csv(tmp_path / "people.csv", [["Email", "First"], ["a@x.com", "A"]])
    write_mapping(tmp_path / "m.yaml", MAPPING)
    write_mapping(
        tmp_path / "people.yaml",
        "object_type: contacts\nkey: Email\ncolumns: {Email: email, First: firstname}\n",
    )
    plan = _plan(tmp_path, ("m.yaml", "c.csv"), ("people.yaml", "people.csv"))

    def rewrite_when_the_first_step_sends() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not creates(box):
            time.sleep(0.01)
        people.write_text("Email,First\nb@x.com,B\n", encoding="utf-8")

    feed = threading.Thread(target=rewrite_when_the_first_step_sends)
    feed.start()
    out = tmp_path / "o.xlsx"
    result = run_cli("run", "--plan", plan, "--base-url", box.url, "--state-dir", tmp_path / "st",
                     "--out", out)  # fmt: skip
    feed.join()
    assert result.code == 2, result.message  # an input that changed: not all was attempted
    assert "people.csv changed after the plan checked it" in result.err
    assert "step people was not run" in result.err
    assert len(box.records("products")) == 1
    assert box.records("contacts") == [] or all(
        r["properties"].get("email") not in ("a@x.com", "b@x.com") for r in box.records("contacts")
    )
    assert {r["status"] for r in read_sheet(out, "Results people")} == {"not_sent"}


def test_a_keyless_step_refuses_its_rerun_alone(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    write_mapping(tmp_path / "keyless.yaml",
                  "object_type: contacts\ncolumns: {Email: email, First: firstname}\n")  # fmt: skip
    write_csv(tmp_path / "people.csv", [["Email", "First"], ["a@x.com", "A"]])
    write_mapping(tmp_path / "m.yaml", MAPPING)
    data = write_csv(tmp_path / "c.csv", [["SKU", "Name"], ["1", "a"]])
    plan = _plan(tmp_path, ("keyless.yaml", "people.csv"), ("m.yaml", "c.csv"))
    state = tmp_path / "st"
    first = run_cli("run", "--plan", plan, "--base-url", sandbox.url, "--state-dir", state)
    assert first.code == 0, first.message
    contacts = len(sandbox.records("contacts"))
    write_csv(data, [["SKU", "Name"], ["1", "a"], ["2", "b"]])
    out = tmp_path / "o.xlsx"
    again = run_cli("run", "--plan", plan, "--base-url", sandbox.url, "--state-dir", state,
                    "--out", out)  # fmt: skip
    assert again.code == 1
    assert "which has no key" in again.err
    assert len(sandbox.records("contacts")) == contacts  # nothing created twice
    assert len(sandbox.records("products")) == 2  # the keyed step ran all the same
    assert {r["status"] for r in read_sheet(out, "Results people")} == {"not_sent"}
