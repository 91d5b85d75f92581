"""The paging rules of each list shape, for ListPaginator (paging.py).

* ``PageNumbers`` (length_aware, simple, resource shapes): led by what the server
  returned, and safe against paging drift;
* ``Cursor``: ``cursor=<next_cursor>`` until it is null; deletions shift nothing;
* ``WholeList``: a plain list, whose first answer is the whole list (unless it
  fills exactly a page: then page 2 is asked for once).
"""

from __future__ import annotations

import abc
import logging
import typing as t

from tap_mokapen.errors import APIError
from tap_mokapen.records import UNSET

if t.TYPE_CHECKING:
    from tap_mokapen.pages import Page

logger = logging.getLogger("tap-mokapen")

Params = dict[str, t.Any]

#: Page sizes servers commonly cap at (Laravel's default is 15): a plain list of
#: exactly this many records may be the first page of one paged without saying so.
COMMON_PAGE_SIZES = frozenset({10, 15, 20, 25, 30, 50, 100, 200, 250, 500, 1000})


class Scheme(abc.ABC):
    """One list shape's paging rules."""

    name: t.ClassVar[str]
    #: The page size the tap asks for (``per_page``).
    page_size: int = 100
    #: Pages read a second time to stay safe from paging drift.
    drift_rereads: int = 0
    #: The last page held the records of the one before (a probe of a whole list).
    repeated_page: bool = False

    @abc.abstractmethod
    def first(self) -> Params: ...

    @abc.abstractmethod
    def next(self, page: Page, requested: Params, path: str) -> Params | None: ...

    @abc.abstractmethod
    def position(self) -> dict[str, t.Any]: ...

    def resize(self, page_size: int, requested: Params) -> Params:
        """Ask for ``page_size`` from now on; the parameters of the request to send again."""
        self.page_size = page_size
        return requested

    def for_shape(self, page: Page) -> Scheme:
        """The scheme the first answer calls for."""
        scheme: Scheme = self
        if page.shape == "cursor":
            scheme = Cursor({})
        elif page.shape == "list":
            scheme = WholeList(self.page_size)
        scheme.page_size = self.page_size
        return scheme

    def describe(self) -> str:
        return "the first page"

    def pages(self, count: int) -> tuple[int, int | None]:
        return count, None

    def expected_pages(self) -> int | None:
        return None

    def describe_trouble(self) -> str:
        return "the answers never ended"


class WholeList(Scheme):
    """A list that is not paged: the first answer holds every record.

    Unless it holds exactly a full page (the size asked, or a size servers cap pages
    at, such as 15, 100 or 500): then it may be page 1 of a list paged without
    saying so, and page 2 is asked for once. The same records again (or none) mean
    it was the whole list; others mean pages of that size, read on by number.
    """

    name = "list"

    def __init__(self, page_size: int) -> None:
        self.page_size = page_size
        self._first_ids: tuple[t.Any, ...] | None = None
        self._first_size = 0
        self._paged: PageNumbers | None = None

    def first(self) -> Params:
        return {"page": 1}

    def next(self, page: Page, requested: Params, path: str) -> Params | None:
        if self._paged:
            return self._paged.next(page, requested, path)
        ids = _fingerprint(page)
        if self._first_ids is None:
            self._first_ids, self._first_size = ids, page.size
            full = page.size == self.page_size or page.size in COMMON_PAGE_SIZES
            return {"page": 2} if full else None
        if not page.size or ids == self._first_ids:
            self.repeated_page = bool(page.size)  # the whole list again: already emitted
            return None
        logger.warning("%s pages without saying so: reading it page by page", path)
        self._paged = PageNumbers({"next_page": 2, "per_page": self._first_size})
        self._paged.page_size = self.page_size
        return self._paged.next(page, requested, path)

    def resize(self, page_size: int, requested: Params) -> Params:
        self.page_size = page_size
        return self._paged.resize(page_size, requested) if self._paged else requested

    def position(self) -> dict[str, t.Any]:
        return {**self._paged.position(), "shape": "page_numbers"} if self._paged else {}

    def expected_pages(self) -> int | None:
        return self._paged.expected_pages() if self._paged else None

    def for_shape(self, page: Page) -> Scheme:
        return self


class Cursor(Scheme):
    """``cursor=<next_cursor>`` until it is null: a snapshot-safe order, no drift."""

    name = "cursor"

    def __init__(self, position: t.Mapping[str, t.Any]) -> None:
        self.cursor: str | None = position.get("cursor")
        self._seen: set[str] = set()
        self._too_long_said = False
        self._last_ids: tuple[t.Any, ...] | None = None

    def first(self) -> Params:
        return {"cursor": self.cursor} if self.cursor else {"page": 1}

    def for_shape(self, page: Page) -> Scheme:
        if page.shape == "cursor":
            return self
        # Resumed at a cursor, but the endpoint no longer pages by cursor: it ignored
        # ours and answered from the start, so read it as that shape from there.
        logger.warning("The endpoint no longer pages by cursor: reading it from the start")
        fallback = PageNumbers({})
        fallback.page_size = self.page_size
        return fallback.for_shape(page)

    def next(self, page: Page, requested: Params, path: str) -> Params | None:
        ids = _fingerprint(page)
        if ids and ids == self._last_ids and any(i not in (None, UNSET) for i in ids[1:]):
            msg = f"{path} returned the same records for two cursors"
            raise APIError(msg)
        self._last_ids = ids
        cursor = page.next_cursor
        if not cursor or not page.size:
            return None
        cursor = str(cursor)
        if cursor in self._seen or cursor == requested.get("cursor"):
            msg = f"{path} returned the cursor {cursor[:40]!r} a second time"
            raise APIError(msg)
        self._seen.add(cursor)
        self.cursor = cursor
        return {"cursor": cursor}

    def position(self) -> dict[str, t.Any]:
        """Where to resume: the cursor, unless it is too long to keep (STATE holds nothing
        a server sends without a bound); then a resumed run reads the list from its start."""
        if self.cursor and len(self.cursor) > MAX_KEPT_CURSOR:
            if not self._too_long_said:
                self._too_long_said = True
                logger.warning(
                    "A cursor of %d characters is not kept in STATE (at most %d): a run "
                    "resumed from this point reads the list from its start",
                    len(self.cursor),
                    MAX_KEPT_CURSOR,
                )
            return {}
        return {"cursor": self.cursor}

    def describe(self) -> str:
        return f"cursor {self.cursor[:24]}..." if self.cursor else "the first page"


class PageNumbers(Scheme):
    """Page numbers, led by what the server actually returned, safe against paging drift.

    Whether there is a next page comes from ``next_page_url`` when the server sends
    one, else from ``current_page < last_page``, else from the page not being empty;
    an empty page always ends the list unless records are owed before it. The page
    size is whatever the server used (``per_page`` may be ignored).

    Paging by number is not a snapshot: when records are deleted, later records slide
    forward and one can slip past the page boundary unread. The scheme keeps
    ``covered``, the length of the prefix of the list known to be read. Each time
    ``total`` falls by d, ``covered`` falls by d too (the deletions may all have been
    before it), and the next page asked for is the one holding position ``covered``.
    Without drift that is simply the next page; with drift it steps back just far
    enough to read the records that slid, then jumps forward over pages it holds.

    Resume token: ``{"next_page": n, "total": t, "per_page": p}`` (total and per_page
    as last seen, so drift across runs is noticed too).
    """

    name = "page_numbers"

    def __init__(self, position: t.Mapping[str, t.Any]) -> None:
        self.next_page = int(position.get("next_page") or 1)
        self.total: int | None = position.get("total")
        self.per_page: int | None = position.get("per_page")
        self.covered = (self.next_page - 1) * (self.per_page or 0)
        self.drift_rereads = 0
        self._ahead: tuple[int, int] | None = None  # a range read beyond ``covered``
        self._highest_page = self.next_page - 1
        self._last_ids: tuple[t.Any, ...] | None = None
        self._warned_no_total = False
        self._announced: int | None = None
        self._totals_fell = 0

    def first(self) -> Params:
        if self.covered and self.per_page and self.per_page != self.page_size:
            # The last run paged by another size: its page numbers mean other records.
            self._aim_at_covered()
        return {"page": self.next_page}

    def resize(self, page_size: int, requested: Params) -> Params:
        self.page_size = page_size
        self._aim_at_covered()
        return {"page": self.next_page}

    def _aim_at_covered(self) -> None:
        """Ask next for the page (at the size asked) that holds the first record not read."""
        self.next_page = self.covered // self.page_size + 1
        self._highest_page = self.next_page - 1
        self.per_page = None  # the next answer says what the server uses now

    def position(self) -> dict[str, t.Any]:
        # What the server said is kept only as a number of sane size.
        return {
            "next_page": self.next_page,
            "total": _kept(self.total),
            "per_page": _kept(self.per_page),
        }

    def describe(self) -> str:
        return f"page {self.next_page}"

    def pages(self, count: int) -> tuple[int, int | None]:
        size = self.per_page
        if not size:
            return count, None
        all_pages = None if self.total is None else -(-self.total // size)
        return -(-self.covered // size), all_pages

    def expected_pages(self) -> int | None:
        return self._announced

    def describe_trouble(self) -> str:
        if self._totals_fell:
            return f"its total fell {self._totals_fell} times, each a re-read"
        return "it announced more pages than it holds"

    def next(self, page: Page, requested: Params, path: str) -> Params | None:
        number = int(requested.get("page") or 1)
        self._check_not_repeated(page, number, path)
        data = page.records
        if isinstance(page.per_page, int) and page.per_page > 0:
            self.per_page = page.per_page
        elif data:
            self.per_page = max(self.per_page or 0, len(data))
        size = self.per_page or len(data) or 1
        is_last = not data or not _has_next(page, number)
        self._account_for_deletions(page)
        self._note_announced(page, size)

        start = (number - 1) * size
        end = start + (len(data) if is_last else size)
        if start <= self.covered:
            self.covered = max(self.covered, end)
            if self._ahead and self._ahead[0] <= self.covered:
                self.covered = max(self.covered, self._ahead[1])
                self._ahead = None
        else:
            self._ahead = (start, end)
        self._highest_page = max(self._highest_page, number)

        if is_last and start <= self.covered:
            return None  # read to the end without a gap (a range read ahead is past it)
        self.next_page = self.covered // size + 1
        if self.next_page <= self._highest_page:
            self.drift_rereads += 1
        return {"page": self.next_page}

    def _note_announced(self, page: Page, size: int) -> None:
        """The pages the list holds by the answers' own account (``total``, else ``last_page``)."""
        announced = None
        if isinstance(self.total, int):
            announced = -(-self.total // size)
        elif isinstance(page.last_page, int) and 0 < page.last_page < 10**7:
            announced = page.last_page
        if announced is not None:
            self._announced = max(self._announced or 0, announced, 1)

    def _account_for_deletions(self, page: Page) -> None:
        total = page.total
        if not isinstance(total, int) or isinstance(total, bool) or total < 0:
            if not self._warned_no_total:
                logger.warning("The API sends no usable 'total': paging drift cannot be detected")
                self._warned_no_total = True
            return
        previous, self.total = self.total, total
        if previous is None or total >= previous:
            return
        deleted = previous - total
        self._totals_fell += 1
        self.covered = max(0, self.covered - deleted)
        if self._ahead:
            self._ahead = (self._ahead[0], self._ahead[1] - deleted)
        logger.warning(
            "total fell from %d to %d while paging: reading again from position %d so "
            "that no record slides past unread",
            previous,
            total,
            self.covered,
        )

    def _check_not_repeated(self, page: Page, requested: int, path: str) -> None:
        """A server that ignores ``page`` would otherwise be read forever."""
        current = page.current_page
        if isinstance(current, int) and current != requested:
            msg = f"{path} returned page {current} when page {requested} was asked for"
            raise APIError(msg)
        ids = _fingerprint(page)
        if ids and ids == self._last_ids and any(i not in (None, UNSET) for i in ids[1:]):
            msg = f"{path} returned the same records for page {requested} as for the page before"
            raise APIError(msg)
        self._last_ids = ids


#: The longest cursor STATE keeps; real ones are tens of characters, and a server
#: answers 414 to a URL of about 8 KB.
MAX_KEPT_CURSOR = 2048
#: The largest count STATE keeps (JSON readers lose precision past 2**53).
MAX_KEPT_COUNT = 2**53


def _kept(value: t.Any) -> int | None:
    """A count from a server as STATE keeps it: a sane integer, or nothing."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_KEPT_COUNT:
        return value
    return None


def _has_next(page: Page, requested: int) -> bool:
    if page.next_page_url is not UNSET:
        return bool(page.next_page_url)
    current = requested if page.current_page is None else page.current_page
    if isinstance(page.last_page, int) and isinstance(current, int):
        return current < page.last_page
    return bool(page.records)


def _record_id(record: t.Any) -> t.Any:
    return record.get("id") if isinstance(record, dict) else getattr(record, "id", None)


def _fingerprint(page: Page) -> tuple[t.Any, ...]:
    """Enough of a page to tell it from the next: its size and its first and last ids.

    A server that ignores the page or cursor asked for sends the same records again;
    two different pages with the same first and last ids and size do not happen.
    """
    records = page.records
    if not records:
        return ()
    return (len(records), _record_id(records[0]), _record_id(records[-1]))
