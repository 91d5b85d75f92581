"""Mokapen streams: one small class per endpoint."""

from __future__ import annotations

import typing as t

from tap_mokapen.client import MokapenStream, OrganizationScopedStream
from tap_mokapen.schemas import schema_path


class ContactsStream(OrganizationScopedStream):
    name = "contacts"
    path = "/{organization_id}/contacts"
    primary_keys = ("id",)
    replication_key = "updated_at"
    schema_filepath = schema_path("contacts")


class TasksStream(OrganizationScopedStream):
    name = "tasks"
    path = "/{organization_id}/tasks"
    primary_keys = ("id",)
    replication_key = "updated_at"
    schema_filepath = schema_path("tasks")
    timestamp_fields: t.ClassVar[tuple[str, ...]] = ("created_at", "updated_at", "completed_at")


class OrganizationsStream(MokapenStream):
    """The organizations the token can see; small, so read whole every run."""

    name = "organizations"
    path = "/organizations"
    primary_keys = ("id",)
    replication_key = None
    schema_filepath = schema_path("organizations")
    timestamp_fields: t.ClassVar[tuple[str, ...]] = ()


STREAM_TYPES = (ContactsStream, TasksStream, OrganizationsStream)
