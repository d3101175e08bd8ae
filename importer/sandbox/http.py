"""The sandbox's HTTP side: a threading server that stamps arrivals, and the handler that
routes each request to the sandbox and answers as HubSpot does."""

from __future__ import annotations

import contextlib
import logging
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

from .config import Fault, Received
from .replies import Reply, error
from .routes import Request, route

if TYPE_CHECKING:
    from .emulator import Emulator

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

    def __init__(self, address: tuple[str, int], sandbox: Emulator) -> None:
        self.sandbox = sandbox
        """What the handlers answer for."""
        super().__init__(address, _Handler)

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


def _parse_json(raw: bytes) -> tuple[Any, str | None]:
    """A body's JSON (None without a body), and why it is not JSON (None when it is)."""
    if not raw:
        return None, None
    try:
        return orjson.loads(raw), None
    except orjson.JSONDecodeError as exc:
        return None, str(exc)


class _Handler(BaseHTTPRequestHandler):
    """Answers the requests of one connection as HubSpot does, faults and limits included."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without this, Nagle's algorithm and delayed
    # ACKs add ~40 ms to every answer on a kept-alive connection.
    disable_nagle_algorithm = True
    server_version = "hubspot-sandbox"
    arrived = 0.0
    server: _Server

    def handle_one_request(self) -> None:
        # Clients here (requests/urllib3) never pipeline, so nothing of the next request
        # sits in rfile's buffer while the socket is peeked.
        stamped = self.server.stamps_arrivals
        self.arrived = _arrival(self.connection) if stamped else 0.0
        super().handle_one_request()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # bodies hold customer data, and tests want quiet

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer what the stdlib refuses before a handler runs (a method not served, a
        malformed request line or header) with the status it chose and HubSpot's JSON error
        body, not the stdlib's HTML page."""
        status = HTTPStatus(code)
        body = None if self.command == "HEAD" else error(message or status.phrase, status.name)
        self._send(code, body, {"Connection": "close"})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        """Answer one request, or drop it as a fault says (carried out or not)."""
        sandbox = self.server.sandbox
        request = self._receive(method)
        fault = request.fault
        if fault is not None and fault.drop and not fault.after:
            self.close_connection = True
            return
        chance = sandbox.random_fault() if method == "POST" else None
        try:
            status, reply = self._answer(request, chance)
        except Reply as r:
            self._send(r.status, r.body, r.headers, search=request.search)
            return
        if chance == "drop" or (fault is not None and fault.drop):
            self.close_connection = True  # carried out, but the answer never arrives
            return
        if chance == "hang":
            time.sleep(sandbox.config.hang_seconds)
        self._send(status, reply, {}, search=request.search)

    def _receive(self, method: str) -> Request:
        """The request, read and recorded in `received`, with the fault injected for its path."""
        # Stamped when the request reached the host, as HubSpot's edge would, not after
        # this process found time (and the GIL) to parse it.
        arrived = self.arrived or time.monotonic()
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body, bad_json = _parse_json(raw)
        sandbox = self.server.sandbox
        sandbox.received.append(
            Received(method=method, path=split.path, headers=dict(self.headers.items()), raw=raw)
        )
        return Request(
            method=method,
            path=split.path,
            query=parse_qs(split.query),
            body=body,
            bad_json=bad_json,
            arrived=arrived,
            fault=sandbox.take_fault(split.path),
        )

    def _answer(self, request: Request, chance: str | None) -> tuple[int, Any]:
        """The status and body of the answer once `latency` has passed; an error answer (a
        fault, a limit, a bad request) is raised as a Reply. `chance`: the random fault drawn."""
        sandbox = self.server.sandbox
        fault = request.fault
        path = sandbox.canonical_path(request.path)
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
        self._admit(request)
        if request.bad_json is not None:
            raise Reply(400, error(f"Invalid input JSON: {request.bad_json}", "VALIDATION_ERROR"))
        status, reply = self._route(request, path)
        # `latency` is the whole time HubSpot takes to answer, the work included.
        rest = sandbox.config.latency - (time.monotonic() - request.arrived)
        if rest > 0:
            time.sleep(rest)
        if fault is not None and fault.after and fault.status is not None:
            raise _fault_reply(fault, fault.status)  # carried out, then answered an error
        if chance == "late_error":
            raise Reply(
                504,
                error(
                    "The gateway timed out (sandbox fault injection: the request was carried out).",
                    "GATEWAY_TIMEOUT",
                ),
            )
        return status, reply

    def _admit(self, request: Request) -> None:
        """Authenticate the request, answer it as its token's portal, and count it against
        the rate limits (a 401 or 429 is raised as a Reply)."""
        sandbox = self.server.sandbox
        token = sandbox.authenticate(self.headers.get("Authorization"))
        sandbox.enter(token)
        if request.search:
            sandbox.admit_search(token, request.arrived)
        else:
            sandbox.admit(request.arrived)

    def _route(self, request: Request, path: str) -> tuple[int, Any]:
        """The endpoint's answer to the request at `path` (its numbered form)."""
        try:
            return route(self.server.sandbox, request, path)
        except (Reply, ConnectionError):
            raise
        except Exception:
            # HubSpot answers what it cannot handle with a 500, never a closed socket.
            log.exception("sandbox: %s %s failed", request.method, request.path)
            raise Reply(500, error("Internal error (sandbox).", "INTERNAL_ERROR")) from None

    def _send(
        self, status: int, body: Any, headers: dict[str, str], *, search: bool = False
    ) -> None:
        """Send one answer with the rate-limit headers (a client that gave up gets none)."""
        # One correlation id per answer, in the body (errors) and the header alike.
        correlation = str(uuid.uuid4())
        if isinstance(body, dict) and "correlationId" in body:
            body = {**body, "correlationId": correlation}
        data = orjson.dumps(body) if body is not None else b""
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # client gave up
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-HubSpot-Correlation-Id", correlation)
            limits = self.server.sandbox.rate_headers(search=search)
            for name, value in {**limits, **headers}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
