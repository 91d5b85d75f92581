"""What a person watching a run sees: progress and wait lines per stream, a summary at its end.

A throttled sync of a large account takes hours, so every ``progress_log_seconds``
each stream says how far it is and how long is left, also while it waits for the
rate limit; a wait of WAIT_LINE_SECONDS or more is announced when it starts. At
the end of each stream (and organization) one summary line gives the records
read, emitted and rejected, the pages, requests, retries, 429s, drift re-reads
and the time, with the part of it spent waiting for the rate limit.
"""

from __future__ import annotations

import collections
import logging

from tap_mokapen import clock
from tap_mokapen.paging import Paginator
from tap_mokapen.throttle import SlidingWindowLimiter, wait_in_slices

#: Waits shorter than this go unannounced: they are the throttle doing its job.
WAIT_LINE_SECONDS = 3.0


def duration(seconds: float) -> str:
    """``42 s``, ``7.5 min`` or ``3.2 h``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """The counters of one stream in one run, and the lines that report them.

    It is also the stream's WaitListener (throttle.py): the throttle tells it when a
    wait starts and, slice by slice, while it lasts.
    """

    def __init__(
        self,
        stream: str,
        logger: logging.Logger,
        interval_seconds: float,
        limiter: SlidingWindowLimiter | None = None,
    ) -> None:
        self.stream = stream
        self.logger = logger
        self.interval = interval_seconds
        self.limiter = limiter
        self.stats: collections.Counter[str] = collections.Counter()
        self.seconds = 0.0
        self.waited = 0.0
        self.organization: int | str | None = None
        self._paginator: Paginator | None = None
        self._started = self._last_line = clock.monotonic()
        self._waited_at_start = 0.0
        self._wait_started: float | None = None
        self._waiting_for = "the rate limit"
        self._at_start: collections.Counter[str] = collections.Counter()

    def begin(self, organization: int | str | None = None) -> None:
        """A pass over one organization's list: its lines count from here."""
        self.organization = organization
        self._paginator = None
        self._started = self._last_line = clock.monotonic()
        self._waited_at_start = self.waited
        self._at_start = collections.Counter(self.stats)

    def page_done(self, paginator: Paginator) -> None:
        """Count a page and, when the interval has passed, say how far the stream is."""
        self.stats["pages"] += 1
        self._paginator = paginator
        now = clock.monotonic()
        if now - self._last_line >= self.interval:
            self._report(now)

    # -- the throttle's waits (throttle.WaitListener) -------------------------------------

    def waiting(self, seconds: float, why: str) -> None:
        self._wait_started = clock.monotonic()
        self._waiting_for = "the rate limit" if why.startswith("the rate limit") else why
        if seconds >= WAIT_LINE_SECONDS:
            self.logger.info(
                "'%s'%s waits %.0f s for %s",
                self.stream,
                self._of_organization(),
                seconds,
                why,
            )

    def still_waiting(self, seconds_left: float) -> None:
        now = clock.monotonic()
        if now - self._last_line >= self.interval:
            self._report(now, f"; waiting {seconds_left:.0f} s more for {self._waiting_for}")

    def done_waiting(self) -> None:
        """The wait ended (or was cut short): the time really waited is counted."""
        if self._wait_started is not None:
            self.waited += clock.monotonic() - self._wait_started
            self._wait_started = None

    def wait(self, seconds: float, why: str) -> None:
        """A wait the tap sleeps outside the throttle (a retry after a 429 or a fault):
        announced, reported while it lasts and counted like the throttle's."""
        if seconds > 0:
            wait_in_slices(seconds, why, self, monotonic=clock.monotonic, sleep=clock.sleep)

    # -- lines ---------------------------------------------------------------------------

    def _report(self, now: float, note: str = "") -> None:
        self._last_line = now
        pages = f"{self.stats['pages']} pages"
        estimate = ""
        done, all_pages = self._paginator.pages() if self._paginator else (0, None)
        if all_pages is not None:
            left = max(0, all_pages - done)
            pages = f"page {done} of {all_pages}"
            if self.stats["pages"] and left:
                estimate = f"; {left} pages left, about {duration(self._seconds_for(left, now))}"
        self.logger.info(
            "Progress of '%s': %d records, %s, %d requests%s%s",
            self.stream,
            self.stats["records"],
            pages,
            self.stats["requests"],
            estimate,
            note,
        )

    def _seconds_for(self, pages_left: int, now: float) -> float:
        """The time left: the pages at this stream's own pace, plus the throttle's waits.

        The pace leaves out the time spent waiting, so a burst after a wait (or a wait
        after a burst) does not sway it; the waits to come are the throttle's.
        """
        working = now - self._started - (self.waited - self._waited_at_start)
        pace = max(0.0, working) / max(1, self.stats["pages"])
        throttle = self.limiter.seconds_for(pages_left) if self.limiter else 0.0
        return pages_left * pace + throttle

    def _of_organization(self) -> str:
        return "" if self.organization is None else f" of organization {self.organization}"

    def end(self, paginator: Paginator | None) -> None:
        """The pass's summary: its own counts, not the stream's over every organization."""
        seconds = clock.monotonic() - self._started
        self.seconds += seconds
        if paginator:
            self.stats["drift_rereads"] += paginator.drift_rereads
        counts = self.stats - self._at_start
        self.logger.info(
            "Summary of '%s'%s: %d records read, %d emitted, %d rejected; %d pages, "
            "%d requests, %d retries, %d 429 answers, %d drift re-reads; %.1f s, %.1f s of "
            "it waiting for the rate limit and retries",
            self.stream,
            self._of_organization(),
            counts["records"],
            counts["emitted"],
            counts["rejected"],
            counts["pages"],
            counts["requests"],
            counts["retries"],
            counts["http_429"],
            counts["drift_rereads"],
            seconds,
            min(seconds, self.waited - self._waited_at_start),  # never more than elapsed
        )
