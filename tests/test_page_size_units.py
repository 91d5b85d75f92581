"""page_size.py in-process: what a refusal, an answer and a remembered size lead to."""

from __future__ import annotations

import datetime as dt

import pytest

from tap_mokapen.errors import PageSizeRefused
from tap_mokapen.page_size import DEFAULT_PAGE_SIZE, PageSize


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("The per page field must not be greater than 100.", 100),
        ("The per page may not be greater than 250.", 250),
        ("The per page field must be between 1 and 200.", 200),
        ("The per page field is invalid.", 500),  # no number: half
        ("per_page must be at most 5000", 500),  # a number above the size asked: half
    ],
)
def test_a_refusal_asks_for_the_limit_it_names_or_half(message, expected):
    sizing = PageSize.for_endpoint(None, None)
    assert sizing.refused(PageSizeRefused(message)) == expected
    assert sizing.asked == expected and sizing.learning_requests == 1
    assert sizing.remembered()["largest"] == expected


def test_a_refusal_of_a_single_record_leaves_nothing_to_try():
    sizing = PageSize.for_endpoint(1, None)
    assert sizing.refused(PageSizeRefused("The per page field is invalid.")) is None


def test_a_page_served_at_the_size_asked_keeps_nothing_and_forgets_a_smaller_limit():
    fresh = PageSize.for_endpoint(None, None)
    assert not fresh.served()
    assert fresh.remembered() is None
    checked = dt.datetime.now(dt.UTC).isoformat()
    old = {"largest": 300, "checked_at": checked, "how": "refused", "confirmed": False}
    rechecked = PageSize.for_endpoint(None, old)  # not confirmed: the default is asked
    assert rechecked.served()
    assert rechecked.remembered() is None


@pytest.mark.parametrize(
    ("how", "days_ago", "confirmed", "asked"),
    [
        ("refused", 2, True, 300),
        ("refused", 2, False, DEFAULT_PAGE_SIZE),  # seen by one run only: asked again
        ("refused", 8, True, DEFAULT_PAGE_SIZE),
        ("failed", 2, True, DEFAULT_PAGE_SIZE),  # faults may have been an outage: a day
        ("refused", -3, True, DEFAULT_PAGE_SIZE),  # checked "in the future": a wrong clock
    ],
)
def test_a_learned_size_is_used_once_confirmed_until_it_is_old(how, days_ago, confirmed, asked):
    checked = (dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)).isoformat()
    remembered = {"largest": 300, "checked_at": checked, "how": how, "confirmed": confirmed}
    assert PageSize.for_endpoint(None, remembered).asked == asked
    assert PageSize.for_endpoint(700, remembered).asked == 700  # the user's size wins


def test_a_size_is_confirmed_when_a_second_run_learns_it_again():
    first = PageSize.for_endpoint(None, None)
    first.refused(PageSizeRefused("The per page field must not be greater than 10."))
    assert first.remembered()["confirmed"] is False

    transient = PageSize.for_endpoint(None, first.remembered())
    assert transient.asked == DEFAULT_PAGE_SIZE  # one 422 pins nothing
    assert transient.served()
    assert transient.remembered() is None  # the refusal forgotten

    again = PageSize.for_endpoint(None, first.remembered())
    again.refused(PageSizeRefused("The per page field must not be greater than 10."))
    assert again.remembered() | {"checked_at": None} == {
        "largest": 10,
        "how": "refused",
        "confirmed": True,
        "checked_at": None,
    }
    assert PageSize.for_endpoint(None, again.remembered()).asked == 10


def test_a_checked_at_in_the_future_is_never_kept():
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
    remembered = {"largest": 300, "checked_at": future, "how": "refused", "confirmed": True}
    sizing = PageSize.for_endpoint(None, remembered)
    assert sizing.checked_at is None
    assert sizing.asked == DEFAULT_PAGE_SIZE
    sizing.refused(PageSizeRefused("The per page field must not be greater than 300."))
    assert sizing.remembered()["checked_at"] <= dt.datetime.now(dt.UTC).isoformat()


def test_a_malformed_remembered_size_is_ignored():
    for remembered in ("300", {"largest": "big"}, {"largest": True}, {"largest": -1}, []):
        assert PageSize.for_endpoint(None, remembered).asked == DEFAULT_PAGE_SIZE


def test_a_checked_at_past_the_calendars_start_counts_as_unknown():
    remembered = {
        "largest": 300,
        "checked_at": "0001-01-01T00:00:00+01:00",
        "how": "refused",
        "confirmed": True,
    }
    assert PageSize.for_endpoint(None, remembered).asked == DEFAULT_PAGE_SIZE
