"""Unit tests of small pure functions (no HTTP)."""

from __future__ import annotations

import datetime as dt

import pytest
import requests

from tap_mokapen import retry
from tap_mokapen.errors import RequestBudgetSpent
from tap_mokapen.limits import RequestPacer, SlidingWindowLimiter
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
    assert retry.retry_after_seconds(response(429, b'{"retry_after": "45 seconds"}')) == 45
    assert retry.retry_after_seconds(response(429, b"{}", {"Retry-After": "7"})) == 7
    both = response(429, b'{"retry_after": "3 seconds"}', {"Retry-After": "9"})
    assert retry.retry_after_seconds(both) == 9
    assert retry.retry_after_seconds(response(503, b"oops")) is None


def test_quota_body_is_told_apart_from_throttle():
    quota = b'{"message": "Quota exceeded", "API daily request limit exceeded.\\n": 2000}'
    assert retry.is_quota_exhausted(response(429, quota))
    throttle = b'{"status": false, "message": "Too Many Requests", "retry_after": "45 seconds"}'
    assert not retry.is_quota_exhausted(response(429, throttle))


def test_api_message_describes_html_pages():
    page = b"<html><head><title>502 Bad Gateway</title></head></html>"
    assert retry.api_message(response(502, page, {"Content-Type": "text/html"})) == (
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
    assert slept == [8.0]  # the first answer was recorded at t=1: free again at t=11


def test_pacer_enforces_the_run_budget():
    pacer = RequestPacer(None, max_requests=2)
    for _ in range(2):
        with pacer.slot():
            pass
    with pytest.raises(RequestBudgetSpent), pacer.slot():
        pass
    assert pacer.requests == 2
