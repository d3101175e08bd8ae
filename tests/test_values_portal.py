"""Values the portal names: owners by email or name, a pipeline's stages by label, prices per
currency, each resolved through HubSpot's own APIs (served by the sandbox) and checked before
anything is sent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from importer.sandbox import Sandbox
from importer.sandbox.owners import Owner

from .conftest import CliRun, creates, read_sheet, write_csv, write_mapping

Runner = Callable[..., CliRun]


def run(
    run_cli: Runner, box: Sandbox, tmp: Path, mapping: str, rows: list[list[str]], *extra: str
) -> CliRun:
    return run_cli(
        "run", "-m", write_mapping(tmp / "m.yaml", mapping), write_csv(tmp / "in.csv", rows),
        "--base-url", box.url, "--state-dir", tmp / "state", "--out", tmp / "out.xlsx", *extra,
    )  # fmt: skip


def stored(box: Sandbox, object_type: str, key: str) -> dict[str, dict[str, Any]]:
    return {r["properties"].get(key): r["properties"] for r in box.records(object_type)}


CATALOGUE = """\
object_type: products
key: SKU
number: {decimal: ",", thousands: "."}
columns:
  SKU: hs_sku
  Name: name
  Preis EUR: {currency: EUR}
  Preis USD: {currency: USD, number: {decimal: ".", thousands: ","}}
  Marge: margin_pct
  Auf Lager: {property: in_stock, values: {"Ja": true, "Nein": false}}
  Verantwortlich: {type: owner}
"""


def test_a_european_catalogue_is_stored_as_hubspot_stores_values(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    rows = [
        ["SKU", "Name", "Preis EUR", "Preis USD", "Marge", "Auf Lager", "Verantwortlich"],
        ["A-1", "Tasse", "1.299,00 €", "$1,410.50", "15 %", "Ja", "ANNA.SCHMIDT@example.com"],
        ["A-2", "Teller", "12,50", "13.60", "7,5%", "nein", "Lukas Müller"],
        ["A-3", "Krug", "€ 3", "", "", "", "71000004"],
    ]
    result = run(run_cli, sandbox, tmp_path, CATALOGUE, rows)
    assert result.code == 0, result.err
    products = stored(sandbox, "products", "hs_sku")
    # Numbers as HubSpot holds them: 1299.00 is sent, 1299 answered.
    assert {k: products[k] for k in ("A-1", "A-2", "A-3")} == {
        "A-1": products["A-1"] | {"hs_price_eur": "1299", "hs_price_usd": "1410.5",
                                  "margin_pct": "15", "in_stock": "true",
                                  "hubspot_owner_id": "71000001"},
        "A-2": products["A-2"] | {"hs_price_eur": "12.5", "hs_price_usd": "13.6",
                                  "margin_pct": "7.5", "in_stock": "false",
                                  "hubspot_owner_id": "71000003"},
        "A-3": products["A-3"] | {"hs_price_eur": "3", "hubspot_owner_id": "71000004"},
    }  # fmt: skip
    assert "hs_price_usd" not in products["A-3"] or products["A-3"]["hs_price_usd"] in ("", None)
    owners_reads = [r for r in sandbox.received if "/owners/" in r.path]
    assert len(owners_reads) == 2  # active and archived owners, once per run
    again = run(run_cli, sandbox, tmp_path, CATALOGUE, rows)
    assert again.code == 0
    assert again.out.startswith("products: 3 rows: 3 unchanged."), again.out


def test_owners_that_cannot_own_a_record_are_invalid_cells_saying_why(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path, run_cli: Runner
) -> None:
    from importer.sandbox.owners import DEFAULT_OWNERS

    twin = Owner(id="71000009", email="max.2@example.com", first_name="Anna",
                 last_name="Schmidt", user_id=81000009)  # fmt: skip
    box = make_sandbox(owners=(*DEFAULT_OWNERS, twin))
    rows = [
        ["SKU", "Name", "Verantwortlich"],
        ["B-1", "Tasse", "jonas.becker@example.com"],  # deactivated
        ["B-2", "Teller", "Anna Schmidt"],  # two owners have this name
        ["B-3", "Krug", "nobody@example.com"],
        ["B-4", "Kanne", "anna.weber@example.com"],
    ]
    mapping = "object_type: products\nkey: SKU\ncolumns:\n  SKU: hs_sku\n  Name: name\n" \
              "  Verantwortlich: hubspot_owner_id\n"  # fmt: skip
    result = run(run_cli, box, tmp_path, mapping, rows)
    assert result.code == 1
    by_sku = {r["SKU"]: r for r in read_sheet(tmp_path / "out.xlsx")}
    assert by_sku["B-4"]["status"] == "created"
    assert {k: by_sku[k]["status"] for k in ("B-1", "B-2", "B-3")} == dict.fromkeys(
        ("B-1", "B-2", "B-3"), "invalid"
    )
    issues = {r["value"]: r for r in read_sheet(tmp_path / "out.xlsx", "Issues")}
    assert "Jonas Becker is a deactivated owner" in issues["jonas.becker@example.com"]["message"]
    assert "2 owners are called Anna Schmidt" in issues["Anna Schmidt"]["message"]
    assert issues["nobody@example.com"]["message"] == (
        '"nobody@example.com" is not one of the portal\'s owners'
    )
    assert stored(box, "products", "hs_sku")["B-4"]["hubspot_owner_id"] == "71000002"


DEALS = """\
object_type: deals
columns:
  Deal: dealname
  Stage: {pipeline: Renewals}
"""


def test_stage_labels_of_a_pipeline_are_sent_as_its_stage_ids_with_the_pipeline(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    rows = [
        ["Deal", "Stage"],
        ["Renewal Acme", "closed won"],
        ["Renewal Globex", "Quote sent"],
        ["Renewal Initech", "Contract sent"],  # a stage of the Sales Pipeline
        ["Renewal Umbrella", ""],  # no stage: no pipeline either
    ]
    result = run(run_cli, sandbox, tmp_path, DEALS, rows)
    assert result.code == 1
    deals = stored(sandbox, "deals", "dealname")
    assert (deals["Renewal Acme"]["dealstage"], deals["Renewal Acme"]["pipeline"]) == (
        "75123459",
        "75123456",
    )
    assert deals["Renewal Globex"]["dealstage"] == "75123458"
    assert "Renewal Initech" not in deals
    sent = {i["properties"]["dealname"]: i["properties"] for b in creates(sandbox)
            for i in b["inputs"]}  # fmt: skip
    assert "pipeline" not in sent["Renewal Umbrella"]
    assert sent["Renewal Globex"]["pipeline"] == "75123456"
    (issue,) = read_sheet(tmp_path / "out.xlsx", "Issues")
    assert issue["message"] == (
        '"Contract sent": a stage of pipeline Sales Pipeline, not of Renewals'
    )


def test_mappings_the_portal_cannot_honour_stop_before_anything_is_sent(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    cases = {
        "object_type: deals\ncolumns:\n  Deal: dealname\n  Stage: {pipeline: Wholesale}\n": (
            "deals have no pipeline 'Wholesale' in this portal; its pipelines: Sales Pipeline "
            "(id default), Renewals (id 75123456)"
        ),
        "object_type: products\ncolumns:\n  Deal: name\n  Stage: {currency: JPY}\n": (
            "this portal has no currency JPY; its currencies are EUR (the company currency), "
            "GBP, USD"
        ),
        "object_type: products\ncolumns:\n  Deal: name\n"
        '  Stage: {property: in_stock, values: {"Ja": "oui"}}\n': (
            "in_stock takes true or false, so these words map to values HubSpot would refuse: "
            "'Ja': 'oui'"
        ),
        "object_type: deals\ncolumns:\n  Deal: dealname\n"
        "  Stage: {property: amount, pipeline: Renewals}\n": (
            "a pipeline goes with the stage property of deals (dealstage), not amount"
        ),
        "object_type: products\ncolumns:\n  Deal: name\n"
        "  Stage: {property: brand, type: owner}\n": ("brand does not hold owners in HubSpot"),
        "object_type: products\ncolumns:\n  Deal: name\n"
        '  Stage: {property: hubspot_owner_id, values: {"AS": "71000001"}}\n': (
            "hubspot_owner_id holds owners, which cells name by email, full name or id"
        ),
        "object_type: deals\ncolumns:\n  Deal: dealname\n"
        '  Stage: {property: dealstage, values: {"Gewonnen": "Closed won"}}\n': (
            "'Gewonnen': 'Closed won' names a label several options of dealstage share"
        ),
        "object_type: products\ncolumns:\n  Deal: name\n"
        "  Stage: {property: description, values: {x: no}}\n": (
            "YAML read the value of 'x' as true or false, and description is a string property"
        ),
        "object_type: deals\ncolumns:\n  Deal: dealname\n  Stage: {pipeline: Renewals}\n"
        "constants:\n  pipeline: default\n": (
            "the column's stages are written with their pipeline, Renewals, so the mapping "
            "cannot also write pipeline"
        ),
    }
    for mapping, message in cases.items():
        before = len(sandbox.received)
        result = run(run_cli, sandbox, tmp_path, mapping, [["Deal", "Stage"], ["x", "y"]])
        assert result.code == 2, (mapping, result.out, result.err)
        assert message in result.err, result.err
        assert not [r for r in sandbox.received[before:] if r.method == "POST"]


def test_owner_and_stage_columns_need_the_portal_check(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    mapping = "object_type: deals\ncolumns:\n  Deal: dealname\n  Owner: {type: owner}\n"
    result = run(run_cli, sandbox, tmp_path, mapping, [["Deal", "Owner"], ["x", "y"]],
                 "--no-portal-check")  # fmt: skip
    assert result.code == 2
    assert "type: owner takes the portal's owners needs the portal check" in result.err


def test_a_label_two_options_share_is_refused_rather_than_guessed(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    mapping = "object_type: deals\ncolumns:\n  Deal: dealname\n  Stage: dealstage\n"
    rows = [
        ["Deal", "Stage"],
        ["Acme", "Closed won"],
        ["Globex", "closedwon"],
        ["Hooli", "Quote sent"],
    ]
    result = run(run_cli, sandbox, tmp_path, mapping, rows)
    assert result.code == 1
    deals = stored(sandbox, "deals", "dealname")
    assert deals["Globex"]["dealstage"] == "closedwon"
    assert "Acme" not in deals
    issues = {r["value"]: r["message"] for r in read_sheet(tmp_path / "out.xlsx", "Issues")}
    assert issues == {
        "Closed won": '"Closed won": 2 options of dealstage have this label (closedwon, '
        "75123459); give the one meant by its value or say pipeline: on the column"
    }
    (failed,) = [r for r in read_sheet(tmp_path / "out.xlsx") if r["Deal"] == "Hooli"]
    assert failed["status"] == "failed"  # a Renewals stage sent without its pipeline
    assert "is not a stage of the deals pipeline default" in failed["message"]


def test_owners_pipelines_and_currencies_are_read_at_the_version_the_portal_serves(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path, run_cli: Runner
) -> None:
    box = make_sandbox(api_versions=("2026-03",))
    rows = [["SKU", "Name", "Preis EUR", "Preis USD", "Marge", "Auf Lager", "Verantwortlich"],
            ["C-1", "Tasse", "1,00", "1.10", "", "Ja", "sophie.martin@example.com"]]  # fmt: skip
    result = run(run_cli, box, tmp_path, CATALOGUE, rows)
    assert result.code == 0, result.err
    reads = {r.path.split("?")[0] for r in box.received if r.method == "GET"}
    assert {"/crm/owners/2026-03", "/settings/currencies/2026-03/company-currency",
            "/settings/currencies/2026-03/exchange-rates/current"} <= reads  # fmt: skip
    assert stored(box, "products", "hs_sku")["C-1"]["hubspot_owner_id"] == "71000004"


def test_the_done_when_catalogue_two_nights(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    """European numbers, EUR and USD prices, German yes/no, owners by email and a marketing
    description under if_empty: night 1 stores every value as HubSpot stores it; marketing
    then polishes a description, the supplier's text changes too, and night 2 writes only
    the price that changed; night 3 writes nothing at all."""
    mapping = CATALOGUE + "  Beschreibung: {property: description, write: if_empty}\n"
    header = ["SKU", "Name", "Preis EUR", "Preis USD", "Marge", "Auf Lager", "Verantwortlich",
              "Beschreibung"]  # fmt: skip
    night_1 = [header,
               ["D-1", "Tasse", "1.299,00", "1,410.00", "15 %", "Ja", "anna.weber@example.com",
                "Lieferantentext"],
               ["D-2", "Teller", "9,90", "10.75", "", "Nein", "lukas.mueller@example.com",
                ""]]  # fmt: skip
    assert run(run_cli, sandbox, tmp_path, mapping, night_1).code == 0
    products = stored(sandbox, "products", "hs_sku")
    assert products["D-1"]["description"] == "Lieferantentext"
    assert products["D-1"]["hubspot_owner_id"] == "71000002"
    sandbox.store.update("products", products["D-1"]["hs_object_id"],
                         {"description": "Von Marketing poliert"})  # fmt: skip
    night_2 = [header, [*night_1[1][:7], "Neuer Lieferantentext"],
               [*night_1[2][:2], "8,90", *night_1[2][3:]]]  # fmt: skip
    before = len(sandbox.received)
    second = run(run_cli, sandbox, tmp_path, mapping, night_2)
    assert second.code == 0, second.err
    updates = [i for r in sandbox.received[before:] if r.path.endswith("/batch/update")
               for i in r.body["inputs"]]  # fmt: skip
    assert [u["properties"] for u in updates] == [{"hs_price_eur": "8.90"}]
    products = stored(sandbox, "products", "hs_sku")
    assert products["D-1"]["description"] == "Von Marketing poliert"
    rows = {r["SKU"]: r for r in read_sheet(tmp_path / "out.xlsx")}
    assert rows["D-1"]["held_back"] == "description (if_empty: HubSpot has a value)"
    before = len(sandbox.received)
    third = run(run_cli, sandbox, tmp_path, mapping, night_2)
    assert third.out.startswith("products: 2 rows: 2 unchanged."), third.out
    assert not [r for r in sandbox.received[before:] if "/batch/" in r.path]


def test_a_price_property_of_a_currency_refuses_a_price_in_another(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    mapping = ("object_type: products\nkey: SKU\ncolumns:\n  SKU: hs_sku\n"
               '  USD: {property: hs_price_usd, number: {decimal: ","}}\n')  # fmt: skip
    rows = [["SKU", "USD"], ["E-1", "$ 12,50"], ["E-2", "€ 12,50"], ["E-3", "12 SEK"]]
    result = run(run_cli, sandbox, tmp_path, mapping, rows)
    assert result.code == 1
    status = {r["SKU"]: r["status"] for r in read_sheet(tmp_path / "out.xlsx")}
    assert status == {"E-1": "created", "E-2": "invalid", "E-3": "invalid"}
    assert stored(sandbox, "products", "hs_sku")["E-1"]["hs_price_usd"] == "12.5"  # a number


def test_an_orders_sheet_gets_its_stage_ids_by_label(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    mapping = ("object_type: orders\nkey: Order\ncolumns:\n  Order: hs_external_order_id\n"
               "  Status: {pipeline: order pipeline}\n  Owner: {type: owner}\n")  # fmt: skip
    rows = [["Order", "Status", "Owner"], ["SO-1", "Shipped", "Sophie Martin"],
            ["SO-2", "checkout completed", ""], ["SO-3", "Closed won", ""]]  # fmt: skip
    result = run(run_cli, sandbox, tmp_path, mapping, rows)
    assert result.code == 1
    orders = stored(sandbox, "orders", "hs_external_order_id")
    pipeline = "b0c8b19c-6666-58c4-8732-4eb9436128e1"
    assert (orders["SO-1"]["hs_pipeline_stage"], orders["SO-1"]["hs_pipeline"]) == (
        "47b0c6da-95eb-5502-b808-cb7de7a0678b",
        pipeline,
    )
    assert orders["SO-1"]["hubspot_owner_id"] == "71000004"
    assert orders["SO-2"]["hs_pipeline_stage"] == "4f5c7993-9e72-5073-94b7-6f4260b29b88"
    (issue,) = read_sheet(tmp_path / "out.xlsx", "Issues")
    assert issue["message"] == '"Closed won" is not one of the stages of Order pipeline'
