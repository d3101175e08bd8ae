"""HubSpot API facts the importer and the sandbox share: limits, object types, association ids."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Final, TypeVar

from .errors import ConfigError

__all__ = [
    "API_FALLBACKS",
    "API_VERSION_ENV",
    "DEFAULT_API_VERSION",
    "DEFAULT_ASSOCIATION_TYPES",
    "DEFAULT_BASE_URL",
    "EMAIL_PROPERTIES",
    "LEGACY_API",
    "MAX_ASSOCIATION_INPUTS",
    "MAX_ASSOCIATION_READS",
    "MAX_BATCH_INPUTS",
    "MAX_TEXT_LENGTH",
    "MERGED_IDS",
    "OBJECT_TYPE_IDS",
    "ONE_PARENT",
    "OWNER_PROPERTY",
    "PATH_FAMILIES",
    "SEARCH_FILTERS_MAX",
    "SERVED_API_VERSIONS",
    "ApiPaths",
    "AssociationCategory",
    "canonical_object_type",
    "chunks",
    "epoch_seconds",
    "error_context",
    "held_unique",
    "key_identity",
    "pipeline_properties",
    "reverse_type_id",
    "same_value",
    "stored_number",
    "stored_value",
]

_T = TypeVar("_T")

DEFAULT_BASE_URL: Final = "https://api.hubapi.com"
MAX_BATCH_INPUTS: Final = 100
MAX_ASSOCIATION_INPUTS: Final = 100
"""Inputs per association create/archive request: not documented by HubSpot, 100 is safe."""
MAX_ASSOCIATION_READS: Final = 1000
"""Ids per association batch/read request."""
MAX_TEXT_LENGTH: Final = 65_536
RATE_LIMIT_INTERVAL_MS: Final = 10_000
SEARCH_RATE_PER_SECOND: Final = 5
"""Search has a limit of its own, per token: about 5 requests a second."""
SEARCH_PAGE_MAX: Final = 200
SEARCH_TOTAL_MAX: Final = 10_000
"""Search pages no further than this many results in all (past it: 400)."""
SEARCH_FILTER_GROUPS_MAX: Final = 5
SEARCH_FILTERS_PER_GROUP_MAX: Final = 10
SEARCH_FILTERS_MAX: Final = 25
"""Filters in all groups of one search together (HubSpot's limits since August 2024)."""
SEARCH_IN_VALUES_MAX: Final = 100

API_VERSION_ENV: Final = "HUBSPOT_API_VERSION"
DEFAULT_API_VERSION: Final = "2026-09"
"""HubSpot's current API (GA on 8 September 2026); it enforces a portal's validation rules on
API writes."""
LEGACY_API: Final = "legacy"
"""The numbered paths (/crm/v3, /crm/v4, /account-info/v3): v4 loses support on 30 March
2027, v1-v3 in September 2027."""
API_FALLBACKS: Final = ("2026-03", LEGACY_API)
"""Tried in turn, unless a version is pinned, where HubSpot (or a proxy) does not serve the
default at an address: 2026-03 is supported until about September 2027."""
SERVED_API_VERSIONS: Final = (DEFAULT_API_VERSION, "2026-03")
"""The date versions HubSpot serves today (the sandbox serves these by default)."""
_DATE_VERSION: Final = re.compile(r"(20\d\d)-(0[1-9]|1[0-2])")
PATH_FAMILIES: Final = (
    ("/crm/objects", "/crm/v3/objects"),
    ("/crm/properties", "/crm/v3/properties"),
    ("/crm/associations", "/crm/v4/associations"),
    ("/account-info", "/account-info/v3"),
    ("/crm/owners", "/crm/v3/owners"),
    ("/crm/pipelines", "/crm/v3/pipelines"),
    ("/settings/currencies", "/settings/v3/currencies"),
    ("/crm-object-schemas", "/crm-object-schemas/v3"),
)
"""Each family of paths: its date-based prefix (the version follows it) and its numbered one."""


@dataclass(frozen=True)
class ApiPaths:
    """Every HubSpot path the importer uses, built from one API version.

    A date (`2026-09`, the default, or `2026-03`) uses HubSpot's date-based paths
    (`/crm/objects/2026-09/...`); `legacy` the numbered ones (`/crm/v3/objects/...`), for
    proxies or portals that still need them. Every endpoint the importer calls has a
    date-based path in HubSpot's 2026-03 and 2026-09 references, so nothing stays legacy by
    necessity.
    """

    version: str = DEFAULT_API_VERSION

    def __post_init__(self) -> None:
        version = self.version.strip().lower()
        if version != LEGACY_API and not _DATE_VERSION.fullmatch(version):
            raise ConfigError(
                f"API version {self.version!r} is not one HubSpot uses: give a date version "
                f"YYYY-MM such as {DEFAULT_API_VERSION}, or {LEGACY_API!r} for the numbered "
                f"paths (--api-version or {API_VERSION_ENV})"
            )
        object.__setattr__(self, "version", version)

    @property
    def legacy(self) -> bool:
        return self.version == LEGACY_API

    def _family(self, date_prefix: str, legacy_prefix: str) -> str:
        return legacy_prefix if self.legacy else f"{date_prefix}/{self.version}"

    def objects(self, object_type: str) -> str:
        return f"{self._family('/crm/objects', '/crm/v3/objects')}/{object_type}"

    def record(self, object_type: str, record_id: str) -> str:
        return f"{self.objects(object_type)}/{record_id}"

    def batch(self, object_type: str, operation: str) -> str:
        """`operation`: create, read, update, upsert or archive."""
        return f"{self.objects(object_type)}/batch/{operation}"

    def search(self, object_type: str) -> str:
        return f"{self.objects(object_type)}/search"

    def properties(self, object_type: str) -> str:
        return f"{self._family('/crm/properties', '/crm/v3/properties')}/{object_type}"

    def associations(self, from_type: str, to_type: str) -> str:
        return f"{self._family('/crm/associations', '/crm/v4/associations')}/{from_type}/{to_type}"

    def labels(self, from_type: str, to_type: str) -> str:
        return f"{self.associations(from_type, to_type)}/labels"

    def associations_batch(self, from_type: str, to_type: str, operation: str) -> str:
        """`operation`: create, associate/default, archive, labels/archive or read."""
        return f"{self.associations(from_type, to_type)}/batch/{operation}"

    def schema(self, object_type: str) -> str:
        """A custom object type's schema (its `objectTypeId`, `fullyQualifiedName` and
        `name`), by any of them."""
        family = self._family("/crm-object-schemas", "/crm-object-schemas/v3")
        return f"{family}/schemas/{object_type}"

    def account_details(self) -> str:
        return f"{self._family('/account-info', '/account-info/v3')}/details"

    def owners(self) -> str:
        """The portal's owners (`?email=`, `?archived=true`, paged by `after`)."""
        return self._family("/crm/owners", "/crm/v3/owners")

    def pipelines(self, object_type: str) -> str:
        """The object type's pipelines, each with its stages."""
        return f"{self._family('/crm/pipelines', '/crm/v3/pipelines')}/{object_type}"

    def company_currency(self) -> str:
        return f"{self._family('/settings/currencies', '/settings/v3/currencies')}/company-currency"

    def exchange_rates(self) -> str:
        """The current exchange rate of each of the portal's other currencies."""
        family = self._family("/settings/currencies", "/settings/v3/currencies")
        return f"{family}/exchange-rates/current"

    def builds(self, path: str) -> bool:
        """Whether `path` is one this version builds."""
        return self._family_of(path) is not None

    def translate(self, path: str, to: ApiPaths) -> str:
        """`path`, built from this version, as version `to` builds it (a request sent again at
        another version)."""
        family = self._family_of(path)
        if family is None:
            return path
        return to._family(*family) + path[len(self._family(*family)) :]

    def _family_of(self, path: str) -> tuple[str, str] | None:
        """The family (date-based prefix, numbered prefix) of `path` as this version builds
        it, or None when this version does not build it."""
        return next(
            (
                f
                for f in PATH_FAMILIES
                if re.match(re.escape(self._family(*f)) + r"(?:[/?]|$)", path)
            ),
            None,
        )

    def setting_hint(self, tried: tuple[str, ...] = ()) -> str:
        """What a user changes when HubSpot does not serve this version (nor those `tried`
        before it)."""
        versions = ", ".join(repr(v) for v in (*tried, self.version))
        which = f"any of API versions {versions}" if tried else f"API version {versions}"
        return (
            f"HubSpot does not serve {which} at this address: set --api-version (or "
            f"{API_VERSION_ENV}) to a version HubSpot lists, such as {DEFAULT_API_VERSION}, "
            f"or {LEGACY_API!r} for the numbered paths, and check --base-url"
        )


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


def reverse_type_id(from_type: str, to_type: str, category: str, type_id: int) -> int:
    """The type id of the same association read from the other end: HubSpot's default types
    come in pairs (cart -> contact 586, contact -> cart 587). Others are returned as given."""
    if (
        category == "HUBSPOT_DEFINED"
        and DEFAULT_ASSOCIATION_TYPES.get(from_type, {}).get(to_type) == type_id
    ):
        return DEFAULT_ASSOCIATION_TYPES.get(to_type, {}).get(from_type, type_id)
    return type_id


ONE_PARENT: Final = frozenset({"line_items"})
"""Object types whose records belong to one parent record of a type (a line item to one order,
deal, cart or quote): moving one removes the old link before the new one is made."""


def chunks(items: Sequence[_T], size: int = MAX_BATCH_INPUTS) -> Iterator[list[_T]]:
    """`items` in HubSpot's batches: lists of at most `size` (100 by default), in order."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


MERGED_IDS: Final = "hs_merged_object_ids"
"""The ids of the records merged into a record, `;`-separated, as HubSpot keeps them."""

EMAIL_PROPERTIES: Final = frozenset({("contacts", "email")})
"""Properties HubSpot stores trimmed and lowercased, and holds unique without regard to case."""


def stored_number(value: str) -> str:
    """A number property's value as HubSpot stores and answers it, a number rather than the
    text sent: `007` -> `7`, `7.50` -> `7.5`, `1e3` -> `1000`, `-0` -> `0` (a plain decimal,
    without leading zeros, trailing fractional zeros or an exponent). Anything else is kept."""
    try:
        number = Decimal(value)
    except InvalidOperation:
        return value
    if not number.is_finite():
        return value
    text = format(number, "f")  # "f" writes every digit: no rounding to a context's precision
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def held_unique(object_type: str, prop: str, declared: bool) -> bool:
    """Whether HubSpot holds `prop` unique: as its definition declares (`hasUniqueValue`),
    and a contact's email always (HubSpot keeps one contact per email and documents reading
    and upserting contacts by it, whatever the definition's flag says)."""
    return declared or (canonical_object_type(object_type), prop) in EMAIL_PROPERTIES


OWNER_PROPERTY: Final = "hubspot_owner_id"
"""The record owner: an owner's id (not a user id), from the owners API."""
_PIPELINE_PROPERTIES: Final = {"deals": ("pipeline", "dealstage")}


def pipeline_properties(object_type: str) -> tuple[str, str]:
    """The (pipeline, stage) properties of an object type with pipelines (deals have their
    own names; orders, tickets and the rest use hs_pipeline and hs_pipeline_stage)."""
    return _PIPELINE_PROPERTIES.get(object_type, ("hs_pipeline", "hs_pipeline_stage"))


def stored_value(object_type: str, prop: str | None, value: str) -> str:
    """A value as HubSpot stores it, so keys compare as HubSpot compares them: a contact's
    email trimmed and lowercased; every other value exactly as sent."""
    if (canonical_object_type(object_type), prop) in EMAIL_PROPERTIES:
        return value.strip().lower()
    return value


def key_identity(object_type: str, prop: str | None, value: str) -> str:
    """A key value as this tool tells records apart: as HubSpot stores it (`stored_value`), in
    Unicode's composed form (NFC), so that `Café` typed on a Mac (`e` and a combining accent)
    and `Café` typed elsewhere are one key, as the duplicate-key check already counts them."""
    return unicodedata.normalize("NFC", stored_value(object_type, prop, value))


def epoch_seconds(stamp: str) -> float | None:
    """A HubSpot timestamp (ISO 8601, taken as UTC without an offset, or epoch milliseconds)
    as epoch seconds; None when it is neither."""
    text = stamp.strip()
    if text.isdigit():
        return int(text) / 1000
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()


def same_value(object_type: str, prop: str, held: object, sent: str) -> bool:
    """Whether HubSpot holds what was sent, as HubSpot would store it: the same stored value,
    or the same number or moment written another way (HubSpot may answer `12.5` for `12.50`,
    a date as its epoch milliseconds, or a time with milliseconds added)."""
    if held is None or held == "":
        return sent == ""
    have, want = stored_value(object_type, prop, str(held)), stored_value(object_type, prop, sent)
    if have == want:
        return True
    try:
        return Decimal(have) == Decimal(want)
    except InvalidOperation:
        pass
    moments = epoch_seconds(have), epoch_seconds(want)
    return moments[0] is not None and moments[0] == moments[1]


def error_context(error: object) -> dict[str, list[str]]:
    """An error's `context` as HubSpot documents it (each key a list of strings), whatever
    the answer holds: a context that is not an object is none, a single value a list of one,
    and anything else in it is left out, so that no reader trips on a malformed answer."""
    context = error.get("context") if isinstance(error, dict) else None
    if not isinstance(context, dict):
        return {}
    found: dict[str, list[str]] = {}
    for key, value in context.items():
        values = value if isinstance(value, list) else [value]
        found[str(key)] = [str(v) for v in values if isinstance(v, (str, int)) and v is not True]
    return found


def canonical_object_type(object_type: str) -> str:
    """`0-7` -> `products`; a known name stays; a custom object's name or id is kept as given."""
    return _NAME_BY_ID.get(object_type, object_type)
