"""The sandbox token endpoint: the client_credentials, refresh_token and authorization_code
grants, as documented (the consent that hands out codes is consent.py's)."""

from __future__ import annotations

import dataclasses
import ipaddress
import secrets
import threading
import time
import typing as t
from urllib.parse import urlsplit

from mokapen_sandbox.settings import SandboxSettings


@dataclasses.dataclass
class IssuedToken:
    organization_id: int
    scopes: frozenset[str]
    client_id: str
    expires_at: float
    revoked: bool = False


#: How long an authorization code may wait for its exchange (RFC 6749 advises ten minutes).
CODE_LIFETIME_SECONDS = 600


@dataclasses.dataclass
class AuthorizationCode:
    """What the consent granted: redeemable once, by its client, with its redirect_uri."""

    client_id: str
    redirect_uri: str
    organization_id: int
    scopes: frozenset[str]
    expires_at: float


class OAuthError(Exception):
    """An OAuth error answer: status plus RFC 6749 ``error`` and Mokapen's ``message``."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": error, "error_description": message, "message": message}


class TokenIssuer:
    def __init__(self, now: t.Callable[[], float] = time.time) -> None:
        self.now = now
        self._lock = threading.Lock()
        self.access_tokens: dict[str, IssuedToken] = {}
        # refresh token -> (organization, scopes); a rotated one is removed.
        self.refresh_tokens: dict[str, tuple[int, frozenset[str]]] = {}
        # code -> what the consent granted; an exchanged one is removed (single use).
        self.codes: dict[str, AuthorizationCode] = {}
        self.issued = 0

    def issue_code(
        self, client_id: str, redirect_uri: str, organization_id: int, scopes: t.Iterable[str]
    ) -> str:
        """The code the consent hands the browser for the app's redirect_uri."""
        code = "ac_" + secrets.token_urlsafe(24)
        with self._lock:
            self.codes[code] = AuthorizationCode(
                client_id,
                redirect_uri,
                organization_id,
                frozenset(scopes),
                self.now() + CODE_LIFETIME_SECONDS,
            )
        return code

    def _redeem(self, form: dict[str, str]) -> AuthorizationCode:
        """The code's grant, spent: unknown, used, expired, another client's or another
        redirect_uri's code is the documented invalid_grant."""
        with self._lock:
            granted = self.codes.pop(form.get("code", ""), None)
        refused = "The authorization code is invalid, expired or already used."
        if granted is None or granted.expires_at <= self.now():
            raise OAuthError(400, "invalid_grant", refused)
        if granted.client_id != form.get("client_id"):
            raise OAuthError(400, "invalid_grant", refused)
        if granted.redirect_uri != form.get("redirect_uri"):
            raise OAuthError(
                400, "invalid_grant", "The redirect_uri does not match the one of the consent."
            )
        return granted

    def grant_refresh_token(self, organization_id: int, scopes: t.Iterable[str]) -> str:
        """What the browser consent at /oauth/authorize would hand a public app."""
        token = "rt_" + secrets.token_urlsafe(24)
        with self._lock:
            self.refresh_tokens[token] = (organization_id, frozenset(scopes))
        return token

    def dashboard_token(
        self, organization_id: int, scopes: t.Iterable[str], settings: SandboxSettings
    ) -> str:
        """What 'Generate Token' in the Developer dashboard hands a private app."""
        token = "dt_" + secrets.token_urlsafe(32)
        with self._lock:
            self.access_tokens[token] = IssuedToken(
                organization_id,
                frozenset(scopes),
                settings.client_id,
                self.now() + settings.token_ttl,
            )
        return token

    def issue(self, form: dict[str, str], settings: SandboxSettings) -> dict[str, t.Any]:
        if form.get("client_id") != settings.client_id or not secrets.compare_digest(
            form.get("client_secret", ""), settings.client_secret
        ):
            raise OAuthError(401, "invalid_client", "Client authentication failed.")
        grant = form.get("grant_type")
        refresh_token = None
        if grant == "client_credentials":
            if not settings.client_credentials_allowed:
                raise OAuthError(
                    400,
                    "unauthorized_client",
                    "This app may not use the client_credentials grant: it is a public app.",
                )
            org = self._organization(form.get("organization_id"), settings)
            requested = set(form.get("scope", "").split())
            not_enabled = sorted(requested - set(settings.enabled_scopes))
            if not_enabled:
                raise OAuthError(
                    400,
                    "invalid_scope",
                    f"The requested scope is invalid: {' '.join(not_enabled)} is not enabled "
                    "for this app.",
                )
            scopes = frozenset(requested)
        elif grant == "refresh_token":
            with self._lock:
                held = self.refresh_tokens.get(form.get("refresh_token", ""))
                if held is None:
                    raise OAuthError(400, "invalid_grant", settings.refresh_refused_message)
                org, scopes = held
                if settings.rotate_refresh_tokens:
                    del self.refresh_tokens[form["refresh_token"]]
                    refresh_token = "rt_" + secrets.token_urlsafe(24)
                    self.refresh_tokens[refresh_token] = held
                else:
                    refresh_token = form["refresh_token"]
        elif grant == "authorization_code":
            granted = self._redeem(form)
            org, scopes = granted.organization_id, granted.scopes
            refresh_token = self.grant_refresh_token(org, scopes)
        else:
            raise OAuthError(
                400, "unsupported_grant_type", f"The grant type {grant!r} is not supported."
            )
        access_token = "at_" + secrets.token_urlsafe(32)
        with self._lock:
            self.issued += 1
            self.access_tokens[access_token] = IssuedToken(
                org, scopes, settings.client_id, self.now() + settings.token_ttl
            )
        body: dict[str, t.Any] = {
            "token_type": "Bearer",
            "expires_in": (
                settings.token_ttl if settings.expires_in_sent is None else settings.expires_in_sent
            ),
            "access_token": access_token,
            "organization_id": org,
            "organization_name": settings.organizations[org],
        }
        if refresh_token:
            body["refresh_token"] = refresh_token
        return body

    @staticmethod
    def _organization(value: str | None, settings: SandboxSettings) -> int:
        if not value:
            raise OAuthError(400, "invalid_request", "The organization_id field is required.")
        org = resolve_organization(value, settings)
        if org is None:
            raise OAuthError(
                400, "invalid_request", f"The app is not installed in organization {value}."
            )
        return org

    def check(self, authorization: str | None) -> IssuedToken:
        """The token behind an Authorization header, or the documented 401."""
        if not authorization or not authorization.startswith("Bearer "):
            raise OAuthError(401, "unauthenticated", "Unauthenticated: No Token Provided")
        with self._lock:
            token = self.access_tokens.get(authorization[7:])
        if token is None or token.revoked or token.expires_at <= self.now():
            raise OAuthError(401, "unauthenticated", "Invalid Token")
        return token

    def revoke_all(self) -> None:
        with self._lock:
            for token in self.access_tokens.values():
                token.revoked = True

    def expire(self, authorization: str | None) -> None:
        with self._lock:
            token = self.access_tokens.get((authorization or "")[7:])
            if token:
                token.expires_at = 0


def is_loopback_redirect(uri: str) -> bool:
    """An http redirect_uri on a loopback address with a port: what a native app may use
    without registering each port (RFC 8252, 7.3)."""
    parts = urlsplit(uri)
    if parts.scheme != "http" or parts.fragment or not parts.hostname:
        return False
    try:
        if parts.port is None:
            return False
    except ValueError:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def encrypted_id(org: int) -> str:
    """The opaque identifier string some integrations use in place of the numeric id."""
    return f"enc_{org * 7919:x}"


def resolve_organization(value: str, settings: SandboxSettings) -> int | None:
    for org in settings.organizations:
        if value in (str(org), encrypted_id(org)):
            return org
    return None
