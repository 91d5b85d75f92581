"""Client-side rate limiting and the per-run request budget.

Mokapen throttles at 60 requests a minute per client and cuts an organization off
after its daily quota. The tap spends one shared ``RequestPacer`` per run: every HTTP
request it makes (token requests included) takes a slot from it first.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
import typing as t

from tap_mokapen.errors import RequestBudgetSpent


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
        clock: t.Callable[[], float] = time.monotonic,
        sleep: t.Callable[[float], None] = time.sleep,
    ) -> None:
        if limit < 1 or window <= 0:
            msg = "the rate limit needs a positive request count and window"
            raise ValueError(msg)
        self.limit = limit
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._done: collections.deque[float] = collections.deque(maxlen=limit)

    def wait_for_slot(self) -> None:
        if len(self._done) < self.limit:
            return
        delay = self._done[0] + self.window - self._clock()
        if delay > 0:
            self._sleep(delay)

    def record(self) -> None:
        self._done.append(self._clock())


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
    def slot(self) -> t.Iterator[None]:
        """Hold a slot for one request; raises RequestBudgetSpent when none are left."""
        with self._lock:
            if self.max_requests is not None and self.requests >= self.max_requests:
                msg = f"max_requests_per_run ({self.max_requests}) reached"
                raise RequestBudgetSpent(msg)
            if self.limiter:
                self.limiter.wait_for_slot()
            self.requests += 1
            try:
                yield
            finally:
                if self.limiter:
                    self.limiter.record()
