"""Which app, portal and user a token belongs to, as HubSpot says it: a private app's token
info (`POST /oauth/v2/private-apps/get/access-token-info`, the token in the body as `tokenKey`:
`userId`, `hubId`, `appId`, `scopes`) and an OAuth token's metadata (`GET
/oauth/v1/access-tokens/{token}`: `app_id`, `hub_id`, `user_id`, `scopes`, `token_type`...).

Private app tokens (`pat-...`) are described by the first, OAuth tokens by the second; each
answers 404 for the other kind. UNVERIFIED: HubSpot documents no error answer for either, so
the wording of these 404s (and of `token_info_status`'s errors) is the sandbox's own.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from .replies import Reply, error
from .sources import DEFAULT_USER_ID

if TYPE_CHECKING:
    from .emulator import Emulator

__all__ = ["PRIVATE_APP_INFO", "token_info"]

PRIVATE_APP_INFO = "/oauth/v2/private-apps/get/access-token-info"
_OAUTH_TOKEN = re.compile(r"^/oauth/v1/access-tokens/([^/]+)$")
_PRIVATE_APP_PREFIX = "pat-"
_CATEGORIES = {400: "VALIDATION_ERROR", 401: "INVALID_AUTHENTICATION", 403: "MISSING_SCOPES"}


def token_info(sandbox: Emulator, method: str, path: str, body: Any) -> tuple[int, Any] | None:
    """The answer of a token-info request at `path`, or None when `path` is not one."""
    oauth = _OAUTH_TOKEN.match(path)
    if method == "POST" and path == PRIVATE_APP_INFO:
        token = body.get("tokenKey") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise Reply(400, error("tokenKey is required", "VALIDATION_ERROR"))
        _check(sandbox, token, private_app=True)
        return 200, {
            "userId": DEFAULT_USER_ID,
            "hubId": sandbox.portal_of(token),
            "appId": sandbox.app_of(token),
            "scopes": _scopes(sandbox),
        }
    if method == "GET" and oauth:
        token = unquote(oauth.group(1))
        _check(sandbox, token, private_app=False)
        return 200, {
            "token": token,
            "user": "person@example.com",
            "hub_domain": "demo.example.com",
            "scopes": _scopes(sandbox),
            "hub_id": sandbox.portal_of(token),
            "app_id": sandbox.app_of(token),
            "expires_in": 1800,
            "user_id": DEFAULT_USER_ID,
            "token_type": "access",
        }
    return None


def _check(sandbox: Emulator, token: str, *, private_app: bool) -> None:
    """Refuse to describe `token` as the sandbox is told to, or when this endpoint is not for
    its kind (a private app's token at the OAuth one, or the other way round)."""
    status = sandbox.config.token_info_status
    if status != 200:
        raise Reply(
            status,
            error("This token's details are not available.", _CATEGORIES.get(status, "ERROR")),
        )
    known = sandbox.config.token is None or token == sandbox.config.token
    if not known or token.startswith(_PRIVATE_APP_PREFIX) != private_app:
        # The path itself holds an OAuth token: the message does not repeat it.
        raise Reply(404, error("No such token.", "OBJECT_NOT_FOUND"))


def _scopes(sandbox: Emulator) -> list[str]:
    """The scopes the token has: reading every object type, writing all but those denied."""
    types = sorted(sandbox.portal.properties)
    denied = sandbox.config.denied_object_types
    return [
        *(f"crm.objects.{t}.read" for t in types),
        *(f"crm.objects.{t}.write" for t in types if t not in denied),
    ]
