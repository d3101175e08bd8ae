"""Run jobs from a few threads, each taking the next job when done with one: the uploader's
batches and the link stage's, under one rate limiter, settling what is in flight on a signal."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from ..core.shutdown import Stop, deferred, signal_name, stop_wait, take_pending

__all__ = ["in_parallel"]

log = logging.getLogger(__name__)

_W = TypeVar("_W")

STOP_GRACE = 0.25
"""Seconds a stop gives the senders halted in the limiter to leave before those still busy
(their requests on the wire) are counted and said."""


def in_parallel(
    work: Callable[[_W], None],
    jobs: Sequence[_W],
    senders: int,
    stop: threading.Event | None = None,
    *,
    abandon: bool = False,
) -> None:
    """Run `work` on every job from `senders` threads, each taking the next job when done
    with one; returns once every thread has finished, raising the first error any raised.

    Each thread ends as soon as no job is left, while the others still wait for their last
    answers, so nothing is left to wait for once the last batch settles. (A thread pool's
    idle workers, shut down after the last batch, woke and exited one at a time: 75 to 330 ms
    on a busy machine. Left to exit on their own while the run went on, the test suite under
    load twice died of a segmentation fault just after an upload returned: every sender is
    joined here.) On an interrupt, `stop` keeps the rest from being sent, and the batches in
    flight settle before it propagates. With `abandon`, that wait is bounded (`stop_wait()`)
    and a second signal cuts it short: the signal's `Stop` is raised saying why in its
    `abandoned`, the senders still waiting for their answers, which the caller must no
    longer take. Without a `stop` of the caller's, one of its own."""
    stop = stop if stop is not None else threading.Event()
    queue = iter(jobs)
    taking = threading.Lock()
    failures: list[BaseException] = []
    finished = [threading.Event() for _ in range(senders)]

    def sender(n: int) -> None:
        try:
            while not stop.is_set():
                with taking:
                    job = next(queue, None)
                if job is None:
                    return
                work(job)
        except BaseException as exc:  # raised again below, once every sender is done
            stop.set()
            failures.append(exc)
        finally:
            finished[n].set()

    threads = [
        threading.Thread(target=sender, args=(n,), name=f"upload-{n}", daemon=True)
        for n in range(senders)
    ]
    for thread in threads:
        thread.start()
    try:
        for done in finished:
            done.wait()
    except BaseException as first:
        stop.set()  # a signal: take no new batch
        _wait_for_senders(first, finished, threads, abandon=abandon)
        raise
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def _wait_for_senders(
    first: BaseException,
    finished: list[threading.Event],
    threads: list[threading.Thread],
    *,
    abandon: bool,
) -> None:
    """Wait for the batches in flight to settle after `first` stopped the sending (see
    `_settle`); when they are left, `first.abandoned` says why. Not by Thread.join(): in 3.11
    a join interrupted by a signal can leave the thread marked as stopped while it still
    runs (bpo-45274's fix), so the next join returns at once and the run would report a
    batch in flight as not sent. Each sender says itself when it is done."""
    signalled = first if isinstance(first, Stop) else None
    # A further signal is kept, for `_settle` to take, never raised midway: raised while the
    # wait is being set up (or said), it would pass for the first and leave batches unsaid.
    with deferred():
        why = _settle(finished, signalled, abandon=abandon and signalled is not None)
        if signalled is not None and why is not None:
            signalled.abandoned = why
            return
        for thread in threads:  # each is past its last statement: these return at once
            thread.join(1.0)


def _still_busy(finished: list[threading.Event], grace: float = STOP_GRACE) -> int:
    """Senders still busy once those that were only waiting for a rate-limit slot have left:
    a stop halts those waits at once (`RateLimiter.halted_by`), and what is left is on the
    wire."""
    until = time.monotonic() + grace
    for done in finished:
        done.wait(max(0.0, until - time.monotonic()))
    return sum(not done.is_set() for done in finished)


def _settle(finished: list[threading.Event], first: Stop | None, *, abandon: bool) -> str | None:
    """Wait for every sender to be done after `first` (a signal, or None for an error) stopped
    the sending; None once they are. With `abandon`, the wait ends at `stop_wait()` seconds
    or a second signal, whichever comes first, and says which; without, neither ends it."""
    busy = _still_busy(finished)
    name = signal_name(first.signum) if first is not None else "stopping"
    wait = stop_wait() if abandon else None
    if busy:
        log.warning(
            "%s: waiting %sfor %s in flight to be answered%s",
            name,
            f"up to {wait:.0f} s " if wait is not None else "",
            "the batch" if busy == 1 else f"the {busy} batches",
            " (a second signal stops at once: their rows are then uncertain)" if abandon else "",
        )
    deadline = time.monotonic() + wait if wait is not None else None
    for done in finished:
        while not done.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                return f"HubSpot had not answered within {wait:.0f} s"
            again = take_pending()
            if again is not None and abandon:
                return (
                    f"a second signal, {signal_name(again)}, while HubSpot's answers were awaited"
                )
            done.wait(0.1)
    return None
