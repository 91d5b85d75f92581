"""Deletions, seen at no extra request: table versions, activated after complete passes.

Mokapen has no ``updated_at`` filter, so every pass reads every page and sees every
live record. For a stream in ``detect_deletions`` the tap uses that the Singer way:
the stream is read whole (full table, no bookmark), every RECORD of a pass carries
the pass's *table version*, and once the pass has completed for every organization
of the run the tap emits ``ACTIVATE_VERSION``: a target that supports it marks
(``_sdc_deleted_at``) or deletes the rows of the stream with an older version,
which are exactly the records no longer in Mokapen.

A pass that did not complete must never delete anything, so the version is kept in
the stream's STATE while it is open::

    "table_version": {"version": 1764325200000,   # the pass's version (ms)
                      "organizations": ["849", "850"],
                      "done": ["849"]}            # organizations that completed it
    # once activated: {"version": 1764325200000, "closed": true}

and, in each organization's partition, ``"table_pass": {"version": ..., "rejected":
false}``. A pass spread over several runs (the quota, ``max_requests_per_run``)
keeps its version; a pass to resume that began under another version (or before
detect_deletions was set) starts over, since its first pages do not carry this
version; a paused, failed or budget-stopped organization is not done; drift
re-reads are part of completing. A pass that rejected a record (rejected.py), in
any of its runs, does not count as complete: the record exists, and its row must
not be deleted. When the set of organizations changes, the open version is
dropped unactivated. STATE holds one number and the organization ids, whatever
the number of records.
"""

from __future__ import annotations

import logging
import typing as t

from singer_sdk.mapper import RemoveRecordTransform
from singer_sdk.singerlib import ActivateVersionMessage

from tap_mokapen import clock

if t.TYPE_CHECKING:
    from tap_mokapen.sync import MokapenStream

logger = logging.getLogger("tap-mokapen")

TABLE_VERSION = "table_version"
#: In each organization's partition: the version its pass is under, and whether it
#: rejected a record (then the pass retires nothing, even once it is complete).
TABLE_PASS = "table_pass"  # noqa: S105 - a state key, not a password


class TableVersions:
    """The open table version of one stream, in the stream's state."""

    def __init__(self, stream: str, stream_state: dict[str, t.Any]) -> None:
        self.stream = stream
        self.state = stream_state

    def open(self, organizations: t.Iterable[t.Any]) -> int:
        """The version of the pass under way; a new one when none is open for these organizations.

        A version is opened for a set of organizations: when the set changes, the old
        version is dropped unactivated, since an organization no longer read would
        see its rows retired.
        """
        members = sorted({str(o) for o in organizations})
        open_version = self._open()
        if open_version is not None and open_version.get("organizations") != members:
            logger.warning(
                "'%s': the organizations changed while a pass was under way: a new table "
                "version, and no row is marked deleted for the old one",
                self.stream,
            )
            open_version = None
        if open_version is None:
            # Later than any version before, even within the same millisecond.
            version = max(int(clock.epoch_seconds() * 1000), self._last_version() + 1)
            open_version = {"version": version, "organizations": members, "done": []}
            self.state[TABLE_VERSION] = open_version
        return int(open_version["version"])

    def begin_pass(self, partition: dict[str, t.Any], *, resuming: bool) -> bool:
        """Tie an organization's pass to the open version; False when a resume point must go.

        A pass resumed under another version (or from a state without one) read its
        first pages under none of this version: they would be retired. It starts over.
        """
        version = self.open(self._members())
        own = partition.get(TABLE_PASS)
        if resuming and isinstance(own, dict) and own.get("version") == version:
            return True
        partition[TABLE_PASS] = {"version": version, "rejected": False}
        return not resuming

    def note_rejections(self, partition: dict[str, t.Any]) -> None:
        """A record of this pass was rejected: it exists, its row must not be retired."""
        own = partition.get(TABLE_PASS)
        if isinstance(own, dict):
            own["rejected"] = True

    def completed(self, organization: t.Any, partition: dict[str, t.Any]) -> int | None:
        """Note an organization's complete pass; the version to activate once all are done."""
        open_version = self._open()
        own = partition.get(TABLE_PASS)
        if open_version is None or not isinstance(own, dict):
            return None
        if own.get("version") != open_version["version"]:
            return None
        if own.get("rejected"):
            logger.warning(
                "'%s' of organization %s: records were rejected in this pass, so it does not "
                "count as complete for deletions (no row is marked deleted)",
                self.stream,
                organization,
            )
            return None
        done = {str(o) for o in open_version["done"]} | {str(organization)}
        open_version["done"] = sorted(done)
        waiting = sorted(set(self._members()) - done)
        if waiting:
            logger.info(
                "'%s': deletions wait for organizations %s to complete the pass",
                self.stream,
                ", ".join(waiting),
            )
            return None
        self.state[TABLE_VERSION] = {"version": open_version["version"], "closed": True}
        return int(open_version["version"])

    def _members(self) -> list[str]:
        open_version = self._open()
        return list(open_version["organizations"]) if open_version else []

    def _open(self) -> dict[str, t.Any] | None:
        """The open version; None when it was activated (closed), is missing or malformed."""
        value = self.state.get(TABLE_VERSION)
        if (
            isinstance(value, dict)
            and isinstance(value.get("version"), int)
            and isinstance(value.get("done"), list)
            and isinstance(value.get("organizations"), list)
            and not value.get("closed")
        ):
            return value
        return None

    def _last_version(self) -> int:
        value = self.state.get(TABLE_VERSION)
        last = value.get("version") if isinstance(value, dict) else None
        return last if isinstance(last, int) and not isinstance(last, bool) else 0


def forget(stream_state: dict[str, t.Any], partition: dict[str, t.Any]) -> None:
    """A stream not (or no longer) versioned: an old open version must never be activated."""
    stream_state.pop(TABLE_VERSION, None)
    partition.pop(TABLE_PASS, None)


def activate(stream: MokapenStream, version: int) -> None:
    """ACTIVATE_VERSION for the stream (and each alias a stream map gives it)."""
    for stream_map in stream.stream_maps:
        if not isinstance(stream_map, RemoveRecordTransform):
            stream.mokapen_tap.write_message(
                ActivateVersionMessage(stream=stream_map.stream_alias, version=version)
            )
    logger.info(
        "'%s': every organization completed its pass: ACTIVATE_VERSION %d (the target marks "
        "the rows of records no longer in Mokapen as deleted)",
        stream.name,
        version,
    )
