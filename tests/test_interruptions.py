"""Killed at any moment, in record or batch mode: the last STATE a target stored resumes
the run, and every record arrives. The killed run is a process (the signal is the
subject); the run that resumes from its STATE runs in-process."""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import tempfile
import time
import typing as t
from pathlib import Path

import pytest

from tests import helpers
from tests.helpers import TAP

CONTACTS, PAGE = 400, 50


def messages(lines: list[str]) -> t.Iterator[dict]:
    """The complete messages: a line cut by SIGKILL is dropped, as a target would."""
    for line in lines:
        if line.startswith('{"type"'):
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def records_of(lines: list[str], stream: str) -> set[int]:
    """The records a target would have: RECORD lines, and the files of BATCH messages."""
    found: set[int] = set()
    for message in messages(lines):
        if message["type"] == "RECORD" and message["stream"] == stream:
            found.add(message["record"]["id"])
        elif message["type"] == "BATCH" and message["stream"] == stream:
            for url in message["manifest"]:
                data = Path(url.removeprefix("file://")).read_bytes()
                text = (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode()
                found |= {json.loads(row)["id"] for row in text.splitlines() if row}
    return found


def last_state(lines: list[str]) -> dict | None:
    states = [m["value"] for m in messages(lines) if m["type"] == "STATE"]
    return states[-1] if states else None


def killed_run(config: dict, folder: Path, number: int, after: float) -> tuple:
    """The tap as a process, sent signal ``number`` ``after`` seconds from its start."""
    command = [*TAP]
    for name, content in (("config", config), ("catalog", helpers.selecting(*TESTED))):
        path = folder / f"{name}.json"
        path.write_text(json.dumps(content))
        command += [f"--{name}", str(path)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=folder
    )
    time.sleep(after)
    process.send_signal(number)
    stdout, stderr = process.communicate(timeout=120)
    return process.returncode, stdout.splitlines(), stderr


TESTED = helpers.TESTED_STREAMS


MODES = {
    "record": {},
    "batch": {
        "batch_config": {
            "encoding": {"format": "jsonl", "compression": "none"},
            "storage": {"root": "file://BATCHES"},
        }
    },
}


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
@pytest.mark.parametrize("mode", MODES)
def test_a_killed_run_resumed_from_its_last_state_loses_no_record(sandbox, mode, number):
    for after in (0.3, 0.9, 1.6, 2.4):
        slow = {"at": 1, "kind": "slow", "seconds": 0.15, "times": 10**6}
        sandbox.reset(contacts=CONTACTS, tasks=60, faults=[slow])
        everything = {r["id"] for r in sandbox.records("contacts")}
        with tempfile.TemporaryDirectory() as temporary:
            folder = Path(temporary)
            extra = json.loads(json.dumps(MODES[mode]).replace("BATCHES", str(folder)))
            config = sandbox.config(page_size=PAGE, **extra)
            code, first, stderr = killed_run(config, folder, number, after)
            if number == signal.SIGTERM and code > 0:  # -15: killed before it set up
                assert code == 143, stderr
                assert "Stopped by signal SIGTERM" in stderr
            sandbox.update(faults=[])  # the resumed run need not be slow
            resumed = helpers.run_tap(config, state=last_state(first))
            assert resumed.returncode == 0, resumed.stderr
            arrived = records_of(first, "contacts") | records_of(
                resumed.stdout.splitlines(), "contacts"
            )
            assert arrived == everything, (mode, after, len(everything - arrived))
