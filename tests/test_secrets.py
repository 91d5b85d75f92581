"""A hostile or broken server never gets, nor makes the tap print, a secret."""

from __future__ import annotations

import base64
import http.server
import json
import threading
import time
import typing as t
import urllib.parse

import pytest

from mokapen_sandbox import DEMO_CLIENT_SECRET
from tap_mokapen import errors
from tests.helpers import free_port, run_tap


class Recorder(http.server.BaseHTTPRequestHandler):
    """A host the tap must never talk to: it records whatever reaches it."""

    seen: t.ClassVar[list[tuple[str, str, bytes]]] = []

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.seen.append((self.command, self.path, self.rfile.read(length)))
        body = b'{"access_token": "stolen", "data": [{"id": 1}]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _record  # noqa: N815 - http.server names them so

    def log_message(self, *args: t.Any) -> None:
        pass


@pytest.fixture
def hostile() -> t.Iterator[tuple[str, list]]:
    Recorder.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", Recorder.seen
    server.shutdown()


def assert_no_secret(run, *secrets: str) -> None:
    for secret in (DEMO_CLIENT_SECRET, *secrets):
        assert secret not in run.stderr and secret not in run.stdout


def test_the_token_request_follows_no_redirect(sandbox, hostile):
    url, seen = hostile
    sandbox.reset(token_redirect=f"{url}/steal?next=secret-query")
    run = run_tap(sandbox.config())

    assert run.returncode == 1
    assert seen == []  # the client secret went nowhere
    assert "307 from POST /oauth/token redirects to 127.0.0.1:" in run.stderr
    # One refusal ends the organization (the run's last line names it as the cause).
    last = run.error_lines()[-1]
    assert "redirects to" in last
    assert run.stderr.replace(last, "").count("redirects to") == 0  # told once, at the end
    assert "secret-query" not in run.stderr and "steal" not in run.stderr
    assert not run.records("contacts")
    assert_no_secret(run)


def test_an_api_redirect_is_an_error_not_followed(sandbox, hostile):
    url, seen = hostile
    sandbox.reset(api_redirect=url)
    run = run_tap(sandbox.config())

    assert run.returncode == 1
    assert seen == []  # nothing unauthenticated was fetched and emitted as contacts
    assert not run.records("contacts") and not run.records("tasks")
    assert "302 from GET /api/v1/849/contacts redirects to 127.0.0.1:" in run.stderr
    assert_no_secret(run, *sandbox.tokens())


def test_a_server_echoing_the_form_never_prints_the_secret(sandbox):
    sandbox.reset(token_error_echo=True)
    run = run_tap(sandbox.config())

    assert run.returncode == 1
    assert "Invalid request: grant_type=client_credentials" in run.stderr
    assert "client_secret=***" in run.stderr
    assert_no_secret(run)


#: A client secret with every character that changes under some encoding.
ODD_SECRET = 'p@ss w0rd!+/"\\é%&='


def every_form(secret: str, client_id: str) -> list[str]:
    """The forms a server may echo a secret in (errors.register_secret masks each)."""
    basic = f"{client_id}:{secret}".encode()
    return [
        secret,
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        base64.b64encode(basic).decode(),
    ]


def test_a_secret_echoed_url_encoded_is_masked(sandbox):
    sandbox.reset(token_error_echo=True, client_secret=ODD_SECRET)
    config = sandbox.config(client_secret=ODD_SECRET)
    run = run_tap(config)

    assert run.returncode == 1
    assert "Invalid request: grant_type=client_credentials" in run.stderr
    assert "client_secret=***" in run.stderr
    for form in every_form(ODD_SECRET, config["client_id"]):
        assert form not in run.stderr and form not in run.stdout, form


@pytest.mark.parametrize("form", range(6), ids=["raw", "%", "+", "json", "json-utf8", "basic"])
def test_a_secret_is_masked_in_every_form_a_server_may_echo(form):
    errors.register_secret(ODD_SECRET, client_id="the-app")
    echoed = every_form(ODD_SECRET, "the-app")[form]
    assert errors.redact(f"the server said: {echoed} (sic)") == "the server said: *** (sic)"


def test_a_base_url_with_a_password_is_refused_without_showing_it(sandbox):
    run = run_tap(sandbox.config(base_url="http://user:SECRETPW@evil.example.com"))
    assert run.returncode == 1
    assert "base_url must use https" in run.stderr and "***@evil.example.com" in run.stderr
    assert_no_secret(run, "SECRETPW", "user:")


@pytest.mark.parametrize("expires_in", ["soon", [1], 1e30, -5, 0])
def test_a_nonsense_expires_in_is_treated_as_unknown(sandbox, expires_in):
    sandbox.reset(expires_in_sent=expires_in)
    run = run_tap(sandbox.config(page_size=100))

    assert run.returncode == 0, run.stderr
    assert len(run.records("contacts")) == 500
    assert sandbox.stats()["token_requests"] == 1  # not one per request
    assert run.stderr.count("is not a sane number of seconds") == 1


def test_a_trickling_answer_meets_the_deadline_and_is_retried(sandbox):
    sandbox.reset(faults=[{"at": 2, "kind": "trickle"}], trickle_seconds=0.5)
    started = time.monotonic()
    run = run_tap(sandbox.config(page_size=100, request_deadline_seconds=2))

    assert run.returncode == 0, run.stderr
    assert time.monotonic() - started < 30  # not the minute a 43-byte trickle takes
    assert "took longer than request_deadline_seconds=2" in run.stderr
    assert set(run.ids("contacts")) == {r["id"] for r in sandbox.records("contacts")}


@pytest.mark.parametrize("kind", ["oversized", "gzip_bomb"])
def test_an_answer_past_the_size_cap_fails_that_request_in_bounded_memory(sandbox, kind):
    sandbox.reset(faults=[{"at": 1, "kind": kind}])
    run = run_tap(sandbox.config(max_response_mb=10))

    assert run.returncode == 1
    assert "answered with more than max_response_mb=10 MB (decompressed)" in run.stderr
    assert len(run.records("tasks")) == 200  # the other streams went on


def test_a_wrong_port_fails_within_seconds_naming_the_address(sandbox):
    port = free_port()
    started = time.monotonic()
    run = run_tap(sandbox.config(base_url=f"http://127.0.0.1:{port}"))

    assert run.returncode == 1
    assert time.monotonic() - started < 30
    assert f"Cannot connect to http://127.0.0.1:{port} (connection refused)" in run.stderr
