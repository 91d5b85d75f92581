"""The base stream for Mokapen's REST API: URLs, paging, error handling and retries."""

from __future__ import annotations

import collections
import datetime as dt
import os
import time
import typing as t
from functools import cached_property
from urllib.parse import urlsplit

import backoff
import msgspec
import requests
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.streams import RESTStream

from tap_mokapen import checkpoints, retry
from tap_mokapen.errors import (
    APIError,
    AuthenticationError,
    ConfigError,
    QuotaExhausted,
    ReauthenticationNeeded,
    RunPaused,
)
from tap_mokapen.output import singer_output
from tap_mokapen.pagination import LaravelPaginator, paginator_body
from tap_mokapen.settings import DEFAULT_BASE_URL
from tap_mokapen.timestamps import to_rfc3339

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_mokapen.auth import MokapenAuthenticator
    from tap_mokapen.tap import TapMokapen

#: Faults worth retrying: what the SDK retries, plus bodies cut short in transit.
RETRIABLE_ERRORS = (
    ConnectionResetError,
    RetriableAPIError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
REQUEST_TIMEOUT_SECONDS = 120


class MokapenStream(RESTStream[int]):
    """A paged Mokapen list endpoint."""

    #: Fields holding timestamps, normalized to RFC 3339 UTC on every record.
    timestamp_fields: t.ClassVar[tuple[str, ...]] = ("created_at", "updated_at")
    # Paging by page number is not a snapshot and the order is undocumented:
    # the bookmark may only advance once the whole stream has been read.
    is_sorted = False
    # post_process already shapes records to the schema (fields, timestamps); the SDK's
    # per-value conformance would cost about half of the tap's CPU for nothing.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: TapMokapen) -> None:
        super().__init__(tap=tap)
        self.mokapen_tap = tap
        self.stats: collections.Counter[str] = collections.Counter()
        self._requests_session.headers["Accept"] = "application/json"
        # requests looks for proxy settings in the environment three times per request;
        # where none are set, look once, here.
        if not requests.utils.get_environ_proxies(tap.base_url or DEFAULT_BASE_URL) and not (
            os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        ):
            self._requests_session.trust_env = False
        self._state: dict[str, t.Any] = {}
        self._paginator: LaravelPaginator | None = None
        self._resume: dict[str, t.Any] | None = None
        self._markers: dict[str, t.Any] | None = None
        self._time_extracted_suffix = b"}\n"
        self._started = self._last_progress_log = time.monotonic()
        self.organization_id: int | str = tap.settings_organization
        self._cycle = ""

    # -- URLs and requests ------------------------------------------------------

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
            on_page=self._checkpoint,
        )
        return self._paginator

    # -- checkpoints: a STATE after every page, a clean pause, a resume ---------

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        tap = self.mokapen_tap
        self.organization_id = (context or {}).get("organization_id", tap.settings_organization)
        state = self.get_context_state(context)
        cycle = self._cycle = tap.cycle_started_at(context)
        paused = self.organization_id in tap.paused
        if paused or checkpoints.completed_in_cycle(state, cycle):
            self.log(
                "Skipping '%s' for organization %s: %s",
                self.name,
                self.organization_id,
                "its requests are paused" if paused else "already synced in this cycle",
            )
            return
        self._state = state
        self._resume = checkpoints.start(state, self.replication_key)
        self._markers = state.get(checkpoints.PROGRESS_MARKERS)
        if self._resume:
            self.log("Resuming '%s' at page %d", self.name, self._resume["next_page"])
        started = self._started = self._last_progress_log = time.monotonic()
        try:
            for record in super().get_records(context):
                self.stats["records"] += 1
                yield record
        except RunPaused as exc:
            paginator = self._paginator
            next_page = paginator.current_value if paginator else 1
            checkpoints.pause(
                state,
                next_page=next_page,
                cycle=cycle,
                total=paginator.total if paginator else None,
                per_page=paginator.per_page if paginator else None,
            )
            tap.pause(exc, self, next_page)
        else:
            checkpoints.finish(state, cycle=cycle)
            self.stats["completed"] = 1
        finally:
            self.stats["seconds"] += time.monotonic() - started
            if self._paginator:
                self.stats["drift_rereads"] += self._paginator.drift_rereads
            self.log_summary()

    # -- the per-record hot path -------------------------------------------------
    # Two of the SDK's private per-record steps (singer-sdk is pinned below 0.55) are
    # replaced by cheaper ones with the same output; see bench/run.py for the gain.

    def _increment_stream_state(
        self, latest_record: dict, *, context: Context | None = None
    ) -> None:
        """The bookmark candidate, kept in the markers at hand rather than looked up per record."""
        markers = self._markers
        if markers is None or not self.replication_key:
            return
        value = latest_record.get(self.replication_key)
        if value is not None and value > markers.get("replication_key_value", ""):
            markers["replication_key"] = self.replication_key
            markers["replication_key_value"] = value

    @cached_property
    def _record_prefix(self) -> bytes | None:
        """RECORD lines can be written directly when no stream map or version applies."""
        maps = self.stream_maps
        if (
            len(maps) != 1
            or type(maps[0]).__name__ != "SameRecordTransform"
            or maps[0].stream_alias != self.name
            or self.emit_activate_version_messages
        ):
            return None
        return b'{"type":"RECORD","stream":' + msgspec.json.encode(self.name) + b',"record":'

    def _write_record_message(self, record: dict) -> None:
        prefix = self._record_prefix
        if prefix is None:
            super()._write_record_message(record)
            return
        # The same line the SDK's writer makes, without a message object per record;
        # post_process already dropped deselected and unknown fields.
        singer_output().write(prefix + msgspec.json.encode(record) + self._time_extracted_suffix)
        self.state_manager.is_flushed = False

    def _checkpoint(self, paginator: LaravelPaginator) -> None:
        self.stats["pages"] += 1
        self._log_progress(paginator)
        if paginator.finished:
            return  # the stream's own end writes the final state
        checkpoints.checkpoint(
            self._state,
            next_page=paginator.current_value,
            cycle=self._cycle,
            total=paginator.total,
            per_page=paginator.per_page,
        )
        self.state_manager.is_flushed = False
        self._write_state_message()

    def _log_progress(self, paginator: LaravelPaginator) -> None:
        """A steady progress line: a throttled sync of a large account takes hours."""
        now = time.monotonic()
        interval = self.mokapen_tap.settings.progress_log_seconds
        if now - self._last_progress_log < interval:
            return
        self._last_progress_log = now
        total, size = paginator.total, paginator.per_page
        pages = f"{self.stats['pages']} pages"
        estimate = ""
        if total is not None and size:
            all_pages = -(-total // size)
            left = max(0, all_pages - paginator.covered // size)
            pages = f"page {paginator.covered // size} of {all_pages}"
            elapsed = now - self._started
            if self.stats["pages"] and left:
                seconds = left * elapsed / self.stats["pages"]
                estimate = f"; {left} pages left, about {seconds / 60:.1f} min at this pace"
        self.log(
            "Progress of '%s': %d records, %s, %d requests%s",
            self.name,
            self.stats["records"],
            pages,
            self.stats["requests"],
            estimate,
        )

    def log_summary(self) -> None:
        stats = self.stats
        self.log(
            "Summary of '%s': %d records, %d pages, %d requests, %d retries, %d 429 "
            "answers, %d drift re-reads, %.1f s",
            self.name,
            stats["records"],
            stats["pages"],
            stats["requests"],
            stats["retries"],
            stats["http_429"],
            stats["drift_rereads"],
            stats["seconds"],
        )

    def get_url_params(self, context: Context | None, next_page_token: int | None) -> dict:
        return {"page": next_page_token or 1, "per_page": self.mokapen_tap.settings.page_size}

    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        # Records of a page share the moment they were extracted.
        now = to_rfc3339(dt.datetime.now(dt.UTC))
        self._time_extracted_suffix = b',"time_extracted":"' + now.encode() + b'"}\n'
        yield from paginator_body(response)["data"]

    @cached_property
    def _schema_fields(self) -> tuple[str, ...]:
        """The schema's selected fields: what a record keeps, in the schema's order."""
        mask = self.mask
        return tuple(f for f in self.schema["properties"] if mask[("properties", f)])

    @cached_property
    def _schema_field_set(self) -> frozenset[str]:
        return frozenset(self._schema_fields)

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        # Only the schema's selected fields: unknown extras the API adds are dropped here.
        if not row.keys() <= self._schema_field_set:
            row = {field: row[field] for field in self._schema_fields if field in row}
        for field in self.timestamp_fields:
            if field in row:
                row[field] = to_rfc3339(row[field])
        return row

    # -- errors and retries ------------------------------------------------------

    def validate_response(self, response: requests.Response) -> None:
        """Sort every answer into: fine, retry, re-authenticate, pause, or fail clearly."""
        status = response.status_code
        if status == 429:
            self.stats["http_429"] += 1
            if retry.is_quota_exhausted(response):
                org = self.organization_id
                msg = f"Mokapen's daily request quota for organization {org} is spent"
                raise QuotaExhausted(msg)
            raise RetriableAPIError(self.response_error_message(response), response)
        if status == 401:
            raise ReauthenticationNeeded(self.response_error_message(response))
        if status >= 500:
            raise RetriableAPIError(self.response_error_message(response), response)
        if status == 403:
            raise ConfigError(self._forbidden_message(response))
        if status >= 400:
            raise FatalAPIError(self.response_error_message(response))
        if retry.json_body(response) is None:
            # A 200 whose body is cut short or is not JSON: a transport fault, retry.
            msg = f"{status} from GET {urlsplit(response.url).path}: {retry.api_message(response)}"
            raise RetriableAPIError(msg, response)

    def response_error_message(self, response: requests.Response) -> str:
        # The path only: query strings and headers stay out of logs and errors.
        path = urlsplit(response.url).path
        return f"{response.status_code} from GET {path}: {retry.api_message(response)}"

    def _forbidden_message(self, response: requests.Response) -> str:
        body = retry.json_body(response)
        message = retry.api_message(response)
        prefix = self.response_error_message(response)
        org = self.organization_id
        if "organization" in message.lower():
            return (
                f"{prefix}. The token is bound to another organization than "
                f"{org}: check the organization_id setting."
            )
        if "scope" in message.lower():
            required = body.get("required") if isinstance(body, dict) else None
            needed = " ".join(required) if isinstance(required, list) else "the stream's scope"
            return (
                f"{prefix}. Add {needed} to the scope setting (and enable it for the app), "
                f"or deselect the '{self.name}' stream."
            )
        return prefix

    def request_decorator(self, func: t.Callable) -> t.Callable:
        """Pace every attempt, retry faults within max_wait_seconds, re-authenticate once."""

        def paced(prepared_request: requests.PreparedRequest, context: Context | None) -> t.Any:
            # The token request takes a slot of its own: fetch it before taking ours.
            self.authenticator.ensure_token()
            with self.mokapen_tap.pacer_for(self.organization_id).slot():
                self.stats["requests"] += 1
                return func(prepared_request, context)

        with_retries = backoff.on_exception(
            self.backoff_wait_generator,
            RETRIABLE_ERRORS,
            max_tries=None,
            max_time=self.mokapen_tap.max_wait_seconds,
            on_backoff=self.backoff_handler,
            jitter=self.backoff_jitter,
            logger=None,
        )(paced)

        def send(prepared_request: requests.PreparedRequest, context: Context | None) -> t.Any:
            try:
                try:
                    return with_retries(prepared_request, context)
                except ReauthenticationNeeded:
                    self.log("401 from the API: requesting a fresh token and retrying once")
                    self.authenticator.invalidate()
                    return with_retries(prepared_request, context)
            except ReauthenticationNeeded as exc:
                msg = (
                    f"{exc}. A fresh token was refused too: the app's access to "
                    f"organization {self.organization_id} was revoked or "
                    "its credentials changed."
                )
                raise AuthenticationError(msg) from None
            except RetriableAPIError as exc:
                msg = (
                    f"{exc} (still failing after retrying for "
                    f"max_wait_seconds={self.mokapen_tap.max_wait_seconds:g})"
                )
                raise APIError(msg) from None
            except RETRIABLE_ERRORS as exc:
                path = urlsplit(prepared_request.url or "").path
                msg = (
                    f"GET {path} failed: {type(exc).__name__} (still failing after "
                    f"retrying for max_wait_seconds={self.mokapen_tap.max_wait_seconds:g})"
                )
                raise APIError(msg) from None

        return send

    def backoff_wait_generator(self) -> t.Generator[float, t.Any, None]:
        """Wait as long as Mokapen asks (``retry_after``), else back off exponentially."""
        attempt = 0
        started = time.monotonic()
        exception = yield  # type: ignore[misc]
        while True:
            attempt += 1
            response = getattr(exception, "response", None)
            asked = retry.retry_after_seconds(response) if response is not None else None
            wait = asked if asked is not None else retry.backoff_seconds(attempt)
            remaining = self.mokapen_tap.max_wait_seconds - (time.monotonic() - started)
            if asked is not None and asked > remaining:
                msg = (
                    f"{exception} - Mokapen asks to wait {asked:g} s, more than the "
                    f"{max(remaining, 0):.0f} s left of max_wait_seconds"
                )
                raise APIError(msg)
            exception = yield wait

    def backoff_handler(self, details: t.Any) -> None:
        exception = details.get("exception")
        self.stats["retries"] += 1
        self.log(
            "Retrying in %.1f s (attempt %d): %s",
            details.get("wait", 0),
            details.get("tries", 0),
            exception or "no answer",
        )


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

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        row = super().post_process(row, context)
        bookmark = self._bookmark(context)
        value = row.get(self.replication_key) if self.replication_key else None
        # Canonical timestamps compare correctly as text; a null one is never dropped.
        if bookmark and value is not None and value < bookmark:
            self.stats["older_than_bookmark"] += 1
            return None
        return row
