"""Timestamps: Mokapen's to RFC 3339 UTC, in one fixed shape so they also compare as
text, and back; the one parser and the one "now" as text (the clock is clock.py's)."""

from __future__ import annotations

import datetime as dt

from tap_mokapen import clock

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
            dt.datetime.fromisoformat(value[:-1])
            return value
        if len(value) == _PLAIN_LENGTH and value[10] in " T" and value[4] == "-":
            # fromisoformat checks the date is a date (MySQL's 0000-00-00 is not).
            dt.datetime.fromisoformat(value)
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


def parse(value: str) -> dt.datetime | None:
    """A timestamp as an aware datetime (a zone-less one is UTC); None when it is none."""
    try:
        text = to_rfc3339(value)
    except (ValueError, OverflowError):  # not a time, or one past the calendar's ends
        return None
    return dt.datetime.strptime(text, CANONICAL_FORMAT).replace(tzinfo=dt.UTC) if text else None


def now() -> str:
    """The clock's time of day, as the tap writes a timestamp (STATE, records)."""
    return to_rfc3339(clock.now()) or ""
