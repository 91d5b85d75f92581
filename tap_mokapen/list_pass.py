"""Steps 5 and 6 of the data path, one pass: one stream over one organization's list.

A ListPass holds everything that belongs to one pass and to nothing else: where it
resumed, its paginator, its page size, its table version (deletions.py), its
bookmark, its counts and its doubts; its STATE is its partition's (state.Partition).
It lives from the stream opening it (client.py, ``open_pass``) to its end, and the
stream drives it in the order the data flows::

    for page in list_pass.pages():       # asked, judged, decoded, records shaped
        stream.write_page(page)          # the page's RECORD lines (output.py)
        list_pass.commit(page)           # then, and only then, its checkpoint
    list_pass.complete()                 # or pause(...) / fail(...), then close()

``commit`` is the commit point: a STATE never vouches for records not yet written.
A pause keeps the resume point; a failure that retrying cannot fix ends this
stream for this organization only (the run carries on and exits 1). A complete pass
counts only when its answers agree and it holds about as many records as the last
complete one; a versioned pass may then retire rows (deletions.py).
"""

from __future__ import annotations

import dataclasses
import logging
import typing as t

from tap_mokapen import deletions, errors, state, timestamps
from tap_mokapen.paging import open_list

if t.TYPE_CHECKING:
    from tap_mokapen.intake import RecordIntake
    from tap_mokapen.list_reader import ListReader
    from tap_mokapen.paging import Paginator
    from tap_mokapen.progress import Progress
    from tap_mokapen.run import Run

logger = logging.getLogger("tap-mokapen")


@dataclasses.dataclass
class PassPage:
    """One page of a pass, its records shaped and ready to write."""

    records: list[t.Any]
    #: The list positions the page held (a page the list repeated holds none).
    held: int
    #: When its records were extracted (they share the moment).
    time_extracted: str
    #: The newest replication value among the records to write (the bookmark candidate).
    newest: t.Any = None


@dataclasses.dataclass(frozen=True)
class Organization:
    """The organization a pass reads: as configured (its state partition's key, its
    URLs) and as a number (its records, its token and quota)."""

    configured: int | str
    numeric: int | str


class ListPass:
    """One stream's pass over one organization's list (see the module's docstring)."""

    def __init__(
        self,
        *,
        stream: str,
        organization: Organization,
        partition: state.Partition,
        reader: ListReader,
        intake: RecordIntake,
        run: Run,
        progress: Progress,
        replication_key: str | None,
        bookmark: str | None,
        versions: deletions.TableVersions | None,
        table_version: int | None,
        stream_state: dict[str, t.Any],
        partition_values: dict[str, t.Any],
        checkpoints: bool,
        write_state: t.Callable[[], None],
        activate: t.Callable[[int], None],
        has_token: t.Callable[[], bool],
    ) -> None:
        self.stream = stream
        self.organization = organization
        self.partition = partition
        self.reader = reader
        self.sizing = reader.sizing
        self.intake = intake
        self.run = run
        self.progress = progress
        self.replication_key = replication_key
        self.bookmark = bookmark
        self.versions = versions
        self.table_version = table_version
        self._stream_state = stream_state
        #: The partition's keys set on every record (organization_id, as a number).
        self._partition_values = partition_values
        self._checkpoints = checkpoints
        self._write_state = write_state
        self._activate = activate
        self._has_token = has_token
        #: Where the pass resumes (None: at the first page).
        self.resumed_at = partition.open(replication_key)
        last_complete = partition.last_complete_pass()
        #: The paginator the pass stands on: the first answer may hand over to another.
        self.paginator: Paginator = open_list(
            self.resumed_at,
            page_size=self.sizing.asked,
            # A pass that may retire rows must know a plain list is whole.
            probe_whole_list=versions is not None,
            # The pages of the last complete pass: a budget where answers announce none.
            known_pages=last_complete.pages if last_complete else None,
        )
        #: Where a pause or a failure resumes: after the last page committed (a page read
        #: but not committed is read again), in words for the log line too.
        self._resume_at = self.paginator.position()
        self._resume_described = self.paginator.describe_position()
        self._committed = 0
        self._restarts = 0
        self._rejected_before = progress.stats["rejected"]

    # -- reading ------------------------------------------------------------------------

    def pages(self) -> t.Iterator[PassPage]:
        """Each page of the list, its records shaped and the paginator advanced past it."""
        org = self.organization
        self.progress.begin(org.numeric)
        if self.resumed_at:
            logger.info("Resuming '%s' at %s", self.stream, self.paginator.describe_position())
        stats = self.progress.stats
        for answer, paginator in self.reader.answers(self.paginator):
            time_extracted = timestamps.now()
            page = answer.page
            stats["records"] += page.size
            records = self.intake.take(
                page,
                partition=self._partition_values,
                where=answer.where,
                organization_id=org.numeric,
            )
            self._remember_learned_fields()
            records = self._newer_only(records)
            paginator.advance(page, answer.path)  # an empty page too: the paginator decides
            # Only now the pass's: a failure before this resumes where the answer was
            # asked, not past it on the strength of a page not yet taken.
            self.paginator = paginator
            held = page.size
            if paginator.repeated_page:
                records, held = [], 0
            stats["emitted"] += len(records)
            self.sizing.served()
            self.progress.page_done(paginator)
            newest = None
            if self.replication_key and records:
                newest = self.intake.record_type.newest(records, self.replication_key)
            yield PassPage(records, held, time_extracted, newest)

    def _remember_learned_fields(self) -> None:
        evolution = self.intake.evolution
        if not evolution.frozen:  # a frozen run learns nothing, and forgets nothing
            learned, unseen = evolution.learned, evolution.unseen_runs()
            state.remember_fields(self._stream_state, learned, unseen, evolution.forgotten)

    def _newer_only(self, records: list[t.Any]) -> list[t.Any]:
        """The records of a page to emit: those not older than the bookmark (Mokapen has
        no filter on updated_at, so every page is read)."""
        if not self.bookmark or not self.replication_key:
            return records
        key, bookmark = self.replication_key, self.bookmark
        kept = self.intake.record_type.not_older_than(records, key, bookmark)
        self.progress.stats["older_than_bookmark"] += len(records) - len(kept)
        return kept

    # -- the commit point -----------------------------------------------------------------

    def commit(self, page: PassPage) -> None:
        """The page's records are written: count the page, raise the bookmark candidate,
        and take the checkpoint (STATE) that resumes after it."""
        paginator = self.paginator
        partition = self.partition
        partition.page_read(
            page.held, paginator.doubt, restarted=paginator.restarts != self._restarts
        )
        self._restarts = paginator.restarts
        if self.replication_key and page.newest is not None:
            state.track_bookmark(partition.data, self.replication_key, page.newest)
        partition.remember_page_size(self.sizing.remembered())
        if self.versions and self.progress.stats["rejected"] > self._rejected_before:
            partition.note_rejected()
        self._committed += 1
        if paginator.finished:
            return  # the pass ends: complete() or a failure decides what STATE keeps
        self._resume_at = paginator.position()
        self._resume_described = paginator.describe_position()
        if self._checkpoints:
            partition.checkpoint(self._resume_at)
            self._write_state()

    # -- how the pass ends ----------------------------------------------------------------

    def pause(self, reason: errors.RunPaused) -> None:
        """The organization's quota or the run's budget is spent: resume here next run."""
        self.partition.pause(self._resume_at)
        where = f"'{self.stream}' stops before {self._resume_described}"
        self.run.report.pause(reason, self.organization.numeric, where)

    def fail(self, error: errors.MokapenError) -> None:
        """A failure retrying cannot fix: this stream stops for this organization."""
        if self.resumed_at and not self._committed:
            # The server refused the very point this pass resumed at (a stale cursor,
            # say): the next run starts the stream over rather than fail there forever.
            self.partition.abandon()
        else:
            self.partition.fail(self._resume_at)
        self.run.report.stream_failed(
            self.stream, self.organization.numeric, error, has_token=self._has_token()
        )

    def complete(self) -> None:
        """The list ended: the pass counts as complete unless its answers disagreed or it
        holds far fewer records than the last one; a versioned one may retire rows."""
        verdict = self.paginator.verdict()
        covered = self.paginator.records_covered()
        partition = self.partition
        read = partition.read
        last_complete = partition.last_complete_pass()
        # Positions, where the shape tells them: re-reads and re-asks count once.
        held = read.records if covered is None else covered
        partition.read = read = read._replace(doubt=read.doubt or verdict, records=held)
        shrunk = self._shrunk(read, last_complete)
        # A versioned pass far smaller is no baseline until the user confirms it.
        partition.finish(keep_bookmark=shrunk, remember_pass=not shrunk)
        self.progress.stats["completed"] = 1
        if self.versions:  # a rejection of any page is noted after that page, above
            organizations = self.run.organizations
            outcome = deletions.PassOutcome(
                self.organization.configured,
                read.doubt,
                read.records,
                last_complete.records if last_complete else None,
            )
            listing_failed = organizations.listing_failure is not None or (
                organizations.listing_paused
            )
            version = self.versions.completed(outcome, partition, listing_failed=listing_failed)
            if version is not None:
                self._activate(version)

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
        if self.versions is None:
            logger.warning(
                "'%s' of organization %s: this pass holds %d records, the last complete one "
                "%d: the bookmark stays where it was, so the next pass emits again whatever "
                "this one may have missed. If that many records were really deleted, run "
                "once with max_deleted_share set to 1 (in Meltano: "
                "TAP_MOKAPEN_MAX_DELETED_SHARE=1)",
                self.stream,
                self.organization.numeric,
                read.records,
                last.records,
            )
        return True

    def close(self) -> None:
        """However the pass ended: the page size found is kept, the summary line written."""
        self.partition.remember_page_size(self.sizing.remembered())
        self.progress.end(self.paginator)
