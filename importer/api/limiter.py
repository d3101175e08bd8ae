"""Pacing: HubSpot's rolling rate-limit window, kept by every sender of a run (or a plan's
steps) together, bursting to the limit and no further; the limit learned from its headers."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..core.hubspot import RATE_LIMIT_INTERVAL_MS

__all__ = ["DEFAULT_RATE_LIMIT", "Halted", "RateLimiter"]

log = logging.getLogger(__name__)

DEFAULT_RATE_LIMIT = 100  # Free/Starter; learned from X-HubSpot-RateLimit-Max after a reply


class Halted(Exception):
    """A sender was stopped while it waited for a slot: its request was not sent."""


@dataclass
class _Gate:
    size: int
    deadline: float
    waiting: int = 0
    open: threading.Event = field(default_factory=threading.Event)


class RateLimiter:
    """Keeps sends within HubSpot's rolling window, bursting to the limit and no further.

    A request's slot in the window is reused only `pad` after the window has passed it: HubSpot
    counts arrivals, and a request sent a hair after the window may arrive a hair before it. A
    count margin would cost a whole extra window per window on a long run; a time pad costs
    `pad` per window. `max_rps` adds a cap per second of our own.
    """

    def __init__(
        self,
        max_requests: int = DEFAULT_RATE_LIMIT,
        interval: float = RATE_LIMIT_INTERVAL_MS / 1000,
        *,
        max_rps: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.max_requests = max_requests
        self.interval = interval
        self.max_rps = max_rps
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()
        self._waiters: list[object] = []
        """Senders waiting for a slot, in the order they asked."""
        self._pause_until = 0.0
        self._extra_pad = 0.0
        self._gate: _Gate | None = None
        self._halts = threading.local()
        """Per sending thread: the event that ends its waits for a slot (`halted_by`)."""

    @property
    def pad(self) -> float:
        # Covers the jitter between sending and HubSpot's arrival stamp: 10 ms on 1 s windows,
        # 55 ms on HubSpot's 10 s ones (0.55% of each window), widened after each 429.
        return 0.005 + 0.005 * self.interval + self._extra_pad

    def rate_limited(self) -> float:
        """A 429 for the rolling window: arrivals lag sends more than the pad allowed for.
        Widen the pad (up to 5% of the window) and say how long to hold off: the slot that
        was counted is about to leave HubSpot's window, not a whole window away."""
        with self._lock:
            self._extra_pad = min(0.05 * self.interval, self._extra_pad + 0.02 * self.interval)
            return max(0.25, 0.05 * self.interval)

    def learn(self, max_requests: int | None, interval_ms: int | None) -> None:
        with self._lock:
            if max_requests and max_requests > 0:
                self.max_requests = max_requests
            if interval_ms and interval_ms > 0:
                self.interval = interval_ms / 1000

    def observe(self, remaining: int | None, granted: float | None = None) -> None:
        """HubSpot's count of what is left when the request granted at `granted` arrived: if
        it was spent while our own sends in that window were not, the quota is shared with
        another app, so hold off for a window.

        Our sends are counted in the window that ended at that request, not in the one that
        ends now: by the time its answer is read, the oldest of them may have left our window
        but not HubSpot's, and a pause for a whole window would be taken for nothing."""
        if remaining is None or remaining > 0:
            return
        with self._lock:
            at = granted if granted is not None else self._clock()
            since = at - self.interval - self.pad
            own = sum(1 for t in self._sent if t > since)
            if own < self.max_requests:
                self._pause_until = max(self._pause_until, self._clock() + self.interval)

    def pause(self, seconds: float) -> None:
        """Hold every sender for `seconds` (after a 429 or a Retry-After)."""
        with self._lock:
            self._pause_until = max(self._pause_until, self._clock() + seconds)

    def _wait(self, now: float) -> float:
        horizon = self.interval + self.pad
        # Kept for two windows: `observe` looks back from requests sent a window ago.
        while self._sent and now - self._sent[0] >= 2 * horizon:
            self._sent.popleft()
        wait = self._pause_until - now
        if len(self._sent) >= self.max_requests:
            wait = max(wait, horizon - (now - self._sent[-self.max_requests]))
        if self.max_rps:
            per_second = max(1, int(self.max_rps))
            recent = [t for t in self._sent if now - t < 1.0]
            if len(recent) >= per_second:
                wait = max(wait, 1.0 - (now - recent[-per_second]))
        return wait

    def start_together(self, senders: int, *, timeout: float = 2.0) -> None:
        """Grant the next `senders` slots together, once that many senders are waiting (or
        `timeout` passed). A rolling window repeats the spread of the sends it counted, so a
        first burst that trickles out while the other senders still prepare would slow every
        later window by that much."""
        with self._lock:
            self._gate = _Gate(senders, self._clock() + timeout) if senders > 1 else None

    def _through_gate(self) -> None:
        with self._lock:
            gate = self._gate
            if gate is None:
                return
            gate.waiting += 1
            if gate.waiting >= gate.size:
                gate.open.set()
        gate.open.wait(max(0.0, gate.deadline - self._clock()))
        with self._lock:
            if self._gate is gate:
                self._gate = None
                gate.open.set()

    @contextmanager
    def halted_by(self, stop: threading.Event) -> Iterator[None]:
        """Within, this thread's waits for a slot end as soon as `stop` is set, raising
        `Halted`: nothing was sent. A slot already granted is not taken back (its request is
        on its way, and its answer is to be awaited)."""
        before = getattr(self._halts, "stop", None)
        self._halts.stop = stop
        try:
            yield
        finally:
            self._halts.stop = before

    def acquire(self) -> float:
        """Wait for a slot; returns the time it was granted (pass it to `sent_at`).

        Each waiting sender sleeps until the slot its place in line will get: the k-th waiter's
        is the one the k-th oldest send in the window frees. Senders then wake one by one at
        their own slots, as fast as the window frees them, without waking the others. (Handing
        one "next in line" turn from sender to sender took a thread switch per grant, ~1 ms
        under a burst: slower than the first burst had sent, so every window fell further
        behind its slots.) Senders let through the start gate take their free slots at once
        the same way, none waiting for another. Raises `Halted` once the thread's
        `halted_by` event is set, before any slot is granted."""
        self._through_gate()
        stop: threading.Event | None = getattr(self._halts, "stop", None)
        me = object()
        with self._lock:
            self._waiters.append(me)
        try:
            while True:
                with self._lock:
                    if stop is not None and stop.is_set():
                        raise Halted
                    now = self._clock()
                    wait = self._wait(now)
                    if wait <= 0:
                        self._sent.append(now)
                        return now
                    wait = max(wait, self._slot(self._waiters.index(me)) - now)
                # To the slot, not a millisecond past it: a burst's slots are a millisecond
                # apart, and a late grant here is a later slot in every window after.
                if stop is None:
                    self._sleep(max(wait, 0.0001))
                else:  # on the real clock: a halt must wake it at once
                    stop.wait(max(wait, 0.0001))
        finally:
            with self._lock:
                self._waiters.remove(me)

    def _slot(self, place: int) -> float:
        """When the sender `place` waiters from the front can expect its slot (under the lock;
        `_wait` has the final word)."""
        horizon = self.interval + self.pad
        index = len(self._sent) + place - self.max_requests
        if index < 0 or not self._sent:
            return 0.0  # the window is not full (a pause, if any, is `_wait`'s to keep)
        if index < len(self._sent):
            return self._sent[index] + horizon
        return self._sent[-1] + horizon  # a window or more of waiters ahead: look again then

    def sent_at(self, granted: float, sent: float) -> None:
        """The request granted at `granted` finished leaving at `sent`: count its slot from
        then. Under a burst the last of 50 senders writes its bytes tens of milliseconds after
        its grant; a window counted from the grants would let the next burst in too early."""
        if sent <= granted:
            return
        with self._lock:
            for i in range(len(self._sent) - 1, -1, -1):
                if self._sent[i] == granted:
                    self._sent[i] = sent
                    break
            else:
                return
            if i + 1 < len(self._sent) and self._sent[i + 1] < sent:
                self._sent = deque(sorted(self._sent))
