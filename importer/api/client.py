"""HubSpot HTTP client: one session, one place that classifies responses, retries and pacing."""

from __future__ import annotations

import http.cookiejar
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson
import requests

from ..core.errors import (
    AuthError,
    HubSpotError,
    HubSpotUnavailable,
    RateLimitStop,
    UncertainDelivery,
)
from ..core.hubspot import (
    API_FALLBACKS,
    DEFAULT_API_VERSION,
    DEFAULT_BASE_URL,
    SEARCH_RATE_PER_SECOND,
    ApiPaths,
    error_context,
)
from .limiter import RateLimiter
from .settings import check_base_url, check_token
from .transport import (
    SENDING,
    TimedAdapter,
    answer_body,
    check_proxies,
    never_sent,
    reason,
    redirected,
    retry_after,
)

__all__ = [
    "MAX_SENDERS",
    "HubSpotClient",
    "RateLimiter",
    "Reply",
    "RetryPolicy",
    "UncertainDelivery",
    "Verdict",
    "classify",
    "error_message",
    "not_served",
    "route_missing",
]

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({423, 477, 500, 502, 503, 504, 520, 521, 522, 524})
NOT_PROCESSED_STATUSES = frozenset({423, 477})
"""Retryable answers that say the request was not carried out. A 5xx says nothing of the
kind: HubSpot's gateway may time out (502, 504, 524) while the write goes through."""
DEFAULT_TIMEOUT = (10.0, 120.0)  # connect, read (seconds)
LOCKED_MIN_WAIT = 2.0
MAX_TEMPLATES = 32
"""Prepared request templates kept per client (one per URL: the batch endpoints)."""
MAX_SENDERS = 64  # concurrent requests at most (a 190-request window bursts in ~3 rounds)


class Verdict(Enum):
    """What a response means for the caller."""

    SUCCESS = "success"  # 200/201/204
    PARTIAL = "partial"  # 207: some inputs failed
    REJECTED = "rejected"  # other 4xx: the request (batch) was refused as a whole
    AUTH = "auth"  # 401/403: stop the run, never retry
    RATE_LIMITED = "rate_limited"  # 429
    RETRY = "retry"  # 423, 477, 5xx: pause and send again


def classify(status: int) -> Verdict:
    if status == 207:
        return Verdict.PARTIAL
    if 200 <= status < 300:
        return Verdict.SUCCESS
    if status in (401, 403):
        return Verdict.AUTH
    if status == 429:
        return Verdict.RATE_LIMITED
    if status in RETRY_STATUSES or status >= 500:
        return Verdict.RETRY
    return Verdict.REJECTED


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    max_attempts: int = 6
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    jitter: float = 0.5

    def delay(self, attempt: int, rng: random.Random) -> float:
        base: float = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return base * (1 + self.jitter * rng.random())


@dataclass(frozen=True, kw_only=True)
class Reply:
    status: int
    verdict: Verdict
    body: dict[str, Any]
    correlation_id: str | None


_CODE_HINTS = {
    "PROPERTY_DOESNT_EXIST": "check the property's internal name in the mapping",
    "READ_ONLY_VALUE": "remove this property from the mapping; HubSpot sets it itself",
    "INVALID_OPTION": "use one of the option values HubSpot lists",
    "INVALID_ASSOCIATION": "check that the target records exist and the association type fits",
}


def error_message(body: dict[str, Any], status: int) -> str:
    """A person-readable sentence from a HubSpot error body (every field optional)."""
    message = str(body.get("message") or f"HTTP {status}")
    # "Property values were not valid: [{...json...}]": the errors list says it in words.
    if ": [" in message and message.endswith("]"):
        message = message.split(": [", 1)[0]
    details: list[str] = []
    hints: list[str] = []
    for err in body.get("errors") or []:
        if not isinstance(err, dict):
            continue
        text = str(err.get("message") or "")
        if text and text not in message and text not in details:
            details.append(text)
        hint = _CODE_HINTS.get(str(err.get("code")))
        if hint and hint not in hints:
            hints.append(hint)
    if details:
        message = f"{message}: {'; '.join(details)}"
    if hints:
        message = f"{message} ({'; '.join(hints)})"
    return message


def not_served(path: str, reply: Reply) -> bool:
    """`reply` says HubSpot does not serve `path` itself (`route_missing`); for account
    details, which name no record or object type, any 404 says so."""
    return route_missing(reply) or (reply.status == 404 and path.startswith("/account-info/"))


def route_missing(reply: Reply) -> bool:
    """A 404 about the path itself (an API version or endpoint HubSpot does not serve), not
    about a record or an object type."""
    if reply.status != 404:
        return False
    message = str(reply.body.get("message") or "")
    return reply.body.get("category") != "OBJECT_NOT_FOUND" and (
        "Unable to infer object type" not in message
    )


def _int_header(headers: Any, name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class HubSpotClient:
    """Sends JSON to HubSpot with the token, retrying what may be retried."""

    def __init__(
        self,
        *,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        api_version: str | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        seed: int | None = None,
    ) -> None:
        if not token:
            raise AuthError(
                "no access token: set HUBSPOT_ACCESS_TOKEN to your private app's token."
            )
        check_token(token)
        self.base_url = check_base_url(base_url)
        self.paths = ApiPaths(api_version or DEFAULT_API_VERSION)
        """The API version requests are built for: the one given (pinned), else the default,
        moving to the next of API_FALLBACKS where HubSpot does not serve it (see request)."""
        self.tried: list[ApiPaths] = []
        """Versions HubSpot answered 404 for at this address, in the order tried."""
        self._fallbacks = [] if api_version else [ApiPaths(v) for v in API_FALLBACKS]
        self._version_lock = threading.Lock()
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.limiter = limiter or RateLimiter(sleep=sleep)
        # Search is limited per token per second, apart from the rolling window; paced a
        # little under its limit, as other apps' searches with the same token count too.
        self.search_limiter = RateLimiter(max(1, SEARCH_RATE_PER_SECOND - 1), 1.0, sleep=sleep)
        self._sleep = sleep
        self._rng = random.Random(seed)
        self.session = _session(session, token)
        # Proxy and CA settings from the environment (HTTPS_PROXY, NO_PROXY,
        # REQUESTS_CA_BUNDLE) are read once for HubSpot's host, not on every request: requests
        # would otherwise scan os.environ per call, a third of its time under a burst. With
        # trust_env off, a ~/.netrc entry can no longer replace the Bearer token either.
        self._transport = self.session.merge_environment_settings(
            self.base_url, {}, None, None, None
        )
        proxies = self._transport.get("proxies") or {}
        check_proxies(proxies)
        self._via = (
            " through the proxy the environment sets (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY)"
            if proxies.get(self.base_url.split(":", 1)[0]) or proxies.get("all")
            else ""
        )
        """Said of a connection that failed, when it went through a proxy."""
        self.session.trust_env = False
        self._templates: dict[tuple[str, str], requests.PreparedRequest] = {}
        self.requests_sent = 0
        self.rate_limited = 0

    def close(self) -> None:
        self.session.close()

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        resend_after_5xx: bool = True,
        limiter: RateLimiter | None = None,
    ) -> Reply:
        """Send one request, retrying 429/423/5xx and refused connections; where HubSpot does
        not serve the path's API version at this address (a 404 for the path itself, so
        nothing was carried out) and no version was pinned, send it again at the next one.

        Raises AuthError (401/403), RateLimitStop (daily limit), HubSpotUnavailable (retries
        spent) and UncertainDelivery (sent, but no answer: the caller must reconcile). With
        `resend_after_5xx=False` (creates), a 5xx is an UncertainDelivery too: the write may
        have been committed, and sent again it would be a second record. `limiter` paces
        this request instead of the rolling window's (search has a limit of its own).
        """
        # Serialised before a slot is taken, so the slot's time is when the bytes leave; by
        # orjson, a tenth of json's time, which a burst of senders spends holding the GIL.
        data = orjson.dumps(body) if body is not None else None
        for _ in range(len(API_FALLBACKS) + 1):  # each round moves to a later version
            reply = self._attempts(
                method, path, data, resend_after_5xx=resend_after_5xx, limiter=limiter
            )
            moved = self._next_version(path) if not_served(path, reply) else None
            if moved is None:
                return reply
            path = moved
        return reply

    def version_hint(self) -> str:
        """What a user changes when HubSpot serves none of the versions tried here."""
        return self.paths.setting_hint(tuple(p.version for p in self.tried))

    def _next_version(self, path: str) -> str | None:
        """`path` (built for this client's version, or one it has left) at the version to use
        now, moving to the next fallback if `path` was built for the current one; None when
        the version is pinned, every fallback is spent, or `path` is not a versioned one."""
        with self._version_lock:
            built = next((p for p in (self.paths, *self.tried) if p.builds(path)), None)
            if built is None:
                return None
            if built == self.paths:
                if not self._fallbacks:
                    return None
                self.tried.append(self.paths)
                self.paths = self._fallbacks.pop(0)
                log.warning(
                    "HubSpot does not serve API version %s at %s: using %s instead "
                    "(--api-version pins one)",
                    built.version,
                    self.base_url,
                    self.paths.version,
                )
            return built.translate(path, self.paths)

    def _attempts(
        self,
        method: str,
        path: str,
        data: bytes | None,
        *,
        resend_after_5xx: bool,
        limiter: RateLimiter | None,
    ) -> Reply:
        """Send one request, retrying what may be retried (see request)."""
        limiter = limiter or self.limiter
        url = f"{self.base_url}{path}"
        last = ""
        for attempt in range(1, self.retry.max_attempts + 1):
            try:
                response, granted = self._send_timed(method, url, data, limiter)
            except requests.exceptions.ConnectionError as exc:  # refused before a byte left
                last = f"cannot connect to {self.base_url}{self._via} ({reason(exc)})"
                self.backoff(attempt, last)
                continue
            reply = self._reply(response, granted, limiter)
            if reply.verdict is Verdict.AUTH:
                raise AuthError(_auth_message(reply), status=reply.status)
            if response.is_redirect:
                raise HubSpotError(redirected(self.base_url, response), status=reply.status)
            if reply.verdict is Verdict.RATE_LIMITED:
                last = self._wait_out_rate_limit(reply, response, limiter, attempt)
            elif reply.verdict is Verdict.RETRY:
                last = self._wait_to_resend(
                    reply, response, attempt, resend_after_5xx=resend_after_5xx
                )
            else:
                return reply
        raise HubSpotUnavailable(
            f"gave up after {self.retry.max_attempts} attempt"
            f"{'s' if self.retry.max_attempts != 1 else ''}: {last}. Try again later."
        )

    def _send_timed(
        self, method: str, url: str, data: bytes | None, limiter: RateLimiter
    ) -> tuple[requests.Response, float | None]:
        """Send one attempt in a slot of `limiter`, telling it when the bytes left; returns the
        response and the slot's grant. A connection refused before any byte left is raised as
        it is (it may be retried); one broken after, or no answer in time, is an
        UncertainDelivery."""
        # Prepared (headers, cookies, auth merged) before the slot too: under a burst the
        # senders take their slots one after another, and what each does between its grant
        # and its bytes leaving spreads the burst, and so every later window.
        prepared = self._prepare(method, url, data)
        granted = limiter.acquire()
        SENDING.on_sent = lambda sent, granted=granted: limiter.sent_at(granted, sent)
        try:
            self.requests_sent += 1
            # Never redirected: HubSpot's API does not, and a POST followed elsewhere would
            # carry the rows to another host (or lose them, turned into a GET).
            response = self.session.send(
                prepared, timeout=self.timeout, allow_redirects=False, **self._transport
            )
        except requests.exceptions.ConnectionError as exc:
            if not never_sent(exc):
                raise UncertainDelivery(
                    f"the connection broke before HubSpot answered ({type(exc).__name__})"
                ) from None
            raise
        except requests.exceptions.Timeout:
            raise UncertainDelivery(
                f"HubSpot did not answer within {self.timeout[1]:.0f} s"
            ) from None
        return response, granted

    def _wait_out_rate_limit(
        self, reply: Reply, response: requests.Response, limiter: RateLimiter, attempt: int
    ) -> str:
        """Hold `limiter`'s senders as long as a 429 asks (or RateLimitStop when it is the daily
        limit); returns the reason, for the message if no attempt is left."""
        self.rate_limited += 1
        if str(reply.body.get("policyName", "")).upper() == "DAILY":
            raise RateLimitStop(
                "HubSpot's daily API limit for this account is spent; the run stopped. "
                "Run again after midnight in the account's time zone.",
                status=429,
            )
        wait = retry_after(response)
        if wait is None:
            wait = limiter.rate_limited()
        why = f"rate limited (429 {reply.body.get('policyName', '')})".strip()
        log.warning("%s; waiting %.1f s (attempt %d)", why, wait, attempt)
        limiter.pause(wait)
        return why

    def _wait_to_resend(
        self, reply: Reply, response: requests.Response, attempt: int, *, resend_after_5xx: bool
    ) -> str:
        """Back off before sending a 423/477/5xx again (or UncertainDelivery, when a 5xx may
        have been carried out and must not be resent); returns the reason, for the message if
        no attempt is left."""
        why = f"HTTP {reply.status}: {error_message(reply.body, reply.status)}"
        if not resend_after_5xx and reply.status not in NOT_PROCESSED_STATUSES:
            raise UncertainDelivery(
                f"HubSpot answered {reply.status} (the write may have been carried out)"
            )
        floor = retry_after(response)
        if reply.status == 423:
            floor = max(floor or 0.0, LOCKED_MIN_WAIT)
        self.backoff(attempt, why, at_least=floor)
        return why

    def _prepare(self, method: str, url: str, data: bytes | None) -> requests.PreparedRequest:
        """The request as `Session.prepare_request` makes it, copied from a template per URL:
        preparing anew (merging the session's headers, cookies and hooks, parsing the URL)
        cost 0.3 ms a request, a quarter of the client's HTTP time."""
        key = (method, url)
        template = self._templates.get(key)
        if template is None:
            template = self.session.prepare_request(requests.Request(method, url))
            if len(self._templates) < MAX_TEMPLATES:  # record ids in paths: keep a few only
                self._templates[key] = template
        prepared = template.copy()
        if data is not None:
            prepared.body = data
            prepared.headers["Content-Length"] = str(len(data))
        return prepared

    def backoff(self, attempt: int, why: str, at_least: float | None = None) -> None:
        """Wait before attempt `attempt + 1` (exponentially longer each time, with jitter)."""
        if attempt >= self.retry.max_attempts:
            return
        delay = max(self.retry.delay(attempt, self._rng), at_least or 0.0)
        log.warning(
            "%s; retrying in %.1f s (attempt %d of %d)",
            why,
            delay,
            attempt,
            self.retry.max_attempts,
        )
        self._sleep(delay)

    def _reply(
        self,
        response: requests.Response,
        granted: float | None = None,
        limiter: RateLimiter | None = None,
    ) -> Reply:
        """The response as a Reply, its verdict from `classify`; the rolling window's headers
        teach the client's limiter (when it paced the request)."""
        headers = response.headers
        if limiter is None or limiter is self.limiter:
            # Search answers carry no rolling-window headers: nothing to learn from them.
            self.limiter.learn(
                _int_header(headers, "X-HubSpot-RateLimit-Max"),
                _int_header(headers, "X-HubSpot-RateLimit-Interval-Milliseconds"),
            )
            self.limiter.observe(_int_header(headers, "X-HubSpot-RateLimit-Remaining"), granted)
        return Reply(
            status=response.status_code,
            verdict=classify(response.status_code),
            body=answer_body(response),
            correlation_id=headers.get("X-HubSpot-Correlation-Id"),
        )


def _session(session: requests.Session | None, token: str) -> requests.Session:
    """The session every request goes through: one kept-alive connection per concurrent
    sender (none thrown away), the token's headers, and no cookies: HubSpot's API
    authenticates by the token alone, so cookies it sets (its CDN's bot management) are
    neither kept nor sent back, and every request to a URL is the same but for its body (see
    `HubSpotClient._prepare`)."""
    if session is None:
        session = requests.Session()
        adapter = TimedAdapter(pool_connections=1, pool_maxsize=MAX_SENDERS)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
    session.headers.update(
        {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "hubspot-import/0.1",
        }
    )
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return session


def _auth_message(reply: Reply) -> str:
    body = reply.body
    category = body.get("category", "")
    if reply.status == 401:
        return (
            f"HubSpot refused the access token (401 {category or 'INVALID_AUTHENTICATION'}): "
            "check HUBSPOT_ACCESS_TOKEN; private app tokens start with 'pat-'."
        )
    scopes: list[str] = []
    for err in body.get("errors") or []:
        scopes += error_context(err).get("requiredGranularScopes", [])
    need = f" Grant the private app one of these scopes: {', '.join(scopes)}." if scopes else ""
    text = str(body.get("message") or "the token lacks a permission this call needs")
    return f"HubSpot denied access (403 {category or 'MISSING_SCOPES'}): {text.rstrip('.')}.{need}"
