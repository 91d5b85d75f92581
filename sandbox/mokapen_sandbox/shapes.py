"""The list bodies a Laravel service may answer, and paginators that misbehave.

docs/mokapen-api.md (part 2) guesses that Mokapen pages with Laravel's length-aware
paginator, but a real endpoint may use any of Laravel's other list shapes. Each shape
here is built from a ``Source`` (one organization's dataset, or the organizations list)
and one request's paging parameters, so the tap's tests can meet every one of them.
Which records a request gets and what the body says about the rest are decided here;
turning records into JSON (timestamps, extra fields, breakage) is the caller's
``render``.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import dataclasses
import json
import math
import re
import typing as t

from mokapen_sandbox.data import Window
from mokapen_sandbox.replies import Reply, json_reply

if t.TYPE_CHECKING:
    from mokapen_sandbox.settings import SandboxSettings

Row = dict[str, t.Any]
Render = t.Callable[[list[Row]], list[Row]]

LIST_SHAPES = ("length_aware", "simple", "cursor", "resource", "data_list", "array", "paged_array")
# Shapes that answer every request with the whole list, whatever page is asked.
UNPAGED_SHAPES = frozenset({"data_list", "array"})
PAGINATOR_FAULTS = (
    "next_page_url_never_null",
    "huge_last_page",
    "endless_empty_pages",
    "total_flapping",
)
LARAVEL_DEFAULT_PAGE = 15
HUGE_LAST_PAGE = 1_000_000_000
# How far total_flapping's false total drops: as if 50 records had been deleted.
FLAP_DROP = 50

_CURSOR_TEXT = re.compile(r"^[A-Za-z0-9_-]+$")


class Source(t.Protocol):
    """Records in the order the API pages them, their ids ascending in that order."""

    def page(self, offset: int, limit: int) -> tuple[list[Row], int]: ...

    def select(self, window: Window) -> tuple[list[Row], bool]: ...

    def all_records(self) -> list[Row]: ...


class RowList:
    """A ``Source`` over rows held in memory (the organizations list), sorted by id; rows
    without an integer id (the ``listed_oddities`` switch) come last, as given."""

    def __init__(self, rows: list[Row]) -> None:
        self._rows = sorted(rows, key=_row_order)

    def page(self, offset: int, limit: int) -> tuple[list[Row], int]:
        return self._rows[offset : offset + limit], len(self._rows)

    def select(self, window: Window) -> tuple[list[Row], bool]:
        start, end, more = window([_row_order(row) for row in self._rows])
        return self._rows[start:end], more

    def all_records(self) -> list[Row]:
        return list(self._rows)


def _row_order(row: t.Any) -> int:
    found = row.get("id") if isinstance(row, dict) else None
    return found if isinstance(found, int) and not isinstance(found, bool) else 2**80


def cursor_window(cursor: Cursor | None, limit: int) -> Window:
    """The positions of a cursor page: up to ``limit`` ids after the cursor's id (no
    cursor: from the start), or before it for a previous-items cursor, and whether more
    lie beyond them. Keyed by id, not position: a deleted record shifts no cursor page.
    """

    def window(ids: list[int]) -> tuple[int, int, bool]:
        if cursor is None or cursor.forward:
            start = 0 if cursor is None else bisect.bisect_right(ids, cursor.record_id)
            return start, start + limit, start + limit < len(ids)
        end = bisect.bisect_left(ids, cursor.record_id)
        start = max(0, end - limit)
        return start, end, start > 0

    return window


class CursorError(ValueError):
    """A ``cursor`` parameter the sandbox never issued."""


@dataclasses.dataclass(frozen=True)
class Cursor:
    """Laravel's cursor: the id it points from, and which way (next or previous items)."""

    record_id: int
    forward: bool = True

    def encode(self, padding: int = 0) -> str:
        # As Laravel does: base64url (no padding) of a small JSON object; ``padding``
        # characters of filler make it as long as a hostile server's.
        fields: dict[str, t.Any] = {"id": self.record_id, "_pointsToNextItems": self.forward}
        if padding:
            fields["pad"] = "x" * padding
        payload = json.dumps(fields, separators=(",", ":"))
        return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        # The alphabet first: b64decode would silently skip characters outside it.
        if not _CURSOR_TEXT.match(text):
            raise CursorError(text)
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            payload = json.loads(raw)
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise CursorError(text) from exc
        if not isinstance(payload, dict):
            raise CursorError(text)
        record_id, forward = payload.get("id"), payload.get("_pointsToNextItems")
        # bool is an int subclass: {"id": true} is as much garbage as {"id": "x"}.
        if type(record_id) is not int or not isinstance(forward, bool):
            raise CursorError(text)
        return cls(record_id, forward)


def cursor_error_body() -> dict[str, t.Any]:
    """What a Laravel validation failure on ``cursor`` looks like (served as a 400)."""
    message = "The cursor field is invalid."
    return {"message": message, "errors": {"cursor": [message]}}


@dataclasses.dataclass(frozen=True)
class ListRequest:
    """One list request's paging, after the sandbox's switches have had their say."""

    url: str  # the endpoint's absolute URL, without query
    page: int
    per_page: int
    cursor: Cursor | None = None
    # A paginator fault, for length_aware bodies of organization-scoped entities only.
    fault: str | None = None
    # This request's number among the dataset's list requests (total_flapping's beat).
    request_number: int = 1
    omit_next_page_url: bool = False
    omit_last_page: bool = False
    cursor_growth: int = 0


def list_request(
    shape: str,
    url: str,
    params: dict[str, str],
    settings: SandboxSettings,
    *,
    fault: str | None = None,
    number: int = 1,
) -> ListRequest:
    """One list request's paging under the switches; a bad cursor raises CursorError.

    repeat_first_page, ignore_per_page and max_per_page act on every paged shape; the
    cursor shape ignores ``page``, the unpaged shapes ``page`` and ``per_page``.
    """
    paged_by_number = shape not in UNPAGED_SHAPES and shape != "cursor"
    page = 1
    if paged_by_number and not settings.repeat_first_page:
        page = max(1, int(params.get("page") or 1))
    per_page = LARAVEL_DEFAULT_PAGE
    if shape not in UNPAGED_SHAPES and not settings.ignore_per_page and params.get("per_page"):
        per_page = min(max(1, int(params["per_page"])), settings.max_per_page)
    cursor = None
    if shape == "cursor" and params.get("cursor") and not settings.repeat_first_page:
        cursor = Cursor.decode(params["cursor"])
    return ListRequest(
        url=url,
        page=page,
        per_page=per_page,
        cursor=cursor,
        fault=fault,
        request_number=number,
        omit_next_page_url=settings.omit_next_page_url,
        omit_last_page=settings.omit_last_page,
        cursor_growth=settings.cursor_growth,
    )


def oversized_page(params: dict[str, str], settings: SandboxSettings) -> Reply | None:
    """How the server treats a ``per_page`` above ``max_per_page``, unless it clamps it.

    None: no such request, or clamped in list_request. A 200 reply carries only the
    delay of a slow answer; any other reply is the answer.
    """
    try:
        asked = int(params.get("per_page") or 0)
    except ValueError:
        asked = 0
    limit = settings.max_per_page
    behaviour = settings.above_max_per_page
    if asked <= limit or behaviour == "clamp" or settings.ignore_per_page:
        return None
    if behaviour in ("refuse", "refuse_vaguely"):
        # Laravel's validation answer for a rule like 'per_page' => 'integer|max:100'.
        message = (
            f"The per page field must not be greater than {limit}."
            if behaviour == "refuse"
            else "The per page field is invalid."
        )
        return json_reply(422, {"message": message, "errors": {"per_page": [message]}})
    if behaviour == "slow":
        return Reply(200, b"", delay=settings.slow_page_seconds)
    return json_reply(500, {"message": "Server Error"})


def list_body(shape: str, source: Source, request: ListRequest, render: Render) -> t.Any:
    """The JSON body (before any envelope) of one list request in one shape."""
    builders: dict[str, t.Callable[[Source, ListRequest, Render], t.Any]] = {
        "length_aware": _length_aware,
        "simple": _simple,
        "cursor": _cursor,
        "resource": _resource,
        "data_list": lambda s, _r, draw: {"data": draw(s.all_records())},
        "array": lambda s, _r, draw: draw(s.all_records()),
        # A plain array that pages by page and per_page without saying so.
        "paged_array": lambda s, r, draw: draw(_window(s, r)[0]),
    }
    return builders[shape](source, request, render)


def _window(source: Source, request: ListRequest) -> tuple[list[Row], int, int | None, int | None]:
    """A numbered page: its rows, the real total, and its from/to positions (1-based)."""
    first = (request.page - 1) * request.per_page + 1
    rows, total = source.page(first - 1, request.per_page)
    if not rows:
        return rows, total, None, None
    return rows, total, first, first + len(rows) - 1


def _length_aware(source: Source, request: ListRequest, render: Render) -> Row:
    """Laravel's LengthAwarePaginator (the default body), with the omissions and faults."""
    rows, total, first, last = _window(source, request)
    page, url, fault = request.page, request.url, request.fault
    last_page = max(1, math.ceil(total / request.per_page))
    shown_total: int | None = total
    if fault == "huge_last_page":
        last_page, shown_total = HUGE_LAST_PAGE, None
    elif fault == "endless_empty_pages":
        # Always one more page to come, so a client trusting last_page never stops.
        last_page = page + 1
    elif fault == "total_flapping" and request.request_number % 2 == 0:
        shown_total = max(0, total - FLAP_DROP)
    has_next = page < last_page or fault == "next_page_url_never_null"
    body: Row = {
        "current_page": page,
        "data": render(rows),
        "first_page_url": f"{url}?page=1",
        "from": first,
        "last_page": last_page,
        "last_page_url": f"{url}?page={last_page}",
        "next_page_url": f"{url}?page={page + 1}" if has_next else None,
        "path": url,
        "per_page": request.per_page,
        "prev_page_url": f"{url}?page={page - 1}" if page > 1 else None,
        "to": last,
        "total": shown_total,
    }
    if shown_total is None:
        del body["total"]
    if request.omit_next_page_url or request.omit_last_page:
        del body["next_page_url"]
    if request.omit_last_page:
        del body["last_page"], body["last_page_url"]
        body.pop("total", None)
    return body


def _simple(source: Source, request: ListRequest, render: Render) -> Row:
    """Laravel's simplePaginate: no total or last page, only whether a next page exists."""
    rows, total, first, last = _window(source, request)
    page, url = request.page, request.url
    has_next = page * request.per_page < total
    return {
        "current_page": page,
        "data": render(rows),
        "first_page_url": f"{url}?page=1",
        "from": first,
        "next_page_url": f"{url}?page={page + 1}" if has_next else None,
        "path": url,
        "per_page": request.per_page,
        "prev_page_url": f"{url}?page={page - 1}" if page > 1 else None,
        "to": last,
    }


def _resource(source: Source, request: ListRequest, render: Render) -> Row:
    """A paginated API resource collection: the paginator split into links and meta."""
    rows, total, first, last = _window(source, request)
    page, url = request.page, request.url
    last_page = max(1, math.ceil(total / request.per_page))
    return {
        "data": render(rows),
        "links": {
            "first": f"{url}?page=1",
            "last": f"{url}?page={last_page}",
            "prev": f"{url}?page={page - 1}" if page > 1 else None,
            "next": f"{url}?page={page + 1}" if page < last_page else None,
        },
        "meta": {
            "current_page": page,
            "from": first,
            "last_page": last_page,
            "links": [],
            "path": url,
            "per_page": request.per_page,
            "to": last,
            "total": total,
        },
    }


def _cursor(source: Source, request: ListRequest, render: Render) -> Row:
    """Laravel's cursorPaginate: pages keyed by record id, so deletions never shift them.

    The next/previous cursor rules follow Laravel's CursorPaginator: coming back with a
    previous cursor always leaves a next page, and the first page has no previous one.
    """
    cursor, limit = request.cursor, request.per_page
    rows, more_beyond = source.select(cursor_window(cursor, limit))
    if cursor is not None and not cursor.forward:
        has_next, has_prev = bool(rows), more_beyond
    else:
        has_next, has_prev = more_beyond, cursor is not None
    # Cursors come from the records' own ids, read before render can break them.
    # With cursor_growth, each page's cursor is longer than the one before.
    growth = request.cursor_growth * request.request_number
    next_cursor = Cursor(rows[-1]["id"]).encode(growth) if rows and has_next else None
    prev_cursor = Cursor(rows[0]["id"], forward=False).encode() if rows and has_prev else None
    url = request.url
    return {
        "data": render(rows),
        "path": url,
        "per_page": limit,
        "next_cursor": next_cursor,
        "next_page_url": f"{url}?cursor={next_cursor}" if next_cursor else None,
        "prev_cursor": prev_cursor,
        "prev_page_url": f"{url}?cursor={prev_cursor}" if prev_cursor else None,
    }
