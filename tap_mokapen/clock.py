"""The tap's one clock: the time of day, elapsed time, and waiting.

Every "now" the tap writes and every wait it makes (the throttle, retries, the token
store's lock) asks this module, never ``time`` or ``datetime`` directly. That is what
lets the tests run hours of throttling and back-off in no time: they swap ``CLOCK`` for
one whose ``sleep`` moves the time forward instead of waiting.
"""

from __future__ import annotations

import datetime as dt
import time


class Clock:
    """The real clock."""

    def now(self) -> dt.datetime:
        """The time of day, in UTC."""
        return dt.datetime.now(dt.UTC)

    def time(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    def monotonic(self) -> float:
        """Seconds for measuring elapsed time (never goes back)."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


#: The clock in use; tests replace it (tests/clock.py).
CLOCK: Clock = Clock()


def now() -> dt.datetime:
    return CLOCK.now()


def epoch_seconds() -> float:
    return CLOCK.time()


def monotonic() -> float:
    return CLOCK.monotonic()


def sleep(seconds: float) -> None:
    CLOCK.sleep(seconds)
