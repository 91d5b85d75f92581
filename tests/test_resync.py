"""`tap-mokapen --state FILE --resync STREAM`: one stream read again in full, the others
going on from their bookmarks, without a request and without a config."""

from __future__ import annotations

import json

from tests.helpers import run_tap

RESYNC_CONTACTS = ["--resync", "contacts"]


def synced(sandbox) -> dict:
    sandbox.reset(extra_fields=True)
    first = run_tap(sandbox.config())
    assert first.returncode == 0, first.stderr[-2000:]
    return first.final_state


def test_the_resynced_stream_is_read_in_full_and_the_others_from_their_bookmarks(sandbox):
    state = synced(sandbox)
    before = sandbox.stats()["api_requests"]
    resynced = run_tap(None, state=state, args=RESYNC_CONTACTS)

    assert resynced.returncode == 0, resynced.stderr[-2000:]
    assert sandbox.stats()["api_requests"] == before  # nothing was requested
    new_state = json.loads(resynced.stdout)
    (contacts,) = new_state["bookmarks"]["contacts"]["partitions"]
    assert "replication_key_value" not in contacts
    assert new_state["bookmarks"]["tasks"] == state["bookmarks"]["tasks"]
    # Learned fields keep their column types.
    assert "legacy_ref" in new_state["bookmarks"]["contacts"]["learned_fields"]
    assert "the position of 1 partition(s) forgotten" in resynced.stderr

    edited = set(sandbox.mutate("tasks", update=3)["updated"])
    again = run_tap(sandbox.config(), state=new_state)
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(again.records("contacts")) == len(sandbox.records("contacts"))
    tasks = {r["id"] for r in again.records("tasks")}
    assert edited <= tasks and len(tasks) < len(sandbox.records("tasks")) / 2


def test_meltanos_form_of_the_state_goes_in_and_out(sandbox):
    state = synced(sandbox)
    resynced = run_tap(None, state={"singer_state": state}, args=RESYNC_CONTACTS)

    assert resynced.returncode == 0, resynced.stderr[-2000:]
    wrapped = json.loads(resynced.stdout)
    assert set(wrapped) == {"singer_state"}
    assert "replication_key_value" not in str(wrapped["singer_state"]["bookmarks"]["contacts"])


def test_a_stream_the_state_does_not_hold_is_one_line_with_the_nearest_name(sandbox):
    state = synced(sandbox)
    done = run_tap(None, state=state, args=["--resync", "contact"])

    assert done.returncode == 1
    assert done.stdout == ""
    (error,) = done.error_lines()
    assert "holds nothing for 'contact' (did you mean 'contacts'?)" in error


def test_without_a_state_it_says_what_it_needs():
    done = run_tap(None, args=RESYNC_CONTACTS)

    assert done.returncode == 1
    (error,) = done.error_lines()
    assert "--resync" in error and "--state FILE" in error


def test_an_empty_or_broken_state_file_is_one_line(tmp_path):
    for text, says in (("", "is empty"), ("{not json", "not valid JSON")):
        state_file = tmp_path / "state.json"
        state_file.write_text(text)
        done = run_tap(None, args=["--state", str(state_file), *RESYNC_CONTACTS])

        assert done.returncode == 1
        (error,) = done.error_lines()
        assert says in error
        assert "WARNING" not in done.stderr
