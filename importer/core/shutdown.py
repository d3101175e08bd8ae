"""SIGINT and SIGTERM stop a run the way a person would want: nothing sent goes unrecorded.

A signal is raised as `Stop` (a KeyboardInterrupt) in the main thread: the uploader takes no
new batch, sends none still waiting for a rate-limit slot (never sent: its rows are
`not_sent`), settles the ones on the wire and returns; the run then writes its workbook and
summary. That wait is bounded (`stop_wait()`, HUBSPOT_IMPORT_STOP_WAIT seconds), and a second
signal ends it at once (`Stop.abandoned`): the rows of the batches left unanswered are
uncertain.
While `deferred()` holds (writing what was sent), a signal is only kept (`take_pending`), so a
scheduler's timeout cannot cut a workbook in half.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from .environment import env_number
from .errors import RunInterrupted

__all__ = [
    "STOP_WAIT_ENV",
    "RunAbandoned",
    "Stop",
    "deferred",
    "install",
    "signal_name",
    "stop_wait",
    "take_pending",
]

STOP_WAIT_ENV = "HUBSPOT_IMPORT_STOP_WAIT"
DEFAULT_STOP_WAIT = 30.0
"""Seconds a signal waits for the batches in flight to be answered: HubSpot answers a batch in
a second or two, and a scheduler's grace before it kills (systemd's 90 s, Kubernetes' 30 s)
should leave time to write the workbook after."""

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_lock = threading.Lock()
_deferring = 0
_pending: int | None = None


class Stop(KeyboardInterrupt):
    """A signal asked the run to stop."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.abandoned: str | None = None
        """Why the batches in flight were left unanswered, when they were: a second signal
        came while they were awaited, or they were not answered within `stop_wait()`."""
        super().__init__(signal_name(signum))


class RunAbandoned(RunInterrupted):
    """A signal stopped the run and the batches in flight were left unanswered
    (`Stop.abandoned`): their rows are uncertain, the rest not sent."""

    def __init__(self, signum: int, why: str, rows: int) -> None:
        self.signum = signum
        Exception.__init__(
            self,
            f"stopped by {signal_name(signum)} ({why}): {rows:,} rows sent were left without "
            "HubSpot's answer and are uncertain (the next run finds out what became of them "
            "before sending them again); the rest was not sent (the next run sends it)",
        )


def stop_wait() -> float:
    """Seconds a signal waits for the batches in flight (`HUBSPOT_IMPORT_STOP_WAIT`, else
    DEFAULT_STOP_WAIT)."""
    return env_number(
        STOP_WAIT_ENV,
        DEFAULT_STOP_WAIT,
        low=0,
        high=3600,
        takes="a number of seconds from 0 to 3600",
    )


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


def _on_signal(signum: int, frame: FrameType | None) -> None:
    global _pending
    with _lock:
        if _deferring:
            _pending = signum
            return
    raise Stop(signum)


@contextmanager
def deferred() -> Iterator[None]:
    """Keep a signal from interrupting what runs inside; it is kept for `take_pending`."""
    global _deferring
    with _lock:
        _deferring += 1
    try:
        yield
    finally:
        with _lock:
            _deferring -= 1


def take_pending() -> int | None:
    """The signal that arrived while deferred, if any (and forget it)."""
    global _pending
    with _lock:
        pending, _pending = _pending, None
    return pending


def install() -> Callable[[], None]:
    """Handle SIGINT and SIGTERM as `Stop` (from the main thread); returns what restores the
    handlers that were there before."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    before = {s: signal.signal(s, _on_signal) for s in _SIGNALS}

    def restore() -> None:
        for s, handler in before.items():
            signal.signal(s, handler)

    return restore
