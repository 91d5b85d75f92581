"""Step 4 of the data path, the page: one answer of a list endpoint, read once.

A page is decoded straight into the stream's typed records (records.py) plus the
paginator fields paging.py reads. The answer may be Laravel's paginator object
bare or wrapped as ``{"status": true, "data": {...}}``; the bare one, by far the
most common, is decoded in one pass, the rest through a dict.
"""

from __future__ import annotations

import typing as t
from urllib.parse import urlsplit

import msgspec
import requests

from tap_mokapen.errors import APIError, TruncatedAnswer, json_body
from tap_mokapen.records import UNSET, RecordType


class Page(t.Protocol):
    """The Laravel length-aware paginator's fields the tap reads."""

    data: list[t.Any]
    current_page: t.Any
    per_page: t.Any
    total: t.Any
    last_page: t.Any
    #: UNSET when the server sends no ``next_page_url`` at all, unlike ``null``.
    next_page_url: t.Any


class PageReader:
    """Decodes a list endpoint's answer into a Page of typed records."""

    def __init__(self, record_type: RecordType) -> None:
        self.record_type = record_type
        self.page_type = msgspec.defstruct(
            f"{record_type.struct.__name__}Page",
            [
                ("data", list[record_type.struct]),  # type: ignore[name-defined]
                ("current_page", t.Any, None),
                ("per_page", t.Any, None),
                ("total", t.Any, None),
                ("last_page", t.Any, None),
                ("next_page_url", t.Any, UNSET),
            ],
        )
        self._decoder = msgspec.json.Decoder(self.page_type)

    def read(self, response: requests.Response) -> Page:
        """The page in a response, decoded once and kept on the response."""
        page = getattr(response, "_mokapen_page", None)
        if page is None:
            page = self._decode(response)
            response._mokapen_page = page  # type: ignore[attr-defined]
        return t.cast(Page, page)

    def _decode(self, response: requests.Response) -> t.Any:
        try:
            return self._decoder.decode(response.content)
        except msgspec.ValidationError:
            pass  # valid JSON of another shape: the envelope, an error, or not a page
        except msgspec.DecodeError as exc:
            msg = f"{_path(response)} answered with a body that is cut short or is not JSON"
            raise TruncatedAnswer(msg, response) from exc
        body = paginator_body(response)
        try:
            return msgspec.convert(body, self.page_type)
        except msgspec.ValidationError as exc:
            msg = f"{_path(response)} answered with records that are not JSON objects: {exc}"
            raise APIError(msg) from exc


def paginator_body(response: requests.Response) -> dict[str, t.Any]:
    """The paginator object, whether bare or wrapped as ``{"status": true, "data": {...}}``."""
    body = json_body(response)
    if isinstance(body, dict) and isinstance(body.get("data"), dict):
        body = body["data"]
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        msg = f"{_path(response)} did not answer with a page of records"
        raise APIError(msg)
    return body


def _path(response: requests.Response) -> str:
    return urlsplit(response.url).path
