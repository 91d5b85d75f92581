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

BUFFER_BYTES = 1 << 16
_buffered: io.BufferedWriter | None = None


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
        out.write(self.format_message(message))
        if not isinstance(message, RecordMessage):
            out.flush()


class RecordLine(msgspec.Struct, gc=False):
    """A Singer RECORD message, in the order of the SDK's own lines."""

    type: str
    stream: str
    record: t.Any
    time_extracted: str


_ENCODER = msgspec.json.Encoder()


def write_records(stream: str, records: list[t.Any], time_extracted: str) -> None:
    """A page's RECORD lines, as the SDK writes each record's, in one call."""
    lines = [RecordLine("RECORD", stream, record, time_extracted) for record in records]
    singer_output().write(_ENCODER.encode_lines(lines))
