"""Steps 3 to 7 for one stream and organization: the pass, and where STATE is written.

``MokapenStream.get_pages`` is a stream's whole journey for one organization:
the resume point, the page size and the table version from the state (state.py,
page_size.py, deletions.py), then for each page the request (client.py), the
records shaped (intake.py), the paginator advanced (paging.py), the records
written (output.py, by the consumer of ``get_pages``) and only then a STATE
written, here. A pause leaves its resume token in the state too; that STATE, like
the one at the stream's end, is written when the stream's sync ends
(sdk_private.PageAtATimeSync).
"""

from __future__ import annotations

import typing as t

from typing_extensions import override

from tap_mokapen import deletions, errors, output, sdk_private, state, timestamps
from tap_mokapen.client import MokapenClient
from tap_mokapen.page_size import PageSize
from tap_mokapen.paging import Paginator

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context
    from singer_sdk.singerlib import Catalog

    from tap_mokapen.tap import TapMokapen


class MokapenStream(MokapenClient):
    """A Mokapen list read page by page, resumable at every page."""

    def __init__(self, tap: TapMokapen) -> None:
        super().__init__(tap)
        # detect_deletions: read whole, every RECORD with its pass's version (deletions.py).
        self.versioned = self.name in tap.settings.detect_deletions
        self._full_table_if_versioned()
        self.table_version: int | None = None
        self.versions: deletions.TableVersions | None = None
        #: The organization of the pass being read, as configured (its state partition's key).
        self.configured_organization: int | str = tap.organizations.first
        self._run_table_version: int | None = None
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
        tap = self.mokapen_tap
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
            tap.report.pause(exc, self, f"'{self.name}' stops before its first page")
            return None
        except errors.MokapenError as exc:
            tap.report.stream_failed(self, exc)
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
        self.mokapen_tap.report.stream_failed(self, errors.ConfigError(msg))

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
                    self.versions.note_rejections(partition.data)
                if self.page_checkpoints and not paginator.finished:
                    partition.checkpoint(paginator.position())
                    sdk_private.write_state(self)
        except errors.RunPaused as exc:
            paginator = self._paginator
            partition.pause(paginator.position() if paginator else {})
            where = paginator.describe_position() if paginator else "the first page"
            self.mokapen_tap.report.pause(exc, self, f"'{self.name}' stops before {where}")
        except errors.MokapenError as exc:
            paginator = self._paginator
            if self._resume_position and (paginator is None or paginator.count == 0):
                # The server refused the very point this pass resumed at (a stale cursor,
                # say): the next run starts the stream over rather than fail there forever.
                partition.abandon()
            else:
                partition.fail(paginator.position() if paginator else {})
            self.mokapen_tap.report.stream_failed(self, exc)
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
            organizations = self.mokapen_tap.organizations
            outcome = deletions.PassOutcome(
                self.configured_organization,
                read.doubt,
                read.records,
                last_complete.records if last_complete else None,
            )
            listing_failed = organizations.listing_failure is not None or (
                organizations.listing_paused
            )
            version = self.versions.completed(
                outcome, partition.data, listing_failed=listing_failed
            )
            if version is not None:
                deletions.activate(self, version)

    def _shrunk(self, read: state.PassRead, last: state.PassRead | None) -> bool:
        """Whether a pass without a doubt holds far fewer records than the last complete one
        (``max_deleted_share``): the list may have ended early without saying so.

        Such a pass is no baseline for the next: an incremental stream keeps its bookmark
        and a versioned one retires nothing (deletions.py says so) until a pass holds the
        records again or the user confirms with ``max_deleted_share``.
        """
        share = self.mokapen_tap.settings.max_deleted_share
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
            deletions.forget(self.stream_state, partition.data)
            self.table_version = None
            return None
        settings = self.mokapen_tap.settings
        versions = deletions.TableVersions(
            self.name,
            self.stream_state,
            max_deleted_share=settings.max_deleted_share,
            removed_organizations=settings.removed_organizations,
        )
        if self._run_table_version is None:  # one version for every organization of a run
            every = [c["organization_id"] for c in self.partitions or [{"organization_id": org}]]
            organizations = self.mokapen_tap.organizations
            unsure = organizations.listing_failure is not None or organizations.listing_paused
            self._run_table_version = versions.open(every, listing_unsure=unsure)
        self.table_version = self._run_table_version
        if not versions.begin_pass(partition.data, self.table_version, resuming=partition.resuming):
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
        paginator = self.get_new_paginator()
        if self._resume_position:
            self.logger.info("Resuming '%s' at %s", self.name, paginator.describe_position())
        with self.get_http_request_counter() as request_counter:
            request_counter.with_context(context)
            for where, response in self.answers(context, paginator):
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
                held = page.size
                if paginator.repeated_page:
                    records, held = [], 0
                self.stats["emitted"] += len(records)
                self.sizing.served()
                self.progress.page_done(paginator)
                yield records, held, paginator

    def newer_only(self, records: list[t.Any], context: Context | None) -> list[t.Any]:
        """The records to emit of a page (all of them, unless a stream filters)."""
        return records

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
