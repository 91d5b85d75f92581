"""Steps 5 and 6 of the data path, one pass: one stream over one organization's list.

A ListPass holds everything that belongs to one pass and to nothing else: where it
resumed, its paginator, its page size, its table version (deletions.py), its
bookmark, its counts and its doubts; its STATE is its partition's (state.Partition).
It lives from the stream opening it (client.py, ``open_pass``) to its end, and the
stream drives it in the order the data flows::

    with list_pass.ending():             # complete, or paused, or failed; then closed
        for page in list_pass.pages():   # asked, judged, decoded, records shaped
            stream.write_page(page)      # the page's RECORD lines (output.py)
            list_pass.commit(page)       # then, and only then, its checkpoint

``commit`` is the commit point: a STATE never vouches for records not yet written.
A pause keeps the resume point; a failure that retrying cannot fix ends this
stream for this organization only (the run carries on and exits 1).

A pass knows which records it saw, not only how many positions it read
(evidence.py). It counts as complete only when everything its answers said agrees:

* the paginator's answers agree with each other (paging.py);
* no more of its records were ids it had already read than its own evidence explains
  (positions read again on purpose, a ``total`` that rose, records edited during the
  pass and read again at the front of the list): else the list's order changed
  between requests;
* no record of the last complete pass's sample that it did not see answers at
  Mokapen's show route (record_checks.py): else the list lost live records;
* it holds at least ``1 - max_deleted_share`` of the records of the largest of the
  last few complete passes.

Only then does it move the bookmark, refresh the sample, and let a versioned stream
retire rows (deletions.py). Each pass ends with a receipt: one line and a METRIC
saying what it read and why it counts or not (docs/completeness.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import random
import typing as t

from tap_mokapen import deletions, errors, record_checks, state, timestamps
from tap_mokapen.config import DEFAULT_MAX_DELETED_SHARE
from tap_mokapen.evidence import IdSample, SeenIds, decode_ids, encode_ids, record_id
from tap_mokapen.paging import believed, open_list
from tap_mokapen.shapes import Page

if t.TYPE_CHECKING:
    from tap_mokapen.intake import RecordIntake
    from tap_mokapen.list_reader import ListReader
    from tap_mokapen.paging import Paginator
    from tap_mokapen.progress import Progress
    from tap_mokapen.run import Run

logger = logging.getLogger("tap-mokapen")
metrics = logging.getLogger("singer_sdk.metrics")

#: Pages read again at the front of a list, at most, for records edited during a pass.
MAX_CATCH_UP_PAGES = 5


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
        write_page: t.Callable[[PassPage], None],
        activate: t.Callable[[int], None],
        has_token: t.Callable[[], bool],
        show_route: record_checks.ShowRoute,
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
        self._write_page = write_page
        self._activate = activate
        self._has_token = has_token
        self._show_route = show_route
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
            unannounced_pages=run.settings.max_unannounced_pages,
        )
        #: Where a pause or a failure resumes: after the last page committed (a page read
        #: but not committed is read again), in words for the log line too.
        self._resume_at = self.paginator.position()
        self._resume_described = self.paginator.describe_position()
        self._committed = 0
        self._restarts = 0
        #: The pass started over in this run (an expired cursor), and whether that was said.
        self._started_over = False
        self._share_said = False
        self._rejected_before = progress.stats["rejected"]
        self._requests_before = progress.stats["requests"]
        #: Whether a pass over this partition completed before this one began.
        self.read_before = partition.was_read_before()
        #: A doubt of the runs before this one (the pass resumed with it).
        self._doubt_before = partition.read.doubt
        self._open_evidence()
        #: Why the pass counts or not, for its receipt (set as it ends).
        self._ending = "stopped"
        self._checks = record_checks.CheckOutcome()
        self._caught_up = 0
        #: Counted by settling a total that over-counts: its version is never activated
        #: and it activates none (deletions.PassOutcome.settled).
        self._settled = False
        #: Ids of records the show route answered live, which the pass emitted.
        self._emitted_live: list[int] = []

    # -- what the pass saw, by id (evidence.py) ------------------------------------------

    def _open_evidence(self) -> None:
        """The ids this pass saw in earlier runs (as the resume point keeps them), and the
        sample of the last complete pass to compare with."""
        #: Organization-scoped lists only: the organizations list is read whole each run.
        self.by_id = bool(self._partition_values)
        self.previous_sample = IdSample.from_state(self.partition.id_sample())
        before = self.partition.seen_so_far() if self.resumed_at else None
        before = before if isinstance(before, dict) else {}
        salt = self.previous_sample.salt if self.previous_sample else None
        resumed_sample = IdSample.from_state(before.get("sample"))
        if salt is None and resumed_sample is not None:
            salt = resumed_sample.salt
        #: A sample of this pass's ids, for the pass after it (same salt: comparable).
        self.sample = IdSample(salt or IdSample.fresh().salt)
        if resumed_sample is not None and resumed_sample.salt == self.sample.salt:
            self.sample.offer(resumed_sample.ids)
        self.seen = SeenIds()
        self._distinct_before = _count(before.get("distinct"))
        self._repeats_before = _count(before.get("repeats"))
        #: The ids of that sample (IdSample.ids builds a new set each time it is read).
        self._previous_ids = previous = (
            self.previous_sample.ids if self.previous_sample else frozenset()
        )
        self._sampled_seen = set(decode_ids(before.get("sampled_seen"))) & previous
        self._sampled_seen_text: str | None = None
        self._first_total: int | None = None
        self._last_total: int | None = None
        self._total_rise = 0

    def _saw(self, records: list[t.Any], page: Page) -> None:
        """Count a page's records by id, and what its total says."""
        total = believed(page.total)
        if total is not None:
            if self._first_total is None:
                self._first_total = total
            elif self._last_total is not None and total > self._last_total:
                self._total_rise += total - self._last_total  # inserted: shifts records back
            self._last_total = total
        if not self.by_id:
            return
        new = self.seen.add(map(record_id, records))
        self.sample.offer(new)
        if self._previous_ids:
            sampled = self._previous_ids.intersection(new)
            if sampled:
                self._sampled_seen |= sampled
                self._sampled_seen_text = None

    def _evidence(self) -> dict[str, t.Any] | None:
        """What the pass saw by id so far, as the resume point keeps it (bounded)."""
        if not self.by_id:
            return None
        return {
            "distinct": self.distinct,
            "repeats": self._repeats_before + self.seen.repeats,
            "sample": self.sample.to_state(),
            "sampled_seen": self._sampled_seen_encoded(),
        }

    def _sampled_seen_encoded(self) -> str:
        if self._sampled_seen_text is None:
            self._sampled_seen_text = encode_ids(self._sampled_seen)
        return self._sampled_seen_text

    @property
    def distinct(self) -> int:
        """Distinct ids the pass saw (over its runs: an id read in two runs counts twice)."""
        return self._distinct_before + len(self.seen)

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
            paginator.advance(page, answer.path)  # an empty page too: the paginator decides
            # Only now the pass's: a failure before this resumes where the answer was
            # asked, not past it on the strength of a page not yet taken.
            self.paginator = paginator
            held = page.size
            if paginator.repeated_page:
                records, held = [], 0
            self._saw(records, page)
            records = self._newer_only(records)
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
            state.remember_fields(
                self._stream_state, learned, unseen, evolution.forgotten, evolution.given_names
            )

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
        restarted = paginator.restarts != self._restarts
        partition.page_read(page.held, paginator.doubt, restarted=restarted)
        self._restarts = paginator.restarts
        self._started_over = self._started_over or restarted
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
            partition.checkpoint(self._resume_at, self._evidence())
            self._write_state()
        if self._started_over:
            self._hold_to_a_share()

    def _hold_to_a_share(self) -> None:
        """A pass that started over (its cursor expired) under a run budget too small for
        a whole pass would spend every run on the same first pages, and the streams after
        it nothing: it says so once, with the numbers, and stops at its share of the
        budget so that the others get theirs; it goes on next run."""
        budget = self.run.settings.max_requests_per_run
        streams = self.run.selected_streams
        if not budget:
            return
        used = self.progress.stats["requests"] - self._requests_before
        share = max(1, budget // max(1, streams))
        last = self.partition.last_complete_pass()
        need = last.pages if last and last.pages else None
        if not self._share_said and (need is None or need > budget):
            self._share_said = True
            logger.warning(
                "'%s' of organization %s: its cursor expired and the pass starts over, but "
                "it needs %s requests and max_requests_per_run allows %d a run: it completes "
                "only with max_requests_per_run of %s or more (or runs close enough together "
                "for its cursor to last). Until then it takes %d requests a run, its share "
                "of %d selected streams, and the others theirs",
                self.stream,
                self.organization.numeric,
                f"about {need}" if need else "an unknown number of",
                budget,
                need or "more",
                share,
                streams,
            )
        cannot_complete = need is None or need > budget
        if cannot_complete and streams > 1 and used >= share:
            msg = f"its share of max_requests_per_run ({share} of {budget}) is spent"
            raise errors.PassBudgetSpent(msg)

    # -- how the pass ends ----------------------------------------------------------------

    @contextlib.contextmanager
    def ending(self) -> t.Iterator[None]:
        """Around the reading of the pass: complete when it reads to the end; paused when
        the quota or the run's budget stops it; failed when retrying cannot fix what
        stopped it; then closed, however it ended."""
        try:
            yield
            # Inside the handlers: the checks at its end send requests too, and the quota
            # or the budget may stop them (the pass then resumes at its last page).
            self.complete()
        except errors.RunPaused as exc:
            self.pause(exc)
        except errors.MokapenError as exc:
            self.fail(exc)
        finally:
            self.close()

    def pause(self, reason: errors.RunPaused) -> None:
        """The organization's quota or the run's budget is spent: resume here next run."""
        self.partition.pause(self._resume_at, self._evidence())
        # What it emitted is not all at hand for the pass that ends it: no settling on it.
        self.partition.keep_ids_at_risk(None)
        self._ending = "paused: resumes next run"
        if isinstance(reason, errors.PassBudgetSpent):  # this list only: the others go on
            logger.warning(
                "'%s' of organization %s: %s; the next run goes on from %s",
                self.stream,
                self.organization.numeric,
                reason.reason,
                self._resume_described,
            )
            return
        where = f"'{self.stream}' stops before {self._resume_described}"
        self.run.report.pause(reason, self.organization.numeric, where)

    def fail(self, error: errors.MokapenError) -> None:
        """A failure retrying cannot fix: this stream stops for this organization."""
        self.partition.keep_ids_at_risk(None)  # as pause() says
        if self.resumed_at and not self._committed:
            # The server refused the very point this pass resumed at (a stale cursor,
            # say): the next run starts the stream over rather than fail there forever.
            self.partition.abandon()
        else:
            self.partition.fail(self._resume_at, self._evidence())
        self._ending = "failed: resumes next run"
        self.run.report.stream_failed(
            self.stream, self.organization.numeric, error, has_token=self._has_token()
        )

    def complete(self) -> None:
        """The list ended: the pass counts as complete only when everything its answers
        said agrees (see the module's docstring); a versioned one may retire rows."""
        verdict = self.paginator.verdict()
        covered = self.paginator.records_covered()
        partition = self.partition
        read = partition.read
        # Positions, where the shape tells them: re-reads and re-asks count once.
        held = read.records if covered is None else covered
        doubt = read.doubt or verdict
        if self.by_id and held and not len(self.seen) and not self._distinct_before:
            logger.warning(
                "'%s' of organization %s: no record has a positive integer id, so this pass "
                "is judged by its counts alone (no check by id)",
                self.stream,
                self.organization.numeric,
            )
        if not doubt and (doubt := self._order_doubt()):
            self._say_incomplete(doubt)
        ends_early = self._ends_before_its_total(doubt)
        settled = False
        if ends_early and doubt:
            # The records decide whether the total over-counts or the list was cut.
            if not (why := self._settle(doubt)):
                settled, doubt = True, None
                held = min(held, len(self.seen))  # positions past the end held nothing
            elif why != doubt:
                doubt = why
                self._say_incomplete(doubt)
        partition.read = read = read._replace(doubt=doubt, records=held)
        baseline = partition.baseline()
        shrunk = self._shrunk(read, baseline)
        # Only a pass that would count asks Mokapen (a pass that counts for nothing
        # spends no request on proving so).
        if not (doubt or shrunk or settled) and self.by_id:
            if doubt := self._ask_about_missing():
                self._say_incomplete(doubt)
            partition.read = read = read._replace(doubt=doubt)
        # A pass far smaller that the user confirmed (one run with max_deleted_share 1):
        # the history of larger passes it would be held to from now on is forgotten. A
        # share merely raised keeps the history: drop after drop is still held to it.
        confirmed_drop = (
            self.run.settings.max_deleted_share >= 1
            and bool(baseline)
            and deletions.far_fewer(read.records, baseline, DEFAULT_MAX_DELETED_SHARE)
        )
        partition.finish(
            # A settled pass keeps the bookmark: what it did not read was verified gone
            # only among the records read before; a record new in a cut part is not.
            keep_bookmark=shrunk or settled,
            remember_pass=not shrunk,
            restart_history=confirmed_drop and not shrunk,
        )
        counts = not (doubt or shrunk)
        if self.by_id and counts and not settled:
            # A settle asked about the ids at risk only: the next pass is held to the
            # sample of the last pass that counted by its answers.
            partition.keep_id_sample(self.sample.to_state())
        self._keep_ids_at_risk(ends_early=ends_early, counts=counts, settled=settled)
        why_not = None if counts else (doubt or "far fewer records than the passes before")
        if partition.note_outcome(why_not) >= state.STANDING_PASSES:
            self._say_standing(why_not or "")
        self.progress.stats["completed"] = 1
        self._ending = "complete" if counts else f"incomplete: {doubt or 'far fewer records'}"
        if self.versions:  # a rejection of any page is noted after that page, above
            organizations = self.run.organizations
            outcome = deletions.PassOutcome(
                self.organization.configured,
                read.doubt,
                read.records,
                baseline,
                baseline_missing=baseline is None and self.read_before,
                settled=self._settled,
            )
            listing_failed = organizations.listing_failure is not None or (
                organizations.listing_paused
            )
            version = self.versions.completed(
                outcome,
                partition,
                listing_failed=listing_failed,
                installed=lambda: organizations.installed,
            )
            if version is not None:
                self._activate(version)

    def _say_standing(self, doubt: str) -> None:
        """A list whose passes keep ending incomplete: named plainly, and in the run's end."""
        passes = self.partition.incomplete_passes()
        logger.warning(
            "'%s' of organization %s: no pass has counted for %d passes in a row (%s). "
            "Until one does, no row is retired and the bookmark does not move: every "
            "record is still emitted. Check the endpoint's answers (the receipts say what "
            "each pass read), or run once with max_deleted_share 1 if the records are "
            "really gone",
            self.stream,
            self.organization.numeric,
            passes,
            doubt,
        )
        self.run.report.standing(self.stream, self.organization.numeric, passes, doubt)

    def _say_incomplete(self, doubt: str) -> None:
        logger.warning(
            "'%s' of organization %s: %s: this pass is incomplete, so it retires no row and "
            "keeps the bookmark",
            self.stream,
            self.organization.numeric,
            doubt,
        )

    def _order_doubt(self) -> str | None:
        """An unstable order, when more records were ids already read than the pass's own
        evidence explains; records edited during the pass, read again at the front of
        the list where it is ordered by last update, explain theirs."""
        if not self.by_id:
            return None
        explained = self.paginator.reread_positions + self._total_rise
        tolerance = max(1, self.distinct // 1000)
        if self.seen.repeats <= explained + tolerance:
            return None
        try:
            self._caught_up = self._catch_up()
        except errors.MokapenError as exc:  # the order's doubt stands; the run goes on
            logger.warning(
                "'%s': the front of the list could not be read again: %s", self.stream, exc
            )
        explained += self._caught_up
        if self.seen.repeats <= explained + tolerance:
            return None
        return (
            f"an unstable order: {self.seen.repeats} of the records read were ids this pass "
            f"had already read, {explained} explained (positions read again, a total that "
            f"rose, records edited during the pass): the list's order changed between "
            f"requests, so some records were never read"
        )

    def _catch_up(self) -> int:
        """Read the front of the list again for records edited during the pass (a list
        ordered by last update moves them behind the reader); write those not read yet.
        Stops at the first page holding a record older than the pass."""
        # With the margin a bookmark keeps for clocks that disagree (Mokapen's, this one).
        started = state.bookmark_cap(self.partition.pass_started())
        front = open_list(None, page_size=self.sizing.asked)
        caught = 0
        for pages, (answer, paginator) in enumerate(self.reader.answers(front), start=1):
            records = self._take(answer.page, answer.where)
            paginator.advance(answer.page, answer.path)
            edited = [r for r in records if (self._updated(r) or "") >= started]
            new = [r for r in edited if record_id(r) not in self.seen]
            if new:
                self._write_page(PassPage(new, 0, timestamps.now()))
                self._saw(new, Page("list", []))
                caught += len(new)
            if len(edited) < len(records) or not records or pages >= MAX_CATCH_UP_PAGES:
                break
        if caught:
            logger.info(
                "'%s' of organization %s: %d record(s) edited during the pass were read "
                "again at the front of the list",
                self.stream,
                self.organization.numeric,
                caught,
            )
        return caught

    def _sampled_missing(self) -> int:
        """Ids of the last complete pass's sample this pass did not see."""
        return len(self._previous_ids - self._sampled_seen)

    def _ends_before_its_total(self, doubt: str | None) -> bool:
        """Whether all this pass doubted is its list ending before its total said
        (over-counted, or cut short), read in this run alone (its ids all at hand)."""
        return bool(
            doubt
            and self.by_id
            and not self.resumed_at
            and self._doubt_before is None
            and self.paginator.only_total_over_counts()
        )

    def _settle(self, doubt: str) -> str | None:
        """None when the records show that the list's total over-counts: every id the
        passes since the last that counted emitted (the ids at risk, all of them) is
        read by this pass or gone at Mokapen's show route, the route proven now on an
        id this list holds, and no id past the end is live. Else why the doubt stands
        (``doubt`` itself when there is nothing to ask with)."""
        at_risk = self.partition.ids_at_risk()
        listed = self.seen.listed
        if at_risk is None or listed is None or self.seen.untracked:
            return doubt
        missing = sorted(at_risk.difference(listed))
        rng = random.Random()  # noqa: S311 - which ids to ask first, not a secret
        probed = record_checks.probes(self.seen, rng)
        budget = self.run.settings.max_record_checks
        if 1 + len(missing) + len(probed) > budget:
            return (
                f"{doubt}; {len(missing)} records the passes before emitted are missing "
                f"from it, more than max_record_checks ({budget}) can ask about"
            )
        outcome = self._check(missing, probed, prove_route=True)
        if isinstance(outcome, str):
            return f"{doubt}; {outcome}"
        if outcome.live:
            ids = self._emit_live(outcome.live)
            return f"{doubt}; record(s) {ids}, live at Mokapen, are missing from the list"
        if outcome.unconfirmed or len(outcome.gone) < len(missing):
            return f"{doubt}; the records it did not see could not all be confirmed gone"
        self._settled = True
        logger.warning(
            "'%s' of organization %s: its total over-counts (%s): the list ends at %d "
            "records, and each of the %d records the passes before emitted that this one "
            "did not read is gone at Mokapen, and no id past the end is live: the pass "
            "counts as complete (it retires nothing: deletions wait for passes whose "
            "answers agree)",
            self.stream,
            self.organization.numeric,
            doubt,
            len(self.seen),
            len(missing),
        )
        return None

    def _keep_ids_at_risk(self, *, ends_early: bool, counts: bool, settled: bool) -> None:
        """The ids at risk after this pass: a pass that counted by its answers ends them
        (its evidence holds on its own); a settled pass starts them anew from what it
        read; a pass whose list ended early starts them or adds what it read; any other
        keeps them growing, or drops them when its ids are not all at hand."""
        partition = self.partition
        # The ids it read, and the records the show route answered live, which it emitted.
        listed = None if self.seen.listed is None else [*self.seen.listed, *self._emitted_live]
        kept = partition.ids_at_risk()
        if (counts and not settled) or listed is None or self.resumed_at or self.seen.untracked:
            partition.keep_ids_at_risk(None)
        elif settled or (kept is None and ends_early):
            partition.keep_ids_at_risk(frozenset(listed))
        elif kept is not None:
            partition.keep_ids_at_risk(kept.union(listed))

    def _ask_about_missing(self) -> str | None:
        """Ask Mokapen about the sampled ids of the last complete pass this pass did not
        see (or, without a sample, about a few ids it did not see); a doubt when one of
        them is live. Live records found are written."""
        previous = self.previous_sample
        seen = self.seen
        # In a random order: where the budget ends, those asked are a sample of them.
        rng = random.Random()  # noqa: S311 - which ids to ask first, not a secret
        missing = sorted(self._previous_ids - self._sampled_seen)
        rng.shuffle(missing)
        # Without a sample, probes: only where earlier passes were read but left none (the
        # first pass after an upgrade), and for a pass read in one run (the ids of
        # earlier runs are not at hand). A first pass retires nothing and asks nothing.
        upgraded = previous is None and self.read_before
        probed = record_checks.probes(seen, rng) if upgraded and not self.resumed_at else []
        outcome = self._check(missing, probed)
        if isinstance(outcome, str):
            return outcome
        if not outcome.live:
            return None
        ids = self._emit_live(outcome.live)
        what = "the last complete pass held" if missing else "lie outside what the list held"
        return (
            f"record(s) {ids}, which {what} and this pass did not see, are live at "
            "Mokapen: the list lost records"
        )

    def _check(
        self, missing: list[int], probed: list[int], *, prove_route: bool = False
    ) -> record_checks.CheckOutcome | str:
        """The show route's answers about ``missing`` and ``probed`` (record_checks.py),
        or why it could not be asked."""
        try:
            self._checks = record_checks.check(
                self.reader,
                self._show_route,
                missing=missing,
                probed=probed,
                proof=self.seen.high,
                budget=self.run.settings.max_record_checks,
                prove_route=prove_route,
            )
        except errors.MokapenError as exc:
            # The route failing (5xx past max_wait_seconds, a 403) is no reason to stop
            # the run: this pass cannot be confirmed, the next ones judge by counts.
            self._show_route.failed(f"failed ({exc})")
            return f"the records it did not see could not be asked about ({exc})"
        return self._checks

    def _emit_live(self, live: list[dict[str, t.Any]]) -> str:
        """Write the records the show route answered live (the list lost them); their
        first ids, for the line that says so."""
        self._emitted_live += [i for i in map(record_id, live) if i is not None]
        found: list[t.Any] = []
        for record in live:
            found += self._take(Page("list", [], raw=[record]), "the single-record route")
        if found:
            self._write_page(PassPage(found, 0, timestamps.now()))
        return ", ".join(str(record_id(r)) for r in live[:5])

    def _updated(self, record: t.Any) -> str | None:
        """A record's ``updated_at`` (canonical text, which compares as time), if any."""
        attribute = self.intake.record_type.attributes.get("updated_at")
        value = getattr(record, attribute, None) if attribute else None
        return value if isinstance(value, str) else None

    def _take(self, page: Page, where: str) -> list[t.Any]:
        return self.intake.take(
            page,
            partition=self._partition_values,
            where=where,
            organization_id=self.organization.numeric,
        )

    def _shrunk(self, read: state.PassRead, baseline: int | None) -> bool:
        """Whether a pass without a doubt holds far fewer records than the largest of the
        last few complete passes (``max_deleted_share``): the list may have ended early
        without saying so.

        Such a pass is no baseline for the next: an incremental stream keeps its bookmark
        and a versioned one retires nothing (deletions.py says so) until a pass holds the
        records again or the user confirms with ``max_deleted_share``.
        """
        share = self.run.settings.max_deleted_share
        if read.doubt or baseline is None or not deletions.far_fewer(read.records, baseline, share):
            return False
        if self.versions is None:
            logger.warning(
                "'%s' of organization %s: this pass holds %d records, the last complete one "
                "%d (the most of the last few): the bookmark stays where it was, so the next "
                "pass emits again whatever this one may have missed. If that many records "
                "were really deleted, run once with max_deleted_share set to 1 (in Meltano: "
                "TAP_MOKAPEN_MAX_DELETED_SHARE=1)",
                self.stream,
                self.organization.numeric,
                read.records,
                baseline,
            )
        return True

    def close(self) -> None:
        """However the pass ended: the page size found is kept, the summary line and the
        pass's receipt written."""
        self.partition.remember_page_size(self.sizing.remembered())
        self.progress.end(self.paginator)
        self._receipt()

    def _receipt(self) -> None:
        """One line and a METRIC: what the pass read, and why it counts or not."""
        read, checks = self.partition.read, self._checks
        _, pages_all = self.paginator.pages()
        requests = self.progress.stats["requests"] - self._requests_before
        facts: dict[str, t.Any] = {
            "records": read.records,
            "distinct_ids": self.distinct if self.by_id else None,
            "repeated_ids": self._repeats_before + self.seen.repeats if self.by_id else None,
            "total_first": self._first_total,
            "total_last": self._last_total,
            "pages": read.pages,
            "requests": requests,
            "pages_announced": pages_all,
            "caught_up": self._caught_up,
            "sampled_missing": self._sampled_missing() if self.by_id else None,
            "checked": checks.asked,
            "confirmed_deleted": len(checks.gone),
            "found_live": len(checks.live),
        }
        shown = ", ".join(f"{k} {v}" for k, v in facts.items() if v is not None)
        logger.info(
            "Receipt of '%s' for organization %s: %s; %s",
            self.stream,
            self.organization.numeric,
            self._ending,
            shown,
        )
        tags = {"stream": self.stream, "organization_id": self.organization.numeric}
        point = {
            "type": "counter",
            "metric": "pass_receipt",
            "value": read.records,
            "tags": {**tags, "outcome": self._ending.split(":")[0], **facts},
        }
        metrics.info("METRIC: %s", json.dumps(point))


def _count(value: t.Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
