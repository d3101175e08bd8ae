"""What the sandbox emulates behind its HTTP side: the portals (each its schema, records and
search index), the injected faults, the rate limits, and the checks every request passes."""

from __future__ import annotations

import bisect
import random
import re
import threading
import uuid
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.hubspot import PATH_FAMILIES
from .catalogue import derived_properties
from .config import Fault, Received, SandboxConfig
from .portal import Portal, default_portal
from .reads import ObjectReads
from .replies import Reply, error, not_found
from .search import SearchIndex
from .seeds import SEED_CONTACTS, SEED_DEALS
from .sources import RecordSource
from .store import Store
from .writes import BatchWrites

__all__ = ["Emulator"]

# Date-based paths and the numbered ones they replace: the handlers know the numbered ones.
# The version may end the path: HubSpot lists its owners at /crm/owners/2026-03.
_FAMILIES = tuple(
    (re.compile(rf"^{dated}/(\d{{4}}-\d{{2}})(?=/|$)"), numbered)
    for dated, numbered in PATH_FAMILIES
)
_LEGACY = re.compile(
    r"^/(?:crm/v\d+/|crm/associations/v4/|account-info/v\d+/|settings/v\d+/currencies/)"
)


@dataclass(frozen=True, kw_only=True)
class _Tenant:
    """One portal behind the sandbox's base URL: its schema, records and search index."""

    portal: Portal
    store: Store
    search_index: SearchIndex

    def records(self, object_type: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        after = None
        while page := self.store.page(object_type, after, 500):
            out += page
            after = page[-1]["id"]
        return out


class Emulator(BatchWrites, ObjectReads):
    """The sandbox without its server: `Sandbox` adds the HTTP side and `url`."""

    def __init__(
        self, config: SandboxConfig | None = None, *, portal: Portal | None = None
    ) -> None:
        self.config = config or SandboxConfig()
        derived = derived_properties(self.config)
        home = portal or default_portal(derived=derived)
        self._tenants = {home.portal_id: self._tenant(home, self.config.db)}
        self._home = self._tenants[home.portal_id]
        for portal_id in dict.fromkeys(self.config.portals.values()):
            if portal_id not in self._tenants:
                kind = self.config.account_types.get(portal_id)
                other = default_portal(portal_id, kind, derived)
                self._tenants[portal_id] = self._tenant(other, None)
        self._current = threading.local()
        """The tenant (portal) of the request this handler thread answers."""
        self._searches: dict[str, deque[float]] = {}
        """Per token: when its searches of the last second arrived."""
        self.received: list[Received] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._rng = random.Random(self.config.seed)
        self._fault_rng = random.Random(self.config.seed + 1)
        self.faults: Counter[str] = Counter()
        """Random faults injected so far, by kind: tests check they really happened."""
        self.write_lock = threading.Lock()  # unique checks and writes happen as one step
        self._window: deque[float] = deque()
        self._daily_used = 0

    def _tenant(self, portal: Portal, db: Path | None) -> _Tenant:
        store = Store(db)
        if self.config.seed_records:
            store.seed("contacts", SEED_CONTACTS)
            store.seed("deals", SEED_DEALS)
        index = SearchIndex(store.everything(), self.config.search_lag)
        store.on_write = index.write
        store.inverse_type_id = portal.inverse_type_id  # labels the portal gains, too
        return _Tenant(portal=portal, store=store, search_index=index)

    @property
    def _tenant_now(self) -> _Tenant:
        tenant: _Tenant = getattr(self._current, "tenant", self._home)
        return tenant

    @property
    def portal(self) -> Portal:
        """The portal of the request being answered (outside a request: the home portal)."""
        return self._tenant_now.portal

    @property
    def store(self) -> Store:
        return self._tenant_now.store

    @property
    def search_index(self) -> SearchIndex:
        return self._tenant_now.search_index

    @property
    def request_version(self) -> str | None:
        """The API version of the request this handler thread answers (None: numbered)."""
        version: str | None = getattr(self._current, "version", None)
        return version

    def canonical_path(self, path: str) -> str:
        """The numbered path a request addresses (remembering its date version for the
        endpoints, as version-dependent rules need it); a 404 for a version or family not
        served."""
        self._current.version = None
        for pattern, numbered in _FAMILIES:
            match = pattern.match(path)
            if match:
                if match.group(1) not in self.config.api_versions:
                    raise not_found(path)
                self._current.version = match.group(1)
                return numbered + path[match.end() :]
        if _LEGACY.match(path) and not self.config.legacy_paths:
            raise not_found(path)
        return path

    def enter(self, token: str) -> None:
        """Answer this request as the portal `token` belongs to, for the app it belongs to."""
        portal_id = self.config.portals.get(token)
        self._current.tenant = self._tenants[portal_id] if portal_id else self._home
        self._current.token = token

    def app_of(self, token: str) -> int:
        """The app a token belongs to."""
        return self.config.app_ids.get(token, self.config.app_id)

    def portal_of(self, token: str) -> int:
        """The portal a token reaches."""
        return self.config.portals.get(token) or self._home.portal.portal_id

    @property
    def writer(self) -> RecordSource:
        """What the records this request creates are made by: the app of its token."""
        return RecordSource.app(self.app_of(getattr(self._current, "token", "")))

    def merge(self, object_type: str, loser: str, winner: str) -> None:
        """Merge two records of the home portal, as a person does in HubSpot's app."""
        with self.write_lock:
            self._home.store.merge(object_type, loser, winner)

    def tenant(self, portal_id: int) -> _Tenant:
        """A portal's records and schema (tests look at a second portal through this)."""
        return self._tenants[portal_id]

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def records(self, object_type: str) -> list[dict[str, Any]]:
        """The home portal's live records of a type (`tenant(id).records` for another's)."""
        return self._home.records(object_type)

    def close(self) -> None:
        """Close every portal's store (the server has stopped)."""
        for tenant in self._tenants.values():
            tenant.store.close()

    # --- request handling (called from handler threads) -------------------------------------

    def take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.path in path:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def refuse_link(self) -> bool:
        """Whether to refuse one association write input (`association_refusal_rate`)."""
        rate = self.config.association_refusal_rate
        if not rate:
            return False
        with self._lock:
            refused = self._fault_rng.random() < rate
            if refused:
                self.faults["link_refused"] += 1
        return refused

    def random_fault(self) -> str | None:
        """'error', 'drop', 'hang' or None, drawn from the configured rates."""
        cfg = self.config
        if not (cfg.error_rate or cfg.drop_rate or cfg.hang_rate or cfg.late_error_rate):
            return None
        with self._lock:
            draw = self._fault_rng.random()
        for kind, rate in (
            ("error", cfg.error_rate),
            ("drop", cfg.drop_rate),
            ("hang", cfg.hang_rate),
            ("late_error", cfg.late_error_rate),
        ):
            if draw < rate:
                self.faults[kind] += 1
                return kind
            draw -= rate
        return None

    def rate_headers(self, *, search: bool = False) -> dict[str, str]:
        """The X-HubSpot-RateLimit-* headers; search answers carry only the daily ones."""
        cfg = self.config
        with self._lock:
            remaining = max(0, cfg.rate_limit - len(self._window))
            daily_left = max(0, cfg.daily_limit - self._daily_used)
        daily = {
            "X-HubSpot-RateLimit-Daily": str(cfg.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(daily_left),
        }
        if search:
            return daily
        return {
            "X-HubSpot-RateLimit-Max": str(cfg.rate_limit),
            "X-HubSpot-RateLimit-Remaining": str(remaining),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(cfg.rate_interval_ms),
            **daily,
        }

    def admit_search(self, token: str, arrived: float) -> None:
        """Search's own limit: so many requests a second per token, not counted in the
        rolling window (but in the daily count)."""
        cfg = self.config
        with self._lock:
            window = self._searches.setdefault(token, deque())
            while window and arrived - window[0] >= 1.0:
                window.popleft()
            if self._daily_used >= cfg.daily_limit:
                policy = "DAILY"
            elif len(window) >= cfg.search_rate_limit:
                policy = "SECONDLY"
            else:
                bisect.insort(window, arrived)
                self._daily_used += 1
                return
        raise _rate_limited(policy, 1.0 if cfg.retry_after else None)

    def admit(self, arrived: float) -> None:
        """Count the request against the limits at its arrival, or refuse it with a 429."""
        cfg = self.config
        with self._lock:
            now = arrived
            interval = cfg.rate_interval_ms / 1000
            while self._window and now - self._window[0] >= interval:
                self._window.popleft()
            policy = None
            if self._daily_used >= cfg.daily_limit:
                policy, wait = "DAILY", 3600.0
            elif len(self._window) >= cfg.rate_limit:
                policy, wait = "TEN_SECONDLY_ROLLING", interval - (now - self._window[0])
            if policy is None:
                # Handler threads may get here out of arrival order: keep the window sorted.
                bisect.insort(self._window, now)
                self._daily_used += 1
                return
        raise _rate_limited(policy, wait if cfg.retry_after else None)

    def authenticate(self, header: str | None) -> str:
        """The request's token, or a 401."""
        token = header[7:].strip() if header and header.startswith("Bearer ") else ""
        if not token:
            raise Reply(
                401,
                error(
                    "Authentication credentials not found. This API supports OAuth 2.0 "
                    "authentication and you can find more details at "
                    "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                    "INVALID_AUTHENTICATION",
                ),
            )
        if self.config.token is not None and token != self.config.token:
            raise Reply(
                401,
                error(
                    "The OAuth token used to make this call is invalid.", "INVALID_AUTHENTICATION"
                ),
            )
        return token

    def require_scope(self, object_type: str) -> None:
        if object_type in self.config.denied_object_types:
            scopes = [f"crm.objects.{object_type}.write"]
            if object_type == "products":
                scopes = ["e-commerce", "crm.objects.products.write"]
            raise Reply(
                403,
                error(
                    "This app hasn't been granted all required scopes to make this call. Read more "
                    "about required scopes here: https://developers.hubspot.com/scopes.",
                    "MISSING_SCOPES",
                    errors=[
                        {
                            "message": "One or more of the following scopes are required.",
                            "context": {"requiredGranularScopes": scopes},
                        }
                    ],
                ),
            )

    def object_type(self, name: str) -> str:
        resolved = self.portal.object_type(name)
        if resolved is None:
            raise Reply(400, error(f"Unable to infer object type from: {name}", "VALIDATION_ERROR"))
        return resolved


def _rate_limited(policy: str, retry_after: float | None) -> Reply:
    """HubSpot's 429 for a spent limit (`policy`: TEN_SECONDLY_ROLLING, SECONDLY, DAILY)."""
    return Reply(
        429,
        {
            "status": "error",
            "message": f"You have reached your {policy.lower()} limit.",
            "category": "RATE_LIMITS",
            "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()),
            "policyName": policy,
        },
        {"Retry-After": str(max(1, round(retry_after)))} if retry_after is not None else {},
    )
