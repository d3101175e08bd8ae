"""Run jobs from a few threads, each taking the next job when done with one: the uploader's
batches and the link stage's, under one rate limiter, settling what is in flight on a signal."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = ["in_parallel"]

_W = TypeVar("_W")


def in_parallel(work: Callable[[_W], None], jobs: Sequence[_W], senders: int) -> None:
    """Run `work` on every job from `senders` threads (see `_in_parallel`)."""
    _in_parallel(work, jobs, senders, threading.Event())


def _in_parallel(
    work: Callable[[_W], None], jobs: Sequence[_W], senders: int, stop: threading.Event
) -> None:
    """Run `work` on every job from `senders` threads, each taking the next job when done
    with one; returns once every thread has finished, raising the first error any raised.

    Each thread ends as soon as no job is left, while the others still wait for their last
    answers, so nothing is left to wait for once the last batch settles. (A thread pool's
    idle workers, shut down after the last batch, woke and exited one at a time: 75 to 330 ms
    on a busy machine. Left to exit on their own while the run went on, the test suite under
    load twice died of a segmentation fault just after an upload returned: every sender is
    joined here.) On an interrupt, `stop` keeps the rest from being sent, and the batches in
    flight settle before it propagates."""
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
    except BaseException:
        # A signal: take no new batch, and wait for those in flight to settle. Not by
        # Thread.join(): in Python 3.11 a join interrupted by a signal can leave the thread
        # marked as stopped while it still runs (bpo-45274's fix), so the next join returns
        # at once and the run would report a batch in flight as not sent. Each sender says
        # itself when it is done; a further signal does not cut that wait short.
        stop.set()
        for done in finished:
            while not done.is_set():
                with contextlib.suppress(KeyboardInterrupt):
                    done.wait(0.1)
        for thread in threads:  # each is past its last statement: these return at once
            with contextlib.suppress(KeyboardInterrupt):
                thread.join(1.0)
        raise
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
