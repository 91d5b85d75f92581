"""Step 3 of the data path, the request: the base REST stream.

``MokapenClient`` holds the SDK's request hooks: the URL, the token (auth.py), the
paginator (paging.py) and its parameters, the page size (page_size.py), the pacer's
slot for every attempt (throttle.py), the verdict on each answer and the retries
(verdict.py, retries.py), and the page read from it (pages.py, intake.py). ``answers`` sends a
list's requests one after the other, asking again, smaller, for a page the server
will not serve at the size asked. The pass over a list that uses them, and writes
its STATE, is sync.py.
"""

from __future__ import annotations

import os
import typing as t
from functools import cached_property
from urllib.parse import urlsplit

import requests
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.singerlib import SchemaMessage
from singer_sdk.streams import RESTStream
from singer_sdk.streams.rest import PageContext
from typing_extensions import override

from tap_mokapen import errors, retries, sdk_private, state, transport, verdict
from tap_mokapen.intake import RecordIntake
from tap_mokapen.page_size import PageSize
from tap_mokapen.pages import Page, careful_read
from tap_mokapen.paging import ListPaginator, Paginator
from tap_mokapen.progress import Progress

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_mokapen.auth import MokapenAuthenticator
    from tap_mokapen.tap import TapMokapen

REQUEST_TIMEOUT_SECONDS = 120


class MokapenClient(sdk_private.PageAtATimeSync, RESTStream[dict[str, t.Any]]):
    """A paged Mokapen list endpoint: its requests, their pacing, retries and pages.

    The pass over the list that uses them, with its state, is sync.MokapenStream.
    """

    #: The keys of the stream's state partitions, which the tap sets on every record.
    partition_keys: t.ClassVar[tuple[str, ...]] = ()
    #: Read whole under table versions (detect_deletions, sync.py).
    versioned = False
    # A redirect could carry the token elsewhere: verdict.py reports it instead.
    allow_redirects = False

    #: Fields holding timestamps, normalized to RFC 3339 UTC on every record.
    timestamp_fields: t.ClassVar[tuple[str, ...]] = ("created_at", "updated_at")
    #: The OAuth scope the endpoint needs (None: any token will do).
    scope: t.ClassVar[str | None] = None
    # Paging by page number is not a snapshot and the order is undocumented:
    # the bookmark may only advance once the whole stream has been read.
    is_sorted = False
    # Records are cut to the schema and shaped per page (record_type.py); the SDK's
    # per-value conformance would cost about half of the tap's CPU for nothing.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: TapMokapen) -> None:
        super().__init__(tap=tap)
        self.mokapen_tap = tap
        self.organization_id: int | str = tap.organizations.first
        #: The last answer and its page (read_page), so that each is decoded once.
        self._last_answer: tuple[requests.Response, Page] | None = None
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
        #: The page size for the organization being read (set per organization).
        self.sizing = PageSize.for_endpoint(tap.settings.page_size, None)
        #: Where the next paginator starts (the pass sets it from the state).
        self._resume_position: dict[str, t.Any] | None = None
        #: The pages of the last complete pass: a request budget where answers give none.
        self._known_pages: int | None = None

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
            self._resume_position,
            read_page=self.read_page,
            page_size=self.sizing.asked,
            # A pass that may retire rows must know a plain list is whole.
            probe_whole_list=self.versioned,
            known_pages=self._known_pages,
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
        """Judge the answer (verdict.py); a 200 must also hold a readable page."""
        self.mokapen_tap.organizations.reached = True
        if response.status_code == 429:
            self.stats["http_429"] += 1
        verdict.judge_api_answer(
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
        with_retries = retries.retrying(
            paced,
            wait_gen=self.backoff_wait_generator,
            max_wait_seconds=max_wait,
            on_retry=self.backoff_handler,
            jitter=self.backoff_jitter,
            # A large page failing again and again may be too large: page_size.py.
            give_up=lambda exception: self.sizing.count_fault(exception),
            # Shown and counted like the throttle's waits (progress.py).
            sleep=lambda seconds: self.progress.wait(seconds, "a retry"),
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
                msg = errors.sentences(
                    str(exc),
                    f"A fresh token was refused too: the app's access to organization "
                    f"{self.organization_id} was revoked or its credentials changed.",
                )
                raise errors.AuthenticationError(msg) from None
            except retries.RETRIABLE_ERRORS as exc:
                path = errors.url_path(prepared_request.url)
                what = "" if isinstance(exc, RetriableAPIError) else f"GET {path} failed: "
                if self.sizing.shrink_due:
                    raise errors.PageSizeRefused(f"{what}{exc}", fault=True) from None
                raise retries.gave_up(exc, what, max_wait) from None

        return send

    @override
    def backoff_wait_generator(self) -> t.Generator[float, t.Any, None]:
        """Wait as long as Mokapen asks, else back off exponentially (retries.py)."""
        organizations = self.mokapen_tap.organizations
        return retries.wait_generator(
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
        tap = self.mokapen_tap
        forget = tap.settings.forget_learned_fields
        # Fields the catalog adds (discovery's sample, or the user's) are the stream's
        # too: the SDK sent them in the first SCHEMA. The tap's own declarations win.
        entry = tap.input_catalog.get_stream(self.name) if tap.input_catalog else None
        declared = entry.schema.to_dict().get("properties", {}) if entry else {}
        properties = {**declared, **self.schema["properties"]}
        return RecordIntake(
            self.name,
            {**self.schema, "properties": properties},
            key_properties=self.primary_keys or (),
            partition_keys=self.partition_keys,
            replication_key=self.replication_key,
            timestamp_fields=self.timestamp_fields,
            deselected=[f for f in properties if not self.mask.get(("properties", f), True)],
            frozen=tap.settings.freeze_schema,
            rejections=tap.rejections,
            write_schema=self.write_grown_schema,
            stats=self.stats,
            # forget_learned_fields: this run starts from the shipped schema.
            learned={} if forget else state.learned_fields(self.stream_state),
            unseen_runs=state.learned_fields_unseen(self.stream_state),
            forgotten={} if forget else state.forgotten_fields(self.stream_state),
            max_learned=tap.settings.max_learned_fields,
        )

    def write_grown_schema(self, message: SchemaMessage) -> None:
        """The schema grew (or earlier runs' learned fields came back): the page-at-a-time
        loop writes it as it is; the SDK's loop (stream maps, flattening) through the
        maps, so that they map, drop or flatten the new fields like the others."""
        if sdk_private.writes_lines_directly(self):
            self.mokapen_tap.write_message(message)
        else:
            sdk_private.remap(self, self.mokapen_tap.mapper, message.schema)

    @property
    @override
    def effective_schema(self) -> dict:
        """What the SDK's loop conforms records to: the schema they were shaped to
        (intake.py), grown during the run; the catalog's would drop every new field."""
        return self.intake.evolution.schema

    def read_page(self, response: requests.Response) -> Page:
        """The page in an answer, decoded once: validate_response decodes it (a body cut
        short is retried there), the paginator and the loop get the same page."""
        if self._last_answer is None or self._last_answer[0] is not response:
            self._last_answer = (response, self.intake.read(response))
        return self._last_answer[1]

    def answers(
        self, context: Context | None, paginator: Paginator
    ) -> t.Iterator[tuple[str, requests.Response]]:
        """Every answer of the list, where it was asked, the page size lowered as needed.

        A page the server will not serve at the size asked (page_size.py) is asked
        again, smaller; the paginator is advanced by the caller.
        """
        send = self.request_decorator(lambda request, ctx: sdk_private.send(self, request, ctx))
        try:
            while not paginator.finished:
                prepared_request = self.prepare(context, paginator.current_value)
                path = errors.url_path(prepared_request.url)
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
        finally:
            self._last_answer = None  # a page may be large: not kept past its list

    def list_all(self, context: Context | None) -> t.Iterator[t.Any]:
        """Every record of the list as plain JSON, whatever it is, outside the record path:
        no schema growth, no rejections, no state (the organizations list, read for the
        tap, which judges each record itself)."""
        self.sizing = PageSize.for_endpoint(
            self.mokapen_tap.settings.page_size, None, where=f"'{self.name}'"
        )
        paginator = ListPaginator(None, read_page=self.read_page, page_size=self.sizing.asked)
        for _, response in self.answers(context, paginator):
            yield from careful_read(response).records
            paginator.advance(response)
        doubt = paginator.verdict()
        if doubt:  # a listing that contradicts itself may lack an organization
            msg = f"the list's answers contradict each other ({doubt})"
            raise errors.APIError(msg)
