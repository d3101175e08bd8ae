"""The portal's currencies as HubSpot's currencies API gives them (its company currency and
the current rate of each other currency), and the product price property each one has."""

from __future__ import annotations

from typing import Any

from .portal import PropertyDef

__all__ = [
    "DEFAULT_ADDITIONAL_CURRENCIES",
    "DEFAULT_COMPANY_CURRENCY",
    "company_currency",
    "current_rates",
    "price_defs",
]

DEFAULT_COMPANY_CURRENCY = "EUR"
DEFAULT_ADDITIONAL_CURRENCIES = {"USD": 0.92, "GBP": 1.17}
"""The demo portal's other currencies, each with its rate: what one unit of it is worth in
the company currency (HubSpot's conversionRate)."""
_SET_UP = "2024-01-15T09:00:00Z"
"""When the demo portal's currencies were set up."""
_RATE_IDS = 9_100_001


def company_currency(code: str) -> dict[str, Any]:
    """HubSpot's CompanyCurrency: the currency's code is its `id` (there is no currencyCode)."""
    return {"id": code, "createdAt": _SET_UP}


def current_rates(company: str, additional: dict[str, float]) -> dict[str, Any]:
    """The current exchange rate of each additional currency into the company currency."""
    return {
        "results": [
            {
                "id": str(_RATE_IDS + n),
                "fromCurrencyCode": code,
                "toCurrencyCode": company,
                "conversionRate": rate,
                "effectiveAt": _SET_UP,
                "visibleInUI": True,
                "createdAt": _SET_UP,
                "updatedAt": _SET_UP,
            }
            for n, (code, rate) in enumerate(additional.items())
        ]
    }


def price_defs(currencies: list[str]) -> tuple[PropertyDef, ...]:
    """A product's unit price in each of the portal's currencies (hs_price_eur, ...): a
    currency the portal does not have has no such property."""
    return tuple(
        PropertyDef(
            name=f"hs_price_{code.lower()}",
            label=f"Unit price ({code.upper()})",
            type="number",
            field_type="number",
            number_display_hint="currency",
        )
        for code in currencies
    )
