"""The browser consent at ``GET /oauth/authorize``, answered without a browser.

Mokapen shows the user a page to choose the organization to grant and then sends
the browser to the app's ``redirect_uri`` with a ``code`` (and the ``state`` it was
given). The sandbox has no user to ask, so it answers at once as a switch says
(``consent``: approve or deny; ``consent_organization``: which organization the
"user" chose), with the 302 a browser follows. Whatever a real consent page would
refuse to send anywhere (an unknown client, a redirect_uri not registered, a state
too short to be random) is a 400 here and no redirect: the redirect_uri of such a
request is not to be trusted.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

from mokapen_sandbox.oauth import TokenIssuer, is_loopback_redirect
from mokapen_sandbox.replies import Reply, json_reply
from mokapen_sandbox.settings import SandboxSettings

#: The documented least length of the state a client sends.
MIN_STATE_LENGTH = 16


def authorize(query: str, issuer: TokenIssuer, settings: SandboxSettings) -> Reply:
    """The answer to ``GET /oauth/authorize?<query>``: a 302 to the redirect_uri, or a 400."""
    params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
    client_id = params.get("client_id", "")
    redirect_uri = params.get("redirect_uri", "")
    state = params.get("state", "")
    if client_id != settings.client_id:
        return _refused("invalid_client", "The client is not known.")
    if not _registered(redirect_uri, settings):
        return _refused("invalid_request", "The redirect_uri is not registered for this app.")
    if len(state) < MIN_STATE_LENGTH:
        return _refused(
            "invalid_request", f"The state must be at least {MIN_STATE_LENGTH} characters."
        )
    if params.get("response_type") != "code":
        return _redirect(redirect_uri, error="unsupported_response_type", state=state)
    scopes = params.get("scope", "").split()
    if not scopes or set(scopes) - set(settings.enabled_scopes):
        return _redirect(redirect_uri, error="invalid_scope", state=state)
    if settings.consent == "deny":
        return _redirect(redirect_uri, error="access_denied", state=state)
    org = settings.consent_organization or next(iter(settings.organizations))
    code = issuer.issue_code(client_id, redirect_uri, org, scopes)
    return _redirect(redirect_uri, code=code, state=state)


def _registered(redirect_uri: str, settings: SandboxSettings) -> bool:
    if settings.redirect_uris is None:
        return is_loopback_redirect(redirect_uri)
    return redirect_uri in settings.redirect_uris


def _redirect(redirect_uri: str, **params: str) -> Reply:
    """A 302 to the redirect_uri with ``params`` added to its query, as OAuth 2.0 says."""
    joiner = "&" if urlsplit(redirect_uri).query else "?"
    return Reply(302, b"", headers={"Location": f"{redirect_uri}{joiner}{urlencode(params)}"})


def _refused(error: str, message: str) -> Reply:
    return json_reply(400, {"error": error, "error_description": message, "message": message})
