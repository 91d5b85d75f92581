"""Mokapen streams: one small class per endpoint, its JSON Schema in schemas/<name>.json.

An organization-scoped stream takes its path (``/{organization_id}/<name>``), its
OAuth scope (``<name>.read``), its primary key (``organization_id``, ``id``) and
its replication key (``updated_at``) from OrganizationScopedStream.
"""

from __future__ import annotations

import typing as t
from pathlib import Path

from singer_sdk import SchemaDirectory, StreamSchema
from typing_extensions import override

from tap_mokapen.client import MokapenStream
from tap_mokapen.timestamps import to_rfc3339

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_mokapen.tap import TapMokapen

SCHEMAS = SchemaDirectory(Path(__file__).parent / "schemas")


class OrganizationScopedStream(MokapenStream):
    """An endpoint under ``/api/v1/{organization_id}/``, incremental on ``updated_at``.

    Each organization is its own state partition. Mokapen has no documented filter
    on ``updated_at``, so every page is read and records older than the bookmark
    are dropped here. The scope it needs is ``<stream name>.read``.
    """

    primary_keys = ("organization_id", "id")
    replication_key = "updated_at"
    partition_keys = ("organization_id",)

    def __init_subclass__(cls, **kwargs: t.Any) -> None:
        super().__init_subclass__(**kwargs)
        if name := vars(cls).get("name"):
            cls.path = f"/{{organization_id}}/{name}"
            cls.scope = f"{name}.read"

    def __init__(self, tap: TapMokapen) -> None:
        super().__init__(tap)
        self._bookmarks: dict[t.Any, str | None] = {}

    @override
    @property
    def partitions(self) -> list[dict]:
        return [{"organization_id": org} for org in self.mokapen_tap.organizations.ids]

    def _bookmark(self, context: Context | None) -> str | None:
        key = None if context is None else context.get("organization_id")
        if key not in self._bookmarks:
            start = self.get_starting_timestamp(context)
            self._bookmarks[key] = to_rfc3339(start) if start else None
        return self._bookmarks[key]

    @override
    def newer_only(self, records: list[t.Any], context: Context | None) -> list[t.Any]:
        bookmark = self._bookmark(context)
        if not bookmark or not self.replication_key:
            return records
        kept = self.intake.record_type.not_older_than(records, self.replication_key, bookmark)
        self.stats["older_than_bookmark"] += len(records) - len(kept)
        return kept


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
        and "name" in vars(value)  # a stream, not a base class
    ]
