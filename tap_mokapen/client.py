"""Step 3 of the data path, the request, and the loop that runs the rest: the base stream.

``MokapenStream.get_pages`` is a stream's whole journey for one organization:
the resume point from state.py, then for each request the pacer's slot
(limits.py), the token (auth.py), the verdict on the answer (errors.py), the page
(pages.py) with its records shaped (records.py), the paginator advanced
(paging.py), the records written (output.py, by the consumer of ``get_pages``)
and only then a STATE written, in ``get_pages``. A pause leaves its resume token
in the state there too; that STATE, like the one at the stream's end, is written
when the stream's sync ends (sdk_private.PageAtATimeSync).
"""

from __future__ import annotations

import datetime as dt
import os
import typing as t
from functools import cached_property
from urllib.parse import urlsplit

import requests
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.streams import RESTStream
from singer_sdk.streams.rest import PageContext
from typing_extensions import override

from tap_mokapen import deletions, errors, output, sdk_private, state, transport
from tap_mokapen.intake import RecordIntake
from tap_mokapen.page_size import PageSize
from tap_mokapen.pages import Page, careful_read
from tap_mokapen.paging import ListPaginator, Paginator
from tap_mokapen.progress import Progress
from tap_mokapen.timestamps import to_rfc3339

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context
    from singer_sdk.singerlib import Catalog

    from tap_mokapen.auth import MokapenAuthenticator
    from tap_mokapen.tap import TapMokapen

REQUEST_TIMEOUT_SECONDS = 120


class MokapenStream(sdk_private.PageAtATimeSync, RESTStream[dict[str, t.Any]]):
    """A paged Mokapen list endpoint."""

    #: The keys of the stream's state partitions, which the tap sets on every record.
    partition_keys: t.ClassVar[tuple[str, ...]] = ()
    # A redirect could carry the token elsewhere: errors.py reports it instead.
    allow_redirects = False

    #: Fields holding timestamps, normalized to RFC 3339 UTC on every record.
    timestamp_fields: t.ClassVar[tuple[str, ...]] = ("created_at", "updated_at")
    #: The OAuth scope the endpoint needs (None: any token will do).
    scope: t.ClassVar[str | None] = None
    # Paging by page number is not a snapshot and the order is undocumented:
    # the bookmark may only advance once the whole stream has been read.
    is_sorted = False
    # Records are cut to the schema and shaped per page (records.py); the SDK's
    # per-value conformance would cost about half of the tap's CPU for nothing.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: TapMokapen) -> None:
        super().__init__(tap=tap)
        self.mokapen_tap = tap
        self.organization_id: int | str = tap.organizations.first
        self.progress = Progress(
            self.name,
            self.logger,
            tap.settings.progress_log_seconds,
            limiter=tap.organizations.limiter,
        )
        self.requests_session.headers["Accept"] = "application/json"
        self._read_environment_once(tap.settings.base_url)
        transport.guard(
            self.requests_session,
            deadline_seconds=tap.settings.request_deadline_seconds,
            max_bytes=tap.settings.max_response_bytes,
        )
        self._paginator: Paginator | None = None
        # detect_deletions: read whole, every RECORD with its pass's version (deletions.py).
        self.versioned = self.name in tap.settings.detect_deletions
        self._full_table_if_versioned()
        self.table_version: int | None = None
        #: The page size for the organization being read (set per organization).
        self.sizing = PageSize.for_endpoint(tap.settings.page_size, None)
        self._resume_position: dict[str, t.Any] | None = None
        self._time_extracted = ""

    def _full_table_if_versioned(self) -> None:
        if self.versioned:
            self.replication_key = None
        if not self.replication_key:
            self.forced_replication_method = "FULL_TABLE"

    @override
    def apply_catalog(self, catalog: Catalog) -> None:
        """The catalog's selection; a catalog made before detect_deletions was set does not
        make a versioned stream incremental again."""
        super().apply_catalog(catalog)
        self._full_table_if_versioned()

    @property
    def stats(self) -> t.Counter[str]:
        return self.progress.stats

    # -- URLs and requests --------------------------------------------------------

    def _read_environment_once(self, url: str) -> None:
        """Proxy and CA settings from the environment, read here rather than per request.

        The SDK sends prepared requests, for which requests scans the environment for
        proxies three times per request and ignores REQUESTS_CA_BUNDLE. Where no proxy
        applies, the scan is turned off; a CA bundle from the environment is honoured.
        """
        session = self.requests_session
        if requests.utils.get_environ_proxies(url):
            return
        session.trust_env = False
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle and session.verify is True:
            session.verify = bundle

    @override
    @property
    def url_base(self) -> str:
        """The API root: ``{base_url}/api/v1``."""
        return f"{self.mokapen_tap.settings.base_url}/api/v1"

    @override
    @property
    def authenticator(self) -> MokapenAuthenticator:
        """The current organization's token, shared with the organization's other streams."""
        return self.mokapen_tap.organizations.authenticator(self.organization_id)

    @override
    @cached_property
    def user_agent(self) -> str:
        return self.mokapen_tap.user_agent

    @override
    @property
    def timeout(self) -> int:
        return REQUEST_TIMEOUT_SECONDS

    @override
    def get_new_paginator(self) -> Paginator:
        """A paginator starting where the last run stopped (or at the first page)."""
        self._paginator = ListPaginator(
            self._resume_position, read_page=self.read_page, page_size=self.sizing.asked
        )
        return self._paginator

    @override
    def get_url_params(
        self, context: Context | None, next_page_token: dict[str, t.Any] | None
    ) -> dict[str, t.Any]:
        """The paginator's parameters for the next page, ``per_page`` included."""
        return {"per_page": self.sizing.asked, **(next_page_token or {})}

    def prepare(
        self, context: Context | None, token: dict[str, t.Any] | None
    ) -> requests.PreparedRequest:
        """The request for one page, through the SDK's public request hooks."""
        http_request = self.get_http_request(
            page=PageContext(stream_context=context, next_page_token=token)
        )
        return self.build_prepared_request(
            method=http_request.method,
            url=http_request.url,
            params=http_request.encode_params(),
            headers=http_request.headers,
        )

    @override
    def validate_response(self, response: requests.Response) -> None:
        """Judge the answer (errors.py); a 200 must also hold a readable page."""
        self.mokapen_tap.organizations.reached = True
        if response.status_code == 429:
            self.stats["http_429"] += 1
        errors.judge_api_answer(
            response,
            organization_id=self.organization_id,
            stream=self.name,
            scope=self.scope or "the stream's scope",
        )
        self.read_page(response)  # a body cut short raises TruncatedAnswer: retried

    @override
    def request_decorator(self, func: t.Callable) -> t.Callable:
        """Pace every attempt, retry faults within max_wait_seconds, re-authenticate once."""
        tap = self.mokapen_tap

        def paced(prepared_request: requests.PreparedRequest, context: Context | None) -> t.Any:
            # The token request takes a slot of its own: fetch it before taking ours.
            self.authenticator.ensure_token()
            with tap.organizations.pacer(self.organization_id).slot(self.progress):
                self.stats["requests"] += 1
                return func(prepared_request, context)

        max_wait = tap.settings.max_wait_seconds
        with_retries = errors.retrying(
            paced,
            wait_gen=self.backoff_wait_generator,
            max_wait_seconds=max_wait,
            on_retry=self.backoff_handler,
            jitter=self.backoff_jitter,
            # A large page failing again and again may be too large: page_size.py.
            give_up=lambda exception: self.sizing.count_fault(exception),
        )

        def send(prepared_request: requests.PreparedRequest, context: Context | None) -> t.Any:
            try:
                try:
                    return with_retries(prepared_request, context)
                except errors.ReauthenticationNeeded:
                    self.logger.info("401 from the API: requesting a fresh token and retrying once")
                    self.authenticator.invalidate()
                    return with_retries(prepared_request, context)
            except errors.ReauthenticationNeeded as exc:
                msg = (
                    f"{exc}. A fresh token was refused too: the app's access to "
                    f"organization {self.organization_id} was revoked or its credentials "
                    "changed."
                )
                raise errors.AuthenticationError(msg) from None
            except errors.RETRIABLE_ERRORS as exc:
                path = urlsplit(prepared_request.url or "").path
                what = "" if isinstance(exc, RetriableAPIError) else f"GET {path} failed: "
                if self.sizing.shrink_due:
                    raise errors.PageSizeRefused(f"{what}{exc}", fault=True) from None
                raise errors.gave_up(exc, what, max_wait) from None

        return send

    @override
    def backoff_wait_generator(self) -> t.Generator[float, t.Any, None]:
        """Wait as long as Mokapen asks, else back off exponentially (errors.py)."""
        organizations = self.mokapen_tap.organizations
        return errors.wait_generator(
            self.mokapen_tap.settings.max_wait_seconds, reached=lambda: organizations.reached
        )

    @override
    def backoff_handler(self, details: t.Any) -> None:
        self.stats["retries"] += 1
        request = (details.get("args") or [None])[0]
        host = urlsplit(getattr(request, "url", "") or "").netloc
        self.logger.info(
            "Retrying %s for '%s' of organization %s in %.1f s (attempt %d): %s",
            host,
            self.name,
            self.organization_id,
            details.get("wait", 0),
            details.get("tries", 0),
            details.get("exception") or "no answer",
        )

    # -- pages, records and state -----------------------------------------------

    @cached_property
    def intake(self) -> RecordIntake:
        """The stream's record type, schema and rejections (built once the catalog is read)."""
        properties = self.schema["properties"]
        tap = self.mokapen_tap
        return RecordIntake(
            self.name,
            self.schema,
            key_properties=self.primary_keys or (),
            partition_keys=self.partition_keys,
            replication_key=self.replication_key,
            timestamp_fields=self.timestamp_fields,
            deselected=[f for f in properties if not self.mask.get(("properties", f), True)],
            # The SDK's own record loop (stream maps...) only knows the catalog's schema.
            frozen=tap.settings.freeze_schema or not sdk_private.writes_lines_directly(self),
            rejections=tap.rejections,
            write_schema=tap.write_message,
            stats=self.stats,
            learned=state.learned_fields(self.stream_state),
        )

    def read_page(self, response: requests.Response) -> Page:
        return self.intake.read(response)

    def get_pages(self, context: Context | None) -> t.Iterator[list[t.Any]]:
        """The stream's pages for one organization, from where the last run stopped.

        Every page's records are written (by the consumer of this generator) before
        its STATE. A pause keeps the resume point; a failure that retrying cannot fix
        ends this stream only (the tap carries on with the others and exits 1).
        """
        tap = self.mokapen_tap
        configured = (context or {}).get("organization_id", tap.organizations.first)
        skip = tap.organizations.why_skip(configured)
        if skip:
            self.logger.info("Skipping '%s' for organization %s: %s", self.name, configured, skip)
            return
        self.organization_id = configured
        try:
            org = self.organization_id = tap.organizations.numeric(configured)
        except errors.RunPaused as exc:  # the token request met the quota or the budget
            tap.pause(exc, self, f"'{self.name}' stops before its first page")
            return
        except errors.MokapenError as exc:
            tap.stream_failed(self, exc)
            return
        if self.scope and self.scope in self.authenticator.refused_scopes:
            msg = (
                f"'{self.name}' needs the scope {self.scope}, which Mokapen does not enable "
                f"for this app: enable it for the app, or deselect '{self.name}'"
            )
            tap.stream_failed(self, errors.ConfigError(msg))
            return
        stream_state = self.get_context_state(context)
        # Keyed as the state partitions are: by the organization as configured.
        cycle = tap.organizations.cycle_started_at(configured)
        skip = tap.organizations.why_skip(org)
        if not skip and state.completed_in_cycle(stream_state, cycle):
            skip = "already synced in this cycle"
        if skip:
            self.logger.info("Skipping '%s' for organization %s: %s", self.name, org, skip)
            return
        self._resume_position = state.start(stream_state, self.replication_key)
        self.sizing = PageSize.for_endpoint(
            tap.settings.page_size,
            state.page_size(stream_state),
            where=f"'{self.name}' of organization {org}",
        )
        self.progress.begin(org)
        versions = deletions.TableVersions(self.name, self.stream_state) if self.versioned else None
        self.table_version = versions.current() if versions else None
        sdk_private.set_table_version(self, self.table_version)
        rejected_before = self.stats["rejected"]
        paginator: Paginator | None = None
        try:
            for records, paginator in self.request_pages(context):
                yield records
                state.remember_page_size(stream_state, self.sizing.remembered())
                if self.page_checkpoints and not paginator.finished:
                    state.checkpoint(stream_state, paginator.position(), cycle=cycle)
                    sdk_private.write_state(self)
        except errors.RunPaused as exc:
            paginator = self._paginator
            position = paginator.position() if paginator else {}
            state.pause(stream_state, position, cycle=cycle)
            where = paginator.describe_position() if paginator else "the first page"
            tap.pause(exc, self, f"'{self.name}' stops before {where}")
        except errors.MokapenError as exc:
            paginator = self._paginator
            if self._resume_position and (paginator is None or paginator.count == 0):
                # The server refused the very point this pass resumed at (a stale cursor,
                # say): the next run starts the stream over rather than fail there forever.
                state.abandon(stream_state)
            else:
                state.fail(stream_state, paginator.position() if paginator else {}, cycle=cycle)
            tap.stream_failed(self, exc)
        else:
            state.finish(stream_state, cycle=cycle)
            self.stats["completed"] = 1
            if versions:
                every = [
                    c["organization_id"] for c in self.partitions or [{"organization_id": org}]
                ]
                clean = self.stats["rejected"] == rejected_before
                version = versions.completed(configured, every, clean=clean)
                if version is not None:
                    deletions.activate(self, version)
        finally:
            state.remember_page_size(stream_state, self.sizing.remembered())
            self.progress.end(self._paginator)

    def request_pages(self, context: Context | None) -> t.Iterator[tuple[list[t.Any], Paginator]]:
        """Each page's records fit to emit, with the paginator already advanced past the page."""
        paginator = self.get_new_paginator()
        if self._resume_position:
            self.logger.info("Resuming '%s' at %s", self.name, paginator.describe_position())
        with self.get_http_request_counter() as request_counter:
            request_counter.with_context(context)
            for where, response in self.answers(context, paginator):
                request_counter.increment()
                # Records of a page share the moment they were extracted.
                self._time_extracted = to_rfc3339(dt.datetime.now(dt.UTC)) or ""
                page = self.read_page(response)
                self.stats["records"] += page.size
                records = self.intake.take(
                    page,
                    # The partition's keys, organization_id numeric whatever the config says.
                    partition={key: self.organization_id for key in context or {}},
                    where=where,
                    organization_id=self.organization_id,
                )
                state.remember_fields(self.stream_state, self.intake.evolution.learned)
                records = self.newer_only(records, context)
                self.stats["emitted"] += len(records)
                paginator.advance(response)  # an empty page too: the paginator decides
                self.sizing.observe(page, more_pages=not paginator.finished)
                self.progress.page_done(paginator)
                yield records, paginator

    def answers(
        self, context: Context | None, paginator: Paginator
    ) -> t.Iterator[tuple[str, requests.Response]]:
        """Every answer of the list, where it was asked, the page size lowered as needed.

        A page the server will not serve at the size asked (page_size.py) is asked
        again, smaller; the paginator is advanced by the caller.
        """
        send = self.request_decorator(lambda request, ctx: sdk_private.send(self, request, ctx))
        while not paginator.finished:
            prepared_request = self.prepare(context, paginator.current_value)
            path = urlsplit(prepared_request.url or "").path
            try:
                response = send(prepared_request, context)
            except errors.PageSizeRefused as refusal:
                smaller = self.sizing.refused(refusal)
                if smaller is None:
                    msg = f"GET {path} was refused at every page size: {refusal.message}"
                    raise errors.APIError(msg) from None
                paginator.resize(smaller)
                continue
            self.update_sync_costs(prepared_request, response, context)
            yield f"{path} {paginator.describe_position()}", response

    def newer_only(self, records: list[t.Any], context: Context | None) -> list[t.Any]:
        """The records to emit of a page (all of them, unless a stream filters)."""
        return records

    def list_all(self, context: Context | None) -> t.Iterator[dict[str, t.Any]]:
        """Every record of the list as plain JSON, outside the record path: no schema
        growth, no rejections, no state (the organizations list, read for the tap)."""
        self.sizing = PageSize.for_endpoint(
            self.mokapen_tap.settings.page_size, None, where=f"'{self.name}'"
        )
        paginator = ListPaginator(None, read_page=self.read_page, page_size=self.sizing.asked)
        for _, response in self.answers(context, paginator):
            yield from (r for r in careful_read(response).records if isinstance(r, dict))
            paginator.advance(response)

    @override
    def log_sync_costs(self) -> None:
        super().log_sync_costs()
        self.mokapen_tap.costs_logged(self)

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Records as dicts, for the SDK's own record loop (see sdk_private.py)."""
        to_dict = self.intake.record_type.to_dict
        for page in self.get_pages(context):
            yield from map(to_dict, page)

    def emit_page(self, records: list[t.Any], context: Context | None) -> None:
        """A page's RECORD lines, then its newest replication value as bookmark candidate."""
        output.write_records(self.name, records, self._time_extracted, self.table_version)
        sdk_private.mark_state_changed(self)
        if self.replication_key:
            newest = self.intake.record_type.newest(records, self.replication_key)
            self.track_bookmark(newest, context)

    def track_bookmark(self, newest: t.Any, context: Context | None) -> None:
        """Raise the bookmark candidate of the context's state to ``newest`` (state.py)."""
        if self.replication_key:
            state.track_bookmark(self.get_context_state(context), self.replication_key, newest)
