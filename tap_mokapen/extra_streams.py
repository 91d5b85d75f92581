"""Streams the user declares: more organization-scoped list endpoints, without a release.

Mokapen's webhooks name the entities it holds (companies, projects, deals,
tickets...), but only contacts and tasks have documented list endpoints. When a
user's Mokapen answers ``GET /api/v1/{organization_id}/deals``, the setting
``extra_streams`` makes it a stream like the shipped ones::

    [{"name": "deals"},
     {"name": "tickets", "path": "support/tickets", "scope": "tickets.read",
      "replication_key": null, "primary_key": ["id"]}]

``path`` (below ``/api/v1/{organization_id}/``) defaults to the name, ``scope`` to
``<name>.read``, ``replication_key`` to ``updated_at`` (Laravel models carry it;
``null`` reads the stream whole every run) and ``primary_key`` to ``id``, with
``organization_id`` beside it, as the tap adds it to every record. The schema is
the packaged one when the project ships the stream (``schemas/<name>.json``);
otherwise it starts from those keys and grows as records come (evolution.py), and
``--discover`` with credentials samples one page to list the fields up front.
"""

from __future__ import annotations

import dataclasses
import re
import typing as t

from tap_mokapen.errors import cut, did_you_mean

NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
PATH = re.compile(r"[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*")
FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
SCOPE = re.compile(r"[A-Za-z0-9_.:\-]+( [A-Za-z0-9_.:\-]+)*")
KEYS = ("name", "path", "scope", "replication_key", "primary_key")


@dataclasses.dataclass(frozen=True)
class ExtraStream:
    """One declared endpoint, its defaults filled in."""

    name: str
    path: str
    scope: str
    replication_key: str | None
    primary_key: tuple[str, ...]


def problems(entries: list[t.Any], taken: t.Iterable[str] = ()) -> list[str]:
    """One phrase per mistake in ``extra_streams`` (as config.list_setting reads it),
    naming the entry."""
    found: list[str] = []
    seen: set[str] = set()
    taken = set(taken)
    for index, entry in enumerate(entries):
        where = f"extra_streams[{index}]"
        if not isinstance(entry, dict):
            found.append(f'{where} must be an object such as {{"name": "deals"}}')
            continue
        name = entry.get("name")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            found.append(
                f"{where}.name must be a lowercase stream name such as 'deals' "
                f"(got {_quoted(name)})"
            )
            continue
        where = f"extra_streams '{name}'"
        if name in seen:
            found.append(f"{where} is declared twice")
        seen.add(name)
        if name in taken:
            found.append(f"{where} is a stream the tap has already (select it instead)")
        unknown = sorted(str(key) for key in set(entry) - set(KEYS))
        if unknown:
            named = ", ".join(f"{cut(key, 60)}{did_you_mean(key, KEYS)}" for key in unknown)
            found.append(f"{where} has unknown keys: {named} (known: {', '.join(KEYS)})")
        path = entry.get("path", name)
        if not isinstance(path, str) or len(path) > 200 or not PATH.fullmatch(path.strip("/")):
            found.append(
                f"{where}: path must be the part after /api/v1/{{organization_id}}/ (at "
                f"most 200 characters), such as "
                f"'deals' (got {_quoted(path)})"
            )
        scope = entry.get("scope", f"{name}.read")
        if not isinstance(scope, str) or not SCOPE.fullmatch(scope):
            found.append(f"{where}: scope must be a scope name such as '{name}.read'")
        key = entry.get("replication_key", "updated_at")
        if key is not None and (not isinstance(key, str) or not FIELD.fullmatch(key)):
            found.append(
                f"{where}: replication_key must be a field name, or null for none "
                f"(got {_quoted(key)})"
            )
        primary = entry.get("primary_key", ["id"])
        primary = [primary] if isinstance(primary, str) else primary
        if (
            not isinstance(primary, list)
            or not primary
            or not all(isinstance(p, str) and FIELD.fullmatch(p) for p in primary)
        ):
            found.append(
                f"{where}: primary_key must be a field name or a list of them "
                f"(got {_quoted(primary)})"
            )
    return found


def _quoted(value: t.Any) -> str:
    """A declared value as Python shows it (a stray newline visible), cut short."""
    return cut(repr(value), 60)


def parse(entries: list[t.Any]) -> tuple[ExtraStream, ...]:
    """The declared streams; build only from entries without problems."""
    streams = []
    for entry in entries:
        name = entry["name"]
        primary = entry.get("primary_key", ["id"])
        primary = [primary] if isinstance(primary, str) else primary
        streams.append(
            ExtraStream(
                name=name,
                path=str(entry.get("path") or name).strip("/"),
                scope=" ".join(str(entry.get("scope") or f"{name}.read").split()),
                replication_key=entry.get("replication_key", "updated_at"),
                # The tap sets organization_id on every record: ids are unique per organization.
                primary_key=tuple(dict.fromkeys(["organization_id", *primary])),
            )
        )
    return tuple(streams)


def schema(spec: ExtraStream, packaged: dict[str, t.Any] | None) -> dict[str, t.Any]:
    """The packaged schema, else the keys the tap relies on; both grow with the records."""
    if packaged is not None:
        return packaged
    properties: dict[str, t.Any] = {"organization_id": {"type": "integer"}}
    if "id" in spec.primary_key:
        properties["id"] = {"type": "integer"}
    for key in spec.primary_key:
        properties.setdefault(key, {"type": ["string", "integer"]})
    if spec.replication_key:
        properties[spec.replication_key] = {"type": ["string", "null"], "format": "date-time"}
    required = [key for key in spec.primary_key if key != "organization_id"]
    return {"type": "object", "properties": properties, "required": required}
