"""What a HubSpot client is given, checked before any request: the base URL (one that can
address HubSpot, without credentials) and the access token (nothing a header may not carry,
and never shown in a message)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ..core.errors import ConfigError
from ..core.redact import keep_secret

__all__ = ["MAX_TOKEN", "check_base_url", "check_token"]

MAX_TOKEN = 1024
"""Characters a token may hold: HubSpot's are about 45 (`pat-na1-` and a UUID), and an HTTP
server refuses a header line of more than a few kilobytes ("Line too long")."""
_USERINFO = re.compile(r"(?<=://)[^/?#@]*@")
_QUERY = re.compile(r"([?#]).*", re.DOTALL)


def check_base_url(url: str) -> str:
    """`url` without a trailing slash, when it can address HubSpot (or a proxy, or the
    sandbox): http or https, a host, a port that exists, no query or fragment. Credentials
    in it are refused: they would replace the access token. ConfigError otherwise."""
    hint = "give one such as https://api.hubapi.com (--base-url or HUBSPOT_BASE_URL)"
    # A password or a query (an old `hapikey=`, a signature) is never repeated back, even in
    # a mistake: a base URL holds neither, so the message needs neither.
    shown = _QUERY.sub(r"\1…", _USERINFO.sub("…@", url))
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise ConfigError(f"the base URL {shown!r} cannot be read ({exc}): {hint}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"the base URL {shown!r} is not an http:// or https:// address with a host: {hint}"
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            "the base URL holds a user name or password, which would replace the access "
            f"token: leave them out (the token comes from HUBSPOT_ACCESS_TOKEN); {hint}"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"the base URL {shown!r} may not hold a query or fragment: {hint}")
    del port
    return url.strip().rstrip("/")


def check_token(token: str) -> None:
    """Raise ConfigError, never naming the token's characters, for a token no request may
    carry: HubSpot's tokens are printable ASCII without spaces (`pat-eu1-...`), and a line
    break or another space or control character (a copy-paste accident from a secrets file)
    would otherwise end up in an error message, the log and the summary. From here on the
    token (and each line of it) is redacted from everything the tool writes."""
    keep_secret(token)
    if len(token) > MAX_TOKEN:
        raise ConfigError(
            f"the access token (HUBSPOT_ACCESS_TOKEN) is {len(token):,} characters long, more "
            f"than the {MAX_TOKEN:,} a token may hold (HubSpot's are about 45): it holds "
            "something else, such as a whole secrets file. Copy the token again from the "
            "private app's page (Auth tab)."
        )
    for position, char in enumerate(token, start=1):
        if not ("!" <= char <= "~"):
            what = (
                "a line break"
                if char in "\r\n"
                else "a space"
                if char.isspace()
                else "a control character"
                if not char.isprintable()
                else "a character that is not plain ASCII"
            )
            raise ConfigError(
                f"the access token (HUBSPOT_ACCESS_TOKEN) holds {what} at position {position} "
                f"of {len(token)}: HubSpot's tokens are letters, digits and dashes only. "
                "Copy it again from the private app's page (Auth tab), without the line "
                "around it."
            )
