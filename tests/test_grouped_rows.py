"""Exports with grouped rows: a Shopify export writes a product's title on its first variant's
row only and adds rows that hold an image alone. `fill_down:` carries a group's values down its
rows, `skip_rows_without:` and rows with every mapped cell empty are `skipped`, never sent. A
WooCommerce export writes a variable product as a parent row above its variations:
`skip_rows_where: {Type: [variable]}` skips it the same way."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from importer.sandbox import Sandbox

from .conftest import CliRun, read_sheet, write_csv, write_mapping

Runner = Callable[..., CliRun]

HEADER = [
    "Handle", "Title", "Body (HTML)", "Vendor", "Type", "Option1 Name", "Option1 Value",
    "Variant SKU", "Variant Price", "Image Src", "Image Position",
]  # fmt: skip
HOODIE = [
    ["hoodie", "Hoodie", "<p>Warm</p>", "Acme", "Tops", "Size", "S", "HD-S", "45.00",
     "https://cdn.example/h1.jpg", "1"],
    ["hoodie", "", "", "", "", "Size", "M", "HD-M", "45.00", "", ""],
    ["hoodie", "", "", "", "", "Size", "L", "HD-L", "47.00", "", ""],
    ["hoodie", "", "", "", "", "", "", "", "", "https://cdn.example/h2.jpg", "2"],
    ["hoodie", "", "", "", "", "", "", "", "", "https://cdn.example/h3.jpg", "3"],
]  # fmt: skip
MUG = [
    ["mug", "Mug", "<p>Big</p>", "Bolt", "Kitchen", "Title", "Default Title", "MUG-1", "12.50",
     "https://cdn.example/m1.jpg", "1"],
]  # fmt: skip
CAP = [  # no description: the hoodie's must not leak into it
    ["cap", "Cap", "", "Cove", "Hats", "Colour", "Red", "CAP-R", "9.00",
     "https://cdn.example/c1.jpg", "1"],
    ["cap", "", "", "", "", "Colour", "Blue", "CAP-B", "9.50", "", ""],
]  # fmt: skip

MAPPING = """\
object_type: products
key: Variant SKU
columns:
  Variant SKU: hs_sku
  Title: name
  Body (HTML): description
  Variant Price: {property: price, type: number}
  Vendor: brand
fill_down: [Title, Body (HTML), Vendor]
group_by: Handle
skip_rows_without: [Variant SKU]
"""

EXPECTED = {
    "HD-S": ("Hoodie", "<p>Warm</p>", "Acme"),
    "HD-M": ("Hoodie", "<p>Warm</p>", "Acme"),
    "HD-L": ("Hoodie", "<p>Warm</p>", "Acme"),
    "MUG-1": ("Mug", "<p>Big</p>", "Bolt"),
    "CAP-R": ("Cap", None, "Cove"),
    "CAP-B": ("Cap", None, "Cove"),
}
NO_SKU = "skipped: no Variant SKU (skip_rows_without)"
EMPTY = "skipped: empty (no mapped cell holds a value)"


def export(path: Path, *groups: list[list[str]]) -> Path:
    return write_csv(path, [HEADER, *[row for group in groups for row in group]])


def sync(run_cli: Runner, box: Sandbox, tmp: Path, command: str, data: Path, mapping: Path,
         out: str, *extra: Any) -> CliRun:  # fmt: skip
    return run_cli(command, "-m", mapping, data, "--base-url", box.url,
                   "--state-dir", tmp / "state", "--out", tmp / out, *extra)  # fmt: skip


def products(box: Sandbox) -> dict[str, tuple[Any, ...]]:
    """SKU -> (name, description, brand) of every product the sandbox holds."""
    held: dict[str, tuple[Any, ...]] = {}
    for record in box.records("products"):
        p = record["properties"]
        assert p["hs_sku"] not in held, f"{p['hs_sku']} was created twice"
        held[p["hs_sku"]] = tuple(p.get(k) or None for k in ("name", "description", "brand"))
    return held


def writes(box: Sandbox) -> list[str]:
    """The paths of every request that wrote (or would have deleted) something."""
    reads = ("/search", "/batch/read")
    return [
        r.path
        for r in box.received
        if r.method in ("POST", "PATCH", "PUT", "DELETE") and not r.path.endswith(reads)
    ]


def statuses(workbook: Path) -> dict[int, tuple[str, str | None]]:
    return {r["source_row"]: (r["status"], r["message"]) for r in read_sheet(workbook)}


def test_a_shopify_export_makes_one_record_per_variant_and_skips_image_rows(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    data = export(tmp_path / "products_export.csv", HOODIE, MUG, CAP)
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    first = sync(run_cli, sandbox, tmp_path, "run", data, mapping, "1.xlsx")
    assert first.code == 0, first.message
    assert first.out.startswith("products: 8 rows: 6 created, 2 skipped.")
    assert "Retry file" not in first.out
    assert products(sandbox) == EXPECTED
    sent = [
        i for r in sandbox.received if r.path.endswith("/batch/create") for i in r.body["inputs"]
    ]
    assert len(sent) == 6  # the image-only rows were never sent
    rows = statuses(tmp_path / "1.xlsx")
    assert list(rows) == [2, 3, 4, 5, 6, 7, 8, 9]  # every row once, in sheet order
    assert rows[5] == rows[6] == ("skipped", NO_SKU)
    assert [rows[r][0] for r in (2, 3, 4, 7, 8, 9)] == ["created"] * 6
    # The workbook shows the rows as they were imported: the title carried down.
    by_row = {r["source_row"]: r for r in read_sheet(tmp_path / "1.xlsx")}
    assert by_row[4]["Title"] == "Hoodie"
    assert by_row[9]["Body (HTML)"] is None

    before = len(writes(sandbox))
    second = sync(run_cli, sandbox, tmp_path, "run", data, mapping, "2.xlsx")
    assert second.code == 0, second.message
    assert second.out.startswith("products: 8 rows: 6 unchanged, 2 skipped.")
    assert len(writes(sandbox)) == before
    assert statuses(tmp_path / "2.xlsx")[6] == ("skipped", NO_SKU)


def test_without_group_by_a_group_starts_where_the_title_is_filled(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    orphan = [["", "", "", "", "", "Size", "XS", "ORPHAN-1", "1.00", "", ""]]
    data = export(tmp_path / "export.csv", orphan, HOODIE, MUG, CAP)
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING.replace("group_by: Handle\n", ""))
    result = sync(run_cli, sandbox, tmp_path, "run", data, mapping, "out.xlsx")
    assert result.code == 0, result.message
    assert result.out.startswith("products: 9 rows: 7 created, 2 skipped.")
    # A row before the first title is in no group: nothing is carried into it.
    assert products(sandbox) == {**EXPECTED, "ORPHAN-1": (None, None, None)}


def test_only_a_groups_first_row_gives_its_values(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    socks = [  # the title is on the second row only: the group's first row decides
        ["socks", "", "", "", "", "Size", "39", "SK-39", "5.00", "", ""],
        ["socks", "Socks", "<p>Wool</p>", "Knit", "", "Size", "42", "SK-42", "5.00", "", ""],
        ["socks", "", "", "", "", "Size", "45", "SK-45", "5.00", "", ""],
    ]
    loose = [  # no Handle: in no group, so nothing is carried into the second row
        ["", "Loose", "", "Free", "", "", "", "L-1", "1.00", "", ""],
        ["", "", "", "", "", "", "", "L-2", "1.00", "", ""],
    ]
    data = export(tmp_path / "export.csv", MUG, socks, loose)
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    result = sync(run_cli, sandbox, tmp_path, "run", data, mapping, "out.xlsx")
    assert result.code == 0, result.message
    assert products(sandbox) == {
        "MUG-1": ("Mug", "<p>Big</p>", "Bolt"),
        "SK-39": (None, None, None),
        "SK-42": ("Socks", "<p>Wool</p>", "Knit"),
        "SK-45": (None, None, None),
        "L-1": ("Loose", None, "Free"),
        "L-2": (None, None, None),
    }


def test_a_bad_value_carried_down_is_named_by_each_cell_and_its_first_row(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    rows = [
        ["hoodie", "Hoodie", "", "Acme", "", "Size", "S", "HD-S", "45,00 EUR", "", ""],
        ["hoodie", "", "", "", "", "Size", "M", "HD-M", "", "", ""],
        ["mug", "Mug", "", "Bolt", "", "", "", "MUG-1", "", "", ""],
    ]
    data = export(tmp_path / "export.csv", rows)
    mapping = write_mapping(
        tmp_path / "m.yaml",
        MAPPING.replace("fill_down: [Title,", "fill_down: [Variant Price, Title,"),
    )
    result = sync(run_cli, sandbox, tmp_path, "run", data, mapping, "out.xlsx")
    assert result.code == 1
    assert result.out.startswith("products: 3 rows: 1 created, 2 invalid.")
    said = statuses(tmp_path / "out.xlsx")
    assert said[2][0] == said[3][0] == "invalid"
    assert "carried down" not in (said[2][1] or "")  # the row that holds it
    assert said[3][1].startswith('I3 (Variant Price): "45,00 EUR" is not a number (carried '
                                 "down from row 2 by fill_down);")  # fmt: skip
    issues = read_sheet(tmp_path / "out.xlsx", "Issues")
    assert [i["cell"] for i in issues] == ["I2", "I3"]
    # The mug's empty price stays empty: the hoodie's never reaches another group.
    assert products(sandbox) == {"MUG-1": ("Mug", None, "Bolt")}


KEYLESS = """\
object_type: products
columns:
  Name: name
  Price: {property: price, type: number}
"""
KEYED = """\
object_type: products
key: SKU
mode: MODE
columns:
  SKU: hs_sku
  Name: name
  Price: {property: price, type: number}
"""


@pytest.mark.parametrize("mode", ["create", "upsert", "update"])
def test_a_row_with_every_mapped_cell_empty_is_skipped_in_every_mode(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, mode: str
) -> None:
    keyed = write_mapping(tmp_path / "keyed.yaml", KEYED.replace("MODE", mode))
    if mode == "update":  # the records to update, from an earlier night
        seed = write_csv(
            tmp_path / "seed.csv",
            [["SKU", "Name", "Price"], ["A-1", "Mug", ""], ["A-2", "Cup", ""]],
        )
        seeded = sync(run_cli, sandbox, tmp_path, "run", seed, keyed, "seed.xlsx", "--mode",
                      "create")  # fmt: skip
        assert seeded.code == 0, seeded.message
    rows = [["SKU", "Name", "Price", "Note"], ["A-1", "Mug", "5", ""],
            ["", "", " ", "the supplier's note, in a column no mapping reads"],
            ["A-2", "Cup", "3", ""]]  # fmt: skip
    data = write_csv(tmp_path / "sheet.csv", rows)
    result = sync(run_cli, sandbox, tmp_path, "run", data, keyed, "out.xlsx")
    assert result.code == 0, result.message
    done = "updated" if mode == "update" else "created"
    assert result.out.startswith(f"products: 3 rows: 2 {done}, 1 skipped.")
    assert statuses(tmp_path / "out.xlsx")[3] == ("skipped", EMPTY)
    assert sorted(r["properties"].get("name") for r in sandbox.records("products")) == [
        "Cup",
        "Mug",
    ]


def test_a_keyless_import_sends_no_empty_record(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    rows = [["Name", "Price", "Image"], ["Mug", "5", "a.jpg"], ["", "", "b.jpg"],
            ["", "", "c.jpg"], ["Cup", "3", ""]]  # fmt: skip
    data = write_csv(tmp_path / "sheet.csv", rows)
    mapping = write_mapping(tmp_path / "m.yaml", KEYLESS)
    result = sync(run_cli, sandbox, tmp_path, "run", data, mapping, "out.xlsx")
    assert result.code == 0, result.message
    assert result.out.startswith("products: 4 rows: 2 created, 2 skipped.")
    assert len(sandbox.records("products")) == 2
    said = statuses(tmp_path / "out.xlsx")
    assert said[3] == said[4] == ("skipped", EMPTY)


def test_check_says_what_run_then_does(run_cli: Runner, sandbox: Sandbox, tmp_path: Path) -> None:
    bad = [["cap", "", "", "", "", "Colour", "Green", "CAP-G", "cheap", "", ""]]
    empty = [["lone", "", "", "", "", "", "", "", "", "https://cdn.example/x.jpg", "1"]]
    data = export(tmp_path / "export.csv", HOODIE, MUG, CAP, bad, empty)
    mapping = write_mapping(
        tmp_path / "m.yaml", MAPPING.replace("skip_rows_without: [Variant SKU]\n", "")
    )
    checked = sync(run_cli, sandbox, tmp_path, "check", data, mapping, "check.xlsx")
    assert checked.code == 1
    assert checked.out.startswith("products: 10 rows: 1 skipped, 3 invalid, 6 would_create.")
    assert writes(sandbox) == []
    ran = sync(run_cli, sandbox, tmp_path, "run", data, mapping, "run.xlsx")
    assert ran.code == 1
    assert ran.out.startswith("products: 10 rows: 6 created, 1 skipped, 3 invalid.")
    would = statuses(tmp_path / "check.xlsx")
    did = statuses(tmp_path / "run.xlsx")
    assert {r: (s.replace("would_create", "created"), m) for r, (s, m) in would.items()} == did
    # Without skip_rows_without, an image row holds mapped cells (its group's title, carried
    # down) and no SKU: invalid. A group of one row with no mapped value is empty: skipped.
    assert did[5][0] == did[6][0] == did[10][0] == "invalid"
    assert did[11] == ("skipped", EMPTY)


def test_a_row_skipped_tonight_leaves_its_record_as_it_is(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    mapping = write_mapping(
        tmp_path / "m.yaml",
        MAPPING.replace("[Variant SKU]", "[Variant SKU, Variant Price]"),
    )
    data = export(tmp_path / "export.csv", HOODIE, MUG, CAP)
    first = sync(run_cli, sandbox, tmp_path, "run", data, mapping, "1.xlsx")
    assert first.out.startswith("products: 8 rows: 6 created, 2 skipped.")
    assert statuses(tmp_path / "1.xlsx")[5] == (
        "skipped",
        "skipped: no Variant SKU, Variant Price (skip_rows_without)",
    )
    priceless = [list(HOODIE[2])]
    priceless[0][8] = ""
    data = export(tmp_path / "export.csv", HOODIE[:2], priceless, HOODIE[3:], MUG, CAP)
    before = len(writes(sandbox))
    second = sync(run_cli, sandbox, tmp_path, "run", data, mapping, "2.xlsx")
    assert second.code == 0, second.message
    assert second.out.startswith("products: 8 rows: 5 unchanged, 3 skipped.")
    assert statuses(tmp_path / "2.xlsx")[4] == (
        "skipped",
        "skipped: no Variant Price (skip_rows_without)",
    )
    assert len(writes(sandbox)) == before  # nothing sent, nothing archived
    held = {r["properties"]["hs_sku"]: r["properties"] for r in sandbox.records("products")}
    assert held["HD-L"]["price"] == "47"  # 47.00 sent: HubSpot holds a number
    assert len(held) == 6
    third = sync(run_cli, sandbox, tmp_path, "run", data, mapping, "3.xlsx")
    assert third.out.startswith("products: 8 rows: 5 unchanged, 3 skipped.")
    assert len(writes(sandbox)) == before


def test_an_unreadable_or_shifted_row_is_invalid_not_skipped(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Products"
    sheet.append(HEADER)
    for row in (*HOODIE[:2], MUG[0]):
        sheet.append(row)
    sheet["H3"] = "#N/A"  # the SKU cell holds an error: it is not empty
    sheet["H3"].data_type = "e"
    book.save(tmp_path / "export.xlsx")
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    result = sync(run_cli, sandbox, tmp_path, "run", tmp_path / "export.xlsx", mapping, "out.xlsx")
    assert result.code == 1
    assert result.out.startswith("products: 3 rows: 2 created, 1 invalid.")
    said = statuses(tmp_path / "out.xlsx")
    assert said[3][0] == "invalid"
    assert "#N/A" in said[3][1]

    # A CSV row with more cells than the header may have its cells shifted: said, not skipped.
    shifted = [*HOODIE[1][:7], "", "", "", "", "https://cdn.example/late.jpg"]
    data = write_csv(tmp_path / "shifted.csv", [HEADER, HOODIE[0], shifted])
    result = sync(run_cli, sandbox, tmp_path, "run", data, mapping, "shifted.xlsx")
    assert result.code == 1
    assert result.out.startswith("products: 2 rows: 1 unchanged, 1 invalid.")


PLAN = """\
steps:
  - mapping: lines.yaml
    input: lines.csv
  - mapping: products.yaml
    input: products_export.csv
"""
LINES = """\
object_type: line_items
key: Line ref
columns:
  Line ref: name
  SKU: {property: hs_product_id, to: products, by: hs_sku}
  Quantity: {property: quantity, type: number}
"""


def test_a_plan_step_fills_down_and_refers_past_its_skipped_rows(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mapping = MAPPING.replace("[Variant SKU]", "[Variant SKU, Variant Price]")
    write_mapping(tmp_path / "products.yaml", mapping)
    write_mapping(tmp_path / "lines.yaml", LINES)
    plan = write_mapping(tmp_path / "plan.yaml", PLAN)
    lines = [["Line ref", "SKU", "Quantity"], ["W-1/1", "HD-M", "2"], ["W-1/2", "HD-L", "1"],
             ["W-1/3", "CAP-B", "4"]]  # fmt: skip
    write_csv(tmp_path / "lines.csv", lines)
    export(tmp_path / "products_export.csv", HOODIE, MUG, CAP)

    def run(out: str, command: str = "run") -> CliRun:
        return run_cli(command, "--plan", plan, "--base-url", sandbox.url,
                       "--state-dir", tmp_path / "state", "--out", tmp_path / out)  # fmt: skip

    checked = run("check.xlsx", "check")
    assert checked.code == 0, checked.message
    first = run("1.xlsx")
    assert first.code == 0, first.message
    assert products(sandbox) == EXPECTED
    ids = {r["properties"]["hs_sku"]: r["id"] for r in sandbox.records("products")}
    lines = {r["properties"]["name"]: r["properties"] for r in sandbox.records("line_items")}
    assert {k: v["hs_product_id"] for k, v in lines.items()} == {
        "W-1/1": ids["HD-M"], "W-1/2": ids["HD-L"], "W-1/3": ids["CAP-B"],
    }  # fmt: skip
    results = read_sheet(tmp_path / "1.xlsx", "Results products_export")
    assert [r["status"] for r in results].count("skipped") == 2
    would = read_sheet(tmp_path / "check.xlsx", "Results products_export")
    assert [r["status"] for r in would] == [r["status"].replace("created", "would_create")
                                            for r in results]  # fmt: skip

    # Tonight HD-L has no price: its row is skipped, and the line that names it still finds
    # the record an earlier night created (it is not "a row of this run that failed").
    rows = [list(r) for r in HOODIE]
    rows[2][8] = ""
    export(tmp_path / "products_export.csv", rows, MUG, CAP)
    caplog.clear()
    again = run("2.xlsx")
    assert again.code == 0, again.message
    # The skipped row holds no key of this plan's: HD-L is looked up before any step writes.
    assert "looked up 1 keys that no step's rows hold, before anything is written" in caplog.text
    sheet = read_sheet(tmp_path / "2.xlsx", "Results products_export")
    after = {r["source_row"]: r for r in sheet}
    assert after[4]["status"] == "skipped"
    assert after[4]["message"] == "skipped: no Variant Price (skip_rows_without)"
    line_rows = read_sheet(tmp_path / "2.xlsx", "Results lines")
    assert [r["status"] for r in line_rows] == ["unchanged"] * 3


# A WooCommerce export: a variable product is a parent row (Type variable, no price, sometimes
# no SKU) above its variations; `skip_rows_where:` says such rows are no records.
WOO = [
    ["ID", "Type", "SKU", "Name", "Regular price"],
    ["101", "variable", "", "Zip Hoodie", ""],
    ["102", "variation", "HD-S", "Zip Hoodie - S", "45.00"],
    ["103", "variation", "HD-M", "Zip Hoodie - M", "45.00"],
    ["110", "simple", "CAP-1", "Cap", "19.00"],
    ["120", " Variable ", "SOCKS", "Socks", "see variations"],  # never validated
    ["121", "variation, downloadable", "SK-39", "Socks - 39", "12.95"],
]
WOO_MAPPING = """\
object_type: products
key: SKU
columns:
  SKU: hs_sku
  Name: name
  Regular price: {property: price, type: number}
skip_rows_where: WHERE
"""
PARENT = "skipped: Type is variable (skip_rows_where)"


def woo(tmp: Path, where: str, rows: list[list[str]] = WOO) -> tuple[Path, Path]:
    """The export and a mapping with `skip_rows_where: <where>`."""
    data = write_csv(tmp / "wc-product-export.csv", rows)
    return data, write_mapping(tmp / "woo.yaml", WOO_MAPPING.replace("WHERE", where))


def test_skip_rows_where_skips_the_parent_rows_and_never_sends_them(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data, mapping = woo(tmp_path, "{Type: variable}")  # one value, without a list
    checked = sync(run_cli, sandbox, tmp_path, "check", data, mapping, "check.xlsx")
    assert checked.code == 0, checked.message
    assert checked.out.startswith("products: 6 rows: 2 skipped, 4 would_create.")
    assert writes(sandbox) == []
    caplog.clear()
    first = sync(run_cli, sandbox, tmp_path, "run", data, mapping, "1.xlsx")
    assert first.code == 0, first.message
    assert first.out.startswith("products: 6 rows: 4 created, 2 skipped.")
    assert "Retry file" not in first.out
    assert "2 rows skipped: 2 by skip_rows_where, 0 by skip_rows_without" in caplog.text
    sent = [i["properties"]["hs_sku"] for r in sandbox.received
            if r.path.endswith("/batch/create") for i in r.body["inputs"]]  # fmt: skip
    assert sorted(sent) == ["CAP-1", "HD-M", "HD-S", "SK-39"]  # the parents never sent
    did = statuses(tmp_path / "1.xlsx")
    # Compared trimmed and without regard to case; the message shows the cell as written.
    assert did[2] == ("skipped", PARENT)
    assert did[6] == ("skipped", "skipped: Type is Variable (skip_rows_where)")
    assert {r for r, (s, _) in did.items() if s == "created"} == {3, 4, 5, 7}
    would = statuses(tmp_path / "check.xlsx")
    assert {r: (s.replace("would_create", "created"), m) for r, (s, m) in would.items()} == did

    before = len(writes(sandbox))
    second = sync(run_cli, sandbox, tmp_path, "run", data, mapping, "2.xlsx")
    assert second.code == 0, second.message
    assert second.out.startswith("products: 6 rows: 4 unchanged, 2 skipped.")
    assert len(writes(sandbox)) == before
    # A parent row is no record of this run's: the journal holds the variations alone, so a
    # parent given a price tomorrow is still skipped, and nothing is written for it.
    priced = [list(r) for r in WOO]
    priced[1][4] = "45.00"
    data, _ = woo(tmp_path, "{Type: variable}", priced)
    third = sync(run_cli, sandbox, tmp_path, "run", data, mapping, "3.xlsx")
    assert third.out.startswith("products: 6 rows: 4 unchanged, 2 skipped.")
    assert len(writes(sandbox)) == before


def test_skip_rows_where_takes_a_list_and_goes_before_skip_rows_without(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    rows = [*WOO, ["130", "GROUPED", "", "Gift set", ""], ["140", "simple", "", "Loose", "1"]]
    data, mapping = woo(tmp_path, "{Type: [VARIABLE, grouped]}\nskip_rows_without: [SKU]", rows)
    result = sync(run_cli, sandbox, tmp_path, "run", data, mapping, "out.xlsx")
    assert result.code == 0, result.message
    assert result.out.startswith("products: 8 rows: 4 created, 4 skipped.")
    said = statuses(tmp_path / "out.xlsx")
    # A parent without SKU is said to be a parent (what the row is), not a row without SKU.
    assert said[2] == ("skipped", PARENT)
    assert said[8] == ("skipped", "skipped: Type is GROUPED (skip_rows_where)")
    assert said[9] == ("skipped", "skipped: no SKU (skip_rows_without)")
    assert len(sandbox.records("products")) == 4


def test_skip_rows_where_mistakes_are_mapping_errors(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    data, mapping = woo(tmp_path, "{Typ: variable}")
    result = sync(run_cli, sandbox, tmp_path, "check", data, mapping, "out.xlsx")
    assert result.code == 2
    assert "column 'Typ' is not in wc-product-export.csv; did you mean 'Type'?" in result.message
    bad = "{Type: [], Published: [yes], Kind: [1.50], Other: ['']}\n"
    data, mapping = woo(tmp_path, bad)
    result = sync(run_cli, sandbox, tmp_path, "run", data, mapping, "out.xlsx")
    assert result.code == 2
    assert result.messages[1:] == [
        "  - skip_rows_where.Type: give the values whose rows are skipped, e.g. [variable]",
        "  - skip_rows_where.Published: YAML reads yes, no, true, false, on and off as true or "
        "false: quote each value as the sheet writes it, e.g. [variable]",
        "  - skip_rows_where.Kind: YAML reads 1.5 as a number or a date, not as it is written: "
        "quote each value as the sheet writes it, e.g. [variable]",
        "  - skip_rows_where.Other: an empty value: to skip the rows where Other is empty, write "
        "skip_rows_without: [Other]",
    ]
    data, mapping = woo(tmp_path, "[Type]")
    result = sync(run_cli, sandbox, tmp_path, "run", data, mapping, "out.xlsx")
    assert result.code == 2
    assert ("skip_rows_where: give columns and the values whose rows are skipped, e.g. "
            "{Type: [variable]}") in result.message  # fmt: skip
    assert writes(sandbox) == []


def test_a_plan_step_skips_its_parent_rows(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    data, _ = woo(tmp_path, "")
    write_mapping(tmp_path / "products.yaml", WOO_MAPPING.replace("WHERE", "{Type: variable}"))
    write_mapping(tmp_path / "lines.yaml", LINES)
    plan = write_mapping(tmp_path / "plan.yaml", PLAN.replace("products_export.csv", data.name))
    lines = [["Line ref", "SKU", "Quantity"], ["W-1/1", "HD-M", "2"], ["W-1/2", "SK-39", "1"],
             ["W-1/3", "SOCKS", "1"]]  # fmt: skip
    write_csv(tmp_path / "lines.csv", lines)

    def run(out: str, command: str = "run") -> CliRun:
        return run_cli(command, "--plan", plan, "--base-url", sandbox.url,
                       "--state-dir", tmp_path / "state", "--out", tmp_path / out)  # fmt: skip

    checked = run("check.xlsx", "check")
    ran = run("1.xlsx")
    assert ran.code == checked.code == 1  # the line naming a parent finds no product
    sheet = f"Results {data.stem}"
    results = read_sheet(tmp_path / "1.xlsx", sheet)
    assert [(r["status"], r["message"]) for r in results if r["status"] == "skipped"] == [
        ("skipped", PARENT),
        ("skipped", "skipped: Type is Variable (skip_rows_where)"),
    ]
    would = read_sheet(tmp_path / "check.xlsx", sheet)
    assert [r["status"] for r in would] == [r["status"].replace("created", "would_create")
                                            for r in results]  # fmt: skip
    ids = {r["properties"]["hs_sku"]: r["id"] for r in sandbox.records("products")}
    assert sorted(ids) == ["CAP-1", "HD-M", "HD-S", "SK-39"]
    line_rows = {r["Line ref"]: r for r in read_sheet(tmp_path / "1.xlsx", "Results lines")}
    assert line_rows["W-1/1"]["status"] == line_rows["W-1/2"]["status"] == "created"
    assert line_rows["W-1/3"]["status"] == "invalid"
    # The parent's key is none of this run's rows: no record has it (no failed row of ours).
    assert line_rows["W-1/3"]["message"].startswith(
        'B4 (SKU): no products record has hs_sku "SOCKS";'
    )
