"""Preflight against the portal: every problem known before the first write; check and init."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest
import yaml

from importer.sandbox import AssociationLabel, PropertyDef, Sandbox

from .conftest import ROOT, CliRun, read_sheet, write_csv, write_mapping, write_xlsx

Runner = Callable[..., CliRun]


@pytest.fixture
def portal(sandbox: Sandbox) -> Sandbox:
    """The sandbox portal with a multi-select and a unique custom property added."""
    sandbox.portal.add_property(
        "products",
        PropertyDef(
            name="colours",
            label="Colours",
            type="enumeration",
            field_type="checkbox",
            options=("red", "green", "blue"),
        ),
    )
    sandbox.portal.add_property("products", PropertyDef(name="gtin", label="GTIN", unique=True))
    sandbox.portal.add_property(
        "products", PropertyDef(name="available_from", label="Available from", type="datetime")
    )
    return sandbox


def posts(box: Sandbox) -> list[str]:
    return [r.path for r in box.received if r.method == "POST"]


MAPPING = """\
object_type: products
key: SKU
columns:
  SKU: hs_sku
  Name: {property: name, required: true}
  Price: price
  Launched: {property: launch_date, format: "%d/%m/%Y"}
  In stock: in_stock
  Type: hs_product_type
  Colours: colours
  GTIN: gtin
  Description: description
  Available: available_from
"""
HEADER = [
    "SKU",
    "Name",
    "Price",
    "Launched",
    "In stock",
    "Type",
    "Colours",
    "GTIN",
    "Description",
    "Available",
]


def test_check_reports_every_mistake_with_its_cell_and_writes_nothing(
    run_cli: Runner, portal: Sandbox, tmp_path: Path
) -> None:
    good = [
        "",
        "Hoodie",
        "45",
        "23/11/2026",
        "yes",
        "Inventory",
        "red; Blue",
        "",
        "ok",
        "2026-12-01 09:00",
    ]
    rows = [HEADER]
    mistakes = {
        "12,50": (
            "Price",
            'use a dot as decimal separator, or say number: {decimal: ","} in the mapping',
        ),
        "1.234,00": (
            "Price",
            "remove the thousands separators and use a dot as decimal separator, or say "
            'number: {decimal: ",", thousands: "."} in the mapping',
        ),
        "31/02/2026": ("Launched", "write it as 23/11/2026 (format %d/%m/%Y) or use a date cell"),
        "2026-13-01": ("Launched", "write it as 23/11/2026 (format %d/%m/%Y) or use a date cell"),
        "perhaps": ("In stock", "write true or false (yes/no and 1/0 work too)"),
        "servce": (
            "Type",
            "use one of: service (Service), inventory (Inventory), non_inventory (Non Inventory)",
        ),
        "red;purple": (
            "Colours",
            'use one of: red (Red), blue (Blue), green (Green); separate several with ";"',
        ),
        "": ("Name", "fill it in"),
        "€12": (
            "Price",
            "remove the currency symbol, unit or percent sign; write the bare number (a "
            "mapping with number: or currency: reads symbols and percents)",
        ),
        "tomorrow": ("Available", "write it as ISO 8601, e.g. 2026-11-23 14:30"),
    }
    for n, (value, (column, _)) in enumerate(mistakes.items()):
        row = [f"{n:04d}", *good[1:]]
        row[HEADER.index(column)] = value
        rows.append(row)
    rows.append(["0100", *good[1:7], "GTIN-1", "ok", ""])  # a unique property twice
    rows.append(["0101", *good[1:7], "GTIN-1", "ok", ""])
    rows.append(["0102", *good[1:]])  # a key twice
    rows.append(["0102", *good[1:]])
    rows.append(["0103", "Mug", "7", "2026-11-23", "no", "Non Inventory", "", "", "", ""])  # ok
    data = write_xlsx(tmp_path / "catalogue.xlsx", rows, sheet="Catalogue")
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    result = run_cli(
        "check",
        "-m",
        mapping,
        data,
        "--base-url",
        portal.url,
        "--out",
        tmp_path / "plan.xlsx",
        "--state-dir",
        tmp_path / "state",
    )

    assert result.code == 1
    assert posts(portal) == []  # nothing written to HubSpot, not even read in batches
    issues = read_sheet(tmp_path / "plan.xlsx", "Issues")
    by_cell = {i["cell"]: i for i in issues}
    for n, (value, (column, hint)) in enumerate(mistakes.items()):
        cell = f"Catalogue!{'ABCDEFGHIJ'[HEADER.index(column)]}{n + 2}"
        assert by_cell[cell]["hint"] == hint, cell
        assert (by_cell[cell]["value"] or "") == value
    assert by_cell["Catalogue!H12"]["problem"] == "not_unique"
    assert "HubSpot requires gtin to be unique" in by_cell["Catalogue!H12"]["message"]
    assert by_cell["Catalogue!A14"]["problem"] == "duplicate_key"
    assert len({i["problem"] for i in issues}) == 8  # 12 kinds of mistake, 8 problem codes
    assert len(issues) == len(mistakes) + 4
    results = read_sheet(tmp_path / "plan.xlsx")
    assert Counter(r["status"] for r in results) == {"invalid": 14, "would_create": 1}
    assert results[-1]["status"] == "would_create"
    assert result.messages[0] == (
        'catalogue.xlsx, sheet Catalogue, cell C2 (Price): "12,50" is '
        'not a number; use a dot as decimal separator, or say number: {decimal: ","} in the '
        "mapping"
    )
    assert not (tmp_path / "state").exists() or not list((tmp_path / "state").glob("*.lock"))


def test_option_labels_and_multi_selects_are_sent_as_values(
    run_cli: Runner, portal: Sandbox, tmp_path: Path
) -> None:
    data = write_csv(
        tmp_path / "c.csv",
        [HEADER, ["1", "Mug", "7", "", "", "Non Inventory", "RED; blue", "", "", ""]],
    )
    result = run_cli(
        "run",
        "-m",
        write_mapping(tmp_path / "m.yaml", MAPPING),
        data,
        "--base-url",
        portal.url,
        "--out",
        tmp_path / "o.xlsx",
    )
    assert result.code == 0, result.err
    (record,) = portal.records("products")
    assert record["properties"]["hs_product_type"] == "non_inventory"
    assert record["properties"]["colours"] == "red;blue"


def test_mapping_problems_against_the_portal_are_all_reported(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    mapping = write_mapping(
        tmp_path / "m.yaml",
        """\
object_type: carts
columns:
  A: hs_totl_price
  B: hs_object_id
  C: {property: paid, type: number}
  D: {property: hs_cart_status, type: enumeration, options: [open, lost]}
  E: hs_cart_name
constants:
  createdate: "2026-01-01"
associations:
  - column: F
    to: contacts
    types:
      - {label: Main buyer}
      - {associationCategory: USER_DEFINED, associationTypeId: 99}
""",
    )
    data = write_csv(tmp_path / "c.csv", [list("ABCDEF"), ["1", "2", "3", "open", "x", "1001"]])
    result = run_cli("run", "-m", mapping, data, "--base-url", sandbox.url)
    assert result.code == 2
    expected = [
        "carts have no property 'hs_totl_price' in this portal; did you mean 'hs_total_price' "
        "(Total price)?",
        "'hs_object_id' (Record ID) is read-only in HubSpot and cannot be imported",
        "the mapping says number, but 'paid' (Paid) is a bool property in HubSpot; use type: bool",
        "'lost' is not an option of 'hs_cart_status' (Cart status); its options are: open, "
        "abandoned, converted, expired",
        "constants.createdate: 'createdate' is set by HubSpot (read-only); remove it",
        "no USER_DEFINED association label 'Main buyer' from carts to contacts; labels: "
        "'Primary buyer'",
        "99 is not a USER_DEFINED association type from carts to contacts in this portal; "
        "known: 12 (Primary buyer)",
    ]
    text = result.message
    assert text.startswith(f"hubspot-import: error: {mapping}: 7 mistakes in the mapping:")
    for line in expected:
        assert line in text, line
    assert posts(sandbox) == []


def test_association_type_by_label_is_resolved_to_its_id(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.portal.labels.append(
        AssociationLabel(
            from_type="carts",
            to_type="contacts",
            category="USER_DEFINED",
            type_id=31,
            label="Gift recipient",
        )
    )
    mapping = write_mapping(
        tmp_path / "m.yaml",
        """\
object_type: carts
columns: {Name: hs_cart_name}
associations:
  - column: Buyer
    to: contacts
    types:
      - {associationCategory: HUBSPOT_DEFINED, associationTypeId: 586}
      - {label: primary BUYER}
      - {label: Gift recipient}
""",
    )
    data = write_csv(tmp_path / "c.csv", [["Name", "Buyer"], ["c1", "1001"]])
    assert (
        run_cli(
            "run", "-m", mapping, data, "--base-url", sandbox.url, "--out", tmp_path / "o.xlsx"
        ).code
        == 0
    )
    (body,) = [r.body for r in sandbox.received if r.path.endswith("/batch/create")]
    assert body["inputs"][0]["associations"] == [
        {
            "to": {"id": "1001"},
            "types": [
                {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 586},
                {"associationCategory": "USER_DEFINED", "associationTypeId": 12},
                {"associationCategory": "USER_DEFINED", "associationTypeId": 31},
            ],
        }
    ]


def test_types_come_from_the_portal_when_the_mapping_does_not_say(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    data = write_csv(tmp_path / "c.csv", [["SKU", "Price", "Day"], ["1", "12,5", "2026-11-31"]])
    mapping = write_mapping(
        tmp_path / "m.yaml",
        "object_type: products\ncolumns:\n  SKU: hs_sku\n  Price: price\n  Day: launch_date\n",
    )
    result = run_cli("check", "-m", mapping, data, "--base-url", sandbox.url)
    assert result.code == 1
    assert [m.split(": ", 1)[0] for m in result.messages[:2]] == [
        "c.csv, cell B2 (Price)",
        "c.csv, cell C2 (Day)",
    ]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            {"token": "pat-other"},
            "could not read the account details: HubSpot refused the "
            "access token (401 INVALID_AUTHENTICATION)",
        ),
        ({"denied_object_types": {"products"}}, None),
    ],
    ids=["401", "403-on-write-only"],
)
def test_auth_while_reading_the_schema(
    run_cli: Runner,
    make_sandbox: Callable[..., Sandbox],
    tmp_path: Path,
    config: dict[str, object],
    expected: str | None,
) -> None:
    box = make_sandbox(**config)
    data = write_csv(tmp_path / "c.csv", [["SKU"], ["1"]])
    mapping = write_mapping(tmp_path / "m.yaml", "object_type: products\ncolumns: {SKU: hs_sku}\n")
    result = run_cli("check", "-m", mapping, data, "--base-url", box.url)
    if expected is None:  # missing write scopes do not stop a read-only check
        assert result.code == 0
    else:
        assert result.code == 2
        assert expected in result.message


def test_403_while_reading_the_schema_exits_2(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    from importer.sandbox import Fault

    sandbox.inject(
        Fault(
            status=403,
            path="/crm/properties/2026-09/",
            body={
                "status": "error",
                "category": "MISSING_SCOPES",
                "message": "This app hasn't been granted all required scopes to make this call.",
                "errors": [
                    {
                        "message": "One or more of the following scopes are required.",
                        "context": {"requiredGranularScopes": ["crm.schemas.products.read"]},
                    }
                ],
            },
        )
    )
    data = write_csv(tmp_path / "c.csv", [["SKU"], ["1"]])
    mapping = write_mapping(tmp_path / "m.yaml", "object_type: products\ncolumns: {SKU: hs_sku}\n")
    result = run_cli("check", "-m", mapping, data, "--base-url", sandbox.url)
    assert result.code == 2
    assert result.message == (
        "hubspot-import: error: could not read the products properties: HubSpot denied access "
        "(403 MISSING_SCOPES): This app hasn't been granted all required scopes to make this "
        "call. Grant the private app one of these scopes: crm.schemas.products.read."
    )


def test_unreachable_portal_exits_2(run_cli: Runner, sandbox: Sandbox, tmp_path: Path) -> None:
    url = sandbox.url
    sandbox.stop()
    data = write_csv(tmp_path / "c.csv", [["SKU"], ["1"]])
    mapping = write_mapping(tmp_path / "m.yaml", "object_type: products\ncolumns: {SKU: hs_sku}\n")
    result = run_cli("check", "-m", mapping, data, "--base-url", url, "--max-attempts", "1")
    assert result.code == 2
    assert f"could not read the account details from {url}" in result.message
    assert "gave up after 1 attempt:" in result.message
    assert "Check --base-url (or HUBSPOT_BASE_URL) and the network." in result.message


def test_no_portal_check_needs_options_in_the_mapping(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    data = write_csv(tmp_path / "c.csv", [["SKU", "Type"], ["1", "service"]])
    mapping = write_mapping(
        tmp_path / "m.yaml",
        "object_type: products\ncolumns:\n  SKU: hs_sku"
        "\n  Type: {property: hs_product_type, type: enumeration}\n",
    )
    result = run_cli("run", "-m", mapping, data, "--base-url", sandbox.url, "--no-portal-check")
    assert result.code == 2
    assert (
        "columns.Type.options: give the allowed values, or let the portal check supply them"
        in result.message
    )
    assert sandbox.received == []


def test_dry_run_is_a_check_that_sends_nothing(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    data = write_csv(tmp_path / "c.csv", [["SKU", "Price"], ["1", "2"], ["2", "3"]])
    mapping = write_mapping(
        tmp_path / "m.yaml",
        "object_type: products\nkey: SKU\ncolumns:\n  SKU: hs_sku\n  Price: price\n",
    )
    state = tmp_path / "state"
    dry = run_cli(
        "run",
        "-m",
        mapping,
        data,
        "--base-url",
        sandbox.url,
        "--dry-run",
        "--state-dir",
        state,
        "--out",
        tmp_path / "d.xlsx",
    )
    assert dry.code == 0
    assert dry.out.startswith("products: 2 rows: 2 would_create.")
    assert posts(sandbox) == []
    assert (
        run_cli(
            "run",
            "-m",
            mapping,
            data,
            "--base-url",
            sandbox.url,
            "--state-dir",
            state,
            "--out",
            tmp_path / "r.xlsx",
        ).code
        == 0
    )
    write_csv(tmp_path / "c.csv", [["SKU", "Price"], ["1", "2"], ["2", "4"], ["3", "1"]])
    again = run_cli(
        "check",
        "-m",
        mapping,
        data,
        "--base-url",
        sandbox.url,
        "--state-dir",
        state,
        "--out",
        tmp_path / "c.xlsx",
    )
    assert again.out.startswith("products: 3 rows: 1 unchanged, 1 would_create, 1 would_update.")
    assert "[undone" not in run_cli("runs", "--state-dir", state).out
    assert len(run_cli("runs", "--state-dir", state).out.splitlines()) == 2  # check not recorded


def test_init_then_check_on_the_shipped_catalogue(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    out = tmp_path / "products.yaml"
    data = ROOT / "data" / "products.xlsx"
    made = run_cli("init", data, "--object", "products", "--out", out, "--base-url", sandbox.url)
    assert made.code == 0
    assert (
        made.out.splitlines()[0] == f"Wrote {out}: 10 of 11 columns matched to products properties."
    )
    text = out.read_text(encoding="utf-8")
    assert '  SKU: {property: hs_sku}  # label "SKU" (exact)' in text
    assert (
        '  Launch date: {property: launch_date, type: date}  # label "Launch date" (exact)' in text
    )
    assert "key: SKU  # hs_sku has unique values in HubSpot; SKU is filled in every row" in text
    assert "#   Product page: <property>" in text
    parsed = yaml.safe_load(text)
    assert parsed["columns"]["Type"] == {"property": "hs_product_type", "type": "enumeration"}
    checked = run_cli(
        "check", "-m", out, data, "--base-url", sandbox.url, "--out", tmp_path / "c.xlsx"
    )
    assert checked.code == 0, checked.err
    assert checked.out.startswith("products: 320 rows: 320 would_create.")


def test_init_quotes_awkward_headers_and_guesses_date_formats(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    data = write_xlsx(
        tmp_path / "x.xlsx",
        [
            ["Name: public", "Yes", "Launch date", "#", "Contact ids"],
            ["a", "1", "23/11/2026", "x", "1001;1002"],
            ["b", "2", "01/12/2026", "y", "1003"],
        ],
    )
    out = tmp_path / "x.yaml"
    assert (
        run_cli("init", data, "--object", "carts", "--out", out, "--base-url", sandbox.url).code
        == 0
    )
    parsed = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert set(parsed["columns"]) <= {"Name: public", "Yes", "Launch date", "#"}
    assert parsed["associations"] == [
        {
            "column": "Contact ids",
            "separator": ";",
            "to": "contacts",
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 586}],
        }
    ]
    refused = run_cli("init", data, "--object", "carts", "--out", out, "--base-url", sandbox.url)
    assert refused.code == 2
    assert "exists; choose another --out, or add --force" in refused.message


def test_summary_counts_include_the_plan(run_cli: Runner, sandbox: Sandbox, tmp_path: Path) -> None:
    data = write_csv(tmp_path / "c.csv", [["SKU"], ["1"]])
    mapping = write_mapping(tmp_path / "m.yaml", "object_type: products\ncolumns: {SKU: hs_sku}\n")
    run_cli("check", "-m", mapping, data, "--base-url", sandbox.url, "--out", tmp_path / "c.xlsx")
    summary = {
        r[0]: r[1]
        for r in openpyxl.load_workbook(tmp_path / "c.xlsx")["Summary"].iter_rows(values_only=True)
        if r[0]
    }
    assert summary["would_create"] == 1
    assert summary["Mode"] == "create (plan only: nothing was sent)"
    assert dt.date.today().isoformat() in summary["Started"]
