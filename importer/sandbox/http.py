"""The sandbox's HTTP side: a threading server that stamps arrivals, and the handler that
routes each request to the sandbox and answers as HubSpot does."""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import struct
import sys
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import orjson

from .associations import associations_batch
from .config import Fault, Received
from .replies import Reply, error

if TYPE_CHECKING:
    from .server import Sandbox

log = logging.getLogger(__name__)

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


def _fault_reply(fault: Fault, status: int) -> Reply:
    return Reply(
        status, fault.body or error(HTTPStatus(status).phrase, "INTERNAL_ERROR"), fault.headers
    )


def _not_found(path: str) -> Reply:
    return Reply(404, error(f"Resource not found: {path}", "RESOURCE_NOT_FOUND"))


_LABELS = re.compile(r"^/crm/(?:v4/associations|associations/v4)/([^/]+)/([^/]+)/labels$")
_ASSOCIATIONS_BATCH = re.compile(
    r"^/crm/(?:v4/associations|associations/v4)/([^/]+)/([^/]+)/batch/"
    r"(create|associate/default|archive|labels/archive|read)$"
)
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
            if fault is not None and fault.drop and not fault.after:
                self.close_connection = True
                return
            chance = sandbox.random_fault() if method == "POST" else None
            search = method == "POST" and split.path.endswith("/search")
            try:
                path = sandbox.canonical_path(split.path)
                if chance == "error":
                    raise Reply(
                        503,
                        error(
                            "The service is temporarily unavailable (sandbox fault injection).",
                            "SERVICE_UNAVAILABLE",
                        ),
                    )
                if fault is not None and fault.status is not None and not fault.after:
                    raise _fault_reply(fault, fault.status)
                token = sandbox.authenticate(self.headers.get("Authorization"))
                sandbox.enter(token)
                if search:
                    sandbox.admit_search(token, arrived)
                else:
                    sandbox.admit(arrived)
                if bad_json is not None:
                    raise Reply(400, error(f"Invalid input JSON: {bad_json}", "VALIDATION_ERROR"))
                try:
                    status, reply = self._route(
                        method, path, split.path, parse_qs(split.query), body, fault
                    )
                except (Reply, ConnectionError):
                    raise
                except Exception:
                    # HubSpot answers what it cannot handle with a 500, never a closed socket.
                    log.exception("sandbox: %s %s failed", method, split.path)
                    raise Reply(500, error("Internal error (sandbox).", "INTERNAL_ERROR")) from None
                # `latency` is the whole time HubSpot takes to answer, the work included.
                rest = sandbox.config.latency - (time.monotonic() - arrived)
                if rest > 0:
                    time.sleep(rest)
                if fault is not None and fault.after and fault.status is not None:
                    raise _fault_reply(fault, fault.status)  # carried out, then answered an error
                if chance == "late_error":
                    raise Reply(
                        504,
                        error(
                            "The gateway timed out (sandbox fault injection: the request was "
                            "carried out).",
                            "GATEWAY_TIMEOUT",
                        ),
                    )
            except Reply as r:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._send(r.status, r.body, r.headers, search=search)
                return
            if chance == "drop" or (fault is not None and fault.drop):
                self.close_connection = True  # carried out, but the answer never arrives
                return
            if chance == "hang":
                time.sleep(sandbox.config.hang_seconds)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # client gave up
                self._send(status, reply, {}, search=search)

        def _route(
            self,
            method: str,
            path: str,
            requested: str,
            query: dict[str, list[str]],
            body: Any,
            fault: Fault | None,
        ) -> tuple[int, Any]:
            """Answer `path` (the numbered form of the `requested` path)."""
            if method == "GET" and path == "/account-info/v3/details":
                return 200, {
                    "portalId": sandbox.portal.portal_id,
                    "accountType": sandbox.portal.account_type,
                    "timeZone": "Europe/Berlin",
                    "companyCurrency": "EUR",
                    "additionalCurrencies": [],
                    "uiDomain": "app.hubspot.com",
                    "dataHostingLocation": "eu1",
                    "utcOffset": "+01:00",
                    "utcOffsetMilliseconds": 3_600_000,
                }
            labels = _LABELS.match(path)
            if method == "GET" and labels:
                from_type = sandbox.object_type(labels.group(1))
                to_type = sandbox.object_type(labels.group(2))
                return 200, {"results": sandbox.portal.association_labels(from_type, to_type)}
            batch = _ASSOCIATIONS_BATCH.match(path)
            if method == "POST" and batch:
                from_type = sandbox.object_type(batch.group(1))
                to_type = sandbox.object_type(batch.group(2))
                if batch.group(3) != "read":
                    sandbox.require_scope(from_type)
                return associations_batch(sandbox, from_type, to_type, batch.group(3), body)
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
                    return 200, sandbox.list_objects(object_type, query, requested)
                if name == "get":
                    return 200, sandbox.get_object(object_type, match.group(2), query)
                defs = sandbox.portal.property_defs(object_type)
                return 200, {
                    "results": [d.as_json(object_type, i) for i, d in enumerate(defs.values())]
                }
            raise _not_found(requested)

        def _send(
            self, status: int, body: Any, headers: dict[str, str], *, search: bool = False
        ) -> None:
            # One correlation id per answer, in the body (errors) and the header alike.
            correlation = str(uuid.uuid4())
            if isinstance(body, dict) and "correlationId" in body:
                body = {**body, "correlationId": correlation}
            data = orjson.dumps(body) if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-HubSpot-Correlation-Id", correlation)
            limits = sandbox.rate_headers(search=search)
            for name, value in {**limits, **headers}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler
