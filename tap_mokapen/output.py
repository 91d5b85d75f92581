"""Step 7 of the data path, the output: Singer messages on a buffered stdout.

The SDK's MsgSpecWriter flushes stdout after each message: a system call per record
(and under PYTHONUNBUFFERED stdout has no buffer at all). Here records wait in a
buffer; every SCHEMA, STATE or ACTIVATE_VERSION flushes it, so whatever a STATE
vouches for reaches the target before the STATE itself, and a run killed mid-page
never leaves a STATE ahead of its records.

``write_records`` writes a page of typed records as the RECORD lines the SDK
would write one by one, with one encoder call.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import sys
import typing as t

import msgspec
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import Message, RecordMessage

from tap_mokapen import timestamps

if t.TYPE_CHECKING:
    from singer_sdk import Stream

BUFFER_BYTES = 1 << 16
_buffered: io.BufferedWriter | None = None
# A signal must not interrupt a write: it would break the message it lands in (and
# writing from the handler meets a "reentrant call"). Nor a refresh-token exchange
# (auth.py): the rotated token must be saved before the run ends. While either is
# under way, the stop waits for it to end.
_writes_under_way = 0
_stop_when_written: t.Callable[[], None] | None = None


@contextlib.contextmanager
def uninterrupted() -> t.Iterator[None]:
    """A block a SIGTERM or SIGINT waits for: the stop comes when it ends."""
    global _writes_under_way, _stop_when_written
    _writes_under_way += 1
    try:
        yield
    finally:
        _writes_under_way -= 1
        if not _writes_under_way and _stop_when_written:
            stop, _stop_when_written = _stop_when_written, None
            stop()


def stop_between_writes(stop: t.Callable[[], None]) -> None:
    """Call ``stop`` now, or as soon as the uninterrupted block under way has ended."""
    global _stop_when_written
    if _writes_under_way:
        _stop_when_written = stop
    else:
        stop()


def singer_output() -> t.BinaryIO:
    """Stdout as a buffered binary stream, whatever PYTHONUNBUFFERED says."""
    global _buffered
    out = sys.stdout.buffer
    if isinstance(out, io.BufferedWriter):
        return out
    if _buffered is None or _buffered.raw is not out:
        _buffered = io.BufferedWriter(out, buffer_size=BUFFER_BYTES)
        atexit.register(_flush_at_exit, _buffered)
    return _buffered


def _flush_at_exit(stream: io.BufferedWriter) -> None:
    with contextlib.suppress(ValueError, OSError):  # already closed, or the reader left
        stream.flush()


class BufferedMsgSpecWriter(MsgSpecWriter):
    def write_message(self, message: Message) -> None:
        out = singer_output()
        with uninterrupted():
            out.write(self.format_message(message))
            if not isinstance(message, RecordMessage):
                out.flush()


class RecordLine(msgspec.Struct, gc=False):
    """A Singer RECORD message, in the order of the SDK's own lines."""

    type: str
    stream: str
    record: t.Any
    time_extracted: str


class VersionedRecordLine(msgspec.Struct, gc=False):
    """A RECORD of a versioned (full-table) pass: the SDK puts ``version`` before the time."""

    type: str
    stream: str
    record: t.Any
    version: int
    time_extracted: str


_ENCODER = msgspec.json.Encoder()


def write_records(
    stream: str, records: list[t.Any], time_extracted: str, version: int | None = None
) -> None:
    """A page's RECORD lines, as the SDK writes each record's, in one call."""
    lines: list[t.Any]
    if version is None:
        lines = [RecordLine("RECORD", stream, record, time_extracted) for record in records]
    else:
        lines = [
            VersionedRecordLine("RECORD", stream, record, version, time_extracted)
            for record in records
        ]
    data = _ENCODER.encode_lines(lines)
    with uninterrupted():
        singer_output().write(data)


def write_mapped(
    stream: Stream,
    records: t.Iterable[dict[str, t.Any]],
    time_extracted: str,
    version: int | None = None,
) -> None:
    """Records through the stream's maps, as the SDK's own loop writes them: a map may
    drop a record, rename its stream (an alias) or change its fields."""
    extracted = timestamps.parse(time_extracted)
    writer = BufferedMsgSpecWriter()
    for record in records:
        for stream_map in stream.stream_maps:
            mapped = stream_map.transform(record)
            if mapped is not None:
                message = RecordMessage(
                    stream=stream_map.stream_alias,
                    record=mapped,
                    version=version,
                    time_extracted=extracted,
                )
                writer.write_message(message)
