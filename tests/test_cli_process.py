"""Each command of the installed ``tap-mokapen`` as its own process, once: the rest of the
suite runs the same command line in-process (tests/helpers.py's run_tap)."""

from __future__ import annotations

import json

import pytest

from tests.helpers import run_tap_process


@pytest.mark.parametrize(
    ("args", "check"),
    [
        ([], lambda run: len(run.records("contacts")) == 500 and run.states),
        (["--about", "--format=json"], lambda run: json.loads(run.stdout)["name"]),
        (["--discover"], lambda run: json.loads(run.stdout)["streams"]),
        (["--plan=json"], lambda run: json.loads(run.stdout)),
        (["--list-organizations"], lambda run: json.loads(run.stdout)),
    ],
    ids=["sync", "about", "discover", "plan", "list-organizations"],
)
def test_every_command_runs_as_a_process(sandbox, args, check):
    run = run_tap_process(sandbox.config(), args=args)
    assert run.returncode == 0, run.stderr
    assert check(run), run.stdout[:500]
    assert "Traceback" not in run.stderr
