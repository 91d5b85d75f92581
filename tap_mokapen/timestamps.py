"""Mokapen timestamps to RFC 3339 UTC, in one fixed shape so they also compare as text."""

from __future__ import annotations

import datetime as dt
import typing as t

import msgspec

#: Every timestamp the tap emits looks like this: 2025-03-01T10:15:00.000000Z.
CANONICAL_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_CANONICAL_LENGTH = 27
_PLAIN_LENGTH = 19


def to_rfc3339(value: str | dt.datetime | None) -> str | None:
    """Normalize a timestamp; a zone-less one is UTC (docs/mokapen-api.md).

    The two documented shapes are handled by slicing; anything else goes through
    pendulum's parser.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        if len(value) == _CANONICAL_LENGTH and value[10] == "T" and value[-1] == "Z":
            return value
        if len(value) == _PLAIN_LENGTH and value[10] in " T" and value[4] == "-":
            return f"{value[:10]}T{value[11:]}.000000Z"
        import pendulum

        parsed = pendulum.parse(value, tz="UTC", strict=False)
        if not isinstance(parsed, dt.datetime):
            msg = f"not a timestamp: {value!r}"
            raise ValueError(msg)
        moment: dt.datetime = parsed
    else:
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime(CANONICAL_FORMAT)


def normalize_in_place(records: t.Iterable[t.Any], attribute: str) -> None:
    """to_rfc3339 on one attribute of every record of a page, where it was sent.

    Nearly every value is canonical already: those are recognized here, without a
    call per value, since this runs for every timestamp of every record.
    """
    for record in records:
        value = getattr(record, attribute)
        if (
            value.__class__ is str
            and len(value) == _CANONICAL_LENGTH
            and value[10] == "T"
            and value[-1] == "Z"
        ):
            continue
        if value is not msgspec.UNSET:
            setattr(record, attribute, to_rfc3339(value))
