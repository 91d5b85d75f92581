"""Paging through Laravel length-aware paginator answers (shared/mokapen-api.md section 6)."""

from __future__ import annotations

import typing as t
from urllib.parse import parse_qs, urlsplit

import requests
from singer_sdk.pagination import BaseAPIPaginator

from tap_mokapen.errors import APIError
from tap_mokapen.retry import json_body


def paginator_body(response: requests.Response) -> dict[str, t.Any]:
    """The paginator object, whether bare or wrapped as ``{"status": true, "data": {...}}``."""
    body = json_body(response)
    if isinstance(body, dict) and isinstance(body.get("data"), dict):
        body = body["data"]
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        msg = f"{urlsplit(response.url).path} did not answer with a page of records"
        raise APIError(msg)
    return body


def _page_in_url(url: str) -> int | None:
    values = parse_qs(urlsplit(url).query).get("page")
    return int(values[0]) if values and values[0].isdigit() else None


class LaravelPaginator(BaseAPIPaginator[int]):
    """Page numbers, led by what the server actually returned.

    The next page comes from ``next_page_url`` when the server sends one, else from
    ``current_page < last_page``, else from the page not being empty (the SDK ends a
    stream on an empty page). The page size is whatever the server used, so an
    ignored ``per_page`` changes nothing here.
    """

    def __init__(self, start_page: int = 1) -> None:
        super().__init__(start_value=start_page)
        self.last_body: dict[str, t.Any] | None = None
        self._last_ids: list[t.Any] | None = None

    def get_next(self, response: requests.Response) -> int | None:
        body = paginator_body(response)
        requested = self.current_value
        self._check_not_repeated(body, requested, response)
        self.last_body = body
        current = body.get("current_page")
        current = (
            int(current) if isinstance(current, int | str) and str(current).isdigit() else requested
        )
        if "next_page_url" in body:
            next_url = body["next_page_url"]
            if not next_url:
                return None
            return _page_in_url(next_url) or current + 1
        last_page = body.get("last_page")
        if isinstance(last_page, int):
            return current + 1 if current < last_page else None
        return current + 1 if body["data"] else None

    def _check_not_repeated(
        self, body: dict[str, t.Any], requested: int, response: requests.Response
    ) -> None:
        """A server that ignores ``page`` would otherwise be read forever."""
        current = body.get("current_page")
        path = urlsplit(response.url).path
        if isinstance(current, int) and current != requested:
            msg = f"{path} returned page {current} when page {requested} was asked for"
            raise APIError(msg)
        ids = [row.get("id") for row in body["data"] if isinstance(row, dict)]
        if ids and ids == self._last_ids:
            msg = f"{path} returned the same records for page {requested} as for the page before"
            raise APIError(msg)
        self._last_ids = ids
