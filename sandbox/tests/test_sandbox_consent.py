"""The sandbox serves Mokapen's consent: GET /oauth/authorize answers at once with the
302 a browser follows, and the authorization_code grant redeems each code once, for the
redirect_uri it was issued to, with Mokapen's answer."""

from __future__ import annotations

import typing as t
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from mokapen_sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from mokapen_sandbox.server import SandboxServer
from mokapen_sandbox.settings import SandboxSettings

REDIRECT = "http://127.0.0.1:9/callback"
STATE = "s" * 16


@pytest.fixture
def server() -> t.Iterator[SandboxServer]:
    with SandboxServer(SandboxSettings()) as running:
        yield running


def consent(server: SandboxServer, **overrides: str) -> requests.Response:
    params = {
        "client_id": DEMO_CLIENT_ID,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "contacts.read tasks.read",
        "state": STATE,
        **overrides,
    }
    return requests.get(
        f"{server.url}/oauth/authorize", params=params, allow_redirects=False, timeout=10
    )


def redirected_to(answer: requests.Response) -> dict[str, str]:
    assert answer.status_code == 302, answer.text
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def exchange(server: SandboxServer, code: str, redirect_uri: str = REDIRECT) -> requests.Response:
    form = {
        "grant_type": "authorization_code",
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
        "redirect_uri": redirect_uri,
        "code": code,
    }
    return requests.post(f"{server.url}/oauth/token", data=form, timeout=10)


def test_an_approved_consent_redirects_with_a_code_that_buys_a_refresh_token(server):
    query = redirected_to(consent(server))
    assert query["state"] == STATE and query["code"]

    answer = exchange(server, query["code"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["organization_id"] == 849 and body["organization_name"] == "Acme Sandbox S.r.l."
    assert body["access_token"] and body["refresh_token"] and body["expires_in"]
    refreshed = requests.post(
        f"{server.url}/oauth/token",
        data={
            "grant_type": "refresh_token",
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
            "refresh_token": body["refresh_token"],
        },
        timeout=10,
    )
    assert refreshed.status_code == 200 and refreshed.json()["organization_id"] == 849


def test_the_user_chooses_the_organization_by_a_switch(server):
    server.sandbox.settings.consent_organization = 850
    body = exchange(server, redirected_to(consent(server))["code"]).json()
    assert (body["organization_id"], body["organization_name"]) == (850, "Globex Sandbox GmbH")


def test_a_denied_consent_redirects_with_access_denied(server):
    server.sandbox.settings.consent = "deny"
    assert redirected_to(consent(server)) == {"error": "access_denied", "state": STATE}


def test_a_code_is_single_use_and_bound_to_its_redirect_uri(server):
    code = redirected_to(consent(server))["code"]
    assert exchange(server, code).status_code == 200
    used = exchange(server, code)
    assert (used.status_code, used.json()["error"]) == (400, "invalid_grant")

    other = redirected_to(consent(server))["code"]
    wrong = exchange(server, other, redirect_uri="http://127.0.0.1:10/callback")
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    assert exchange(server, "ac_made_up").json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"client_id": "someone-else"}, "invalid_client"),
        ({"redirect_uri": "https://elsewhere.example/callback"}, "invalid_request"),
        ({"state": "short"}, "invalid_request"),
    ],
)
def test_a_request_no_consent_page_would_redirect_is_a_400(server, overrides, error):
    answer = consent(server, **overrides)
    assert (answer.status_code, answer.json()["error"]) == (400, error)


def test_registered_redirect_uris_are_matched_exactly(server):
    server.sandbox.settings.redirect_uris = [REDIRECT]
    assert redirected_to(consent(server))["code"]
    other = consent(server, redirect_uri="http://127.0.0.1:10/callback")
    assert other.status_code == 400


def test_a_scope_not_enabled_comes_back_as_invalid_scope(server):
    assert redirected_to(consent(server, scope="contacts.write"))["error"] == "invalid_scope"


def test_a_public_app_may_not_use_client_credentials(server):
    server.sandbox.settings.client_credentials_allowed = False
    answer = requests.post(
        f"{server.url}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
            "organization_id": "849",
            "scope": "contacts.read",
        },
        timeout=10,
    )
    assert (answer.status_code, answer.json()["error"]) == (400, "unauthorized_client")
