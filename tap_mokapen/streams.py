"""Mokapen streams: one small class per endpoint."""

from __future__ import annotations

import typing as t

from singer_sdk import StreamSchema

from tap_mokapen.client import MokapenStream, OrganizationScopedStream
from tap_mokapen.schemas import SCHEMAS


class ContactsStream(OrganizationScopedStream):
    name = "contacts"
    path = "/{organization_id}/contacts"
    # Ids are unique within an organization only.
    primary_keys = ("organization_id", "id")
    replication_key = "updated_at"
    schema = StreamSchema(SCHEMAS)


class TasksStream(OrganizationScopedStream):
    name = "tasks"
    path = "/{organization_id}/tasks"
    primary_keys = ("organization_id", "id")
    replication_key = "updated_at"
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


STREAM_TYPES = (ContactsStream, TasksStream, OrganizationsStream)
