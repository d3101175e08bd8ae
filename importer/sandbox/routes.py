"""Where the sandbox sends a request: each path HubSpot serves (in its numbered form) to the
endpoint that answers it, with the write scope checked for the endpoints that write."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .associations import associations_batch
from .config import Fault, SandboxConfig
from .currencies import company_currency, current_rates
from .owners import get_owner, list_owners
from .pipelines import get_pipeline, list_pipelines
from .portal import Portal
from .replies import not_found
from .schemas import custom_schema, custom_schemas
from .tokens import token_info

if TYPE_CHECKING:
    from .emulator import Emulator

__all__ = ["Request", "route"]

_LABELS = re.compile(r"^/crm/(?:v4/associations|associations/v4)/([^/]+)/([^/]+)/labels$")
_ASSOCIATIONS_BATCH = re.compile(
    r"^/crm/(?:v4/associations|associations/v4)/([^/]+)/([^/]+)/batch/"
    r"(create|associate/default|archive|labels/archive|read)$"
)
_ROUTES = [
    ("POST", re.compile(r"^/crm/v3/objects/([^/]+)/batch/create$"), "create"),
    ("POST", re.compile(r"^/crm/v3/objects/([^/]+)/batch/update$"), "update"),
    ("POST", re.compile(r"^/crm/v3/objects/([^/]+)/batch/upsert$"), "upsert"),
    ("POST", re.compile(r"^/crm/v3/objects/([^/]+)/batch/read$"), "read"),
    ("POST", re.compile(r"^/crm/v3/objects/([^/]+)/search$"), "search"),
    ("GET", re.compile(r"^/crm/v3/objects/([^/]+)$"), "list"),
    ("GET", re.compile(r"^/crm/v3/objects/([^/]+)/([^/]+)$"), "get"),
    ("GET", re.compile(r"^/crm/v3/properties/([^/]+)$"), "properties"),
    ("POST", re.compile(r"^/crm/v3/objects/([^/]+)/batch/archive$"), "archive"),
]
_OWNERS = re.compile(r"^/crm/v3/owners/?$")
_OWNER = re.compile(r"^/crm/v3/owners/([^/]+)$")
_PIPELINES = re.compile(r"^/crm/v3/pipelines/([^/]+)$")
_PIPELINE = re.compile(r"^/crm/v3/pipelines/([^/]+)/([^/]+)$")
_SCHEMAS = re.compile(r"^/crm-object-schemas/v3/schemas/?$")
_SCHEMA = re.compile(r"^/crm-object-schemas/v3/schemas/([^/]+)$")
_COMPANY_CURRENCY = "/settings/v3/currencies/company-currency"
_CURRENT_RATES = "/settings/v3/currencies/exchange-rates/current"
_WRITES = frozenset({"create", "update", "upsert", "archive"})
"""The object endpoints that need the type's write scope."""


@dataclass(frozen=True, kw_only=True)
class Request:
    """One request as the handler read it, with the fault injected for it."""

    method: str
    path: str
    """The path as requested (dated or numbered)."""
    query: dict[str, list[str]]
    body: Any
    """The body's JSON (None without a body, or when it is not JSON)."""
    bad_json: str | None
    """Why the body is not JSON, or None."""
    arrived: float
    """When the request reached this host, on the monotonic clock."""
    fault: Fault | None

    @property
    def search(self) -> bool:
        """A search, which has limits of its own."""
        return self.method == "POST" and self.path.endswith("/search")


def route(sandbox: Emulator, request: Request, path: str) -> tuple[int, Any]:
    """The status and body answering `request` at `path` (the numbered form of its path)."""
    method = request.method
    if method == "GET" and path == "/account-info/v3/details":
        return 200, _account_details(sandbox.portal, sandbox.config)
    described = token_info(sandbox, method, path, request.body)
    if described is not None:
        return described
    setting = _setting(sandbox, request, path) if method == "GET" else None
    if setting is not None:
        return 200, setting
    labels = _LABELS.match(path)
    if method == "GET" and labels:
        from_type = sandbox.object_type(labels.group(1))
        to_type = sandbox.object_type(labels.group(2))
        return 200, {"results": sandbox.portal.association_labels(from_type, to_type)}
    batch = _ASSOCIATIONS_BATCH.match(path)
    if method == "POST" and batch:
        from_type = sandbox.object_type(batch.group(1))
        to_type = sandbox.object_type(batch.group(2))
        if batch.group(3) != "read":
            sandbox.require_scope(from_type)
        dated = request.path != path  # asked at a date version, not at /crm/v4
        return associations_batch(
            sandbox, from_type, to_type, batch.group(3), request.body, dated=dated
        )
    for verb, pattern, name in _ROUTES:
        match = pattern.match(path)
        if verb == method and match:
            return _objects(sandbox, request, name, match)
    raise not_found(request.path)


def _account_details(portal: Portal, config: SandboxConfig) -> dict[str, Any]:
    """The account-info details of a portal (the sandbox's are in Berlin, in its currencies)."""
    return {
        "portalId": portal.portal_id,
        "accountType": portal.account_type,
        "timeZone": "Europe/Berlin",
        "companyCurrency": config.company_currency,
        "additionalCurrencies": list(config.additional_currencies),
        "uiDomain": "app.hubspot.com",
        "dataHostingLocation": "eu1",
        "utcOffset": "+01:00",
        "utcOffsetMilliseconds": 3_600_000,
    }


def _setting(sandbox: Emulator, request: Request, path: str) -> dict[str, Any] | None:
    """The answer of a GET of the owners, pipelines, currencies or custom object schemas at
    `path` (its numbered form), or None when `path` is none of theirs."""
    config = sandbox.config
    if path == _COMPANY_CURRENCY:
        return company_currency(config.company_currency)
    if path == _CURRENT_RATES:
        return current_rates(config.company_currency, config.additional_currencies)
    if _OWNERS.match(path):
        return list_owners(config.owners, request.query, f"{sandbox.url}{request.path}")
    if owner := _OWNER.match(path):
        return get_owner(config.owners, owner.group(1), request.query)
    if _SCHEMAS.match(path):
        return custom_schemas(sandbox.portal)
    if schema := _SCHEMA.match(path):
        return custom_schema(sandbox.portal, schema.group(1))
    if pipelines := _PIPELINES.match(path):
        object_type = sandbox.object_type(pipelines.group(1))
        return list_pipelines(object_type, config.pipelines.get(object_type))
    if pipeline := _PIPELINE.match(path):
        object_type = sandbox.object_type(pipeline.group(1))
        return get_pipeline(object_type, config.pipelines.get(object_type), pipeline.group(2))
    return None


def _objects(
    sandbox: Emulator, request: Request, name: str, match: re.Match[str]
) -> tuple[int, Any]:
    """The answer of the object endpoint `name`; `match` holds the object type (and record id)."""
    object_type = sandbox.object_type(match.group(1))
    if name in _WRITES:
        sandbox.require_scope(object_type)
    body = request.body
    if name == "create":
        return sandbox.batch_create(object_type, body, request.fault)
    if name == "update":
        return sandbox.batch_update(object_type, body)
    if name == "upsert":
        return sandbox.batch_upsert(object_type, body)
    if name == "archive":
        return sandbox.batch_archive(object_type, body)
    if name == "read":
        return sandbox.batch_read(object_type, body)
    if name == "search":
        return sandbox.search(object_type, body)
    if name == "list":
        return 200, sandbox.list_objects(object_type, request.query, request.path)
    if name == "get":
        return 200, sandbox.get_object(object_type, match.group(2), request.query)
    defs = sandbox.portal.property_defs(object_type)
    return 200, {"results": [d.as_json(object_type, i) for i, d in enumerate(defs.values())]}
