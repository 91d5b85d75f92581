"""The state rules, in-process: resume tokens, cycles and bookmark candidates."""

from __future__ import annotations

import json

import pytest

from tap_mokapen import state

CYCLE = "2026-11-28T10:00:00.000000Z"


def test_a_checkpoint_keeps_the_paginator_token_opaque_and_resumes_from_it():
    partition: dict = {"context": {"organization_id": 849}}
    owner = state.Partition(partition, CYCLE)
    assert owner.open("updated_at") is None
    state.track_bookmark(partition, "updated_at", "2025-01-02T00:00:00.000000Z")
    token = {"cursor": "eyJpZCI6NDJ9", "anything": [1, 2]}  # a shape state.py knows nothing of
    read = state.PassRead(records=250, pages=3, doubt="page 2: an empty page")
    owner.read = read
    owner.checkpoint(token)

    stored = json.loads(json.dumps(partition))  # as a target stores it
    assert stored["resume"]["max_seen"] == "2025-01-02T00:00:00.000000Z"
    reopened = state.Partition(stored, CYCLE)
    assert reopened.open("updated_at") == token
    # What the pass read in earlier runs, its doubt included, carries over to its end.
    assert reopened.read == read
    # The newest value seen before the interruption seeds the next run's candidate.
    assert stored["progress_markers"]["replication_key_value"] == "2025-01-02T00:00:00.000000Z"


def test_the_bookmark_candidate_only_moves_forward():
    partition: dict = {}
    state.Partition(partition, CYCLE).open("updated_at")
    for value in ("2025-03-01", "2025-01-01", None, "2025-02-01"):
        state.track_bookmark(partition, "updated_at", value)
    assert partition["progress_markers"]["replication_key_value"] == "2025-03-01"


def test_a_pause_saves_the_cursor_and_leaves_the_bookmark_alone():
    partition: dict = {"replication_key_value": "2024-12-31T00:00:00.000000Z"}
    owner = state.Partition(partition, CYCLE)
    owner.open("updated_at")
    state.track_bookmark(partition, "updated_at", "2025-06-01T00:00:00.000000Z")
    owner.pause({"next_page": 4})
    assert partition["resume"]["next_page"] == 4
    assert "progress_markers" not in partition  # the SDK then keeps the old bookmark
    assert partition["replication_key_value"] == "2024-12-31T00:00:00.000000Z"


def test_finishing_drops_the_cursor_and_caps_the_bookmark_at_the_cycle_start():
    partition: dict = {"resume": {"next_page": 3, "cycle_started_at": CYCLE}}
    owner = state.Partition(partition, CYCLE)
    owner.open("updated_at")
    state.track_bookmark(partition, "updated_at", "2099-01-01T00:00:00.000000Z")  # server clock
    owner.read = state.PassRead(500, 5)
    owner.finish()
    assert "resume" not in partition
    assert owner.completed_in_cycle()
    assert not state.Partition(partition, "2026-11-29T10:00:00.000000Z").completed_in_cycle()
    assert partition["progress_markers"]["replication_key_value"] == ("2026-11-28T09:55:00.000000Z")
    assert owner.last_complete_pass() == state.PassRead(500, 5)


def test_a_pass_with_a_doubt_ends_its_cycle_but_keeps_the_bookmark():
    partition: dict = {
        "replication_key_value": "2024-12-31T00:00:00.000000Z",
        "last_complete_pass": {"records": 500, "pages": 5},
    }
    owner = state.Partition(partition, CYCLE)
    owner.open("updated_at")
    state.track_bookmark(partition, "updated_at", "2025-06-01T00:00:00.000000Z")
    owner.read = state.PassRead(10, 5, "page 2 short")
    owner.finish()
    assert owner.completed_in_cycle()
    assert "progress_markers" not in partition  # the SDK then keeps the old bookmark
    assert owner.last_complete_pass() == state.PassRead(500, 5)


def test_an_unfinished_cycle_belongs_to_its_organization():
    tap_state = {
        "bookmarks": {
            "contacts": {
                "partitions": [
                    {"context": {"organization_id": 849}, "resume": {"cycle_started_at": CYCLE}},
                    {"context": {"organization_id": 850}, "cycle_completed": CYCLE},
                ]
            },
            "organizations": {"resume": {"cycle_started_at": "2026-11-27T00:00:00.000000Z"}},
        }
    }
    assert state.unfinished_cycle(tap_state, 849, owns_unpartitioned=False) == CYCLE
    assert state.unfinished_cycle(tap_state, 850, owns_unpartitioned=False) is None
    # Unpartitioned streams belong to the first organization's cycle.
    assert state.unfinished_cycle(tap_state, 849, owns_unpartitioned=True) == (
        "2026-11-27T00:00:00.000000Z"
    )


NOW = "2026-11-28T10:00:00.000000Z"


@pytest.mark.parametrize(
    ("resume", "problem"),
    [
        ({"next_page": "3", "cycle_started_at": CYCLE}, "resume point is malformed"),
        (None, None),
        ([1, 2], "resume point is malformed"),
        ({"next_page": 3}, "resume point is malformed"),
        ({"next_page": 3, "cycle_started_at": "yesterday-ish"}, "resume point is malformed"),
    ],
)
def test_a_malformed_resume_point_is_dropped_with_one_line(resume, problem):
    tap_state = {"bookmarks": {"contacts": {"partitions": [{"context": {"organization_id": 849}}]}}}
    partition = tap_state["bookmarks"]["contacts"]["partitions"][0]
    if resume is not None:
        partition["resume"] = resume
    problems = state.repair(tap_state, NOW)
    assert "resume" not in partition or resume is None
    assert (problems == []) if problem is None else problem in problems[0]


def test_bookmarks_in_the_future_are_capped_and_garbage_is_dropped():
    tap_state = {
        "bookmarks": {
            "contacts": {"replication_key_value": "9999-01-01T00:00:00.000000Z"},
            "tasks": {"replication_key_value": "not a date"},
            "broken": [1],
        }
    }
    problems = state.repair(tap_state, NOW)
    assert tap_state["bookmarks"]["contacts"]["replication_key_value"] == NOW
    assert "replication_key_value" not in tap_state["bookmarks"]["tasks"]
    assert "broken" not in tap_state["bookmarks"]
    assert len(problems) == 3
