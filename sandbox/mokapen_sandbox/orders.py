"""Lists that lose records while every count stays consistent: an order that changes
between requests, and a list cut short whose total is cut too.

Each is a ``Source`` (shapes.py) over an organization's dataset, so every list shape
serves it. The records themselves are all still there: the show route
(``GET /api/v1/{org}/<entity>/{id}``) answers for each of them.
"""

from __future__ import annotations

import math
import random
import typing as t

from mokapen_sandbox.data import Window

if t.TYPE_CHECKING:
    from mokapen_sandbox.shapes import Row, Source


class Reordered:
    """The list in another order on each request: ``all`` shuffled (a query without
    ORDER BY on a table being updated), or ``block``, its middle half (records sharing
    one sort key, such as a bulk import's ``updated_at``). Cursor pages, keyed by id,
    are not affected."""

    def __init__(self, source: Source, mode: str, request_number: int) -> None:
        self._source = source
        self._mode = mode
        self._seed = request_number

    def _rows(self) -> list[Row]:
        rows = self._source.all_records()
        shuffle = random.Random(self._seed).shuffle  # noqa: S311 - test data, not secrets
        if self._mode == "all":
            shuffle(rows)
        else:
            start, end = len(rows) // 4, 3 * len(rows) // 4
            block = rows[start:end]
            shuffle(block)
            rows[start:end] = block
        return rows

    def page(self, offset: int, limit: int) -> tuple[list[Row], int]:
        rows = self._rows()
        return rows[offset : offset + limit], len(rows)

    def select(self, window: Window) -> tuple[list[Row], bool]:
        return self._source.select(window)

    def all_records(self) -> list[Row]:
        return self._rows()


class Cut:
    """Only the first ``share`` of the list, as if that were all of it: its total, its
    last page and its cursor all end there (an offset cap that never contradicts
    itself)."""

    def __init__(self, source: Source, share: float) -> None:
        self._source = source
        self._share = share

    def _rows(self) -> list[Row]:
        rows = self._source.all_records()
        return rows[: math.floor(len(rows) * self._share)]

    def page(self, offset: int, limit: int) -> tuple[list[Row], int]:
        rows = self._rows()
        return rows[offset : offset + limit], len(rows)

    def select(self, window: Window) -> tuple[list[Row], bool]:
        rows = self._rows()
        start, end, more = window([row["id"] for row in rows])
        return rows[start:end], more

    def all_records(self) -> list[Row]:
        return self._rows()
