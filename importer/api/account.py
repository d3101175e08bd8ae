"""Which HubSpot portal a token belongs to: account details, asked once and remembered.

Every portal of a region (production, sandbox accounts, developer test accounts) answers at
the same base URL; only the token tells them apart. The journal is kept per portal, so each
run must know its portal. HubSpot's account details say it; the answer is remembered per token
fingerprint (a hash of base URL and token, never the token) in the state directory, so a
nightly run asks once.

The app a token belongs to tells the records this tool created from others with the same key:
HubSpot stamps every record with the app that created it (`hs_object_source_id`). A private
app's token is described by `POST /oauth/v2/private-apps/get/access-token-info` (the token in
the body as `tokenKey`; it answers `userId`, `hubId`, `appId` and `scopes`, and needs no
scope), an OAuth token by `GET /oauth/v1/access-tokens/{token}` (`app_id`, `hub_id`,
`user_id`, `scopes`...). It is asked only when a lookup needs it, and remembered in the
portal's journal (stages/lookups.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import orjson

from ..core.errors import AuthError, ConfigError, HubSpotUnavailable, UncertainDelivery
from .client import HubSpotClient, Verdict, not_served

__all__ = [
    "NOT_PRODUCTION",
    "PortalInfo",
    "client_token",
    "fingerprint",
    "identify_portal",
    "token_app",
]

log = logging.getLogger(__name__)

CACHE_FILE = "portals.json"
NOT_PRODUCTION = frozenset({"SANDBOX", "DEVELOPER_TEST", "APP_DEVELOPER"})
"""Account types that are not a production portal: a run against one says so."""
PRIVATE_APP_TOKEN = "pat-"
"""How a private app's access token starts (`pat-na1-...`, `pat-eu1-...`)."""
PRIVATE_APP_INFO = "/oauth/v2/private-apps/get/access-token-info"
OAUTH_TOKEN_INFO = "/oauth/v1/access-tokens/{token}"


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
    """The portal `token` belongs to: remembered, or asked of HubSpot (one request). None when
    HubSpot will not say (a token without access to account details): the caller keeps its
    journal per base URL then. `portal_id` (`--portal-id`) names it without asking; it is
    refused (ConfigError) where HubSpot has already named another portal for this token: a run
    told the wrong portal would write another portal's records under this one's journal."""
    if portal_id is None:
        return _named(client, token, state_dir)
    named = _remembered(client, token, state_dir)
    if named is not None and named.portal_id != portal_id:
        raise ConfigError(
            f"--portal-id {portal_id} is not the portal this token reaches: HubSpot said it is "
            f"portal {named.describe()}; nothing was sent. Give this token's portal, or the "
            f"token of portal {portal_id}."
        )
    return named or PortalInfo(portal_id=portal_id)


def _remembered(client: HubSpotClient, token: str, state_dir: Path) -> PortalInfo | None:
    """The portal HubSpot named for `token` at this base URL before, if it did."""
    known = _read(state_dir / CACHE_FILE)
    return PortalInfo.from_json(known.get(fingerprint(client.base_url, token)))


def _named(client: HubSpotClient, token: str, state_dir: Path) -> PortalInfo | None:
    """The portal HubSpot names for `token` (remembered, or asked: one request); None when
    HubSpot will not say."""
    remembered = _remembered(client, token, state_dir)
    if remembered is not None:
        return remembered
    cache = state_dir / CACHE_FILE
    key = fingerprint(client.base_url, token)
    known = _read(cache)
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


def client_token(client: HubSpotClient) -> str:
    """The token `client` sends (its session's bearer token), for the requests that carry
    it in their body or path as well."""
    header = str(client.session.headers.get("Authorization") or "")
    return header.removeprefix("Bearer ")


def token_app(client: HubSpotClient, token: str) -> int | None:
    """The id of the app `token` belongs to, as HubSpot's token info says it (one request: see
    the module's docstring); None when it will not say (a token of another kind, an endpoint
    not served, no answer). The token is sent as HubSpot asks, never logged."""
    private = token.startswith(PRIVATE_APP_TOKEN)
    try:
        if private:
            reply = client.request("POST", PRIVATE_APP_INFO, {"tokenKey": token})
        else:
            reply = client.request("GET", OAUTH_TOKEN_INFO.format(token=quote(token, safe="")))
    except AuthError as exc:
        log.info("HubSpot would not say which app the token belongs to (HTTP %s)", exc.status)
        return None
    except (UncertainDelivery, HubSpotUnavailable) as exc:
        log.info("could not ask HubSpot which app the token belongs to (%s)", exc)
        return None
    named = reply.body.get("appId" if private else "app_id")
    app = named if reply.verdict is Verdict.SUCCESS else None
    if not isinstance(app, int) or isinstance(app, bool):
        log.info("HubSpot's token info did not name the token's app (HTTP %d)", reply.status)
        return None
    return app


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
