"""The base stream for Mokapen's REST API: URLs, paging, records.

Error handling and retries live in resilience.py, checkpoints and progress in
resumable.py, the page-at-a-time record writing in page_sync.py; all are mixins
of MokapenStream.
"""

from __future__ import annotations

import collections
import datetime as dt
import os
import time
import typing as t
from functools import cached_property

import requests
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.streams import RESTStream

from tap_mokapen.page_sync import PageSync
from tap_mokapen.pagination import LaravelPaginator
from tap_mokapen.records import UNSET, PageReader
from tap_mokapen.resilience import ResilientRequests
from tap_mokapen.resumable import ResumableSync
from tap_mokapen.settings import DEFAULT_BASE_URL
from tap_mokapen.timestamps import normalize_in_place, to_rfc3339

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_mokapen.auth import MokapenAuthenticator
    from tap_mokapen.records import Page
    from tap_mokapen.tap import TapMokapen

REQUEST_TIMEOUT_SECONDS = 120


class MokapenStream(PageSync, ResumableSync, ResilientRequests, RESTStream[int]):
    """A paged Mokapen list endpoint."""

    #: Fields holding timestamps, normalized to RFC 3339 UTC on every record.
    timestamp_fields: t.ClassVar[tuple[str, ...]] = ("created_at", "updated_at")
    # Paging by page number is not a snapshot and the order is undocumented:
    # the bookmark may only advance once the whole stream has been read.
    is_sorted = False
    # Records are cut to the schema and shaped per page (records.py, shape_page); the
    # SDK's per-value conformance would cost about half of the tap's CPU for nothing.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: TapMokapen) -> None:
        super().__init__(tap=tap)
        self.mokapen_tap = tap
        self.stats: collections.Counter[str] = collections.Counter()
        self._requests_session.headers["Accept"] = "application/json"
        self._read_environment_once(tap.base_url or DEFAULT_BASE_URL)
        self._state: dict[str, t.Any] = {}
        self._paginator: LaravelPaginator | None = None
        self._resume: dict[str, t.Any] | None = None
        self._markers: dict[str, t.Any] | None = None
        self._time_extracted = ""
        self._started = self._last_progress_log = time.monotonic()
        self.organization_id: int | str = tap.settings_organization
        self._cycle = ""

    # -- URLs and requests ------------------------------------------------------

    def _read_environment_once(self, url: str) -> None:
        """Proxy and CA settings from the environment, read here rather than per request.

        The SDK sends prepared requests, for which requests scans the environment for
        proxies three times per request and ignores REQUESTS_CA_BUNDLE. Where no proxy
        applies, the scan is turned off; a CA bundle from the environment is honoured.
        """
        session = self._requests_session
        if requests.utils.get_environ_proxies(url):
            return
        session.trust_env = False
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle and session.verify is True:
            session.verify = bundle

    @property
    def url_base(self) -> str:
        return f"{self.mokapen_tap.base_url}/api/v1"

    @property
    def authenticator(self) -> MokapenAuthenticator:
        return self.mokapen_tap.authenticator_for(self.organization_id)

    @cached_property
    def user_agent(self) -> str:
        return self.mokapen_tap.user_agent

    @property
    def timeout(self) -> int:
        return REQUEST_TIMEOUT_SECONDS

    def get_new_paginator(self) -> LaravelPaginator:
        resume = self._resume or {}
        self._paginator = LaravelPaginator(
            resume.get("next_page") or 1,
            known_total=resume.get("total"),
            known_per_page=resume.get("per_page"),
            read_page=self.read_page,
            on_page=self._checkpoint,
        )
        return self._paginator

    def get_url_params(self, context: Context | None, next_page_token: int | None) -> dict:
        return {"page": next_page_token or 1, "per_page": self.mokapen_tap.settings.page_size}

    # -- pages and records --------------------------------------------------------

    def request_pages(self, context: Context | None) -> t.Iterator[list[t.Any]]:
        """The SDK's request loop (request_records), a page of shaped records at a time.

        The paginator advances, and so checkpoints, only when the consumer asks for
        the next page: every record of a page is written before its STATE.
        """
        paginator = self.get_new_paginator()
        send = self.request_decorator(self._request)
        with self.get_http_request_counter() as request_counter:
            request_counter.with_context(context)
            while not paginator.finished:
                prepared_request = self._prepare_request(context=context, page=paginator)
                response = send(prepared_request, context)
                request_counter.increment()
                self.update_sync_costs(prepared_request, response, context)
                records = self.parse_page(response)
                self.stats["records"] += len(records)
                yield self.shape_page(records, context)
                paginator.advance(response)  # an empty page too: the paginator decides

    def request_records(self, context: Context | None) -> t.Iterable[dict]:
        """Records as dicts, for the SDK's own record path (see page_sync.py)."""
        to_dict = self.page_reader.to_dict
        for page in self.request_pages(context):
            yield from map(to_dict, page)

    @cached_property
    def page_reader(self) -> PageReader:
        # The schema's selected fields, in the schema's order: all a record keeps.
        mask = self.mask
        fields = [f for f in self.schema["properties"] if mask[("properties", f)]]
        return PageReader(self.name, fields)

    def read_page(self, response: requests.Response) -> Page:
        return self.page_reader.read(response)

    def parse_page(self, response: requests.Response) -> list[t.Any]:
        # Records of a page share the moment they were extracted.
        self._time_extracted = to_rfc3339(dt.datetime.now(dt.UTC)) or ""
        return self.read_page(response).data

    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        return map(self.page_reader.to_dict, self.parse_page(response))

    def shape_page(self, records: list[t.Any], context: Context | None) -> list[t.Any]:
        """What post_process does for one record, for a page: timestamps and partition keys.

        Records arrive already cut to the schema's selected fields (records.py).
        """
        attributes = self.page_reader.attributes
        for field in self.timestamp_fields:
            if attr := attributes.get(field):
                normalize_in_place(records, attr)
        # As the SDK does: the partition's keys on every record that lacks them.
        for key, value in (context or {}).items():
            if attr := attributes.get(key):
                for record in records:
                    if getattr(record, attr) is UNSET:
                        setattr(record, attr, value)
        return records


class OrganizationScopedStream(MokapenStream):
    """An endpoint under ``/api/v1/{org_id}/``, replicated incrementally on ``updated_at``.

    Each organization is its own state partition. Mokapen has no documented filter
    on ``updated_at``, so every page is read and records older than the bookmark are
    dropped here.
    """

    def __init__(self, tap: TapMokapen) -> None:
        super().__init__(tap)
        self._bookmarks: dict[t.Any, str | None] = {}

    @property
    def partitions(self) -> list[dict]:
        return [{"organization_id": org} for org in self.mokapen_tap.organization_ids]

    def _bookmark(self, context: Context | None) -> str | None:
        key = None if context is None else context.get("organization_id")
        if key not in self._bookmarks:
            start = self.get_starting_timestamp(context)
            self._bookmarks[key] = to_rfc3339(start) if start else None
        return self._bookmarks[key]

    def shape_page(self, records: list[t.Any], context: Context | None) -> list[t.Any]:
        records = super().shape_page(records, context)
        bookmark = self._bookmark(context)
        attr = self.page_reader.attributes.get(self.replication_key or "")
        if not bookmark or not attr:
            return records
        # Canonical timestamps compare correctly as text; a null or missing one is kept.
        kept = [
            r for r in records if (v := getattr(r, attr)) is UNSET or v is None or v >= bookmark
        ]
        self.stats["older_than_bookmark"] += len(records) - len(kept)
        return kept
