"""Steps 3 to 7 of the data path for one stream: the one base stream, MokapenStream.

Every Mokapen stream is a MokapenStream (streams.py holds one small class each). It
holds the SDK's request hooks: the URL, the token (auth.py), the paginator
(paging.py) and its parameters, the page size (page_size.py), the pacer's slot for
every attempt (throttle.py), the verdict on each answer and the retries
(verdict.py, retries.py), and the page read from it (shapes.py, intake.py).
``answers`` sends a list's requests one after the other, asking again, smaller, for
a page the server will not serve at the size asked.

``get_pages`` is a stream's whole journey for one organization: the pass opened
where the last run left it (state.Partition: the resume point, the page size, the
table version of deletions.py), then for each page the request, the records shaped
(intake.py), the paginator advanced, the records written (output.py, by the
consumer of ``get_pages``, sdk_private.PageAtATimeSync) and only then a STATE
written. A pause leaves its resume token in the state too; that STATE, like the one
at the stream's end, is written when the stream's sync ends.
"""

from __future__ import annotations

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

from tap_mokapen import (
    deletions,
    errors,
    output,
    retries,
    sdk_private,
    state,
    timestamps,
    transport,
    verdict,
)
from tap_mokapen.evolution import SchemaEvolution
from tap_mokapen.intake import RecordIntake
from tap_mokapen.page_size import PageSize
from tap_mokapen.paging import Paginator, open_list
from tap_mokapen.progress import Progress
from tap_mokapen.shapes import Page, careful_read
from tap_mokapen.timestamps import to_rfc3339

if t.TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context
    from singer_sdk.singerlib import Catalog

    from tap_mokapen.auth import MokapenAuthenticator
    from tap_mokapen.run import Run

REQUEST_TIMEOUT_SECONDS = 120
#: Records sampled by --discover for a declared stream's fields: enough, and small.
SAMPLE_PAGE_SIZE = 100


class MokapenStream(sdk_private.PageAtATimeSync, RESTStream[dict[str, t.Any]]):
    """A Mokapen list endpoint read page by page, resumable at every page.

    By default an endpoint under ``/api/v1/{organization_id}/`` (its path and its
    OAuth scope, ``<name>.read``, follow from its name), each organization its own
    state partition, incremental on ``updated_at``; ``organization_scoped = False``
    for one that is not (the organizations list).
    """

    #: Under /api/v1/{organization_id}/, one state partition per organization.
    organization_scoped: t.ClassVar[bool] = True
    primary_keys: tuple[str, ...] = ("organization_id", "id")
    replication_key: str | None = "updated_at"
    #: Whether the project ships the schema (else ``--discover`` samples a page).
    packaged: t.ClassVar[bool] = True
    #: The keys of the stream's state partitions, which the tap sets on every record.
    partition_keys: t.ClassVar[tuple[str, ...]] = ("organization_id",)
    #: Read whole under table versions (detect_deletions, deletions.py).
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

    def __init_subclass__(cls, **kwargs: t.Any) -> None:
        super().__init_subclass__(**kwargs)
        name = vars(cls).get("name")
        if name and cls.organization_scoped:
            cls.path = f"/{{organization_id}}/{name}"
            cls.scope = f"{name}.read"

    def __init__(self, tap: Tap, run: Run) -> None:
        super().__init__(tap=tap)
        #: What the run shares (run.py): settings, organizations, report, rejections.
        self.run = run
        settings = run.settings
        self.organization_id: int | str = run.organizations.first
        #: The last answer and its page (read_page), so that each is decoded once.
        self._last_answer: tuple[requests.Response, Page] | None = None
        self.progress = Progress(
            self.name,
            self.logger,
            settings.progress_log_seconds,
            limiter=run.organizations.limiter,
        )
        run.report.follow(self.name, self.stats)
        self.requests_session.headers["Accept"] = "application/json"
        transport.guard(
            self.requests_session,
            deadline_seconds=settings.request_deadline_seconds,
            max_bytes=settings.max_response_bytes,
        )
        self._paginator: Paginator | None = None
        #: The page size for the organization being read (set per organization).
        self.sizing = PageSize.for_endpoint(settings.page_size, None)
        #: Where the next paginator starts (the pass sets it from the state).
        self._resume_position: dict[str, t.Any] | None = None
        #: The pages of the last complete pass: a request budget where answers give none.
        self._known_pages: int | None = None
        # detect_deletions: read whole, every RECORD with its pass's version (deletions.py).
        self.versioned = self.name in settings.detect_deletions
        self._full_table_if_versioned()
        self.table_version: int | None = None
        self.versions: deletions.TableVersions | None = None
        #: The organization of the pass being read, as configured (its state partition's key).
        self.configured_organization: int | str = run.organizations.first
        self._run_table_version: int | None = None
        self._time_extracted = ""
        self._bookmarks: dict[t.Any, str | None] = {}

    @property
    def stats(self) -> t.Counter[str]:
        return self.progress.stats

    # -- URLs and requests --------------------------------------------------------

    @override
    @property
    def url_base(self) -> str:
        """The API root: ``{base_url}/api/v1``."""
        return f"{self.run.settings.base_url}/api/v1"

    @override
    @property
    def authenticator(self) -> MokapenAuthenticator:
        """The current organization's token, shared with the organization's other streams."""
        return self.run.organizations.authenticator(self.organization_id)

    @override
    @cached_property
    def user_agent(self) -> str:
        return self.run.user_agent

    @override
    @property
    def timeout(self) -> int:
        return REQUEST_TIMEOUT_SECONDS

    @override
    def get_new_paginator(self) -> Paginator:
        """A paginator starting where the last run stopped (or at the first page)."""
        self._paginator = open_list(
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
        self.run.organizations.first_contact.answered()
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
        tap = self.run

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
        first_contact = self.run.organizations.first_contact
        return retries.wait_generator(
            self.run.settings.max_wait_seconds, reached=lambda: first_contact.reached
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
        tap = self.run
        forget = tap.settings.forget_learned_fields
        # A declared stream without a shipped schema has the fields --discover sampled,
        # as the catalog lists them. A shipped schema is the contract: fields a catalog
        # adds to it are learned from the values like any new field, whatever the
        # catalog says of their keys, which nothing here could check.
        entry = tap.input_catalog.get_stream(self.name) if tap.input_catalog else None
        sampled = entry.schema.to_dict().get("properties", {}) if entry else {}
        properties = {**({} if self.packaged else sampled), **self.schema["properties"]}
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
            self.run.write_message(message)
        else:
            assert self.run.mapper is not None  # the SDK's loop runs only with its mapper
            sdk_private.remap(self, self.run.mapper, message.schema)

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
    ) -> t.Iterator[tuple[str, requests.Response, Paginator]]:
        """Every answer of the list, where it was asked, and the paginator that reads on
        from it: the first answer says the list's shape, which may call for another
        paginator (paging.py, ``for_answer``). The caller advances it.

        A page the server will not serve at the size asked (page_size.py) is asked
        again, smaller.
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
                where = f"{path} {paginator.describe_position()}"
                # The caller advances it (request_pages: only then is it the pass's).
                paginator = paginator.for_answer(self.read_page(response), path)
                yield where, response, paginator
        finally:
            self._last_answer = None  # a page may be large: not kept past its list

    def list_all(self, context: Context | None) -> t.Iterator[t.Any]:
        """Every record of the list as plain JSON, whatever it is, outside the record path:
        no schema growth, no rejections, no state (the organizations list, read for the
        tap, which judges each record itself). It may run in the middle of this stream's
        own pass (all_organizations, listing on a pause): that pass's page size stays."""
        own_sizing = self.sizing
        self.sizing = PageSize.for_endpoint(
            self.run.settings.page_size, None, where=f"'{self.name}'"
        )
        paginator: Paginator = open_list(
            None, read_page=self.read_page, page_size=self.sizing.asked
        )
        try:
            for _, response, reading in self.answers(context, paginator):
                yield from careful_read(response).records
                reading.advance(response)
                paginator = reading
        finally:
            self.sizing = own_sizing
        doubt = paginator.verdict()
        if doubt:  # a listing that contradicts itself may lack an organization
            msg = f"the list's answers contradict each other ({doubt})"
            raise errors.APIError(msg)

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

    def get_pages(self, context: Context | None) -> t.Iterator[list[t.Any]]:
        """The stream's pages for one organization, from where the last run stopped.

        Every page's records are written (by the consumer of this generator) before
        its STATE. A pause keeps the resume point; a failure that retrying cannot fix
        ends this stream only (the tap carries on with the others and exits 1).
        """
        partition = self._open_pass(context)
        if partition is not None:
            yield from self._read_pass(context, partition)

    def _open_pass(self, context: Context | None) -> state.Partition | None:
        """The partition to read, opened where the last run left it; None when this
        stream is not read for this organization now (the log says why)."""
        tap = self.run
        configured = (context or {}).get("organization_id", tap.organizations.first)
        skip = tap.organizations.why_skip(configured)
        if skip:
            self.logger.info("Skipping '%s' for organization %s: %s", self.name, configured, skip)
            return None
        self.organization_id = self.configured_organization = configured
        try:
            org = self.organization_id = tap.organizations.numeric(configured)
            if self.scope:  # the token says which scopes the app holds
                self.authenticator.ensure_token()
        except errors.RunPaused as exc:  # the token request met the quota or the budget
            self._pause(exc, f"'{self.name}' stops before its first page")
            return None
        except errors.MokapenError as exc:
            self._failed(exc)
            return None
        if self.scope and self.scope in self.authenticator.refused_scopes:
            self._without_scope()
            return None
        # Keyed as the state partitions are: by the organization as configured.
        partition = state.Partition(
            self.get_context_state(context), tap.organizations.cycle_started_at(configured)
        )
        skip = tap.organizations.why_skip(org)
        if not skip and partition.completed_in_cycle():
            skip = "already synced in this cycle"
        if skip:
            self.logger.info("Skipping '%s' for organization %s: %s", self.name, org, skip)
            return None
        self.versions = self._table_pass(partition, org)
        self._resume_position = partition.open(self.replication_key)
        last_complete = partition.last_complete_pass()
        self._known_pages = last_complete.pages if last_complete else None
        self.sizing = PageSize.for_endpoint(
            tap.settings.page_size,
            partition.page_size(),
            where=f"'{self.name}' of organization {org}",
        )
        return partition

    def _failed(self, error: errors.MokapenError) -> None:
        """This stream failed for the organization being read (run_report.py)."""
        self.run.report.stream_failed(
            self.name,
            self.organization_id,
            error,
            has_token=bool(self.authenticator.access_token),
        )

    def _pause(self, reason: errors.RunPaused, where: str) -> None:
        """The organization's requests pause: its quota or the run's budget is spent."""
        self.run.report.pause(reason, self.organization_id, where)

    def _without_scope(self) -> None:
        """The app lacks the stream's scope: a stream off by default is skipped with a
        warning, any other fails (the others go on)."""
        if not self.selected_by_default:
            # Off by default (an endpoint Mokapen does not document), selected by a
            # wildcard such as Meltano's implicit "*.*": the app was not set up for it.
            self.logger.warning(
                "Skipping '%s': it is off by default, and the app lacks the scope %s. "
                "Enable that scope to read it; in Meltano, `meltano select tap-mokapen "
                "--exclude %s '*'` silences this line",
                self.name,
                self.scope,
                self.name,
            )
            return
        msg = (
            f"'{self.name}' needs the scope {self.scope}, which Mokapen does not enable "
            f"for this app: enable it for the app, or deselect '{self.name}'"
        )
        self._failed(errors.ConfigError(msg))

    def _read_pass(
        self, context: Context | None, partition: state.Partition
    ) -> t.Iterator[list[t.Any]]:
        """Every page of the pass, each followed by its checkpoint; then how it ended:
        paused, failed or complete (state.Partition writes each)."""
        self.progress.begin(self.organization_id)
        sdk_private.set_table_version(self, self.table_version)
        rejected_before = self.stats["rejected"]
        paginator: Paginator | None = None
        restarts = 0
        try:
            for records, held, paginator in self.request_pages(context):
                yield records
                partition.page_read(held, paginator.doubt, restarted=paginator.restarts != restarts)
                restarts = paginator.restarts
                partition.remember_page_size(self.sizing.remembered())
                if self.versions and self.stats["rejected"] > rejected_before:
                    partition.note_rejected()
                if self.page_checkpoints and not paginator.finished:
                    partition.checkpoint(paginator.position())
                    sdk_private.write_state(self)
        except errors.RunPaused as exc:
            paginator = self._paginator
            partition.pause(paginator.position() if paginator else {})
            where = paginator.describe_position() if paginator else "the first page"
            self._pause(exc, f"'{self.name}' stops before {where}")
        except errors.MokapenError as exc:
            paginator = self._paginator
            if self._resume_position and (paginator is None or paginator.count == 0):
                # The server refused the very point this pass resumed at (a stale cursor,
                # say): the next run starts the stream over rather than fail there forever.
                partition.abandon()
            else:
                partition.fail(paginator.position() if paginator else {})
            self._failed(exc)
        else:
            self._complete_pass(partition, paginator)
        finally:
            partition.remember_page_size(self.sizing.remembered())
            self.progress.end(self._paginator)

    def _complete_pass(self, partition: state.Partition, paginator: Paginator | None) -> None:
        """The list ended: the pass counts as complete unless its answers disagreed or it
        holds far fewer records than the last one; a versioned one may retire rows."""
        verdict = paginator.verdict() if paginator else None
        covered = paginator.records_covered() if paginator else None
        read = partition.read
        last_complete = partition.last_complete_pass()
        # Positions, where the shape tells them: re-reads and re-asks count once.
        held = read.records if covered is None else covered
        partition.read = read = read._replace(doubt=read.doubt or verdict, records=held)
        shrunk = self._shrunk(read, last_complete)
        # A versioned pass far smaller is no baseline until the user confirms it.
        partition.finish(keep_bookmark=shrunk, remember_pass=not shrunk)
        self.stats["completed"] = 1
        if self.versions:  # a rejection of any page is noted after that page, above
            organizations = self.run.organizations
            outcome = deletions.PassOutcome(
                self.configured_organization,
                read.doubt,
                read.records,
                last_complete.records if last_complete else None,
            )
            listing_failed = organizations.listing_failure is not None or (
                organizations.listing_paused
            )
            version = self.versions.completed(outcome, partition, listing_failed=listing_failed)
            if version is not None:
                deletions.activate(self, version, self.run.write_message)

    def _shrunk(self, read: state.PassRead, last: state.PassRead | None) -> bool:
        """Whether a pass without a doubt holds far fewer records than the last complete one
        (``max_deleted_share``): the list may have ended early without saying so.

        Such a pass is no baseline for the next: an incremental stream keeps its bookmark
        and a versioned one retires nothing (deletions.py says so) until a pass holds the
        records again or the user confirms with ``max_deleted_share``.
        """
        share = self.run.settings.max_deleted_share
        if read.doubt or last is None or not deletions.far_fewer(read.records, last.records, share):
            return False
        if not self.versioned:
            self.logger.warning(
                "'%s' of organization %s: this pass holds %d records, the last complete one "
                "%d: the bookmark stays where it was, so the next pass emits again whatever "
                "this one may have missed. If that many records were really deleted, run "
                "once with max_deleted_share set to 1 (in Meltano: "
                "TAP_MOKAPEN_MAX_DELETED_SHARE=1)",
                self.name,
                self.organization_id,
                read.records,
                last.records,
            )
        return True

    def _table_pass(
        self, partition: state.Partition, org: int | str
    ) -> deletions.TableVersions | None:
        """A versioned stream's table version for this pass (deletions.py); None otherwise."""
        if not self.versioned:
            deletions.forget(self.stream_state, partition)
            self.table_version = None
            return None
        settings = self.run.settings
        versions = deletions.TableVersions(
            self.name,
            self.stream_state,
            max_deleted_share=settings.max_deleted_share,
            removed_organizations=settings.removed_organizations,
        )
        if self._run_table_version is None:  # one version for every organization of a run
            every = [c["organization_id"] for c in self.partitions or [{"organization_id": org}]]
            organizations = self.run.organizations
            unsure = organizations.listing_failure is not None or organizations.listing_paused
            self._run_table_version = versions.open(every, listing_unsure=unsure)
        self.table_version = self._run_table_version
        if not versions.begin_pass(partition, self.table_version):
            self.logger.info(
                "'%s' of organization %s: the pass to resume began under another table "
                "version; it starts over, so that no record is retired unread",
                self.name,
                org,
            )
            partition.abandon()
        return versions

    def request_pages(
        self, context: Context | None
    ) -> t.Iterator[tuple[list[t.Any], int, Paginator]]:
        """Each page's records fit to emit, the number of records the page held (a repeat
        counts none), and the paginator already advanced past the page."""
        start = self.get_new_paginator()
        if self._resume_position:
            self.logger.info("Resuming '%s' at %s", self.name, start.describe_position())
        with self.get_http_request_counter() as request_counter:
            request_counter.with_context(context)
            for where, response, paginator in self.answers(context, start):
                request_counter.increment()
                # Records of a page share the moment they were extracted.
                self._time_extracted = timestamps.now()
                page = self.read_page(response)
                self.stats["records"] += page.size
                records = self.intake.take(
                    page,
                    # The partition's keys, organization_id numeric whatever the config says.
                    partition={key: self.organization_id for key in context or {}},
                    where=where,
                    organization_id=self.organization_id,
                )
                evolution = self.intake.evolution
                if not evolution.frozen:  # a frozen run learns nothing, and forgets nothing
                    learned, unseen = evolution.learned, evolution.unseen_runs()
                    state.remember_fields(self.stream_state, learned, unseen, evolution.forgotten)
                records = self.newer_only(records, context)
                paginator.advance(response)  # an empty page too: the paginator decides
                # Only now the pass's: a failure before this resumes where the answer was
                # asked, not past it on the strength of a page not yet taken.
                self._paginator = paginator
                held = page.size
                if paginator.repeated_page:
                    records, held = [], 0
                self.stats["emitted"] += len(records)
                self.sizing.served()
                self.progress.page_done(paginator)
                yield records, held, paginator

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

    @override
    @property
    def partitions(self) -> list[dict] | None:
        """One state partition per organization (an organization-scoped stream)."""
        if not self.organization_scoped:
            return None
        return [{"organization_id": org} for org in self.run.organizations.ids]

    def _bookmark(self, context: Context | None) -> str | None:
        key = None if context is None else context.get("organization_id")
        if key not in self._bookmarks:
            start = self.get_starting_timestamp(context)
            self._bookmarks[key] = to_rfc3339(start) if start else None
        return self._bookmarks[key]

    def sample_fields(self) -> int:
        """Grow the schema with the fields of the first organization's first page; the count.

        For ``--discover`` of a declared stream without a packaged schema, so that its
        catalog lists the fields up front. One request (and the token's).
        """
        tap = self.run
        configured = tap.organizations.first
        self.organization_id = tap.organizations.numeric(configured)
        self.sizing = PageSize.for_endpoint(SAMPLE_PAGE_SIZE, None, where=f"'{self.name}'")
        context = {"organization_id": configured}
        records: list[dict[str, t.Any]] = []
        for _, response, _ in self.answers(context, self.get_new_paginator()):
            page = self.read_page(response)  # raw records: fields the schema lacks
            raw = (
                page.raw
                if page.raw is not None
                else map(self.intake.record_type.to_dict, page.data)
            )
            records = [r for r in raw if isinstance(r, dict)]
            break
        evolution = SchemaEvolution(self.name, self.schema, frozen=False, fixed=self.primary_keys)
        # Under the names the sync emits them by (evolution.py renames a few).
        evolution.learn([evolution.rename_fields(record) for record in records])
        added = set(evolution.properties) - set(self.schema["properties"])
        self.schema["properties"].update(evolution.properties)
        return len(added)

    def newer_only(self, records: list[t.Any], context: Context | None) -> list[t.Any]:
        """The records of a page to emit: those not older than the bookmark (Mokapen has
        no filter on updated_at, so every page is read)."""
        bookmark = self._bookmark(context)
        if not bookmark or not self.replication_key:
            return records
        kept = self.intake.record_type.not_older_than(records, self.replication_key, bookmark)
        self.stats["older_than_bookmark"] += len(records) - len(kept)
        return kept
