"""Step 4 of the data path, paging: which request comes next, and where to resume.

``Paginator`` is what the list reader (list_reader.py) and the pass (list_pass.py)
rely on. The reader asks ``current_value`` for the next request's query parameters
(``per_page`` included) and sends the request; the pass hands the answer's page to
``advance``, which decides the next request (or ``finished``); only after the page's
records are written does the pass store ``position()`` in STATE, to resume at that
next request. The position is a small JSON object that only the paginator reads
(state.py keeps it opaque).

Each list shape has its paginator, on ``Paginator`` (the request count, the
budget, ``per_page``, the doubts). A pass starts with ``open_list`` at its resume
token; the first answer tells which shape the endpoint speaks (shapes.py), and
``paginator_for`` hands over to that shape's paginator (the first of ``PAGINATORS``
that ``speaks`` the answer), which the list is read on with:

* ``PageNumbers`` (length_aware, simple, resource shapes): led by what the server
  returned, and safe against paging drift;
* ``Cursor``: ``cursor=<next_cursor>`` until it is null; deletions shift nothing;
* ``WholeList``: a plain list, whose first answer is the whole list (unless it
  fills exactly a page, or the pass must be sure: then page 2 is asked for once,
  and records other than the first page's hand over to ``PageNumbers``).

Paging always ends, and ends cheaply: an empty page ends a stream (once asked
twice, when its answer says more records follow); a pass may not
spend more than ``budget(expected)`` requests, where ``expected`` is the number of
pages the answers announce, else the pages of the last complete pass; a cursor or
page seen twice is an error. A server that breaks these rules stops the stream
with an error naming the endpoint.

A server's answer is evidence, not truth. Where an answer contradicts itself or
the answers before it (an empty page while its total says records follow, a page
shorter than the others that is not the last, a total that falls and stays
fallen), the paginator asks for the same page once more; a contradiction that stands
is a *doubt*: the pass reads on where it can, but it is incomplete
(``verdict``), so it retires no row and moves no bookmark (list_pass.py,
deletions.py).
"""

from __future__ import annotations

import logging
import typing as t

from tap_mokapen.errors import APIError, PassBudgetSpent, holds_secret
from tap_mokapen.record_type import UNSET

if t.TYPE_CHECKING:
    from tap_mokapen.shapes import Page

logger = logging.getLogger("tap-mokapen")

Params = dict[str, t.Any]

#: Page sizes servers commonly cap at (Laravel's default is 15): a plain list of
#: exactly this many records may be the first page of one paged without saying so.
COMMON_PAGE_SIZES = frozenset({10, 15, 20, 25, 30, 50, 100, 200, 250, 500, 1000})
#: The largest total believed: 10^8 records take five days of the largest daily
#: quota (20,000 requests of 1,000 records). A larger one counts as unknown.
MAX_BELIEVED_TOTAL = 10**8
#: The largest ``last_page`` believed, for the same reason.
MAX_BELIEVED_PAGES = 10**7
#: The contradictions kept to say what went wrong; the others are counted.
MAX_DOUBTS = 3


def believed(value: t.Any, limit: int = MAX_BELIEVED_TOTAL) -> int | None:
    """A count from a server, when it can be true: an integer from 0 to ``limit``."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= limit:
        return value
    return None


def budget(expected_pages: int) -> int:
    """Requests one pass may spend: the announced pages, plus room for drift re-reads.

    Re-reading after deletions costs at most one page per deletion seen; the worst
    case measured (3 deletions before every page) took 2.7 times the pages.
    """
    return 3 * expected_pages + 10


def known_budget(last_pass_pages: int | None) -> int | None:
    """Pages to allow a list that announces none, from its last complete pass: generous,
    since a list may grow between passes (an import), but bounded."""
    if not last_pass_pages:
        return None
    return max(10 * last_pass_pages, last_pass_pages + 100)


class Paginator:
    """A list read page by page by the rules of its shape, and the doubts its answers
    left: the base of each shape's paginator (PageNumbers, Cursor, WholeList).

    It keeps its own next request, count and end rather than the SDK's: asking for
    the same page again, to see whether a contradiction stands, is part of its
    rules, where the SDK's ``advance`` takes a repeated token for a loop. The shape
    is the first answer's to say: ``paginator_for`` asks after every answer which
    paginator reads on (this one, the one the first answer calls for, or the one
    this one's rules hand over to).
    """

    name: t.ClassVar[str]
    #: Pages read a second time to stay safe from paging drift.
    drift_rereads: int = 0
    #: List positions read again on purpose (a page asked twice, a step back after
    #: deletions): the records there may be ids the pass read already (list_pass.py).
    reread_positions: int = 0
    #: The last page held the records of the one before (a probe of a whole list).
    repeated_page: bool = False

    def __init__(
        self,
        *,
        page_size: int = 100,
        probe_whole_list: bool = False,
        known_pages: int | None = None,
        unannounced_pages: int | None = None,
        resumed: bool = False,
    ) -> None:
        #: The page size the tap asks for (``per_page``).
        self.page_size = page_size
        #: Contradictions that stood after the page was asked for again (the first few),
        #: and how many stood in all.
        self.doubts: list[str] = []
        self.doubted = 0
        self._probe = probe_whole_list
        #: The pages of the last complete pass: a budget where the answers announce none.
        self._known_pages = known_pages
        #: Pages a run may read of a list that announces none and has no complete pass.
        self._unannounced_pages = unannounced_pages
        self._resumed = resumed
        self._requests = 0
        self._shape_restarts = 0
        self._next: Params | None = self._with_size(self.first())

    # -- the shape's rules (each shape's paginator has its own) ------------------------

    @classmethod
    def speaks(cls, page: Page) -> bool:
        """Whether a list whose first answer is ``page`` is read by this paginator."""
        raise NotImplementedError

    def first(self) -> Params:
        raise NotImplementedError

    def next(self, page: Page, requested: Params, path: str) -> Params | None:
        raise NotImplementedError

    def shape_position(self) -> dict[str, t.Any]:
        """The shape's part of the resume token."""
        raise NotImplementedError

    def records_covered(self) -> int | None:
        """The list positions read, when the shape tells them (page numbers)."""
        return None

    def verdict(self) -> str | None:
        """Why the pass is incomplete, or None; asked once the list has ended."""
        return self.doubt

    def only_total_over_counts(self) -> bool:
        """Whether every doubt of this run was the list ending before its ``total`` (or
        ``last_page``) said, with nothing read past that end: a total that over-counts,
        or a list cut short. Which of the two, the records themselves can tell
        (list_pass.py asks about those the pass did not see)."""
        return False

    def resized(self, page_size: int, requested: Params) -> Params:
        """Ask for ``page_size`` from now on; the parameters of the request to send again."""
        self.page_size = page_size
        return requested

    def after_answer(self, page: Page, path: str) -> Paginator:
        """The paginator to read on with after an answer that is not the first: this one,
        unless the shape's own rules hand over (a plain list that pages, WholeList)."""
        return self

    @classmethod
    def from_start(cls, **settings: t.Any) -> Paginator:
        """This shape's paginator for a list read from its first page."""
        return cls(**settings)

    def settings(self) -> dict[str, t.Any]:
        """What a paginator reading on from this one is made with."""
        return {
            "page_size": self.page_size,
            "probe_whole_list": self._probe,
            "known_pages": self._known_pages,
            "unannounced_pages": self._unannounced_pages,
        }

    def handed_to(self, other: Paginator) -> Paginator:
        """``other`` reads on from here, with what this one counted and doubted, and the
        request this one sent (the answer in hand is to it)."""
        other._next = self._next
        other.doubts, other.doubted = self.doubts, self.doubted
        other._requests, other._resumed = self._requests, self._resumed
        if self._resumed and type(other) is not type(self):
            # The endpoint changed its shape since the pass began: it is read from the
            # start, so the pass's count starts over too.
            other._shape_restarts = 1
        return other

    def note_doubt(self, what: str) -> None:
        """A contradiction stood: say so; the pass is incomplete. The first few are kept."""
        self.doubted += 1
        if len(self.doubts) < MAX_DOUBTS:
            self.doubts.append(what)
        logger.warning(
            "%s: this pass is incomplete, so it retires no row and keeps the bookmark", what
        )

    @property
    def doubt(self) -> str | None:
        """What first contradicted what, and how many more contradictions stood."""
        if not self.doubts:
            return None
        more = f" (and {self.doubted - 1} more)" if self.doubted > 1 else ""
        return self.doubts[0] + more

    @property
    def restarts(self) -> int:
        """How many times the pass started over from the first page."""
        return self._shape_restarts

    def describe_position(self) -> str:
        return "the first page"

    def pages(self) -> tuple[int, int | None]:
        return self._requests, None

    def expected_pages(self) -> int | None:
        return None

    def describe_trouble(self) -> str:
        return "the answers never ended"

    # -- the requests -----------------------------------------------------------------

    @property
    def current_value(self) -> Params:
        """The next request's parameters, ``per_page`` included."""
        assert self._next is not None, "no request follows the last page"
        return self._next

    @property
    def finished(self) -> bool:
        return self._next is None

    @property
    def count(self) -> int:
        return self._requests

    def resize(self, page_size: int) -> None:
        """Ask for ``page_size`` records a page from the next request on.

        The request not yet answered is asked again; by page number, it becomes the
        page holding the first record not yet read (page_size.py decides the size).
        """
        self._next = self._with_size(self.resized(page_size, self.current_value))

    def _with_size(self, params: Params) -> Params:
        return {**params, "per_page": self.page_size}

    def position(self) -> dict[str, t.Any]:
        return {"shape": self.name, **self.shape_position()}

    def advance(self, page: Page, path: str) -> None:
        """Decide the next request from the answer to the last (None: the list has ended)."""
        self._next = self._following(page, path)

    def _following(self, page: Page, path: str) -> Params | None:
        self._requests += 1
        # Judged before the list moves on: this page is not emitted, and the resume
        # point stays on it, so stopping here loses nothing.
        expected = self.expected_pages() or known_budget(self._known_pages)
        limit = self._unannounced_pages
        if expected is None and limit is not None and self._requests > limit:
            # A first pass over a list that never says how long it is (an endless cursor,
            # an absurd total): bounded per run; the next run goes on from here.
            msg = (
                f"{path} announces no believable length and no pass has completed it: "
                f"{limit} pages a run (max_unannounced_pages)"
            )
            raise PassBudgetSpent(msg)
        if expected is not None and self._requests > budget(expected):
            msg = (
                f"{path} kept announcing pages: stopped after {self._requests} requests, "
                f"{expected} pages expected ({self.describe_trouble()})"
            )
            raise APIError(msg)
        following = self.next(page, self.current_value, path)
        return None if following is None else self._with_size(following)


def open_list(
    position: t.Mapping[str, t.Any] | None,
    *,
    page_size: int = 100,
    probe_whole_list: bool = False,
    known_pages: int | None = None,
    unannounced_pages: int | None = None,
) -> Paginator:
    """The paginator a pass starts with, at its resume token (None: the first page);
    the first answer may hand over to another shape's (``paginator_for``)."""
    position = dict(position or {})
    shape = position.pop("shape", "page_numbers")
    settings: dict[str, t.Any] = {
        "page_size": page_size,
        "probe_whole_list": probe_whole_list,
        "known_pages": known_pages,
        "unannounced_pages": unannounced_pages,
        "resumed": bool(position),
    }
    if shape == "cursor" and position.get("cursor"):
        return Cursor(position, **settings)
    return PageNumbers(position, **settings)


class WholeList(Paginator):
    """A list that is not paged: the first answer holds every record.

    Unless it holds exactly a full page (the size asked, or a size servers cap pages
    at, such as 15, 100 or 500), or ``probe`` is set (a pass that may retire rows
    must be sure it saw the whole list): then page 2 is asked for once. The same
    records again (or none) mean it was the whole list; others mean pages of that
    size, read on by number.
    """

    name = "list"

    def __init__(self, **settings: t.Any) -> None:
        self._first_ids: tuple[t.Any, ...] | None = None
        self._first_id_set: frozenset[t.Any] = frozenset()
        self._first_size = 0
        super().__init__(**settings)

    def first(self) -> Params:
        return {"page": 1}

    @classmethod
    def speaks(cls, page: Page) -> bool:
        return page.shape == "list"

    def after_answer(self, page: Page, path: str) -> Paginator:
        """Page 2 asked for once: records other than the first page's mean pages of the
        first page's size, read on by number."""
        if self._requests != 1 or not page.size or _id_set(page) == self._first_id_set:
            # The same records (in whatever order): one list, not pages of it.
            return self
        logger.warning("%s pages without saying so: reading it page by page", path)
        paged = PageNumbers(
            {"next_page": 2, "per_page": self._first_size}, handed_over=True, **self.settings()
        )
        handed = self.handed_to(paged)
        handed._shape_restarts = self._shape_restarts
        return handed

    def next(self, page: Page, requested: Params, path: str) -> Params | None:
        ids = _fingerprint(page)
        if self._first_ids is None and int(requested.get("page") or 1) != 1:
            # A pass resumed past page 1 of what answers as a plain list: the list pages
            # without saying so, at an unknown size. It is read from its start (what was
            # read is emitted again: a duplicate, never a gap).
            logger.warning(
                "%s answered page %s with a plain list: reading it from the start",
                path,
                requested.get("page"),
            )
            self._shape_restarts = 1
            return {"page": 1}
        if self._first_ids is None:
            self._first_ids, self._first_size = ids, page.size
            self._first_id_set = _id_set(page)
            full = page.size == self.page_size or page.size in COMMON_PAGE_SIZES
            return {"page": 2} if page.size and (full or self._probe) else None
        # Page 2 held nothing, or the whole list again (after_answer hands over otherwise).
        self.repeated_page = bool(page.size)  # the whole list again: already emitted
        return None

    def shape_position(self) -> dict[str, t.Any]:
        return {}

    def records_covered(self) -> int | None:
        return self._first_size


class Cursor(Paginator):
    """``cursor=<next_cursor>`` until it is null: a snapshot-safe order, no drift.

    A pass resumed at a cursor whose first answer is empty starts over from the first
    page: a cursor kept since an earlier run may have expired, and a server answers
    an expired cursor with an empty end of the list (a real end behind a cursor holds
    at least one record).
    """

    name = "cursor"

    @classmethod
    def speaks(cls, page: Page) -> bool:
        return page.shape == "cursor"

    @classmethod
    def from_start(cls, **settings: t.Any) -> Paginator:
        return cls({}, **settings)

    def __init__(self, position: t.Mapping[str, t.Any], **settings: t.Any) -> None:
        self.cursor: str | None = position.get("cursor")
        #: The first answer is to the cursor an earlier run kept.
        self._at_kept_cursor = bool(self.cursor)
        self._seen: set[str] = set()
        self._too_long_said = False
        self._last_ids: tuple[t.Any, ...] | None = None
        self._reasked: str | None = None
        self._restarts = 0
        self._empty_doubts = 0
        super().__init__(**settings)

    @property
    def restarts(self) -> int:
        return self._restarts + self._shape_restarts

    def first(self) -> Params:
        return {"cursor": self.cursor} if self.cursor else {"page": 1}

    def next(self, page: Page, requested: Params, path: str) -> Params | None:
        resumed, self._at_kept_cursor = self._at_kept_cursor, False
        cursor = page.next_cursor
        if resumed and not page.size:
            # A cursor kept since an earlier run answered with nothing: it may have
            # expired (the end of the list holds at least one record behind a cursor).
            logger.warning(
                "%s answered the cursor this pass resumed at with an empty page: it may have "
                "expired, so the pass starts over from the first page",
                path,
            )
            self.cursor, self._last_ids = None, None
            self._restarts += 1
            return {"page": 1}
        ids = _fingerprint(page)
        reasked = self._reasked is not None and self._reasked == requested.get("cursor", "")
        self._reasked = None
        if reasked:
            self.reread_positions += page.size
        if (
            not reasked
            and ids
            and ids == self._last_ids
            and any(i not in (None, UNSET) for i in ids[1:])
        ):
            msg = f"{path} returned the same records for two cursors"
            raise APIError(msg)
        self._last_ids = ids
        says_more = bool(page.next_page_url) and page.next_page_url is not UNSET
        if (not page.size and (cursor or says_more)) or (not cursor and says_more):
            # An empty page that points further, or a next_page_url without its cursor.
            what = (
                f"{path} answered an empty page that points to more"
                if not page.size
                else f"{path} sent a next_page_url but no next_cursor"
            )
            if not reasked:
                self._reasked = str(requested.get("cursor", ""))
                logger.info("%s: asking for the page again", what)
                return dict(requested)
            self.note_doubt(what + " (twice)")
            if not page.size:
                self._empty_doubts += 1
                if self._empty_doubts > 1:
                    return None  # the second empty page that stands ends the pass
        if not cursor:
            return None
        cursor = str(cursor)
        if cursor in self._seen or cursor == requested.get("cursor"):
            msg = f"{path} returned the cursor {cursor[:40]!r} a second time"
            raise APIError(msg)
        self._seen.add(cursor)
        self.cursor = cursor
        return {"cursor": cursor}

    def shape_position(self) -> dict[str, t.Any]:
        """Where to resume: the cursor, unless it is too long to keep (STATE holds nothing
        a server sends without a bound) or holds a secret (a token echoed into it); then
        a resumed run reads the list from its start."""
        if self.cursor and holds_secret(self.cursor):
            if not self._too_long_said:
                self._too_long_said = True
                logger.warning(
                    "A cursor that holds a secret is not kept in STATE: a run resumed from "
                    "this point reads the list from its start"
                )
            return {}
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

    def describe_position(self) -> str:
        if not self.cursor:
            return "the first page"
        return "a cursor" if holds_secret(self.cursor) else f"cursor {self.cursor[:24]}..."


class PageNumbers(Paginator):
    """Page numbers, led by what the server actually returned, safe against paging drift.

    Whether there is a next page comes from ``next_page_url`` when the server sends
    one, else from ``current_page < last_page``, else from the page not being empty.
    The page size is the number of records a page that is not the last holds: what
    ``per_page`` says, unless the pages hold fewer (a server that clamps the size
    without saying so); then the count actually returned, said once.

    Evidence checked on every page, each contradiction asked for again once: an
    empty page or a list that ends while its own ``total`` (else ``last_page``) says
    records follow; a page that is not the last holding fewer records than the page
    size; a ``total`` that falls and stays fallen. One that stands is a doubt: the
    pass skips no position silently (it reads on past the page, incomplete).

    Paging by number is not a snapshot: when records are deleted, later records slide
    forward and one can slip past the page boundary unread. The paginator keeps
    ``covered``, the length of the prefix of the list known to be read. Each time
    ``total`` falls by d, ``covered`` falls by d too (the deletions may all have been
    before it), and the next page asked for is the one holding position ``covered``.
    Without drift that is simply the next page; with drift it steps back just far
    enough to read the records that slid, then jumps forward over pages it holds.

    Resume token: ``{"next_page": n, "total": t, "per_page": p}`` (total and per_page
    as last seen, so drift across runs is noticed too).
    """

    name = "page_numbers"

    @classmethod
    def speaks(cls, page: Page) -> bool:
        return True  # length-aware, simple and resource collections; and the fallback

    @classmethod
    def from_start(cls, **settings: t.Any) -> Paginator:
        return cls({}, **settings)

    def __init__(
        self, position: t.Mapping[str, t.Any], *, handed_over: bool = False, **settings: t.Any
    ) -> None:
        #: Reading on from a plain list that pages without saying so: ``position`` is
        #: where that one stands, in pages of the size the server serves.
        self._handed_over = handed_over
        self.next_page = int(position.get("next_page") or 1)
        self.total: int | None = believed(position.get("total"))
        self.per_page: int | None = position.get("per_page")
        #: Pages hold fewer records than per_page says: the count returned is the size.
        self._clamped_size = position.get("clamped") is True
        self.covered = (self.next_page - 1) * (self.per_page or 0)
        self.drift_rereads = 0
        self._ahead: tuple[int, int] | None = None  # a range read beyond ``covered``
        self._highest_page = self.next_page - 1
        self._last_ids: tuple[t.Any, ...] | None = None
        self._warned_no_total = False
        self._announced: int | None = None
        self._totals_fell = 0
        #: The page size was seen on a page of this run (not only remembered).
        self._sized = False
        #: The page asked for a second time, to see whether a contradiction stands.
        self._reasking: int | None = None
        #: The total before it fell, until a later answer shows it back (a flap) or the
        #: page past the end shows it true (kept in the resume token across runs).
        self._fell_from: int | None = believed(position.get("fell_from"))
        #: The page asked for past the end, after the total fell.
        self._end_probe: int | None = None
        #: Empty pages whose contradiction stood: the first is read past, the second ends.
        self._empty_doubts = 0
        #: Doubts that the list ended before its total said, and whether records came
        #: after one (then it was a hole, not an end).
        self._end_doubts = 0
        self._end_doubt_page: int | None = None
        self._read_past_an_end_doubt = False
        #: The end of the positions read so far (a resumed pass: those read before).
        self._read_to = self.covered
        super().__init__(**settings)

    def first(self) -> Params:
        if (
            self.covered
            and self.per_page
            and self.per_page != self.page_size
            and not (self._handed_over)
        ):
            # The last run paged by another size: its page numbers mean other records.
            self._aim_at_covered()
        return {"page": self.next_page}

    def resized(self, page_size: int, requested: Params) -> Params:
        self.page_size = page_size
        self._aim_at_covered()
        return {"page": self.next_page}

    def _aim_at_covered(self) -> None:
        """Ask next for the page (at the size asked) that holds the first record not read."""
        self.next_page = self.covered // self.page_size + 1
        self._highest_page = self.next_page - 1
        self.per_page = None  # the next answer says what the server uses now
        self._sized = self._clamped_size = False

    def shape_position(self) -> dict[str, t.Any]:
        # What the server said is kept only as a number of sane size.
        kept = {
            "next_page": self.next_page,
            "total": _kept(self.total),
            "per_page": _kept(self.per_page),
        }
        if self._fell_from is not None:
            kept["fell_from"] = self._fell_from
        return {**kept, "clamped": True} if self._clamped_size else kept

    def describe_position(self) -> str:
        return f"page {self.next_page}"

    def records_covered(self) -> int | None:
        return self.covered

    def pages(self) -> tuple[int, int | None]:
        size = self.per_page
        if not size:
            return self._requests, None
        all_pages = None if self.total is None else -(-self.total // size)
        return -(-self.covered // size), all_pages

    def expected_pages(self) -> int | None:
        return self._announced

    def describe_trouble(self) -> str:
        if self._totals_fell:
            return f"its total fell {self._totals_fell} times, each a re-read"
        return "it announced more pages than it holds"

    def verdict(self) -> str | None:
        if self._fell_from is not None:
            # Never confirmed by the page past the end (the pass ended otherwise).
            fell_from, self._fell_from = self._fell_from, None
            self.note_doubt(f"the total fell from {fell_from} to {self.total} during the pass")
        return super().verdict()

    def only_total_over_counts(self) -> bool:
        return (
            self.doubted > 0
            and self.doubted == self._end_doubts
            and not self._read_past_an_end_doubt
        )

    def _past_the_end(self, page: Page, number: int, path: str) -> None:
        """The answer to the page asked for past the end, after the total fell: empty, the
        fall was deletions; records, the fallen total cut the list short."""
        self._end_probe = None
        if not page.records or _fingerprint(page) == self._last_ids:
            # Nothing past the end (or the last page again, as some servers answer).
            self._fell_from = None
            return
        fell_from, self._fell_from = self._fell_from, None
        self.note_doubt(
            f"{path} page {number}, past the end that a total fallen from {fell_from} to "
            f"{self.total} set, holds {len(page.records)} records"
        )

    def next(self, page: Page, requested: Params, path: str) -> Params | None:
        number = int(requested.get("page") or 1)
        if self._end_probe == number:
            self._past_the_end(page, number, path)
            return None
        reasked, self._reasking = self._reasking == number, None
        if not reasked:
            self._check_not_repeated(page, number, path)
        self._last_ids = _fingerprint(page)
        data = page.records
        claimed = believed(page.per_page)
        said = _keys_say_more(page, number)
        more = bool(data) if said is None else said
        self._account_for_deletions(page)
        if self._clamped_size:
            pass  # the count served, not what per_page claims, is the size
        elif claimed:
            self.per_page = claimed
        elif data:
            self.per_page = max(self.per_page or 0, len(data))
            if more and not self._sized and _worth_checking(self.per_page, self.page_size):
                # No per_page said, fewer records than asked, more to come: a guess that
                # the server serves this many. Asked for from now on, so the positions
                # are the server's own; a page still short at it is a contradiction.
                self.page_size = self.per_page
        size = self.per_page or len(data) or 1
        start = (number - 1) * size
        # Positions this page shares with those read before: records read on purpose
        # again (a page asked twice, a step back after deletions).
        self.reread_positions += max(0, min(start + len(data), self._read_to) - start)
        self._read_to = max(self._read_to, start + len(data))

        if self._clamped_size and len(data) > size:
            # The clamp was a guess that this answer refutes: positions are unknown.
            self.note_doubt(
                f"{path} page {number}: {len(data)} records, more than the page size {size}"
            )
            return None
        problem = self._contradiction(page, number, start, size, keys_say_more=said)
        if problem and not reasked:
            logger.info("%s page %d: %s; asking for it again", path, number, problem)
            self._reasking = number
            return {"page": number}
        skip = False
        if problem and said is True and data and number == 1 and not self._sized:
            # Page 1 short twice, with more to come: the server clamps pages without
            # saying so, and the count it returns is the page size.
            size = self._clamped(len(data), claimed, path)
        elif problem:
            self.note_doubt(f"{path} page {number}: {problem} (asked twice)")
            if not data or said is False:  # the list ends here, though its total goes on
                self._end_doubts += 1
                self._end_doubt_page = min(self._end_doubt_page or number, number)
            # Read on past a short page, and past the first empty one that stands; the
            # second ends the pass (a total that over-counts would otherwise be read
            # empty page by empty page).
            if not data:
                self._empty_doubts += 1
            skip = (
                more
                if data
                else self._empty_doubts == 1 and self._more_expected(page, number, start)
            )
        if data and more:
            self._sized = True
        if data and self._end_doubt_page is not None and number > self._end_doubt_page:
            self._read_past_an_end_doubt = True
        is_last = not skip and (not data or not more)
        self._note_announced(page, size)

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
            if self._fell_from is not None and not data and not problem:
                self._fell_from = None  # an empty page at the end: the fall was deletions
            if self._fell_from is not None and data and not problem:
                # The total fell during the pass: the page past the end tells deletions
                # (it is empty) from a total that cuts the list short (it is not).
                self._end_probe = number + 1
                return {"page": number + 1}
            return None  # read to the end without a gap (a range read ahead is past it)
        # Past a page whose contradiction stood, never back to it (the pass is doubted).
        self.next_page = max(self.covered // size + 1, number + 1 if skip else 1)
        if self.next_page <= self._highest_page:
            self.drift_rereads += 1
        return {"page": self.next_page}

    def _contradiction(
        self, page: Page, number: int, start: int, size: int, *, keys_say_more: bool | None
    ) -> str | None:
        """What in this answer contradicts itself or the answers before, if anything
        (``keys_say_more`` None: the answer has no paging keys to say so)."""
        data = page.records
        total = believed(page.total)
        if not data:
            if self._more_expected(page, number, start):
                return "an empty page, though the answer says more records follow"
            return None
        end = start + len(data)
        if keys_say_more is True and len(data) < size and (total is None or total > end):
            return f"{len(data)} records, though pages hold {size} and more follow"
        if keys_say_more is False and total is not None and total > end:
            return f"the list ends at record {end}, though its total is {total}"
        return None

    def _more_expected(self, page: Page, number: int, start: int) -> bool:
        """Whether the answer's own total (else its last_page) says records lie past ``start``.

        A ``next_page_url`` alone is not enough: servers send one with the empty page
        past the end.
        """
        total = believed(page.total)
        if total is not None:
            return total > start
        last_page = believed(page.last_page, MAX_BELIEVED_PAGES)
        return last_page is not None and last_page > number

    def _clamped(self, count: int, claimed: int | None, path: str) -> int:
        if not self._clamped_size:
            self._clamped_size = True
            logger.warning(
                "%s: pages hold %d records where per_page says %s: %d is the page size",
                path,
                count,
                claimed if claimed is not None else "more",
                count,
            )
        self.per_page = count
        if _worth_checking(count, self.page_size):
            # A guess, checked: the size is asked for from now on, so the positions are
            # the server's own; a page still short at it is a contradiction like any other.
            self.page_size = count
        return count

    def _note_announced(self, page: Page, size: int) -> None:
        """The pages the list holds by the answers' own account (``total``, else ``last_page``)."""
        announced = None
        if isinstance(self.total, int):
            announced = -(-self.total // size)
        else:
            last_page = believed(page.last_page, MAX_BELIEVED_PAGES)
            announced = last_page or None
        if announced is not None:
            self._announced = max(self._announced or 0, announced, 1)

    def _account_for_deletions(self, page: Page) -> None:
        total = believed(page.total)
        if total is None:
            if not self._warned_no_total:
                said = "an unbelievable" if page.total not in (None, UNSET) else "no usable"
                logger.warning(
                    "The API sends %s 'total': paging drift cannot be detected and the "
                    "number of pages is unknown",
                    said,
                )
                self._warned_no_total = True
            return
        previous, self.total = self.total, total
        if self._fell_from is not None and total >= self._fell_from:
            self._fell_from = None  # back where it was: a flap, not a loss
        if previous is None or total >= previous:
            return
        deleted = previous - total
        self._totals_fell += 1
        if self._fell_from is None:
            self._fell_from = previous
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


def _keys_say_more(page: Page, requested: int) -> bool | None:
    """Whether the paging keys say a next page exists: ``next_page_url`` when sent, else
    ``current_page < last_page``; None when the answer has neither."""
    if page.next_page_url is not UNSET:
        return bool(page.next_page_url)
    current = requested if page.current_page is None else page.current_page
    if isinstance(page.last_page, int) and isinstance(current, int):
        return current < page.last_page
    return None


def _record_id(record: t.Any) -> t.Any:
    return record.get("id") if isinstance(record, dict) else getattr(record, "id", None)


def _worth_checking(guess: int, asked: int) -> bool:
    """Whether a page size guessed from a page's count is asked for, to check it: a size
    servers commonly cap at (Laravel's 15, 100, 500...) is taken as it is, and so is one
    far below the size asked (asking it would multiply the requests); one just below the
    size asked (999 of 1,000) may be a server that pages by the size asked and serves one
    record fewer, losing one a page."""
    return guess < asked and guess not in COMMON_PAGE_SIZES and guess * 2 > asked


def _id_set(page: Page) -> frozenset[t.Any]:
    """The page's ids, whatever their order (unhashable ids as their text)."""
    ids = (_record_id(record) for record in page.records)
    return frozenset(i if isinstance(i, int | str) or i is None else repr(i) for i in ids)


def _fingerprint(page: Page) -> tuple[t.Any, ...]:
    """Enough of a page to tell it from the next: its size and its first and last ids.

    A server that ignores the page or cursor asked for sends the same records again;
    two different pages with the same first and last ids and size do not happen.
    """
    records = page.records
    if not records:
        return ()
    return (len(records), _record_id(records[0]), _record_id(records[-1]))


#: The shapes' paginators, tried in order on a list's first answer: the first that
#: speaks the answer's shape reads the list (PageNumbers speaks any paged answer).
PAGINATORS: tuple[type[Paginator], ...] = (Cursor, WholeList, PageNumbers)


def paginator_for(page: Page, current: Paginator, path: str = "the list") -> Paginator:
    """The paginator to read on with after an answer (to ``path``) that ``current``
    asked for: on the list's first answer, the paginator of the shape the answer
    speaks; after that, ``current`` or the one its shape's rules hand over to."""
    if current.count:
        return current.after_answer(page, path)
    wanted = next(kind for kind in PAGINATORS if kind.speaks(page))
    if isinstance(current, wanted):
        return current
    if isinstance(current, Cursor):
        # Resumed at a cursor, but the endpoint no longer pages by cursor: it ignored
        # ours and answered from the start, so read it as that shape from there.
        logger.warning("The endpoint no longer pages by cursor: reading it from the start")
    return current.handed_to(wanted.from_start(**current.settings()))
