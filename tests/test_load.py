"""Loader: every cell as text, rows numbered as the sheet shows them, clear errors."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import pytest

from importer import InputFileError, load_table
from importer.sheets.load import column_letter

from .conftest import write_csv, write_xlsx


@pytest.mark.parametrize(
    "delimiter", [",", ";", "\t", "|"], ids=["comma", "semicolon", "tab", "pipe"]
)
def test_csv_delimiter_is_sniffed(tmp_path: Path, delimiter: str) -> None:
    path = write_csv(
        tmp_path / "p.csv",
        [["SKU", "Name", "Price"], ["007", "A, b", "1.5"], ["008", "C", "2"]],
        delimiter=delimiter,
    )
    table = load_table(path)
    assert table.columns == ["SKU", "Name", "Price"]
    assert table.frame.loc[2].tolist() == ["007", "A, b", "1.5"]


def test_csv_keeps_leading_zeros_and_text(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", [["SKU", "Qty", "Flag"], ["00420", "12.0", "NA"]])
    frame = load_table(path).frame
    assert frame.loc[2].tolist() == ["00420", "12.0", "NA"]  # nothing parsed, nothing lost


def test_csv_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes("\ufeffSKU,Name\n001,Café\n".encode())
    table = load_table(path)
    assert table.columns == ["SKU", "Name"]
    assert table.frame.loc[2, "Name"] == "Café"


def test_csv_undecodable_bytes_name_the_encoding_to_try(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes("SKU,Name\n001,Café\n".encode("cp1252"))
    with pytest.raises(InputFileError) as err:
        load_table(path)
    assert "byte 0xe9 at position 16 is not valid utf-8-sig" in str(err.value)
    assert "--encoding cp1252" in str(err.value)
    assert load_table(path, encoding="cp1252").frame.loc[2, "Name"] == "Café"


def test_csv_unknown_encoding(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", [["a"], ["1"]])
    with pytest.raises(InputFileError, match="unknown encoding 'klingon'"):
        load_table(path, encoding="klingon")


def test_rows_are_numbered_as_in_the_sheet(tmp_path: Path) -> None:
    # A quoted cell spanning lines is one row in Excel; blank lines are skipped but counted.
    path = tmp_path / "p.csv"
    path.write_text('SKU,Note\n1,"two\nlines"\n\n3,x\n,\n,\n', encoding="utf-8")
    frame = load_table(path).frame
    assert list(frame.index) == [2, 4]
    assert frame.loc[2, "Note"] == "two\nlines"


def test_rows_of_only_spaces_are_blank_but_a_row_with_one_value_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("SKU,Name,Note\n1,a,\n  , \t,\n , ,x\n,,\n4,d,\n", encoding="utf-8")
    frame = load_table(path).frame
    assert list(frame.index) == [2, 4, 6]
    assert frame.loc[4, "Note"] == "x"


def test_blank_trailing_columns_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("SKU,Name,,\n1,a,,\n2,b,,\n", encoding="utf-8")
    assert load_table(path).columns == ["SKU", "Name"]


def test_blank_header_with_data_gets_excel_name(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("SKU,,Name\n1,x,a\n", encoding="utf-8")
    assert load_table(path).columns == ["SKU", "Column B", "Name"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"SKU,Name\n", "the header row is there but no data rows follow"),
        (b"SKU,Name\n,\n", "the header row is there but no data rows follow"),
    ],
    ids=["empty", "header-only", "header-and-blank-rows"],
)
def test_csv_bad_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(InputFileError, match=message) as err:
        load_table(path)
    assert str(path) in str(err.value)


def test_repeated_headers_are_kept_apart_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("SKU,Name,SKU,Name,Name\n1,a,2,b,c\n", encoding="utf-8")
    table = load_table(path)
    assert table.columns == ["SKU", "Name", "SKU (C)", "Name (D)", "Name (E)"]
    assert table.duplicate_headers == {"SKU": ("A1", "C1"), "Name": ("B1", "D1", "E1")}
    assert table.frame.loc[2].tolist() == ["1", "a", "2", "b", "c"]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no such file"):
        load_table(tmp_path / "nope.csv")


def test_xlsx_cells_read_as_the_user_sees_them(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "p.xlsx",
        [
            ["SKU", "Qty", "Price", "Date", "When", "Flag", "Big", "Small"],
            [
                "00420",
                12,
                12.5,
                dt.date(2026, 11, 23),
                dt.datetime(2026, 11, 23, 10, 30),
                True,
                1e20,
                0.1,
            ],
        ],
    )
    frame = load_table(path).frame
    assert frame.loc[2].tolist() == [
        "00420",
        "12",
        "12.5",
        "2026-11-23",
        "2026-11-23 10:30:00",
        "TRUE",
        "100000000000000000000",
        "0.1",
    ]


def test_xlsx_first_sheet_by_default_and_choice_by_name_or_number(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "p.xlsx", [["A"], ["1"]], sheet="Catalogue", extra_sheets=["Notes"]
    )
    assert load_table(path).sheet == "Catalogue"
    assert load_table(path, sheet="catalogue").sheet == "Catalogue"
    with pytest.raises(InputFileError, match="sheet Notes: the sheet is empty"):
        load_table(path, sheet="2")


def test_xlsx_unknown_sheet_lists_the_sheets(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "p.xlsx", [["A"], ["1"]], sheet="Catalogue", extra_sheets=["Notes"]
    )
    with pytest.raises(InputFileError) as err:
        load_table(path, sheet="Products")
    assert str(err.value) == (
        f"{path}: no sheet named 'Products'. The workbook has: 'Catalogue', 'Notes'."
    )


def test_xlsx_header_below_blank_rows_keeps_excel_row_numbers(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "p.xlsx", [[None], [None], ["SKU", "Name"], ["1", "a"], [None, None], ["2", "b"]]
    )
    table = load_table(path)
    assert list(table.frame.index) == [4, 6]
    assert table.cell_ref(6, "Name") == "Sheet1!B6"


def test_corrupt_workbook(tmp_path: Path) -> None:
    path = tmp_path / "p.xlsx"
    path.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(InputFileError, match="cannot be read as an Excel workbook"):
        load_table(path)


def test_xlsx_that_is_really_a_zip_of_something_else(tmp_path: Path) -> None:
    path = tmp_path / "p.xlsx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(InputFileError, match=r"save it again as \.xlsx"):
        load_table(path)


def test_password_protected_workbook(tmp_path: Path) -> None:
    path = tmp_path / "secret.xlsx"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504)
    with pytest.raises(InputFileError, match="password-protected"):
        load_table(path)


def test_sheet_option_on_csv_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", [["a"], ["1"]])
    with pytest.raises(InputFileError, match="--sheet applies to Excel workbooks only"):
        load_table(path, sheet="x")


@pytest.mark.parametrize(
    ("index", "letter"), [(0, "A"), (25, "Z"), (26, "AA"), (701, "ZZ"), (702, "AAA")]
)
def test_column_letter(index: int, letter: str) -> None:
    assert column_letter(index) == letter


def test_arrow_read_keeps_text_numbering_and_quoted_newlines(tmp_path: Path) -> None:
    """The fast CSV path: a numeric header stays a name, numbers stay text as written, a blank
    line keeps the numbering of the rows after it, and a quoted cell may span lines."""
    path = tmp_path / "p.csv"
    path.write_text('2024,Price,Note\n007,1.50,"two\nlines"\n\n008,,x\n', encoding="utf-8")
    table = load_table(path)
    assert table.columns == ["2024", "Price", "Note"]
    assert table.frame.index.tolist() == [2, 4]
    assert table.frame.loc[2].tolist() == ["007", "1.50", "two\nlines"]
    assert table.frame.loc[4].tolist() == ["008", "", "x"]


def test_ragged_csv_is_read_the_careful_way(tmp_path: Path) -> None:
    """Arrow refuses a row with fewer cells than the header; pandas pads it, as before."""
    path = tmp_path / "p.csv"
    path.write_text("SKU,Price,Note\n007,1.50\n008,2,x\n", encoding="utf-8")
    table = load_table(path)
    assert table.frame.loc[2].tolist() == ["007", "1.50", ""]
    assert table.frame.loc[3].tolist() == ["008", "2", "x"]


def test_a_column_of_numbers_reads_as_each_number_alone_would() -> None:
    """The column-at-once conversion (Arrow, in C) gives the text the per-cell one gives:
    12 not 12.0, no exponent, -0 as 0, 16-digit whole numbers exact."""
    import random

    from importer.sheets.excel_text import _float_text, _floats_text

    rng = random.Random(20261202)
    edges = [0.0, -0.0, 0.1, 1 / 3, 1e-5, 5e-324, 1.7976931348623157e308, 9999999999999998.0,
             1e16, -1e16, 1e15 + 0.5, 4006381333931.0, 12.5, 1e21, 123456789.123]  # fmt: skip
    values = edges + [
        rng.choice(
            [
                round(rng.uniform(-1e4, 1e4), rng.randrange(0, 6)),
                rng.uniform(-1, 1) * 10 ** rng.randrange(-20, 25),
                float(rng.randrange(-(10**17), 10**17)),
                rng.randrange(0, 10**6) / 100,
            ]
        )
        for _ in range(40_000)
    ]
    assert _floats_text(values).to_pylist() == [_float_text(v) for v in values]
