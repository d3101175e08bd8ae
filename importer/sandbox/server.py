"""A HubSpot emulator on 127.0.0.1: batch create, listing, properties, limits and error bodies."""

from __future__ import annotations

import bisect
import contextlib
import gc
import json
import random
import re
import socket
import struct
import sys
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from functools import cached_property
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from ..hubspot import MAX_BATCH_INPUTS, MAX_TEXT_LENGTH, AssociationCategory
from .portal import SEED_CONTACTS, SEED_DEALS, Portal, PropertyDef, default_portal
from .store import Store, now_iso

__all__ = ["Fault", "Received", "Sandbox", "SandboxConfig"]

_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
    r"(?:Z|[+-]\d{2}:?\d{2})?"
)
_DAY_MS = 86_400_000
POLL_SECONDS = 0.05  # how soon stop() is noticed


@dataclass(kw_only=True)
class SandboxConfig:
    """How the emulated account behaves. Defaults are a Professional portal's limits."""

    token: str | None = None
    """Accept only this bearer token (None: any non-empty token)."""
    denied_object_types: set[str] = field(default_factory=set)
    """Object types the token lacks write scopes for (403 MISSING_SCOPES)."""
    multi_status: bool = True
    """Answer per-input errors with 207 when every input has a unique trace id; when off, any
    bad input fails the whole batch with 400 (as HubSpot does without trace ids)."""
    echo_trace_ids: bool = False
    """Whether created results echo objectWriteTraceId (UNVERIFIED for HubSpot: off)."""
    rate_limit: int = 190
    rate_interval_ms: int = 10_000
    daily_limit: int = 1_000_000
    retry_after: bool = False
    """Send Retry-After on 429 (UNVERIFIED for HubSpot: off)."""
    latency: float = 0.0
    error_rate: float = 0.0
    """Share of write/read requests answered 503 before being processed."""
    drop_rate: float = 0.0
    """Share of write/read requests processed, then the connection closed with no answer."""
    hang_rate: float = 0.0
    """Share of write/read requests processed, then answered only after `hang_seconds`."""
    hang_seconds: float = 5.0
    seed: int = 0
    """Seeds the result shuffling and the random faults, so a failing test can be replayed."""
    db: Path | None = None
    seed_records: bool = True


@dataclass(kw_only=True)
class Fault:
    """A scripted misbehaviour for the next `times` requests whose path contains `path`."""

    status: int | None = None
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    """Close the connection without answering (the request is not processed)."""
    canceled: bool = False
    """Process the batch but stop halfway: only the first half is created, status CANCELED."""
    times: int = 1
    path: str = "/batch/"


@dataclass(frozen=True, kw_only=True)
class Received:
    """A request as it arrived. Its body is kept as bytes and parsed when asked for: the
    parsed bodies of a long run (millions of objects) would slow every garbage collection of
    the sandbox, and with it every answer."""

    method: str
    path: str
    headers: dict[str, str]
    raw: bytes = b""

    @cached_property
    def body(self) -> Any:
        try:
            return orjson.loads(self.raw) if self.raw else None
        except orjson.JSONDecodeError:
            return None


def _error(message: str, category: str, **extra: Any) -> dict[str, Any]:
    return {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }


# Linux's SO_TIMESTAMPNS: the kernel stamps each packet as it arrives. Python has no constant.
_SO_TIMESTAMPNS = 35 if sys.platform == "linux" else None
_STAMP = struct.Struct("qq")  # struct timespec on 64-bit Linux


def _enable_arrival_stamps(sock: socket.socket) -> bool:
    if _SO_TIMESTAMPNS is None:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


def _arrival(sock: socket.socket) -> float:
    """When the next request's first bytes reached this host, on the monotonic clock.

    Waits for them without reading them (MSG_PEEK), so the HTTP parser still sees the whole
    request. The kernel's stamp does not depend on when a handler thread gets the GIL: under
    a burst of requests that wait can be longer than HubSpot's own jitter, and a rate-limit
    window counted on it would refuse requests that HubSpot's edge would have let through.
    """
    try:
        _, ancillary, _, _ = sock.recvmsg(1, socket.CMSG_SPACE(_STAMP.size), socket.MSG_PEEK)
    except OSError:
        return time.monotonic()
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= _STAMP.size:
            seconds, nanos = _STAMP.unpack(data[: _STAMP.size])
            age = time.time() - (int(seconds) + int(nanos) / 1e9)
            return time.monotonic() - min(max(age, 0.0), 60.0)
    return time.monotonic()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 resets connections when 50 senders connect at
    # once; HubSpot's edge does not.
    request_queue_size = 256
    stamps_arrivals = False

    def server_bind(self) -> None:
        super().server_bind()
        # Set on the listening socket, the option is inherited by each accepted one before
        # its first request arrives: set per connection, that first request (every request
        # of a burst on fresh connections) would go unstamped and be counted late.
        self.stamps_arrivals = _enable_arrival_stamps(self.socket)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that was killed or gave up mid-request is part of the job, not an error.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Reply(Exception):
    """Raised inside a handler to answer at once."""

    def __init__(
        self, status: int, body: dict[str, Any] | None, headers: dict[str, str] | None = None
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers or {}


class Sandbox:
    """Start with `with Sandbox() as sb:` or `sb.start()`; `sb.url` is the base URL."""

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        portal: Portal | None = None,
    ) -> None:
        self.config = config or SandboxConfig()
        self.portal = portal or default_portal()
        self.store = Store(self.config.db)
        if self.config.seed_records:
            self.store.seed("contacts", SEED_CONTACTS)
            self.store.seed("deals", SEED_DEALS)
        self.received: list[Received] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._rng = random.Random(self.config.seed)
        self._fault_rng = random.Random(self.config.seed + 1)
        self.faults: Counter[str] = Counter()
        """Random faults injected so far, by kind: tests check they really happened."""
        self._write_lock = threading.Lock()  # unique checks and writes happen as one step
        self._window: deque[float] = deque()
        self._daily_used = 0
        self._server = _Server((host, port), _make_handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Sandbox:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(POLL_SECONDS,),
            name="hubspot-sandbox",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread (the `sandbox` command)."""
        # What exists now (modules, the portal) lives as long as the server: keep the cyclic
        # collector from rescanning it with each full collection, which held every answer in
        # flight for ~50 ms (gc.freeze, as servers do).
        gc.freeze()
        self._server.serve_forever(POLL_SECONDS)

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()
        self.store.close()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def records(self, object_type: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        after = None
        while page := self.store.page(object_type, after, 500):
            out += page
            after = page[-1]["id"]
        return out

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

    def random_fault(self) -> str | None:
        """'error', 'drop', 'hang' or None, drawn from the configured rates."""
        cfg = self.config
        if not (cfg.error_rate or cfg.drop_rate or cfg.hang_rate):
            return None
        with self._lock:
            draw = self._fault_rng.random()
        for kind, rate in (
            ("error", cfg.error_rate),
            ("drop", cfg.drop_rate),
            ("hang", cfg.hang_rate),
        ):
            if draw < rate:
                self.faults[kind] += 1
                return kind
            draw -= rate
        return None

    def rate_headers(self) -> dict[str, str]:
        cfg = self.config
        with self._lock:
            remaining = max(0, cfg.rate_limit - len(self._window))
            daily_left = max(0, cfg.daily_limit - self._daily_used)
        return {
            "X-HubSpot-RateLimit-Max": str(cfg.rate_limit),
            "X-HubSpot-RateLimit-Remaining": str(remaining),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(cfg.rate_interval_ms),
            "X-HubSpot-RateLimit-Daily": str(cfg.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(daily_left),
        }

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
        headers = {"Retry-After": str(max(1, round(wait)))} if cfg.retry_after else {}
        raise _Reply(
            429,
            {
                "status": "error",
                "message": f"You have reached your {policy.lower()} limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": str(uuid.uuid4()),
                "policyName": policy,
            },
            headers,
        )

    def authenticate(self, header: str | None) -> None:
        token = header[7:].strip() if header and header.startswith("Bearer ") else ""
        if not token:
            raise _Reply(
                401,
                _error(
                    "Authentication credentials not found. This API supports OAuth 2.0 "
                    "authentication and you can find more details at "
                    "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                    "INVALID_AUTHENTICATION",
                ),
            )
        if self.config.token is not None and token != self.config.token:
            raise _Reply(
                401,
                _error(
                    "The OAuth token used to make this call is invalid.", "INVALID_AUTHENTICATION"
                ),
            )

    def require_scope(self, object_type: str) -> None:
        if object_type in self.config.denied_object_types:
            scopes = [f"crm.objects.{object_type}.write"]
            if object_type == "products":
                scopes = ["e-commerce", "crm.objects.products.write"]
            raise _Reply(
                403,
                _error(
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
            raise _Reply(
                400, _error(f"Unable to infer object type from: {name}", "VALIDATION_ERROR")
            )
        return resolved

    def _whole_batch_400(self, traces: list[Any], errors: list[tuple[int, dict[str, Any]]]) -> None:
        """Without a unique trace id on every input, one bad input fails the whole batch."""
        all_traced = all(isinstance(t, str) and t for t in traces) and len(set(traces)) == len(
            traces
        )
        if errors and not (all_traced and self.config.multi_status):
            first = errors[0][1]
            raise _Reply(
                400,
                _error(
                    first["message"],
                    first.get("category", "VALIDATION_ERROR"),
                    errors=first.get("errors", []),
                    context=first.get("context", {}),
                ),
            )

    def _batch_reply(
        self,
        ok_status: int,
        results: list[dict[str, Any]],
        traces: list[Any],
        errors: list[tuple[int, dict[str, Any]]],
        started: str,
        status: str = "COMPLETE",
    ) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self._rng.shuffle(results)
        reply: dict[str, Any] = {
            "status": status,
            "results": results,
            "startedAt": started,
            "completedAt": now_iso(),
        }
        if not errors:
            return ok_status, reply
        reply["numErrors"] = len(errors)
        reply["errors"] = [
            {**err, "context": {**err.get("context", {}), "objectWriteTraceId": [traces[i]]}}
            for i, err in errors
        ]
        return 207, reply

    def _echo(self, record: dict[str, Any], trace: Any) -> dict[str, Any]:
        if self.config.echo_trace_ids and trace:
            return {**record, "objectWriteTraceId": trace}
        return record

    def _unique_props(self, object_type: str) -> list[str]:
        defs = self.portal.property_defs(object_type) or {}
        return [name for name, d in defs.items() if d.unique and name != "hs_object_id"]

    def _conflicts(
        self, object_type: str, props_list: list[dict[str, str]], own_ids: list[str | None]
    ) -> dict[int, dict[str, Any]]:
        """Inputs that would give a unique property a value another record already has."""
        conflicts: dict[int, dict[str, Any]] = {}
        for prop in self._unique_props(object_type):
            values = [p.get(prop) for p in props_list]
            existing = self.store.find(object_type, prop, [v for v in values if v])
            seen: dict[str, int] = {}
            for i, value in enumerate(values):
                if not value:
                    continue
                holders = [rid for rid in existing.get(value, []) if rid != own_ids[i]]
                other = holders[0] if holders else None
                if other is None and value in seen:
                    other = f"input {seen[value]} of this batch"
                seen.setdefault(value, i)
                if other is not None:
                    message = (
                        f'A {object_type} record with {prop} "{value}" already exists. '
                        f"Existing ID: {other}"
                    )
                    conflicts[i] = {
                        "status": "error",
                        "category": "CONFLICT",
                        "message": message,
                        "errors": [
                            {
                                "message": message,
                                "code": "CONFLICT",
                                "context": {"propertyName": [prop]},
                            }
                        ],
                        "context": {"propertyName": [prop]},
                    }
        return conflicts

    def batch_create(self, object_type: str, body: Any, fault: Fault | None) -> tuple[int, Any]:
        started = now_iso()
        inputs = self._inputs(body)
        traces = [item.get("objectWriteTraceId") for item in inputs]
        with self._write_lock:
            checked = [self._check_input(object_type, i, item) for i, item in enumerate(inputs)]
            conflicts = self._conflicts(object_type, [c[0] for c in checked], [None] * len(inputs))
            errors = [
                (i, err if err is not None else conflicts[i])
                for i, (_, _, err) in enumerate(checked)
                if err is not None or i in conflicts
            ]
            self._whole_batch_400(traces, errors)
            bad = {i for i, _ in errors}
            good = [
                (i, props, links) for i, (props, links, _) in enumerate(checked) if i not in bad
            ]
            status = "COMPLETE"
            if fault is not None and fault.canceled:
                good = good[: len(good) // 2]
                status = "CANCELED"
            created = self.store.create_many(object_type, [(p, lk) for _, p, lk in good])
        results = [
            self._echo(record, traces[i]) for (i, _, _), record in zip(good, created, strict=True)
        ]
        return self._batch_reply(201, results, traces, errors, started, status)

    def _resolve(
        self, object_type: str, inputs: list[dict[str, Any]], verb: str
    ) -> list[str | None]:
        """The record id each input addresses (by id, or by a unique idProperty)."""
        ids = [str(item.get("id", "")) for item in inputs]
        if len(set(ids)) != len(ids):
            raise _Reply(
                400,
                _error(
                    f"Duplicate IDs found in batch input: {ids}. IDs must be unique",
                    "VALIDATION_ERROR",
                ),
            )
        props = {item.get("idProperty") for item in inputs} - {None}
        if len(props) > 1:
            raise _Reply(400, _error("All inputs must use the same idProperty", "VALIDATION_ERROR"))
        prop = props.pop() if props else None
        if prop is None or prop == "hs_object_id":
            present = self.store.exists(object_type, ids)
            return [i if i in present else None for i in ids]
        if prop not in self._unique_props(object_type):
            raise _Reply(
                400,
                _error(
                    f"Unable to perform {verb} by non-unique property: {prop}", "VALIDATION_ERROR"
                ),
            )
        found = self.store.find(object_type, prop, ids)
        return [found[i][0] if i in found else None for i in ids]

    def batch_update(self, object_type: str, body: Any) -> tuple[int, Any]:
        started = now_iso()
        inputs = self._inputs(body)
        traces = [item.get("objectWriteTraceId") for item in inputs]
        with self._write_lock:
            targets = self._resolve(object_type, inputs, "update")
            checked = [
                self._check_input(object_type, i, item, associations=False)
                for i, item in enumerate(inputs)
            ]
            conflicts = self._conflicts(object_type, [c[0] for c in checked], targets)
            errors: list[tuple[int, dict[str, Any]]] = []
            for i, ((_, _, err), target) in enumerate(zip(checked, targets, strict=True)):
                if target is None:
                    err = _error(
                        "Could not find the object to update. Check that the id is valid.",
                        "OBJECT_NOT_FOUND",
                        context={"ids": [str(inputs[i].get("id"))]},
                    )
                err = err or conflicts.get(i)
                if err is not None:
                    errors.append((i, err))
            self._whole_batch_400(traces, errors)
            bad = {i for i, _ in errors}
            results = []
            for i, ((props, _, _), target) in enumerate(zip(checked, targets, strict=True)):
                if i not in bad and target is not None:
                    record = self.store.update(object_type, target, props)
                    if record is not None:
                        results.append(self._echo(record, traces[i]))
        return self._batch_reply(200, results, traces, errors, started)

    def batch_upsert(self, object_type: str, body: Any) -> tuple[int, Any]:
        started = now_iso()
        inputs = self._inputs(body)
        traces = [item.get("objectWriteTraceId") for item in inputs]
        prop = inputs[0].get("idProperty") if inputs else None
        if inputs and (not prop or prop not in self._unique_props(object_type)):
            raise _Reply(
                400,
                _error(
                    f"Unable to perform update/upsert by non-unique property: {prop}",
                    "VALIDATION_ERROR",
                ),
            )
        with self._write_lock:
            targets = self._resolve(object_type, inputs, "update/upsert")
            checked = [
                self._check_input(object_type, i, item, associations=False)
                for i, item in enumerate(inputs)
            ]
            errors = [(i, err) for i, (_, _, err) in enumerate(checked) if err is not None]
            self._whole_batch_400(traces, errors)
            bad = {i for i, _ in errors}
            results = []
            for i, ((props, _, _), target) in enumerate(zip(checked, targets, strict=True)):
                if i in bad:
                    continue
                if target is not None:
                    record = self.store.update(object_type, target, props)
                    new = False
                else:
                    (record,) = self.store.create_many(
                        object_type, [({**props, str(prop): str(inputs[i]["id"])}, [])]
                    )
                    new = True
                if record is not None:
                    results.append(self._echo({**record, "new": new}, traces[i]))
        return self._batch_reply(200, results, traces, errors, started)

    def batch_archive(self, object_type: str, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
            raise _Reply(400, _error("Invalid input JSON: expected inputs", "VALIDATION_ERROR"))
        if len(body["inputs"]) > MAX_BATCH_INPUTS:
            raise _Reply(
                400,
                _error(
                    f"The maximum number of inputs supported in a batch is {MAX_BATCH_INPUTS}.",
                    "VALIDATION_ERROR",
                ),
            )
        with self._write_lock:
            self.store.archive(object_type, [str(i.get("id", "")) for i in body["inputs"]])
        return 204, None

    def batch_read(self, object_type: str, body: Any) -> tuple[int, Any]:
        started = now_iso()
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
            raise _Reply(400, _error("Invalid input JSON: expected inputs", "VALIDATION_ERROR"))
        inputs = body["inputs"]
        if len(inputs) > MAX_BATCH_INPUTS:
            raise _Reply(
                400,
                _error(
                    f"The maximum number of inputs supported in a batch is {MAX_BATCH_INPUTS}.",
                    "VALIDATION_ERROR",
                ),
            )
        prop = body.get("idProperty")
        for item in inputs:
            item.setdefault("idProperty", prop)
        ids = [str(i.get("id", "")) for i in inputs]
        inputs = [dict(i) for i in {i: inp for i, inp in zip(ids, inputs, strict=True)}.values()]
        targets = self._resolve(object_type, inputs, "read")
        wanted = set(body.get("properties") or []) | {
            "hs_object_id",
            "createdate",
            "hs_lastmodifieddate",
        }
        results, missing = [], []
        for item, target in zip(inputs, targets, strict=True):
            record = self.store.get(object_type, target) if target else None
            if record is None:
                missing.append(str(item.get("id")))
                continue
            props = {k: v for k, v in record["properties"].items() if k in wanted}
            results.append({**record, "properties": props})
        reply: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": now_iso(),
        }
        if not missing:
            return 200, reply
        reply["numErrors"] = 1
        reply["errors"] = [
            {
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "message": f"Could not get some {object_type} objects, they may be "
                "deleted or not exist. Check that ids are valid.",
                "context": {"ids": missing},
            }
        ]
        return 207, reply

    def search(self, object_type: str, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            raise _Reply(400, _error("Invalid input JSON", "VALIDATION_ERROR"))
        groups = body.get("filterGroups") or []
        limit = int(body.get("limit") or 10)
        if limit > 200:
            raise _Reply(400, _error("limit must be at most 200", "VALIDATION_ERROR"))
        offset = int(body.get("after") or 0)
        hits = [
            r
            for r in self.store.scan(object_type)
            if not groups
            or any(
                all(_matches(r["properties"], f) for f in g.get("filters") or []) for g in groups
            )
        ]
        wanted = set(body.get("properties") or []) | {
            "hs_object_id",
            "createdate",
            "hs_lastmodifieddate",
        }
        page = [
            {**r, "properties": {k: v for k, v in r["properties"].items() if k in wanted}}
            for r in hits[offset : offset + limit]
        ]
        reply: dict[str, Any] = {"total": len(hits), "results": page}
        if offset + limit < len(hits):
            reply["paging"] = {"next": {"after": str(offset + limit)}}
        return 200, reply

    def _inputs(self, body: Any) -> list[dict[str, Any]]:
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
            raise _Reply(
                400,
                _error(
                    "Invalid input JSON: expected an object with an inputs array.",
                    "VALIDATION_ERROR",
                ),
            )
        inputs: list[Any] = body["inputs"]
        if len(inputs) > MAX_BATCH_INPUTS:
            raise _Reply(
                400,
                _error(
                    f"The maximum number of inputs supported in a batch is {MAX_BATCH_INPUTS}. The "
                    f"number of inputs provided was {len(inputs)}.",
                    "VALIDATION_ERROR",
                ),
            )
        for n, item in enumerate(inputs):
            if not isinstance(item, dict) or not isinstance(item.get("properties", {}), dict):
                raise _Reply(
                    400,
                    _error(
                        f"Invalid input JSON: inputs[{n}] must be an object "
                        "with a properties object.",
                        "VALIDATION_ERROR",
                    ),
                )
            for name, value in item.get("properties", {}).items():
                if not isinstance(value, str):
                    kind = type(value).__name__.replace("int", "number").replace("float", "number")
                    raise _Reply(
                        400,
                        _error(
                            f"Invalid input JSON: inputs[{n}].properties.{name} must be a string, "
                            f"not a {kind}.",
                            "VALIDATION_ERROR",
                        ),
                    )
        return inputs

    def _check_input(
        self, object_type: str, n: int, item: dict[str, Any], *, associations: bool = True
    ) -> tuple[dict[str, str], list[tuple[str, str, str, int]], dict[str, Any] | None]:
        props: dict[str, str] = item.get("properties", {})
        defs = self.portal.property_defs(object_type)
        problems: list[dict[str, Any]] = []
        if defs is not None:
            for name, value in props.items():
                code, message = _check_value(defs.get(name), name, value)
                if code:
                    problems.append(
                        {"message": message, "code": code, "context": {"propertyName": [name]}}
                    )
        if problems:
            listing = json.dumps(
                [
                    {
                        "isValid": False,
                        "message": p["message"],
                        "error": p["code"],
                        "name": p["context"]["propertyName"][0],
                    }
                    for p in problems
                ]
            )
            return (
                props,
                [],
                {
                    "status": "error",
                    "category": "VALIDATION_ERROR",
                    "message": f"Property values were not valid: {listing}",
                    "errors": problems,
                    "context": {
                        "propertyName": [p["context"]["propertyName"][0] for p in problems]
                    },
                },
            )
        if not associations:
            return props, [], None
        links, error = self._check_associations(object_type, item.get("associations", []))
        return props, links, error

    def _check_associations(
        self, object_type: str, raw: Any
    ) -> tuple[list[tuple[str, str, str, int]], dict[str, Any] | None]:
        if not isinstance(raw, list):
            raw = []
        links: list[tuple[str, str, str, int]] = []
        bad_ids: list[str] = []
        bad_types: list[str] = []
        for assoc in raw:
            to_id = str(((assoc or {}).get("to") or {}).get("id", ""))
            for t in (assoc or {}).get("types") or []:
                category = str(t.get("associationCategory", ""))
                type_id = t.get("associationTypeId")
                target = None
                if category in AssociationCategory.__members__ and isinstance(type_id, int):
                    target = self.portal.association_target(object_type, category, type_id)
                if target is None:
                    bad_types.append(str(type_id))
                    continue
                if not self.store.exists(target, [to_id]):
                    bad_ids.append(to_id)
                    continue
                links.append((target, to_id, category, type_id))
        if not bad_ids and not bad_types:
            return links, None
        context: dict[str, list[str]] = {}
        if bad_ids:
            context["INVALID_OBJECT_IDS"] = sorted(set(bad_ids))
        if bad_types:
            context["INVALID_ASSOCIATION_TYPE_ID"] = sorted(set(bad_types))
        detail = "; ".join(f"{k}: {', '.join(v)}" for k, v in context.items())
        return [], {
            "status": "error",
            "category": "VALIDATION_ERROR",
            "message": "One or more associations are invalid",
            "errors": [
                {
                    "message": f"One or more associations are invalid ({detail})",
                    "code": "INVALID_ASSOCIATION",
                    "context": context,
                }
            ],
            "context": context,
        }

    def list_objects(self, object_type: str, query: dict[str, list[str]]) -> dict[str, Any]:
        try:
            limit = min(100, max(1, int(query.get("limit", ["10"])[0])))
        except ValueError:
            raise _Reply(400, _error("limit must be a number", "VALIDATION_ERROR")) from None
        after = query.get("after", [None])[0]
        page = self.store.page(object_type, after, limit + 1)
        body: dict[str, Any] = {"results": page[:limit]}
        if len(page) > limit:
            nxt = page[limit - 1]["id"]
            body["paging"] = {
                "next": {
                    "after": nxt,
                    "link": f"{self.url}/crm/v3/objects/{object_type}?after={nxt}&limit={limit}",
                }
            }
        return body


def _check_value(prop: PropertyDef | None, name: str, value: str) -> tuple[str | None, str]:
    if prop is None:
        return "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'
    if prop.read_only or prop.calculated:
        return "READ_ONLY_VALUE", f'"{name}" is a read only property; its value cannot be set.'
    if value == "":
        return None, ""  # an empty string clears the value
    if prop.type == "number" and not _NUMBER.fullmatch(value):
        return "INVALID_INTEGER", f'"{value}" was not a valid number.'
    if prop.type == "bool" and value not in ("true", "false"):
        return "INVALID_BOOLEAN", f'"{value}" was not a valid boolean (true or false).'
    if prop.type == "date" and not _valid_date(value):
        return "INVALID_DATE", (
            f'"{value}" was not a valid date: use YYYY-MM-DD or epoch milliseconds at midnight UTC.'
        )
    if prop.type == "datetime" and not (value.isdigit() or _DATETIME.fullmatch(value)):
        return "INVALID_DATETIME", f'"{value}" was not a valid ISO 8601 datetime.'
    chosen = value.split(";") if prop.field_type == "checkbox" else [value]  # multi-select
    if prop.type == "enumeration" and any(v not in prop.options for v in chosen):
        allowed = ", ".join(prop.options)
        return "INVALID_OPTION", f'"{value}" was not one of the allowed options: [{allowed}]'
    if len(value) > MAX_TEXT_LENGTH:
        return "INVALID_STRING", f"Value for {name} is longer than {MAX_TEXT_LENGTH} characters."
    return None, ""


def _matches(props: dict[str, str], flt: dict[str, Any]) -> bool:
    """One search filter (EQ, NEQ, IN, NOT_IN, HAS_PROPERTY, NOT_HAS_PROPERTY)."""
    value = props.get(str(flt.get("propertyName")))
    op = flt.get("operator", "EQ")
    if op == "HAS_PROPERTY":
        return value not in (None, "")
    if op == "NOT_HAS_PROPERTY":
        return value in (None, "")
    if op in ("IN", "NOT_IN"):
        inside = value is not None and value in [str(v) for v in flt.get("values") or []]
        return inside if op == "IN" else not inside
    if op in ("EQ", "NEQ"):
        equal = value is not None and value == str(flt.get("value"))
        return equal if op == "EQ" else not equal
    raise _Reply(400, _error(f"operator {op} is not supported by the sandbox", "VALIDATION_ERROR"))


def _valid_date(value: str) -> bool:
    if value.isdigit():
        return int(value) % _DAY_MS == 0
    return bool(_DATE.fullmatch(value))


_LABELS = re.compile(r"^/crm/(?:v4/associations|associations/v4)/([^/]+)/([^/]+)/labels$")
_ROUTES = [
    ("POST", re.compile(r"^/crm/v3/objects/([^/]+)/batch/create$"), "create"),
    ("POST", re.compile(r"^/crm/v3/objects/([^/]+)/batch/update$"), "update"),
    ("POST", re.compile(r"^/crm/v3/objects/([^/]+)/batch/upsert$"), "upsert"),
    ("POST", re.compile(r"^/crm/v3/objects/([^/]+)/batch/read$"), "read"),
    ("POST", re.compile(r"^/crm/v3/objects/([^/]+)/search$"), "search"),
    ("GET", re.compile(r"^/crm/v3/objects/([^/]+)$"), "list"),
    ("GET", re.compile(r"^/crm/v3/objects/([^/]+)/([^/]+)$"), "get"),
    ("GET", re.compile(r"^/crm/v3/properties/([^/]+)$"), "properties"),
    ("POST", re.compile(r"^/crm/v3/objects/([^/]+)/batch/archive$"), "archive"),
]


def _make_handler(sandbox: Sandbox) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: without this, Nagle's algorithm and delayed
        # ACKs add ~40 ms to every answer on a kept-alive connection.
        disable_nagle_algorithm = True
        server_version = "hubspot-sandbox"
        arrived = 0.0

        def handle_one_request(self) -> None:
            # Clients here (requests/urllib3) never pipeline, so nothing of the next request
            # sits in rfile's buffer while the socket is peeked.
            stamped = getattr(self.server, "stamps_arrivals", False)
            self.arrived = _arrival(self.connection) if stamped else 0.0
            super().handle_one_request()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # bodies hold customer data, and tests want quiet

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def _handle(self, method: str) -> None:
            # Stamped when the request reached the host, as HubSpot's edge would, not after
            # this process found time (and the GIL) to parse it.
            arrived = self.arrived or time.monotonic()
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body: Any = None
            bad_json = None
            if raw:
                try:
                    body = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    bad_json = str(exc)
            sandbox.received.append(
                Received(
                    method=method, path=split.path, headers=dict(self.headers.items()), raw=raw
                )
            )
            fault = sandbox.take_fault(split.path)
            if fault is not None and fault.drop:
                self.close_connection = True
                return
            chance = sandbox.random_fault() if method == "POST" else None
            try:
                if chance == "error":
                    raise _Reply(
                        503,
                        _error(
                            "The service is temporarily unavailable (sandbox fault injection).",
                            "SERVICE_UNAVAILABLE",
                        ),
                    )
                if fault is not None and fault.status is not None:
                    raise _Reply(
                        fault.status,
                        fault.body or _error(HTTPStatus(fault.status).phrase, "INTERNAL_ERROR"),
                        fault.headers,
                    )
                sandbox.authenticate(self.headers.get("Authorization"))
                sandbox.admit(arrived)
                if bad_json is not None:
                    raise _Reply(400, _error(f"Invalid input JSON: {bad_json}", "VALIDATION_ERROR"))
                status, reply = self._route(method, split.path, parse_qs(split.query), body, fault)
                # `latency` is the whole time HubSpot takes to answer, the work included.
                rest = sandbox.config.latency - (time.monotonic() - arrived)
                if rest > 0:
                    time.sleep(rest)
            except _Reply as r:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._send(r.status, r.body, r.headers)
                return
            if chance == "drop":  # processed, but the answer never arrives
                self.close_connection = True
                return
            if chance == "hang":
                time.sleep(sandbox.config.hang_seconds)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # client gave up
                self._send(status, reply, {}, rate_headers=not split.path.endswith("/search"))

        def _route(
            self,
            method: str,
            path: str,
            query: dict[str, list[str]],
            body: Any,
            fault: Fault | None,
        ) -> tuple[int, Any]:
            if method == "GET" and path == "/account-info/v3/details":
                return 200, {
                    "portalId": sandbox.portal.portal_id,
                    "accountType": "SANDBOX",
                    "timeZone": "Europe/Berlin",
                    "companyCurrency": "EUR",
                    "uiDomain": "app.hubspot.com",
                    "dataHostingLocation": "eu1",
                }
            labels = _LABELS.match(path)
            if method == "GET" and labels:
                from_type = sandbox.object_type(labels.group(1))
                to_type = sandbox.object_type(labels.group(2))
                return 200, {"results": sandbox.portal.association_labels(from_type, to_type)}
            for verb, pattern, name in _ROUTES:
                match = pattern.match(path)
                if verb != method or not match:
                    continue
                object_type = sandbox.object_type(match.group(1))
                if name == "create":
                    sandbox.require_scope(object_type)
                    return sandbox.batch_create(object_type, body, fault)
                if name in ("update", "upsert"):
                    sandbox.require_scope(object_type)
                    return getattr(sandbox, f"batch_{name}")(object_type, body)  # type: ignore[no-any-return]
                if name == "archive":
                    sandbox.require_scope(object_type)
                    return sandbox.batch_archive(object_type, body)
                if name == "read":
                    return sandbox.batch_read(object_type, body)
                if name == "search":
                    return sandbox.search(object_type, body)
                if name == "list":
                    return 200, sandbox.list_objects(object_type, query)
                if name == "get":
                    record = sandbox.store.get(object_type, match.group(2))
                    if record is None:
                        raise _Reply(
                            404,
                            _error(
                                "Object not found. objectId are usually numeric.",
                                "OBJECT_NOT_FOUND",
                            ),
                        )
                    return 200, record
                defs = sandbox.portal.property_defs(object_type) or {}
                return 200, {"results": [d.as_json() for d in defs.values()]}
            raise _Reply(404, _error(f"No route for {method} {path}", "NOT_FOUND"))

        def _send(
            self, status: int, body: Any, headers: dict[str, str], *, rate_headers: bool = True
        ) -> None:
            data = orjson.dumps(body) if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-HubSpot-Correlation-Id", str(uuid.uuid4()))
            limits = sandbox.rate_headers() if rate_headers else {}
            for name, value in {**limits, **headers}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler
