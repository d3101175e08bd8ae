"""CSV files as people really make them: ragged rows, trailing delimiters, blank and title lines
above the header, classic Mac line endings, UTF-16 and -32, and workbooks named .csv."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from importer.sandbox import Sandbox
from importer.sheets.load import load_table

from .conftest import CliRun, read_sheet, write_mapping, write_xlsx

Runner = Callable[..., CliRun]
TEXT_MAPPING = """\
object_type: contacts
key: Email
columns:
  Email: email
  Name: firstname
  City: city
"""
HEADER = "Email,Name,City"
ROWS = ["a@example.com,Ann,Oslo", "b@example.com,Bob,Rome", "c@example.com,Cy,Lima"]


def run(run_cli: Runner, box: Sandbox, tmp_path: Path, data: Path) -> CliRun:
    return run_cli(
        "run", "-m", write_mapping(tmp_path / "m.yaml", TEXT_MAPPING), data,
        "--base-url", box.url, "--out", tmp_path / "out.xlsx",
    )  # fmt: skip


def held(box: Sandbox) -> dict[str, tuple[str, str]]:
    return {
        r["properties"]["email"]: (r["properties"].get("firstname"), r["properties"].get("city"))
        for r in box.records("contacts")
        if int(r["id"]) > 1020  # not the seeded contacts
    }


@pytest.mark.parametrize("at", [0, 1], ids=["first-data-row", "second-data-row"])
def test_a_row_with_an_extra_cell_is_that_rows_problem(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, at: int
) -> None:
    rows = list(ROWS)
    rows[at] = rows[at].replace("Ann", "Smith, Ann").replace("Bob", "Smith, Bob")
    data = tmp_path / "c.csv"
    data.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    result = run(run_cli, sandbox, tmp_path, data)
    assert result.code == 1
    bad = at + 2
    assert f"c.csv, cell D{bad} (beyond the header): the row has more cells than the header" in (
        result.err
    )
    sheet = read_sheet(tmp_path / "out.xlsx")
    assert [r["Email"] for r in sheet] == ["a@example.com", "b@example.com", "c@example.com"]
    assert sheet[at]["status"] == "invalid"
    good = [r for i, r in enumerate(sheet) if i != at]
    assert {r["status"] for r in good} == {"created"}
    # Nothing was written with values the sheet did not hold in those cells.
    expected = {"a@example.com": ("Ann", "Oslo"), "b@example.com": ("Bob", "Rome"),
                "c@example.com": ("Cy", "Lima")}  # fmt: skip
    assert held(sandbox) == {k: v for k, v in expected.items() if k != sheet[at]["Email"]}


@pytest.mark.parametrize(
    "text",
    [
        HEADER + "\n" + "\n".join(r + "," for r in ROWS) + "\n",
        HEADER + ",\n" + "\n".join(r + "," for r in ROWS) + "\n",
        "\n\n" + HEADER + "\n" + "\n".join(ROWS) + "\n",
        (HEADER + "\r" + "\r".join(ROWS) + "\r"),
    ],
    ids=["trailing-delimiter", "trailing-delimiter-and-header", "blank-lines-above", "cr-only"],
)
def test_shapes_that_hold_the_same_rows_import_the_same(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, text: str
) -> None:
    data = tmp_path / "c.csv"
    data.write_bytes(text.encode("utf-8"))
    result = run(run_cli, sandbox, tmp_path, data)
    assert result.code == 0, result.err
    assert held(sandbox) == {
        "a@example.com": ("Ann", "Oslo"),
        "b@example.com": ("Bob", "Rome"),
        "c@example.com": ("Cy", "Lima"),
    }


def test_rows_keep_their_numbers_below_blank_lines(tmp_path: Path) -> None:
    data = tmp_path / "c.csv"
    data.write_text("\n\n" + HEADER + "\n" + "\n".join(ROWS) + "\n", encoding="utf-8")
    table = load_table(data)
    assert table.header_row == 3
    assert list(table.frame.index) == [4, 5, 6]


def test_a_title_above_the_header_is_skipped_and_named(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    data = tmp_path / "c.csv"
    data.write_text("Contacts export 2026-11-30\n" + HEADER + "\n" + "\n".join(ROWS) + "\n")
    result = run(run_cli, sandbox, tmp_path, data)
    assert result.code == 0, result.err
    assert (
        'c.csv: took row 2 as the header (row 1 looks like a title or notes: "Contacts export '
        '2026-11-30"); give --header-row N (or header_row: in the mapping) to choose another'
    ) in result.err
    assert held(sandbox) == {
        "a@example.com": ("Ann", "Oslo"),
        "b@example.com": ("Bob", "Rome"),
        "c@example.com": ("Cy", "Lima"),
    }


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [
        ("utf-16", b""),  # Python writes the BOM itself
        ("utf-16-le", b""),  # no BOM: told by its NUL bytes
        ("utf-16-be", b""),
        ("utf-32", b""),
        ("utf-8", b"\xef\xbb\xbf"),
    ],
    ids=["utf-16-bom", "utf-16le-no-bom", "utf-16be-no-bom", "utf-32-bom", "utf-8-bom"],
)
def test_unicode_encodings_are_told_by_their_bytes(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, encoding: str, bom: bytes
) -> None:
    rows = [*ROWS[:2], "c@example.com,Zoë,Łódź"]
    data = tmp_path / "c.csv"
    data.write_bytes(bom + ("\r\n".join([HEADER, *rows]) + "\r\n").encode(encoding))
    result = run(run_cli, sandbox, tmp_path, data)
    assert result.code == 0, result.err
    assert held(sandbox)["c@example.com"] == ("Zoë", "Łódź")


def test_a_workbook_named_csv_is_called_a_workbook(run_cli: Runner, tmp_path: Path) -> None:
    book = write_xlsx(tmp_path / "c.xlsx", [["Email"], ["a@example.com"]])
    data = book.rename(tmp_path / "contacts.csv")
    result = run_cli("check", "-m", write_mapping(tmp_path / "m.yaml", TEXT_MAPPING), data)
    assert result.code == 2
    assert "this is an Excel workbook, not a text file" in result.message
    assert "rename it to end in .xlsx" in result.message
    assert "--encoding" not in result.message


def test_a_hidden_first_sheet_is_never_picked_by_default(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    lookups = book.active
    lookups.title, lookups.sheet_state = "Lookups", "hidden"
    lookups.append(["Email", "Name", "City"])
    lookups.append(["hidden@example.com", "Hid", "Nowhere"])
    data = book.create_sheet("Contacts")
    data.append(["Email", "Name", "City"])
    data.append(["a@example.com", "Ann", "Oslo"])
    book.save(tmp_path / "c.xlsx")
    result = run(run_cli, sandbox, tmp_path, tmp_path / "c.xlsx")
    assert result.code == 0, result.err
    assert "read sheet 'Contacts' of c.xlsx (give --sheet to read another)" in result.err
    assert held(sandbox) == {"a@example.com": ("Ann", "Oslo")}


def test_a_blank_header_beside_a_header_named_like_it_keeps_both(tmp_path: Path) -> None:
    data = tmp_path / "c.csv"
    data.write_text("Name,,Column B\nAnn,stray,real\n", encoding="utf-8")
    table = load_table(data)
    assert table.columns == ["Name", "Column B (B)", "Column B"]
    assert table.frame.loc[2, "Column B"] == "real"
    assert table.frame.loc[2, "Column B (B)"] == "stray"


def test_excel_error_cells_and_unsaved_formulas_are_named_not_taken_as_empty(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Contacts"
    sheet.append(["Email", "Name", "City"])
    sheet.append(["a@example.com", "Ann", "Oslo"])
    sheet.append(["b@example.com", "Bob", None])
    sheet.append(["c@example.com", "Cy", '=UPPER("lima")'])  # written by a program: no value
    sheet.append(["d@example.com", "Di", None])
    sheet["C3"].value, sheet["C3"].data_type = "#VALUE!", "e"  # an optional column
    sheet["B5"].value, sheet["B5"].data_type = "#N/A", "e"
    book.save(tmp_path / "c.xlsx")
    result = run(run_cli, sandbox, tmp_path, tmp_path / "c.xlsx")
    assert result.code == 1
    assert "cell C3 (City): the cell holds the Excel error #VALUE!" in result.err
    assert "cell C4 (City): the cell holds a formula without a saved value" in result.err
    assert "open the file in Excel and save it" in result.err
    assert "cell B5 (Name): the cell holds the Excel error #N/A" in result.err
    statuses = [r["status"] for r in read_sheet(tmp_path / "out.xlsx")]
    assert statuses == ["created", "invalid", "invalid", "invalid"]
    assert held(sandbox) == {"a@example.com": ("Ann", "Oslo")}


def test_numbers_formatted_with_zero_padding_read_as_excel_shows_them(tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["SKU", "Part", "Count"])
    sheet.append([421, 123456, 7])
    sheet.append([12345678, 42, 8])
    for cell in sheet["A"][1:]:
        cell.number_format = "00000"
    for cell in sheet["B"][1:]:
        cell.number_format = "000-000"
    book.save(tmp_path / "c.xlsx")
    frame = load_table(tmp_path / "c.xlsx").frame
    assert frame["SKU"].tolist() == ["00421", "12345678"]
    assert frame["Part"].tolist() == ["123-456", "000-042"]
    assert frame["Count"].tolist() == ["7", "8"]  # a plain number stays as it is


def test_a_stray_cell_at_the_end_of_the_sheet_is_read_without_the_grid(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Email", "Name", "City"])
    sheet.append(["a@example.com", "Ann", "Oslo"])
    sheet.append(["b@example.com", 421, "Bergen"])
    sheet["B3"].number_format = "00000"
    sheet["C4"] = "#N/A"
    sheet["C4"].data_type = "e"
    sheet["XFD1048576"] = "stray"
    book.save(tmp_path / "c.xlsx")
    # Read cell by cell: calamine would reserve the whole grid (512 GB) and abort.
    result = run_cli("check", "-m", write_mapping(tmp_path / "m.yaml", TEXT_MAPPING),
                     tmp_path / "c.xlsx", "--base-url", sandbox.url,
                     "--out", tmp_path / "r.xlsx")  # fmt: skip
    assert result.code == 1, result.message
    assert "the used range reaches XFD1048576" in caplog.text
    assert "Ctrl+End in Excel finds it" in caplog.text
    rows = {r["source_row"]: r for r in read_sheet(tmp_path / "r.xlsx")}
    assert sorted(rows) == [2, 3, 4, 1048576]  # the stray cell's row is there, not lost
    assert rows[2]["status"] == "would_create"
    assert rows[3]["Name"] == "00421"  # as Excel shows it
    assert rows[4]["status"] == "invalid"
    assert "#N/A" in rows[4]["message"]
    assert rows[1048576]["Column XFD"] == "stray"
    # No mapped cell of its row holds a value: it is no record, and is skipped, never sent.
    assert rows[1048576]["status"] == "skipped"
    assert rows[1048576]["message"] == "skipped: empty (no mapped cell holds a value)"


def test_an_empty_cell_of_merged_cells_says_where_the_value_is(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Email", "Name", "City"])
    sheet.append(["a@example.com", "Ann", "Oslo"])
    sheet.append([None, "Bob", "Rome"])
    sheet.merge_cells("A2:A3")  # one email for two rows, as a person lays it out
    book.save(tmp_path / "c.xlsx")
    result = run(run_cli, sandbox, tmp_path, tmp_path / "c.xlsx")
    assert result.code == 1
    assert (
        "cell A3 (Email): the cell is part of the merged cells A2:A3, whose value Excel keeps in "
        "A2 only; unmerge the cells and fill each one, then save"
    ) in result.err


def test_a_stray_cell_in_a_sheet_without_a_used_range_is_found_in_the_xml(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Excel always writes a sheet's <dimension>; other writers (openpyxl's write-only mode)
    do not, and calamine would then size its grid from the farthest cell alone."""
    import zipfile

    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Data")
    sheet.append(["SKU", "Name"])
    for i in range(3):
        sheet.append([f"{i:05d}", f"Product {i}"])
    book.save(tmp_path / "plain.xlsx")
    with (
        zipfile.ZipFile(tmp_path / "plain.xlsx") as src,
        zipfile.ZipFile(tmp_path / "stray.xlsx", "w", zipfile.ZIP_DEFLATED) as out,
    ):
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.startswith("xl/worksheets/"):
                assert b"<dimension" not in data
                data = data.replace(
                    b"</sheetData>",
                    b'<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c>'
                    b"</row></sheetData>",
                )
            out.writestr(item, data)
    table = load_table(tmp_path / "stray.xlsx")
    assert "the used range reaches XFD1048576" in caplog.text
    assert table.frame["SKU"].tolist()[:3] == ["00000", "00001", "00002"]
    assert table.frame.loc[1048576, "Column XFD"] == "x"
    # The same sheet without the stray cell is read as a grid, with no warning.
    caplog.clear()
    assert len(load_table(tmp_path / "plain.xlsx").frame) == 3
    assert "used range" not in caplog.text


@pytest.mark.parametrize(
    ("raw", "bom", "newline"),
    [(b"", False, b"\n"), (b"\xef\xbb\xbf", True, b"\r\n"), (b"", False, b"\r")],
)
def test_the_retry_csv_is_written_as_the_input_was(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, raw: bytes, bom: bool, newline: bytes
) -> None:
    lines = [b"SKU;Name;Price", b"0001;Mug;5", b"0002;Cup;not a price"]
    data = tmp_path / "in.csv"
    data.write_bytes(raw + newline.join(lines) + newline)
    mapping = write_mapping(
        tmp_path / "m.yaml",
        "object_type: products\nkey: SKU\ncolumns:\n  SKU: hs_sku\n  Name: name\n"
        "  Price: {property: price, type: number}\n",
    )
    result = run_cli("run", "-m", mapping, data, "--base-url", sandbox.url,
                     "--state-dir", tmp_path / "state", "--out", tmp_path / "out.xlsx")  # fmt: skip
    assert result.code == 1
    (retry,) = tmp_path.glob("in-retry-*.csv")
    written = retry.read_bytes()
    assert written.startswith(b"\xef\xbb\xbf") is bom
    assert written.removeprefix(b"\xef\xbb\xbf") == newline.join([lines[0], lines[2]]) + newline


def test_a_retry_file_keeps_a_rows_extra_cells_and_the_header_row(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    data = tmp_path / "in.csv"
    data.write_text(
        "Catalogue export 2026-12-01\n\nSKU,Name,Price,Description\nEX-001,Mug,5,Stoneware\n"
        "EX-002,Kanne,12,50,Glas\n",
        encoding="utf-8",
    )
    mapping = write_mapping(
        tmp_path / "m.yaml",
        "object_type: products\nkey: SKU\nheader_row: 3\ncolumns:\n  SKU: hs_sku\n  Name: name\n"
        "  Price: {property: price, type: number}\n  Description: description\n",
    )
    target = ("--base-url", sandbox.url, "--state-dir", tmp_path / "state")
    result = run_cli("run", "-m", mapping, data, *target, "--out", tmp_path / "1.xlsx")
    assert result.code == 1
    (retry,) = tmp_path.glob("in-retry-*.csv")
    assert retry.read_text(encoding="utf-8").splitlines() == [
        "", "", "SKU,Name,Price,Description", "EX-002,Kanne,12,50,Glas",
    ]  # fmt: skip
    # Fed back as it is, the row is still too long: invalid again, never created cut short.
    again = run_cli("run", "-m", mapping, retry, *target, "--out", tmp_path / "2.xlsx")
    assert again.code == 1
    assert [r["status"] for r in read_sheet(tmp_path / "2.xlsx")] == ["invalid"]
    assert "EX-002" not in {r["properties"].get("hs_sku") for r in sandbox.records("products")}
