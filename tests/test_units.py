"""Unit tests of small pure functions (no HTTP)."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest
import requests

from tap_mokapen import retries, verdict
from tap_mokapen.errors import APIError, RequestBudgetSpent, TruncatedAnswer
from tap_mokapen.record_type import UNSET, RecordType
from tap_mokapen.shapes import PageReader
from tap_mokapen.throttle import RequestPacer, SlidingWindowLimiter
from tap_mokapen.timestamps import to_rfc3339


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-03-01T10:15:00.000000Z", "2025-03-01T10:15:00.000000Z"),
        ("2025-03-01 10:15:00", "2025-03-01T10:15:00.000000Z"),
        ("2025-03-01T12:15:00+02:00", "2025-03-01T10:15:00.000000Z"),
        ("2025-03-01T10:15:00.5Z", "2025-03-01T10:15:00.500000Z"),
        (dt.datetime(2025, 3, 1, 10, 15), "2025-03-01T10:15:00.000000Z"),
        (None, None),
        ("", None),
    ],
)
def test_to_rfc3339(value, expected):
    assert to_rfc3339(value) == expected


def response(status: int, body: bytes, headers: dict | None = None) -> requests.Response:
    made = requests.Response()
    made.status_code = status
    made._content = body
    made.headers.update(headers or {})
    made.url = "http://127.0.0.1/api/v1/849/contacts?page=2"
    return made


def test_retry_after_from_body_and_header():
    assert retries.retry_after_seconds(response(429, b'{"retry_after": "45 seconds"}')) == 45
    assert retries.retry_after_seconds(response(429, b"{}", {"Retry-After": "7"})) == 7
    both = response(429, b'{"retry_after": "3 seconds"}', {"Retry-After": "9"})
    assert retries.retry_after_seconds(both) == 9
    assert retries.retry_after_seconds(response(503, b"oops")) is None


def test_quota_body_is_told_apart_from_throttle():
    quota = b'{"message": "Quota exceeded", "API daily request limit exceeded.\\n": 2000}'
    assert verdict.is_quota_exhausted(response(429, quota))
    throttle = b'{"status": false, "message": "Too Many Requests", "retry_after": "45 seconds"}'
    assert not verdict.is_quota_exhausted(response(429, throttle))


def test_api_message_describes_html_pages():
    page = b"<html><head><title>502 Bad Gateway</title></head></html>"
    assert verdict.api_message(response(502, page, {"Content-Type": "text/html"})) == (
        "an HTML error page (502 Bad Gateway)"
    )


def test_sliding_window_waits_only_when_the_window_is_full():
    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    limiter = SlidingWindowLimiter(3, 10.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        limiter.wait_for_slot()
        now[0] += 1
        limiter.record()
    assert slept == []
    limiter.wait_for_slot()
    assert sum(slept) == 8.0  # the first answer was recorded at t=1: free again at t=11


def test_the_throttle_tells_its_listener_of_a_wait_and_while_it_lasts():
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    class Listener:
        def __init__(self):
            self.waits, self.left = [], []

        def waiting(self, seconds, why):
            self.waits.append((seconds, why))

        def still_waiting(self, seconds_left):
            self.left.append(seconds_left)

        def done_waiting(self):
            self.waits.append("done")

    limiter = SlidingWindowLimiter(2, 4.0, clock=lambda: now[0], sleep=sleep)
    listener = Listener()
    for _ in range(3):
        limiter.wait_for_slot(listener)
        limiter.record()
    assert listener.waits == [(4.0, "the rate limit (2 requests per 4 s)"), "done"]
    assert listener.left == [3.0, 2.0, 1.0]  # one-second slices
    # At t=4 one slot is free; the second request waits for the window to pass, and
    # the two after it for the next one.
    assert limiter.seconds_for(1) == 0.0
    assert limiter.seconds_for(2) == 4.0
    assert limiter.seconds_for(4) == 8.0
    now[0] += 10
    assert limiter.seconds_for(2) == 0.0  # two free slots


def test_pacer_enforces_the_run_budget():
    pacer = RequestPacer(None, max_requests=2)
    for _ in range(2):
        with pacer.slot():
            pass
    with pytest.raises(RequestBudgetSpent), pacer.slot():
        pass
    assert pacer.requests == 2


def _response(body: bytes, path: str = "/api/v1/849/contacts") -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response._content = body
    response.url = f"http://127.0.0.1{path}"
    return response


def test_page_reader_keeps_the_schema_fields_as_sent():
    reader = PageReader(
        RecordType("things", {name: {} for name in ["id", "from", "e-mail", "updated_at"]})
    )
    body = b'{"total": 2, "data": [{"id": 1, "from": "a", "e-mail": null}, {"id": 2}]}'
    page = reader.read(_response(body))

    assert page.total == 2 and page.next_page_url is UNSET and page.raw is None
    # Null kept, a field not sent stays absent.
    assert [reader.record_type.to_dict(r) for r in page.data] == [
        {"id": 1, "from": "a", "e-mail": None},
        {"id": 2},
    ]
    assert msgspec.json.encode(page.data[0]) == b'{"id":1,"from":"a","e-mail":null}'

    # A field the schema does not name is not skipped: the records come raw, to sort out.
    extra = reader.read(_response(b'{"total": 1, "data": [{"id": 1, "extra": 5}]}'))
    assert extra.raw == [{"id": 1, "extra": 5}] and extra.total == 1


def test_page_reader_unwraps_the_envelope_and_names_bad_answers():
    reader = PageReader(RecordType("things", {"id": {}}))
    wrapped = b'{"status": true, "data": {"next_page_url": null, "data": [{"id": 7}]}}'
    page = reader.read(_response(wrapped))
    assert page.next_page_url is None
    assert [reader.record_type.to_dict(r) for r in page.data] == [{"id": 7}]

    with pytest.raises(TruncatedAnswer, match=r"/api/v1/849/contacts .*cut short"):
        reader.read(_response(b'{"data": [{"id": 1}'))
    with pytest.raises(APIError, match="did not answer with a list of records"):
        reader.read(_response(b'{"message": "Server Error"}'))
    # Records that are not objects are the stream's to reject, one by one.
    assert reader.read(_response(b'{"data": [1, 2]}')).raw == [1, 2]


def test_the_stream_names_settings_are_checked_against_are_the_shipped_streams():
    from tap_mokapen.streams import SHIPPED
    from tap_mokapen.validation import SHIPPED_STREAMS

    assert tuple(vars(stream)["name"] for stream in SHIPPED) == SHIPPED_STREAMS
