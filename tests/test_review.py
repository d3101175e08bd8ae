"""The morning review: workbook design read back, retry file, formula safety, history and undo."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest

import importer.sheets.results
import importer.sheets.results_sheet
from importer.history.runs import list_runs
from importer.sandbox import Sandbox
from importer.sandbox.portal import PropertyDef

from .conftest import CliRun, read_sheet, write_csv, write_mapping, write_xlsx

Runner = Callable[..., CliRun]

MAPPING = """\
object_type: products
key: SKU
columns:
  SKU: {property: hs_sku, required: true}
  Name: name
  Price: {property: price, type: number}
  Note: description
"""


MIXED_MAPPING = MAPPING.replace("Note: description", "Note: gtin")
"""`gtin` holds unique values: a record that already has row 5's is another record (a CONFLICT
on the key itself would be adopted, not refused)."""


def mixed(tmp_path: Path) -> Path:
    """Rows that end created, invalid (bad price) and failed (a GTIN another record holds)."""
    return write_csv(
        tmp_path / "products.csv",
        [
            ["SKU", "Name", "Price", "Note"],
            ["00001", "Hoodie", "45", '=HYPERLINK("http://evil")'],
            ["00002", "Mug", "12,50", "+1"],
            ["00003", "Cap", "9", "-2"],
            ["00004", "Scarf", "7", "@SUM(A1)"],
        ],
        delimiter=";",
    )


def run_mixed(run_cli: Runner, sandbox: Sandbox, tmp_path: Path, *extra: str) -> CliRun:
    # Another record already holds row 00004's GTIN, so HubSpot refuses that row (CONFLICT).
    sandbox.portal.add_property("products", PropertyDef(name="gtin", label="GTIN", unique=True))
    sandbox.store.create_many("products", [({"hs_sku": "09999", "gtin": "@SUM(A1)"}, [])])
    return run_cli(
        "run",
        "-m",
        write_mapping(tmp_path / "m.yaml", MIXED_MAPPING),
        mixed(tmp_path),
        "--base-url",
        sandbox.url,
        "--state-dir",
        tmp_path / "state",
        "--out",
        tmp_path / "out.xlsx",
        *extra,
    )


def test_results_sheet_is_ready_for_review(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    result = run_mixed(run_cli, sandbox, tmp_path)
    assert result.code == 1
    wb = openpyxl.load_workbook(tmp_path / "out.xlsx")
    assert wb.sheetnames == ["Summary", "Results", "Issues"]
    ws = wb["Results"]
    assert ws.freeze_panes == "B2"
    assert ws.auto_filter.ref == "A1:H5"
    assert ws.column_dimensions["D"].width >= 20  # message
    statuses = {ws.cell(r, 2).value: ws.cell(r, 2).fill.start_color.rgb for r in range(2, 6)}
    assert statuses == {"created": "00C6EFCE", "invalid": "00FFC7CE", "failed": "00FFC7CE"}
    created = [r for r in range(2, 6) if ws.cell(r, 2).value == "created"]
    for r in created:
        hid = ws.cell(r, 3).value
        assert ws.cell(r, 3).hyperlink.target == (
            f"https://app.hubspot.com/contacts/{sandbox.portal.portal_id}/record/0-7/{hid}"
        )
    invalid = ws.cell(3, 4)
    assert invalid.value.startswith('C3 (Price): "12,50" is not a number')
    assert invalid.hyperlink.location == "Issues!A2"
    issues = wb["Issues"]
    assert issues["A2"].value == "C3"
    assert issues["B2"].hyperlink.location == "'Results'!A3"
    assert "already exists" in ws.cell(5, 4).value

    summary = {row[0]: row[1] for row in wb["Summary"].iter_rows(values_only=True) if row[0]}
    assert summary["Mode"] == "create"
    assert summary["API version"] == "2026-09"
    assert (summary["created"], summary["invalid"], summary["failed"]) == (2, 1, 1)
    assert wb["Summary"]["A1"].value.startswith("hubspot-import run ")
    colours = {
        r[0].value: r[0].fill.start_color.rgb
        for r in wb["Summary"].iter_rows()
        if r[0].value in ("created", "failed", "not_sent", "unchanged")
    }
    assert colours == {
        "created": "00C6EFCE",
        "failed": "00FFC7CE",
        "not_sent": "00FFEB9C",
        "unchanged": "00EDEDED",
    }
    with zipfile.ZipFile(tmp_path / "out.xlsx") as z:
        assert "xl/charts/chart1.xml" in z.namelist()  # the chart of the counts


@pytest.mark.parametrize(
    ("cell", "value"),
    [("H2", '=HYPERLINK("http://evil")'), ("H3", "+1"), ("H4", "-2"), ("H5", "@SUM(A1)")],
)
def test_formula_like_values_stay_text(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, cell: str, value: str
) -> None:
    run_mixed(run_cli, sandbox, tmp_path)
    ws = openpyxl.load_workbook(tmp_path / "out.xlsx")["Results"]
    assert (ws[cell].value, ws[cell].data_type) == (value, "s")


def test_retry_file_holds_invalid_and_failed_rows_and_goes_straight_back_in(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    result = run_mixed(run_cli, sandbox, tmp_path)
    retry = Path(
        result.out.split(
            "Retry file (the invalid, failed and incomplete rows, to fix and import again): "
        )[1].strip()
    )
    assert retry.parent == tmp_path
    assert retry.name.startswith("products-retry-")
    assert retry.suffix == ".csv"
    assert retry.read_text(encoding="utf-8-sig").splitlines() == [
        "SKU;Name;Price;Note",
        "00002;Mug;12,50;+1",
        "00004;Scarf;7;@SUM(A1)",
    ]
    # Fix the two rows as a person would, and feed the file back in.
    retry.write_text(
        "SKU;Name;Price;Note\n00002;Mug;12.50;+1\n00004;Scarf;7;@SUM(B1)\n", encoding="utf-8"
    )
    again = run_cli(
        "run",
        "-m",
        tmp_path / "m.yaml",
        retry,
        "--base-url",
        sandbox.url,
        "--state-dir",
        tmp_path / "state",
        "--out",
        tmp_path / "again.xlsx",
    )
    assert again.code == 0
    assert again.out.startswith("products: 2 rows: 2 created.")


def test_retry_file_for_a_workbook_keeps_text_cells(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    data = write_xlsx(
        tmp_path / "cat.xlsx",
        [["SKU", "Name", "Price", "Note"], ["00420", "A", 5, ""], ["00421", "B", "x", ""]],
        sheet="Catalogue",
    )
    result = run_cli(
        "run",
        "-m",
        write_mapping(tmp_path / "m.yaml", MAPPING),
        data,
        "--base-url",
        sandbox.url,
        "--out",
        tmp_path / "o.xlsx",
    )
    assert result.code == 1
    (retry,) = tmp_path.glob("cat-retry-*.xlsx")
    wb = openpyxl.load_workbook(retry)
    assert wb.sheetnames == ["Catalogue"]
    assert [[c.value for c in row] for row in wb["Catalogue"].iter_rows()] == [
        ["SKU", "Name", "Price", "Note"],
        ["00421", "B", "x", None],
    ]


def test_no_retry_file_when_every_row_went_through(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    data = write_csv(tmp_path / "ok.csv", [["SKU", "Name", "Price", "Note"], ["1", "a", "1", ""]])
    result = run_cli(
        "run",
        "-m",
        write_mapping(tmp_path / "m.yaml", MAPPING),
        data,
        "--base-url",
        sandbox.url,
        "--out",
        tmp_path / "o.xlsx",
    )
    assert result.code == 0
    assert "Retry file" not in result.out
    assert not list(tmp_path.glob("ok-retry-*"))


def test_results_continue_on_further_sheets_past_the_row_limit(
    run_cli: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer.sheets.results, "EXCEL_MAX_ROWS", 11)  # 10 rows per sheet
    rows = [["SKU", "Name", "Price", "Note"]] + [[f"{i:03d}", "n", "1", ""] for i in range(25)]
    data = write_csv(tmp_path / "big.csv", rows)
    assert (
        run_cli(
            "run",
            "-m",
            write_mapping(tmp_path / "m.yaml", MAPPING),
            data,
            "--sandbox",
            "--out",
            tmp_path / "o.xlsx",
        ).code
        == 0
    )
    wb = openpyxl.load_workbook(tmp_path / "o.xlsx")
    assert wb.sheetnames == ["Summary", "Results", "Results (2)", "Results (3)", "Issues"]
    skus = [r["SKU"] for name in wb.sheetnames[1:4] for r in read_sheet(tmp_path / "o.xlsx", name)]
    assert skus == [f"{i:03d}" for i in range(25)]


def test_record_links_stop_at_excels_limit_per_sheet(
    run_cli: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer.sheets.results_sheet, "MAX_LINKS_PER_SHEET", 4)
    rows = [["SKU", "Name", "Price", "Note"]] + [[f"{i:03d}", "n", "1", ""] for i in range(6)]
    rows[3][2] = "bad"  # an invalid row: its link to the Issues sheet comes first
    data = write_csv(tmp_path / "l.csv", rows)
    run_cli(
        "run",
        "-m",
        write_mapping(tmp_path / "m.yaml", MAPPING),
        data,
        "--sandbox",
        "--out",
        tmp_path / "o.xlsx",
    )
    wb = openpyxl.load_workbook(tmp_path / "o.xlsx")
    ws = wb["Results"]
    linked = [r for r in range(2, 8) if ws.cell(r, 3).hyperlink or ws.cell(r, 4).hyperlink]
    assert linked == [2, 3, 4, 5]  # 3 record links and the issue link of row 4
    assert ws.cell(4, 4).hyperlink.location == "Issues!A2"
    assert ws.cell(7, 3).value  # the id is still there, as text
    summary = {r[0]: r[1] for r in wb["Summary"].iter_rows(values_only=True) if r[0]}
    assert summary["Record links"] == (
        "on the first 4 rows of each Results sheet (Excel's limit per sheet)"
    )


TRICKY_VALUES = [
    "00420",
    "",
    " leading space",
    "trailing tab\t",
    "a & b < c > d",
    '=HYPERLINK("http://evil")',
    "two\nlines",
    "Café Olé ☕ 𝄞",
    "bell\x07 and nul\x00 removed",
    '"quoted" & <tagged/>',
    "x" * 5000,
]


@pytest.mark.parametrize("values", [TRICKY_VALUES, TRICKY_VALUES[::3]], ids=["tricky", "few"])
def test_cells_come_back_as_written(tmp_path: Path, values: list[str]) -> None:
    """Every value reads back as text, exactly (less the control characters XML cannot
    hold), with openpyxl and with calamine; blanks stay blank and keep later cells in place."""
    import pandas as pd
    from python_calamine import CalamineWorkbook

    from importer.sheets.results import RunSummary, write_results

    summary = RunSummary(
        run_id="r",
        object_type="products",
        input_file=tmp_path / "x.csv",
        sheet=None,
        mapping_file="m",
        base_url="u",
        started=pd.Timestamp.now(tz="UTC").to_pydatetime(),
    )
    index = pd.RangeIndex(2, 2 + len(values))
    outcome = pd.DataFrame(
        {"status": "would_create", "hubspot_id": "", "message": values[::-1]}, index=index
    )
    source = pd.DataFrame({"A": values, "B": "after"}, index=index)
    out = write_results(tmp_path / "o.xlsx", summary, outcome, source, [])
    expected = [v.replace("\x07", "").replace("\x00", "") for v in values]

    rows = read_sheet(out)
    assert [r["A"] or "" for r in rows] == expected
    assert [r["message"] or "" for r in rows] == expected[::-1]
    assert {r["B"] for r in rows} == {"after"}
    assert [r["source_row"] for r in rows] == list(index)
    cal = CalamineWorkbook.from_path(out).get_sheet_by_name("Results").to_python()
    assert [r[4] for r in cal[1:]] == expected
    assert {r[5] for r in cal[1:]} == {"after"}
    # Excel trims a text's ends unless told to keep them.
    xml = zipfile.ZipFile(out).read("xl/worksheets/sheet2.xml").decode()
    assert '<t xml:space="preserve">trailing tab\t</t>' in xml


def test_a_failed_write_leaves_the_previous_workbook_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd

    from importer.sheets.results import RunSummary, write_results

    out = tmp_path / "o.xlsx"
    out.write_bytes(b"previous workbook")

    splice = importer.sheets.results.splice

    def broken_splice(template: bytes, path: Path, sheets: Any) -> None:
        splice(template, path, sheets)  # the temporary file is written in full...
        raise OSError("disk full")  # ...and the process fails before the rename

    monkeypatch.setattr(importer.sheets.results, "splice", broken_splice)
    summary = RunSummary(
        run_id="r",
        object_type="products",
        input_file=tmp_path / "x.csv",
        sheet=None,
        mapping_file="m",
        base_url="u",
        started=pd.Timestamp.now(tz="UTC").to_pydatetime(),
    )
    frame = pd.DataFrame({"status": ["created"], "hubspot_id": ["1"], "message": [""]}, index=[2])
    with pytest.raises(OSError, match="disk full"):
        write_results(out, summary, frame, pd.DataFrame({"A": ["x"]}, index=[2]), [])
    assert out.read_bytes() == b"previous workbook"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.xlsx"]


def test_runs_show_and_undo_leave_the_sandbox_as_before(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    state = tmp_path / "state"
    first = write_csv(
        tmp_path / "a.csv",
        [["SKU", "Name", "Price", "Note"], *[[f"{i:03d}", "n", "1", ""] for i in range(5)]],
    )
    assert (
        run_cli(
            "run",
            "-m",
            mapping,
            first,
            "--base-url",
            sandbox.url,
            "--state-dir",
            state,
            "--out",
            tmp_path / "1.xlsx",
        ).code
        == 0
    )
    before = sorted((r["id"], r["properties"]["hs_sku"]) for r in sandbox.records("products"))

    second = write_csv(
        tmp_path / "a.csv",
        [
            ["SKU", "Name", "Price", "Note"],
            *[[f"{i:03d}", "n", "2" if i == 0 else "1", ""] for i in range(130)],
        ],
    )
    assert (
        run_cli(
            "run",
            "-m",
            mapping,
            second,
            "--base-url",
            sandbox.url,
            "--state-dir",
            state,
            "--out",
            tmp_path / "2.xlsx",
        ).code
        == 0
    )
    assert len(sandbox.records("products")) == 130

    listing = run_cli("runs", "--state-dir", state)
    lines = listing.out.splitlines()
    newest = lines[0].split()[0]
    assert "125 created, 1 updated, 4 unchanged" in lines[1]
    # Any unambiguous prefix names a run (both runs may have started in the same second).
    older = next(r["run_id"] for r in list_runs(state) if r["run_id"] != newest)
    prefix = next(newest[:n] for n in range(17, len(newest)) if not older.startswith(newest[:n]))
    shown = run_cli("show", prefix, "--state-dir", state)
    assert f"Run id:          {newest}" in shown.out
    assert "Records created: 125" in shown.out
    assert "Records updated: 1" in shown.out

    refused = run_cli("undo", newest, "--state-dir", state)  # no terminal, no --yes
    assert refused.code == 2
    assert "add --yes to archive 125 records" in refused.message
    assert len(sandbox.records("products")) == 130

    undone = run_cli("undo", newest, "--state-dir", state, "--yes")
    assert undone.code == 0, undone.err
    assert "created 125 products and updated 1." in undone.out
    assert "Updated records are left as they are" in undone.out
    assert undone.out.rstrip().endswith(f"Archived 125 products created by run {newest}.")
    after = sorted((r["id"], r["properties"]["hs_sku"]) for r in sandbox.records("products"))
    assert after == before
    archives = [r for r in sandbox.received if r.path.endswith("/batch/archive")]
    assert [len(r.body["inputs"]) for r in archives] == [100, 25]

    assert "[undone " in run_cli("runs", "--state-dir", state).out.splitlines()[0]
    again = run_cli("undo", newest, "--state-dir", state, "--yes")
    assert "was already undone" in again.out
    # The journal forgot the archived rows: the next import creates them again.
    third = run_cli(
        "run",
        "-m",
        mapping,
        second,
        "--base-url",
        sandbox.url,
        "--state-dir",
        state,
        "--out",
        tmp_path / "3.xlsx",
    )
    assert third.out.startswith("products: 130 rows: 125 created, 5 unchanged.")


def test_unknown_run(run_cli: Runner, tmp_path: Path) -> None:
    result = run_cli("show", "20990101", "--state-dir", tmp_path)
    assert result.code == 2
    assert "no run '20990101'" in result.message


@pytest.mark.parametrize("value", TRICKY_VALUES, ids=range(len(TRICKY_VALUES)))
def test_one_tricky_value_in_a_column_sends_it_the_careful_way(value: str) -> None:
    """The column-at-a-time check must notice a single value that needs escaping, removing
    characters or keeping whitespace, wherever it sits in the column."""
    from importer.sheets._sheetxml import _inline, text_cells

    for column in ([value], ["plain", value], [value, "plain"], ["a", value, "b"]):
        assert text_cells(column) == [_inline(v, "").encode() for v in column]
        assert text_cells(column, 7) == [_inline(v, ' s="7"').encode() for v in column]


@pytest.mark.parametrize("value", TRICKY_VALUES, ids=range(len(TRICKY_VALUES)))
def test_input_columns_write_each_cell_as_text_cells_would(value: str) -> None:
    """The row-joined input cells (made from Arrow columns) equal cell-by-cell markup."""
    import pyarrow as pa

    from importer.sheets._sheetxml import EMPTY_INLINE, TextColumns, text_cells

    columns = [["plain", value, "b"], [value, "", value]]
    made = TextColumns([pa.array(c, type=pa.large_string()) for c in columns])
    opens, cells, closes = made.pieces(slice(0, 3))
    rows = [o + c + e for o, c, e in zip(opens, cells, closes, strict=True)]
    written = [made.blank_cells(r) if EMPTY_INLINE in r else r for r in rows]
    expected = [
        b"".join(cell) + b"</row>"
        for cell in zip(text_cells(columns[0]), text_cells(columns[1]), strict=True)
    ]
    assert written == expected
