"""The sandbox serves the portal's currencies as HubSpot's currencies API does, its account
details name them, products have a price property for each of them (and none for another),
and number properties say how HubSpot displays them (numberDisplayHint)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from importer.sandbox import Sandbox

from .test_sandbox_fidelity import call, conforms
from .test_sandbox_owners import matches

CURRENCIES = "/settings/currencies/2026-03"
V = "/crm/objects/2026-03"

# HubSpot's CompanyCurrency and ExchangeRate (settings multicurrency spec, 2026-03).
COMPANY_CURRENCY = {
    "type": "object",
    "required": ["createdAt", "id"],
    "properties": {"createdAt": {"type": "string"}, "id": {"type": "string"}},
    "additionalProperties": False,
}
_RATE = {
    "type": "object",
    "required": [
        "conversionRate",
        "createdAt",
        "effectiveAt",
        "fromCurrencyCode",
        "id",
        "toCurrencyCode",
        "updatedAt",
        "visibleInUI",
    ],
    "properties": {
        "conversionRate": {"type": "number"},
        "createdAt": {"type": "string"},
        "effectiveAt": {"type": "string"},
        "fromCurrencyCode": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "id": {"type": "string"},
        "toCurrencyCode": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "updatedAt": {"type": "string"},
        "visibleInUI": {"type": "boolean"},
    },
    "additionalProperties": False,
}
CURRENT_RATES = {
    "type": "object",
    "required": ["results"],
    "properties": {"results": {"type": "array", "items": _RATE}},
    "additionalProperties": False,
}


def get(box: Sandbox, path: str, schema: dict[str, Any]) -> Any:
    r = call(box, "GET", path)
    assert r.status_code == 200, r.text
    matches(r.json(), schema)
    return r.json()


def properties(box: Sandbox, object_type: str) -> dict[str, dict[str, Any]]:
    r = call(box, "GET", f"/crm/properties/2026-03/{object_type}")
    conforms(r.json(), "CollectionResponsePropertyNoPaging")
    return {p["name"]: p for p in r.json()["results"]}


# --- the currencies API and the account details ---------------------------------------------


def test_the_company_currency_is_euro_and_the_others_convert_into_it(sandbox: Sandbox) -> None:
    company = get(sandbox, f"{CURRENCIES}/company-currency", COMPANY_CURRENCY)
    assert company["id"] == "EUR"  # HubSpot names the code `id`: there is no currencyCode
    rates = get(sandbox, f"{CURRENCIES}/exchange-rates/current", CURRENT_RATES)["results"]
    assert [(r["fromCurrencyCode"], r["toCurrencyCode"], r["conversionRate"]) for r in rates] == [
        ("USD", "EUR", 0.92),
        ("GBP", "EUR", 1.17),
    ]
    details = call(sandbox, "GET", "/account-info/2026-03/details").json()
    conforms(details, "AccountDetails")
    assert (details["companyCurrency"], details["additionalCurrencies"]) == ("EUR", ["USD", "GBP"])


def test_the_currencies_a_test_gives_are_the_portals(make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(company_currency="CHF", additional_currencies={"EUR": 1.05})
    assert get(box, f"{CURRENCIES}/company-currency", COMPANY_CURRENCY)["id"] == "CHF"
    (rate,) = get(box, f"{CURRENCIES}/exchange-rates/current", CURRENT_RATES)["results"]
    assert (rate["fromCurrencyCode"], rate["toCurrencyCode"], rate["conversionRate"]) == (
        "EUR",
        "CHF",
        1.05,
    )
    details = call(box, "GET", "/account-info/2026-03/details").json()
    assert (details["companyCurrency"], details["additionalCurrencies"]) == ("CHF", ["EUR"])
    single = make_sandbox(additional_currencies={})
    assert get(single, f"{CURRENCIES}/exchange-rates/current", CURRENT_RATES) == {"results": []}


def test_currencies_are_served_at_served_versions_and_numbered_paths_while_legacy(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    box = make_sandbox(api_versions=("2026-09",))
    assert call(box, "GET", "/settings/currencies/2026-09/company-currency").status_code == 200
    for path in (
        f"{CURRENCIES}/company-currency",
        "/settings/v3/currencies/company-currency",
        "/settings/v3/currencies/exchange-rates/current",
    ):
        assert call(box, "GET", path).status_code == 404
    today = make_sandbox(legacy_paths=True)
    numbered = call(today, "GET", "/settings/v3/currencies/exchange-rates/current")
    assert numbered.status_code == 200
    assert len(numbered.json()["results"]) == 2


# --- a price per currency -------------------------------------------------------------------


def test_products_have_a_writable_price_in_each_of_the_portals_currencies(
    sandbox: Sandbox,
) -> None:
    props = properties(sandbox, "products")
    prices = sorted(n for n in props if n.startswith("hs_price_"))
    assert prices == ["hs_price_eur", "hs_price_gbp", "hs_price_usd"]
    for code in ("EUR", "USD", "GBP"):
        price = props[f"hs_price_{code.lower()}"]
        assert (price["label"], price["type"], price["numberDisplayHint"]) == (
            f"Unit price ({code})",
            "number",
            "currency",
        )
        assert price["calculated"] is False
        assert price["modificationMetadata"]["readOnlyValue"] is False
    inputs = [
        {"properties": {"name": "Mug", "hs_price_eur": "12.50", "hs_price_usd": "13.90"}},
        {"properties": {"name": "Cup", "hs_price_jpy": "1800"}},
    ]
    traced = [{**item, "objectWriteTraceId": f"t{n}"} for n, item in enumerate(inputs)]
    r = call(sandbox, "POST", f"{V}/products/batch/create", {"inputs": traced})
    assert r.status_code == 207
    (mug,) = r.json()["results"]
    assert mug["properties"]["hs_price_eur"] == "12.5"  # a number: stored as one, not as sent
    (err,) = r.json()["errors"]
    assert err["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST"
    assert err["errors"][0]["context"]["propertyName"] == ["hs_price_jpy"]


def test_a_portal_with_other_currencies_has_their_prices_alone(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    box = make_sandbox(company_currency="CHF", additional_currencies={"EUR": 1.05})
    props = properties(box, "products")
    assert sorted(n for n in props if n.startswith("hs_price_")) == ["hs_price_chf", "hs_price_eur"]
    body = {"inputs": [{"properties": {"name": "Mug", "hs_price_usd": "1"}}]}
    r = call(box, "POST", f"{V}/products/batch/create", body)
    assert r.status_code == 400
    assert "PROPERTY_DOESNT_EXIST" in r.json()["message"]


# --- numberDisplayHint ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("object_type", "name", "hint"),
    [
        ("products", "price", "currency"),
        ("products", "hs_cost_of_goods_sold", "currency"),
        ("products", "margin_pct", "percentage"),
        ("products", "weight_kg", "formatted"),
        ("products", "hs_object_id", "unformatted"),
        ("deals", "amount", "currency"),
        ("deals", "win_probability", "probability"),
    ],
)
def test_a_number_property_says_how_it_is_displayed(
    sandbox: Sandbox, object_type: str, name: str, hint: str
) -> None:
    prop = properties(sandbox, object_type)[name]
    assert prop["type"] == "number"
    assert prop["numberDisplayHint"] == hint


def test_only_number_properties_carry_a_display_hint(sandbox: Sandbox) -> None:
    for object_type in ("products", "deals", "contacts"):
        for prop in properties(sandbox, object_type).values():
            assert ("numberDisplayHint" in prop) == (prop["type"] == "number"), prop["name"]
    labels = {n: p["label"] for n, p in properties(sandbox, "products").items()}
    assert labels["margin_pct"] == "Margin (%)"
    assert properties(sandbox, "deals")["win_probability"]["label"] == "Win probability"
