"""Mokapen streams: one small class per endpoint, its JSON Schema in schemas/<name>.json.

An organization-scoped stream takes its path (``/{organization_id}/<name>``), its
OAuth scope (``<name>.read``), its primary key (``organization_id``, ``id``) and
its replication key (``updated_at``) from OrganizationScopedStream.
"""

from __future__ import annotations

import typing as t
from pathlib import Path

from singer_sdk import SchemaDirectory, StreamSchema

from tap_mokapen.client import MokapenStream, OrganizationScopedStream

SCHEMAS = SchemaDirectory(Path(__file__).parent / "schemas")


class ContactsStream(OrganizationScopedStream):
    name = "contacts"
    schema = StreamSchema(SCHEMAS)


class TasksStream(OrganizationScopedStream):
    name = "tasks"
    schema = StreamSchema(SCHEMAS)
    timestamp_fields: t.ClassVar[tuple[str, ...]] = ("created_at", "updated_at", "completed_at")


class OrganizationsStream(MokapenStream):
    """The organizations the token can see; small, so read whole every run."""

    name = "organizations"
    path = "/organizations"
    primary_keys = ("id",)
    replication_key = None
    schema = StreamSchema(SCHEMAS)
    timestamp_fields: t.ClassVar[tuple[str, ...]] = ()


def stream_types() -> list[type[MokapenStream]]:
    """Every stream class of this module, in the order they are defined (and synced)."""
    return [
        value
        for value in globals().values()
        if isinstance(value, type)
        and issubclass(value, MokapenStream)
        and value.__module__ == __name__
    ]
