"""Undo's requests, one at a time from a sender thread: a signal waits for the request on the
wire to be answered (at most `stop_wait()` seconds; a second signal ends the wait at once),
so that what HubSpot carried out is recorded before undo stops, and no request leaves after
it. An archive request is written in the journal before it leaves (`mark_sending`): one left
without an answer (the wait ended, or the process died) is settled by the next undo, which
reads HubSpot first (`sent_before`)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from ..core.errors import RunInterrupted
from ..core.shutdown import arrived, deferred, signal_name, stop_wait, take_signal
from ..state.journal import Journal

__all__ = ["UndoStopped", "Wire", "clear_sending", "mark_sending", "sent_before"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

POLL = 0.1
"""Seconds between two looks for a signal while an answer is awaited."""

_SENDING = "undo-sending:"
"""Journal meta key (+ the run id): the ids of the archive request on the wire."""


class UndoStopped(RunInterrupted):
    """A signal stopped an undo: what HubSpot answered was recorded, the rest is left for
    the next undo (the message says how much)."""

    def __init__(self, signum: int, said: str) -> None:
        self.signum = signum
        Exception.__init__(self, f"stopped by {signal_name(signum)}{said}")


class Wire:
    """Undo's requests, each sent from a sender thread and waited for (`send`); `signum` is
    the signal that came meanwhile, `abandoned` why a request was left without its answer."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.abandoned: str | None = None
        self.left = False
        """Whether the last request was left without its answer, or never sent."""

    def stopped(self) -> int | None:
        """The signal that stops the sending, if one came (kept while `deferred()` held)."""
        self.signum = self.signum or take_signal()
        return self.signum

    def send(self, call: Callable[[], _T]) -> _T | None:
        """`call`'s answer, from a sender thread; None when a signal came before it left
        (nothing sent) or the wait for it was given up (`abandoned`). A signal while it is
        on the wire is kept in `signum` once the answer is in."""
        box: dict[str, object] = {}
        done = threading.Event()

        def sender() -> None:
            """The request; its answer or error is kept for the main thread."""
            try:
                box["answer"] = call()
            except BaseException as exc:  # raised again in the main thread
                box["error"] = exc
            finally:
                done.set()

        self.left = True
        # Signals are kept, never raised, from here to the answer: raised midway, one would
        # leave the request unsaid, and a second that came with it would pass for the first.
        with deferred():
            if self.stopped() is not None:
                return None
            threading.Thread(target=sender, name="undo-sender", daemon=True).start()
            self.abandoned = self._settle(done)
        if self.abandoned is not None:
            return None
        self.left = False
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        return box["answer"]  # type: ignore[return-value]

    def _settle(self, done: threading.Event) -> str | None:
        """Wait for the request on the wire (`done`): without end until a signal comes,
        then at most `stop_wait()` seconds, and not after a second signal. Why it was left,
        or None once answered."""
        deadline = None
        while not done.wait(POLL):
            signum = take_signal()
            if signum is not None and self.signum is not None:
                return _second(signum)
            if signum is not None:
                # Two signals that came together are kept as one: the first is `arrived()`.
                self.signum = arrived() or signum
                if self.signum != signum:
                    return _second(signum)
                deadline = time.monotonic() + stop_wait()
                log.warning(
                    "%s: waiting up to %.0f s for HubSpot's answer to the request on the wire "
                    "(a second signal stops at once: its outcome is then unknown)",
                    signal_name(signum),
                    stop_wait(),
                )
            if deadline is not None and time.monotonic() >= deadline:
                return f"HubSpot had not answered within {stop_wait():.0f} s"
        return None


def _second(signum: int) -> str:
    """Why a request was left at a second signal."""
    return f"a second signal, {signal_name(signum)}, while HubSpot's answer was awaited"


def mark_sending(journal: Journal, run_id: str, ids: list[str]) -> None:
    """Record, before it leaves, the ids of an archive request undo sends for `run_id`."""
    journal.set_meta(_SENDING + run_id, json.dumps(ids))


def clear_sending(journal: Journal, run_id: str) -> None:
    """The archive request's answer is recorded: nothing of `run_id`'s is on the wire."""
    journal.set_meta(_SENDING + run_id, "[]")


def sent_before(journal: Journal, run_id: str) -> set[str]:
    """Ids an earlier undo of `run_id` sent to be archived and never recorded the answer of:
    those HubSpot no longer holds live were archived by it."""
    try:
        return {str(i) for i in json.loads(journal.get_meta(_SENDING + run_id) or "[]")}
    except ValueError:
        return set()
