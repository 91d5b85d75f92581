"""Every use of a private name of singer-sdk (or of requests), fenced in one module.

The tap keeps to the public hooks of both everywhere else. Speed and page-level
checkpoints need these private names of singer-sdk 0.54 (pinned ``<0.55``):

======================================  ================================================
name                                    why
======================================  ================================================
``Stream._sync_records`` (overridden)   the record loop, with a page as the unit of work:
                                        one encoder call per page instead of the SDK's
                                        per-record message, conformance and bookkeeping
``Stream._increment_stream_state``       the bookmark candidate in the SDK's own loop:
(overridden)                            the SDK's fails on a record without the
                                        replication key, which the tap keeps
``Stream._write_starting_replication_   the bookmark (or start_date) a partition starts
value``                                 from, as the SDK's own loop records it
``Stream._finalize_state``              promote the bookmark candidate at a stream's end
``Stream._write_state_message``         a STATE after every page, not every 10,000 records
``StreamStateManager.is_flushed``       marks the state changed, so that STATE is written
``RESTStream._write_request_duration_  the SDK's request metric for each request the
log``                                   list reader sends (its organization's token,
                                        which the stream's one authenticator cannot be)
``Stream._stream_version``              the table version the SDK's own record loop (stream
                                        maps) puts on RECORDs (deletions.py)
``PluginBase._validate_config``         every config problem in one line, naming each
(overridden)                            setting, never echoing a secret
``Stream._write_schema_message``        a schema grown during the run, written through
                                        the stream maps (aliases, flattening) as the
                                        SDK writes the first
``requests.Response._content`` and      a body read by transport.py under its deadline
``_content_consumed``                   and size cap, handed over as requests does
                                        when it reads one (``.content`` is then it)
======================================  ================================================

``PRIVATE_NAMES`` lists them with the signature each had when this was written;
tests/test_sdk_contract.py fails with one message naming every one that an SDK
release changed or removed.
"""

from __future__ import annotations

import copy
import typing as t

import requests
from singer_sdk import Tap
from singer_sdk.exceptions import ConfigValidationError, MapperNotInitialized
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.streams import RESTStream, Stream

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context
    from singer_sdk.mapper import PluginMapper

#: ``module:qualified name`` -> the signature relied on (None: an attribute).
PRIVATE_NAMES: dict[str, str | None] = {
    "singer_sdk.streams.core:Stream._sync_records": (
        "(self, context: 'types.Context | None' = None, *, write_messages: 'bool' = True)"
        " -> 't.Generator[dict, t.Any, t.Any]'"
    ),
    "singer_sdk.streams.core:Stream._increment_stream_state": (
        "(self, latest_record: 'types.Record', *, context: 'types.Context | None' = None) -> 'None'"
    ),
    "singer_sdk.streams.core:Stream._write_starting_replication_value": (
        "(self, context: 'types.Context | None') -> 'None'"
    ),
    "singer_sdk.streams.core:Stream._finalize_state": (
        "(self, state: 'dict | None' = None) -> 'None'"
    ),
    "singer_sdk.streams.core:Stream._write_state_message": "(self) -> 'None'",
    "singer_sdk.streams.core:Stream._write_schema_message": "(self) -> 'None'",
    "requests.models:Response._content": None,
    "requests.models:Response._content_consumed": None,
    "singer_sdk.streams._state:StreamStateManager.is_flushed": None,
    "singer_sdk.streams.core:Stream._stream_version": None,
    "singer_sdk.plugin_base:PluginBase._validate_config": (
        "(self, *, raise_errors: 'bool' = True) -> 'list[str]'"
    ),
    "singer_sdk.streams.rest:RESTStream._write_request_duration_log": (
        "(self, endpoint: 'str', response: 'requests.Response', context: 'Context | None', "
        "extra_tags: 'dict | None') -> 'None'"
    ),
}


def keep_body(response: requests.Response, body: bytes) -> None:
    """The body read in full (transport.py): ``response.content`` is this from now on."""
    response._content = body
    response._content_consumed = True  # type: ignore[attr-defined]


def write_state(stream: Stream) -> None:
    """Write a STATE message now, with the stream's state as it stands."""
    stream.state_manager.is_flushed = False
    stream._write_state_message()


def set_table_version(stream: Stream, version: int | None) -> None:
    """The version the SDK's own loop writes on each RECORD (the fast path writes its own)."""
    stream._stream_version = version


def mark_state_changed(stream: Stream) -> None:
    """Records were written: the next STATE the SDK considers must go out."""
    stream.state_manager.is_flushed = False


def send(
    stream: RESTStream,
    prepared: requests.PreparedRequest,
    context: Context | None,
    authenticator: t.Callable[[requests.PreparedRequest], requests.PreparedRequest],
) -> requests.Response:
    """One request sent as the SDK's ``_request`` sends it (authenticated, on the
    stream's session, with the SDK's request metric), with the token of the
    organization being read: the SDK's hook holds one authenticator per stream."""
    authenticated = authenticator(prepared)
    response = stream.requests_session.send(
        authenticated, timeout=stream.timeout, allow_redirects=stream.allow_redirects
    )
    stream._write_request_duration_log(
        endpoint=stream.path, response=response, context=context, extra_tags=None
    )
    return response


def remap(stream: Stream, mapper: PluginMapper, schema: dict[str, t.Any]) -> None:
    """The stream's schema grew: its maps are built again from it (the tap's mapper, a
    public API) and its SCHEMA goes out through them, as the SDK sends the first one.

    The stream's map list is the mapper's first list, refilled in place, so the stream
    uses the new maps without touching its cache. The stream's own schema is not
    changed: the SDK's schema source hands every instance the same dict."""
    maps = stream.stream_maps
    # A copy: the mapper rebuilds only when the schema differs from the one it holds.
    mapper.register_raw_stream_schema(stream.name, copy.deepcopy(schema), stream.primary_keys)
    maps[:] = mapper.stream_maps[stream.name]
    stream._write_schema_message()


def write_schema(stream: Stream) -> None:
    """The stream's SCHEMA through its maps (an alias renames it, a removal drops it)."""
    stream._write_schema_message()


def maps_unchanged(stream: Stream) -> bool:
    """Whether the stream's maps leave its records as they are: no map, alias or
    flattening (then RECORD lines may be written without passing through them)."""
    try:
        maps = stream.stream_maps
    except MapperNotInitialized:  # --discover sampling a page: no record is written
        return True
    return (
        len(maps) == 1
        and isinstance(maps[0], SameRecordTransform)
        and maps[0].stream_alias == stream.name
        and not maps[0].flattening_enabled
    )


def writes_lines_directly(stream: Stream) -> bool:
    """Whether the page-at-a-time loop may write the stream's messages itself.

    Not where the SDK's loop does more than write each record through the stream's
    maps: its own ACTIVATE_VERSION, a record limit (``--test``), child streams, a
    ``post_process`` override (the stream shapes whole pages instead).
    """
    return (
        not stream.emit_activate_version_messages
        and stream.ABORT_AT_RECORD_COUNT is None
        and not stream.child_streams
        and type(stream).post_process is Stream.post_process
        # The loop below finalizes each context as its own state partition.
        and not stream.state_partitioning_keys
    )


class PageAtATimeSync(Stream):
    """The SDK's record loop, with a page as the unit of work.

    For each state partition the stream's ``sync_partition`` reads the list and
    writes each page's records itself, then its checkpoint; this loop keeps the SDK's
    metrics, starting value and state finalization around it. Where the tap's loop
    does not serve (see ``writes_lines_directly``) the SDK's own loop runs, on dicts
    (``get_records``).
    """

    #: Whether a STATE may follow each page (not in batch mode).
    page_checkpoints = True

    def sync_partition(
        self, context: Context | None, count_records: t.Callable[[int], None]
    ) -> None:
        raise NotImplementedError

    def track_bookmark(self, newest: t.Any, context: Context | None) -> None:
        raise NotImplementedError

    def _increment_stream_state(
        self, latest_record: dict[str, t.Any], *, context: Context | None = None
    ) -> None:
        """The SDK's loop, one record at a time: a record without the key is kept."""
        if self.replication_key:
            self.track_bookmark(latest_record.get(self.replication_key), context)

    def _sync_records(
        self, context: Context | None = None, *, write_messages: bool = True
    ) -> t.Generator[dict, t.Any, t.Any]:
        # Batch mode (write_messages off) writes records to files and a BATCH message
        # per file: a STATE per page would promise records no message has delivered.
        self.page_checkpoints = write_messages
        if not (write_messages and self.selected and writes_lines_directly(self)):
            yield from super()._sync_records(context, write_messages=write_messages)
            return

        record_counter = self.get_record_counter()
        timer = self.get_sync_timer()
        with record_counter, timer:
            for element in [context] if context is not None else self.partitions or [{}]:
                record_counter.with_context(element)
                timer.with_context(element)
                current = element or None
                self._write_starting_replication_value(current)
                self.sync_partition(current, record_counter.increment)
                # The tap sets no state_partitioning_keys: a partition is its context.
                self._finalize_state(self.get_context_state(current))
        if not context:
            self._finalize_state(self.stream_state)
        self._write_state_message()
        yield from ()  # the SDK iterates this loop; the records went out page by page


class OneLineConfigErrors(Tap):
    """The SDK's config validation replaced by the tap's own ``config_problems``."""

    def config_problems(self) -> list[str]:
        raise NotImplementedError

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        found = self.config_problems()
        if found and raise_errors:
            message = f"Invalid {self.name} settings: " + "; ".join(found)
            raise ConfigValidationError(message, errors=[message])
        return found
