"""Validation: each bad cell becomes an issue (cell, value, problem, hint); good rows convert."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from importer import Problem, Validated, load_table, parse_mapping, validate
from importer.core.text import arrow

from .conftest import write_csv, write_xlsx


def check(
    tmp_path: Path, columns: dict[str, Any], rows: list[list[str]], **extra: Any
) -> Validated:
    header = list(columns) + [a["column"] for a in extra.get("associations", [])]
    path = write_csv(tmp_path / "in.csv", [header, *rows])
    mapping = parse_mapping({"object_type": "products", "columns": columns, **extra})
    return validate(load_table(path), mapping)


@pytest.mark.parametrize(
    ("spec", "value", "problem", "message", "hint"),
    [
        (
            {"property": "p", "type": "number"},
            "12,50",
            Problem.NOT_A_NUMBER,
            '"12,50" is not a number',
            'use a dot as decimal separator, or say number: {decimal: ","} in the mapping',
        ),
        (
            {"property": "p", "type": "number"},
            "1,234.50",
            Problem.NOT_A_NUMBER,
            '"1,234.50" is not a number',
            'remove the thousands separators, or say number: {thousands: ","}',
        ),
        (
            {"property": "p", "type": "number"},
            "€12",
            Problem.NOT_A_NUMBER,
            '"€12" is not a number',
            "remove the currency symbol, unit or percent sign; write the bare number (a "
            "mapping with number: or currency: reads symbols and percents)",
        ),
        (
            {"property": "p", "type": "bool"},
            "maybe",
            Problem.NOT_A_BOOL,
            '"maybe" is not a yes/no value',
            "write true or false (yes/no and 1/0 work too)",
        ),
        (
            {"property": "p", "type": "date"},
            "2026-02-30",
            Problem.NOT_A_DATE,
            '"2026-02-30" is not a date',
            "write it as 2026-11-23 (format %Y-%m-%d) or use a date cell",
        ),
        (
            {"property": "p", "type": "date", "format": "%d/%m/%Y"},
            "11/23/2026",
            Problem.NOT_A_DATE,
            '"11/23/2026" is not a date',
            "write it as 23/11/2026 (format %d/%m/%Y) or use a date cell",
        ),
        (
            {"property": "p", "type": "datetime"},
            "yesterday",
            Problem.NOT_A_DATETIME,
            '"yesterday" is not a date and time',
            "write it as ISO 8601, e.g. 2026-11-23 14:30",
        ),
        (
            {"property": "p", "type": "enumeration", "options": ["inventory", "service"]},
            "servce",
            Problem.NOT_AN_OPTION,
            '"servce" is not an allowed value',
            "use one of: service, inventory",
        ),
        (
            {"property": "p", "required": True},
            "  ",
            Problem.REQUIRED,
            "the cell is empty but the mapping requires a value",
            "fill it in",
        ),
    ],
    ids=[
        "comma-decimal",
        "thousands",
        "currency",
        "bool",
        "impossible-date",
        "us-date-for-eu-format",
        "datetime",
        "option-typo",
        "required",
    ],
)
def test_bad_cell(
    tmp_path: Path, spec: dict[str, Any], value: str, problem: Problem, message: str, hint: str
) -> None:
    result = check(
        tmp_path,
        {"Key": "k", "Cell": spec},
        [["1", "ok"], ["2", value]] if problem is Problem.REQUIRED else [["2", value]],
    )
    (issue,) = result.issues
    assert (issue.row, issue.column, issue.cell, issue.value) == (
        3 if problem is Problem.REQUIRED else 2,
        "Cell",
        issue.cell,
        value,
    )
    assert (issue.problem, issue.message, issue.hint) == (problem, message, hint)
    assert issue.row in result.invalid_rows
    assert issue.row not in result.values.index


def test_issue_describes_the_cell_as_the_style_guide_shows(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "products.xlsx",
        [["SKU", "Name", "Size", "Price"], *[["1", "a", "M", "1"]] * 12, ["13", "b", "L", "12,50"]],
        sheet="Catalogue",
    )
    mapping = parse_mapping(
        {"object_type": "products", "columns": {"Price": {"property": "price", "type": "number"}}}
    )
    (issue,) = validate(load_table(path), mapping).issues
    assert issue.cell == "Catalogue!D14"
    assert issue.describe("products.xlsx, sheet Catalogue") == (
        'products.xlsx, sheet Catalogue, cell D14 (Price): "12,50" is not a number; use a dot '
        'as decimal separator, or say number: {decimal: ","} in the mapping'
    )


def test_every_bad_cell_of_every_row_is_reported(tmp_path: Path) -> None:
    result = check(
        tmp_path,
        {"A": {"property": "a", "type": "number"}, "B": {"property": "b", "type": "bool"}},
        [["x", "maybe"], ["1", "true"], ["2", "nope"]],
    )
    assert [(i.row, i.column, i.problem) for i in result.issues] == [
        (2, "A", Problem.NOT_A_NUMBER),
        (2, "B", Problem.NOT_A_BOOL),
        (4, "B", Problem.NOT_A_BOOL),
    ]
    assert list(result.values.index) == [3]


def test_duplicate_keys_name_the_other_rows(tmp_path: Path) -> None:
    result = check(tmp_path, {"SKU": "hs_sku"}, [["001"], ["002"], ["001"], [" 001 "]], key="SKU")
    assert [(i.row, i.message) for i in result.issues] == [
        (r, 'key "001" appears in more than one row (rows 2, 4, 5)') for r in (2, 4, 5)
    ]
    assert all(i.problem is Problem.DUPLICATE_KEY for i in result.issues)
    assert list(result.values.index) == [3]


@pytest.mark.parametrize(
    ("object_type", "prop", "cells", "repeated"),
    [
        ("contacts", "email", ["anna@x.com", "Anna@X.com ", "bo@x.com"], [2, 3]),
        ("products", "hs_sku", ["Caf\u00e9-1", "Cafe\u0301-1", "Cafe-1"], [2, 3]),
        ("contacts", "email", ["j\u00f6rg@x.de", "JO\u0308RG@x.de", "jorg@x.de"], [2, 3]),
        ("products", "hs_sku", ["ab-1", "AB-1", "Ab-1"], []),
    ],
    ids=["email-case", "sku-nfc-nfd", "email-case-and-nfd", "sku-case-counts"],
)
def test_duplicate_keys_are_the_keys_hubspot_would_take_for_one(
    tmp_path: Path, object_type: str, prop: str, cells: list[str], repeated: list[int]
) -> None:
    # HubSpot holds emails without regard to case, and text in one Unicode form: two such
    # cells are one record, so they would overwrite each other (or make two records where a
    # second run looks the first up). A SKU's case counts.
    path = write_csv(tmp_path / "in.csv", [["Key"], *[[c] for c in cells]])
    mapping = parse_mapping({"object_type": object_type, "key": "Key", "columns": {"Key": prop}})
    result = validate(load_table(path), mapping)
    assert sorted({i.row for i in result.issues}) == repeated
    assert all(i.problem is Problem.DUPLICATE_KEY for i in result.issues)
    if repeated:
        assert "appears in more than one row (rows 2, 3)" in result.issues[0].message


def test_key_is_required(tmp_path: Path) -> None:
    result = check(tmp_path, {"SKU": "hs_sku", "N": "name"}, [["", "a"]], key="SKU")
    assert [i.problem for i in result.issues] == [Problem.REQUIRED]


def test_too_long_text(tmp_path: Path) -> None:
    result = check(tmp_path, {"D": "description"}, [["x" * 65_537], ["y" * 65_536]])
    (issue,) = result.issues
    assert issue.problem is Problem.TOO_LONG
    assert issue.message == "the text is 65,537 characters long"


def test_association_ids_must_be_numbers(tmp_path: Path) -> None:
    assoc = {
        "column": "Contacts",
        "to": "contacts",
        "types": [{"associationCategory": "USER_DEFINED", "associationTypeId": 12}],
    }
    result = check(
        tmp_path, {"A": "a"}, [["1", "12;abc"], ["2", "5; 6 ;5;"], ["3", ""]], associations=[assoc]
    )
    (issue,) = result.issues
    assert (issue.row, issue.problem, issue.message, issue.hint) == (
        2,
        Problem.NOT_A_RECORD_ID,
        '"abc" is not a record id',
        'give HubSpot record ids (numbers such as 12345), separated by ";"',
    )
    assert result.associations["Contacts"] == [["5", "6"], []]


def test_values_are_converted_to_what_hubspot_expects(tmp_path: Path) -> None:
    result = check(
        tmp_path,
        {
            "Price": {"property": "price", "type": "number"},
            "Paid": {"property": "paid", "type": "bool"},
            "Day": {"property": "day", "type": "date", "format": "%d/%m/%Y"},
            "At": {"property": "at", "type": "datetime", "timezone": "Europe/Paris"},
            "Kind": {"property": "kind", "type": "enumeration", "options": ["Service", "Goods"]},
            "Name": "name",
        },
        [
            ["+12.50", "Yes", "23/11/2026", "2026-11-23 14:30", "service", "  Hoodie "],
            ["1e3", "FALSE", "2026-11-24", "2026-07-01T10:00:00Z", "GOODS", ""],
            ["", "", "", "", "", "x"],
        ],
    )
    assert not result.issues
    assert result.values.to_dict("records") == [
        {
            "price": "12.50",
            "paid": "true",
            "day": "2026-11-23",
            "at": "2026-11-23T13:30:00Z",
            "kind": "Service",
            "name": "Hoodie",
        },
        {
            "price": "1000",
            "paid": "false",
            "day": "2026-11-24",
            "at": "2026-07-01T10:00:00Z",
            "kind": "Goods",
            "name": "",
        },
        {"price": "", "paid": "", "day": "", "at": "", "kind": "", "name": "x"},
    ]


def test_a_sheet_read_in_many_chunks_reports_the_right_rows(tmp_path: Path) -> None:
    """Arrow reads a large CSV in blocks; values checked once per distinct value must still
    land on their own rows, whichever block holds them."""
    rows = [["SKU", "Type", "In stock"]]
    rows += [[f"{i:06d}", "inventory", "yes"] for i in range(60_000)]
    rows[45_001][1] = "servce"  # sheet row 45002, in a later block
    rows[59_000][2] = "maybe"
    table = load_table(write_csv(tmp_path / "big.csv", rows))
    assert arrow(table.frame["Type"]).num_chunks > 1  # Arrow reads 1 MB blocks
    mapping = parse_mapping(
        {
            "object_type": "products",
            "key": "SKU",
            "columns": {
                "SKU": "hs_sku",
                "Type": {
                    "property": "hs_product_type",
                    "type": "enumeration",
                    "options": ["inventory", "service"],
                },
                "In stock": {"property": "in_stock", "type": "bool"},
            },
        }
    )
    result = validate(table, mapping)
    assert [(i.row, i.column, i.problem) for i in result.issues] == [
        (45_002, "Type", Problem.NOT_AN_OPTION),
        (59_001, "In stock", Problem.NOT_A_BOOL),
    ]
    assert len(result.values) == 59_998
    assert set(result.values["in_stock"]) == {"true"}
