"""SIGINT and SIGTERM stop a run the way a person would want: nothing sent goes unrecorded.

A signal is raised as `Stop` (a KeyboardInterrupt) in the main thread: the uploader takes no
new batch, sends none still waiting for a rate-limit slot (never sent: its rows are
`not_sent`), settles the ones on the wire and returns; the run then writes its workbook and
summary. That wait is bounded (`stop_wait()`, HUBSPOT_IMPORT_STOP_WAIT seconds), and a second
signal ends it at once (`Stop.abandoned`): the rows of the batches left unanswered are
uncertain.
While `deferred()` holds (writing what was sent), a signal is only kept (`take_pending`), so a
scheduler's timeout cannot cut a workbook in half.

A signal is never lost. Python ignores an exception raised in a finalizer or a weakref callback
(it only prints `Exception ignored in: ...`), and a signal handled while one runs would raise
its `Stop` there: such a `Stop` is caught on its way to `sys.unraisablehook` and the signal
delivered to the main thread again, and until it is, a run's `raise_if_stopped` (where its
stages hand over) raises it. Sender threads ask `arrived()` before a request that a read
of theirs preceded: after a signal, nothing is sent that was not on the wire already.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from types import FrameType
from typing import Any

from .environment import env_number
from .errors import RunInterrupted

__all__ = [
    "STOP_WAIT_ENV",
    "RunAbandoned",
    "Stop",
    "arrived",
    "deferred",
    "install",
    "raise_if_stopped",
    "signal_name",
    "stop_wait",
    "take_pending",
    "take_signal",
]

log = logging.getLogger(__name__)

STOP_WAIT_ENV = "HUBSPOT_IMPORT_STOP_WAIT"
DEFAULT_STOP_WAIT = 30.0
"""Seconds a signal waits for the batches in flight to be answered: HubSpot answers a batch in
a second or two, and a scheduler's grace before it kills (systemd's 90 s, Kubernetes' 30 s)
should leave time to write the workbook after."""

AGAIN_AFTER = 0.02
"""Seconds before a signal whose `Stop` Python swallowed is delivered again: time for the
finalizers being run to end, so that it is raised in the run's own code."""

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_lock = threading.RLock()
"""Reentrant: the handler, and a finalizer's hook, may run in the main thread while it holds
the lock (between the bytecodes of a `with _lock:`), which a plain lock would deadlock."""
_deferring = 0
_pending: int | None = None
_arrived: int | None = None
"""The first signal since `install`, whatever became of its `Stop`."""
_lost: int | None = None
"""A signal whose `Stop` Python swallowed, not yet delivered again nor raised."""


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


def interrupted(signum: int) -> RunInterrupted:
    """What a run stopped by signal `signum` says: RunInterrupted, naming the signal."""
    return RunInterrupted(signum, signal_name(signum))


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """Raise `Stop`, or keep the signal while `deferred()` holds. A signal swallowed before
    and delivered again is this one: one stop either way."""
    global _pending, _arrived, _lost
    with _lock:
        _arrived = _arrived or signum
        _lost = None
        if _deferring:
            _pending = signum
            return
    raise Stop(signum)


def _on_unraisable(unraisable: Any, *, before: Callable[[Any], None]) -> None:
    """`sys.unraisablehook` while the handlers are installed: the `Stop` of a signal that
    arrived while a finalizer or a weakref callback ran, where Python ignores it, is kept and
    its signal delivered to the main thread again (`AGAIN_AFTER` seconds on, once this hook
    has returned: raised in here, it would be ignored too); anything else goes to `before`."""
    global _lost
    exc = unraisable.exc_value
    if not isinstance(exc, Stop):
        before(unraisable)
        return
    with deferred():  # a further signal is kept meanwhile, not raised in here
        log.debug("%s came while Python freed memory: delivered again", signal_name(exc.signum))
        with _lock:
            _lost = exc.signum
        again = threading.Timer(AGAIN_AFTER, _deliver_again)
        again.name, again.daemon = "signal-again", True
        # As Python exits no thread starts: `raise_if_stopped` raises it then.
        with contextlib.suppress(RuntimeError):
            again.start()


def _deliver_again() -> None:
    """Send the swallowed signal to the main thread again, unless a run raised it meanwhile
    (`raise_if_stopped`)."""
    global _lost
    with _lock:
        signum, _lost = _lost, None
    if signum is not None:
        signal.pthread_kill(threading.main_thread().ident or 0, signum)


def arrived() -> int | None:
    """The first signal since the handlers were installed, if any came: a sender thread asks
    before a request, so that none leaves after a signal."""
    return _arrived


def take_signal() -> int | None:
    """A signal no `Stop` has carried to the run yet: kept while `deferred()` held, or
    swallowed (and not yet delivered again); forgotten once taken."""
    global _pending, _lost
    with _lock:
        signum = _pending or _lost
        _pending = _lost = None
    return signum


def raise_if_stopped() -> None:
    """Raise the `Stop` of a signal the run has not seen yet (`take_signal`): called where
    a run's stages hand over, outside `deferred()`."""
    signum = take_signal()
    if signum is not None:
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
    _forget()
    hook = sys.unraisablehook
    sys.unraisablehook = partial(_on_unraisable, before=hook)
    before = {s: signal.signal(s, _on_signal) for s in _SIGNALS}

    def restore() -> None:
        for s, handler in before.items():
            signal.signal(s, handler)
        sys.unraisablehook = hook
        _forget()

    return restore


def _forget() -> None:
    """Forget the signals of an earlier command (tests run many in one process)."""
    global _pending, _arrived, _lost
    with _lock:
        _pending = _arrived = _lost = None
