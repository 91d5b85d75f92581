"""The Laravel paginator's arithmetic, in-process: fake pages, no HTTP, no sandbox."""

from __future__ import annotations

import json
import math
import typing as t

import pytest
import requests

from tap_mokapen.errors import APIError
from tap_mokapen.paging import Paginator, budget, known_budget, open_list, paginator_for
from tap_mokapen.record_type import RecordType
from tap_mokapen.shapes import PageReader

READER = PageReader(RecordType("things", {"id": {"type": "integer"}}, required=["id"]))


def answer(body: dict[str, t.Any]) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response._content = json.dumps(body).encode()
    response.url = "http://127.0.0.1/api/v1/849/things"
    return response


class FakeList:
    """A Laravel length-aware paginator over a list of ids that may change between pages."""

    def __init__(self, count: int, size: int, **omit: bool) -> None:
        self.ids = list(range(1, count + 1))
        self.size = size
        self.omit = omit
        self.requests = 0

    def page(self, number: int) -> requests.Response:
        self.requests += 1
        last = max(1, math.ceil(len(self.ids) / self.size))
        start = (number - 1) * self.size
        body: dict[str, t.Any] = {
            "current_page": number,
            "data": [{"id": i} for i in self.ids[start : start + self.size]],
            "per_page": self.size,
            "total": len(self.ids),
            "last_page": last,
            "next_page_url": f"/things?page={number + 1}" if number < last else None,
        }
        for key in self.omit:
            body.pop(key)
        return answer(body)


def step(paginator: Paginator, response: requests.Response) -> Paginator:
    """An answer as the stream handles it: the paginator that reads on from it (the
    first answer says the list's shape), advanced past it."""
    page = READER.read(response)
    following = paginator_for(page, paginator)
    following.advance(page, "/api/v1/849/things")
    return following


def read_all(
    server: FakeList,
    paginator: Paginator | None = None,
    before_page: t.Callable[[int], None] = lambda _: None,
) -> tuple[list[int], Paginator]:
    paginator = paginator or open_list(None)
    seen: list[int] = []
    while not paginator.finished:
        before_page(server.requests)
        response = server.page(paginator.current_value["page"])
        seen += [record.id for record in READER.read(response).data]
        paginator = step(paginator, response)
    return seen, paginator


def test_without_drift_every_page_is_read_once():
    server = FakeList(95, 10)
    seen, paginator = read_all(server)
    assert seen == server.ids
    assert server.requests == 10
    assert paginator.drift_rereads == 0
    assert paginator.pages() == (10, 10)


@pytest.mark.parametrize("omit", [("next_page_url",), ("next_page_url", "last_page")])
def test_missing_paging_hints_fall_back_to_last_page_then_an_empty_page(omit):
    server = FakeList(30, 10, **dict.fromkeys(omit, True))
    seen, _ = read_all(server)
    assert seen == server.ids
    # Without any hint the end is only known from an empty page.
    assert server.requests == (4 if "last_page" in omit else 3)


def test_deletions_behind_the_reader_are_read_again_not_skipped():
    server = FakeList(100, 10)
    survivors = set(server.ids)

    def delete_early_records(requests_so_far: int) -> None:
        if requests_so_far == 4:  # after pages 1-4: records on page 1 vanish
            for record_id in (1, 2, 3):
                server.ids.remove(record_id)
                survivors.discard(record_id)

    seen, paginator = read_all(server, before_page=delete_early_records)
    assert survivors <= set(seen)
    assert paginator.drift_rereads >= 1
    # One page read again, and the page past the end once, to tell the fallen total was
    # deletions: the tap pays for drift only where it happened.
    assert server.requests == 12
    assert paginator.verdict() is None


def test_a_resume_position_continues_and_notices_deletions_made_overnight():
    server = FakeList(100, 10)
    first = open_list(None)
    for _ in range(3):
        response = server.page(first.current_value["page"])
        first = step(first, response)
    position = first.position()
    assert position == {"shape": "page_numbers", "next_page": 4, "total": 100, "per_page": 10}
    assert json.loads(json.dumps(position)) == position  # fit for STATE

    del server.ids[0:5]  # five records on page 1 deleted between runs
    seen, _ = read_all(server, open_list(position))
    assert set(server.ids[25:]) <= set(seen)  # those that slid onto page 3 included


def test_a_server_answering_another_page_is_an_error():
    paginator = open_list({"next_page": 2})
    with pytest.raises(APIError, match="returned page 1 when page 2 was asked for"):
        paginator = step(paginator, answer({"current_page": 1, "data": [{"id": 1}], "total": 50}))


def test_the_same_records_twice_are_an_error():
    paginator = open_list(None)
    body = {"data": [{"id": 1}, {"id": 2}], "next_page_url": "/things?page=2"}
    paginator = step(paginator, answer(body))
    with pytest.raises(APIError, match="same records for page 2"):
        paginator = step(paginator, answer(body))


def test_the_page_size_the_server_used_wins():
    paginator = open_list(None)
    paginator = step(
        paginator, answer({"data": [{"id": i} for i in range(15)], "total": 40, "last_page": 3})
    )
    assert paginator.per_page == 15 and paginator.current_value == {
        "page": 2,
        "per_page": 100,
    }
    assert paginator.describe_position() == "page 2"


def test_the_request_budget_stops_before_the_page_it_cannot_afford():
    paginator = open_list(None, page_size=10)
    pages = 0
    with pytest.raises(APIError, match="kept announcing pages"):
        while True:  # a server announcing 2 records but serving new ones forever
            number = paginator.current_value["page"]
            body = {"current_page": number, "data": [{"id": number * 10 + i} for i in range(10)]}
            paginator = step(paginator, answer({**body, "total": 2, "next_page_url": "more"}))
            pages += 1
    assert pages == budget(1)  # 13 answers taken; the 14th is refused...
    # ...and the resume point is the page that was refused, not the one after it.
    assert paginator.position()["next_page"] == pages + 1


def test_a_full_page_of_a_plain_list_is_checked_once_for_more():
    whole = open_list(None, page_size=2)
    listed = [{"id": 1}, {"id": 2}]
    whole = step(whole, answer(listed))
    assert whole.current_value == {"page": 2, "per_page": 2}
    whole = step(whole, answer(listed))  # the same records: the list was all
    assert whole.finished

    paged = open_list(None, page_size=2)
    paged = step(paged, answer(listed))
    paged = step(paged, answer([{"id": 3}, {"id": 4}]))  # more: it pages without saying so
    assert paged.current_value == {"page": 3, "per_page": 2}


def test_a_stale_cursor_falls_back_to_reading_from_the_start():
    paginator = open_list({"shape": "cursor", "cursor": "abc"})
    assert paginator.current_value == {"cursor": "abc", "per_page": 100}
    paginator = step(
        paginator, answer({"current_page": 1, "data": [{"id": 1}], "total": 3, "last_page": 3})
    )
    assert paginator.current_value == {"page": 2, "per_page": 100}


def test_links_next_without_meta_keeps_paging():
    paginator = open_list(None)
    paginator = step(paginator, answer({"data": [{"id": 1}], "links": {"next": "x?page=2"}}))
    assert paginator.current_value == {"page": 2, "per_page": 100}


def test_a_smaller_page_size_asks_again_for_the_first_record_not_read():
    paginator = open_list(None, page_size=1000)
    assert paginator.current_value == {"page": 1, "per_page": 1000}
    paginator.resize(100)  # refused before any answer: page 1 again, smaller
    assert paginator.current_value == {"page": 1, "per_page": 100}
    records = [{"id": i} for i in range(1, 101)]
    paginator = step(
        paginator, answer({"current_page": 1, "data": records, "per_page": 100, "total": 250})
    )
    paginator = step(
        paginator,
        answer(
            {"current_page": 2, "data": records, "per_page": 100, "total": 250}
            | {"data": [{"id": i} for i in range(101, 201)]}
        ),
    )
    paginator.resize(40)  # 200 records read: page 6 of 40 starts at record 201
    assert paginator.current_value == {"page": 6, "per_page": 40}
    assert paginator.describe_position() == "page 6"


def test_a_resume_point_from_another_page_size_loses_no_record():
    # Stopped before page 5 at 100 a page: 400 records read. At 1000 a page that is
    # page 1 again (a re-read, never a gap)...
    position = {"shape": "page_numbers", "next_page": 5, "total": 2500, "per_page": 100}
    paginator = open_list(position, page_size=1000)
    assert paginator.current_value == {"page": 1, "per_page": 1000}
    # ...and at 200 a page it is page 3, which starts at record 401.
    paginator = open_list(position, page_size=200)
    assert paginator.current_value == {"page": 3, "per_page": 200}


def test_a_plain_list_clamped_below_the_size_asked_is_still_probed_and_paged():
    paginator = open_list(None, page_size=1000)
    first = [{"id": i} for i in range(1, 101)]  # the server caps a silent page at 100
    paginator = step(paginator, answer(first))
    assert paginator.current_value == {"page": 2, "per_page": 1000}
    paginator = step(paginator, answer([{"id": i} for i in range(101, 201)]))
    assert not paginator.repeated_page
    assert paginator.current_value["page"] == 3  # pages of 100, the size it served

    whole = open_list(None, page_size=1000)
    whole = step(whole, answer(first))
    whole = step(whole, answer(first))  # the same list again: it was whole
    assert whole.finished and whole.repeated_page  # and page 2 is not emitted again


def cursor_page(ids: range, cursor: str | None) -> requests.Response:
    return answer(
        {"data": [{"id": i} for i in ids], "per_page": 10, "next_cursor": cursor}
        | {"next_page_url": f"x?cursor={cursor}" if cursor else None}
    )


def test_a_cursor_list_spends_no_more_than_its_last_complete_pass_allows():
    paginator = open_list(None, page_size=10, known_pages=2)
    answered = 0
    with pytest.raises(APIError, match="102 pages expected"):
        while True:  # a cursor that never ends
            paginator = step(
                paginator, cursor_page(range(answered * 10, answered * 10 + 10), f"c{answered}")
            )
            answered += 1
    # Room for the list to grow tenfold (an import), and no more.
    assert answered == budget(known_budget(2) or 0) == budget(102)


def test_an_empty_page_that_says_more_follow_is_asked_again_then_doubted():
    paginator = open_list(None, page_size=10)
    full = {"per_page": 10, "total": 40, "last_page": 4}
    paginator = step(
        paginator, answer({**full, "current_page": 1, "data": [{"id": i} for i in range(10)]})
    )
    empty = {**full, "current_page": 2, "data": [], "next_page_url": "x?page=3"}
    paginator = step(paginator, answer(empty))
    assert paginator.current_value["page"] == 2 and paginator.verdict() is None  # again
    paginator = step(paginator, answer(empty))
    assert paginator.current_value["page"] == 3  # it reads on, past the page
    assert paginator.doubt and "an empty page, though the answer says more" in paginator.doubt
    assert paginator.verdict() == paginator.doubt
    # A second empty page that stands ends the pass: a total may over-count.
    paginator = step(paginator, answer({**empty, "current_page": 3}))
    paginator = step(paginator, answer({**empty, "current_page": 3}))
    assert paginator.finished and "(and 1 more)" in (paginator.verdict() or "")


def test_a_short_page_that_is_not_the_last_never_moves_past_unread_positions_unnoticed():
    paginator = open_list(None, page_size=10)
    keys = {"per_page": 10, "total": 30, "last_page": 3}
    paginator = step(
        paginator, answer({**keys, "current_page": 1, "data": [{"id": i} for i in range(10)]})
    )
    short = {**keys, "current_page": 2, "data": [{"id": 10}], "next_page_url": "x?page=3"}
    paginator = step(paginator, answer(short))
    assert paginator.current_value["page"] == 2  # asked again
    full = [{"id": i} for i in range(10, 20)]
    paginator = step(paginator, answer({**short, "data": full}))  # a glitch seen once
    assert paginator.current_value["page"] == 3 and paginator.verdict() is None

    standing = open_list(None, page_size=10)
    standing = step(
        standing, answer({**keys, "current_page": 1, "data": [{"id": i} for i in range(10)]})
    )
    standing = step(standing, answer(short))
    standing = step(standing, answer(short))  # short again: it stands
    assert standing.current_value["page"] == 3  # read on past it...
    assert "1 records, though pages hold 10" in (standing.doubt or "")  # ...doubted
    standing = step(
        standing, answer({**keys, "current_page": 3, "data": [{"id": i} for i in range(20, 30)]})
    )
    assert standing.finished and standing.verdict() == standing.doubt


def test_page_one_short_twice_is_a_silent_clamp_and_its_count_the_page_size():
    paginator = open_list(None, page_size=1000)
    claims = {"per_page": 1000, "total": 250, "last_page": 3, "next_page_url": "x?page=2"}
    first = answer({**claims, "current_page": 1, "data": [{"id": i} for i in range(100)]})
    paginator = step(paginator, first)
    paginator = step(paginator, first)
    assert paginator.current_value == {"page": 2, "per_page": 1000}
    assert paginator.verdict() is None
    assert paginator.position()["per_page"] == 100 and paginator.position()["clamped"] is True


def test_a_total_that_falls_for_good_is_a_doubt_and_a_flap_is_not():
    for totals, doubted in (([30, 20, 20], True), ([30, 20, 30], False)):
        paginator = open_list(None, page_size=10)
        number = 1
        for total in totals:
            data = [{"id": number * 10 + i} for i in range(10 if number < 3 else 5)]
            keys = {"per_page": 10, "total": total, "current_page": number}
            paginator = step(paginator, answer({**keys, "data": data, "next_page_url": "more"}))
            if paginator.finished:
                break
            number = paginator.current_value["page"]
        assert bool(paginator.verdict()) is doubted, totals


def test_a_resumed_cursor_answered_with_an_empty_end_starts_over_and_a_real_end_does_not():
    paginator = open_list({"shape": "cursor", "cursor": "old"})
    paginator = step(paginator, cursor_page(range(0), None))  # expired: an empty end of the list
    assert paginator.current_value == {"page": 1, "per_page": 100}
    assert paginator.restarts == 1

    last = open_list({"shape": "cursor", "cursor": "old"})
    last = step(last, cursor_page(range(190, 200), None))  # paused before the last page: its end
    assert last.finished and last.restarts == 0 and last.verdict() is None


def test_a_versioned_pass_probes_page_2_of_any_plain_list():
    listed = [{"id": i} for i in range(77)]
    probing = open_list(None, probe_whole_list=True)
    probing = step(probing, answer(listed))
    assert probing.current_value == {"page": 2, "per_page": 100}
    plain = open_list(None)
    plain = step(plain, answer(listed))
    assert plain.finished


def test_a_page_larger_than_a_clamp_refutes_it_and_ends_the_pass_doubted():
    paginator = open_list(None, page_size=1000)
    claims = {"per_page": 1000, "total": 2000, "last_page": 2, "next_page_url": "x?page=2"}
    short = answer({**claims, "current_page": 1, "data": [{"id": i} for i in range(10)]})
    paginator = step(paginator, short)
    paginator = step(paginator, short)  # short twice: taken for a clamp at 10...
    page_2 = [{"id": i} for i in range(1000, 2000)]
    paginator = step(paginator, answer({**claims, "current_page": 2, "data": page_2}))
    assert paginator.finished  # ...which page 2 refutes
    assert "more than the page size 10" in (paginator.verdict() or "")


def test_a_fallen_total_is_accepted_when_the_page_past_the_end_is_empty_or_the_last_again():
    for past_the_end in ("empty", "the last page again"):
        server = FakeList(100, 10)
        paginator = open_list(None)
        while not paginator.finished:
            if server.requests == 4:
                server.ids.remove(50)  # deleted after page 4 was read
            number = paginator.current_value["page"]
            if number > 10 and past_the_end != "empty":
                number = 10  # a server that answers past the end with its last page
            paginator = step(paginator, server.page(number))
        assert paginator.verdict() is None, past_the_end


class SilentList:
    """A plain JSON array paged by page and per_page without saying so."""

    def __init__(self, count: int, size: int) -> None:
        self.ids = list(range(1, count + 1))
        self.size = size

    def page(self, number: int) -> requests.Response:
        start = (number - 1) * self.size
        return answer([{"id": i} for i in self.ids[start : start + self.size]])


@pytest.mark.parametrize("next_page", [1, 2, 3])
def test_a_silently_paged_list_resumed_anywhere_loses_no_record(next_page):
    """However a pass over a plain list that pages was left (a failure may leave the
    page numbers of the hand-over, before its page was taken), the next pass sees
    every record: past page 1 it reads the list from its start."""
    server = SilentList(55, 10)
    position = {"shape": "page_numbers", "next_page": next_page, "per_page": 10}
    paginator: Paginator = open_list(position, page_size=10)
    seen: list[int] = []
    while not paginator.finished:
        response = server.page(paginator.current_value["page"])
        paginator = step(paginator, response)
        if not paginator.repeated_page:
            seen += [record.id for record in READER.read(response).data]
    assert set(seen) == set(server.ids)
    assert paginator.restarts == 1  # a resumed pass that meets another shape starts over


def test_a_guessed_clamp_is_checked_by_asking_for_the_guessed_size():
    """Every page holds one record fewer than asked, and no total says how many there
    are: 999 looks like a clamp. Asked for 999, the server serves 998: still short, so
    the guess was wrong and the pass is doubted, instead of one record a page lost."""

    def served(number: int, asked: int) -> requests.Response:
        start = (number - 1) * asked
        ids = list(range(start + 1, min(start + asked - 1, 5000) + 1))
        more = start + asked < 5000
        return answer(
            {"current_page": number, "data": [{"id": i} for i in ids]}
            | ({"next_page_url": f"x?page={number + 1}"} if more else {"next_page_url": None})
        )

    paginator: Paginator = open_list(None, page_size=1000)
    while not paginator.finished:
        asked = paginator.current_value
        paginator = step(paginator, served(asked["page"], asked["per_page"]))
    assert paginator.verdict() is not None
