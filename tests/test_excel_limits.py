"""Excel's cell limit kept in every workbook written, headers included and counted as Excel
counts (UTF-16 units); a workbook whose zip directory understates a part is refused before
it is inflated; a token's fragments are redacted."""

from __future__ import annotations

import csv
import json
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest

from importer.core.errors import InputFileError
from importer.sandbox import Sandbox
from importer.sheets.excel_xml import _inflated

from .conftest import CliRun, write_csv, write_mapping, write_xlsx

Runner = Callable[..., CliRun]
EXCEL_MAX_CELL = 32_767
LONG_NAME = "Q" * 40_000
EMOJI = "\N{GRINNING FACE}" * 20_000
"""20,000 characters, 40,000 UTF-16 units: too long for a cell as Excel counts."""
MAPPING = "object_type: products\nkey: SKU\ncolumns:\n  SKU: hs_sku\n  Name: name\n"


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _longest_cell(book: Path) -> int:
    """The longest cell of every sheet of `book`, in UTF-16 units."""
    wb = openpyxl.load_workbook(book)
    return max(_units(str(c.value)) for ws in wb for row in ws.iter_rows() for c in row if c.value)


def _kept(side: Path) -> dict[tuple[str, str], str]:
    with side.open(encoding="utf-8", newline="") as fh:
        return {(r["row"], r["column"][:20]): r["value"] for r in csv.DictReader(fh)}


def test_a_header_and_an_emoji_cell_too_long_are_cut_in_every_workbook(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    rows = [["SKU", "Name", LONG_NAME], ["1", "a", EMOJI], ["2", "N" * 70_000, "x"]]
    data = write_csv(tmp_path / "in.csv", rows)
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    out, summary = tmp_path / "o.xlsx", tmp_path / "s.json"
    result = run_cli("run", "-m", mapping, data, "--base-url", sandbox.url, "--state-dir",
                     tmp_path / "st", "--out", out, "--summary-json", summary)  # fmt: skip
    assert result.code == 1, result.message
    assert _longest_cell(out) <= EXCEL_MAX_CELL
    results = openpyxl.load_workbook(out)["Results"]
    header = [str(c.value) for c in next(results.iter_rows())]
    assert header[-1].startswith("Q" * 32_000)
    assert header[-1].endswith(
        "… [cut: 40,000 characters, over Excel's 32,767; whole in o-long-cells.csv]"
    )
    assert str(results.cell(2, len(header)).value).endswith(
        "… [cut: 20,000 characters (40,000 as Excel counts them), over Excel's 32,767; "
        "whole in o-long-cells.csv]"
    )
    kept = _kept(tmp_path / "o-long-cells.csv")
    assert kept == {("1", "Q" * 20): LONG_NAME, ("2", "Q" * 20): EMOJI, ("3", "Name"): "N" * 70_000}
    run_id = json.loads(summary.read_text(encoding="utf-8"))["run_id"]
    shown = tmp_path / "shown.xlsx"
    assert run_cli("show", run_id, "--state-dir", tmp_path / "st", "--out", shown).code == 0
    assert _longest_cell(shown) <= EXCEL_MAX_CELL
    assert _kept(tmp_path / "shown-long-cells.csv")[("1", "Q" * 20)] == LONG_NAME


def test_a_retry_workbook_cuts_a_header_too_long_as_excel_counts(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    # A workbook holds 32,767 characters a cell: of emoji, twice as many units as Excel allows.
    rows = [["SKU", "Name", "Price", EMOJI], ["1", "a", "1", "x"], ["2", "b", "dear", "y"]]
    data = write_xlsx(tmp_path / "in.xlsx", rows)
    mapping = write_mapping(
        tmp_path / "m.yaml", MAPPING + "  Price: {property: price, type: number}\n"
    )
    summary = tmp_path / "s.json"
    result = run_cli("run", "-m", mapping, data, "--base-url", sandbox.url, "--state-dir",
                     tmp_path / "st", "--summary-json", summary)  # fmt: skip
    assert result.code == 1, result.message
    retry = Path(json.loads(summary.read_text(encoding="utf-8"))["retry_file"])
    assert retry.suffix == ".xlsx"
    assert _longest_cell(retry) <= EXCEL_MAX_CELL
    assert _kept(retry.with_name(f"{retry.stem}-long-cells.csv")) == {
        ("1", "\N{GRINNING FACE}" * 20): EMOJI
    }


def _lying_workbook(path: Path, rows: int) -> Path:
    """A workbook whose sheet inflates to `rows` rows of XML while its zip directory (and its
    local header) declare 5,000 bytes: the checksum is the whole sheet's, as a bomb's is."""
    base = write_xlsx(path.with_name("base.xlsx"), [["SKU", "Name"], ["1", "a"]])
    row = b'<row><c t="inlineStr"><is><t>' + b"N" * 200 + b"</t></is></c></row>"
    sheet = b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    sheet += b"<sheetData>" + row * rows + b"</sheetData></worksheet>"
    with zipfile.ZipFile(base) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            data = sheet if info.filename == "xl/worksheets/sheet1.xml" else src.read(info)
            out.writestr(info.filename, data)
    raw = bytearray(path.read_bytes())
    name = b"xl/worksheets/sheet1.xml"
    for signature, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = raw.find(signature)
        while at >= 0:
            name_at = at + (30 if size_at == 22 else 46)
            if raw[name_at : name_at + len(name)] == name:
                raw[at + size_at : at + size_at + 4] = struct.pack("<I", 5_000)
            at = raw.find(signature, at + 4)
    path.write_bytes(bytes(raw))
    return path


def test_a_workbook_whose_directory_understates_a_part_is_refused_unread(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    bomb = _lying_workbook(tmp_path / "lie.xlsx", 100_000)  # 22 MB inflated, 5,000 declared
    assert bomb.stat().st_size < 1_000_000
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    result = run_cli("check", "-m", mapping, bomb, "--base-url", sandbox.url)
    assert result.code == 2, result.message
    assert (
        "its part xl/worksheets/sheet1.xml inflates to more than the 5,000 bytes its zip "
        "directory declares, or than the 1,000 MB read at most (set "
        "HUBSPOT_IMPORT_MAX_UNZIPPED_MB to raise that limit)"
    ) in result.message
    assert "Traceback" not in result.err
    assert sandbox.received == []


def test_the_sheet_xml_reader_inflates_no_more_than_declared(tmp_path: Path) -> None:
    bomb = _lying_workbook(tmp_path / "lie.xlsx", 1_000)
    with zipfile.ZipFile(bomb) as book:
        member = book.getinfo("xl/worksheets/sheet1.xml")
    with pytest.raises(InputFileError, match="inflates to more than the 5,000 bytes"):
        _inflated(bomb, member)
