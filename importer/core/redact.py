"""Secrets are never written anywhere: every text that leaves the tool (messages, log lines,
the summary JSON, crash reports, workbooks, the journal) passes through `redact`.

Two lists decide. What the tool copies from HubSpot's answers is an allow-list of fields (an
error's message, category and code: `api.client.error_message`), never a header or a whole
body. And within what is copied, every secret this process was given (`keep_secret`: the
access token, a proxy's password) and anything shaped like a HubSpot token or a bearer
credential is replaced by `[redacted]`, so a server that echoes the Authorization header in
its error (some proxies do) cannot put the token in a file.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import traceback
from collections.abc import Iterator
from typing import Any

__all__ = [
    "REDACTED",
    "forget_secrets",
    "holds_secret",
    "keep_secret",
    "redact",
    "redact_json",
    "redacted_logs",
]

REDACTED = "[redacted]"
MIN_SECRET = 8
"""Shorter values are not secrets worth the name (no HubSpot token is), and replacing a short
word everywhere would garble every message that happens to hold it."""

MIN_RUN = 16
"""A run this long of a secret's characters is redacted wherever it stands (a token echoed
cut short, or a part of one): 16 characters of a token are no word of a message."""
ANCHOR = MIN_RUN // 2

_SHAPES = re.compile(
    r"\bpat-[a-z]{2,4}\d*-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"
    r"|(?<=[Bb]earer )[A-Za-z0-9._~+/=-]{16,}"
)
"""A HubSpot private app token (`pat-na1-<uuid>`, `pat-eu1-...`), and whatever follows
`Bearer ` (the Authorization header's credential, whoever's it is)."""

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()
"""Longest first, so a secret holding another is replaced whole."""


def keep_secret(value: str) -> None:
    """Redact `value` (and each line of it, for a value holding line breaks) from now on."""
    global _secrets
    pieces = {value, value.strip(), *value.splitlines()}
    found = {p.strip() for p in pieces if len(p.strip()) >= MIN_SECRET}
    with _lock:
        _secrets = tuple(sorted(set(_secrets) | found, key=len, reverse=True))


def forget_secrets() -> None:
    """Start a new command with no secret kept (a test runs many in one process)."""
    global _secrets
    with _lock:
        _secrets = ()


def redact(text: str, *, shapes: bool = True) -> str:
    """`text` with every secret kept replaced by `[redacted]`, any run of `MIN_RUN` or more of
    its characters too (a secret echoed cut short), and (`shapes`) every value shaped like a
    token."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
        if len(secret) >= MIN_RUN:
            text = _redact_runs(text, secret)
    return _SHAPES.sub(REDACTED, text) if shapes else text


def _anchors(secret: str) -> list[tuple[int, str]]:
    """The secret's pieces of `ANCHOR` characters at every multiple of `ANCHOR`: a run of
    `MIN_RUN` of its characters holds one whole, so a text holding none holds no run."""
    return [(q, secret[q : q + ANCHOR]) for q in range(0, len(secret) - ANCHOR + 1, ANCHOR)]


def _redact_runs(text: str, secret: str) -> str:
    """`text` with each run of `MIN_RUN` or more consecutive characters of `secret` replaced;
    found from its anchors by plain searches, so a text without one costs a few scans."""
    spans: list[tuple[int, int]] = []
    for q, anchor in _anchors(secret):
        at = text.find(anchor)
        while at >= 0:
            start, end = at, at + ANCHOR
            while (
                start > 0 and start - at + q > 0 and text[start - 1] == secret[start - at + q - 1]
            ):
                start -= 1
            while (
                end < len(text) and end - at + q < len(secret) and text[end] == secret[end - at + q]
            ):
                end += 1
            if end - start >= MIN_RUN:
                spans.append((start, end))
            at = text.find(anchor, at + 1)
    for start, end in sorted(_merged(spans), reverse=True):
        text = text[:start] + REDACTED + text[end:]
    return text


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping spans joined into one."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def holds_secret(data: bytes) -> bool:
    """Whether `data` (an answer's bytes, say) may hold a secret kept, or a run of one: a quick
    look that spares walking every answer."""
    return any(
        s.encode() in data
        or (len(s) >= MIN_RUN and any(a.encode() in data for _, a in _anchors(s)))
        for s in _secrets
    )


def redact_json(value: Any, *, shapes: bool = True) -> Any:
    """A parsed JSON value with `redact` applied to every string in it, keys included."""
    if isinstance(value, str):
        return redact(value, shapes=shapes)
    if isinstance(value, dict):
        return {
            redact_json(k, shapes=shapes): redact_json(v, shapes=shapes) for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact_json(v, shapes=shapes) for v in value]
    return value


@contextlib.contextmanager
def redacted_logs() -> Iterator[None]:
    """Every log record made meanwhile, by any logger, redacted before a handler sees it: its
    message and its traceback (a traceback quotes the exceptions' texts)."""
    make = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            said = record.getMessage()
        except Exception:  # a message that does not format: the handler reports it, as ever
            return record
        clean = redact(said)
        if clean != said:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)))
            record.exc_text = record.exc_text.rstrip("\n")
        return record

    logging.setLogRecordFactory(factory)
    try:
        yield
    finally:
        logging.setLogRecordFactory(make)
