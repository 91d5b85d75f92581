"""Step 5 of the data path, for one stream: from a page to the records it may emit.

``RecordIntake.take`` turns a page into the records a stream emits: the fast
path's typed records as they are; the careful path's raw records sorted out one
by one (the contract checked, the schema grown for new fields and types, the rest
converted to typed records); then shaped (record_type.py). Whatever cannot be
emitted goes to the rejected records (rejected.py), never silently away.
"""

from __future__ import annotations

import logging
import typing as t

import msgspec
from singer_sdk.singerlib import SchemaMessage

from tap_mokapen.evolution import SchemaEvolution, json_type
from tap_mokapen.record_type import UNSET, RecordType, Rejected
from tap_mokapen.shapes import MAX_DEPTH, TOO_DEEP, Page, PageReader, careful_read

if t.TYPE_CHECKING:
    import collections

    import requests

    from tap_mokapen.rejected import Rejections

logger = logging.getLogger("tap-mokapen")
_TOO_DEEP = msgspec.json.encode(TOO_DEEP)


class RecordIntake:
    """One stream's record type, schema and rejections, and the page-to-records step."""

    def __init__(
        self,
        stream: str,
        schema: t.Mapping[str, t.Any],
        *,
        key_properties: t.Sequence[str],
        partition_keys: t.Sequence[str],
        replication_key: str | None,
        timestamp_fields: t.Sequence[str],
        deselected: t.Iterable[str],
        frozen: bool,
        rejections: Rejections,
        write_schema: t.Callable[[SchemaMessage], None],
        stats: collections.Counter[str],
        learned: t.Mapping[str, t.Any] | None = None,
        unseen_runs: t.Mapping[str, t.Any] | None = None,
        forgotten: t.Mapping[str, t.Any] | None = None,
        given_names: t.Mapping[str, t.Any] | None = None,
        max_learned: int = 500,
    ) -> None:
        self.stream = stream
        self.key_properties = list(key_properties)
        self.partition_keys = list(partition_keys)
        self.replication_key = replication_key
        self.timestamp_fields = timestamp_fields
        self.deselected = set(deselected)
        self.rejections = rejections
        self.write_schema = write_schema
        self.stats = stats
        self.id_required = "id" in self.key_properties
        self.evolution = SchemaEvolution(
            stream,
            schema,
            frozen=frozen,
            fixed=[*self.key_properties, replication_key or ""],
            deselected=self.deselected,
            learned=learned,
            unseen_runs=unseen_runs,
            forgotten=forgotten,
            given_names=given_names,
            max_learned=max_learned,
        )
        self.record_type = self._record_type()
        self.reader = PageReader(self.record_type)
        #: Whether the stream's SCHEMA names every field its records may carry.
        self._schema_sent = not self.evolution.learned

    def _record_type(self) -> RecordType:
        # Decoded but never emitted: fields a frozen schema leaves out, or not typed yet.
        left_out, untyped = self.evolution.left_out, self.evolution.untyped
        return RecordType(
            self.stream,
            {
                **self.evolution.properties,
                **{name: {} for name in left_out},
                # Only null decodes fast: a value sends the page the careful way, to type it.
                **{name: {"type": "null"} for name in untyped},
            },
            required=["id"] if self.id_required else [],
            dropped=self.deselected | left_out | untyped,
            any_type=[*self.partition_keys, *self.deselected],
        )

    def read(self, response: requests.Response) -> Page:
        page = self.reader.read(response)
        if page.raw is None and self._given_columns_filled(page.data):
            # The API sent a field under a name given to another one (a renamed field's,
            # a type split's): the typed decoder took it as that column. The records are
            # sorted out one by one instead, each field under the name it was given.
            return careful_read(response)
        return page

    def _given_columns_filled(self, records: list[t.Any]) -> bool:
        """Whether a typed record holds a value in a column given to another API field:
        such a column is filled only by sorting records out, never by the decoder."""
        given = self.evolution.given_names
        if not given or not records:
            return False
        attributes = self.record_type.attributes
        columns = [a for name in given.values() if (a := attributes.get(name))]
        return any(getattr(r, a, UNSET) is not UNSET for a in columns for r in records)

    def take(
        self,
        page: Page,
        *,
        partition: t.Mapping[str, t.Any] | None,
        where: str,
        organization_id: t.Any,
    ) -> list[t.Any]:
        """The page's records fit to emit, shaped; the others rejected."""
        if page.repaired_utf8:
            self.stats["utf8_repaired"] += page.repaired_utf8
            logger.warning(
                "%s: %d invalid UTF-8 sequence(s) replaced by U+FFFD", where, page.repaired_utf8
            )
        rejected: list[Rejected] = []
        if page.raw is None:
            records = list(page.data)  # the paginator still reads the page as it came
            self._note_learned_fields_seen(records)
        else:
            records, rejected = self._sort_out(page.raw, partition or {})
        self.record_type.drop_fields(records)
        rejected += self.record_type.shape(
            records, timestamp_fields=self.timestamp_fields, partition=partition
        )
        if rejected:
            self.stats["rejected"] += len(rejected)
            self.rejections.write(self.stream, organization_id, rejected, where)
        if not self._schema_sent and records:
            # Fields learned by earlier runs: the SCHEMA the SDK sent at the stream's start
            # does not name them, the records do.
            self._send_schema()
        return records

    def _note_learned_fields_seen(self, records: list[t.Any]) -> None:
        """Which learned fields a typed page holds (the careful path notes its own): once a
        field is seen, it is not looked for again in this run."""
        attributes = self.record_type.attributes
        for name in self.evolution.learned.keys() - self.evolution.seen:
            attribute = attributes.get(name)
            if attribute and any(getattr(r, attribute) is not UNSET for r in records):
                self.evolution.seen.add(name)

    def _send_schema(self) -> None:
        self._schema_sent = True
        self.write_schema(
            SchemaMessage(
                self.stream,
                self.evolution.schema,
                self.key_properties,
                [self.replication_key] if self.replication_key else None,
            )
        )

    def _sort_out(
        self, raw: list[t.Any], partition: t.Mapping[str, t.Any]
    ) -> tuple[list[t.Any], list[Rejected]]:
        """Raw records, one by one: contract, schema growth, then typed."""
        good: list[dict[str, t.Any]] = []
        rejected: list[Rejected] = []
        for original in raw:
            reason = self.contract_problem(original)
            if reason:
                rejected.append(Rejected(original, reason))
                continue
            # Under the names the output can take, then the tap's keys, whatever the API sent.
            record = {**self.evolution.rename_fields(original), **partition}
            good.append(record)
        hidden = len(self.evolution.left_out) + len(self.evolution.untyped)
        # The API's own fields are learned as sent before any value moves to a variant
        # column, so that a variant column is never one the API sends with another type.
        grew = self.evolution.learn(good)
        for record in good:
            self.evolution.fold_overflow(record)
            self.evolution.split_misfits(record)
        grew = self.evolution.learn(good) or grew
        for record in good:  # a variant column past max_learned_fields overflows too
            self.evolution.fold_overflow(record)
        if grew or len(self.evolution.left_out) + len(self.evolution.untyped) != hidden:
            self.record_type = self._record_type()
            self.reader.use(self.record_type)
        if grew:
            self._send_schema()
        typed = []
        for record in good:
            try:
                typed.append(msgspec.convert(record, self.record_type.struct))
            except msgspec.ValidationError as exc:  # only a frozen schema gets here
                rejected.append(Rejected(record, str(exc)))
        return typed, rejected

    def contract_problem(self, record: t.Any) -> str | None:
        """Why a record cannot be emitted under its stream's contract, if it cannot."""
        if not isinstance(record, dict):
            return f"the record is {json_type(record)}, not a JSON object"
        if self.id_required:
            if "id" not in record:
                return "the record has no id"
            if json_type(record["id"]) != "integer":
                return f"id is {json_type(record['id'])}, not an integer"
        key = self.replication_key
        if key and record.get(key, UNSET) not in (UNSET, None) and not isinstance(record[key], str):
            return f"{key} is {json_type(record[key])}, not a timestamp"
        if _TOO_DEEP in msgspec.json.encode(record):
            return f"a value is nested deeper than {MAX_DEPTH} levels"
        if self.evolution.frozen:
            return self.evolution.misfit(record)
        return None
