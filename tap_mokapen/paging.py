"""Step 4 of the data path, paging: which request comes next, and where to resume.

``Paginator`` is the contract the request loop (client.py) relies on; each list
shape Mokapen may answer with is one implementation. Today there is one, the
Laravel length-aware paginator, which pages by number and is drift-safe.

The loop asks ``current_value`` for the next request's query parameters, sends
the request and hands the answer to ``advance``, which decides the next request
(or ``finished``); only after the page's records are written does it store
``position()`` in STATE, to resume at that next request. The position is a
small JSON object that only the paginator reads (state.py keeps it opaque), so a
new shape brings its own resume token without a change of format.
"""

from __future__ import annotations

import abc
import logging
import typing as t
from urllib.parse import urlsplit

import requests
from singer_sdk.pagination import BaseAPIPaginator

from tap_mokapen.errors import APIError
from tap_mokapen.records import UNSET

if t.TYPE_CHECKING:
    from tap_mokapen.pages import Page

logger = logging.getLogger("tap-mokapen")

Params = dict[str, t.Any]


class Paginator(BaseAPIPaginator[Params], abc.ABC):
    """What the request loop needs of any paging scheme.

    ``current_value`` holds the query parameters of the next request (besides
    ``per_page``); ``advance(response)`` takes the answer to it and decides the
    next request or ``finished``. ``advance`` must not write anything: the loop
    checkpoints ``position()`` once the page's records are out.
    """

    #: Pages read a second time to stay safe from paging drift.
    drift_rereads: int = 0

    @abc.abstractmethod
    def position(self) -> dict[str, t.Any]:
        """The resume token for STATE: where the next request starts. JSON-able."""

    @abc.abstractmethod
    def describe_position(self) -> str:
        """The next request in words, for log lines: "page 3"."""

    @abc.abstractmethod
    def pages(self) -> tuple[int, int | None]:
        """Pages surely read so far, and the number of pages in all when known."""


class LaravelPaginator(Paginator):
    """Page numbers, led by what the server actually returned, safe against paging drift.

    Whether there is a next page comes from ``next_page_url`` when the server sends
    one, else from ``current_page < last_page``, else from the page not being empty.
    The page size is whatever the server used (``per_page`` may be ignored).

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

    def __init__(
        self,
        position: t.Mapping[str, t.Any] | None,
        *,
        read_page: t.Callable[[requests.Response], Page],
    ) -> None:
        position = position or {}
        start_page = position.get("next_page") or 1
        super().__init__(start_value={"page": start_page})
        self._read_page = read_page
        self.total: int | None = position.get("total")
        self.per_page: int | None = position.get("per_page")
        self.covered = (start_page - 1) * (self.per_page or 0)
        self._ahead: tuple[int, int] | None = None  # a range read beyond ``covered``
        self._highest_page = start_page - 1
        self._last_ids: tuple[t.Any, ...] | None = None
        self._warned_no_total = False

    @property
    def next_page(self) -> int:
        return int(self.current_value["page"])

    def position(self) -> dict[str, t.Any]:
        return {"next_page": self.next_page, "total": self.total, "per_page": self.per_page}

    def describe_position(self) -> str:
        return f"page {self.next_page}"

    def pages(self) -> tuple[int, int | None]:
        size = self.per_page
        if not size:
            return self.count, None
        all_pages = None if self.total is None else -(-self.total // size)
        return -(-self.covered // size), all_pages

    def continue_if_empty(self, response: requests.Response) -> bool:
        # An empty page may only mean that deletions moved the end: get_next decides.
        return True

    def get_next(self, response: requests.Response) -> Params | None:
        body = self._read_page(response)
        requested = self.next_page
        self._check_not_repeated(body, requested, response)
        data = body.data
        if isinstance(body.per_page, int) and body.per_page > 0:
            self.per_page = body.per_page
        elif data:
            self.per_page = max(self.per_page or 0, len(data))
        size = self.per_page or len(data) or 1
        is_last = not self._has_next(body, requested)
        self._account_for_deletions(body)

        start = (requested - 1) * size
        end = start + (len(data) if is_last else size)
        if start <= self.covered:
            self.covered = max(self.covered, end)
            if self._ahead and self._ahead[0] <= self.covered:
                self.covered = max(self.covered, self._ahead[1])
                self._ahead = None
        else:
            self._ahead = (start, end)
        self._highest_page = max(self._highest_page, requested)

        if is_last and start <= self.covered:
            return None  # read to the end without a gap (a range read ahead is past it)
        next_page = self.covered // size + 1
        if next_page <= self._highest_page:
            self.drift_rereads += 1
        return {"page": next_page}

    @staticmethod
    def _has_next(body: Page, requested: int) -> bool:
        if body.next_page_url is not UNSET:
            return bool(body.next_page_url)
        current = requested if body.current_page is None else body.current_page
        if isinstance(body.last_page, int) and isinstance(current, int):
            return current < body.last_page
        return bool(body.data)

    def _account_for_deletions(self, body: Page) -> None:
        total = body.total
        if not isinstance(total, int):
            if not self._warned_no_total:
                logger.warning("The API sends no 'total': paging drift cannot be detected")
                self._warned_no_total = True
            return
        previous, self.total = self.total, total
        if previous is None or total >= previous:
            return
        deleted = previous - total
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

    def _check_not_repeated(self, body: Page, requested: int, response: requests.Response) -> None:
        """A server that ignores ``page`` would otherwise be read forever."""
        current = body.current_page
        path = urlsplit(response.url).path
        if isinstance(current, int) and current != requested:
            msg = f"{path} returned page {current} when page {requested} was asked for"
            raise APIError(msg)
        ids = tuple(getattr(record, "id", None) for record in body.data)
        if ids and ids == self._last_ids and any(i is not None and i is not UNSET for i in ids):
            msg = f"{path} returned the same records for page {requested} as for the page before"
            raise APIError(msg)
        self._last_ids = ids
