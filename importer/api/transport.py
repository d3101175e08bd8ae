"""The HTTP side of the client: requests' adapter over connections that tell the rate limiter
when a request's bytes have left (`SENDING.on_sent`), what a connection error says, the
proxies the environment sets, and an answer's body and Retry-After as the client takes them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

import orjson
import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ..core.errors import ConfigError
from ..core.redact import holds_secret, keep_secret, redact_json

__all__ = [
    "SENDING",
    "TimedAdapter",
    "answer_body",
    "check_proxies",
    "never_sent",
    "reason",
    "redirected",
    "retry_after",
]


SENDING = threading.local()
"""Per sending thread: `on_sent(t)`, told when the request's bytes have been written."""


def _written() -> None:
    on_sent: Callable[[float], None] | None = getattr(SENDING, "on_sent", None)
    if on_sent is not None:
        on_sent(time.monotonic())


class _TimedHTTPConnection(urllib3.connection.HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        super().request(*args, **kwargs)
        _written()


class _TimedHTTPSConnection(urllib3.connection.HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        super().request(*args, **kwargs)
        _written()


class _TimedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _TimedHTTPConnection


class _TimedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _TimedHTTPSConnection


class TimedAdapter(HTTPAdapter):
    """requests' adapter, with connections that note when a request has been written."""

    _POOLS: ClassVar[dict[str, type[HTTPConnectionPool]]] = {
        "http": _TimedHTTPPool,
        "https": _TimedHTTPSPool,
    }

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = self._POOLS  # through HTTPS_PROXY too
        return manager


def check_proxies(proxies: Mapping[str, str]) -> None:
    """Proxies from the environment (HTTPS_PROXY, ALL_PROXY, ...) that requests can use, their
    passwords kept secret; ConfigError, never showing the address (it may hold a password),
    for one it cannot read."""
    for scheme, url in proxies.items():
        try:
            parts = urlsplit(url if "://" in url else f"http://{url}")
            if parts.password:
                keep_secret(parts.password)
            if not parts.hostname:
                raise ValueError("no host")
            _ = parts.port  # raises ValueError for a port out of range or not a number
        except ValueError as exc:
            raise ConfigError(
                f"the proxy the environment sets for {scheme} addresses (HTTPS_PROXY, "
                f"HTTP_PROXY or ALL_PROXY, or their lower-case forms) cannot be read ({exc}): "
                "correct it, or unset it to connect directly"
            ) from None


def never_sent(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the connection failed before any byte of the request left."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    text = repr(exc.args)
    return any(
        s in text
        for s in (
            "NewConnectionError",
            "Connection refused",
            "Name or service not known",
            "Failed to resolve",
        )
    )


def reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "timed out"):
        if marker in text:
            return marker.lower()
    return type(exc).__name__


def answer_body(response: requests.Response) -> dict[str, Any]:
    """The answer's JSON object, with no secret in it: an error's text is redacted of the
    token and of anything shaped like one (a proxy may echo the Authorization header), and a
    record's values of the secrets kept alone (a value such as "Bearer ..." is data)."""
    content = response.content
    try:
        body = orjson.loads(content) if content else {}
    except orjson.JSONDecodeError:
        body = {"message": f"HTTP {response.status_code} with a body that is not JSON"}
    if not isinstance(body, dict):
        body = {"message": f"HTTP {response.status_code} with an unexpected body"}
    if not 200 <= response.status_code < 300:
        return dict(redact_json(body))
    return dict(redact_json(body, shapes=False)) if holds_secret(content) else body


def retry_after(response: requests.Response) -> float | None:
    """The seconds a Retry-After header asks to wait, if it says a number."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def redirected(base_url: str, response: requests.Response) -> str:
    """What is said of a redirect, which is not followed: where it pointed (its host only)."""
    where = urlsplit(response.headers.get("Location") or "")
    try:
        port = f":{where.port}" if where.port else ""
    except ValueError:  # a port that is no number: the host alone
        port = ""
    to = f"{where.scheme}://{where.hostname}{port}" if where.hostname else "another address"
    return (
        f"{base_url} answered {response.status_code}, a redirect to {to}, which HubSpot's API "
        "never answers; it was not followed, and nothing was sent there. Check --base-url "
        "(HubSpot's is https://api.hubapi.com; an http:// address, or a proxy, may redirect)"
    )
