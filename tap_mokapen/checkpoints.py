"""Page-level checkpoints in Singer state, so a run stopped at any page resumes exactly there.

Each stream (or organization partition) state may hold, besides the SDK's bookmark::

    "resume": {"next_page": 6, "cycle_started_at": "...Z", "max_seen": "...Z",
               "total": 642, "per_page": 100}
    "cycle_completed": "...Z"

A *cycle* is one complete pass over every selected stream, possibly spread over
several runs when the quota or ``max_requests_per_run`` stops them early. While a
cycle is unfinished, streams it already completed are skipped, so a small daily
quota is never spent re-reading them (a stream late in the order would otherwise
starve). Bookmarks never pass the cycle's start, minus a margin for clock skew
between Mokapen and this machine: anything changed after that is read again by the
next cycle.
"""

from __future__ import annotations

import datetime as dt
import typing as t

from tap_mokapen.timestamps import to_rfc3339

RESUME = "resume"
CYCLE_COMPLETED = "cycle_completed"
PROGRESS_MARKERS = "progress_markers"
BOOKMARK_SAFETY_MARGIN = dt.timedelta(minutes=5)
NOTE = "Bookmark candidates; the run resumes from 'resume', not from these."


def stream_states(tap_state: t.Mapping[str, t.Any]) -> t.Iterator[dict[str, t.Any]]:
    """Every stream-level and partition-level state dict in a tap state."""
    for stream_state in tap_state.get("bookmarks", {}).values():
        yield stream_state
        yield from stream_state.get("partitions", [])


def unfinished_cycle(
    tap_state: t.Mapping[str, t.Any], organization_id: t.Any, *, owns_unpartitioned: bool
) -> str | None:
    """The start of a cycle an earlier run left unfinished for this organization.

    Each organization has cycles of its own, so one organization's spent quota never
    holds back another's. Streams without partitions (organizations) are read with
    the first organization's token and belong to its cycle.
    """
    starts = []
    for state in stream_states(tap_state):
        if RESUME not in state or "partitions" in state:
            continue
        context = state.get("context")
        if (context or {}).get("organization_id") == organization_id or (
            context is None and owns_unpartitioned
        ):
            starts.append(state[RESUME]["cycle_started_at"])
    return min(starts) if starts else None


def bookmark_cap(cycle_started_at: str) -> str:
    started = dt.datetime.fromisoformat(cycle_started_at.replace("Z", "+00:00"))
    return to_rfc3339(started - BOOKMARK_SAFETY_MARGIN)  # type: ignore[return-value]


def completed_in_cycle(state: dict[str, t.Any], cycle: str) -> bool:
    return RESUME not in state and state.get(CYCLE_COMPLETED) == cycle


def start(state: dict[str, t.Any], replication_key: str | None) -> dict[str, t.Any] | None:
    """Prepare a stream's state for reading; returns where to resume, if anywhere.

    Seeds the SDK's progress markers with the newest value seen before the
    interruption, so the final bookmark accounts for pages read by earlier runs.
    """
    resume = state.get(RESUME)
    if replication_key:
        markers: dict[str, t.Any] = {"Note": NOTE}
        if resume and resume.get("max_seen"):
            markers["replication_key"] = replication_key
            markers["replication_key_value"] = resume["max_seen"]
        state[PROGRESS_MARKERS] = markers
    return resume


def _max_seen(state: dict[str, t.Any]) -> str | None:
    return state.get(PROGRESS_MARKERS, {}).get("replication_key_value")


def checkpoint(
    state: dict[str, t.Any], *, next_page: int, cycle: str, total: int | None, per_page: int | None
) -> None:
    """Record that every page before ``next_page`` has been emitted."""
    state[RESUME] = {
        "next_page": next_page,
        "cycle_started_at": cycle,
        "max_seen": _max_seen(state),
        "total": total,
        "per_page": per_page,
    }


def pause(
    state: dict[str, t.Any], *, next_page: int, cycle: str, total: int | None, per_page: int | None
) -> None:
    """Leave a resumable state: the bookmark stays where it was, the cursor is saved."""
    checkpoint(state, next_page=next_page, cycle=cycle, total=total, per_page=per_page)
    # Without markers the SDK's finalization leaves the old bookmark untouched.
    state.pop(PROGRESS_MARKERS, None)


def finish(state: dict[str, t.Any], *, cycle: str) -> None:
    """The stream was read to the end: drop the cursor, cap the bookmark candidate."""
    state.pop(RESUME, None)
    state[CYCLE_COMPLETED] = cycle
    markers = state.get(PROGRESS_MARKERS)
    if markers and markers.get("replication_key_value"):
        markers["replication_key_value"] = min(
            markers["replication_key_value"], bookmark_cap(cycle)
        )
