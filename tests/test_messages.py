"""Every message reads as written sentences and quotes nothing at length, whatever a
server or a config holds."""

from __future__ import annotations

import json

import pytest

from tap_mokapen.errors import sentences
from tests.helpers import run_tap

LIST = ["--list-organizations"]


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("bad refresh token", "Check it."), "bad refresh token. Check it."),
        (("Not authorized.", "Check it."), "Not authorized. Check it."),
        (("Gone!  ", "", "Check it"), "Gone! Check it."),
    ],
)
def test_parts_become_sentences_with_one_full_stop_each(parts, expected):
    assert sentences(*parts) == expected


@pytest.mark.parametrize("said", ["bad refresh token", "The refresh token is invalid."])
def test_a_refused_refresh_token_reads_as_sentences(sandbox, tmp_path, said):
    sandbox.reset(refresh_refused_message=said)
    store = str(tmp_path / "tokens.json")
    run = run_tap(sandbox.config(refresh_token="not-a-token", refresh_token_store=store))

    assert run.returncode == 1
    # The organization's cause, said once: in the run's last line.
    (line,) = [line for line in run.error_lines() if "refresh token was revoked" in line]
    assert line == run.error_lines()[-1]
    assert f"{said.rstrip('.')}. The refresh token was revoked" in line
    assert ".." not in line


def test_a_long_declared_path_is_refused_in_a_short_line(sandbox):
    declared = [{"name": "deals", "path": "d" * 100_000}]
    run = run_tap(sandbox.config(extra_streams=declared), catalog=None)

    assert run.returncode == 1
    assert "path must be the part after" in run.stderr
    assert max(map(len, run.stderr.splitlines())) < 2000


def test_a_huge_organization_listing_is_logged_in_a_short_line(sandbox):
    sandbox.update(listed_oddities=[{"id": 10_000 + n} for n in range(5_000)])
    done = run_tap(sandbox.config(), args=LIST)

    assert done.returncode == 0, done.stderr[-2000:]
    assert len(json.loads(done.stdout)) == 5_002  # stdout has them all
    assert max(map(len, done.stderr.splitlines())) < 2000
    assert "more characters)" in done.stderr
