"""Reading a page of records: decoded straight into a typed record per stream.

Each stream's records are a msgspec Struct with one field per selected schema
property. Decoding into it keeps only those fields (unknown extras the API adds
are skipped while parsing) and costs about a third of decoding into dicts. A
field the API did not send stays UNSET and is left out when the record is
encoded, exactly as a missing key would be; ``null`` stays ``null``.
"""

from __future__ import annotations

import keyword
import typing as t
from urllib.parse import urlsplit

import msgspec
import requests

from tap_mokapen.errors import APIError
from tap_mokapen.retry import json_body

UNSET = msgspec.UNSET


class Page(t.Protocol):
    """The Laravel length-aware paginator's fields the tap reads (mokapen-api.md section 6)."""

    data: list[t.Any]
    current_page: t.Any
    per_page: t.Any
    total: t.Any
    last_page: t.Any
    #: UNSET when the server sends no ``next_page_url`` at all, unlike ``null``.
    next_page_url: t.Any


class NotJSONError(APIError):
    """A 2xx answer whose body is cut short or is not JSON: a transport fault."""


class PageReader:
    """Decodes a list endpoint's answer into typed records of the given fields."""

    def __init__(self, stream_name: str, fields: t.Sequence[str]) -> None:
        #: JSON field name -> the record's attribute (a few names are not identifiers).
        self.attributes = {name: _attribute_name(name, i) for i, name in enumerate(fields)}
        self.record_type = msgspec.defstruct(
            f"{stream_name.title()}Record",
            [(attr, t.Any, UNSET) for attr in self.attributes.values()],
            rename={attr: name for name, attr in self.attributes.items()},
            omit_defaults=True,
            # Decoded JSON cannot refer back to its record: no cycles for the GC to track.
            gc=False,
        )
        self.page_type = msgspec.defstruct(
            f"{stream_name.title()}Page",
            [
                ("data", list[self.record_type]),  # type: ignore[name-defined]
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
        return page

    def _decode(self, response: requests.Response) -> Page:
        try:
            return self._decoder.decode(response.content)
        except msgspec.ValidationError:
            pass  # valid JSON of another shape: the envelope, an error, or not a page
        except msgspec.DecodeError as exc:
            msg = f"{_path(response)} answered with a body that is cut short or is not JSON"
            raise NotJSONError(msg) from exc
        body = paginator_body(response)
        try:
            return msgspec.convert(body, self.page_type)
        except msgspec.ValidationError as exc:
            msg = f"{_path(response)} answered with records that are not JSON objects: {exc}"
            raise APIError(msg) from exc

    @staticmethod
    def to_dict(record: msgspec.Struct) -> dict[str, t.Any]:
        """The record as the SDK's own record path expects it: a dict of the fields sent."""
        return msgspec.to_builtins(record)


def paginator_body(response: requests.Response) -> dict[str, t.Any]:
    """The paginator object, whether bare or wrapped as ``{"status": true, "data": {...}}``."""
    body = json_body(response)
    if isinstance(body, dict) and isinstance(body.get("data"), dict):
        body = body["data"]
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        msg = f"{_path(response)} did not answer with a page of records"
        raise APIError(msg)
    return body


def _attribute_name(name: str, index: int) -> str:
    return name if name.isidentifier() and not keyword.iskeyword(name) else f"field_{index}"


def _path(response: requests.Response) -> str:
    return urlsplit(response.url).path
