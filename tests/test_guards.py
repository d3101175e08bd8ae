"""Guards: a feed that arrives with half its rows invalid, too many records changed, or too
few or too many rows stops the run before it writes anything (exit 3), says which guard and
why in the console, the workbook, the summary file and the journal, and `check` says what each
guard would make of the run. Each run is the real CLI against the sandbox, whose requests are
counted: "nothing was written" is measured."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from importer.mapping.guards import Guards, Limit, RowRange, parse_limit, parse_rows
from importer.sandbox import Sandbox

from .conftest import ROOT, SKU_NAME_PRICE, CliRun, read_sheet, write_csv, write_mapping

Runner = Callable[..., CliRun]

MAPPING = SKU_NAME_PRICE
STOPPED = "not sent: the run stopped before writing: "


def catalogue(
    path: Path, n: int, *, invalid: set[int] = frozenset(), changed: set[int] = frozenset()
) -> Path:  # type: ignore[assignment]
    rows = [["SKU", "Name", "Price"]]
    for i in range(n):
        price = "not a price" if i in invalid else f"{i}.99" if i in changed else f"{i}.50"
        rows.append([f"{i:05d}", f"Product {i}", price])
    return write_csv(path, rows)


def writes(box: Sandbox) -> list[str]:
    """The requests that would change something in HubSpot (reads and searches left out)."""
    return [
        f"{r.method} {r.path}"
        for r in box.received
        if r.method != "GET" and not r.path.endswith(("/batch/read", "/search"))
    ]


def import_(
    run_cli: Runner, box: Sandbox, tmp: Path, data: Path, *extra: Any, command: str = "run"
) -> CliRun:
    mapping = tmp / "m.yaml"
    if not mapping.exists():
        write_mapping(mapping, MAPPING)
    return run_cli(command, "-m", mapping, data, "--base-url", box.url, "--state-dir",
                   tmp / "state", "--out", tmp / "out.xlsx", "--summary-json", tmp / "s.json",
                   *extra)  # fmt: skip


def summary_sheet(path: Path) -> dict[str, Any]:
    wb = openpyxl.load_workbook(path)
    return {r[0]: r[1] for r in wb["Summary"].iter_rows(values_only=True) if r[0]}


def test_half_the_rows_invalid_stops_the_run_before_it_writes_anything(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    data = catalogue(tmp_path / "c.csv", 1000, invalid=set(range(512)))
    result = import_(run_cli, sandbox, tmp_path, data, "--max-invalid", "10%")
    assert result.code == 3, result.message
    reason = "512 of 1,000 rows are invalid (51.2 %), more than --max-invalid 10 %"
    assert result.out.splitlines()[:2] == [
        "products: 1000 rows: 512 invalid, 488 not_sent.",
        f"Guard max_invalid stopped the run before writing: {reason}.",
    ]
    assert writes(sandbox) == []
    assert sandbox.records("products") == []

    rows = read_sheet(tmp_path / "out.xlsx")
    assert {r["status"] for r in rows[:512]} == {"invalid"}
    assert {(r["status"], r["message"]) for r in rows[512:]} == {("not_sent", STOPPED + reason)}
    facts = summary_sheet(tmp_path / "out.xlsx")
    assert facts["Stopped early"] == f"the run stopped before writing: {reason}"
    assert facts["Guards"] == "max_invalid 10 %: 512 of 1,000 rows invalid (51.2 %): stops the run"

    summary = json.loads((tmp_path / "s.json").read_text())
    assert (summary["exit_code"], summary["guard"]) == (3, "max_invalid")
    assert summary["stopped_by"] == f"the run stopped before writing: {reason}"
    assert summary["guards"] == [
        "max_invalid 10 %: 512 of 1,000 rows invalid (51.2 %): stops the run"
    ]
    shown = run_cli("show", summary["run_id"], "--state-dir", tmp_path / "state")
    assert f"Stopped early:   the run stopped before writing: {reason}" in shown.out

    # The journal holds no trace of a write: the run without the guard sends every valid row.
    again = import_(run_cli, sandbox, tmp_path, data)
    assert again.code == 1
    assert again.out.startswith("products: 1000 rows: 488 created, 512 invalid.")


def test_max_invalid_0_stops_at_the_first_invalid_row(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    data = catalogue(tmp_path / "c.csv", 5, invalid={3})
    result = import_(run_cli, sandbox, tmp_path, data, "--max-invalid", "0")
    assert result.code == 3
    assert result.out.splitlines()[1] == (
        "Guard max_invalid stopped the run before writing: 1 of 5 rows is invalid (20 %), "
        "more than --max-invalid 0."
    )
    assert writes(sandbox) == []

    clean = import_(
        run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", 5), "--max-invalid", "0"
    )
    assert clean.code == 0
    assert clean.out.splitlines()[:2] == [
        "products: 5 rows: 5 created.",
        "guard max_invalid 0: 0 of 5 rows invalid (0 %): passes",
    ]
    assert len(sandbox.records("products")) == 5


def test_max_changed_stops_a_second_night_whose_prices_changed_by_40_percent(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    assert import_(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", 100)).code == 0
    prices = {r["id"]: r["properties"]["price"] for r in sandbox.records("products")}
    before = len(writes(sandbox))
    night = catalogue(
        tmp_path / "c.csv", 100, changed=set(range(0, 100, 5)) | set(range(1, 100, 5))
    )

    check = import_(run_cli, sandbox, tmp_path, night, "--max-changed", "25%", command="check")
    assert check.code == 3
    assert check.out.splitlines()[:2] == [
        "products: 100 rows: 60 unchanged, 40 would_update.",
        "guard max_changed 25 %: 40 of 100 rows would update a record (40 %): would stop the run",
    ]
    stopped = import_(run_cli, sandbox, tmp_path, night, "--max-changed", "25%")
    assert stopped.code == 3
    reason = "40 of 100 rows would update a record (40 %), more than --max-changed 25 %"
    assert stopped.out.splitlines()[:2] == [
        "products: 100 rows: 60 unchanged, 40 not_sent.",
        f"Guard max_changed stopped the run before writing: {reason}.",
    ]
    rows = read_sheet(tmp_path / "out.xlsx")
    assert {(r["status"], r["message"]) for r in rows if r["status"] != "unchanged"} == {
        ("not_sent", STOPPED + reason)
    }
    assert writes(sandbox)[before:] == []
    assert {r["id"]: r["properties"]["price"] for r in sandbox.records("products")} == prices

    # An upsert of a record the journal knows is an update too.
    upsert = import_(run_cli, sandbox, tmp_path, night, "--max-changed", "39", "--mode", "upsert")
    assert upsert.code == 3
    assert "40 of 100 rows would update a record (40 %), more than --max-changed 39" in upsert.out
    assert writes(sandbox)[before:] == []

    passed = import_(run_cli, sandbox, tmp_path, night, "--max-changed", "40%")
    assert passed.code == 0
    assert passed.out.splitlines()[:2] == [
        "products: 100 rows: 40 updated, 60 unchanged.",
        "guard max_changed 40 %: 40 of 100 rows would update a record (40 %): passes",
    ]


@pytest.mark.parametrize(("rows", "code"), [(50, 3), (300, 3), (100, 0), (200, 0)])
def test_expect_rows_stops_a_feed_too_short_or_too_long(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, rows: int, code: int
) -> None:
    data = catalogue(tmp_path / "c.csv", rows)
    result = import_(run_cli, sandbox, tmp_path, data, "--expect-rows", "100:200")
    assert result.code == code
    if code == 3:
        assert result.out.splitlines()[1] == (
            f"Guard expect_rows stopped the run before writing: the sheet has {rows} data "
            "rows; --expect-rows 100:200 expects 100 to 200."
        )
        assert writes(sandbox) == []
    else:
        assert result.out.splitlines()[1] == (
            f"guard expect_rows 100:200: {rows} data rows: passes"
        )
        assert len(sandbox.records("products")) == rows


def test_expect_rows_counts_the_skipped_rows(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    write_mapping(tmp_path / "m.yaml", MAPPING + "skip_rows_without: [Name]\n")
    rows = [["SKU", "Name", "Price"]] + [[f"{i:03d}", "" if i % 4 else "n", "1"] for i in range(20)]
    data = write_csv(tmp_path / "c.csv", rows)
    result = import_(run_cli, sandbox, tmp_path, data, "--expect-rows", "20", command="check")
    assert result.code == 0
    assert "guard expect_rows 20: 20 data rows: passes" in result.out.splitlines()
    assert result.out.startswith("products: 20 rows: 15 skipped, 5 would_create.")


def test_the_mappings_guards_apply_and_the_command_line_overrides_them(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    write_mapping(
        tmp_path / "m.yaml", MAPPING + 'guards:\n  max_invalid: 0\n  expect_rows: "10:"\n'
    )
    data = catalogue(tmp_path / "c.csv", 20, invalid={7})
    result = import_(run_cli, sandbox, tmp_path, data)
    assert result.code == 3
    assert result.out.splitlines()[1] == (
        "Guard max_invalid stopped the run before writing: 1 of 20 rows is invalid (5 %), "
        "more than the mapping's max_invalid 0."
    )
    assert writes(sandbox) == []

    result = import_(run_cli, sandbox, tmp_path, data, "--max-invalid", "5%")
    assert result.code == 1  # the invalid row, and no guard
    assert result.out.splitlines()[:3] == [
        "products: 20 rows: 19 created, 1 invalid.",
        "guard expect_rows 10: 20 data rows: passes",
        "guard max_invalid 5 %: 1 of 20 rows invalid (5 %): passes",
    ]
    # The mapping's expect_rows still applies where the command line sets no expect_rows.
    short = import_(
        run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", 5), "--max-invalid", "5"
    )
    assert short.code == 3
    assert (
        "the sheet has 5 data rows; the mapping's expect_rows 10 expects at least 10" in short.out
    )


def test_check_says_what_each_guard_would_make_of_the_run(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    data = catalogue(tmp_path / "c.csv", 200, invalid={1, 2, 3})
    guards = [
        "--max-invalid",
        "10%",
        "--max-missing",
        "10%",
        "--max-changed",
        "5",
        "--expect-rows",
        "100:150",
    ]
    result = import_(run_cli, sandbox, tmp_path, data, *guards, command="check")
    assert result.code == 3
    assert result.out.splitlines()[:5] == [
        "products: 200 rows: 3 invalid, 197 would_create.",
        "guard expect_rows 100:150: 200 data rows: would stop the run",
        "guard max_invalid 10 %: 3 of 200 rows invalid (1.5 %): passes",
        "guard max_missing 10 %: no missing_rows: rule in the mapping, nothing to count",
        "guard max_changed 5: 0 of 200 rows would update a record (0 %): passes",
    ]
    # The plan for each row stays as the run would make it, were the guard to let it.
    assert {r["status"] for r in read_sheet(tmp_path / "out.xlsx")} == {"invalid", "would_create"}
    summary = json.loads((tmp_path / "s.json").read_text())
    assert (summary["exit_code"], summary["guard"], summary["stopped_by"]) == (
        3,
        "expect_rows",
        None,
    )
    assert summary_sheet(tmp_path / "out.xlsx")["Guards"].splitlines()[0] == (
        "expect_rows 100:150: 200 data rows: would stop the run"
    )
    assert writes(sandbox) == []

    passing = import_(run_cli, sandbox, tmp_path, data, "--max-invalid", "3", command="check")
    assert passing.code == 1  # the invalid rows
    assert (
        passing.out.splitlines()[1] == "guard max_invalid 3: 3 of 200 rows invalid (1.5 %): passes"
    )
    unguarded = import_(run_cli, sandbox, tmp_path, data, command="check")
    assert "guard" not in unguarded.out
    assert summary_sheet(tmp_path / "out.xlsx")["Guards"] == "none set"


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--max-invalid", "-5", "'-5' is negative: give a number (N) or a percentage (N%)"),
        ("--max-invalid", "120%", "'120%' is more than 100 %"),
        ("--max-changed", "ten", "'ten' is not a number or a percentage"),
        ("--max-missing", "2.5", "'2.5' is not a whole number: give a count, or add % for a share"),
        ("--expect-rows", "200:100", "'200:100': MIN 200 is more than MAX 100"),
        ("--expect-rows", "many", "'many' is not a number of rows: give MIN or MIN:MAX"),
    ],
)
def test_a_bad_guard_option_exits_2(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, option: str, value: str, said: str
) -> None:
    result = import_(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", 3), option, value)
    assert result.code == 2
    assert f"Error: Invalid value for '{option}': {said}" in result.err
    assert sandbox.received == []


def test_bad_guards_in_the_mapping_exit_2_each_named(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    write_mapping(
        tmp_path / "m.yaml",
        MAPPING + "guards:\n  max_invalid: 150%\n  expect_rows: lots\n  max_changd: 3\n",
    )
    result = import_(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", 3))
    assert result.code == 2
    assert "3 mistakes in the mapping" in result.err
    assert "guards.max_changd: unknown key; did you mean 'max_changed'?" in result.err
    assert "guards.max_invalid: '150%' is more than 100 %" in result.err
    assert "guards.expect_rows: 'lots' is not a number of rows" in result.err
    write_mapping(tmp_path / "m.yaml", MAPPING + "guards: 10%\n")
    result = import_(run_cli, sandbox, tmp_path, catalogue(tmp_path / "c.csv", 3))
    assert result.code == 2
    assert "guards: give the guards to set, e.g. {max_invalid: 10%" in result.err
    assert writes(sandbox) == []


def shop(tmp: Path) -> Path:
    """A copy of the shipped shop example; its Orders step runs first, then Products, then
    Order lines."""
    shutil.copytree(ROOT / "mappings" / "shop", tmp / "mappings" / "shop")
    (tmp / "data").mkdir()
    shutil.copy(ROOT / "data" / "shop.xlsx", tmp / "data" / "shop.xlsx")
    return tmp / "mappings" / "shop" / "plan.yaml"


def run_plan(run_cli: Runner, box: Sandbox, tmp: Path, plan: Path, *extra: Any) -> CliRun:
    return run_cli(*extra[:1] or ["run"], "--plan", plan, "--base-url", box.url, "--state-dir",
                   tmp / "state", "--out", tmp / "out.xlsx", "--summary-json", tmp / "s.json",
                   *extra[1:])  # fmt: skip


def test_a_plan_steps_own_guard_stops_the_plan_before_its_writes(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    plan = shop(tmp_path)
    orders = plan.with_name("orders.yaml")
    orders.write_text(orders.read_text() + "guards:\n  max_invalid: 0\n")
    book = openpyxl.load_workbook(tmp_path / "data" / "shop.xlsx")
    book["Orders"]["B3"] = "nobody@example.com"  # an unknown customer: one invalid order
    book.save(tmp_path / "data" / "shop.xlsx")
    result = run_plan(run_cli, sandbox, tmp_path, plan, "run")
    assert result.code == 3, result.message
    reason = "1 of 40 rows is invalid (2.5 %), more than the mapping's max_invalid 0"
    assert result.out.splitlines()[:3] == [
        "Orders (orders): 40 rows: 1 invalid, 39 not_sent.",
        f"  Guard max_invalid stopped the run before writing: {reason}.",
        "Products (products): 24 rows: 24 not_sent.",
    ]
    assert writes(sandbox) == []
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["stopped_by"] == f"the run stopped before writing: {reason}"
    assert [s["guard"] for s in summary["steps"]] == ["max_invalid", None, None]
    lines = read_sheet(tmp_path / "out.xlsx", "Results Order lines")
    assert {r["message"] for r in lines} == {
        f"not sent: the plan stopped at an earlier step (the run stopped before writing: {reason})"
    }


def test_a_plans_command_line_guard_applies_to_every_step(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    plan = shop(tmp_path)
    book = openpyxl.load_workbook(tmp_path / "data" / "shop.xlsx")
    book["Order lines"]["C2"] = "X-999"  # an unknown SKU: one invalid line, in the last step
    book.save(tmp_path / "data" / "shop.xlsx")
    check = run_plan(run_cli, sandbox, tmp_path, plan, "check", "--max-invalid", "0")
    assert check.code == 3
    assert "  guard max_invalid 0: 0 of 40 rows invalid (0 %): passes" in check.out.splitlines()
    assert (
        "  guard max_invalid 0: 1 of 101 rows invalid (1 %): would stop the run"
        in check.out.splitlines()
    )
    assert writes(sandbox) == []

    result = run_plan(run_cli, sandbox, tmp_path, plan, "run", "--max-invalid", "0")
    # Not 3 ("nothing was written"): the steps before the guarded one wrote, and that stands.
    assert result.code == 1
    assert (
        "  Guard max_invalid stopped the run before writing: 1 of 101 rows is invalid (1 %), "
        "more than --max-invalid 0." in result.out.splitlines()
    )
    assert (
        "  The plan stopped at Order lines before its writes; the steps before it wrote "
        "theirs, and they stand." in result.out.splitlines()
    )
    # The steps before it wrote; the guarded step wrote nothing.
    assert len(sandbox.records("orders")) == 40
    assert len(sandbox.records("products")) == 24
    assert sandbox.records("line_items") == []
    assert not [w for w in writes(sandbox) if "line_items" in w]


def test_limits_are_judged_exactly_at_their_edge() -> None:
    ten = parse_limit("10%", "--max-invalid")
    assert (ten.exceeded(100, 1000), ten.exceeded(101, 1000)) == (False, True)
    assert parse_limit("12.5 %", "x") == Limit(Fraction(25, 2), percent=True, given="x")
    assert str(parse_limit("12.5%", "x")) == "12.5 %"
    assert parse_limit(3, "x").exceeded(4, 5)
    assert not parse_limit(3, "x").exceeded(3, 5)
    assert not parse_limit("0%", "x").exceeded(0, 0)
    assert parse_rows(":200", "x") == RowRange(0, 200, "x")
    assert parse_rows("100:", "x") == RowRange(100, None, "x")
    cli = Guards(max_invalid=parse_limit("5", "--max-invalid"))
    mapping = Guards(max_invalid=ten, expect_rows=parse_rows("5", "m"))
    assert cli.over(mapping) == Guards(
        max_invalid=cli.max_invalid, expect_rows=RowRange(5, None, "m")
    )


def test_an_unquoted_range_in_the_mapping_is_read_as_written(tmp_path: Path) -> None:
    from importer import MappingError
    from importer.mapping.file import load_mapping

    base = "object_type: products\nkey: SKU\ncolumns:\n  SKU: hs_sku\n"
    text = base + "guards: {expect_rows: 10:50}\n"
    ranged = load_mapping(write_mapping(tmp_path / "r.yaml", text))
    assert ranged.guards is not None
    assert ranged.guards.expect_rows is not None
    assert (ranged.guards.expect_rows.low, ranged.guards.expect_rows.high) == (10, 50)
    # YAML 1.1 would read 10:50 as the number 650 (base 60), and switch the guard off.
    with pytest.raises(MappingError, match=r"guards\.max_invalid"):
        load_mapping(write_mapping(tmp_path / "i.yaml", base + "guards: {max_invalid: 10:50}\n"))


def test_max_changed_counts_the_records_hubspot_holds_that_the_journal_does_not_know(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    """A state folder lost or moved: the journal knows nothing, but HubSpot holds the keys,
    and creating (or upserting) them would overwrite their records."""
    first, later = tmp_path / "first", tmp_path / "later"
    first.mkdir()
    later.mkdir()
    assert import_(run_cli, sandbox, first, catalogue(first / "c.csv", 10)).code == 0
    names = {r["id"]: r["properties"]["name"] for r in sandbox.records("products")}
    before = len(writes(sandbox))
    night = catalogue(later / "c.csv", 10, changed=set(range(6)))

    check = import_(run_cli, sandbox, later, night, "--max-changed", "0", command="check")
    assert check.code == 3, check.out
    assert "10 of 10 rows would update a record (100 %)" in check.out
    for mode in ("create", "upsert"):
        stopped = import_(run_cli, sandbox, later, night, "--max-changed", "5", "--mode", mode)
        assert stopped.code == 3, stopped.out
        assert "10 of 10 rows would update a record (100 %), more than --max-changed 5" in (
            stopped.out
        )
    assert [w for w in writes(sandbox)[before:] if not w.endswith("/batch/read")] == []
    assert {r["id"]: r["properties"]["name"] for r in sandbox.records("products")} == names
