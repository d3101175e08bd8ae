"""Webhook URLs a run's end is posted to (`notify:` in a mapping, `--notify` on the command
line): each an http(s) URL. A webhook URL is a secret (whoever has it can post to the
channel), so no message here or in the log shows more of it than its host."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

__all__ = ["parse_notify", "webhook_host", "webhook_problem"]


def webhook_problem(url: object) -> str | None:
    """Why `url` is not a webhook this tool can post to, without quoting it; None if it is."""
    if not isinstance(url, str) or not url.strip():
        return "give the webhook's URL, e.g. https://hooks.slack.com/services/..."
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError:
        return "is not a URL"
    if parts.scheme.lower() not in ("http", "https"):
        said = f"starts with {parts.scheme}:" if parts.scheme else "has no scheme"
        return f"must be an http(s) URL (https://...); this one {said}"
    if not host:
        return "names no host (https://host/...)"
    return None


def webhook_host(url: str) -> str:
    """The URL's host (and port), which is all a log line may say of a webhook."""
    parts = urlsplit(url.strip())
    host = parts.hostname or "?"
    host = f"[{host}]" if ":" in host else host  # IPv6
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port else host


def parse_notify(fail: Callable[[str, str], None], raw: Any) -> tuple[str, ...]:
    """`notify:`: a list of webhook URLs (one URL alone is a list of one), each checked."""
    if raw is None:
        return ()
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        fail("notify", "give a list of webhook URLs, e.g. [https://hooks.slack.com/services/...]")
        return ()
    urls = []
    for n, url in enumerate(items):
        problem = webhook_problem(url)
        if problem is not None:
            fail(f"notify[{n}]", problem)
        else:
            urls.append(str(url).strip())
    return tuple(dict.fromkeys(urls))
