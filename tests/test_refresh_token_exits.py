"""A public app's rotated refresh token survives every exit: a signal during the grant
waits for the new token to be saved, and a store with no room stops the run before the
old token is spent. The tap runs as a process here: the signal and the file-size limit
are the subject."""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import subprocess
import time

from tests.helpers import TAP, run_tap, selecting


def start(config: dict, folder, **popen) -> subprocess.Popen:
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "catalog.json").write_text(json.dumps(selecting("contacts")))
    command = [*TAP, "--config", str(folder / "config.json")]
    command += ["--catalog", str(folder / "catalog.json")]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen
    )


def test_a_sigterm_during_the_grant_waits_until_the_rotated_token_is_saved(sandbox, tmp_path):
    sandbox.reset(rotate_refresh_tokens=True, token_delay_seconds=2)
    store = tmp_path / "tokens.json"
    config = sandbox.config(refresh_token=sandbox.refresh_token(), refresh_token_store=str(store))
    process = start(config, tmp_path)
    deadline = time.monotonic() + 30
    while sandbox.stats().get("token_requests", 0) == 0:  # the grant is under way
        assert time.monotonic() < deadline, "the tap never asked for a token"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 143, stderr
    assert "Stopped by signal SIGTERM" in stderr
    assert "Stored the rotated refresh token" in stderr
    # The configured token was rotated away; the stored one lets the next run in.
    sandbox.update(token_delay_seconds=0)
    again = run_tap(config, catalog=selecting("contacts"))
    assert again.returncode == 0, again.stderr
    assert len(again.records("contacts")) == 500


def test_a_store_that_cannot_grow_stops_the_run_before_the_token_is_spent(sandbox, tmp_path):
    sandbox.reset(rotate_refresh_tokens=True)
    store = tmp_path / "tokens.json"
    config = sandbox.config(refresh_token=sandbox.refresh_token(), refresh_token_store=str(store))

    def no_room() -> None:  # no file of the child may grow past 100 bytes
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100, 100))

    process = start(config, tmp_path, preexec_fn=no_room)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 1, stderr
    assert f"refresh_token_store {store} cannot be written" in stderr
    assert "the refresh token was not spent" in stderr
    assert "Traceback" not in stderr
    assert sandbox.stats().get("token_requests", 0) == 0
    # The configured token still works.
    again = run_tap(config, catalog=selecting("contacts"))
    assert again.returncode == 0, again.stderr


def test_room_is_taken_by_writing_where_the_file_system_cannot_preallocate(
    sandbox, tmp_path, monkeypatch
):
    def unsupported(*_: object) -> None:
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(os, "posix_fallocate", unsupported)
    sandbox.reset(rotate_refresh_tokens=True)
    store = tmp_path / "tokens.json"
    config = sandbox.config(refresh_token=sandbox.refresh_token(), refresh_token_store=str(store))
    run = run_tap(config, catalog=selecting("contacts"))
    assert run.returncode == 0, run.stderr
    assert "Stored the rotated refresh token" in run.stderr
    assert not list(tmp_path.glob(".tokens-*"))  # no reserved file left behind


def test_the_rotated_token_is_saved_even_when_the_rest_of_the_answer_is_broken(sandbox, tmp_path):
    sandbox.reset(rotate_refresh_tokens=True, token_without_access_token=True)
    store = tmp_path / "tokens.json"
    config = sandbox.config(refresh_token=sandbox.refresh_token(), refresh_token_store=str(store))
    broken = run_tap(config, catalog=selecting("contacts"))
    assert broken.returncode == 1
    assert "answered without an access_token" in broken.stderr

    sandbox.update(token_without_access_token=False)
    again = run_tap(config, catalog=selecting("contacts"))
    assert again.returncode == 0, again.stderr  # with the token the broken answer rotated
