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
                      "done": ["849"]}            # organizations that completed it

A pass spread over several runs (the quota, ``max_requests_per_run``) keeps its
version; a paused, failed or budget-stopped organization is not done; drift
re-reads are part of completing. A pass that rejected a record (rejected.py) does
not count as complete either: the record exists, and its row must not be deleted.
STATE holds one number and the organization ids, whatever the number of records.
"""

from __future__ import annotations

import logging
import time
import typing as t

from singer_sdk.mapper import RemoveRecordTransform
from singer_sdk.singerlib import ActivateVersionMessage

if t.TYPE_CHECKING:
    from tap_mokapen.sync import MokapenStream

logger = logging.getLogger("tap-mokapen")

TABLE_VERSION = "table_version"


class TableVersions:
    """The open table version of one stream, in the stream's state."""

    def __init__(self, stream: str, stream_state: dict[str, t.Any]) -> None:
        self.stream = stream
        self.state = stream_state

    def current(self) -> int:
        """The version of the pass under way; a new one when none is open."""
        open_version = self._open()
        if open_version is None:
            open_version = {"version": int(time.time() * 1000), "done": []}
            self.state[TABLE_VERSION] = open_version
        return int(open_version["version"])

    def completed(
        self, organization: t.Any, organizations: t.Iterable[t.Any], *, clean: bool
    ) -> int | None:
        """Note an organization's complete pass; the version to activate once all are done."""
        open_version = self._open()
        if open_version is None:
            return None
        if not clean:
            logger.warning(
                "'%s' of organization %s: records were rejected in this pass, so it does not "
                "count as complete for deletions (no row is marked deleted)",
                self.stream,
                organization,
            )
            return None
        done = {str(o) for o in open_version["done"]} | {str(organization)}
        open_version["done"] = sorted(done)
        waiting = sorted({str(o) for o in organizations} - done)
        if waiting:
            logger.info(
                "'%s': deletions wait for organizations %s to complete the pass",
                self.stream,
                ", ".join(waiting),
            )
            return None
        del self.state[TABLE_VERSION]
        return int(open_version["version"])

    def _open(self) -> dict[str, t.Any] | None:
        value = self.state.get(TABLE_VERSION)
        if (
            isinstance(value, dict)
            and isinstance(value.get("version"), int)
            and isinstance(value.get("done"), list)
        ):
            return value
        self.state.pop(TABLE_VERSION, None)  # malformed: a new pass, a new version
        return None


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
