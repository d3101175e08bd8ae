"""Which HubSpot portal a token belongs to: account details, asked once and remembered.

Every portal of a region (production, sandbox accounts, developer test accounts) answers at
the same base URL; only the token tells them apart. The journal is kept per portal, so each
run must know its portal. HubSpot's account details say it; the answer is remembered per token
fingerprint (a hash of base URL and token, never the token) in the state directory, so a
nightly run asks once.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import orjson

from ..core.errors import AuthError, ConfigError, HubSpotUnavailable, UncertainDelivery
from .client import HubSpotClient, Verdict, not_served

__all__ = ["NOT_PRODUCTION", "PortalInfo", "identify_portal"]

log = logging.getLogger(__name__)

CACHE_FILE = "portals.json"
NOT_PRODUCTION = frozenset({"SANDBOX", "DEVELOPER_TEST", "APP_DEVELOPER"})
"""Account types that are not a production portal: a run against one says so."""


@dataclass(frozen=True, kw_only=True)
class PortalInfo:
    portal_id: int
    account_type: str | None = None
    """STANDARD, SANDBOX, DEVELOPER_TEST or APP_DEVELOPER; None when not asked (--portal-id)."""
    ui_domain: str = "app.hubspot.com"

    def describe(self) -> str:
        """`4242424 (SANDBOX)`, as the Summary sheet and `runs` name it."""
        return (
            f"{self.portal_id} ({self.account_type})" if self.account_type else str(self.portal_id)
        )

    @property
    def production(self) -> bool:
        return self.account_type not in NOT_PRODUCTION

    def as_json(self) -> dict[str, object]:
        """As HubSpot's account details name it (kept in portals.json and the journal)."""
        return {
            "portalId": self.portal_id,
            "accountType": self.account_type,
            "uiDomain": self.ui_domain,
        }

    @classmethod
    def from_json(cls, data: object) -> PortalInfo | None:
        """From account details (HubSpot's answer, or what was kept of it); None when they
        do not name a portal."""
        if not isinstance(data, dict) or not isinstance(data.get("portalId"), int):
            return None
        return cls(
            portal_id=data["portalId"],
            account_type=str(data.get("accountType") or "") or None,
            ui_domain=str(data.get("uiDomain") or "app.hubspot.com"),
        )


def fingerprint(base_url: str, token: str) -> str:
    """Tells tokens apart without keeping them: a truncated SHA-256, never reversible."""
    return hashlib.sha256(f"{base_url.rstrip('/')}\n{token}".encode()).hexdigest()[:24]


def identify_portal(
    client: HubSpotClient, token: str, state_dir: Path, *, portal_id: int | None = None
) -> PortalInfo | None:
    """The portal `token` belongs to: given (`--portal-id`), remembered, or asked of HubSpot
    (one request). None when HubSpot will not say (a token without access to account
    details): the caller keeps its journal per base URL then."""
    if portal_id is not None:
        return PortalInfo(portal_id=portal_id)
    cache = state_dir / CACHE_FILE
    key = fingerprint(client.base_url, token)
    known = _read(cache)
    remembered = PortalInfo.from_json(known.get(key))
    if remembered is not None:
        return remembered
    path = client.paths.account_details()
    try:
        reply = client.request("GET", path)
    except AuthError as exc:
        if exc.status != 403:
            raise AuthError(
                f"could not read the account details: {exc}", status=exc.status
            ) from exc
        log.warning("the token may not read account details (403): %s", exc)
        return None
    except (UncertainDelivery, HubSpotUnavailable) as exc:
        raise ConfigError(
            f"could not read the account details from {client.base_url}: {exc} Check "
            "--base-url (or HUBSPOT_BASE_URL) and the network."
        ) from exc
    if not_served(client.paths.account_details(), reply):
        last = client.paths.account_details()  # the version tried last
        raise ConfigError(
            f"could not read the account details: {client.version_hint()} (HTTP 404 for {last})"
        )
    info = PortalInfo.from_json(reply.body) if reply.verdict is Verdict.SUCCESS else None
    if info is None:
        log.warning("HubSpot's account details did not name the portal (HTTP %d)", reply.status)
        return None
    known[key] = info.as_json()
    _write(cache, known)
    return info


def _read(cache: Path) -> dict[str, object]:
    try:
        data = orjson.loads(cache.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, orjson.JSONDecodeError) as exc:
        log.warning("ignoring %s, which cannot be read (%s); asking HubSpot instead", cache, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _write(cache: Path, known: dict[str, object]) -> None:
    """Atomically: a crash mid-write leaves the old file, never half a file."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache.parent, prefix=".portals-", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(orjson.dumps(known, option=orjson.OPT_INDENT_2))
        os.replace(tmp, cache)
    except OSError as exc:
        log.warning("could not remember the portal in %s (%s)", cache, exc)
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(tmp)
