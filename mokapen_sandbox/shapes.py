"""The list bodies the sandbox answers, kept apart from the routes in app.py.

A body is built from a ``Source`` (one organization's dataset, or the organizations
list) and one request's paging parameters. Which records a request gets and what the
body says about the rest are decided here; turning records into JSON (timestamps,
extra fields) is the caller's ``render``.
"""

from __future__ import annotations

import dataclasses
import math
import typing as t

if t.TYPE_CHECKING:
    from mokapen_sandbox.settings import SandboxSettings

Row = dict[str, t.Any]
Render = t.Callable[[list[Row]], list[Row]]

LARAVEL_DEFAULT_PAGE = 15


class Source(t.Protocol):
    """Records in the order the API pages them."""

    def page(self, offset: int, limit: int) -> tuple[list[Row], int]: ...


class RowList:
    """A ``Source`` over rows held in memory (the organizations list)."""

    def __init__(self, rows: list[Row]) -> None:
        self._rows = rows

    def page(self, offset: int, limit: int) -> tuple[list[Row], int]:
        return self._rows[offset : offset + limit], len(self._rows)


@dataclasses.dataclass(frozen=True)
class ListRequest:
    """One list request's paging, after the sandbox's switches have had their say."""

    url: str  # the endpoint's absolute URL, without query
    page: int
    per_page: int
    omit_next_page_url: bool = False
    omit_last_page: bool = False


def list_request(url: str, params: dict[str, str], settings: SandboxSettings) -> ListRequest:
    """One list request's paging under repeat_first_page, ignore_per_page and max_per_page."""
    page = 1 if settings.repeat_first_page else max(1, int(params.get("page") or 1))
    per_page = LARAVEL_DEFAULT_PAGE
    if not settings.ignore_per_page and params.get("per_page"):
        per_page = min(max(1, int(params["per_page"])), settings.max_per_page)
    return ListRequest(
        url=url,
        page=page,
        per_page=per_page,
        omit_next_page_url=settings.omit_next_page_url,
        omit_last_page=settings.omit_last_page,
    )


def _window(source: Source, request: ListRequest) -> tuple[list[Row], int, int | None, int | None]:
    """A numbered page: its rows, the real total, and its from/to positions (1-based)."""
    first = (request.page - 1) * request.per_page + 1
    rows, total = source.page(first - 1, request.per_page)
    if not rows:
        return rows, total, None, None
    return rows, total, first, first + len(rows) - 1


def list_body(source: Source, request: ListRequest, render: Render) -> Row:
    """A Laravel LengthAwarePaginator body, with the switched-on omissions."""
    rows, total, first, last = _window(source, request)
    page, url = request.page, request.url
    last_page = max(1, math.ceil(total / request.per_page))
    body: Row = {
        "current_page": page,
        "data": render(rows),
        "first_page_url": f"{url}?page=1",
        "from": first,
        "last_page": last_page,
        "last_page_url": f"{url}?page={last_page}",
        "next_page_url": f"{url}?page={page + 1}" if page < last_page else None,
        "path": url,
        "per_page": request.per_page,
        "prev_page_url": f"{url}?page={page - 1}" if page > 1 else None,
        "to": last,
        "total": total,
    }
    if request.omit_next_page_url or request.omit_last_page:
        del body["next_page_url"]
    if request.omit_last_page:
        del body["last_page"], body["last_page_url"], body["total"]
    return body
