"""A public app from scratch: ``tap-mokapen --authorize`` prints the consent URL, a
browser follows it, the sandbox's consent redirects back to the tap's loopback
listener, the code buys a refresh token kept in the store, and the runs after use it
with only client_id, client_secret and organization_id. Each refusal is one line and
exit code 1 with nothing exchanged. The "browser" is a plain HTTP GET that follows
redirects, in a thread (the tap listens in this one); no real browser is opened."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import typing as t
import webbrowser
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from mokapen_sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from tap_mokapen import consent
from tests.helpers import TAP, Sandbox, TapRun, free_port, run_tap

AUTHORIZE = ["--authorize", "--no-browser"]


@pytest.fixture(autouse=True)
def no_real_browser(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a test does, no browser of this machine opens."""

    def refuse(*_: object, **__: object) -> t.NoReturn:
        raise AssertionError("a test tried to open a real browser")

    monkeypatch.setattr(webbrowser, "open", refuse)
    monkeypatch.setattr(webbrowser, "get", refuse)


class Browser:
    """What a browser does with the URL the tap prints: a GET that follows redirects.

    ``edit`` changes the URL first (a forged state); ``first`` are addresses fetched
    before it (a favicon); ``instead`` is fetched in place of the URL (a forged
    redirect); ``meanwhile`` runs before anything (the store taken away)."""

    def __init__(
        self,
        *,
        edit: t.Callable[[str], str] = lambda url: url,
        first: t.Sequence[str] = (),
        instead: str | None = None,
        meanwhile: t.Callable[[], None] = lambda: None,
    ) -> None:
        self.edit, self.first, self.instead, self.meanwhile = edit, first, instead, meanwhile
        self.url: str | None = None
        self.answer: requests.Response | None = None
        self.thread: threading.Thread | None = None

    def __call__(self, line: str) -> None:
        if self.thread is None and line.startswith("http"):
            self.url = line
            self.thread = threading.Thread(target=self._follow, daemon=True)
            self.thread.start()

    def _follow(self) -> None:
        self.meanwhile()
        for address in self.first:
            requests.get(address, timeout=10)
        assert self.url is not None
        self.answer = requests.get(self.instead or self.edit(self.url), timeout=30)

    def wait(self) -> None:
        assert self.thread is not None, "the tap printed no URL"
        self.thread.join(30)

    @property
    def code(self) -> str:
        """The code the consent sent back, read from its redirect."""
        assert self.answer is not None and self.answer.history
        location = self.answer.history[-1].headers["Location"]
        return parse_qs(urlsplit(location).query)["code"][0]


def consent_config(sandbox: Sandbox, **overrides: t.Any) -> dict[str, t.Any]:
    """A public app's config for --authorize: no organization, a free loopback port."""
    settings = {
        "organization_id": None,
        "redirect_uri": f"http://127.0.0.1:{free_port()}/callback",
        "authorize_timeout": 10,
        **overrides,
    }
    return sandbox.config(**settings)


def authorize(sandbox: Sandbox, browser: Browser | None = None, **overrides: t.Any) -> TapRun:
    run = run_tap(consent_config(sandbox, **overrides), args=AUTHORIZE, watch=browser)
    if browser is not None:
        browser.wait()
    return run


def authorize_process(config: dict[str, t.Any], folder: Path) -> subprocess.Popen[str]:
    """``tap-mokapen --config FILE --authorize --no-browser`` as a process of its own."""
    path = folder / "config.json"
    path.write_text(json.dumps(config))
    return subprocess.Popen(
        [*TAP, "--config", str(path), "--authorize", "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def three_settings(sandbox: Sandbox, organization_id: int) -> dict[str, t.Any]:
    """What the first sync needs after the consent: nothing more."""
    return sandbox.config(organization_id=organization_id)


def default_store() -> Path:
    return Path(os.environ["XDG_STATE_HOME"]) / "tap-mokapen" / "refresh-tokens.json"


def stored_tokens(path: Path | None = None) -> list[str]:
    entries = json.loads((path or default_store()).read_text()).values()
    return [entry["refresh_token"] for entry in entries]


def no_secret_in(run: TapRun, *secrets: str) -> None:
    for secret in (DEMO_CLIENT_SECRET, *secrets):
        assert secret not in run.stdout and secret not in run.stderr


def one_error_line(run: TapRun) -> str:
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    (line,) = run.error_lines()
    return line


def test_the_whole_dance_consent_store_first_sync_and_a_rotated_token(sandbox):
    # A public app: Mokapen refuses it client credentials, so every sync below that
    # reads records did so with the consent's refresh token.
    sandbox.reset(consent_organization=850, client_credentials_allowed=False)
    browser = Browser()
    run = authorize(sandbox, browser)

    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == browser.url  # the URL, on a line of its own, first
    url = urlsplit(lines[0])
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{sandbox.url}/oauth/authorize"
    assert query["client_id"] == DEMO_CLIENT_ID and query["response_type"] == "code"
    assert query["redirect_uri"].startswith("http://127.0.0.1:")
    assert {"contacts.read", "tasks.read"} <= set(query["scope"].split())
    assert len(query["state"]) >= 16
    assert lines[-1].startswith("Authorized organization 850 (Globex Sandbox GmbH)")
    assert "set organization_id to 850" in lines[-1]
    assert browser.answer is not None and browser.answer.status_code == 200
    assert "close this tab" in browser.answer.text
    store = default_store()
    assert oct(store.stat().st_mode & 0o777) == "0o600"
    (consented,) = stored_tokens()
    (entry,) = json.loads(store.read_text()).values()
    assert entry["organization_id"] == 850 and entry["origin"] == "consent"
    assert sandbox.stats()["grant_authorization_code"] == 1

    first = run_tap(three_settings(sandbox, 850))
    assert first.returncode == 0, first.stderr
    assert len(first.records("contacts")) == len(sandbox.records("contacts", org=850))
    assert len(first.records("tasks")) == len(sandbox.records("tasks", org=850))
    assert "using the refresh token tap-mokapen --authorize stored" in first.stderr
    (rotated,) = stored_tokens()
    assert rotated != consented  # the sandbox rotated it, and the store kept the new one

    second = run_tap(three_settings(sandbox, 850), state=first.final_state)
    assert second.returncode == 0, second.stderr
    assert stored_tokens() != [rotated]
    stats = sandbox.stats()
    assert stats["grant_refresh_token"] == 2 and stats.get("grant_client_credentials", 0) == 0
    for each in (run, first, second):
        no_secret_in(each, browser.code, consented, rotated, *stored_tokens(), *sandbox.tokens())


def test_list_organizations_and_plan_use_the_stored_token_too(sandbox):
    sandbox.reset(client_credentials_allowed=False)
    assert authorize(sandbox, Browser()).returncode == 0

    listed = run_tap(three_settings(sandbox, 849), args=["--list-organizations"])
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout.splitlines()[-1]) == [849, 850]
    plan = run_tap(three_settings(sandbox, 849), args=["--plan=json"])
    assert plan.returncode == 0, plan.stderr
    assert sandbox.stats()["grant_refresh_token"] == 2


def test_a_configured_refresh_token_still_wins_over_the_consents(sandbox):
    assert authorize(sandbox, Browser()).returncode == 0
    (consented,) = stored_tokens()
    configured = sandbox.refresh_token()
    run = run_tap(three_settings(sandbox, 849) | {"refresh_token": configured})
    assert run.returncode == 0, run.stderr
    alive = sandbox.server.sandbox.tokens.refresh_tokens
    assert configured not in alive and consented in alive  # the configured one was spent


def test_with_nothing_stored_the_three_settings_stay_a_private_apps(sandbox):
    run = run_tap(three_settings(sandbox, 849))
    assert run.returncode == 0, run.stderr
    assert sandbox.stats()["grant_client_credentials"] == 1
    assert not default_store().exists()


def test_a_public_app_never_authorized_is_told_to_run_authorize(sandbox):
    sandbox.reset(client_credentials_allowed=False)
    run = run_tap(three_settings(sandbox, 849))
    assert run.returncode == 1
    assert "--config FILE --authorize" in run.error_lines()[-1]  # the run's last line


def test_a_wrong_state_is_refused_and_nothing_is_exchanged(sandbox):
    def forged(url: str) -> str:
        parts = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        query["state"] = "x" * 43
        return parts._replace(query=urlencode(query)).geturl()

    browser = Browser(edit=forged)
    run = authorize(sandbox, browser)
    assert "another state" in one_error_line(run)
    assert sandbox.stats().get("token_requests", 0) == 0
    assert not default_store().exists() or not stored_tokens()
    no_secret_in(run, browser.code)


def test_a_redirect_without_a_state_is_refused(sandbox):
    port = free_port()
    redirect = f"http://127.0.0.1:{port}/callback"
    browser = Browser(instead=f"{redirect}?code=ac_forged_code_value")
    run = authorize(sandbox, browser, redirect_uri=redirect)
    assert "without a state" in one_error_line(run)
    assert browser.answer is not None and browser.answer.status_code == 400
    assert sandbox.stats().get("token_requests", 0) == 0
    no_secret_in(run, "ac_forged_code_value")


def test_a_denied_consent_is_one_line(sandbox):
    sandbox.reset(consent="deny")
    run = authorize(sandbox, Browser())
    assert "denied in the browser (access_denied)" in one_error_line(run)
    assert sandbox.stats().get("token_requests", 0) == 0


def test_a_redirect_that_never_comes_times_out(sandbox, tmp_path):
    run = run_tap(consent_config(sandbox, authorize_timeout=0.3), args=AUTHORIZE)
    assert "within authorize_timeout=0.3 s" in one_error_line(run)
    assert run.stdout.startswith(f"{sandbox.url}/oauth/authorize?")
    assert sandbox.stats().get("authorize_requests", 0) == 0


def test_stray_requests_to_the_listener_are_ignored(sandbox):
    port = free_port()
    redirect = f"http://127.0.0.1:{port}/callback"
    browser = Browser(first=[f"http://127.0.0.1:{port}/favicon.ico"])
    run = authorize(sandbox, browser, redirect_uri=redirect)
    assert run.returncode == 0, run.stderr
    assert len(stored_tokens()) == 1


def test_an_idle_browser_connection_does_not_hold_up_the_redirect(sandbox):
    """Browsers open a connection ahead and may leave it idle: the listener must serve
    the redirect on another one, within an authorize_timeout shorter than its read
    timeout."""
    import socket

    port = free_port()
    idle: list[socket.socket] = []

    def connect_and_say_nothing() -> None:
        idle.append(socket.create_connection(("127.0.0.1", port)))

    browser = Browser(meanwhile=connect_and_say_nothing)
    run = authorize(
        sandbox,
        browser,
        redirect_uri=f"http://127.0.0.1:{port}/callback",
        authorize_timeout=consent.BROWSER_READ_SECONDS / 2,
    )
    for connection in idle:
        connection.close()
    assert run.returncode == 0, run.stderr
    assert len(stored_tokens()) == 1


@pytest.mark.parametrize(
    ("given", "kept"),
    [(4242, 4242), ("4242", 4242), ("eyJpdiI6Ik1rZ04242", "eyJpdiI6Ik1rZ04242"), ("a b", None)],
)
def test_the_organization_a_grant_names_may_be_an_encrypted_id(given, kept):
    assert consent._granted_organization(given) == kept


def test_a_store_that_cannot_be_written_asks_for_no_consent(sandbox, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    run = authorize(sandbox, refresh_token_store=str(blocker / "tokens.json"))
    line = one_error_line(run)
    assert "cannot be written" in line and "nothing is spent" in line
    assert "oauth/authorize" not in run.stdout  # no URL: the consent would be wasted
    assert sandbox.stats().get("requests", 0) == 0


def test_a_store_lost_during_the_consent_leaves_the_code_unexchanged(sandbox, tmp_path):
    folder = tmp_path / "tokens"
    store = folder / "tokens.json"

    def take_the_folder_away() -> None:
        for leftover in folder.iterdir():
            leftover.unlink()
        folder.rmdir()
        folder.write_text("now a file")

    browser = Browser(meanwhile=take_the_folder_away)
    run = authorize(sandbox, browser, refresh_token_store=str(store))
    assert "nothing is spent" in one_error_line(run)
    assert sandbox.stats().get("token_requests", 0) == 0
    assert browser.code in sandbox.server.sandbox.tokens.codes  # still redeemable
    no_secret_in(run, browser.code)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"refresh_token": "rt_old"}, "remove refresh_token to authorize"),
        ({"access_token": "dt_x", "client_secret": None}, "remove access_token"),
        ({"redirect_uri": "https://example.com/callback"}, "redirect_uri must be an http loopback"),
        ({"redirect_uri": "http://127.0.0.1/callback"}, "with a port"),
        ({"client_secret": None}, "client_secret is required"),
        ({"authorize_timeout": 0}, "authorize_timeout must be a positive number"),
    ],
)
def test_settings_that_cannot_authorize_are_one_line_before_any_request(
    sandbox, overrides, expected
):
    run = run_tap(consent_config(sandbox, **overrides), args=AUTHORIZE)
    assert expected in one_error_line(run)
    assert sandbox.stats().get("requests", 0) == 0
    no_secret_in(run, "rt_old", "dt_x")


def test_the_command_as_a_process_prints_the_url_at_once_and_ends_with_one_line(sandbox, tmp_path):
    """As a user (or a script) meets it: the URL is on stdout before the command waits."""
    process = authorize_process(consent_config(sandbox), tmp_path)
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    followed = requests.get(url, timeout=30)
    out, err = process.communicate(timeout=60)

    assert process.returncode == 0, err
    assert followed.status_code == 200
    assert out.strip().startswith("Authorized organization 849 (Acme Sandbox S.r.l.)")
    assert f"--config {tmp_path / 'config.json'}" in out
    code = parse_qs(urlsplit(followed.history[-1].headers["Location"]).query)["code"][0]
    for text in (out, err, url):
        for secret in (DEMO_CLIENT_SECRET, code, *stored_tokens(), *sandbox.tokens()):
            assert secret not in text


# -- units: the redirect's verdict and the browser's choice ---------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"code": "c"}, "without a state"),
        ({"code": "c", "state": "other"}, "another state"),
        ({"error": "access_denied", "state": "sent"}, "access_denied"),
        ({"error": "invalid_scope", "state": "sent"}, "refused the consent (invalid_scope)"),
        ({"state": "sent"}, "without a code"),
    ],
)
def test_a_redirect_is_judged_by_its_state_first(query, expected):
    with pytest.raises(consent.ConsentRefusedError, match=re.escape(expected)):
        consent.code_of(query, "sent")
    assert consent.code_of({"code": "c", "state": "sent"}, "sent") == "c"


def test_no_browser_is_opened_without_a_display(monkeypatch):
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert consent.graphical_browser() is None  # webbrowser.get would fail the test


def test_a_text_browser_is_not_opened_and_a_graphical_one_is(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(webbrowser, "get", lambda: webbrowser.GenericBrowser("lynx"))
    assert consent.graphical_browser() is None
    opened: list[str] = []

    class Graphical(webbrowser.BackgroundBrowser):
        def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
            opened.append(url)
            return True

    monkeypatch.setattr(webbrowser, "get", lambda: Graphical("firefox"))
    consent.launch_browser("http://127.0.0.1:1/oauth/authorize?x=1")
    assert opened == ["http://127.0.0.1:1/oauth/authorize?x=1"]


def test_a_sigterm_while_waiting_ends_the_consent_with_no_state_and_nothing_kept(sandbox, tmp_path):
    process = authorize_process(consent_config(sandbox, authorize_timeout=60), tmp_path)
    assert process.stdout is not None
    assert process.stdout.readline().startswith(f"{sandbox.url}/oauth/authorize?")
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)

    assert process.returncode == 143, err
    assert "Stopped by signal SIGTERM: no consent was kept" in err
    assert '"type": "STATE"' not in out and '"type":"STATE"' not in out
    assert not default_store().exists() or not stored_tokens()
