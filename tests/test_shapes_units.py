"""Reading answers of every list shape, and sorting out their records, in-process."""

from __future__ import annotations

import collections
import json
import typing as t

import msgspec
import pytest
import requests

from tap_mokapen.intake import RecordIntake
from tap_mokapen.record_type import RecordType
from tap_mokapen.shapes import PageReader, cut_too_deep

SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "organization_id": {"type": "integer"},
        "name": {"type": ["string", "null"]},
        "company_id": {"type": ["integer", "null"]},
        "updated_at": {"type": ["string", "null"], "format": "date-time"},
    },
}
RECORDS = [{"id": 1, "name": "a"}, {"id": 2, "name": None}]


def answer(body: t.Any) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response.url = "http://127.0.0.1/api/v1/849/contacts"
    return response


SHAPES = {
    "length_aware": (
        {"current_page": 1, "data": RECORDS, "last_page": 3, "total": 5},
        "length_aware",
    ),
    "simple": ({"current_page": 1, "data": RECORDS, "next_page_url": "x?page=2"}, "simple"),
    "cursor": ({"data": RECORDS, "next_cursor": "eyJpZCI6Mn0", "per_page": 2}, "cursor"),
    "resource": (
        {"data": RECORDS, "links": {"next": "x?page=2"}, "meta": {"current_page": 1, "total": 5}},
        "resource",
    ),
    "data list": ({"data": RECORDS}, "list"),
    "array": (RECORDS, "list"),
    "enveloped paginator": (
        {"status": True, "data": {"current_page": 1, "data": RECORDS, "total": 2}},
        "length_aware",
    ),
    "enveloped array": ({"status": True, "data": RECORDS}, "list"),
}


@pytest.mark.parametrize(("body", "shape"), SHAPES.values(), ids=SHAPES.keys())
def test_every_shape_is_recognised_and_read_typed(body, shape):
    reader = PageReader(RecordType("contacts", SCHEMA["properties"], required=["id"]))
    page = reader.read(answer(body))
    assert page.shape == shape
    assert page.raw is None  # good records of any shape take the fast path
    assert [RecordType.to_dict(r) for r in page.data] == RECORDS


def test_resource_collections_page_by_their_meta():
    reader = PageReader(RecordType("contacts", SCHEMA["properties"], required=["id"]))
    page = reader.read(answer(SHAPES["resource"][0]))
    assert (page.current_page, page.total, page.next_page_url) == (1, 5, "x?page=2")


class _DecoderRaising:
    """A typed decoder failing on invalid UTF-8 as one msgspec release or another does."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def decode(self, content: bytes) -> t.Any:
        raise self.error


@pytest.mark.parametrize(
    "decoder_error",
    [
        None,  # the installed msgspec, whatever it raises
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),  # msgspec < 0.23
        msgspec.DecodeError("JSON is malformed: invalid character"),  # msgspec >= 0.23
    ],
    ids=["installed-msgspec", "raises-UnicodeDecodeError", "raises-DecodeError"],
)
def test_invalid_utf8_is_repaired_and_counted(decoder_error):
    reader = PageReader(RecordType("contacts", SCHEMA["properties"], required=["id"]))
    if decoder_error is not None:
        reader._decoders = [(_DecoderRaising(decoder_error), lambda d: d)]  # type: ignore[list-item]
    page = reader.read(answer(b'{"data": [{"id": 1, "name": "ab\xff\xfecd"}]}'))
    assert page.repaired_utf8 == 2
    assert page.raw == [{"id": 1, "name": "ab\ufffd\ufffdcd"}]


def test_absurd_nesting_is_cut_out_without_recursion():
    deep = b"[" * 100_000 + b"]" * 100_000
    body = b'{"data": [{"id": 1, "custom": ' + deep + b'}, {"id": 2, "name": "ok"}]}'
    assert len(cut_too_deep(body)) < 1000
    reader = PageReader(RecordType("contacts", SCHEMA["properties"], required=["id"]))
    page = reader.read(answer(body))
    assert page.raw is not None and page.raw[1] == {"id": 2, "name": "ok"}


class FakeRejections:
    def __init__(self) -> None:
        self.rows: list[tuple[str, t.Any, str]] = []

    def write(self, stream, organization_id, rejected, where) -> None:
        self.rows += [(stream, r.record, r.reason) for r in rejected]


def intake(
    *,
    frozen: bool = False,
    deselected: t.Sequence[str] = (),
    learned: dict | None = None,
    schemas: list | None = None,
) -> tuple[RecordIntake, FakeRejections, list]:
    rejections, schemas = FakeRejections(), [] if schemas is None else schemas
    return (
        RecordIntake(
            "contacts",
            SCHEMA,
            key_properties=["organization_id", "id"],
            partition_keys=["organization_id"],
            replication_key="updated_at",
            timestamp_fields=["updated_at"],
            deselected=deselected,
            frozen=frozen,
            rejections=rejections,  # type: ignore[arg-type]
            write_schema=schemas.append,
            stats=collections.Counter(),
            learned=learned,
        ),
        rejections,
        schemas,
    )


BROKEN = [
    {"id": 1, "name": "good", "updated_at": "2025-03-01 10:15:00"},
    {"name": "no id"},
    {"id": "abc", "name": "string id"},
    {"id": 4, "updated_at": "not a date"},
    {"id": 5, "updated_at": 1700000000},
    7,
    {"id": 8, "company_id": "C-12", "custom_fields": {"a": 1}, "tags": ["x"]},
]


def test_broken_records_are_rejected_and_the_good_ones_kept():
    taker, rejections, schemas = intake()
    page = taker.read(answer({"current_page": 1, "data": BROKEN, "total": 7}))
    records = taker.take(
        page, partition={"organization_id": 849}, where="page 1", organization_id=849
    )

    emitted = [RecordType.to_dict(r) for r in records]
    assert [r["id"] for r in emitted] == [1, 8]
    assert emitted[0]["updated_at"] == "2025-03-01T10:15:00.000000Z"
    assert all(r["organization_id"] == 849 for r in emitted)
    reasons = {json.dumps(record): reason for _, record, reason in rejections.rows}
    assert reasons == {
        json.dumps({"name": "no id"}): "the record has no id",
        json.dumps({"id": "abc", "name": "string id"}): "id is string, not an integer",
        json.dumps({"id": 4, "organization_id": 849, "updated_at": "not a date"}): (
            "updated_at is not a timestamp"
        ),
        json.dumps({"id": 5, "updated_at": 1700000000}): "updated_at is integer, not a timestamp",
        "7": "the record is integer, not a JSON object",
    }
    # One new SCHEMA, with the new fields, and company_id's string value in a field of its
    # own (loaders cannot change a column's type); records fit it.
    (schema,) = schemas
    properties = schema.schema["properties"]
    assert properties["custom_fields"] == {"type": ["object", "null"]}
    assert properties["tags"] == {"type": ["array", "null"]}
    assert properties["company_id"]["type"] == ["integer", "null"]
    assert properties["company_id__string"] == {"type": ["string", "null"]}
    assert emitted[1]["custom_fields"] == {"a": 1}
    assert (emitted[1]["company_id"], emitted[1]["company_id__string"]) == (None, "C-12")

    # Once learned, the next page with the same fields takes the fast path again.
    learned = {"id": 9, "company_id": 3, "custom_fields": {}, "tags": []}
    again = taker.read(answer({"current_page": 2, "data": [learned], "total": 7}))
    assert again.raw is None


def test_a_frozen_schema_leaves_new_fields_out_and_rejects_misfits():
    taker, rejections, schemas = intake(frozen=True)
    page = taker.read(answer({"data": [BROKEN[-1], {"id": 9, "custom_fields": {}}]}))
    records = taker.take(page, partition=None, where="page 1", organization_id=849)
    assert schemas == []
    assert [RecordType.to_dict(r) for r in records] == [{"id": 9}]
    ((_, _, reason),) = rejections.rows
    assert reason == "company_id is string, the frozen schema says integer/null"


def take(taker: RecordIntake, body: t.Any) -> tuple[list[dict], t.Any]:
    page = taker.read(answer(body))
    records = taker.take(page, partition={"organization_id": 849}, where="p", organization_id=849)
    return [RecordType.to_dict(r) for r in records], page


def test_rejecting_on_the_fast_path_leaves_the_page_whole_for_the_paginator():
    taker, rejections, _ = intake()
    body = {"current_page": 1, "total": 9, "data": [{"id": 1, "updated_at": "garbage"}]}
    emitted, page = take(taker, body)
    assert emitted == [] and len(rejections.rows) == 1
    assert page.size == 1  # the paginator still sees a full page, not an empty one


def test_keys_are_typed_even_when_the_schema_names_one_type_as_a_string():
    taker, rejections, _ = intake()
    body = {"data": [{"id": "C-12"}, {"id": None}, {"id": 3, "organization_id": "enc_x"}]}
    emitted, _ = take(taker, body)
    assert emitted == [{"id": 3, "organization_id": 849}]  # the tap's numeric id wins
    assert [reason for *_, reason in rejections.rows] == [
        "id is string, not an integer",
        "id is null, not an integer",
    ]


def test_deselected_fields_are_never_split_or_grown():
    taker, _, schemas = intake(deselected=["company_id"])
    emitted, _ = take(taker, {"data": [{"id": 1, "company_id": "C-1"}]})
    assert emitted == [{"id": 1, "organization_id": 849}]
    assert schemas == []


def test_a_new_field_seen_only_as_null_waits_for_a_value_to_type_it():
    taker, _, schemas = intake()
    emitted, _ = take(taker, {"data": [{"id": 1, "rating": None}]})
    assert emitted == [{"id": 1, "organization_id": 849}] and schemas == []
    emitted, _ = take(taker, {"data": [{"id": 2, "rating": 4}]})
    assert emitted[0]["rating"] == 4
    (schema,) = schemas
    assert schema.schema["properties"]["rating"] == {"type": ["integer", "null"]}


def test_a_field_the_api_sends_under_a_split_name_is_kept():
    taker, _, _ = intake()
    emitted, _ = take(taker, {"data": [{"id": 1, "company_id": "C-1", "company_id__string": "x"}]})
    assert emitted[0]["company_id__string"] == "x"


def test_learned_fields_come_back_with_the_same_type():
    taker, _, schemas = intake()
    take(taker, {"data": [{"id": 1, "score": 3}]})
    learned = taker.evolution.learned
    again, _, _ = intake(learned=json.loads(json.dumps(learned)), schemas=schemas)
    emitted, page = take(again, {"data": [{"id": 2, "score": 2.5}]})
    assert page.raw is not None and emitted[0]["score__number"] == 2.5  # the column stays integer
