"""A plan's retry workbook: steps of one sheet of one file share its retry sheet; sheets of the
same name in different files get sheets of their own, and the fixed workbook runs again."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import openpyxl
import pandas as pd
import pytest

from importer.sandbox import Sandbox
from importer.sheets.plan_results import StepResult, _retry_sheets
from importer.sheets.table import Table
from importer.state.plan_journal import list_plan_runs

from .conftest import SKU_NAME_PRICE, CliRun, write_mapping
from .test_plans import run

Runner = Callable[..., CliRun]

CONTACTS = """\
object_type: contacts
key: Email
columns:
  Email: {property: email, required: true}
  First: firstname
"""

COMPANIES = """\
object_type: companies
key: Domain
columns:
  Domain: {property: domain, required: true}
  Company: name
"""


def workbook(path: Path, sheets: dict[str, list[list[Any]]]) -> Path:
    """An .xlsx with these sheets, in this order."""
    book = openpyxl.Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    for title, rows in sheets.items():
        ws = book.create_sheet(title)
        for row in rows:
            ws.append(row)
    book.save(path)
    return path


def sheet_rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every sheet of a workbook: its rows' values (an empty cell as "")."""
    book = openpyxl.load_workbook(path)
    return {
        ws.title: [
            tuple("" if v is None else v for v in row) for row in ws.iter_rows(values_only=True)
        ]
        for ws in book.worksheets
    }


def two_files(tmp: Path, products: int, contacts: list[list[Any]]) -> Path:
    """Products on one.xlsx's Sheet1, contacts on two.xlsx's Sheet1: a plan of two steps."""
    header = ["SKU", "Name", "Price"]
    rows = [[f"PD{n}", f"one {n}", str(n + 1)] for n in range(products)]
    workbook(tmp / "one.xlsx", {"Sheet1": [header, *rows]})
    workbook(tmp / "two.xlsx", {"Sheet1": [["Email", "First"], *contacts]})
    write_mapping(tmp / "products.yaml", SKU_NAME_PRICE)
    write_mapping(tmp / "contacts.yaml", CONTACTS)
    plan = tmp / "plan.yaml"
    plan.write_text(
        "steps:\n"
        "  - {mapping: products.yaml, input: one.xlsx, sheet: Sheet1}\n"
        "  - {mapping: contacts.yaml, input: two.xlsx, sheet: Sheet1}\n"
    )
    return plan


def retry_files(tmp: Path) -> list[Path]:
    return [Path(p) for p in json.loads((tmp / "s.json").read_text())["retry_files"]]


@pytest.mark.parametrize(
    ("products", "contacts"),
    [
        # The invalid contact is row 3, a row the products sheet has too: it used to take
        # the products row 3 in its place, under the products header.
        (4, [["ada@example.com", "Ada"], ["", "Nobody"]]),
        # The invalid contacts are rows 6 to 10, beyond the products sheet: an internal
        # error (exit 4) after both steps wrote, with no retry file.
        (4, [*[[f"c{n}@example.com", "C"] for n in range(4)],
             *[["", f"Nobody {n}"] for n in range(5)]]),
    ],
    ids=["rows-overlap", "rows-beyond"],
)  # fmt: skip
def test_sheets_of_one_name_in_two_files_get_retry_sheets_of_their_own(
    sandbox: Sandbox,
    tmp_path: Path,
    run_cli: Runner,
    products: int,
    contacts: list[list[Any]],
) -> None:
    plan = two_files(tmp_path, products, contacts)
    first = run(run_cli, sandbox, tmp_path, plan, "--summary-json", tmp_path / "s.json")
    assert first.code == 1, first.message
    (retry,) = retry_files(tmp_path)
    (recorded,) = list_plan_runs(tmp_path / "state")
    assert recorded["retry_file"] == str(retry)  # the plan journal names its files
    bad = [tuple(r) for r in contacts if not r[0]]
    assert sheet_rows(retry) == {
        "Sheet1": [("SKU", "Name", "Price")],  # no product was bad
        "Sheet1 (2)": [("Email", "First"), *bad],
    }
    assert (
        "the retry rows of two.xlsx, sheet Sheet1 (step Sheet1) are on sheet 'Sheet1 (2)' of "
        f"{retry}: to run them again, give that step `input:` the fixed workbook and "
        "`sheet: Sheet1 (2)`"
    ) in first.err

    # Fixed, and fed back as the warning says: only the fixed contacts are sent.
    book = openpyxl.load_workbook(retry)
    for n, row in enumerate(book["Sheet1 (2)"].iter_rows(min_row=2)):
        row[0].value = f"fixed{n}@example.com"
    fixed = tmp_path / "fixed.xlsx"
    book.save(fixed)
    plan.write_text(
        f"input: {fixed}\n"
        "steps:\n"
        "  - {mapping: products.yaml, sheet: Sheet1}\n"
        "  - {mapping: contacts.yaml, sheet: Sheet1 (2)}\n"
    )
    before = len(sandbox.records("contacts"))
    second = run(run_cli, sandbox, tmp_path, plan)
    assert second.code == 0, second.message
    emails = {r["properties"]["email"] for r in sandbox.records("contacts")}
    assert len(emails) == before + len(bad)
    assert {f"fixed{n}@example.com" for n in range(len(bad))} <= emails
    assert len(sandbox.records("products")) == products


def test_steps_of_one_sheet_share_its_retry_sheet(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    """Contacts and their companies from one sheet: its retry sheet holds the rows bad in
    either step, once each, under the sheet's own name; the other sheet its header alone."""
    header = ["Email", "First", "Domain", "Company"]
    people = [
        header,
        ["ada@example.com", "Ada", "ada.example", "Ada Ltd"],
        ["", "No email", "noemail.example", "No Email Ltd"],  # bad for contacts
        ["bob@example.com", "Bob", "", "No Domain Ltd"],  # bad for companies
        ["", "Neither", "", "Neither Ltd"],  # bad for both
    ]
    data = workbook(
        tmp_path / "people.xlsx",
        {"People": people, "Other": [["SKU", "Name", "Price"], ["PX1", "x", "1"]]},
    )
    write_mapping(tmp_path / "contacts.yaml", CONTACTS)
    write_mapping(tmp_path / "companies.yaml", COMPANIES)
    write_mapping(tmp_path / "products.yaml", SKU_NAME_PRICE)
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        f"input: {data}\n"
        "steps:\n"
        "  - {mapping: contacts.yaml, sheet: People}\n"
        "  - {mapping: companies.yaml, sheet: People}\n"
        "  - {mapping: products.yaml, sheet: Other}\n"
    )
    result = run(run_cli, sandbox, tmp_path, plan, "--summary-json", tmp_path / "s.json")
    assert result.code == 1, result.message
    (retry,) = retry_files(tmp_path)
    assert sheet_rows(retry) == {
        "People": [tuple(r) for r in [header, people[2], people[3], people[4]]],
        "Other": [("SKU", "Name", "Price")],
    }
    assert "the retry rows of" not in result.err  # every sheet keeps its name


def step_on(source: Path, sheet: str, bad: list[int]) -> StepResult:
    """A step of a plan that read `sheet` of `source`, its rows `bad` invalid."""
    frame = pd.DataFrame({"A": ["x"] * 5}, index=range(2, 7))
    status = ["invalid" if row in bad else "created" for row in frame.index]
    table = Table(frame=frame, source=source, sheet=sheet, letters={"A": "A"})
    step = SimpleNamespace(
        name=sheet, table=table, outcome=pd.DataFrame({"status": status}, index=frame.index)
    )
    return cast(StepResult, step)


def test_retry_sheet_titles_are_unique_excel_names(tmp_path: Path) -> None:
    """A sheet keeps its own name, even one that looks numbered; the others are numbered
    past every name taken, whatever the case, cut to Excel's 31 characters."""
    long = "A sheet name of thirty-one char"
    steps = [
        step_on(tmp_path / "a.xlsx", long, [2]),
        step_on(tmp_path / "b.xlsx", long.upper(), [3]),
        step_on(tmp_path / "a.xlsx", "Sheet1", [4]),
        step_on(tmp_path / "b.xlsx", "sheet1", []),
        step_on(tmp_path / "c.xlsx", "Sheet1 (2)", [5]),
        step_on(tmp_path / "sub" / ".." / "a.xlsx", long, [6]),  # the first file again
    ]
    sheets = _retry_sheets(steps)
    assert [(s.title, sorted(s.rows)) for s in sheets] == [
        (long, [2, 6]),
        ("A SHEET NAME OF THIRTY-ONE (2)", [3]),
        ("Sheet1", [4]),
        ("sheet1 (3)", []),
        ("Sheet1 (2)", [5]),
    ]
