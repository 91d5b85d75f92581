"""Step 4 of the data path, paging: which request comes next, and where to resume.

``Paginator`` is the contract the request loop (client.py) relies on. The loop
asks ``current_value`` for the next request's query parameters (``per_page``
included), sends the request and hands the answer to ``advance``, which decides
the next request (or ``finished``); only after the page's records are written does
the loop store ``position()`` in STATE, to resume at that next request. The
position is a small JSON object that only the paginator reads (state.py keeps it
opaque).

``ListPaginator`` is the one the streams use: the first answer tells which list
shape the endpoint speaks (pages.py), and it pages by that shape's rules, its
*scheme* (schemes.py): page numbers (drift-safe), a cursor, or a plain list.

Paging always ends, and ends cheaply: an empty page ends a stream (once asked
twice, when its answer says more records follow: schemes.py); a pass may not
spend more than ``budget(expected)`` requests, where ``expected`` is the number of
pages the answers announce, else the pages of the last complete pass; a cursor or
page seen twice is an error. A server that breaks these rules stops the stream
with an error naming the endpoint.
"""

from __future__ import annotations

import abc
import typing as t

import requests
from singer_sdk.pagination import BaseAPIPaginator

from tap_mokapen.errors import APIError, url_path
from tap_mokapen.schemes import Cursor, PageNumbers, Params, Scheme

if t.TYPE_CHECKING:
    from tap_mokapen.pages import Page


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


class Paginator(BaseAPIPaginator[Params], abc.ABC):
    """What the request loop needs of any paging scheme."""

    @property
    def drift_rereads(self) -> int:
        """Pages read a second time to stay safe from paging drift."""
        return 0

    @property
    def repeated_page(self) -> bool:
        """The page just advanced past held the records before it again: emit none of it."""
        return False

    @property
    def doubt(self) -> str | None:
        """The first contradiction between answers that stood so far, or None."""
        return None

    @property
    def restarts(self) -> int:
        """How many times the pass started over from the first page."""
        return 0

    def records_covered(self) -> int | None:
        """The list positions read, when the shape tells them (page numbers)."""
        return None

    def verdict(self) -> str | None:
        """Why the pass is incomplete, or None; asked once the list has ended."""
        return self.doubt

    @abc.abstractmethod
    def position(self) -> dict[str, t.Any]:
        """The resume token for STATE: where the next request starts. JSON-able."""

    @abc.abstractmethod
    def describe_position(self) -> str:
        """The next request in words, for log lines: "page 3"."""

    @abc.abstractmethod
    def pages(self) -> tuple[int, int | None]:
        """Pages surely read so far, and the number of pages in all when known."""

    @abc.abstractmethod
    def resize(self, page_size: int) -> None:
        """Ask for ``page_size`` records a page from the next request on."""


class ListPaginator(Paginator):
    """Pages by the rules of whichever list shape the endpoint answers with.

    It keeps its own next request, count and end rather than the SDK's: asking for
    the same page again, to see whether a contradiction stands, is part of its
    rules, where the SDK's ``advance`` takes a repeated token for a loop.
    """

    def __init__(
        self,
        position: t.Mapping[str, t.Any] | None,
        *,
        read_page: t.Callable[[requests.Response], Page],
        page_size: int = 100,
        probe_whole_list: bool = False,
        known_pages: int | None = None,
    ) -> None:
        position = dict(position or {})
        shape = position.pop("shape", "page_numbers")
        self.scheme: Scheme = (
            Cursor(position)
            if shape == "cursor" and position.get("cursor")
            else PageNumbers(position)
        )
        self.scheme.page_size = page_size
        self._next: Params | None = self._with_size(self.scheme.first())
        super().__init__(start_value=self._next)
        self._read_page = read_page
        self._probe = probe_whole_list
        #: The pages of the last complete pass: a budget where the answers announce none.
        self._known_pages = known_pages
        self._requests = 0
        self._resumed = bool(position)
        self._shape_restarts = 0

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

    @property
    def page_size(self) -> int:
        return self.scheme.page_size

    def resize(self, page_size: int) -> None:
        """Ask for ``page_size`` records a page from the next request on.

        The request not yet answered is asked again; by page number, it becomes the
        page holding the first record not yet read (page_size.py decides the size).
        """
        self._next = self._with_size(self.scheme.resize(page_size, self.current_value))

    def _with_size(self, params: Params) -> Params:
        return {**params, "per_page": self.scheme.page_size}

    @property
    def drift_rereads(self) -> int:
        return self.scheme.drift_rereads

    @property
    def repeated_page(self) -> bool:
        return self.scheme.repeated_page

    def verdict(self) -> str | None:
        """Why the pass is incomplete (schemes.py), or None; asked once the list has ended."""
        return self.scheme.verdict()

    @property
    def doubt(self) -> str | None:
        """The first contradiction that stood so far (while the list is being read)."""
        return self.scheme.first_doubt

    @property
    def restarts(self) -> int:
        return self.scheme.restarts + self._shape_restarts

    def records_covered(self) -> int | None:
        return self.scheme.records_covered()

    def position(self) -> dict[str, t.Any]:
        return {"shape": self.scheme.name, **self.scheme.position()}

    def describe_position(self) -> str:
        return self.scheme.describe()

    def pages(self) -> tuple[int, int | None]:
        return self.scheme.pages(self.count)

    def advance(self, response: requests.Response) -> None:
        """Decide the next request from this answer (None: the list has ended)."""
        self._next = self.get_next(response)

    def get_next(self, response: requests.Response) -> Params | None:
        page = self._read_page(response)
        path = url_path(response.url)
        if self._requests == 0:
            before = self.scheme
            self.scheme = self.scheme.for_shape(page, probe=self._probe)
            if self._resumed and type(self.scheme) is not type(before):
                # The endpoint changed its shape since the pass began: it is read from the
                # start, so the pass's count starts over too.
                self._shape_restarts = 1
        self._requests += 1
        # Judged before the scheme moves on: this page is not emitted, and the resume
        # point stays on it, so stopping here loses nothing.
        expected = self.scheme.expected_pages() or known_budget(self._known_pages)
        if expected is not None and self._requests > budget(expected):
            msg = (
                f"{path} kept announcing pages: stopped after {self._requests} requests, "
                f"{expected} pages expected ({self.scheme.describe_trouble()})"
            )
            raise APIError(msg)
        following = self.scheme.next(page, self.current_value, path)
        return None if following is None else self._with_size(following)
