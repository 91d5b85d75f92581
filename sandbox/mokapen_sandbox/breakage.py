"""Records served broken on purpose, so the tap's tests can see what it does with them.

With ``bad_records = {"every": N, "kinds": [...]}`` the record whose id is a multiple
of N is served with the kind ``kinds[(id // N - 1) % len(kinds)]``: the choice hangs
on the record's original id only, so a test knows which records are broken without
asking, and the same record is broken the same way on every page and every run. The
dataset itself is never touched: ``/_sandbox/records`` stays the truth of the good
data, and ``/_sandbox/bad-records`` lists what the API breaks.

Two kinds cannot be expressed as a Python value that ``json.dumps`` would write (bytes
that are not UTF-8, nesting deeper than any recursion limit), so those records carry
a placeholder string that ``finish_body`` swaps for the raw bytes in the encoded body.
"""

from __future__ import annotations

import typing as t

BAD_KINDS = (
    "missing_id",
    "string_id",
    "bad_updated_at",
    "int_updated_at",
    "invalid_utf8",
    "deep_nesting",
    "changed_type",
    "object_name",
)
DEEP_NESTING_LEVELS = 100_000
INVALID_UTF8_BYTES = b"\xff\xfe"
INT_UPDATED_AT = 1_700_000_000
# Placeholders json.dumps copies verbatim (plain ASCII, nothing to escape), and which no
# seeded record contains.
_MARK = "@@mokapen-sandbox:"
_INVALID_UTF8 = _MARK + "invalid-utf8@@"
_DEEP = _MARK + "deep-nesting@@"


def check_spec(spec: t.Any) -> None:
    """Refuse a ``bad_records`` value the sandbox cannot honour, saying why."""
    if spec is None:
        return
    if not isinstance(spec, dict) or set(spec) != {"every", "kinds"}:
        msg = 'bad_records: expected {"every": N, "kinds": [...]}'
        raise ValueError(msg)
    every, kinds = spec["every"], spec["kinds"]
    if type(every) is not int or every < 1:
        msg = f"bad_records: every must be a whole number of at least 1, got {every!r}"
        raise ValueError(msg)
    if not isinstance(kinds, list) or not kinds:
        msg = f"bad_records: kinds must be a non-empty list (kinds: {', '.join(BAD_KINDS)})"
        raise ValueError(msg)
    unknown = [str(kind) for kind in kinds if kind not in BAD_KINDS]
    if unknown:
        msg = f"bad_records: unknown kind(s) {', '.join(unknown)} (kinds: {', '.join(BAD_KINDS)})"
        raise ValueError(msg)


def bad_kind(spec: dict[str, t.Any] | None, record_id: int) -> str | None:
    """How the record with this (original) id is broken, or None if it is served intact."""
    if spec is None:
        return None
    every: int = spec["every"]
    kinds: list[str] = spec["kinds"]
    if record_id % every:
        return None
    return kinds[(record_id // every - 1) % len(kinds)]


def bad_list(spec: dict[str, t.Any] | None, ids: t.Iterable[int]) -> list[dict[str, t.Any]]:
    """``[{"id", "kind"}]`` of the records among ``ids`` that the API serves broken."""
    listed = []
    for record_id in ids:
        kind = bad_kind(spec, record_id)
        if kind is not None:
            listed.append({"id": record_id, "kind": kind})
    return listed


def break_record(record: dict[str, t.Any], kind: str) -> None:
    """Break one serialized record in place, the way ``kind`` says."""
    record_id = record["id"]
    if kind == "missing_id":
        del record["id"]
    elif kind == "string_id":
        record["id"] = f"abc-{record_id}"
    elif kind == "bad_updated_at":
        record["updated_at"] = "not a date"
    elif kind == "int_updated_at":
        record["updated_at"] = INT_UPDATED_AT
    elif kind == "invalid_utf8":
        text_field = next((f for f in ("description", "title") if f in record), "note")
        text = record.get(text_field)
        record[text_field] = (text if isinstance(text, str) else "") + _INVALID_UTF8
    elif kind == "deep_nesting":
        record["custom"] = _DEEP
    elif kind == "changed_type":
        record["company_id"] = f"C-{record_id}"
    elif kind == "object_name":
        name_field = "title" if "title" in record and "name" not in record else "name"
        record[name_field] = {"first": "x", "last": "y"}
    else:  # check_spec lets no other kind through
        msg = f"unknown bad record kind {kind!r}"
        raise ValueError(msg)


def finish_body(body: bytes) -> bytes:
    """Swap the placeholders for what JSON encoding cannot produce from Python values."""
    if _MARK.encode() not in body:
        return body
    # Built as bytes, not as a nested list: encoding 100000 levels would recurse.
    deep = b"[" * DEEP_NESTING_LEVELS + b"]" * DEEP_NESTING_LEVELS
    body = body.replace(f'"{_DEEP}"'.encode(), deep)
    return body.replace(_INVALID_UTF8.encode(), INVALID_UTF8_BYTES)
