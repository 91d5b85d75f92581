"""Step 5 of the data path, the records: each stream's typed record, its contract, its shaping.

Each stream's records are a msgspec Struct with one field per schema property,
typed as the schema says. Decoding a page into it (shapes.py) checks every value's
type in C as it parses; a page with a field the schema does not name, a value of
another type or a record that breaks the contract fails that fast decode and goes
through ``sort_out`` instead, one record at a time (the rare, careful path). A
field the API did not send stays UNSET and is left out when the record is
encoded, exactly as a missing key would be; ``null`` stays ``null``.

The contract of a record: a JSON object, with an integer ``id`` where the stream
has one, and a replication value that is a timestamp (or null). A record that
breaks it is rejected (rejected.py), never emitted in a shape that breaks its
stream's SCHEMA, and never silently dropped.

Shaping is done once per page, not per record: timestamps normalized to one
RFC 3339 shape, the partition's keys added, records older than the bookmark
dropped.
"""

from __future__ import annotations

import re
import typing as t

import msgspec

from tap_mokapen.timestamps import to_rfc3339

UNSET = msgspec.UNSET

#: JSON Schema type -> the Python types msgspec checks while decoding.
_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}


class Rejected(t.NamedTuple):
    """A record that cannot be emitted under its stream's contract, and why."""

    record: t.Any
    reason: str


def json_types(schema: t.Mapping[str, t.Any]) -> list[str]:
    """The JSON types a property's schema allows; [] when it says nothing the tap can check.

    A schema with a type the tap does not know, or with ``anyOf`` and the like,
    allows anything as far as the tap is concerned.
    """
    declared = schema.get("type")
    types = [declared] if isinstance(declared, str) else declared
    if not isinstance(types, list) or not types or any(x not in _PYTHON_TYPES for x in types):
        return []
    return list(types)


class RecordType:
    """The typed record of a stream: a Struct of its schema's fields, in schema order.

    ``dropped`` fields are decoded (so they are not unknown) but never emitted: the
    ones the catalog deselects, and new fields a frozen schema keeps out.
    """

    def __init__(
        self,
        stream_name: str,
        properties: t.Mapping[str, t.Mapping[str, t.Any]],
        *,
        required: t.Iterable[str] = (),
        dropped: t.Iterable[str] = (),
        any_type: t.Iterable[str] = (),
    ) -> None:
        # A name no typed record can carry stays out: a record holding it takes the careful
        # path, where intake.py renames it (evolution.py).
        self.properties = {name: p for name, p in properties.items() if carriable(name)}
        self.required = [name for name in required if name in self.properties]
        #: JSON field name -> the record's attribute (made by the tap: any key is a field).
        self.attributes = {name: _attribute_name(name, i) for i, name in enumerate(self.properties)}
        self.dropped = [self.attributes[n] for n in dropped if n in self.attributes]
        fields: list[tuple[str, t.Any] | tuple[str, t.Any, t.Any]] = []
        any_type = set(any_type)
        for name, attr in self.attributes.items():
            # Partition keys are the tap's to set (shape): whatever the API sends is replaced.
            kind = t.Any if name in any_type else _python_type(self.properties[name])
            if name in self.required:
                fields.append((attr, kind))  # a record without it fails the fast decode
            else:
                fields.append((attr, t.Union[kind, msgspec.UnsetType], UNSET))  # noqa: UP007
        self.struct: type[msgspec.Struct] = msgspec.defstruct(
            f"{stream_name.title().replace('_', '')}Record",
            fields,
            rename={attr: name for name, attr in self.attributes.items()},
            kw_only=True,
            omit_defaults=True,
            # A field the schema does not name must be noticed, not skipped (evolution.py).
            forbid_unknown_fields=True,
            # Decoded JSON cannot refer back to its record: no cycles for the GC to track.
            gc=False,
        )

    @staticmethod
    def to_dict(record: msgspec.Struct) -> dict[str, t.Any]:
        """The record as the SDK's own record path expects it: a dict of the fields sent."""
        return t.cast(dict[str, t.Any], msgspec.to_builtins(record))

    def drop_fields(self, records: list[t.Any]) -> None:
        """Leave out the fields that are decoded but not emitted (deselected, frozen out)."""
        for attr in self.dropped:
            for record in records:
                setattr(record, attr, UNSET)

    def newest(self, records: list[t.Any], field: str) -> t.Any:
        """The largest value of a field over a page (None when no record has one)."""
        attr = self.attributes.get(field)
        if not attr:
            return None
        values = [v for record in records if (v := getattr(record, attr)) not in (None, UNSET)]
        return max(values) if values else None

    def shape(
        self,
        records: list[t.Any],
        *,
        timestamp_fields: t.Iterable[str],
        partition: t.Mapping[str, t.Any] | None,
    ) -> list[Rejected]:
        """Timestamps in one shape and the partition's keys on every record, in place.

        Returns the records whose timestamps are not timestamps, taken out of ``records``.
        """
        attributes = self.attributes
        rejected: list[Rejected] = []
        for field in timestamp_fields:
            if attr := attributes.get(field):
                rejected += _normalize_timestamps(records, attr, field)
        # Unlike the SDK, the partition's value always wins: organization_id is the
        # numeric id whatever spelling the API uses in its records.
        for key, value in (partition or {}).items():
            if attr := attributes.get(key):
                for record in records:
                    setattr(record, attr, value)
        return rejected

    def not_older_than(self, records: list[t.Any], field: str, bookmark: str) -> list[t.Any]:
        """The records whose ``field`` is at or after the bookmark; null or missing is kept."""
        attr = self.attributes.get(field)
        if not attr:
            return records
        # Canonical timestamps compare correctly as text.
        return [
            r for r in records if (v := getattr(r, attr)) is UNSET or v is None or v >= bookmark
        ]


def _python_type(schema: t.Mapping[str, t.Any]) -> t.Any:
    types = json_types(schema)
    if not types:
        return t.Any  # a type the tap cannot check: anything goes
    python = [p for name in types for p in _PYTHON_TYPES[name]]
    return t.Union[tuple(dict.fromkeys(python))]  # noqa: UP007


def _normalize_timestamps(records: list[t.Any], attr: str, field: str) -> list[Rejected]:
    """to_rfc3339 on one attribute of every record of a page, where it was sent.

    Nearly every value is canonical already: those are recognized here, without a
    call per value, since this runs for every timestamp of every record.
    """
    bad: list[int] = []
    for index, record in enumerate(records):
        value = getattr(record, attr)
        if value.__class__ is str and len(value) == 27 and value[10] == "T" and value[-1] == "Z":
            continue
        if value is UNSET or value is None:
            continue
        try:
            setattr(record, attr, to_rfc3339(value))
        except (ValueError, TypeError, OverflowError):
            bad.append(index)
    to_dict = RecordType.to_dict
    rejected = [Rejected(to_dict(records[i]), f"{field} is not a timestamp") for i in bad]
    for index in reversed(bad):
        del records[index]
    return rejected


def _attribute_name(name: str, index: int) -> str:
    """The record's attribute for a field: made by the tap, never taken from the data (a
    field named ``__init__`` or ``__slots__`` must not become one). ``id`` keeps its name:
    the paginators read it from records of every stream."""
    return "id" if name == "id" else f"f{index}"


#: What msgspec cannot carry in a field name (its rename refuses them).
_UNCARRIABLE = re.compile(r'["\\\x00-\x1f]')


def carriable(name: str) -> bool:
    """Whether a field name can be a field of a typed record."""
    return not _UNCARRIABLE.search(name)


def carriable_name(name: str) -> str:
    """``name`` with each character a typed record cannot carry (a quote, a backslash, a
    control character) replaced by ``_``."""
    return _UNCARRIABLE.sub("_", name)
