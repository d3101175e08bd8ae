"""SIGINT and SIGTERM stop a run the way a person would want: nothing sent goes unrecorded.

A signal is raised as `Stop` (a KeyboardInterrupt) in the main thread: the uploader takes no
new batch, settles the ones in flight and returns; the run then writes its workbook and
summary. While `deferred()` holds (writing what was sent), a signal is only kept
(`take_pending`), so a scheduler's timeout cannot cut a workbook in half.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["Stop", "deferred", "install", "signal_name", "take_pending"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_lock = threading.Lock()
_deferring = 0
_pending: int | None = None


class Stop(KeyboardInterrupt):
    """A signal asked the run to stop."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal_name(signum))


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
