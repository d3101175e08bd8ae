"""Real servers on 127.0.0.1 for the remote INPUT tests: an HTTP file server (ETag,
Last-Modified, HEAD, 404, 403, and a path that answers too late), moto's S3 server, and an
SFTP server (asyncssh, in-process) that checks a client key or a password."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --- HTTP -------------------------------------------------------------------------------


@dataclass
class HttpFiles:
    """What the HTTP server serves, and what it was asked."""

    files: dict[str, bytes] = field(default_factory=dict)
    """Path (`/feeds/products.csv`) -> content."""
    modified: dict[str, float] = field(default_factory=dict)
    etags: bool = True
    slow: float = 0.0
    """Seconds a path under /slow/ waits before answering."""
    no_head: bool = False
    etag: str | None = None
    """The ETag every file is served with (None: each file's MD5)."""
    disposition: dict[str, str] = field(default_factory=dict)
    """Path -> the Content-Disposition header it is served with."""
    """Answer a HEAD with 403, as a URL signed for GET alone does."""
    redirects: dict[str, str] = field(default_factory=dict)
    """Path -> the path a 302 sends the client to."""
    requests: list[tuple[str, str]] = field(default_factory=list)
    """(method, path with its query) of each request."""
    url: str = ""

    def put(self, path: str, content: bytes, modified: float | None = None) -> str:
        """Serve `content` at `path`; its URL."""
        self.files[path] = content
        self.modified[path] = modified if modified is not None else time.time()
        return self.url + path

    def gets(self, path: str) -> int:
        return sum(1 for method, p in self.requests if method == "GET" and p.startswith(path))


def _handler(served: HttpFiles) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def _answer(self, *, body: bool) -> None:
            served.requests.append((self.command, self.path))
            path = self.path.partition("?")[0]
            if path.startswith("/slow/"):
                time.sleep(served.slow)
            if path.startswith("/forbidden/") or (served.no_head and self.command == "HEAD"):
                self._status(403, b"Forbidden")
                return
            if path in served.redirects:
                self.send_response(302)
                self.send_header("Location", served.redirects[path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            content = served.files.get(path)
            if content is None:
                self._status(404, b"Not Found")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(content)))
            if served.etags:
                etag = served.etag or f'"{hashlib.md5(content).hexdigest()}"'
                self.send_header("ETag", etag)
            if path in served.disposition:
                self.send_header("Content-Disposition", served.disposition[path])
            when = email.utils.formatdate(served.modified[path], usegmt=True)
            self.send_header("Last-Modified", when)
            self.end_headers()
            if body:
                self.wfile.write(content)

        def _status(self, status: int, text: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(text)

    return Handler


@contextlib.contextmanager
def http_server() -> Iterator[HttpFiles]:
    """An HTTP file server on 127.0.0.1 (what it serves: `HttpFiles.put`)."""
    served = HttpFiles()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(served))
    server.daemon_threads = True
    served.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(name="http_files")
def http_files_fixture() -> Iterator[HttpFiles]:
    """An HTTP file server on 127.0.0.1, stopped after the test."""
    with http_server() as served:
        yield served


# --- S3 ---------------------------------------------------------------------------------


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1; its endpoint URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def s3_environment(endpoint: str) -> dict[str, str]:
    """What a user of MinIO (or any S3-compatible store) sets: the endpoint, the keys and the
    region; the AWS files of whoever runs the tests left out."""
    return {
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


@pytest.fixture(scope="module", name="moto_server")
def moto_server_fixture() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@dataclass
class S3:
    endpoint: str
    client: Any

    def bucket(self, name: str) -> str:
        self.client.create_bucket(Bucket=name)
        return name

    def put(self, bucket: str, key: str, content: bytes) -> str:
        self.client.put_object(Bucket=bucket, Key=key, Body=content)
        return f"s3://{bucket}/{key}"


@pytest.fixture(name="s3")
def s3_fixture(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> S3:
    """moto's S3 server, found by s3fs as a user's MinIO would be: AWS_ENDPOINT_URL_S3 and
    the usual AWS_* credentials in the environment."""
    import boto3

    for name, value in s3_environment(moto_server).items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    return S3(moto_server, boto3.client("s3", region_name=REGION))


# --- SFTP -------------------------------------------------------------------------------


@dataclass
class Sftp:
    root: Path
    """The folder the server serves as /."""
    port: int
    home: Path
    """The client's HOME: its key and known_hosts in .ssh."""

    def url(self, path: str, user: str = "feeds") -> str:
        return f"sftp://{user}@127.0.0.1:{self.port}{path}"


class _SftpServer:
    """asyncssh's SFTP server on its own event loop in a thread."""

    def __init__(self, root: Path, host_key: Any, client_key: Any, password: str | None) -> None:
        self.root, self.host_key, self.client_key, self.password = (
            root,
            host_key,
            client_key,
            password,
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: Any = None
        self.connections: list[Any] = []

    def start(self) -> int:
        self.thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self.loop)
        self.server = future.result(20)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def _listen(self) -> Any:
        import asyncssh

        password = self.password
        connections = self.connections

        class Server(asyncssh.SSHServer):  # type: ignore[misc]
            def connection_made(self, conn: Any) -> None:
                connections.append(conn)

            def password_auth_supported(self) -> bool:
                return password is not None

            def validate_password(self, username: str, given: str) -> bool:
                return given == password

        root = str(self.root)
        return await asyncssh.listen(
            "127.0.0.1",
            0,
            server_factory=Server,
            server_host_keys=[self.host_key],
            authorized_client_keys=asyncssh.import_authorized_keys(
                self.client_key.export_public_key().decode()
            ),
            sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=root),
        )

    def stop(self) -> None:
        async def close() -> None:
            self.server.close()
            await self.server.wait_closed()
            for conn in self.connections:
                conn.close()
                await conn.wait_closed()
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def start_sftp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, password: str | None = None
) -> Iterator[Sftp]:
    """An SFTP server serving `tmp_path/sftp-root`, and a client HOME whose ~/.ssh holds the
    client's key and the server's host key in known_hosts (no ssh-agent)."""
    import asyncssh

    root = tmp_path / "sftp-root"
    root.mkdir()
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key.write_private_key(str(home / ".ssh" / "id_ed25519"))
    os.chmod(home / ".ssh" / "id_ed25519", 0o600)
    server = _SftpServer(root, host_key, client_key, password)
    port = server.start()
    public = host_key.export_public_key().decode().strip()
    (home / ".ssh" / "known_hosts").write_text(f"[127.0.0.1]:{port} {public}\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    try:
        yield Sftp(root=root, port=port, home=home)
    finally:
        server.stop()


@pytest.fixture(name="sftp")
def sftp_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sftp]:
    yield from start_sftp(tmp_path, monkeypatch)
