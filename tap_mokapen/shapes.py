"""Step 4 of the data path, the page: one answer of a list endpoint, read once.

Mokapen documents no list shape, so the shape is recognised from each answer,
on every endpoint (docs/mokapen-api.md):

==============  ===========================================================
shape           how it is recognised
==============  ===========================================================
length_aware    ``data`` list with ``current_page`` and ``total``/``last_page``
simple          ``data`` list with ``current_page``, no ``total``/``last_page``
cursor          ``data`` list with a ``next_cursor`` key
resource        ``data`` list with a ``meta`` object (and ``links``)
list            a bare JSON array, or a ``data`` list without paging keys
==============  ===========================================================

Each may come bare or wrapped as ``{"status": true, "data": ...}``.

The common case, a bare paginator whose records match the stream's schema, is
decoded in one pass straight into typed records (record_type.py). Anything else - an
envelope, an array, a field the schema does not name, a value of another type, a
broken record, invalid UTF-8, absurd nesting - goes through the careful path:
the body is repaired where it can be, decoded as plain JSON and its records are
handed over raw (``Page.raw``), for the stream to sort out one by one.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import typing as t

import msgspec
import requests

from tap_mokapen.errors import APIError, TruncatedAnswer, url_path
from tap_mokapen.record_type import UNSET, RecordType
from tap_mokapen.verdict import json_body

Shape = t.Literal["length_aware", "simple", "cursor", "resource", "list"]

#: Deeper than this, a value is cut out of the record before decoding (and the record
#: rejected): msgspec and json both recurse, and a page must not end in RecursionError.
MAX_DEPTH = 64
TOO_DEEP = "\x00mokapen: nested too deep\x00"
_PAGING_KEYS = ("current_page", "next_page_url", "last_page", "total", "per_page", "next_cursor")


@dataclasses.dataclass(slots=True)
class Page:
    """One answer of a list endpoint, whatever its shape."""

    shape: Shape
    #: The typed records (fast path); empty when ``raw`` holds them instead.
    data: list[t.Any]
    #: The records as plain JSON (careful path), for the stream to sort out; else None.
    raw: list[t.Any] | None = None
    current_page: t.Any = None
    per_page: t.Any = None
    total: t.Any = None
    last_page: t.Any = None
    #: UNSET when the server sends no ``next_page_url`` at all, unlike ``null``.
    next_page_url: t.Any = UNSET
    next_cursor: t.Any = UNSET
    #: Invalid UTF-8 sequences replaced by U+FFFD in this answer.
    repaired_utf8: int = 0

    @property
    def size(self) -> int:
        return len(self.raw) if self.raw is not None else len(self.data)

    @property
    def records(self) -> list[t.Any]:
        return self.raw if self.raw is not None else self.data


class PageReader:
    """Decodes a list endpoint's answer into a Page."""

    def __init__(self, record_type: RecordType) -> None:
        self.use(record_type)

    def use(self, record_type: RecordType) -> None:
        """Decode into this record type from now on (its schema evolved)."""
        self.record_type = record_type
        self.page_type = msgspec.defstruct(
            f"{record_type.struct.__name__}Page",
            [("data", list[record_type.struct]), *PAGING_FIELDS],  # type: ignore[name-defined]
        )
        name = record_type.struct.__name__
        records = list[record_type.struct]  # type: ignore[name-defined]
        envelope = msgspec.defstruct(f"{name}Envelope", [("data", self.page_type)])
        # The shapes a page of good records comes in, tried in this order: each
        # failing attempt stops at its first mismatch, and the first one is by far
        # the most common.
        self._decoders: list[tuple[msgspec.json.Decoder, t.Callable[[t.Any], Page]]] = [
            (msgspec.json.Decoder(self.page_type), lambda d: _page_of(d, typed=True)),
            (msgspec.json.Decoder(envelope), lambda d: _page_of(d.data, typed=True)),
            (msgspec.json.Decoder(records), lambda d: Page("list", d)),
        ]

    def read(self, response: requests.Response) -> Page:
        """The page in a response, decoded once (the list reader hands it on)."""
        for decoder, page_of in self._decoders:
            try:
                return page_of(decoder.decode(response.content))
            except (msgspec.ValidationError, RecursionError, UnicodeDecodeError):
                continue  # another shape, or records to sort out one by one
            except msgspec.DecodeError as exc:
                # msgspec < 0.23 raised UnicodeDecodeError for invalid UTF-8, later
                # releases a DecodeError: either way such a body is repaired, not retried.
                if not is_utf8(response.content):
                    break
                msg = f"{_path(response)} answered with a body that is cut short or is not JSON"
                raise TruncatedAnswer(msg, response) from exc
        return careful_read(response)


def careful_read(response: requests.Response) -> Page:
    """Any shape, any records: repaired, decoded as plain JSON, records left raw."""
    content, repaired = repair_utf8(response.content)
    content = cut_too_deep(content)
    body = json_body(response) if content is response.content else _decode_plain(content)
    if body is None:
        msg = f"{_path(response)} answered with a body that is cut short or is not JSON"
        raise TruncatedAnswer(msg, response)
    if isinstance(body, dict) and isinstance(body.get("data"), dict):
        body = body["data"]  # the envelope around a paginator
    elif isinstance(body, dict) and isinstance(body.get("data"), list) and not _is_paged(body):
        body = body["data"]  # a plain collection, bare or in the envelope
    if isinstance(body, list):
        return Page("list", [], raw=body, repaired_utf8=repaired)
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        msg = f"{_path(response)} did not answer with a list of records"
        raise APIError(msg)
    # The body may be the response's cached JSON: read, never changed (a second reading
    # of the same answer must find what the first found).
    raw = body["data"]
    paging = {key: value for key, value in body.items() if key != "data"}
    page = _page_of(msgspec.convert(paging, _PagingFields), typed=False)
    page.raw, page.repaired_utf8 = raw, repaired
    return page


#: What a list answer may say about paging, besides its records (UNSET: not sent).
PAGING_FIELDS: list[tuple[str, t.Any, t.Any]] = [
    ("current_page", t.Any, None),
    ("per_page", t.Any, None),
    ("total", t.Any, None),
    ("last_page", t.Any, None),
    ("next_page_url", t.Any, UNSET),
    ("next_cursor", t.Any, UNSET),
    ("meta", t.Any, UNSET),
    ("links", t.Any, UNSET),
]
_PagingFields = msgspec.defstruct(
    "PagingFields", [("data", list[t.Any], msgspec.field(default_factory=list)), *PAGING_FIELDS]
)


def _page_of(decoded: t.Any, *, typed: bool) -> Page:
    """The Page of a decoded paginator object, its shape told from the keys it has."""
    page = Page(
        "list",
        decoded.data if typed else [],
        current_page=decoded.current_page,
        per_page=decoded.per_page,
        total=decoded.total,
        last_page=decoded.last_page,
        next_page_url=decoded.next_page_url,
        next_cursor=decoded.next_cursor,
    )
    links = decoded.links if isinstance(decoded.links, dict) else {}
    if "next" in links:
        page.next_page_url = links["next"]
    if isinstance(decoded.meta, dict):
        meta = decoded.meta
        page.current_page, page.per_page = meta.get("current_page"), meta.get("per_page")
        page.total, page.last_page = meta.get("total"), meta.get("last_page")
        if "next_cursor" in meta:  # a resource collection of a cursor paginator
            page.shape, page.next_cursor = "cursor", meta["next_cursor"]
        else:
            page.shape = "resource"
    elif decoded.next_cursor is not UNSET:
        page.shape = "cursor"
    elif page.total is not None or page.last_page is not None:
        page.shape = "length_aware"
    elif (
        decoded.current_page is not None
        or page.next_page_url is not UNSET
        or decoded.per_page is not None
    ):
        page.shape = "simple"  # paged, without saying how far
    return page


def _is_paged(body: dict[str, t.Any]) -> bool:
    return any(key in body for key in (*_PAGING_KEYS, "meta"))


def _decode_plain(content: bytes) -> t.Any:
    try:
        return msgspec.json.decode(content)
    except msgspec.DecodeError:
        return None


def is_utf8(content: bytes) -> bool:
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def repair_utf8(content: bytes) -> tuple[bytes, int]:
    """The body with invalid UTF-8 replaced by U+FFFD, and how many were replaced."""
    if not is_utf8(content):
        text = content.decode("utf-8", errors="replace")
        replaced = text.count("\ufffd") - content.count("\ufffd".encode())
        return text.encode("utf-8"), replaced
    return content, 0


_STRUCTURE = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def cut_too_deep(content: bytes, limit: int = MAX_DEPTH) -> bytes:
    """Values nested deeper than ``limit`` replaced by the TOO_DEEP marker string.

    A scan of the structure only (strings skipped), without recursion, so it copes
    with any depth; the record holding a marker is then rejected.
    """
    if content.count(b"[") + content.count(b"{") <= limit or _depth(content) <= limit:
        return content
    parts, depth, cut_from, last = [], 0, -1, 0
    marker = msgspec.json.encode(TOO_DEEP)
    for match in _STRUCTURE.finditer(content):
        token = match.group()
        if token[0] == 0x22:  # a string
            continue
        if token in (b"[", b"{"):
            depth += 1
            if depth == limit + 1:
                cut_from = match.start()
        else:
            if depth == limit + 1 and cut_from >= 0:
                parts += [content[last:cut_from], marker]
                last, cut_from = match.end(), -1
            depth -= 1
    if not parts:
        return content
    parts.append(content[last:])
    return b"".join(parts)


_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def _depth(content: bytes) -> int:
    """How deep the structure nests: strings dropped and the rest reduced to brackets,
    all in C."""
    brackets = _STRINGS.sub(b"", content).translate(None, _NOT_BRACKETS)
    return max(itertools.accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _path(response: requests.Response) -> str:
    return url_path(response.url)
