"""scripts/demo.sh syncs only from the sandbox it started, whatever holds its port."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


class Impostor(BaseHTTPRequestHandler):
    """Answers every request with 200 and an empty JSON object, as a stale server might."""

    hits: list[str] = []

    def _answer(self) -> None:
        Impostor.hits.append(self.path)
        body = json.dumps({}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer  # noqa: N815

    def log_message(self, format, *args):
        pass


@pytest.fixture
def busy_port():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Impostor)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Impostor.hits.clear()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def demo(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("MELTANO_", "TAP_MOKAPEN_", "TARGET_JSONL_"))
    }
    return subprocess.run(
        ["bash", "scripts/demo.sh"],
        cwd=ROOT,
        env={
            **env,
            # State and output of this test only: the user's demo state stays as it was.
            "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path}/meltano.db",
            "DEMO_OUTPUT": str(tmp_path / "output"),
            "CONTACTS": "50",
            "TASKS": "20",
            **settings,
        },
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_a_busy_port_gets_a_sandbox_of_its_own_on_a_free_port(tmp_path, busy_port):
    done = demo(tmp_path, SANDBOX_PORT=str(busy_port))

    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    said = [line for line in done.stdout.splitlines() if f"Port {busy_port} is in use" in line]
    assert len(said) == 1, done.stdout
    assert Impostor.hits == []
    (run,) = (tmp_path / "output").iterdir()
    assert len((run / "contacts.jsonl").read_text().splitlines()) == 50
    assert len((run / "tasks.jsonl").read_text().splitlines()) == 20
    assert f"127.0.0.1:{busy_port}" not in done.stdout.split("Output of this run")[1]


def test_a_sandbox_that_cannot_start_fails_the_demo_in_one_line(tmp_path):
    done = demo(tmp_path, CONTACTS="many")

    assert done.returncode == 1
    (line,) = [line for line in done.stderr.splitlines() if "sandbox did not start" in line]
    assert "many" in line
    assert not (tmp_path / "output").exists()
