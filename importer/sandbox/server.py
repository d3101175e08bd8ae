"""The sandbox: the emulator served over HTTP on 127.0.0.1, in a thread of its own or the
caller's."""

from __future__ import annotations

import gc
import threading

from .config import Fault, Received, SandboxConfig
from .emulator import Emulator
from .http import _Server
from .portal import Portal

__all__ = ["Fault", "Received", "Sandbox", "SandboxConfig"]

POLL_SECONDS = 0.05  # how soon stop() is noticed


class Sandbox(Emulator):
    """Start with `with Sandbox() as sb:` or `sb.start()`; `sb.url` is the base URL."""

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        portal: Portal | None = None,
    ) -> None:
        super().__init__(config, portal=portal)
        self._server = _Server((host, port), self)
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
        self.close()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
