"""`init` on real-world exports: a Shopify product CSV (variants, image-only rows), a
WooCommerce product CSV, a HubSpot products export (labels as headers), a Google Merchant feed
and a Mailchimp audience export (tests/exports/, written from each export's public column
list). `init` alone must give the right key and most columns the right property; `check`, then
`run` twice, must give one record per row (variant) and write nothing the second time."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from importer.mapping.draft import Draft
from importer.mapping.draft_match import Matching
from importer.mapping.draft_rows import Grouping, KeyChoice, parent_rows
from importer.mapping.export_words import TABLES, detect_export, export_words, letters
from importer.sandbox import Sandbox

from .conftest import CliRun, read_sheet, write_csv, write_xlsx

Runner = Callable[..., CliRun]
EXPORTS = Path(__file__).parent / "exports"
WRITES = re.compile(r"/batch/(create|update|upsert)$|/objects/[^/]+/[^/]+/?$")

# The columns of each export that have a HubSpot counterpart in the sandbox, and it.
SHOPIFY = {
    "Title": "name",
    "Body (HTML)": "description",
    "Vendor": "brand",
    "Variant SKU": "hs_sku",
    "Variant Price": "price",
    "Cost per item": "hs_cost_of_goods_sold",
    "Variant Image": "hs_images",
}
WOOCOMMERCE = {
    "SKU": "hs_sku",
    "Name": "name",
    "Description": "description",
    "Regular price": "price",
    "Images": "hs_images",
    "In stock?": "in_stock",
    "Weight (kg)": "weight_kg",
}
HUBSPOT = {
    "Name": "name",
    "SKU": "hs_sku",
    "Unit price": "price",
    "Product description": "description",
    "Unit cost": "hs_cost_of_goods_sold",
    "Product type": "hs_product_type",
    "Billing frequency": "recurringbillingfrequency",
    "Term": "hs_recurring_billing_period",
    "URL": "hs_url",
    "Image URL": "hs_images",
}
GOOGLE = {
    "id": "hs_sku",
    "title": "name",
    "description": "description",
    "link": "hs_url",
    "image_link": "hs_images",
    "price": "price",
    "brand": "brand",
}
MAILCHIMP = {
    "Email Address": "email",
    "First Name": "firstname",
    "Last Name": "lastname",
    "Phone Number": "phone",
    "Company": "company",
    "CC": "country",
    "REGION": "state",
    "Birthday": "date_of_birth",
}
# HubSpot's default properties (its properties API, 2026): every target of the table is one.
HUBSPOT_DEFAULTS = {
    "products": {
        "name", "description", "price", "hs_sku", "hs_cost_of_goods_sold", "hs_product_type",
        "hs_url", "hs_images", "hs_recurring_billing_period", "recurringbillingfrequency",
        "tax", "hs_object_id", "discount", "hs_folder_id", "createdate",
    },
    "contacts": {
        "email", "firstname", "lastname", "phone", "mobilephone", "address", "city", "state",
        "zip", "country", "company", "jobtitle", "website", "lifecyclestage",
        "hubspot_owner_id", "date_of_birth", "hs_object_id",
    },
    "orders": {
        "hs_order_name", "hs_external_order_id", "hs_fulfillment_status", "hs_currency_code",
        "hs_subtotal_price", "hs_shipping_cost", "hs_tax", "hs_total_price",
        "hs_order_discount", "hs_external_created_date",
    },
    "line_items": {"name", "quantity", "price", "hs_sku", "discount"},
}  # fmt: skip
CUSTOM_TARGETS = {"brand", "vendor"}
"""Properties portals add themselves: proposed only where the portal has one."""


def draft(
    run_cli: Runner, sandbox: Sandbox, source: Path, tmp_path: Path, *args: str
) -> tuple[CliRun, dict[str, Any], str]:
    """`init` on `source`: what it said, the draft parsed, and the draft's text."""
    out = tmp_path / f"{source.stem}.yaml"
    made = run_cli("init", source, "--out", out, "--base-url", sandbox.url, *args)
    assert made.code == 0, made.err
    text = out.read_text(encoding="utf-8")
    return made, yaml.safe_load(text), text


def mapped(parsed: dict[str, Any]) -> dict[str, str]:
    """Column -> property, as the draft maps them."""
    return {c: spec["property"] for c, spec in (parsed.get("columns") or {}).items()}


def assert_covers(parsed: dict[str, Any], expected: dict[str, str], share: float = 0.8) -> None:
    """At least `share` of the columns that have a counterpart are mapped to it."""
    got = mapped(parsed)
    right = [c for c, prop in expected.items() if got.get(c) == prop]
    assert len(right) >= share * len(expected), (got, expected)
    wrong = {c: p for c, p in got.items() if c in expected and expected[c] != p}
    assert not wrong, wrong


def nightly(run_cli: Runner, sandbox: Sandbox, mapping: Path, source: Path, tmp: Path) -> str:
    """`check`, then `run` twice: the second run writes nothing. The first run's summary."""
    target = ("--base-url", sandbox.url, "--state-dir", tmp / "state")
    checked = run_cli("check", "-m", mapping, source, *target, "--out", tmp / "check.xlsx")
    assert checked.code == 0, checked.out + checked.err
    first = run_cli("run", "-m", mapping, source, *target, "--out", tmp / "1.xlsx")
    assert first.code == 0, first.out + first.err
    before = len(sandbox.received)
    second = run_cli("run", "-m", mapping, source, *target, "--out", tmp / "2.xlsx")
    assert second.code == 0, second.out + second.err
    writes = [
        r.path for r in sandbox.received[before:] if r.method != "GET" and WRITES.search(r.path)
    ]
    assert writes == [], writes
    assert "created" not in second.out.splitlines()[0], second.out
    return first.out.splitlines()[0]


def test_shopify_export_gets_its_key_grouping_and_columns(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    source = EXPORTS / "shopify_products.csv"
    made, parsed, text = draft(run_cli, sandbox, source, tmp_path, "--object", "products")
    assert made.out.startswith("Wrote ")
    assert "(a Shopify export)" in made.out.splitlines()[0]
    assert parsed["key"] == "Variant SKU"
    assert parsed["group_by"] == "Handle"
    assert {"Title", "Body (HTML)", "Vendor"} <= set(parsed["fill_down"])
    assert parsed["skip_rows_without"] == ["Variant SKU"]
    assert_covers(parsed, SHOPIFY, share=1.0)
    # Shopify's "Type" (Shirts, Bags) is no HubSpot product type; "SEO Title" is no name.
    assert "Type" not in parsed["columns"]
    assert "SEO Title" not in parsed["columns"]
    assert '  Variant SKU: {property: hs_sku}  # Shopify\'s "Variant SKU" (sure)' in text
    assert "3 rows have no Variant SKU (they carry only images): they are skipped." in text
    assert "#   Handle: <property>   nearest: " in text
    assert "Variant Image" in text
    assert "is the product's n-th image on a variant's row, not the variant's own" in text
    assert "hubspot-import: init proposed no key" not in made.err


def test_shopify_export_imports_one_record_per_variant_and_nothing_the_second_time(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    source = EXPORTS / "shopify_products.csv"
    out = tmp_path / "shopify.yaml"
    made = run_cli("init", source, "--object", "products", "--out", out, "--base-url", sandbox.url)
    assert made.code == 0, made.err
    first = nightly(run_cli, sandbox, out, source, tmp_path)
    assert first == "products: 14 rows: 11 created, 3 skipped.", first
    stored = {r["properties"]["hs_sku"]: r["properties"] for r in sandbox.records("products")}
    assert len(stored) == 11
    assert stored["FJ-BEANIE-RU"]["name"] == "Merino Beanie"  # filled down from its first row
    assert stored["FJ-BEANIE-RU"]["brand"] == "Fjord & Co"
    assert stored["NW-TEE-M-BK"]["price"] == "26"  # 26.00 sent: a number
    # The variant's own image, never the product's n-th (tee-white-back.jpg is no black tee).
    assert stored["NW-TEE-M-BK"]["hs_images"].endswith("tee-black.jpg")
    assert not stored["NW-TEE-M-WH"].get("hs_images")


def test_woocommerce_export(run_cli: Runner, sandbox: Sandbox, tmp_path: Path) -> None:
    source = EXPORTS / "woocommerce_products.csv"
    made, parsed, text = draft(run_cli, sandbox, source, tmp_path, "--object", "products")
    assert "(a WooCommerce export)" in made.out.splitlines()[0]
    assert parsed["key"] == "SKU"
    # The variable product's row is the parent of its variations: no record of its own.
    assert parsed["skip_rows_where"] == {"Type": ["variable"]}
    assert (
        "WooCommerce writes a variable product as a parent row (Type variable) above its "
        "variations: the parent is no record of its own, so the row with Type variable is "
        "skipped.\nskip_rows_where: {Type: [variable]}\n"
    ) in text.replace("\n# ", " ")
    assert "group_by" not in parsed
    assert "skip_rows_without" not in parsed
    assert_covers(parsed, WOOCOMMERCE, share=1.0)
    for unmapped in ("ID", "Type", "Sale price", "Tax status", "Stock", "Parent"):
        assert unmapped not in parsed["columns"], unmapped
    assert '"In stock?": {property: in_stock, type: bool}' in text
    first = nightly(run_cli, sandbox, tmp_path / f"{source.stem}.yaml", source, tmp_path)
    assert first == "products: 7 rows: 6 created, 1 skipped.", first
    # One record per item sold: the simple products (also "simple, virtual" and external
    # ones) and the variations; the parent HOODIE is none.
    skus = sorted(r["properties"]["hs_sku"] for r in sandbox.records("products"))
    assert skus == sorted(
        ["HOODIE-GREY", "HOODIE-NAVY", "CAP-LOGO", "BELT-LEATHER", "GIFT-WRAP", "BOOK-KNIT"]
    )
    said = {r["source_row"]: (r["status"], r["message"]) for r in read_sheet(tmp_path / "1.xlsx")}
    assert said[2] == ("skipped", "skipped: Type is variable (skip_rows_where)")


def test_woocommerce_parent_without_sku_still_keys_on_sku(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    source = EXPORTS / "woocommerce_parent_without_sku.csv"
    made, parsed, text = draft(run_cli, sandbox, source, tmp_path, "--object", "products")
    # The socks' parent row has no SKU: judged on the rows kept, SKU is still the key.
    assert parsed["key"] == "SKU", made.message
    assert "every row kept" in text
    assert "hubspot-import: init proposed no key" not in made.err
    assert parsed["skip_rows_where"] == {"Type": ["variable"]}
    assert "so the 2 rows with Type variable are skipped." in text
    assert "skip_rows_without" not in parsed
    first = nightly(run_cli, sandbox, tmp_path / f"{source.stem}.yaml", source, tmp_path)
    assert first == "products: 7 rows: 5 created, 2 skipped.", first
    stored = {r["properties"]["hs_sku"]: r["properties"] for r in sandbox.records("products")}
    # "variation, downloadable, virtual" is a variation: imported, like the others.
    assert sorted(stored) == ["MUG-ENAMEL", "PATTERN-DE", "PATTERN-EN", "SOCK-39", "SOCK-43"]
    assert stored["PATTERN-EN"]["price"] == "6"
    assert all(p.get("name") != "Merino Socks" for p in stored.values())
    again = read_sheet(tmp_path / "2.xlsx")
    assert [(r["source_row"], r["status"]) for r in again if r["status"] != "unchanged"] == [
        (2, "skipped"),
        (6, "skipped"),
    ]


@pytest.mark.parametrize(
    ("kinds", "found", "said"),
    [
        (
            ["variable", "variation", "variation, virtual", "simple", "variable", "variation"],
            ("variable",),
            "2 rows are parents (Type variable: rows 2 and 6): they are skipped.",
        ),
        (
            ["Variable", "variation", "variable, virtual", "variation"],
            ("Variable", "variable, virtual"),
            "2 rows are parents (Type Variable or variable, virtual: rows 2 and 4): they are "
            "skipped.",
        ),
        (
            ["simple", "variable", "variation"],
            ("variable",),
            "1 row is a parent (Type variable: row 3): it is skipped.",
        ),
        (["variable", "simple", "external"], None, None),  # no variations: nobody's parent
        (["variation", "simple"], None, None),
    ],
    ids=["woocommerce", "as-written", "one", "no-variations", "no-parents"],
)
def test_parent_rows_are_told_by_their_kind_and_their_children(
    kinds: list[str], found: tuple[str, ...] | None, said: str | None
) -> None:
    frame = pd.DataFrame({"SKU": [f"S-{i}" for i in range(len(kinds))], "Type": kinds})
    frame.index = pd.RangeIndex(2, 2 + len(kinds))  # sheet rows
    parents = parent_rows(frame)
    assert (parents.values if parents else None) == found
    drafted = Draft(
        text="",
        matching=Matching(matches=[]),
        unmatched=[],
        key=KeyChoice(match=None, why=""),
        grouping=Grouping(parents=parents),
        header_row=None,
    )
    assert drafted.parents == said  # what `init` can say of them


def test_a_column_of_many_values_is_no_column_of_kinds() -> None:
    words = ["variable", "variation"] + [f"note {i}" for i in range(40)]
    assert parent_rows(pd.DataFrame({"Notes": words})) is None


def test_hubspot_products_export(run_cli: Runner, sandbox: Sandbox, tmp_path: Path) -> None:
    source = EXPORTS / "hubspot_products.csv"
    made, parsed, _text = draft(run_cli, sandbox, source, tmp_path, "--object", "products")
    assert "(a HubSpot export)" in made.out.splitlines()[0]
    assert parsed["key"] == "SKU"
    assert_covers(parsed, HUBSPOT, share=1.0)
    # The record id and HubSpot's own dates are read-only: never proposed.
    assert not {"Record ID", "Create Date", "Last Modified Date"} & set(parsed["columns"])
    # "Product type" sorts the rows into runs, but a column sent as an option is no group.
    assert "group_by" not in parsed
    assert "fill_down" not in parsed
    first = nightly(run_cli, sandbox, tmp_path / f"{source.stem}.yaml", source, tmp_path)
    assert first == "products: 5 rows: 5 created.", first
    stored = {r["properties"]["hs_sku"]: r["properties"] for r in sandbox.records("products")}
    assert stored["SUP-ANNUAL"]["recurringbillingfrequency"] == "annually"
    assert stored["HW-SCAN-01"]["hs_product_type"] == "inventory"


def test_google_merchant_feed(run_cli: Runner, sandbox: Sandbox, tmp_path: Path) -> None:
    source = EXPORTS / "google_merchant_feed.tsv"
    made, parsed, _ = draft(run_cli, sandbox, source, tmp_path, "--object", "products")
    assert "(a Google Merchant export)" in made.out.splitlines()[0]
    assert parsed["key"] == "id"
    assert_covers(parsed, GOOGLE, share=1.0)
    # "34.90 EUR": a number with its currency, read with a number format.
    assert parsed["columns"]["price"] == {
        "property": "price",
        "type": "number",
        "number": {"decimal": "."},
    }
    assert "product_type" not in parsed["columns"]  # "Apparel > Shirts" is no product type
    nightly(run_cli, sandbox, tmp_path / f"{source.stem}.yaml", source, tmp_path)
    prices = {
        r["properties"]["hs_sku"]: r["properties"]["price"] for r in sandbox.records("products")
    }
    assert prices["TS-RED-S"] == "34.9"


def test_mailchimp_audience_export(run_cli: Runner, sandbox: Sandbox, tmp_path: Path) -> None:
    source = EXPORTS / "mailchimp_audience.csv"
    made, parsed, text = draft(run_cli, sandbox, source, tmp_path, "--object", "contacts")
    assert "(a Mailchimp export)" in made.out.splitlines()[0]
    assert parsed["key"] == "Email Address"
    assert_covers(parsed, MAILCHIMP)
    # "03/14": a birthday without a year is no date; said, and left to the user.
    assert "Birthday" not in parsed["columns"]
    assert 'not date_of_birth: values such as "03/14", "11/02" are not dates' in text
    # Mailchimp's Address holds the whole address in one cell: no street address.
    assert "Address" not in parsed["columns"]
    assert "holds the whole address in one cell" in text
    first = nightly(run_cli, sandbox, tmp_path / f"{source.stem}.yaml", source, tmp_path)
    assert first == "contacts: 4 rows: 4 created.", first


def test_a_full_name_column_is_no_first_name(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    source = write_csv(
        tmp_path / "customers.csv",
        [["Name", "Email", "Phone"], ["Anna Berg", "anna@example.com", "+49 30 1"]],
    )
    _, parsed, _ = draft(run_cli, sandbox, source, tmp_path, "--object", "contacts")
    assert mapped(parsed) == {"Email": "email", "Phone": "phone"}


def test_no_key_is_said_in_the_draft_and_on_stderr(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    source = write_csv(
        tmp_path / "plain.csv",
        [["Product", "Price"], ["Mug", "12.50"], ["Cup", "9.00"]],
    )
    made, parsed, text = draft(run_cli, sandbox, source, tmp_path, "--object", "products")
    assert "key" not in parsed
    assert "# key: none proposed: no column is matched to hs_sku, email" in text
    assert "Without a key, reruns cannot recognise records" in text
    assert "hubspot-import: init proposed no key: no column is matched to hs_sku" in made.message
    assert "--import-again" in made.message


@pytest.mark.parametrize(
    ("rows", "why"),
    [
        (
            [["SKU", "Name"], ["A-1", "Mug"], ["", "Cup"], ["A-3", "Jug"]],
            "SKU (hs_sku) is empty in row 3",
        ),
        (
            [["SKU", "Name"], ["A-1", "Mug"], ["A-2", "Cup"], ["a-1", "Jug"]],
            "SKU (hs_sku) holds 'A-1' in rows 2 and 4",
        ),
    ],
    ids=["empty", "repeated"],
)
def test_a_sku_column_that_cannot_identify_rows_is_no_key(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, rows: list[list[str]], why: str
) -> None:
    source = write_csv(tmp_path / "skus.csv", rows)
    made, parsed, text = draft(run_cli, sandbox, source, tmp_path, "--object", "products")
    assert "key" not in parsed
    assert parsed["columns"]["SKU"] == {"property": "hs_sku"}
    assert why in made.message
    assert why in " ".join(line.lstrip("# ") for line in text.splitlines())


def test_variants_without_a_sku_are_named(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    source = write_csv(
        tmp_path / "shop.csv",
        [
            ["Handle", "Title", "Variant SKU", "Variant Price", "Image Src"],
            ["tee", "Tee", "T-S", "10.00", "https://cdn.example/t1.jpg"],
            ["tee", "", "T-M", "10.00", ""],
            ["tee", "", "", "10.00", ""],
            ["tee", "", "", "", "https://cdn.example/t2.jpg"],
            ["mug", "Mug", "M-1", "8.00", ""],
        ],
    )
    made, parsed, text = draft(run_cli, sandbox, source, tmp_path, "--object", "products")
    assert parsed["key"] == "Variant SKU"
    assert parsed["skip_rows_without"] == ["Variant SKU"]
    assert parsed["group_by"] == "Handle"
    assert parsed["fill_down"] == ["Title"]
    said = "2 rows have no Variant SKU, and are skipped; 1 of them (row 4) carry more than images"
    assert said in made.out
    assert "give them a Variant SKU to import them" in text.replace("\n# ", " ")


def test_header_row_is_found_or_given_and_written(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    source = write_csv(
        tmp_path / "titled.csv",
        [["Catalogue export", ""], ["", ""], ["SKU", "Name"], ["A-1", "Mug"], ["A-2", "Cup"]],
    )
    made, parsed, _ = draft(run_cli, sandbox, source, tmp_path, "--object", "products")
    assert parsed["header_row"] == 3
    assert parsed["key"] == "SKU"
    assert "header: row 3 (header_row: 3)" in made.out
    _given, parsed, _ = draft(
        run_cli, sandbox, source, tmp_path, "--object", "products", "--header-row", "3", "--force"
    )
    assert parsed["header_row"] == 3
    plain = write_csv(tmp_path / "plain.csv", [["SKU", "Name"], ["A-1", "Mug"]])
    _, parsed, _ = draft(run_cli, sandbox, plain, tmp_path, "--object", "products")
    assert "header_row" not in parsed


def test_init_help_names_the_first_visible_sheet_and_header_row(run_cli: Runner) -> None:
    shown = run_cli("init", "--help")
    assert shown.code == 0
    assert "first visible sheet" in shown.out
    assert "--header-row" in shown.out
    refused = run_cli("init", "x.csv", "--object", "products", "--header-row", "0")
    assert refused.code == 2


def test_fuzzy_and_partial_matches_say_so(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    source = write_csv(
        tmp_path / "typos.csv",
        [["SKU", "Decription", "Type"], ["A-1", "A mug", "service"], ["A-2", "A cup", "inventory"]],
    )
    made, _parsed, text = draft(run_cli, sandbox, source, tmp_path, "--object", "products")
    assert re.search(
        r'Decription: \{property: description\}  # fuzzy 9\d %: label "Description" \(check\)', text
    ), text
    assert "Type: {property: hs_product_type, type: enumeration}  # words of the label" in text
    assert "check: 'Decription' -> description" in made.out


def test_export_words_name_hubspot_default_properties() -> None:
    for object_type, exports in TABLES.items():
        for export, headers in exports.items():
            targets = {t for meaning in headers.values() for t in meaning.split()}
            unknown = targets - HUBSPOT_DEFAULTS[object_type] - CUSTOM_TARGETS
            assert not unknown, (object_type, export, unknown)
            folded = [letters(h) for h in headers]
            assert len(folded) == len(set(folded)), (object_type, export)


def test_exports_are_told_apart_by_their_own_headers() -> None:
    def columns(name: str) -> list[str]:
        return (EXPORTS / name).read_text("utf-8-sig").splitlines()[0].replace("\t", ",").split(",")

    assert detect_export(columns("shopify_products.csv"), "products") == "Shopify"
    assert detect_export(columns("hubspot_products.csv"), "products") == "HubSpot"
    assert detect_export(columns("google_merchant_feed.tsv"), "products") == "Google Merchant"
    assert detect_export(columns("mailchimp_audience.csv"), "contacts") == "Mailchimp"
    # Headers every export writes tell nothing: a sheet of its own is no export.
    assert detect_export(["SKU", "Name", "Description", "Price", "Type"], "products") is None
    assert [w.targets for w in export_words("variant sku", "products")] == [("hs_sku",)]


def test_shopify_2024_export_columns(run_cli: Runner, sandbox: Sandbox, tmp_path: Path) -> None:
    header = [
        "Title", "URL handle", "Description", "Vendor", "Product category", "Type", "Tags",
        "Published on online store", "Status", "SKU", "Barcode", "Option1 name", "Option1 value",
        "Price", "Compare-at price", "Cost per item", "Charge tax", "Inventory tracker",
        "Inventory quantity", "Weight value (grams)", "Weight unit for display",
        "Requires shipping", "Product image URL", "Image position", "Variant image URL",
    ]  # fmt: skip
    rows = [
        ["Trail Cap", "trail-cap", "<p>Light cap</p>", "Summit", "", "Hats", "", "TRUE",
         "Active", "CAP-GR", "", "Color", "Green", "19.00", "", "7.10", "TRUE", "shopify", "5",
         "80", "g", "TRUE", "https://cdn.example/cap.jpg", "1", ""],
        ["", "trail-cap", "", "", "", "", "", "", "", "CAP-BK", "", "", "Black", "19.00", "",
         "7.10", "TRUE", "shopify", "2", "80", "g", "TRUE", "", "", ""],
        ["", "trail-cap", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "",
         "", "", "https://cdn.example/cap-2.jpg", "2", ""],
        ["Wool Socks", "wool-socks", "", "Summit", "", "Socks", "", "TRUE", "Active", "SOCK-1",
         "", "Title", "Default Title", "12.00", "", "", "TRUE", "shopify", "9", "60", "g", "TRUE",
         "", "", ""],
    ]  # fmt: skip
    source = write_csv(tmp_path / "products_export_1.csv", [header, *rows])
    made, parsed, _ = draft(run_cli, sandbox, source, tmp_path, "--object", "products")
    assert "(a Shopify export)" in made.out.splitlines()[0]
    assert parsed["key"] == "SKU"
    assert parsed["group_by"] == "URL handle"
    assert parsed["skip_rows_without"] == ["SKU"]
    assert mapped(parsed) == {
        "Title": "name",
        "Description": "description",
        "Vendor": "brand",
        "SKU": "hs_sku",
        "Price": "price",
        "Cost per item": "hs_cost_of_goods_sold",
        "Variant image URL": "hs_images",
    }
    first = nightly(run_cli, sandbox, tmp_path / f"{source.stem}.yaml", source, tmp_path)
    assert first == "products: 4 rows: 3 created, 1 skipped.", first
    names = {
        r["properties"]["hs_sku"]: r["properties"]["name"] for r in sandbox.records("products")
    }
    assert names == {"CAP-GR": "Trail Cap", "CAP-BK": "Trail Cap", "SOCK-1": "Wool Socks"}


def test_hubspot_contacts_export_with_owners(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    header = [
        "Record ID", "First Name", "Last Name", "Email", "Phone Number", "Contact owner",
        "Lifecycle Stage", "Street Address", "Postal Code", "Create Date",
    ]  # fmt: skip
    rows = [
        ["101", "Ada", "Lovelace", "ada@example.com", "+44 20 7946 0000", "Anna Schmidt",
         "Lead", "1 Main St", "10115", "2024-01-02 10:00"],
        ["102", "Alan", "Turing", "alan@example.com", "", "anna.weber@example.com", "Customer",
         "", "", "2024-01-03 11:00"],
    ]  # fmt: skip
    source = write_csv(tmp_path / "hubspot-crm-exports-all-contacts.csv", [header, *rows])
    made, parsed, _ = draft(run_cli, sandbox, source, tmp_path, "--object", "contacts")
    assert "(a HubSpot export)" in made.out.splitlines()[0]
    assert parsed["key"] == "Email"
    assert parsed["columns"]["Contact owner"] == {"property": "hubspot_owner_id", "type": "owner"}
    assert parsed["columns"]["Lifecycle Stage"]["property"] == "lifecyclestage"
    assert mapped(parsed)["Street Address"] == "address"
    assert mapped(parsed)["Postal Code"] == "zip"
    nightly(run_cli, sandbox, tmp_path / f"{source.stem}.yaml", source, tmp_path)
    # Owners the portal does not have: the column is left out, and the draft says why.
    rows[0][5] = "Bob Nobody"
    rows[1][5] = "carol@elsewhere.example"
    other = write_csv(tmp_path / "strangers.csv", [header, *rows])
    _, parsed, text = draft(run_cli, sandbox, other, tmp_path, "--object", "contacts")
    assert "Contact owner" not in parsed["columns"]
    assert 'values such as "Bob Nobody", "carol@elsewhere.example" name no owner' in text


def test_an_xlsx_with_a_title_line_goes_through_init_check_and_two_nights(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    source = write_xlsx(
        tmp_path / "catalogue.xlsx",
        [
            ["Catalogue export 2026-12-01"],
            [],
            ["SKU", "Name", "Unit price", "Product description"],
            ["T-001", "Mug", 12.5, "Stoneware"],
            ["T-002", "Cup", 9, ""],
            ["T-003", "Jug", 24.9, "Glazed"],
        ],
        sheet="Catalogue",
    )
    out = tmp_path / "catalogue.yaml"
    made = run_cli("init", source, "--object", "products", "--out", out, "--base-url", sandbox.url)
    assert made.code == 0, made.err
    parsed = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert parsed["header_row"] == 3
    assert parsed["key"] == "SKU"
    expected = {"SKU": "hs_sku", "Name": "name", "Unit price": "price"}
    expected["Product description"] = "description"
    assert {c: v["property"] for c, v in parsed["columns"].items()} == expected
    assert nightly(run_cli, sandbox, out, source, tmp_path) == "products: 3 rows: 3 created."
    stored = {r["properties"]["hs_sku"]: r["properties"] for r in sandbox.records("products")}
    assert stored["T-001"]["price"] == "12.5"
