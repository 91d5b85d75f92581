"""Client-side rate limiting and the per-run request budget.

Mokapen throttles at 60 requests a minute per client and cuts an organization off
after its daily quota. The tap spends one shared ``RequestPacer`` per run: every HTTP
request it makes (token requests included) takes a slot from it first.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import typing as t

from tap_mokapen import clock as tap_clock
from tap_mokapen.errors import RequestBudgetSpent

#: A throttle wait is slept in slices this long, so that a long one stays visible.
WAIT_SLICE_SECONDS = 1.0


class WaitListener(t.Protocol):
    """Who is told of a throttle wait (progress.py): at its start, and while it lasts."""

    def waiting(self, seconds: float, why: str) -> None: ...

    def still_waiting(self, seconds_left: float) -> None: ...

    def done_waiting(self) -> None: ...


def wait_in_slices(
    seconds: float,
    why: str,
    listener: WaitListener | None,
    *,
    monotonic: t.Callable[[], float],
    sleep: t.Callable[[float], None],
) -> None:
    """Sleep ``seconds`` in slices, telling ``listener`` when the wait starts, while it
    lasts and when it ends (the throttle's waits here, a retry's in progress.py)."""
    if listener:
        listener.waiting(seconds, why)
    deadline = monotonic() + seconds
    try:
        while (left := deadline - monotonic()) > 0:
            sleep(min(left, WAIT_SLICE_SECONDS))
            left = deadline - monotonic()
            if listener and left > 0:
                listener.still_waiting(left)
    finally:  # what was really waited counts, even when a signal cut the wait short
        if listener:
            listener.done_waiting()


class SlidingWindowLimiter:
    """At most ``limit`` requests in any ``window`` seconds.

    A request is recorded when its answer has arrived, not when it was sent: the
    server saw it no later than that, so by the time the oldest recorded request
    leaves our window it has left the server's window too. That is what lets the
    tap run at the full allowed rate without ever being throttled.
    """

    def __init__(
        self,
        limit: int,
        window: float = 60.0,
        *,
        clock: t.Callable[[], float] | None = None,
        sleep: t.Callable[[float], None] | None = None,
    ) -> None:
        if limit < 1 or window <= 0:
            msg = "the rate limit needs a positive request count and window"
            raise ValueError(msg)
        self.limit = limit
        self.window = window
        self._clock = clock or tap_clock.monotonic
        self._sleep = sleep or tap_clock.sleep
        self._done: collections.deque[float] = collections.deque(maxlen=limit)

    def wait_for_slot(self, listener: WaitListener | None = None) -> None:
        if len(self._done) < self.limit:
            return
        delay = self._done[0] + self.window - self._clock()
        if delay <= 0:
            return
        why = f"the rate limit ({self.limit} requests per {self.window:g} s)"
        wait_in_slices(delay, why, listener, monotonic=self._clock, sleep=self._sleep)

    def record(self) -> None:
        self._done.append(self._clock())

    def seconds_for(self, requests: int) -> float:
        """About how long the throttle will hold back ``requests`` more requests (waits only).

        The free slots of the window go at once; every ``limit`` requests after them
        wait for a window to pass.
        """
        now = self._clock()
        busy = [done for done in self._done if done > now - self.window]
        free = self.limit - len(busy)
        if requests <= free:
            return 0.0
        first_wait = busy[0] + self.window - now if busy else 0.0
        windows = -(-(requests - free) // self.limit)
        return max(0.0, first_wait) + (windows - 1) * self.window


class RequestPacer:
    """Paces and counts every request of a run; enforces ``max_requests_per_run``."""

    def __init__(
        self, limiter: SlidingWindowLimiter | None, max_requests: int | None = None
    ) -> None:
        self.limiter = limiter
        self.max_requests = max_requests
        self.requests = 0
        # Re-entrant: a nested request (a token fetched mid-request) must not deadlock.
        self._lock = threading.RLock()

    @contextlib.contextmanager
    def slot(self, listener: WaitListener | None = None) -> t.Iterator[None]:
        """Hold a slot for one request; raises RequestBudgetSpent when none are left."""
        with self._lock:
            if self.max_requests is not None and self.requests >= self.max_requests:
                msg = f"max_requests_per_run ({self.max_requests}) reached"
                raise RequestBudgetSpent(msg)
            if self.limiter:
                self.limiter.wait_for_slot(listener)
            self.requests += 1
            try:
                yield
            finally:
                if self.limiter:
                    self.limiter.record()
