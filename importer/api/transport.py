"""The HTTP side of the client: requests' adapter over connections that tell the rate limiter
when a request's bytes have left (`SENDING.on_sent`), and what a connection error says."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

__all__ = ["SENDING", "TimedAdapter", "never_sent", "reason"]


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
