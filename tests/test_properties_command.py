"""`hubspot-import properties OBJECT`: the portal's properties, to see what a mapping can map
to; as a table (tab-separated when piped), as JSON, searched, writable ones alone."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from importer.cli.properties import COLUMNS, rich_table, selected
from importer.mapping.portal import PropertyInfo
from importer.sandbox import PropertyDef, Sandbox

from .conftest import TOKEN, CliRun
from .test_startup import _start

Runner = Callable[..., CliRun]


def _rows(result: CliRun) -> dict[str, dict[str, str]]:
    """The tab-separated table printed to a pipe, by property name; checks its header."""
    header, *lines = result.out.splitlines()
    assert header.split("\t") == list(COLUMNS)
    rows = [dict(zip(COLUMNS, line.split("\t"), strict=True)) for line in lines]
    return {r["name"]: r for r in rows}


def test_the_table_lists_each_property_with_what_a_mapping_needs(
    run_cli: Runner, sandbox: Sandbox
) -> None:
    result = run_cli("properties", "products", "--base-url", sandbox.url)
    assert result.code == 0, result.err
    rows = _rows(result)
    assert rows["hs_sku"]["unique"] == "yes"
    assert rows["hs_sku"]["read-only"] == ""
    assert rows["price"] == {
        "name": "price",
        "label": "Unit price",
        "type": "number",
        "field type": "number",
        "group": "productinformation",
        "unique": "",
        "read-only": "",
        "options": "",
    }
    assert "hs_price_eur" in rows
    assert rows["createdate"]["read-only"] == "yes"
    assert rows["hs_product_type"]["options"] == "3"
    assert rows["hubspot_owner_id"]["options"] == "owners"
    names = list(rows)
    assert names == sorted(names)  # one group here: sorted by name within it
    assert result.messages[-1] == f"{len(rows)} properties of products (21 writable)"


def test_rows_are_sorted_by_group_then_name_and_searched_in_each() -> None:
    def prop(name: str, label: str, group: str) -> PropertyInfo:
        return PropertyInfo(name=name, label=label, type="string", field_type="text", group=group)

    pool = [
        prop("zeta", "Z", "Billing"),
        prop("alpha", "Price list", "shipping"),
        prop("beta", "B", "billing"),
        prop("gamma", "G", "Billing price"),
    ]
    assert [p.name for p in selected(pool, [])] == ["beta", "zeta", "gamma", "alpha"]
    assert [p.name for p in selected(pool, ["PRICE"])] == ["gamma", "alpha"]
    assert [p.name for p in selected(pool, ["billing price"])] == ["gamma"]
    assert [p.name for p in selected(pool, ["billing", "price"])] == ["gamma"]
    assert selected(pool, ["billing", "nothing"]) == []


def test_a_calculated_property_is_read_only_and_says_so(run_cli: Runner, sandbox: Sandbox) -> None:
    rows = _rows(run_cli("properties", "line_items", "--base-url", sandbox.url))
    assert rows["amount"]["read-only"] == "calculated"
    assert rows["quantity"]["read-only"] == ""


def test_a_line_break_or_tab_in_a_label_keeps_the_property_on_one_line(
    run_cli: Runner, sandbox: Sandbox
) -> None:
    sandbox.portal.add_property(
        "products", PropertyDef(name="odd_label", label="Colour\tand\nsize")
    )
    rows = _rows(run_cli("properties", "products", "--base-url", sandbox.url))
    assert rows["odd_label"]["label"] == "Colour and size"


def test_deal_stages_and_pipelines_count_their_options(run_cli: Runner, sandbox: Sandbox) -> None:
    rows = _rows(run_cli("properties", "deals", "--base-url", sandbox.url))
    assert rows["dealstage"]["options"] == "11"
    assert rows["pipeline"]["options"] == "2"


def test_an_object_type_by_id_or_custom_name(run_cli: Runner, sandbox: Sandbox) -> None:
    by_id = run_cli("properties", "0-7", "--base-url", sandbox.url)
    assert by_id.code == 0, by_id.err
    assert "hs_sku" in _rows(by_id)
    assert by_id.messages[-1].endswith("properties of products (21 writable)")
    pets = _rows(run_cli("properties", "pets", "--base-url", sandbox.url))
    assert pets["chip_id"]["unique"] == "yes"


def test_search_keeps_properties_whose_name_label_or_group_has_every_word(
    run_cli: Runner, sandbox: Sandbox
) -> None:
    result = run_cli("properties", "products", "--base-url", sandbox.url, "--search", "PRICE")
    assert result.code == 0
    assert set(_rows(result)) == {"price", "hs_price_eur", "hs_price_usd", "hs_price_gbp"}
    assert result.messages[-1] == "4 of 30 properties of products (4 writable)"
    by_label = run_cli("properties", "products", "--base-url", sandbox.url, "--search", "unit eur")
    assert set(_rows(by_label)) == {"hs_price_eur"}
    again = run_cli(
        "properties", "products", "--base-url", sandbox.url, "--search", "unit", "--search", "cost"
    )
    assert set(_rows(again)) == {"hs_cost_of_goods_sold"}
    group = run_cli("properties", "deals", "--base-url", sandbox.url, "--search", "dealinfo")
    assert len(_rows(group)) == 17


def test_search_without_a_match_names_the_nearest_and_exits_0(
    run_cli: Runner, sandbox: Sandbox
) -> None:
    result = run_cli("properties", "products", "--base-url", sandbox.url, "--search", "prise")
    assert result.code == 0
    assert result.out == ""
    assert result.messages[-1] == "no property matches 'prise'; nearest: price"
    far = run_cli("properties", "products", "--base-url", sandbox.url, "--search", "zzqx")
    assert far.code == 0
    assert far.messages[-1] == (
        "no property of products matches 'zzqx'; run without --search to list them all"
    )
    as_json = run_cli(
        "properties", "products", "--base-url", sandbox.url, "--search", "zzqx", "--json"
    )
    assert json.loads(as_json.out) == []


def test_json_has_every_key_of_every_property_and_nothing_else_on_stdout(
    run_cli: Runner, sandbox: Sandbox
) -> None:
    result = run_cli("properties", "products", "--base-url", sandbox.url, "--json")
    assert result.code == 0
    props = {p["name"]: p for p in json.loads(result.out)}
    assert len(props) == 30
    keys = {
        "name",
        "label",
        "type",
        "fieldType",
        "group",
        "unique",
        "readOnly",
        "calculated",
        "options",
        "referencedObjectType",
        "numberDisplayHint",
    }
    assert all(set(p) == keys for p in props.values())
    assert props["price"]["numberDisplayHint"] == "currency"
    assert props["hs_sku"]["unique"] is True
    assert props["hs_sku"]["numberDisplayHint"] is None
    assert props["hubspot_owner_id"]["referencedObjectType"] == "OWNER"
    assert props["hs_product_type"]["options"][0] == {"label": "Inventory", "value": "inventory"}
    assert props["createdate"]["readOnly"] is True
    assert "properties of products" not in result.out + result.err


def test_json_says_a_calculated_property_is_read_only(run_cli: Runner, sandbox: Sandbox) -> None:
    result = run_cli("properties", "line_items", "--base-url", sandbox.url, "--json")
    amount = next(p for p in json.loads(result.out) if p["name"] == "amount")
    assert amount["readOnly"] is True
    assert amount["calculated"] is True


def test_writable_leaves_out_read_only_and_calculated_properties(
    run_cli: Runner, sandbox: Sandbox
) -> None:
    result = run_cli("properties", "line_items", "--base-url", sandbox.url, "--writable")
    rows = _rows(result)
    assert "amount" not in rows
    assert "hs_object_id" not in rows
    assert {"quantity", "price", "hs_sku"} <= set(rows)
    assert all(r["read-only"] == "" for r in rows.values())
    assert result.messages[-1] == f"{len(rows)} of {len(rows) + 10} properties of line_items " + (
        f"({len(rows)} writable)"
    )


@pytest.mark.parametrize(
    ("object_type", "said"),
    [
        ("nosuch", "HubSpot has no object type 'nosuch'"),
        ("2-999", "HubSpot has no object type '2-999'"),
    ],
)
def test_an_unknown_object_type_is_one_line_and_exit_2(
    run_cli: Runner, sandbox: Sandbox, object_type: str, said: str
) -> None:
    result = run_cli("properties", object_type, "--base-url", sandbox.url)
    assert result.code == 2
    assert result.out == ""
    assert said in result.message
    assert len(result.messages) == 1
    assert "Traceback" not in result.err


def test_a_token_the_portal_refuses_is_exit_2_and_never_shown(
    run_cli: Runner, make_sandbox: Callable[..., Sandbox]
) -> None:
    box = make_sandbox(token="pat-someone-else")
    result = run_cli("properties", "products", "--base-url", box.url)
    assert result.code == 2
    assert result.out == ""
    assert result.message.startswith("hubspot-import: error: could not read the products")
    assert TOKEN not in result.out + result.err
    assert "Traceback" not in result.err


def test_an_unreachable_portal_is_exit_2(run_cli: Runner, sandbox: Sandbox) -> None:
    url = sandbox.url
    sandbox.stop()
    result = run_cli("properties", "products", "--base-url", url, "--max-attempts", "1")
    assert result.code == 2
    assert result.out == ""
    assert f"could not read the products properties from {url}" in result.message
    assert "Check --base-url (or HUBSPOT_BASE_URL) and the network." in result.message
    assert "Traceback" not in result.err


def test_without_a_token_it_says_how_to_give_one(
    run_cli: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "")
    result = run_cli("properties", "products")
    assert result.code == 2
    assert "no access token: set HUBSPOT_ACCESS_TOKEN" in result.message


def test_sandbox_lists_the_demo_portal(run_cli: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "")
    result = run_cli("properties", "carts", "--sandbox")
    assert result.code == 0, result.err
    assert _rows(result)["hs_external_cart_id"]["unique"] == "yes"


def test_help_lists_the_options(run_cli: Runner) -> None:
    result = run_cli("properties", "--help")
    assert result.code == 0
    assert "Usage: hubspot-import properties [OPTIONS] OBJECT" in result.out
    for option in ("--search WORD", "--writable", "--json", "--sandbox", "--base-url"):
        assert option in result.out
    assert "properties" in run_cli("--help").out


def test_help_and_a_listing_load_no_heavy_library(tmp_path: Path) -> None:
    """Reading properties needs no sheet: neither --help nor the command loads pandas."""
    for args in (["properties", "--help"], ["properties", "products", "--sandbox", "--json"]):
        code, heavy, printed = _start(tmp_path, *args)
        assert code == 0, printed
        assert heavy == [], f"`hubspot-import {' '.join(args)}` imported {', '.join(heavy)}"
    code, _, printed = _start(tmp_path, "properties")
    assert code == 2
    assert "Missing argument 'OBJECT'" in printed


def _drawn(rows: list[tuple[str, ...]], width: int) -> tuple[list[str], list[str]]:
    """The terminal's table drawn `width` wide, as lines, and the columns it left out."""
    table, left_out = rich_table(rows, width)
    screen = io.StringIO()
    Console(file=screen, width=width, color_system=None).print(table)
    return screen.getvalue().splitlines(), left_out


def test_on_a_terminal_the_table_fits_its_width_a_line_per_property() -> None:
    rows = [
        ("hs_recurring_billing_period", "First touch converting campaign", "string", "text",
         "analyticsinformation", "", "yes", ""),
        ("hs_sku", "SKU", "string", "text", "productinformation", "yes", "", ""),
    ]  # fmt: skip
    wide, left_out = _drawn(rows, 200)
    assert left_out == []
    assert "analyticsinformation" in wide[-2]
    assert "First touch converting campaign" in wide[-2]
    middle, left_out = _drawn(rows, 120)
    assert left_out == ["group"]
    assert "First touch converting campaign" in middle[-2]
    assert "text" in middle[-1]
    narrow, left_out = _drawn(rows, 80)
    assert left_out == ["field type", "group"]
    assert len(narrow) == 2 + len(rows)  # header, rule, a line each
    assert all(len(line) <= 80 for line in narrow)
    assert narrow[-2].startswith("hs_recurring_billing_period  First touch")  # the name whole
    assert "…" in narrow[-2]  # the label cut short
    assert narrow[-1].split() == ["hs_sku", "SKU", "string", "yes"]


def test_on_a_narrow_terminal_a_long_name_stays_whole_and_the_label_gives_way() -> None:
    long_name = "hs_analytics_first_touch_converting_campaign"
    rows = [(long_name, "First touch converting campaign", "string", "text", "g", "", "yes", "")]
    lines, left_out = _drawn(rows, 80)
    assert left_out == ["label", "field type", "group"]
    assert all(len(line) <= 80 for line in lines)
    assert lines[-1].split() == [long_name, "string", "yes"]
