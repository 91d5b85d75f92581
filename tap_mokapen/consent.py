"""``tap-mokapen --authorize``: a public app's browser consent, from the URL to the stored token.

Why a module of its own: the consent happens once, before any run, and shares nothing
with a sync but the settings, the token endpoint's verdict and the refresh-token store.
Mokapen's authorization-code grant goes: the user opens ``{base_url}/oauth/authorize``
(client_id, redirect_uri, response_type=code, the scopes, a random state), chooses the
organization to grant, and Mokapen sends the browser back to the redirect_uri with a
``code`` and the state; the code is exchanged once at ``{base_url}/oauth/token``
(grant_type=authorization_code) for a refresh token bound to that organization.

This command builds the URL (the selected streams' scopes, or ``scope``), prints it on
a line of its own, opens a browser only where one can be opened, and listens on the
loopback ``redirect_uri`` for exactly one redirect (other requests, such as a favicon,
get a 404 and are ignored). A wrong or missing state, a denial, or no redirect within
``authorize_timeout`` is one line and exit code 1, with nothing exchanged. The code is
exchanged only while the store is locked and has room reserved (token_store.py), so a
store that cannot be written spends nothing; the refresh token is then written as a
rotated one is (atomically, owner-only, fsynced), under the organization the user
chose. A run with only client_id, client_secret and that organization_id uses it
(registry.py). The client secret, the code and the tokens are never printed or logged.
"""

from __future__ import annotations

import dataclasses
import http.server
import logging
import os
import secrets
import socket
import sys
import typing as t
import webbrowser
from urllib.parse import parse_qs, urlencode, urlsplit

import click
import requests

from tap_mokapen import clock, errors, output, retries, transport, verdict
from tap_mokapen.config import IDENTIFIER, organization_number
from tap_mokapen.errors import AuthenticationError, ConfigError, MokapenError, cut, redact
from tap_mokapen.token_store import RefreshTokenStore

if t.TYPE_CHECKING:
    from tap_mokapen.config import Settings

logger = logging.getLogger("tap-mokapen")

#: The longest the listener blocks in one wait, so a deadline is never overshot by much.
POLL_SECONDS = 0.25
#: How long one browser connection may take to send its request.
BROWSER_READ_SECONDS = 10
TOKEN_TIMEOUT_SECONDS = 60


class ConsentRefusedError(MokapenError):
    """The consent did not come back usable: denied, forged, or never."""


@dataclasses.dataclass(frozen=True)
class Granted:
    """What the consent bought: the organization the user chose and where its token is."""

    organization_id: int | str
    organization_name: str | None
    store: str


def run(
    settings: Settings,
    scope: str,
    *,
    open_browser: bool,
    user_agent: str,
    config_files: t.Sequence[str] = (),
) -> str:
    """The whole consent; the last line to print (the organization, and what to run next)."""
    client_id, client_secret = settings.client_id or "", settings.client_secret or ""
    errors.register_secret(client_secret, client_id=client_id)
    store = RefreshTokenStore(
        settings.refresh_token_store,
        client_id=client_id,
        organization_id=None,
        configured_token=None,
    )
    with store.exchange():  # the store can be written: else no consent is asked for
        pass
    state = secrets.token_urlsafe(32)
    with RedirectListener(settings.redirect_uri) as listener:
        url = authorize_url(settings, scope, state)
        logger.info(
            "Open the address below in a browser, sign in to Mokapen and choose the "
            "organization to grant; waiting %g s for the browser to come back to port %d",
            settings.authorize_timeout,
            listener.port,
        )
        print(url, flush=True)  # on a line of its own, at once: the user (or a script) needs it
        if open_browser:
            launch_browser(url)
        query = listener.wait(settings.authorize_timeout, state)
    code = code_of(query, state)
    granted = exchange(settings, code, store, user_agent=user_agent)
    return last_line(granted, settings, config_files)


def authorize_url(settings: Settings, scope: str, state: str) -> str:
    """``{base_url}/oauth/authorize`` with the documented parameters."""
    query = urlencode(
        {
            "client_id": settings.client_id,
            "redirect_uri": settings.redirect_uri,
            "response_type": "code",
            "scope": scope,
            "state": state,
        }
    )
    return f"{settings.base_url}/oauth/authorize?{query}"


# -- the browser ------------------------------------------------------------------


def launch_browser(url: str) -> None:
    """Open ``url`` where a browser can open without taking the terminal, else say so."""
    browser = graphical_browser()
    if browser is None:
        logger.info("No browser to open here: open the address above yourself")
        return
    try:
        browser.open(url, new=2)
    except Exception as exc:
        logger.info("The browser did not open (%s): open the address above yourself", exc)


def graphical_browser() -> webbrowser.BaseBrowser | None:
    """The user's browser, when there is a display for it and it runs beside this process.

    On Linux and the BSDs without DISPLAY or WAYLAND_DISPLAY (a server, a container, an
    ssh session), and wherever only a text browser is found (lynx would take over the
    terminal and block the listener), there is none."""
    if not sys.platform.startswith(("darwin", "win")) and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return None
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return None
    # A text browser is a GenericBrowser, run in the foreground; graphical ones are not.
    return None if type(browser) is webbrowser.GenericBrowser else browser


# -- the redirect -------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    timeout = BROWSER_READ_SECONDS

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != self.server.path:  # a favicon, a probe: not the consent's redirect
            self._page(404, "Not found", "This is tap-mokapen's consent listener.")
            return
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        errors.register_secret(query.get("code"))  # before anything could log it
        if self.server.query is None:  # the first redirect is the answer
            self.server.query = query
        try:
            code_of(query, self.server.state)
        except ConsentRefusedError:
            self._page(400, "Consent not completed", "See the terminal for what went wrong.")
        else:
            self._page(
                200,
                "Consent received",
                "tap-mokapen is finishing in the terminal. You can close this tab.",
            )

    def _page(self, status: int, title: str, text: str) -> None:
        body = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body><h1>{title}</h1><p>{text}</p></body></html>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: t.Any) -> None:
        """Never logged: the request line holds the code."""


class _Server(http.server.ThreadingHTTPServer):
    """One thread a connection: a browser's idle pre-connected socket must not hold up
    the one that carries the redirect."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], path: str, family: socket.AddressFamily) -> None:
        self.address_family = family
        self.path = path
        #: The state this command sent, which the redirect must carry back.
        self.state = ""
        self.query: dict[str, str] | None = None
        super().__init__(address, _Handler)

    def handle_error(self, request: t.Any, client_address: t.Any) -> None:
        """A browser that hung up or sent garbage is not the consent: wait on."""


class RedirectListener:
    """The loopback address of ``redirect_uri``, listening from before the URL is shown
    (a browser quicker than the print still finds it) until one redirect came."""

    def __init__(self, redirect_uri: str) -> None:
        parts = urlsplit(redirect_uri)
        host = parts.hostname or "127.0.0.1"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        bind = "127.0.0.1" if host == "localhost" else host
        try:
            self._server = _Server((bind, parts.port or 80), parts.path or "/", family)
        except OSError as exc:
            msg = (
                f"Cannot listen on {host}:{parts.port} for the consent's redirect "
                f"({exc.strerror}): free that port, or set redirect_uri to another loopback "
                "port (and register it in the app)"
            )
            raise ConfigError(msg) from None
        self.port = int(self._server.server_address[1])

    def __enter__(self) -> RedirectListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.server_close()

    def wait(self, timeout: float, state: str) -> dict[str, str]:
        """The query of the one redirect to the redirect_uri's path, within ``timeout``
        seconds of the tap's clock (its page says whether it carries ``state``)."""
        self._server.state = state
        deadline = clock.monotonic() + timeout
        while self._server.query is None:
            left = deadline - clock.monotonic()
            if left <= 0:
                msg = (
                    f"No redirect came back from the consent within authorize_timeout="
                    f"{timeout:g} s: nothing was exchanged. Run tap-mokapen --authorize "
                    "again and finish the consent in time (is the app's redirect URL the "
                    "redirect_uri setting?)"
                )
                raise ConsentRefusedError(msg)
            self._server.timeout = min(left, POLL_SECONDS)
            self._server.handle_request()
        return self._server.query


def code_of(query: dict[str, str], state: str) -> str:
    """The redirect's code, once its state is the one sent and it is no refusal."""
    got = query.get("state")
    if not got:
        msg = (
            "The consent's redirect came without a state: it is not the answer to this "
            "command, so nothing was exchanged. Run tap-mokapen --authorize again"
        )
        raise ConsentRefusedError(msg)
    if not secrets.compare_digest(got.encode(), state.encode()):
        msg = (
            "The consent's redirect carries another state than the one this command sent "
            "(a stale or forged redirect): nothing was exchanged. Run tap-mokapen "
            "--authorize again"
        )
        raise ConsentRefusedError(msg)
    error = query.get("error")
    if error == "access_denied":
        msg = (
            "The consent was denied in the browser (access_denied): nothing was stored. Run "
            "tap-mokapen --authorize again and allow access to grant it"
        )
        raise ConsentRefusedError(msg)
    if error:
        said = query.get("error_description") or query.get("message") or ""
        msg = (
            f"Mokapen refused the consent ({cut(redact(error), 60)}"
            f"{': ' + redact(said, 200) if said else ''}): nothing was stored. Check the "
            "app's redirect URL and scopes, and the client_id"
        )
        raise ConsentRefusedError(msg)
    code = query.get("code")
    if not code:
        msg = "The consent's redirect came without a code: nothing was exchanged"
        raise ConsentRefusedError(msg)
    return code


# -- the exchange -------------------------------------------------------------------


def exchange(
    settings: Settings, code: str, store: RefreshTokenStore, *, user_agent: str
) -> Granted:
    """The code for a refresh token, kept in the store under the chosen organization.

    The store is locked, with room reserved, before the code is sent (a store that
    cannot be written stops here, the code unspent), and a SIGTERM or Ctrl-C during
    the grant waits until the token is saved: a spent code cannot be spent again."""
    session = requests.Session()
    session.headers.update({"Accept": "application/json", "User-Agent": user_agent})
    transport.guard(
        session,
        deadline_seconds=settings.request_deadline_seconds,
        max_bytes=settings.max_response_bytes,
    )
    token_url = f"{settings.base_url}/oauth/token"
    form = {
        "grant_type": "authorization_code",
        "client_id": settings.client_id or "",
        "client_secret": settings.client_secret or "",
        "redirect_uri": settings.redirect_uri,
        "code": code,
    }
    first_contact = retries.FirstContact()
    granted: list[Granted] = []

    def request() -> None:
        with output.uninterrupted():
            # Never redirected: a 3xx would carry the client secret and the code elsewhere.
            response = session.post(
                token_url, data=form, timeout=TOKEN_TIMEOUT_SECONDS, allow_redirects=False
            )
            first_contact.answered()
            verdict.judge_token_answer(response, organization_id=None, grant="authorization_code")
            granted.append(_keep(verdict.json_body(response), settings, store))

    send = retries.retrying(
        request,
        wait_gen=lambda: retries.wait_generator(
            settings.max_wait_seconds, reached=lambda: first_contact.reached
        ),
        max_wait_seconds=settings.max_wait_seconds,
        on_retry=lambda details: logger.warning(
            "The code exchange failed (%s); retrying in %.1f s",
            details.get("exception") or "no answer",
            details.get("wait", 0),
        ),
    )
    logger.info("Exchanging the consent's code at %s", urlsplit(token_url).netloc)
    try:
        with store.exchange():
            send()
    except retries.RETRIABLE_ERRORS as exc:
        what = f"Could not exchange the consent's code at {token_url}: "
        error = AuthenticationError
        raise retries.gave_up(exc, what, settings.max_wait_seconds, error) from None
    return granted[0]


def _granted_organization(value: t.Any) -> int | str | None:
    """The organization a grant names: its number, or an encrypted id string as Mokapen
    may give it (the organization_id setting takes both)."""
    number = organization_number(value)
    if number is not None:
        return number
    if isinstance(value, str) and IDENTIFIER.fullmatch(value.strip()):
        return value.strip()
    return None


def _keep(body: t.Any, settings: Settings, store: RefreshTokenStore) -> Granted:
    """The refresh token of the grant's answer, saved under its organization."""
    body = body if isinstance(body, dict) else {}
    for name in ("access_token", "refresh_token"):
        value = body.get(name)
        errors.register_secret(value if isinstance(value, str) else None)
    refresh_token = body.get("refresh_token")
    if not isinstance(refresh_token, str) or not refresh_token:
        msg = (
            "Mokapen granted the consent but its answer holds no refresh_token, so there is "
            "nothing to keep: is the app a public app? (A private app needs no consent: "
            "client_id, client_secret and organization_id are enough)"
        )
        raise AuthenticationError(msg)
    organization = _granted_organization(body.get("organization_id"))
    configured = settings.organization_ids
    if organization is None and len(configured) == 1:
        organization = organization_number(configured[0])
        if organization is not None:
            logger.warning(
                "Mokapen's answer does not say which organization was granted: the token is "
                "kept for the configured organization %s",
                organization,
            )
    if organization is None:
        msg = (
            "Mokapen granted the consent but did not say which organization (no "
            "organization_id in its answer): set organization_id to the organization you "
            "chose and run tap-mokapen --authorize again"
        )
        raise AuthenticationError(msg)
    store.keep_consent(organization, refresh_token)
    name = body.get("organization_name")
    shown = " ".join(str(name).split()) if isinstance(name, str) and name.strip() else None
    return Granted(organization, cut(redact(shown), 80) if shown else None, str(store.path))


def last_line(granted: Granted, settings: Settings, config_files: t.Sequence[str]) -> str:
    """One line: the organization granted, where its token is, and the command to run."""
    named = f" ({granted.organization_name})" if granted.organization_name else ""
    command = "tap-mokapen " + " ".join(f"--config {f}" for f in config_files or ("FILE",))
    configured = settings.organization_ids
    if configured == (granted.organization_id,) and not settings.all_organizations:
        then = f"Next: {command} (a sync)"
    elif configured and granted.organization_id not in configured:
        then = (
            f"The config names organization {', '.join(map(str, configured))}, not this one: "
            f"set organization_id to {granted.organization_id}, then run {command}"
        )
    else:
        then = f"Next: set organization_id to {granted.organization_id} and run {command}"
    return (
        f"Authorized organization {granted.organization_id}{named}: its refresh token is "
        f"kept in {granted.store}. {then}"
    )


def options() -> list[click.Option]:
    """``--authorize`` and ``--no-browser`` for the tap's command line (cli.py runs them)."""
    return [
        click.Option(
            ["--authorize"],
            is_flag=True,
            default=False,
            help="A public app's browser consent: print the authorize URL, wait for the "
            "redirect on the loopback redirect_uri, exchange the code and keep the refresh "
            "token in refresh_token_store for the organization chosen, then exit.",
        ),
        click.Option(
            ["--no-browser"],
            is_flag=True,
            default=False,
            help="With --authorize: only print the URL, never open a browser.",
        ),
    ]
