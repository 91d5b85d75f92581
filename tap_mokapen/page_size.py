"""How many records to ask for per page: DEFAULT_PAGE_SIZE, or what the server allows.

Mokapen has no ``updated_at`` filter, so every run reads every page and the page size
decides what a sync costs: 20,000 contacts are 200 requests at 100 a page (a Free
plan's whole day) and 20 at 1,000. Mokapen documents no largest ``per_page``; a
Laravel API may honour any value, clamp it silently, or refuse it with a 422.

A silent clamp needs nothing: page numbers follow the server's own ``per_page``, so
asking for more than it serves costs no request (bench/page_size.py: 18 requests a
run, the least possible, on every run). Unless ``page_size`` is set, the tap asks for
DEFAULT_PAGE_SIZE and lowers it only when the server will not serve it:

* it answers 422 or 400 about the page size: the tap asks for the limit the message
  names (or half, when it names none) and retries the page;
* it fails a large page (5xx, no answer in time) FAULTS_BEFORE_SHRINKING times in a
  row: the tap tries half the size, down to SMALLEST_TRIAL, and from there the
  usual retries take over. Without this, a server that cannot build a large page
  fails every run (bench/page_size.py: 27 requests and a complete run instead).

The size so found is kept in the stream's STATE (``page_size``, per organization),
and trusted for the next runs only once it repeats: it is asked for straight away
only after a later run found the same size (``"confirmed": true``), so one transient
422 or outage never pins a small page (10 a page is 500 requests for 5,000
contacts). Once confirmed, it saves the refused or failed requests of every run (2 to
6 in the benchmark). After RECHECK_AFTER (a day, for a size found from faults, which
may have been an outage) the tap asks for the default again; a page served at a
size above the one kept means the limit is gone, and it is forgotten. A
``checked_at`` later than now (a wrong clock) counts as unknown. A ``page_size``
set by the user is always asked for first; if the server refuses it, the run goes
on at the size it accepts and says so.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import typing as t

import requests

from tap_mokapen import clock, timestamps
from tap_mokapen.errors import PageSizeRefused, RetriableAPIError, TruncatedAnswer

logger = logging.getLogger("tap-mokapen")

#: Asked for when nothing is configured or learned. A contact is about 1 KB as JSON
#: (10 KB with generous custom fields), so a page is 1-10 MB: a tenth of the
#: max_response_mb cap at worst, one database query of 1,000 rows for the server, and
#: the size at which the tap's CPU per record is lowest (README, Performance).
DEFAULT_PAGE_SIZE = 1000
#: Faults at a large size are tried at a smaller one down to this, not below: a size
#: this small failing is an outage, not a page too large.
SMALLEST_TRIAL = 100
#: Two faults in a row can be a blip; three at a large size, a page too large.
FAULTS_BEFORE_SHRINKING = 3
RECHECK_AFTER = dt.timedelta(days=7)
#: A size learned from faults may have been an outage: it is checked again sooner.
RECHECK_FAULTS_AFTER = dt.timedelta(days=1)

# "must not be greater than 100", "may not be greater than 100", "between 1 and 100",
# "max:100": the limit is the largest number the message names below the size asked.
_LIMIT = re.compile(
    r"(?:greater than|more than|at most|up to|maximum(?: of)?|max:?|between \d+ and)\s*(\d+)",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d+")
#: Faults a page too large can cause (besides a 5xx): no answer in time, an answer cut off.
_PAGE_FAULTS = (
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    TruncatedAnswer,
)


@dataclasses.dataclass
class PageSize:
    """The ``per_page`` asked of one endpoint for one organization, and what was learned."""

    asked: int
    #: Set by the user: asked for as it is, and never learned over.
    configured: int | None = None
    #: The largest page the server honoured, and when and how that was found.
    learned: int | None = None
    checked_at: str | None = None
    how: str | None = None
    #: The size below the default was learned by two runs, not one.
    confirmed: bool = False
    #: What STATE said when the run started: a size learned again equal to it is confirmed.
    previous: int | None = None
    #: Requests spent finding it in this run (refused and failed attempts).
    learning_requests: int = 0
    #: The endpoint, for log lines: "'contacts' of organization 849".
    where: str = "the list"
    _faults: int = 0

    @classmethod
    def for_endpoint(
        cls,
        configured: int | None,
        remembered: t.Any,
        *,
        where: str = "the list",
        now: dt.datetime | None = None,
    ) -> PageSize:
        """The size to start with: the user's, else a fresh learned one, else the default."""
        now = now or clock.now()
        learned, checked_at, how, confirmed = _read(remembered, now)
        if configured:
            return cls(
                configured, configured, learned, checked_at, how, confirmed, learned, where=where
            )
        asked = DEFAULT_PAGE_SIZE
        recheck = RECHECK_FAULTS_AFTER if how == "failed" else RECHECK_AFTER
        fresh = bool(learned and checked_at and _parse(checked_at) > now - recheck)
        trusted = confirmed or (learned or 0) >= DEFAULT_PAGE_SIZE
        if learned and fresh and trusted:
            asked = min(learned, DEFAULT_PAGE_SIZE)
        elif learned and learned < DEFAULT_PAGE_SIZE:
            logger.info(
                "%s the page size of %s: %d was learned %s, asking for %d again",
                "Re-checking" if fresh is False else "Confirming",
                where,
                learned,
                checked_at or "at an unknown time",
                DEFAULT_PAGE_SIZE,
            )
        return cls(asked, None, learned, checked_at, how, confirmed, learned, where=where)

    def remembered(self) -> dict[str, t.Any] | None:
        """What STATE keeps (state.py), or None when nothing was learned."""
        if self.learned is None:
            return None
        return {
            "largest": self.learned,
            "checked_at": self.checked_at,
            "how": self.how,
            "confirmed": self.confirmed,
        }

    # -- what the answers teach -----------------------------------------------------

    def served(self) -> bool:
        """A page came at the size asked; True when what is remembered changed.

        A size kept below it is gone (Mokapen raised its limit, or the faults were an
        outage): it is forgotten, and the next run asks for the default again.
        """
        self._faults = 0
        if self.learned is None or self.asked <= self.learned:
            return False
        self.learned = self.checked_at = self.how = None
        self.confirmed = False
        return True

    def refused(self, refusal: PageSizeRefused) -> int | None:
        """The size to ask for after a refusal or repeated faults; None when none is left."""
        if refusal.fault:
            # Faults shrink the page down to SMALLEST_TRIAL, then the usual retries go on.
            self.learning_requests += FAULTS_BEFORE_SHRINKING
            smaller = max(SMALLEST_TRIAL, self.asked // 2)
        else:
            self.learning_requests += 1
            smaller = self.limit_named(refusal.message) or self.asked // 2
        if smaller < 1 or smaller >= self.asked:
            return None
        what = "failed" if refusal.fault else "refused"
        if self.configured:
            logger.warning(
                "The server %s page_size=%d for %s (%s): asking for %d in this run. Set "
                "page_size to at most %d, or unset it to let the tap learn the size.",
                what,
                self.asked,
                self.where,
                refusal.message,
                smaller,
                smaller,
            )
        else:
            logger.info(
                "The server %s pages of %d for %s (%s): asking for %d from now on",
                what,
                self.asked,
                self.where,
                refusal.message,
                smaller,
            )
        self.asked = smaller
        self._faults = 0
        self._learn(smaller, what)
        return smaller

    def limit_named(self, message: str) -> int | None:
        """The largest page a refusal names, below the size asked, if it names one."""
        for pattern in (_LIMIT, _NUMBER):
            named = [int(n) for n in pattern.findall(message)]
            below = [n for n in named if 0 < n < self.asked]
            if below:
                return max(below)
        return None

    def count_fault(self, exception: BaseException) -> bool:
        """Count a failed attempt; True when the page should be tried at a smaller size.

        Only what a page too large could cause counts: a 5xx, no answer in time, an
        answer cut off. A throttle, a refused connection or a reset before any
        answer says nothing of the page's size.
        """
        if self.configured:
            return False
        response = getattr(exception, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(exception, RetriableAPIError):
            if status is None or status < 500:
                return False
        elif not isinstance(exception, _PAGE_FAULTS):
            return False
        self._faults += 1
        return self.shrink_due

    @property
    def shrink_due(self) -> bool:
        """The page failed often enough at a size large enough to try it smaller."""
        return self._faults >= FAULTS_BEFORE_SHRINKING and self.asked > SMALLEST_TRIAL

    def _learn(self, size: int, how: str) -> bool:
        self.learned, self.how = size, how
        self.confirmed = size == self.previous
        self.checked_at = timestamps.now()
        return True


def _read(remembered: t.Any, now: dt.datetime) -> tuple[int | None, str | None, str | None, bool]:
    """What STATE says was learned: (largest, checked_at, how, confirmed); nothing when it
    is not a size, and no time when the time is later than now (a wrong clock)."""
    if not isinstance(remembered, dict):
        return None, None, None, False
    largest = remembered.get("largest")
    if not isinstance(largest, int) or isinstance(largest, bool) or largest < 1:
        return None, None, None, False
    checked_at = remembered.get("checked_at")
    if not isinstance(checked_at, str) or _parse(checked_at) > now:
        checked_at = None
    how = remembered.get("how")
    return (
        largest,
        checked_at,
        how if isinstance(how, str) else None,
        bool(remembered.get("confirmed") is True),
    )


def _parse(timestamp: str) -> dt.datetime:
    """A time STATE keeps; one that is not a time is as old as can be."""
    return timestamps.parse(timestamp) or dt.datetime.min.replace(tzinfo=dt.UTC)
