"""The one base stream, MokapenStream: a Mokapen list endpoint as a Singer stream.

Every Mokapen stream is a MokapenStream (streams.py holds one small class each). It
holds the SDK's hooks (the URL, the parameters, the headers, the schema), the
stream's record intake (intake.py) and what lasts the whole run for the stream: its
counters (progress.py) and the table version every organization's pass shares
(deletions.py). What belongs to one pass over one organization's list lives in that
pass (list_pass.py); every list is read by a ListReader (list_reader.py).

For each organization, ``sync_partition`` opens the pass where the last run left it
and drives it page by page: the page's RECORD lines are written (output.py), then
the pass takes its checkpoint (``ListPass.commit``). The SDK's own record loop
(sdk_private.PageAtATimeSync) remains only for what the tap does not cover itself.
"""

from __future__ import annotations

import typing as t
from functools import cached_property
from urllib.parse import urlsplit

import requests
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.streams import RESTStream
from singer_sdk.streams.rest import PageContext
from typing_extensions import override

from tap_mokapen import (
    deletions,
    errors,
    output,
    record_checks,
    retries,
    sdk_private,
    sending,
    state,
    transport,
    verdict,
)
from tap_mokapen.evolution import SchemaEvolution
from tap_mokapen.intake import RecordIntake
from tap_mokapen.list_pass import ListPass, Organization, PassPage
from tap_mokapen.list_reader import ListReader
from tap_mokapen.page_size import PageSize
from tap_mokapen.paging import open_list
from tap_mokapen.progress import Progress
from tap_mokapen.shapes import Page, careful_read
from tap_mokapen.timestamps import to_rfc3339

if t.TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context
    from singer_sdk.singerlib import Catalog, SchemaMessage

    from tap_mokapen.auth import MokapenAuthenticator
    from tap_mokapen.list_reader import Sent
    from tap_mokapen.paging import Params
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
        # detect_deletions: read whole, every RECORD with its pass's version (deletions.py).
        self.versioned = self.name in settings.detect_deletions
        self._full_table_if_versioned()
        #: One table version for every organization of the run (deletions.py).
        self._run_table_version: int | None = None
        #: Whether Mokapen's show route for this list can be trusted (record_checks.py).
        self.show_route = record_checks.ShowRoute(self.name)

    @property
    def stats(self) -> t.Counter[str]:
        return self.progress.stats

    # -- the SDK's request hooks ---------------------------------------------------------

    @override
    @property
    def url_base(self) -> str:
        """The API root: ``{base_url}/api/v1``."""
        return f"{self.run.settings.base_url}/api/v1"

    @override
    @property
    def authenticator(self) -> MokapenAuthenticator:
        """The first configured organization's token, shared with its other streams.

        Each request is sent with the token of the organization whose list is read
        (list_reader.py): the SDK's hook holds one per stream.
        """
        return self.run.organizations.authenticator(self.run.organizations.first)

    @override
    @cached_property
    def user_agent(self) -> str:
        return self.run.user_agent

    @override
    @property
    def timeout(self) -> int:
        return REQUEST_TIMEOUT_SECONDS

    @override
    def get_url_params(
        self, context: Context | None, next_page_token: Params | None
    ) -> dict[str, t.Any]:
        """The paginator's parameters for the next page, ``per_page`` included."""
        return dict(next_page_token or {})

    @override
    def build_prepared_request(self, *args: t.Any, **kwargs: t.Any) -> requests.PreparedRequest:
        """The request with the stream's headers; its token is added as it is sent, the
        token of the organization being read (the SDK would add this stream's one)."""
        request = requests.Request(*args, **kwargs)
        request.headers.setdefault("User-Agent", self.user_agent)
        return self.requests_session.prepare_request(request)

    # -- what a list reader needs of the stream (list_reader.ListSource) -----------------

    def prepare(self, context: Context | None, params: Params) -> requests.PreparedRequest:
        """The request for one page, through the SDK's public request hooks."""
        http_request = self.get_http_request(
            page=PageContext(stream_context=context, next_page_token=params)
        )
        return self.build_prepared_request(
            method=http_request.method,
            url=http_request.url,
            params=http_request.encode_params(),
            headers=http_request.headers,
        )

    def prepare_record(self, context: Context | None, record_id: int) -> requests.PreparedRequest:
        """The request for one record (the show route beside the list's route)."""
        return self.build_prepared_request(
            method="GET", url=f"{self.get_url(context)}/{record_id}", headers=self.http_headers
        )

    def send(
        self,
        request: requests.PreparedRequest,
        context: Context | None,
        authenticator: MokapenAuthenticator,
    ) -> requests.Response:
        response = sdk_private.send(self, request, context, authenticator)
        self.update_sync_costs(request, response, context)
        return response

    def judge(self, response: requests.Response, organization_id: int | str) -> None:
        """Raise what an answer means unless it is a page (verdict.py)."""
        self.run.organizations.first_contact.answered()
        if response.status_code == 429:
            self.stats["http_429"] += 1
        verdict.judge_api_answer(
            response,
            organization_id=organization_id,
            stream=self.name,
            scope=self.scope or "the stream's scope",
        )

    def retrying(
        self, send: sending.Send[Sent], sizing: PageSize, organization_id: int | str
    ) -> sending.Send[Sent]:
        """Wait as long as Mokapen asks, else back off exponentially (retries.py), each
        retry logged and counted, each wait shown by the progress lines."""
        settings = self.run.settings
        first_contact = self.run.organizations.first_contact
        return sending.retried(
            send,
            sizing=sizing,
            max_wait_seconds=settings.max_wait_seconds,
            wait_gen=lambda: retries.wait_generator(
                settings.max_wait_seconds, reached=lambda: first_contact.reached
            ),
            on_retry=lambda details: self._log_retry(details, organization_id),
            jitter=self.backoff_jitter,
            sleep=lambda seconds: self.progress.wait(seconds, "a retry"),
        )

    def listener(self) -> Progress:
        return self.progress

    def _log_retry(self, details: dict[str, t.Any], organization_id: int | str) -> None:
        self.stats["retries"] += 1
        request = (details.get("args") or [None])[0]
        host = urlsplit(getattr(request, "url", "") or "").netloc
        self.logger.info(
            "Retrying %s for '%s' of organization %s in %.1f s (attempt %d): %s",
            host,
            self.name,
            organization_id,
            details.get("wait", 0),
            details.get("tries", 0),
            retries.described(details.get("exception")),
        )

    def list_reader(
        self,
        context: Context | None,
        organization_id: int | str,
        sizing: PageSize,
        *,
        decode: t.Callable[[requests.Response], Page] | None = None,
    ) -> ListReader:
        """A reader of the organization's list (the context's), at ``sizing``."""
        organizations = self.run.organizations
        return ListReader(
            self,
            context=context,
            organization_id=organization_id,
            authenticator=organizations.authenticator(organization_id),
            pacer=organizations.pacer(organization_id),
            sizing=sizing,
            decode=decode or self.intake.read,
        )

    # -- records and schema --------------------------------------------------------------

    @cached_property
    def intake(self) -> RecordIntake:
        """The stream's record type, schema and rejections (built once the catalog is read)."""
        run = self.run
        forget = run.settings.forget_learned_fields
        # A declared stream without a shipped schema has the fields --discover sampled,
        # as the catalog lists them. A shipped schema is the contract: fields a catalog
        # adds to it are learned from the values like any new field, whatever the
        # catalog says of their keys, which nothing here could check.
        entry = run.input_catalog.get_stream(self.name) if run.input_catalog else None
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
            frozen=run.settings.freeze_schema,
            rejections=run.rejections,
            write_schema=self.write_grown_schema,
            stats=self.stats,
            # forget_learned_fields: this run starts from the shipped schema.
            learned={} if forget else state.learned_fields(self.stream_state),
            unseen_runs=state.learned_fields_unseen(self.stream_state),
            forgotten={} if forget else state.forgotten_fields(self.stream_state),
            # Kept even by forget_learned_fields: a column holds one API field for ever.
            given_names=state.output_names(self.stream_state),
            max_learned=run.settings.max_learned_fields,
        )

    def write_grown_schema(self, message: SchemaMessage) -> None:
        """The schema grew (or earlier runs' learned fields came back): written as it is,
        or through the stream maps (aliases, flattening), so that they map, drop or
        flatten the new fields like the others."""
        if sdk_private.maps_unchanged(self):
            self.run.write_message(message)
        else:
            assert self.run.mapper is not None  # maps are made only by the mapper
            sdk_private.remap(self, self.run.mapper, message.schema)

    @property
    @override
    def effective_schema(self) -> dict:
        """What the SDK's loop conforms records to: the schema they were shaped to
        (intake.py), grown during the run; the catalog's would drop every new field."""
        return self.intake.evolution.schema

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

    @override
    @property
    def partitions(self) -> list[dict] | None:
        """One state partition per organization (an organization-scoped stream)."""
        if not self.organization_scoped:
            return None
        return [{"organization_id": org} for org in self.run.organizations.ids]

    # -- a sync: one pass per organization -----------------------------------------------

    def sync_partition(
        self, context: Context | None, count_records: t.Callable[[int], None]
    ) -> None:
        """One organization's pass, from where the last run stopped, page by page: each
        page's records are written, then its checkpoint is taken. The pass ends
        complete, paused or failed (``ListPass.ending``); a failure ends this stream for
        this organization only."""
        list_pass = self.open_pass(context, checkpoints=self.page_checkpoints)
        if list_pass is None:
            return
        with list_pass.ending(), self.get_http_request_counter() as request_counter:
            request_counter.with_context(context)
            for page in list_pass.pages():
                request_counter.increment()
                if page.records:
                    self.write_page(page, list_pass.table_version)
                    count_records(len(page.records))
                list_pass.commit(page)

    def write_page(self, page: PassPage, version: int | None) -> None:
        """A page's RECORD lines: as they are, or through the stream's maps."""
        if sdk_private.maps_unchanged(self):
            output.write_records(self.name, page.records, page.time_extracted, version)
        else:
            to_dict = self.intake.record_type.to_dict
            records = map(to_dict, page.records)
            output.write_mapped(self, records, page.time_extracted, version)
        sdk_private.mark_state_changed(self)

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Records as dicts, for the SDK's own record loop where the tap's does not serve
        (BATCH messages, ``--test``): the SDK writes each record before asking for the
        next, and the pass takes no checkpoint (its end writes the STATE)."""
        list_pass = self.open_pass(context, checkpoints=False)
        if list_pass is None:
            return
        to_dict = self.intake.record_type.to_dict
        with list_pass.ending():
            for page in list_pass.pages():
                yield from map(to_dict, page.records)
                list_pass.commit(page)

    def track_bookmark(self, newest: t.Any, context: Context | None) -> None:
        """Raise the bookmark candidate of the context's state to ``newest`` (state.py)."""
        if self.replication_key:
            state.track_bookmark(self.get_context_state(context), self.replication_key, newest)

    def open_pass(self, context: Context | None, *, checkpoints: bool) -> ListPass | None:
        """The organization's pass, opened where the last run left it; None when this
        stream is not read for this organization now (the log says why)."""
        organizations = self.run.organizations
        configured = (context or {}).get("organization_id", organizations.first)
        skip = organizations.why_skip(configured)
        if skip:
            self._skipped(configured, skip)
            return None
        org = configured
        try:
            org = organizations.numeric(configured)
            if self.scope:  # the token says which scopes the app holds
                organizations.authenticator(org).ensure_token()
        except errors.RunPaused as exc:  # the token request met the quota or the budget
            self.run.report.pause(exc, org, f"'{self.name}' stops before its first page")
            return None
        except errors.MokapenError as exc:
            self._failed(org, exc)
            return None
        if self.scope and self.scope in organizations.authenticator(org).refused_scopes:
            self._without_scope(org)
            return None
        # Keyed as the state partitions are: by the organization as configured.
        partition = state.Partition(
            self.get_context_state(context), organizations.cycle_started_at(configured)
        )
        skip = organizations.why_skip(org)
        if not skip and partition.completed_in_cycle():
            skip = "already synced in this cycle"
        if skip:
            self._skipped(org, skip)
            return None
        versions, table_version = self._table_pass(partition, org)
        sdk_private.set_table_version(self, table_version)
        sizing = PageSize.for_endpoint(
            self.run.settings.page_size,
            partition.page_size(),
            where=f"'{self.name}' of organization {org}",
        )
        start = self.get_starting_timestamp(context) if self.replication_key else None
        return ListPass(
            stream=self.name,
            organization=Organization(configured, org),
            partition=partition,
            reader=self.list_reader(context, org, sizing),
            intake=self.intake,
            run=self.run,
            progress=self.progress,
            replication_key=self.replication_key,
            bookmark=to_rfc3339(start) if start else None,
            versions=versions,
            table_version=table_version,
            stream_state=self.stream_state,
            partition_values={key: org for key in context or {}},
            checkpoints=checkpoints,
            write_state=lambda: sdk_private.write_state(self),
            write_page=lambda page: self.write_page(page, table_version),
            show_route=self.show_route,
            activate=lambda version: deletions.activate(self, version, self.run.write_message),
            has_token=lambda: organizations.has_token(org),
        )

    def _skipped(self, org: int | str, why: str) -> None:
        self.logger.info("Skipping '%s' for organization %s: %s", self.name, org, why)
        if org in self.run.organizations.refused:  # the organization failed as a whole
            self.run.report.stream_stopped(self.name, org)

    def _failed(self, org: int | str, error: errors.MokapenError) -> None:
        """This stream failed for the organization before its pass began (run_report.py)."""
        has_token = self.run.organizations.has_token(org)
        self.run.report.stream_failed(self.name, org, error, has_token=has_token)

    def _without_scope(self, org: int | str) -> None:
        """The app lacks the stream's scope: the stream fails (the others go on). A
        stream off by default never gets here: it is read only when the scope setting
        names its scope (tap.py), and then Mokapen's refusal fails the token request."""
        msg = (
            f"'{self.name}' needs the scope {self.scope}, which Mokapen does not enable "
            f"for this app: enable it for the app, or deselect '{self.name}'"
        )
        self._failed(org, errors.ConfigError(msg))

    def _table_pass(
        self, partition: state.Partition, org: int | str
    ) -> tuple[deletions.TableVersions | None, int | None]:
        """A versioned stream's table versions and this pass's version; None otherwise."""
        if not self.versioned:
            deletions.forget(self.stream_state, partition)
            return None, None
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
        if not versions.begin_pass(partition, self._run_table_version):
            self.logger.info(
                "'%s' of organization %s: the pass to resume began under another table "
                "version; it starts over, so that no record is retired unread",
                self.name,
                org,
            )
            partition.abandon()
        return versions, self._run_table_version

    # -- lists read outside a sync ---------------------------------------------------------

    def list_all(self) -> t.Iterator[t.Any]:
        """Every record of the list as plain JSON, whatever it is, outside the record path:
        no schema growth, no rejections, no state (the organizations list, read for the
        run, which judges each record itself), with the first organization's token."""
        first = self.run.organizations.first
        sizing = PageSize.for_endpoint(self.run.settings.page_size, None, where=f"'{self.name}'")
        reader = self.list_reader(None, first, sizing, decode=careful_read)
        return reader.records(open_list(None, page_size=sizing.asked))

    def first_page(self, context: Context | None) -> tuple[Page, PageSize]:
        """The list's first page at the size a sync would ask (``--plan``), and the page
        size as the request left it (refused sizes lower it)."""
        org = (context or {}).get("organization_id", self.run.organizations.first)
        remembered = state.Partition(self.get_context_state(context), "").page_size()
        sizing = PageSize.for_endpoint(
            self.run.settings.page_size, remembered, where=f"'{self.name}' of organization {org}"
        )
        reader = self.list_reader(context, org, sizing)
        return reader.first_page(open_list(None, page_size=sizing.asked)), sizing

    def sample_fields(self) -> int:
        """Grow the schema with the fields of the first organization's first page; the count.

        For ``--discover`` of a declared stream without a packaged schema, so that its
        catalog lists the fields up front. One request (and the token's).
        """
        organizations = self.run.organizations
        configured = organizations.first
        org = organizations.numeric(configured)
        sizing = PageSize.for_endpoint(SAMPLE_PAGE_SIZE, None, where=f"'{self.name}'")
        reader = self.list_reader({"organization_id": configured}, org, sizing)
        page = reader.first_page(open_list(None, page_size=sizing.asked))
        # Raw records: fields the schema lacks.
        raw = page.raw if page.raw is not None else map(self.intake.record_type.to_dict, page.data)
        records = [r for r in raw if isinstance(r, dict)]
        evolution = SchemaEvolution(self.name, self.schema, frozen=False, fixed=self.primary_keys)
        # Under the names the sync emits them by (evolution.py renames a few).
        evolution.learn([evolution.rename_fields(record) for record in records])
        added = set(evolution.properties) - set(self.schema["properties"])
        self.schema["properties"].update(evolution.properties)
        return len(added)
