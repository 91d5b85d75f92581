"""The hot path: a page of RECORD lines written with one call.

The SDK's ``_sync_records`` handles each record on its own: a record-limit check,
child contexts, metrics, bookmark bookkeeping and a message object per record,
which cost more CPU than reading the records. When nothing needs that loop (no
stream map, post_process override, record limit, batch or child stream), PageSync
writes a page of typed records (records.py) with one ``encode_lines`` call and
tracks the bookmark once per page; the lines are the ones the SDK writes.
Otherwise the SDK's own loop runs, on dicts.

These are private SDK hooks: singer-sdk is pinned below 0.55 (pyproject.toml).
"""

from __future__ import annotations

import typing as t
from functools import cached_property

import msgspec
from singer_sdk.streams import Stream

from tap_mokapen.output import singer_output
from tap_mokapen.records import UNSET

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_mokapen.records import PageReader


class RecordLine(msgspec.Struct, gc=False):
    """A Singer RECORD message, in the order of the SDK's own lines."""

    type: str
    stream: str
    record: t.Any
    time_extracted: str


_ENCODER = msgspec.json.Encoder()


class PageSync:
    """Mixin of the base stream (client.py), before RESTStream in the MRO."""

    name: str
    replication_key: str | None
    _markers: dict[str, t.Any] | None
    _time_extracted: str

    page_reader: PageReader
    # The rest comes from the SDK's Stream and from ResumableSync (get_pages).
    get_pages: t.Callable[[Context | None], t.Iterator[list[t.Any]]]

    def _sync_records(
        self, context: Context | None = None, *, write_messages: bool = True
    ) -> t.Generator[dict, t.Any, t.Any]:
        """The SDK's record loop, with a page as the unit of work."""
        if not (
            write_messages
            and self.selected
            and self._writes_lines_directly
            and self.ABORT_AT_RECORD_COUNT is None
            and not self.child_streams
            # shape_page does the shaping; a post_process override only runs in the SDK's loop.
            and type(self).post_process is Stream.post_process
        ):
            yield from super()._sync_records(context, write_messages=write_messages)
            return

        record_counter = self.get_record_counter()
        timer = self.get_sync_timer()
        with record_counter, timer:
            for element in [context] if context is not None else self.partitions or [{}]:
                record_counter.with_context(element)
                timer.with_context(element)
                current = element or None
                partition = self._get_state_partition_context(current)
                self._write_starting_replication_value(current)
                for records in self.get_pages(current):
                    if records:
                        self._write_page(records)
                        self._track_bookmark(records, current)
                        record_counter.increment(len(records))
                        yield from records
                if current == partition:
                    self._finalize_state(self.get_context_state(current))
        if not context:
            self._finalize_state(self.stream_state)
        self._write_state_message()

    def _write_page(self, records: list[t.Any]) -> None:
        """A page's RECORD lines, as ``_write_record_message`` writes each, in one call."""
        name, extracted = self.name, self._time_extracted
        lines = [RecordLine("RECORD", name, record, extracted) for record in records]
        singer_output().write(_ENCODER.encode_lines(lines))
        self.state_manager.is_flushed = False

    def _track_bookmark(self, records: list[t.Any], context: Context | None) -> None:
        key = self.replication_key
        attr = self.page_reader.attributes.get(key) if key else None
        if not attr:
            return
        values = [v for record in records if (v := getattr(record, attr)) not in (None, UNSET)]
        if values:
            self._increment_stream_state({key: max(values)}, context=context)

    def _increment_stream_state(
        self, latest_record: dict, *, context: Context | None = None
    ) -> None:
        """The bookmark candidate, kept in the markers at hand rather than looked up in state."""
        markers = self._markers
        if markers is None or not self.replication_key:
            return
        value = latest_record.get(self.replication_key)
        if value is not None and value > markers.get("replication_key_value", ""):
            markers["replication_key"] = self.replication_key
            markers["replication_key_value"] = value

    @cached_property
    def _writes_lines_directly(self) -> bool:
        """RECORD lines can be written directly when no stream map or version applies."""
        maps = self.stream_maps
        return (
            len(maps) == 1
            and type(maps[0]).__name__ == "SameRecordTransform"
            and maps[0].stream_alias == self.name
            and not self.emit_activate_version_messages
        )
