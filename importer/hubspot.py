"""HubSpot API facts the importer and the sandbox share: limits, object types, association ids."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = [
    "DEFAULT_ASSOCIATION_TYPES",
    "DEFAULT_BASE_URL",
    "MAX_BATCH_INPUTS",
    "MAX_TEXT_LENGTH",
    "OBJECT_TYPE_IDS",
    "AssociationCategory",
    "canonical_object_type",
]

DEFAULT_BASE_URL: Final = "https://api.hubapi.com"
MAX_BATCH_INPUTS: Final = 100
MAX_TEXT_LENGTH: Final = 65_536
RATE_LIMIT_INTERVAL_MS: Final = 10_000


class AssociationCategory(StrEnum):
    HUBSPOT_DEFINED = "HUBSPOT_DEFINED"
    USER_DEFINED = "USER_DEFINED"
    INTEGRATOR_DEFINED = "INTEGRATOR_DEFINED"
    WORK = "WORK"


OBJECT_TYPE_IDS: Final[dict[str, str]] = {
    "contacts": "0-1",
    "companies": "0-2",
    "deals": "0-3",
    "tickets": "0-5",
    "products": "0-7",
    "line_items": "0-8",
    "quotes": "0-14",
    "orders": "0-123",
    "carts": "0-142",
    "discounts": "0-135",
}
_NAME_BY_ID: Final = {v: k for k, v in OBJECT_TYPE_IDS.items()}

# HUBSPOT_DEFINED association type ids, one direction each: from -> {to: type id}.
DEFAULT_ASSOCIATION_TYPES: Final[dict[str, dict[str, int]]] = {
    "carts": {
        "contacts": 586,
        "line_items": 590,
        "orders": 592,
        "deals": 1347,
        "discounts": 588,
        "quotes": 732,
    },
    "line_items": {"carts": 591, "deals": 20, "orders": 514, "quotes": 68},
    "orders": {"carts": 593, "contacts": 507, "line_items": 513, "deals": 512},
    "contacts": {"carts": 587, "orders": 508, "deals": 4, "companies": 279},
    "deals": {"carts": 1346, "line_items": 19, "contacts": 3, "companies": 341},
    "products": {},
}


def canonical_object_type(object_type: str) -> str:
    """`0-7` -> `products`; a known name stays; a custom object's name or id is kept as given."""
    return _NAME_BY_ID.get(object_type, object_type)
