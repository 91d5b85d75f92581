"""Step 6 of the data path, the state: bookmarks, page checkpoints, cycles, resume tokens.

This module decides what STATE holds; the pass (list_pass.py) decides when it
is written: after the records of every page, and once more at the end of each
stream. The format of one stream's state, or of one organization's partition of
it, besides the SDK's own ``replication_key``/``replication_key_value``::

    "resume": {                            # only while a pass over the stream is unfinished
        "cycle_started_at": "...Z",        # the cycle this pass belongs to
        "max_seen": "...Z",                # newest replication value emitted so far
        "failed": true,                    # the pass failed: it resumes, its cycle goes on
        "records_read": 1200,              # what the pass read so far, over all its runs
        "pages_read": 12,
        "doubt": "...",                    # what contradicted what, if anything did
        "seen": {"distinct": 1190,         # what the pass saw by id so far (evidence.py):
                 "repeats": 10,            #   distinct ids, ids read again, the new
                 "sample": {...},          #   sample being built, and which ids of
                 "sampled_seen": "..."},   #   the last pass's sample it saw
        ...                                # the paginator's resume token (paging.py),
    },                                     #   e.g. "next_page", "total", "per_page"
    "cycle_completed": "...Z",             # the last cycle that read the stream to the end
    "last_complete_pass": {"records": 1900,  # what the last pass that the answers agreed
                           "pages": 19,      #   on read (deletions.py, paging budgets),
                           "recent": [...]}, #   and the records of the last few such passes
    "id_sample": {"salt": "...",           # a random sample of the ids of the last
                  "ids": "1.a.2s"},        #   complete, confirmed pass (evidence.py)
    "incomplete_passes": {"count": 3,      # passes in a row that did not count, and why
                          "doubt": "..."},  #   the last did not
    "page_size": {"largest": 100,          # the largest page the server honoured
                  "checked_at": "...Z",    #   (page_size.py), and when and how that
                  "how": "refused"},       #   was found
    "progress_markers": {...}              # the SDK's bookmark candidate, during a run only
    "table_pass": {"version": ...,         # detect_deletions: the table version this
                   "rejected": false}      #   organization's pass is under (deletions.py)

and, at the stream's level, ``"learned_fields"`` with ``"learned_fields_unseen_runs"``,
``"learned_fields_forgotten"`` and ``"output_names"`` (evolution.py) and, for a stream
in detect_deletions, ``"table_version"``, the pass's open version (deletions.py).

A pass that reached the list's end but whose answers contradicted each other
(paging.py) is *incomplete*: it ends its cycle, but the bookmark stays where it
was, so the next pass emits again everything it may have missed.

A *cycle* is one complete pass over every selected stream, possibly spread over
several runs when the quota or ``max_requests_per_run`` stops them early. While a
cycle is unfinished, streams it already completed are skipped, so a small daily
quota is never spent re-reading them (a stream late in the order would otherwise
starve). Each organization has cycles of its own. Bookmarks never pass the cycle's
start, minus a margin for clock skew between Mokapen and this machine: anything
changed after that is read again by the next cycle.
"""

from __future__ import annotations

import datetime as dt
import typing as t

from tap_mokapen import timestamps
from tap_mokapen.evidence import LISTED_IDS, decode_ids, encode_ids
from tap_mokapen.timestamps import to_rfc3339

RESUME = "resume"
CYCLE_STARTED_AT = "cycle_started_at"
MAX_SEEN = "max_seen"
FAILED = "failed"
LEARNED_FIELDS = "learned_fields"
LEARNED_FIELDS_UNSEEN = "learned_fields_unseen_runs"
LEARNED_FIELDS_FORGOTTEN = "learned_fields_forgotten"
OUTPUT_NAMES = "output_names"
PAGE_SIZE = "page_size"
TABLE_PASS = "table_pass"  # noqa: S105 - a state key, not a password
CYCLE_COMPLETED = "cycle_completed"
PROGRESS_MARKERS = "progress_markers"
RECORDS_READ = "records_read"
PAGES_READ = "pages_read"
DOUBT = "doubt"
#: The longest doubt kept: enough to say what contradicted what.
MAX_DOUBT = 500
LAST_COMPLETE_PASS = "last_complete_pass"  # noqa: S105 - a state key, not a password
ID_SAMPLE = "id_sample"
#: Every id the passes since the last one that counted emitted, while a list ends before
#: its total says (list_pass.py settles such a total against them): {"ids": encoded,
#: "count": n}.
IDS_AT_RISK = "ids_at_risk"
INCOMPLETE_PASSES = "incomplete_passes"
#: Incomplete passes in a row after which a list is named as one that never completes.
STANDING_PASSES = 3
SEEN = "seen"
#: Complete passes whose record counts the guard remembers (the baseline is the largest).
RECENT_PASSES = 5
#: A remembered count more than this many times the last pass's is not believed.
MAX_HISTORY_FACTOR = 10
#: The largest count a STATE may hold (JSON's exact integers).
MAX_COUNT = 2**53
BOOKMARK_SAFETY_MARGIN = dt.timedelta(minutes=5)
NOTE = "Bookmark candidates; the run resumes from 'resume', not from these."

StreamState = dict[str, t.Any]


def stream_states(tap_state: t.Mapping[str, t.Any]) -> t.Iterator[StreamState]:
    """Every stream-level and partition-level state dict in a tap state."""
    for stream_state in tap_state.get("bookmarks", {}).values():
        yield stream_state
        yield from stream_state.get("partitions", [])


#: What says how far a stream was read: forgotten to read it again from its start.
POSITION_KEYS = (
    "replication_key",
    "replication_key_value",
    PROGRESS_MARKERS,
    RESUME,
    CYCLE_COMPLETED,
)


def forget_position(stream_state: StreamState) -> int:
    """Make a stream read from its start again (``--resync``), in place; the number of
    partitions (organizations) that had a position.

    Only the position goes: learned fields keep their column types, the page size
    and the deletions' baseline and table version stay (a re-read pass is a pass
    like any other)."""
    forgotten = 0
    partitions = stream_state.get("partitions")
    partitions = partitions if isinstance(partitions, list) else []
    parts = [stream_state, *[p for p in partitions if isinstance(p, dict)]]
    for part in parts:
        had = [key for key in POSITION_KEYS if key in part]
        for key in had:
            del part[key]
        forgotten += bool(had)
    return forgotten


def repair(tap_state: t.MutableMapping[str, t.Any], now: str) -> list[str]:
    """Make a STATE from elsewhere safe to use, in place; one phrase per part repaired.

    A malformed resume point is dropped (that stream is read from its start: a
    duplicate or two, never a gap); a bookmark that is not a timestamp is dropped
    (a full read); one in the future is capped at ``now``, since it would otherwise
    filter out every record for ever.
    """
    problems: list[str] = []
    bookmarks = tap_state.get("bookmarks")
    if bookmarks is None:
        return problems
    if not isinstance(bookmarks, dict):
        tap_state["bookmarks"] = {}
        return ["'bookmarks' is not an object: ignored, every stream is read in full"]
    for name, stream_state in list(bookmarks.items()):
        if not isinstance(stream_state, dict):
            del bookmarks[name]
            problems.append(f"the state of '{name}' is not an object: ignored")
            continue
        partitions = stream_state.get("partitions", [])
        if not isinstance(partitions, list):
            stream_state["partitions"] = partitions = []
            problems.append(f"'{name}' partitions are not a list: ignored")
        kept, contexts = [], []
        for part in partitions:
            context = part.get("context") if isinstance(part, dict) else None
            if not isinstance(context, dict) or context in contexts:
                problems.append(f"'{name}': a partition without a context of its own: ignored")
                continue
            contexts.append(context)
            kept.append(part)
        if len(kept) != len(partitions):
            stream_state["partitions"] = kept
        for part in [stream_state, *kept]:
            where = f"'{name}'" + (f" {part['context']}" if "context" in part else "")
            problems += _repair_part(part, where, now)
    return problems


def _repair_part(part: StreamState, where: str, now: str) -> list[str]:
    problems = []
    if PROGRESS_MARKERS in part and not isinstance(part[PROGRESS_MARKERS], dict):
        del part[PROGRESS_MARKERS]
        problems.append(f"{where}: the progress markers are not an object: ignored")
    resume = part.get(RESUME)
    if resume is not None and not _valid_resume(resume):
        del part[RESUME]
        problems.append(
            f"{where}: the resume point is malformed, the stream is read from its start"
        )
    value = part.get("replication_key_value")
    if value is not None:
        shown = str(value)[:40]
        try:
            canonical = to_rfc3339(value) if isinstance(value, str) else None
        except ValueError:
            canonical = None
        if canonical is None:
            part.pop("replication_key_value", None)
            problems.append(f"{where}: the bookmark {shown!r} is not a timestamp: a full read")
        elif canonical > now:
            part["replication_key_value"] = now
            problems.append(f"{where}: the bookmark {shown} is in the future: capped at {now}")
    return problems


def _valid_resume(resume: t.Any) -> bool:
    if not isinstance(resume, dict):
        return False
    started = resume.get(CYCLE_STARTED_AT)
    try:
        if not isinstance(started, str) or to_rfc3339(started) is None:
            return False
    except ValueError:
        return False
    page = resume.get("next_page")
    if page is not None and (not isinstance(page, int) or isinstance(page, bool) or page < 1):
        return False
    for count in ("total", "per_page"):
        if resume.get(count) is not None and not isinstance(resume.get(count), int):
            return False
    cursor = resume.get("cursor")
    return cursor is None or isinstance(cursor, str)


def unfinished_cycle(
    tap_state: t.Mapping[str, t.Any], organization_id: t.Any, *, owns_unpartitioned: bool
) -> str | None:
    """The start of a cycle an earlier run left unfinished for this organization.

    Streams without partitions (organizations) are read with the first
    organization's token and belong to its cycle.
    """
    starts = []
    for state in stream_states(tap_state):
        if RESUME not in state or "partitions" in state or state[RESUME].get(FAILED):
            continue
        context = state.get("context")
        if (context or {}).get("organization_id") == organization_id or (
            context is None and owns_unpartitioned
        ):
            starts.append(state[RESUME][CYCLE_STARTED_AT])
    return min(starts) if starts else None


class PassRead(t.NamedTuple):
    """What a pass read, over all its runs, and the first contradiction that stood."""

    records: int = 0
    pages: int = 0
    doubt: str | None = None

    def plus(self, records: int, doubt: str | None) -> PassRead:
        return PassRead(self.records + records, self.pages + 1, self.doubt or doubt)


class Partition:
    """One stream's state for one organization (the format above), and the one owner of
    it: what a pass reads from it as it opens, and every change a pass makes to it.

    ``cycle`` is the cycle the run's pass belongs to. ``read`` is what the pass read
    so far, over all its runs (what a resume point continues is counted from it).
    """

    def __init__(self, data: StreamState, cycle: str) -> None:
        self.data = data
        self.cycle = cycle
        self.read = PassRead()

    # -- what earlier runs left --------------------------------------------------------

    def completed_in_cycle(self) -> bool:
        return RESUME not in self.data and self.data.get(CYCLE_COMPLETED) == self.cycle

    @property
    def resuming(self) -> bool:
        return RESUME in self.data

    def open(self, replication_key: str | None) -> dict[str, t.Any] | None:
        """Prepare the partition for a pass; returns the paginator's resume token, if any.

        Seeds the SDK's progress markers with the newest value seen before the
        interruption, so the final bookmark accounts for pages read by earlier runs,
        and ``read`` with what the pass read in them.
        """
        resume = self.data.get(RESUME)
        if replication_key:
            markers: dict[str, t.Any] = {"Note": NOTE}
            if resume and resume.get(MAX_SEEN):
                markers["replication_key"] = replication_key
                markers["replication_key_value"] = resume[MAX_SEEN]
            self.data[PROGRESS_MARKERS] = markers
        if not resume:
            self.read = PassRead()
            return None
        own = (CYCLE_STARTED_AT, MAX_SEEN, FAILED, RECORDS_READ, PAGES_READ, DOUBT, SEEN)
        token = {k: v for k, v in resume.items() if k not in own}
        self.read = self.read_so_far() if token else PassRead()
        return token

    def read_so_far(self) -> PassRead:
        """What the pass a resume point continues read in earlier runs (nothing: a new pass)."""
        resume = self.data.get(RESUME) or {}
        doubt = resume.get(DOUBT)
        return PassRead(
            _count(resume.get(RECORDS_READ)),
            _count(resume.get(PAGES_READ)),
            doubt[:MAX_DOUBT] if isinstance(doubt, str) and doubt else None,
        )

    def last_complete_pass(self) -> PassRead | None:
        """What the last complete pass read, if one is known."""
        last = self.data.get(LAST_COMPLETE_PASS)
        if not isinstance(last, dict):
            return None
        return PassRead(_count(last.get("records")), _count(last.get("pages")))

    def baseline(self) -> int | None:
        """The records a complete pass is expected to hold: the most of the last few
        complete passes (so that a list cut a little more each pass never sets its own
        bar lower); None when no complete pass was counted (a STATE of a release that
        counted none)."""
        last = self.data.get(LAST_COMPLETE_PASS)
        if not isinstance(last, dict) or "records" not in last:
            return None
        recent = last.get("recent")
        counts = [_count(c) for c in recent] if isinstance(recent, list) else []
        records = _count(last.get("records"))
        # A count far above the last pass's is no history the guard can have kept (it
        # lets a pass lose at most max_deleted_share): a STATE edited or broken.
        believable = [c for c in counts[:RECENT_PASSES] if c <= MAX_HISTORY_FACTOR * records]
        return max([records, *believable])

    def was_read_before(self) -> bool:
        """Whether a pass over this partition completed before (counted or not)."""
        return CYCLE_COMPLETED in self.data or LAST_COMPLETE_PASS in self.data

    def id_sample(self) -> t.Any:
        """The sample of ids of the last complete, confirmed pass, as STATE keeps it."""
        return self.data.get(ID_SAMPLE)

    def keep_id_sample(self, sample: t.Mapping[str, t.Any]) -> None:
        self.data[ID_SAMPLE] = dict(sample)

    def ids_at_risk(self) -> frozenset[int] | None:
        """The ids at risk; None when none are kept, or what is kept is not what was
        written (a STATE edited or cut)."""
        kept = self.data.get(IDS_AT_RISK)
        if not isinstance(kept, dict) or not isinstance(kept.get("count"), int):
            return None
        ids = frozenset(decode_ids(kept.get("ids"), limit=LISTED_IDS + 1))
        if len(ids) != kept["count"] or len(ids) > LISTED_IDS:
            return None
        return ids

    def keep_ids_at_risk(self, ids: frozenset[int] | None) -> None:
        """Keep ``ids`` (None: forget them, too many or not all known)."""
        if ids is None or len(ids) > LISTED_IDS:
            self.data.pop(IDS_AT_RISK, None)
            return
        self.data[IDS_AT_RISK] = {"ids": encode_ids(ids), "count": len(ids)}

    def note_outcome(self, doubt: str | None) -> int:
        """Count the passes in a row that ended incomplete (``doubt``: why this one did;
        None: it counted); how many now."""
        if doubt is None:
            self.data.pop(INCOMPLETE_PASSES, None)
            return 0
        count = self.incomplete_passes() + 1
        self.data[INCOMPLETE_PASSES] = {"count": count, "doubt": doubt[:MAX_DOUBT]}
        return count

    def incomplete_passes(self) -> int:
        kept = self.data.get(INCOMPLETE_PASSES)
        return _count(kept.get("count")) if isinstance(kept, dict) else 0

    def standing_doubt(self) -> str | None:
        """Why the last passes were incomplete, when STANDING_PASSES or more in a row were."""
        kept = self.data.get(INCOMPLETE_PASSES)
        if self.incomplete_passes() < STANDING_PASSES or not isinstance(kept, dict):
            return None
        doubt = kept.get("doubt")
        return doubt if isinstance(doubt, str) else "no reason kept"

    def seen_so_far(self) -> t.Any:
        """What the pass a resume point continues saw by id in earlier runs (evidence.py)."""
        resume = self.data.get(RESUME)
        return resume.get(SEEN) if isinstance(resume, dict) else None

    def page_size(self) -> t.Any:
        """What earlier runs learned of the endpoint's page size (page_size.py reads it)."""
        return self.data.get(PAGE_SIZE)

    def table_pass(self) -> dict[str, t.Any] | None:
        """detect_deletions: the table version this organization's pass is under, and
        whether one of its records was rejected (deletions.py decides what they mean)."""
        own = self.data.get(TABLE_PASS)
        return own if isinstance(own, dict) else None

    # -- what a pass writes ------------------------------------------------------------

    def page_read(self, records: int, doubt: str | None, *, restarted: bool = False) -> None:
        """One more page read (``records`` held, the first contradiction so far); a pass
        that started over from its first page counts from there, its doubt kept."""
        if restarted:
            self.read = PassRead(doubt=self.read.doubt)
        self.read = self.read.plus(records, doubt)

    def tie_table_pass(self, version: int) -> None:
        """The pass is under table version ``version``, no record of it rejected yet."""
        self.data[TABLE_PASS] = {"version": version, "rejected": False}

    def note_rejected(self) -> None:
        """A record of the pass was rejected: it exists, its row must not be retired."""
        if own := self.table_pass():
            own["rejected"] = True

    def forget_table_pass(self) -> None:
        self.data.pop(TABLE_PASS, None)

    def remember_page_size(self, learned: t.Mapping[str, t.Any] | None) -> None:
        """Keep what page_size.py found, or forget what it no longer holds."""
        if learned:
            self.data[PAGE_SIZE] = dict(learned)
        else:
            self.data.pop(PAGE_SIZE, None)

    def checkpoint(
        self, position: t.Mapping[str, t.Any], seen: t.Mapping[str, t.Any] | None = None
    ) -> None:
        """Every record before ``position`` (a paginator's token) has been emitted;
        ``seen``, what the pass saw of them by id."""
        max_seen = self.data.get(PROGRESS_MARKERS, {}).get("replication_key_value")
        resume = {
            **position,
            CYCLE_STARTED_AT: self.pass_started(),
            MAX_SEEN: max_seen,
            RECORDS_READ: self.read.records,
            PAGES_READ: self.read.pages,
        }
        if seen:
            resume[SEEN] = dict(seen)
        if self.read.doubt:
            resume[DOUBT] = self.read.doubt[:MAX_DOUBT]
        self.data[RESUME] = resume

    def pause(
        self, position: t.Mapping[str, t.Any], seen: t.Mapping[str, t.Any] | None = None
    ) -> None:
        """Leave a resumable state: the bookmark stays where it was, the cursor is saved."""
        self.checkpoint(position, seen)
        # Without markers the SDK's finalization leaves the old bookmark untouched.
        self.data.pop(PROGRESS_MARKERS, None)

    def fail(
        self, position: t.Mapping[str, t.Any], seen: t.Mapping[str, t.Any] | None = None
    ) -> None:
        """The stream failed this run: it resumes where it stopped, its cycle does not wait.

        The resume point is kept (marked ``failed``) and the bookmark stays where it was.
        A failed pass does not hold its organization's cycle open: the next run starts
        a new cycle, so the other streams are read again even while this one keeps
        failing, and this one resumes its own pass.
        """
        self.pause(position, seen)
        self.data[RESUME][FAILED] = True

    def abandon(self) -> None:
        """Forget where the pass stood: the next run reads the stream from the start."""
        self.data.pop(RESUME, None)
        self.data.pop(PROGRESS_MARKERS, None)

    def finish(
        self,
        *,
        keep_bookmark: bool = False,
        remember_pass: bool = True,
        restart_history: bool = False,
    ) -> None:
        """The stream was read to the end: drop the cursor, and unless the answers left a
        doubt, remember the pass (``remember_pass``; ``restart_history``: as the first of
        a new history, after a mass deletion the user confirmed); then cap the bookmark
        candidate, or with a doubt (or ``keep_bookmark``) keep the bookmark where it was."""
        started = self.pass_started()
        read = self.read
        self.data.pop(RESUME, None)
        self.data[CYCLE_COMPLETED] = self.cycle
        if not read.doubt and remember_pass:
            self.data[LAST_COMPLETE_PASS] = {
                "records": read.records,
                "pages": read.pages,
                "recent": [] if restart_history else self._recent_counts(),
            }
        if read.doubt or keep_bookmark:
            # What the pass may have missed is emitted again by the next one.
            self.data.pop(PROGRESS_MARKERS, None)
            return
        markers = self.data.get(PROGRESS_MARKERS)
        if markers and markers.get("replication_key_value"):
            markers["replication_key_value"] = min(
                markers["replication_key_value"], bookmark_cap(started)
            )

    def _recent_counts(self) -> list[int]:
        """The record counts of the complete passes before this one, newest first."""
        last = self.data.get(LAST_COMPLETE_PASS)
        if not isinstance(last, dict) or "records" not in last:
            return []
        recent = last.get("recent")
        older = [_count(c) for c in recent] if isinstance(recent, list) else []
        return [_count(last.get("records")), *older][: RECENT_PASSES - 1]

    def pass_started(self) -> str:
        """When the pass that a resume point continues began (else this run's cycle).

        Its bookmark may not pass that moment: records changed on pages read back then
        are read again by the next pass.
        """
        started = self.data.get(RESUME, {}).get(CYCLE_STARTED_AT)
        return min(started, self.cycle) if isinstance(started, str) and started else self.cycle


def _count(value: t.Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_COUNT:
        return value
    return 0


def track_bookmark(state: StreamState, replication_key: str, newest: t.Any) -> None:
    """Raise the bookmark candidate to ``newest`` (a page's largest replication value)."""
    markers = state.get(PROGRESS_MARKERS)
    if markers is None or newest is None:
        return
    if newest > markers.get("replication_key_value", ""):
        markers["replication_key"] = replication_key
        markers["replication_key_value"] = newest


def learned_fields(stream_state: StreamState) -> dict[str, t.Any]:
    """The fields earlier runs added to the stream's schema, with their types."""
    learned = stream_state.get(LEARNED_FIELDS)
    return learned if isinstance(learned, dict) else {}


def learned_fields_unseen(stream_state: StreamState) -> dict[str, t.Any]:
    """How many runs in a row each learned field went unseen (evolution.py forgets it)."""
    unseen = stream_state.get(LEARNED_FIELDS_UNSEEN)
    return unseen if isinstance(unseen, dict) else {}


def forgotten_fields(stream_state: StreamState) -> dict[str, t.Any]:
    """Fields forgotten after going unseen, with the type their column has."""
    forgotten = stream_state.get(LEARNED_FIELDS_FORGOTTEN)
    return forgotten if isinstance(forgotten, dict) else {}


def output_names(stream_state: StreamState) -> dict[str, t.Any]:
    """The output names given to API names that needed one (evolution.py)."""
    given = stream_state.get(OUTPUT_NAMES)
    return given if isinstance(given, dict) else {}


def remember_fields(
    stream_state: StreamState,
    learned: t.Mapping[str, t.Any],
    unseen: t.Mapping[str, int],
    forgotten: t.Mapping[str, t.Any],
    given_names: t.Mapping[str, str] | None = None,
) -> None:
    """Keep the fields added to the schema, so later runs declare them the same way, how
    long each went unseen, the types of forgotten ones, and the output names given
    (evolution.py bounds them)."""
    for key, value in (
        (LEARNED_FIELDS, learned),
        (LEARNED_FIELDS_UNSEEN, unseen),
        (LEARNED_FIELDS_FORGOTTEN, forgotten),
        (OUTPUT_NAMES, given_names or {}),
    ):
        if stream_state.get(key, {}) != value:
            if value:
                stream_state[key] = dict(value)
            else:
                stream_state.pop(key, None)


def bookmark_cap(cycle_started_at: str) -> str:
    started = timestamps.parse(cycle_started_at)
    return (to_rfc3339(started - BOOKMARK_SAFETY_MARGIN) or "") if started else ""
