"""One pass (list_pass.py) driven as the stream drives it, over a fake list reader:
no HTTP, no sandbox. The commit point is explicit: a checkpoint follows each page the
caller wrote, never a page it did not."""

from __future__ import annotations

import typing as t

import pytest

from tap_mokapen import errors, record_checks, state
from tap_mokapen.list_pass import ListPass, Organization, PassPage
from tap_mokapen.list_reader import Answer
from tap_mokapen.page_size import PageSize
from tap_mokapen.paging import Paginator, paginator_for
from tap_mokapen.tap import TapMokapen
from tests.test_paginator_units import FakeList

PATH = "/api/v1/849/contacts"


class FakeReader:
    """Answers pages of a FakeList as a ListReader would, without HTTP."""

    def __init__(self, server: FakeList, decode: t.Callable, fail_at: int | None = None) -> None:
        self.server = server
        self.decode = decode
        self.fail_at = fail_at
        self.sizing = PageSize.for_endpoint(server.size, None)

    def answers(self, paginator: Paginator) -> t.Iterator[tuple[Answer, Paginator]]:
        while not paginator.finished:
            number = paginator.current_value["page"]
            if number == self.fail_at:
                raise errors.QuotaExhausted(849)
            page = self.decode(self.server.page(number))
            where = f"{PATH} {paginator.describe_position()}"
            paginator = paginator_for(page, paginator, PATH)
            yield Answer(page, PATH, where), paginator


def open_pass(reader: FakeReader, data: dict[str, t.Any]) -> tuple[ListPass, list[str]]:
    tap = TapMokapen(config={"organization_id": 849}, validate_config=False)
    stream = tap.streams["contacts"]
    written_states: list[str] = []
    list_pass = ListPass(
        stream="contacts",
        organization=Organization(849, 849),
        partition=state.Partition(data, "2026-12-01T00:00:00.000000Z"),
        reader=reader,  # type: ignore[arg-type]
        intake=stream.intake,
        run=tap.run,
        progress=stream.progress,
        replication_key="updated_at",
        bookmark=None,
        versions=None,
        table_version=None,
        stream_state={},
        partition_values={"organization_id": 849},
        checkpoints=True,
        write_state=lambda: written_states.append(data["resume"]["next_page"]),
        write_page=lambda page: None,
        show_route=record_checks.ShowRoute("contacts"),
        activate=lambda version: None,
        has_token=lambda: True,
    )
    return list_pass, written_states


def contacts_page(server: FakeList) -> t.Callable:
    tap = TapMokapen(config={"organization_id": 849}, validate_config=False)
    return tap.streams["contacts"].intake.read


def test_each_checkpoint_follows_the_page_written_before_it():
    server = FakeList(25, 10)
    data: dict[str, t.Any] = {}
    list_pass, states = open_pass(FakeReader(server, contacts_page(server)), data)
    written: list[int] = []
    for page in list_pass.pages():
        assert isinstance(page, PassPage)
        # Before the commit, no STATE vouches for this page.
        assert len(states) == len(written) // 10
        written += [record.id for record in page.records]
        list_pass.commit(page)
    list_pass.complete()
    list_pass.close()

    assert written == server.ids
    assert states == [2, 3]  # after pages 1 and 2; the last page ends the pass instead
    assert "resume" not in data
    assert data["last_complete_pass"] == {"records": 25, "pages": 3, "recent": []}


def test_a_page_not_committed_is_read_again_by_the_next_pass():
    server = FakeList(25, 10)
    data: dict[str, t.Any] = {}
    list_pass, _ = open_pass(FakeReader(server, contacts_page(server)), data)
    pages = list_pass.pages()
    list_pass.commit(next(pages))  # page 1 written and committed
    next(pages)  # page 2 read, never written
    list_pass.pause(errors.QuotaExhausted(849))
    list_pass.close()

    assert data["resume"]["next_page"] == 2
    resumed, _ = open_pass(FakeReader(server, contacts_page(server)), data)
    ids = [record.id for page in resumed.pages() for record in page.records]
    assert ids == server.ids[10:]


def test_a_pause_before_the_first_page_keeps_where_the_pass_resumed():
    server = FakeList(25, 10)
    data: dict[str, t.Any] = {"resume": {"next_page": 3, "per_page": 10, "total": 25}}
    list_pass, _ = open_pass(FakeReader(server, contacts_page(server), fail_at=3), data)
    with pytest.raises(errors.QuotaExhausted) as paused:
        next(list_pass.pages())
    list_pass.pause(paused.value)
    list_pass.close()

    assert data["resume"]["next_page"] == 3
