"""What a sandbox is started with: its settings, the faults to inject, and what it received."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import orjson

from ..core.hubspot import SEARCH_RATE_PER_SECOND, SERVED_API_VERSIONS
from .currencies import DEFAULT_ADDITIONAL_CURRENCIES, DEFAULT_COMPANY_CURRENCY
from .owners import DEFAULT_OWNERS, Owner
from .pipelines import DEFAULT_PIPELINES, Pipeline
from .sources import DEFAULT_APP_ID


@dataclass(kw_only=True)
class SandboxConfig:
    """How the emulated account behaves. Defaults are a Professional portal's limits."""

    token: str | None = None
    """Accept only this bearer token (None: any non-empty token)."""
    denied_object_types: set[str] = field(default_factory=set)
    """Object types the token lacks write scopes for (403 MISSING_SCOPES)."""
    multi_status: bool = True
    """Answer per-input errors with 207 when every input has a unique trace id; when off, any
    bad input fails the whole batch with 400 (as HubSpot does without trace ids)."""
    echo_trace_ids: bool = False
    """Whether created results echo objectWriteTraceId (UNVERIFIED for HubSpot: off)."""
    rate_limit: int = 190
    rate_interval_ms: int = 10_000
    daily_limit: int = 650_000
    retry_after: bool = False
    """Send Retry-After on 429 (UNVERIFIED for HubSpot: off)."""
    latency: float = 0.0
    error_rate: float = 0.0
    """Share of write/read requests answered 503 before being processed."""
    drop_rate: float = 0.0
    """Share of write/read requests processed, then the connection closed with no answer."""
    hang_rate: float = 0.0
    """Share of write/read requests processed, then answered only after `hang_seconds`."""
    hang_seconds: float = 5.0
    seed: int = 0
    """Seeds the result shuffling and the random faults, so a failing test can be replayed."""
    late_error_rate: float = 0.0
    """Share of write requests carried out, then answered 504 as HubSpot's gateway does when
    it times out while the write goes through (a create answered so may not be resent)."""
    db: Path | None = None
    seed_records: bool = True
    legacy_paths: bool = True
    """Serve the numbered paths (/crm/v3, /crm/v4, /account-info/v3) beside the date-based
    ones; off, they answer 404 as after HubSpot's sunset (v4 30 March 2027, v3 September)."""
    api_versions: tuple[str, ...] = SERVED_API_VERSIONS
    """Date versions served (/crm/objects/2026-09/..., /crm/objects/2026-03/...); others
    answer 404."""
    validation_rules: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    """Object type -> property -> the portal's validation rules for it, as HubSpot's property
    validations API lists them (`{"ruleType": "MAX_NUMBER", "ruleArguments": ["1000"]}`;
    ALPHANUMERIC, MIN_LENGTH, MAX_LENGTH, MIN_NUMBER, MAX_NUMBER and REGEX are checked),
    enforced on writes from API version 2026-09 on."""
    required_when: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)
    """Object type -> property -> (other property, value): the property is required on create
    when the other holds that value (a conditional rule an admin set), from 2026-09 on."""
    association_refusal_rate: float = 0.0
    """Share of association writes (create, archive, labels/archive inputs) refused while the
    others are carried out, on the date-based paths: answered 200/201 with `errors` naming
    them (a portal's association limit reached, say), as HubSpot's date-based API answers;
    on the numbered paths a create answers 207."""
    association_page_size: int = 500
    """Links per id in one page of an association batch read (HubSpot pages them)."""
    search_lag: float = 0.0
    """Seconds before a write is seen by search (HubSpot's search lags writes by seconds)."""
    search_rate_limit: int = SEARCH_RATE_PER_SECOND
    """Search requests allowed per second per token (429 past it)."""
    portals: dict[str, int] = field(default_factory=dict)
    """Tokens of other portals behind the same base URL (token -> portal id), as every portal
    of a HubSpot region shares api.hubapi.com: each has its own records. Other tokens reach
    the home portal."""
    account_types: dict[int, str] = field(default_factory=dict)
    """accountType per portal id (STANDARD, SANDBOX, DEVELOPER_TEST, APP_DEVELOPER)."""
    app_id: int = DEFAULT_APP_ID
    """The app every token belongs to (but those `app_ids` names): the records its writes
    create carry it as their `hs_object_source_id`, and its token info says it."""
    app_ids: dict[str, int] = field(default_factory=dict)
    """Tokens of other apps (token -> app id), as several apps may write to one portal."""
    token_info_status: int = 200
    """How the token-info endpoints answer: 200 describes the token (its app, portal, user
    and scopes); another status answers that error instead, as for a token HubSpot will not
    describe (403) or where the endpoint is not served (404)."""
    owners: tuple[Owner, ...] = DEFAULT_OWNERS
    """The owners the owners API lists (every portal of the sandbox has these): the ids an
    owner property (hubspot_owner_id) accepts are the active ones'."""
    pipelines: dict[str, tuple[Pipeline, ...]] = field(
        default_factory=lambda: dict(DEFAULT_PIPELINES)
    )
    """Object type -> its pipelines: the pipelines API lists them, and they make the options
    of the type's pipeline and stage properties (pipeline/dealstage, hs_pipeline/
    hs_pipeline_stage). A type not named has no pipelines."""
    company_currency: str = DEFAULT_COMPANY_CURRENCY
    additional_currencies: dict[str, float] = field(
        default_factory=lambda: dict(DEFAULT_ADDITIONAL_CURRENCIES)
    )
    """The portal's other currencies, each with its rate into the company currency. Products
    have a price property for the company currency and each of these (hs_price_usd, ...)."""

    @property
    def currencies(self) -> list[str]:
        """Every currency of the portal, the company currency first."""
        return [self.company_currency, *self.additional_currencies]


@dataclass(kw_only=True)
class Fault:
    """A scripted misbehaviour for the next `times` requests whose path contains `path`."""

    status: int | None = None
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    """Close the connection without answering (the request is not processed)."""
    after: bool = False
    """With `status` or `drop`: carry the request out first, then answer so (or not at all)."""
    canceled: bool = False
    """Process the batch but stop halfway: only the first half is created, status CANCELED."""
    times: int = 1
    path: str = "/batch/"


@dataclass(frozen=True, kw_only=True)
class Received:
    """A request as it arrived. Its body is kept as bytes and parsed when asked for: the
    parsed bodies of a long run (millions of objects) would slow every garbage collection of
    the sandbox, and with it every answer."""

    method: str
    path: str
    headers: dict[str, str]
    raw: bytes = b""

    @cached_property
    def body(self) -> Any:
        try:
            return orjson.loads(self.raw) if self.raw else None
        except orjson.JSONDecodeError:
            return None
