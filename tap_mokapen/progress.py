"""What a person watching a run sees: a progress line per stream, a summary at its end.

A throttled sync of a large account takes hours, so every ``progress_log_seconds``
each stream says how far it is; at the end of each stream (and organization) one
summary line gives its records, pages, requests, retries, 429s and drift re-reads.
"""

from __future__ import annotations

import collections
import logging
import time

from tap_mokapen.paging import Paginator


class Progress:
    """The counters of one stream in one run, and the lines that report them."""

    def __init__(self, stream: str, logger: logging.Logger, interval_seconds: float) -> None:
        self.stream = stream
        self.logger = logger
        self.interval = interval_seconds
        self.stats: collections.Counter[str] = collections.Counter()
        self.seconds = 0.0
        self._started = self._last_line = time.monotonic()

    def begin(self) -> None:
        self._started = self._last_line = time.monotonic()

    def page_done(self, paginator: Paginator) -> None:
        """Count a page and, when the interval has passed, say how far the stream is."""
        self.stats["pages"] += 1
        now = time.monotonic()
        if now - self._last_line < self.interval:
            return
        self._last_line = now
        done, all_pages = paginator.pages()
        pages = f"{self.stats['pages']} pages"
        estimate = ""
        if all_pages is not None:
            left = max(0, all_pages - done)
            pages = f"page {done} of {all_pages}"
            if self.stats["pages"] and left:
                seconds = left * (now - self._started) / self.stats["pages"]
                estimate = f"; {left} pages left, about {seconds / 60:.1f} min at this pace"
        self.logger.info(
            "Progress of '%s': %d records, %s, %d requests%s",
            self.stream,
            self.stats["records"],
            pages,
            self.stats["requests"],
            estimate,
        )

    def end(self, paginator: Paginator | None) -> None:
        stats = self.stats
        self.seconds += time.monotonic() - self._started
        if paginator:
            stats["drift_rereads"] += paginator.drift_rereads
        self.logger.info(
            "Summary of '%s': %d records, %d pages, %d requests, %d retries, %d 429 "
            "answers, %d drift re-reads, %.1f s",
            self.stream,
            stats["records"],
            stats["pages"],
            stats["requests"],
            stats["retries"],
            stats["http_429"],
            stats["drift_rereads"],
            self.seconds,
        )
