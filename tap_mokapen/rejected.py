"""Rejected records: what the API sent that cannot be emitted under its stream's contract.

A record without an integer ``id``, with an ``updated_at`` that is not a
timestamp, nested absurdly deep, or (with ``freeze_schema``) with a value its
frozen schema cannot hold, is neither emitted as it is (it would break the
stream's SCHEMA, and a strict loader with it) nor dropped. It goes, as text and
with the reason, to the ``rejected_records`` stream, which lands in the warehouse
beside the good data; the run goes on. ``strict_records`` turns a rejection into
a clean failure of the stream instead.

Its SCHEMA and RECORDs go out through the SDK's stream maps like any stream's: a map
``{"rejected_records": "__NULL__"}`` removes them, an alias renames them.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import typing as t

import msgspec
from singer_sdk import Stream

from tap_mokapen import output, sdk_private, timestamps
from tap_mokapen.errors import APIError

if t.TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_mokapen.record_type import Rejected

logger = logging.getLogger("tap-mokapen")

NAME = "rejected_records"
#: A rejected record longer than this is kept cut, with a note that it was.
MAX_TEXT = 1 << 20
SCHEMA: dict[str, t.Any] = {
    "type": "object",
    "properties": {
        "stream": {"type": "string"},
        "fingerprint": {"type": "string"},
        "organization_id": {"type": ["integer", "null"]},
        "record": {"type": "string"},
        "reason": {"type": "string"},
        "page": {"type": "string"},
        "rejected_at": {"type": "string", "format": "date-time"},
    },
    "required": ["stream", "fingerprint", "record", "reason"],
}


class RejectedRecordsStream(Stream):
    """The records other streams could not emit; written by those streams as they go
    (Rejections), through this stream's maps. Its own sync reads nothing."""

    name = NAME
    primary_keys = ("stream", "fingerprint")
    replication_key = None
    schema = SCHEMA

    def __init__(self, tap: Tap, rejections: Rejections) -> None:
        super().__init__(tap=tap)
        rejections.stream = self

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        return iter(())


class Rejections:
    """Writes rejected records as they are met and counts them per stream."""

    def __init__(self, *, strict: bool) -> None:
        self.strict = strict
        self.counts: collections.Counter[str] = collections.Counter()
        #: The stream the rows go out as (it attaches itself when the Tap makes it).
        self.stream: RejectedRecordsStream | None = None
        self._schema_written = False

    @property
    def selected(self) -> bool:
        return bool(self.stream and self.stream.selected)

    def write(
        self, stream: str, organization_id: t.Any, rejected: list[Rejected], where: str
    ) -> None:
        if not rejected:
            return
        if self.strict:
            first = rejected[0]
            msg = (
                f"{where}: a {stream} record was rejected ({first.reason}) and "
                f"strict_records is on; {len(rejected)} on this page"
            )
            raise APIError(msg)
        self.counts[stream] += len(rejected)
        now = timestamps.now()
        rows = [self._row(stream, organization_id, r, where, now) for r in rejected]
        reasons = collections.Counter(r.reason for r in rejected)
        logger.warning(
            "Rejected %d %s record(s) from %s: %s%s",
            len(rejected),
            stream,
            where,
            "; ".join(f"{n} x {reason}" for reason, n in reasons.most_common()),
            "" if self.selected else " (rejected_records is not selected: they are not kept)",
        )
        if not self.stream or not self.stream.selected:
            return
        if not self._schema_written:
            sdk_private.write_schema(self.stream)
            self._schema_written = True
        if sdk_private.maps_unchanged(self.stream):
            output.write_records(NAME, rows, now)
        else:
            output.write_mapped(self.stream, rows, now)

    @staticmethod
    def _row(stream: str, org: t.Any, rejected: Rejected, where: str, now: str) -> dict:
        text = msgspec.json.encode(rejected.record).decode()
        fingerprint = hashlib.sha256(f"{stream}\0{org}\0{text}".encode()).hexdigest()[:32]
        if len(text) > MAX_TEXT:
            text = text[:MAX_TEXT] + f"... (cut at {MAX_TEXT} of {len(text)} characters)"
        return {
            "stream": stream,
            "fingerprint": fingerprint,
            "organization_id": org if isinstance(org, int) else None,
            "record": text,
            "reason": rejected.reason,
            "page": where,
            "rejected_at": now,
        }
