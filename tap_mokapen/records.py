"""Step 5 of the data path, the records: each stream's typed record, and its shaping.

Each stream's records are a msgspec Struct with one field per selected schema
property. Decoding into it (pages.py) keeps only those fields (unknown extras the
API adds are skipped while parsing) and costs about a third of decoding into
dicts. A field the API did not send stays UNSET and is left out when the record
is encoded, exactly as a missing key would be; ``null`` stays ``null``.

Shaping is done once per page, not per record: timestamps normalized to one
RFC 3339 shape, the partition's keys added, records older than the bookmark
dropped.
"""

from __future__ import annotations

import keyword
import typing as t

import msgspec

from tap_mokapen.timestamps import normalize_in_place

UNSET = msgspec.UNSET


class RecordType:
    """The typed record of a stream: a Struct of its selected fields, in schema order."""

    def __init__(self, stream_name: str, fields: t.Sequence[str]) -> None:
        #: JSON field name -> the record's attribute (a few names are not identifiers).
        self.attributes = {name: _attribute_name(name, i) for i, name in enumerate(fields)}
        self.struct: type[msgspec.Struct] = msgspec.defstruct(
            f"{stream_name.title()}Record",
            [(attr, t.Any, UNSET) for attr in self.attributes.values()],
            rename={attr: name for name, attr in self.attributes.items()},
            omit_defaults=True,
            # Decoded JSON cannot refer back to its record: no cycles for the GC to track.
            gc=False,
        )

    @staticmethod
    def to_dict(record: msgspec.Struct) -> dict[str, t.Any]:
        """The record as the SDK's own record path expects it: a dict of the fields sent."""
        return t.cast(dict[str, t.Any], msgspec.to_builtins(record))

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
    ) -> None:
        """Timestamps in one shape, and (as the SDK does) the partition's keys on every record."""
        attributes = self.attributes
        for field in timestamp_fields:
            if attr := attributes.get(field):
                normalize_in_place(records, attr)
        for key, value in (partition or {}).items():
            if attr := attributes.get(key):
                for record in records:
                    if getattr(record, attr) is UNSET:
                        setattr(record, attr, value)

    def not_older_than(self, records: list[t.Any], field: str, bookmark: str) -> list[t.Any]:
        """The records whose ``field`` is at or after the bookmark; null or missing is kept."""
        attr = self.attributes.get(field)
        if not attr:
            return records
        # Canonical timestamps compare correctly as text.
        return [
            r for r in records if (v := getattr(r, attr)) is UNSET or v is None or v >= bookmark
        ]


def _attribute_name(name: str, index: int) -> str:
    return name if name.isidentifier() and not keyword.iskeyword(name) else f"field_{index}"
