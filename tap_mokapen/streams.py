"""Mokapen streams: one small class per endpoint, its JSON Schema in schemas/<name>.json.

An organization-scoped stream takes its path (``/{organization_id}/<name>``), its
OAuth scope (``<name>.read``), its primary key (``organization_id``, ``id``) and
its replication key (``updated_at``) from MokapenStream (client.py).
"""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

from singer_sdk import SchemaDirectory, StreamSchema

from tap_mokapen import extra_streams
from tap_mokapen.client import MokapenStream
from tap_mokapen.extra_streams import ExtraStream

SCHEMAS = SchemaDirectory(Path(__file__).parent / "schemas")


class ContactsStream(MokapenStream):
    name = "contacts"
    schema = StreamSchema(SCHEMAS)


class TasksStream(MokapenStream):
    name = "tasks"
    schema = StreamSchema(SCHEMAS)
    timestamp_fields: t.ClassVar[tuple[str, ...]] = ("created_at", "updated_at", "completed_at")


class CompaniesStream(MokapenStream):
    """Not documented by Mokapen (its schema is guessed): off until selected or declared."""

    name = "companies"
    schema = StreamSchema(SCHEMAS)
    selected_by_default = False


class ProjectsStream(MokapenStream):
    """Not documented by Mokapen (its schema is guessed): off until selected or declared."""

    name = "projects"
    schema = StreamSchema(SCHEMAS)
    selected_by_default = False
    timestamp_fields: t.ClassVar[tuple[str, ...]] = ("created_at", "updated_at", "completed_at")


class OrganizationsStream(MokapenStream):
    """The organizations the token can see; small, so read whole every run."""

    organization_scoped = False
    name = "organizations"
    path = "/organizations"
    primary_keys = ("id",)
    replication_key = None
    partition_keys = ()
    schema = StreamSchema(SCHEMAS)
    timestamp_fields: t.ClassVar[tuple[str, ...]] = ()


#: The shipped streams, in the order they sync.
SHIPPED: tuple[type[MokapenStream], ...] = (
    ContactsStream,
    TasksStream,
    CompaniesStream,
    ProjectsStream,
    OrganizationsStream,
)


def stream_types(declared: t.Iterable[ExtraStream] = ()) -> list[type[MokapenStream]]:
    """The shipped streams, then the streams the ``extra_streams`` setting declares
    (extra_streams.py); a declared one replaces a shipped one of its name."""
    by_name = {spec.name: spec for spec in declared}
    shipped = [stream for stream in SHIPPED if vars(stream)["name"] not in by_name]
    return [*shipped, *(declared_stream_type(spec) for spec in by_name.values())]


def declared_stream_type(spec: ExtraStream) -> type[MokapenStream]:
    """A stream class for a declared endpoint, on by default."""
    packaged_file = Path(__file__).parent / "schemas" / f"{spec.name}.json"
    packaged = json.loads(packaged_file.read_text()) if packaged_file.is_file() else None
    stream_type: type[MokapenStream] = type(
        f"Declared{spec.name.title().replace('_', '')}Stream",
        (MokapenStream,),
        {
            "name": spec.name,
            "schema": extra_streams.schema(spec, packaged),
            "primary_keys": spec.primary_key,
            "replication_key": spec.replication_key,
            "selected_by_default": True,
            "packaged": packaged is not None,
            "__module__": __name__,
        },
    )
    stream_type.path = f"/{{organization_id}}/{spec.path}"
    stream_type.scope = spec.scope
    return stream_type
