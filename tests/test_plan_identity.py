"""A plan compares object types and keys as HubSpot tells them apart: a custom object named two
ways (`pets`, `p4242424_pets`, `2-4242424`) is one type for the steps' order and for references
to the keys a step imported; a number key is one key however it is written (`7`, `007`, `8.0`),
in the check of keys shared by two steps and in references; a text key stays as written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from importer.sandbox import Sandbox

from .conftest import CliRun, read_sheet
from .test_number_keys import BY_CODE, run, with_code
from .test_type_identity import plan_of, run_plan

Runner = Callable[..., CliRun]
PETS = """\
object_type: {kind}
key: Chip
columns:
  Chip: chip_id
  Name: name
"""
REFERS_TO_PET = """\
object_type: products
key: SKU
columns:
  SKU: hs_sku
  Pet: {{property: description, to: {kind}, by: chip_id{extra}}}
"""
LINES = """\
object_type: line_items
key: Line
columns:
  Line: name
  Code: {{property: hs_product_id, to: products, by: {by}}}
  Quantity: {{property: quantity, type: number}}
"""


def products(box: Sandbox, prop: str) -> dict[str, str]:
    """`prop` of each live product -> its id."""
    return {
        r["properties"][prop]: r["id"] for r in box.records("products") if prop in r["properties"]
    }


def line_products(box: Sandbox) -> dict[str, str]:
    """Each line item's name -> the product id it holds."""
    return {
        r["properties"]["name"]: r["properties"].get("hs_product_id")
        for r in box.records("line_items")
    }


# --- one custom object, named two ways in one plan -------------------------------------------


def test_a_step_referring_to_a_custom_object_by_another_name_runs_after_the_step_importing_it(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    refers = REFERS_TO_PET.format(kind="pets", extra=", on_missing: skip")
    plan = plan_of(tmp_path, [
        ("prods", refers, [["SKU", "Pet"], ["P-1", "C-1"]]),
        ("pets", PETS.format(kind="p4242424_pets"), [["Chip", "Name"], ["C-1", "Rex"]]),
    ])  # fmt: skip
    result = run_plan(run_cli, sandbox, tmp_path, plan)
    assert result.code == 0, result.message
    (pet,) = sandbox.records("p4242424_pets")
    assert products(sandbox, "hs_sku") == {"P-1": products(sandbox, "hs_sku")["P-1"]}
    (product,) = [r for r in sandbox.records("products") if r["properties"]["hs_sku"] == "P-1"]
    assert product["properties"].get("description") == pet["id"]
    assert result.out.index("pets (p4242424_pets)") < result.out.index("prods (products)")
    assert [
        (r["status"], r["message"]) for r in read_sheet(tmp_path / "out.xlsx", "Results prods")
    ] == [("created", None)]


def test_a_reference_by_type_id_finds_the_key_a_step_imported_by_name(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    plan = plan_of(tmp_path, [
        ("pets", PETS.format(kind="pets"), [["Chip", "Name"], ["C-2", "Tom"]]),
        ("prods", REFERS_TO_PET.format(kind="2-4242424", extra=""),
         [["SKU", "Pet"], ["P-2", "C-2"]]),
    ])  # fmt: skip
    result = run_plan(run_cli, sandbox, tmp_path, plan)
    assert result.code == 0, result.message
    (pet,) = sandbox.records("p4242424_pets")
    (product,) = [r for r in sandbox.records("products") if r["properties"]["hs_sku"] == "P-2"]
    assert product["properties"].get("description") == pet["id"]
    # Known from the step before: not looked up in HubSpot before or after it wrote.
    assert not [r for r in sandbox.received if "/p4242424_pets/search" in r.path or
                "/2-4242424/search" in r.path]  # fmt: skip


# --- number keys ---------------------------------------------------------------------------


def test_a_number_key_written_two_ways_in_two_steps_is_refused_as_one_key(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    with_code(sandbox)
    plan = plan_of(tmp_path, [
        ("a", BY_CODE, [["Code", "Name"], ["7", "Seven"]]),
        ("b", BY_CODE, [["Code", "Name"], ["007", "Padded"]]),
    ])  # fmt: skip
    result = run_plan(run_cli, sandbox, tmp_path, plan)
    assert result.code == 2, result.message
    assert (
        "steps a and b both write products records keyed by code: '007' is in a.csv row 2 and "
        "in b.csv row 2." in result.message
    ), result.message
    assert not [r for r in sandbox.received if r.method == "POST"]


def test_a_reference_by_a_number_key_finds_the_record_an_earlier_step_wrote_another_way(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    with_code(sandbox)
    plan = plan_of(tmp_path, [
        ("prod", BY_CODE, [["Code", "Name"], ["7", "Seven"], ["8.0", "Eight"]]),
        ("lines", LINES.format(by="code"), [["Line", "Code", "Quantity"], ["L1", "007", "1"],
                                            ["L2", "8", "1"]]),
    ])  # fmt: skip
    result = run_plan(run_cli, sandbox, tmp_path, plan)
    assert result.code == 0, result.message
    ids = products(sandbox, "code")
    assert line_products(sandbox) == {"L1": ids["7"], "L2": ids["8"]}


def test_a_reference_by_a_number_key_finds_a_journaled_record_written_another_way(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    with_code(sandbox)
    products_rows = [["Code", "Name"], ["7", "Seven"], ["8.0", "Eight"]]
    made = run(run_cli, sandbox, tmp_path, BY_CODE, products_rows, "p")
    assert made.code == 0, made.message
    rows = [["Line", "Code", "Quantity"], ["L1", "007", "1"], ["L2", "8", "1"], ["L3", "7.00", "1"]]
    lines = run(run_cli, sandbox, tmp_path, LINES.format(by="code"), rows, "l")
    assert lines.code == 0, lines.message
    assert [r["status"] for r in read_sheet(tmp_path / "l.xlsx")] == ["created"] * 3
    ids = products(sandbox, "code")
    assert line_products(sandbox) == {"L1": ids["7"], "L2": ids["8"], "L3": ids["7"]}


def test_a_text_reference_key_is_not_read_as_a_number(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    by_sku = "object_type: products\nkey: SKU\ncolumns:\n  SKU: hs_sku\n  Name: name\n"
    made = run(run_cli, sandbox, tmp_path, by_sku, [["SKU", "Name"], ["7", "Seven"]], "p")
    assert made.code == 0, made.message
    rows = [["Line", "Code", "Quantity"], ["L1", "007", "1"]]
    lines = run(run_cli, sandbox, tmp_path, LINES.format(by="hs_sku"), rows, "l")
    (row,) = read_sheet(tmp_path / "l.xlsx")
    assert row["status"] == "invalid", lines.message
    assert 'no products record has hs_sku "007"' in row["message"]
    assert sandbox.records("line_items") == []
