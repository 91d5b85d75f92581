"""Killed at any moment, in record or batch mode: the last STATE a target stored resumes
the run, and every record arrives. The killed run is a process (the signal is the
subject); the run that resumes from its STATE runs in-process."""

from __future__ import annotations

import concurrent.futures
import gzip
import json
import signal
import subprocess
import tempfile
import threading
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


def _states(lines: list[str]) -> int:
    return sum(1 for line in lines if line.startswith('{"type":"STATE"'))


#: When each killed run gets its signal: before the tap has set up (by time), once it has
#: written its first SCHEMA, and after its 2nd and its 5th STATE (one follows each page).
#: Judged from the lines written so far, so the moments land where they are meant to
#: however busy the machine is.
KILL_WHEN: dict[str, t.Callable[[list[str], float], bool]] = {
    "before set up": lambda lines, elapsed: elapsed >= 0.2,
    "after the first SCHEMA": lambda lines, elapsed: any('"SCHEMA"' in line for line in lines),
    "after the 2nd STATE": lambda lines, elapsed: _states(lines) >= 2,
    "after the 5th STATE": lambda lines, elapsed: _states(lines) >= 5,
}


def killed_runs(configs: list[dict], folders: list[Path], number: int) -> list[tuple]:
    """The tap as one process per KILL_WHEN moment, all at once, each sent signal
    ``number`` at its moment: (returncode, stdout lines, stderr) of each."""

    catalog = helpers.selecting(*TESTED)  # made here: making it builds a Tap, in this thread

    def run(config: dict, folder: Path, when: t.Callable[[list[str], float], bool]) -> tuple:
        command = [*TAP]
        for name, content in (("config", config), ("catalog", catalog)):
            path = folder / f"{name}.json"
            path.write_text(json.dumps(content))
            command += [f"--{name}", str(path)]
        started = time.monotonic()
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=folder
        )
        assert process.stdout and process.stderr
        lines: list[str] = []
        # Lines are read as they come; "before set up" needs no line to fire.
        reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")))
        reader.start()
        while process.poll() is None and not when(list(lines), time.monotonic() - started):
            time.sleep(0.01)
        if process.poll() is None:
            process.send_signal(number)
        process.wait(120)
        reader.join(120)
        return process.returncode, [line.rstrip("\n") for line in lines], process.stderr.read()

    with concurrent.futures.ThreadPoolExecutor(len(KILL_WHEN)) as pool:
        futures = [
            pool.submit(run, config, folder, when)
            for config, folder, when in zip(configs, folders, KILL_WHEN.values(), strict=True)
        ]
        return [future.result() for future in futures]


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
    slow = {"at": 1, "kind": "slow", "seconds": 0.15, "times": 10**6}
    sandbox.reset(contacts=CONTACTS, tasks=60, faults=[slow])
    everything = {r["id"] for r in sandbox.records("contacts")}
    with tempfile.TemporaryDirectory() as temporary:
        folders = [Path(temporary) / f"killed-{index}" for index in range(len(KILL_WHEN))]
        configs = []
        for folder in folders:
            folder.mkdir()
            extra = json.loads(json.dumps(MODES[mode]).replace("BATCHES", str(folder)))
            configs.append(sandbox.config(page_size=PAGE, **extra))
        killed = killed_runs(configs, folders, number)
        sandbox.update(faults=[])  # the resumed runs need not be slow
        if mode == "record":  # (a batch holds the whole stream: it is there or it is not)
            # The moments fell where they test something: some run was cut mid-stream.
            partial = [len(records_of(first, "contacts")) for _, first, _ in killed]
            assert any(0 < count < len(everything) for count in partial), partial
        for moment, config, (code, first, stderr) in zip(KILL_WHEN, configs, killed, strict=True):
            if number == signal.SIGTERM and code > 0:  # -15: killed before it set up
                assert code == 143, stderr
                assert "Stopped by signal SIGTERM" in stderr
            resumed = helpers.run_tap(config, state=last_state(first))
            assert resumed.returncode == 0, resumed.stderr
            arrived = records_of(first, "contacts") | records_of(
                resumed.stdout.splitlines(), "contacts"
            )
            assert arrived == everything, (mode, moment, len(everything - arrived))
