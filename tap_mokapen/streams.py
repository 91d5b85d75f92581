"""Mokapen streams: one small class per endpoint, its JSON Schema in schemas/<name>.json.

An organization-scoped stream takes its path (``/{organization_id}/<name>``), its
OAuth scope (``<name>.read``), its primary key (``organization_id``, ``id``) and
its replication key (``updated_at``) from OrganizationScopedStream.
"""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

from singer_sdk import SchemaDirectory, StreamSchema
from typing_extensions import override

from tap_mokapen import extra_streams
from tap_mokapen.evolution import SchemaEvolution
from tap_mokapen.extra_streams import ExtraStream
from tap_mokapen.page_size import PageSize
from tap_mokapen.sync import MokapenStream
from tap_mokapen.timestamps import to_rfc3339

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_mokapen.tap import TapMokapen

SCHEMAS = SchemaDirectory(Path(__file__).parent / "schemas")
#: Records sampled by --discover for a declared stream's fields: enough, and small.
SAMPLE_PAGE_SIZE = 100


class OrganizationScopedStream(MokapenStream):
    """An endpoint under ``/api/v1/{organization_id}/``, incremental on ``updated_at``.

    Each organization is its own state partition. Mokapen has no documented filter
    on ``updated_at``, so every page is read and records older than the bookmark
    are dropped here. The scope it needs is ``<stream name>.read``.
    """

    primary_keys = ("organization_id", "id")
    replication_key = "updated_at"
    partition_keys = ("organization_id",)
    #: Whether the project ships the schema (else ``--discover`` samples a page).
    packaged: t.ClassVar[bool] = True

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

    def sample_fields(self) -> int:
        """Grow the schema with the fields of the first organization's first page; the count.

        For ``--discover`` of a declared stream without a packaged schema, so that its
        catalog lists the fields up front. One request (and the token's).
        """
        tap = self.mokapen_tap
        configured = tap.organizations.first
        self.organization_id = tap.organizations.numeric(configured)
        self.sizing = PageSize.for_endpoint(SAMPLE_PAGE_SIZE, None, where=f"'{self.name}'")
        context = {"organization_id": configured}
        records: list[dict[str, t.Any]] = []
        for _, response in self.answers(context, self.get_new_paginator()):
            page = self.read_page(response)  # raw records: fields the schema lacks
            raw = (
                page.raw
                if page.raw is not None
                else map(self.intake.record_type.to_dict, page.data)
            )
            records = [r for r in raw if isinstance(r, dict)]
            break
        evolution = SchemaEvolution(self.name, self.schema, frozen=False, fixed=self.primary_keys)
        # Under the names the sync emits them by (evolution.py renames a few).
        evolution.learn([evolution.rename_fields(record) for record in records])
        added = set(evolution.properties) - set(self.schema["properties"])
        self.schema["properties"].update(evolution.properties)
        return len(added)

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


class CompaniesStream(OrganizationScopedStream):
    """Not documented by Mokapen (its schema is guessed): off until selected or declared."""

    name = "companies"
    schema = StreamSchema(SCHEMAS)
    selected_by_default = False


class ProjectsStream(OrganizationScopedStream):
    """Not documented by Mokapen (its schema is guessed): off until selected or declared."""

    name = "projects"
    schema = StreamSchema(SCHEMAS)
    selected_by_default = False
    timestamp_fields: t.ClassVar[tuple[str, ...]] = ("created_at", "updated_at", "completed_at")


class OrganizationsStream(MokapenStream):
    """The organizations the token can see; small, so read whole every run."""

    name = "organizations"
    path = "/organizations"
    primary_keys = ("id",)
    replication_key = None
    schema = StreamSchema(SCHEMAS)
    timestamp_fields: t.ClassVar[tuple[str, ...]] = ()


def stream_types(declared: t.Iterable[ExtraStream] = ()) -> list[type[MokapenStream]]:
    """Every stream class of this module, in the order they are defined (and synced),
    then the streams the ``extra_streams`` setting declares (extra_streams.py)."""
    by_name = {spec.name: spec for spec in declared}
    shipped = [
        value
        for value in globals().values()
        if isinstance(value, type)
        and issubclass(value, MokapenStream)
        and value.__module__ == __name__
        and "name" in vars(value)  # a stream, not a base class
        and vars(value)["name"] not in by_name  # a declared one replaces a shipped one
    ]
    return [*shipped, *(declared_stream_type(spec) for spec in by_name.values())]


def declared_stream_type(spec: ExtraStream) -> type[OrganizationScopedStream]:
    """A stream class for a declared endpoint, on by default."""
    packaged_file = Path(__file__).parent / "schemas" / f"{spec.name}.json"
    packaged = json.loads(packaged_file.read_text()) if packaged_file.is_file() else None
    stream_type: type[OrganizationScopedStream] = type(
        f"Declared{spec.name.title().replace('_', '')}Stream",
        (OrganizationScopedStream,),
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
