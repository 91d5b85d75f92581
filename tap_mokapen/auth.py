"""The run's one OAuth token: requested with client_credentials, shared by every stream."""

from __future__ import annotations

import datetime as dt
import logging
import random
import time

import requests
from singer_sdk.authenticators import OAuthAuthenticator

from tap_mokapen import retry
from tap_mokapen.errors import AuthenticationError, ConfigError, QuotaExhausted
from tap_mokapen.limits import RequestPacer
from tap_mokapen.token_store import RefreshTokenStore

logger = logging.getLogger("tap-mokapen")

#: Renew this long before expiry, so a token never dies between check and use.
RENEW_MARGIN = dt.timedelta(minutes=5)
TOKEN_TIMEOUT_SECONDS = 60


class MokapenAuthenticator(OAuthAuthenticator):
    """One organization's token, owned by the Tap: one token request per run and organization.

    Unlike the SDK template's process-wide singleton, a second Tap in the same
    process (as in tests) gets its own authenticator and its own credentials.

    Three modes, as Mokapen hands out access: ``client_credentials`` (private app),
    ``refresh_token`` (public app; a rotated refresh token is kept in a
    ``RefreshTokenStore``) and ``access_token`` (a dashboard token, used as it is).
    """

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str | None,
        client_secret: str | None,
        organization_id: int | str,
        scope: str,
        pacer: RequestPacer,
        user_agent: str,
        max_wait_seconds: float,
        access_token: str | None = None,
        refresh_tokens: RefreshTokenStore | None = None,
    ) -> None:
        super().__init__(
            auth_endpoint=token_url,
            oauth_scopes=scope,
            client_id=client_id,
            client_secret=client_secret,
            oauth_headers={"Accept": "application/json", "User-Agent": user_agent},
        )
        self.organization_id = organization_id
        self.pacer = pacer
        self.max_wait_seconds = max_wait_seconds
        self.organization_name: str | None = None
        self.refresh_tokens = refresh_tokens
        self.dashboard_token = access_token
        if access_token:
            self.access_token = access_token
            self.last_refreshed = dt.datetime.now(dt.UTC)

    @property
    def oauth_request_body(self) -> dict:
        if self.refresh_tokens:
            return {
                "grant_type": "refresh_token",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "refresh_token": self.refresh_tokens.current(),
            }
        return {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "scope": self.oauth_scopes,
            "organization_id": str(self.organization_id),
        }

    def is_token_valid(self) -> bool:
        if self.access_token is None or self.last_refreshed is None:
            return False
        if not self.expires_in:
            return True
        margin = min(RENEW_MARGIN, dt.timedelta(seconds=self.expires_in / 10))
        expires_at = self.last_refreshed + dt.timedelta(seconds=self.expires_in)
        return dt.datetime.now(dt.UTC) < expires_at - margin

    def ensure_token(self) -> None:
        """Get a token now if needed, so it never has to be fetched inside another request."""
        if not self.is_token_valid():
            self.update_access_token()

    def invalidate(self) -> None:
        """Forget the token (after a 401) so the next request fetches a fresh one."""
        self.access_token = None
        self.last_refreshed = None

    def update_access_token(self) -> None:
        if self.dashboard_token:
            msg = (
                f"Mokapen refused the access_token for organization {self.organization_id}: "
                "the dashboard token was revoked or has expired. Generate a new one in "
                "Mokapen's Developer dashboard (Generate Token) and update the "
                "access_token setting."
            )
            raise AuthenticationError(msg)
        logger.info("Requesting an access token for organization %s", self.organization_id)
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            requested_at = dt.datetime.now(dt.UTC)
            try:
                with self.pacer.slot():
                    response = self._session.post(
                        self.auth_endpoint,
                        data=self.oauth_request_payload,
                        headers=self._oauth_headers,
                        timeout=TOKEN_TIMEOUT_SECONDS,
                    )
            except (requests.ConnectionError, requests.Timeout) as exc:
                problem, wait = f"{type(exc).__name__}", retry.backoff_seconds(attempt)
            else:
                if response.status_code == 200:
                    self._accept(response, requested_at)
                    return
                self._raise_if_final(response)
                problem = f"{response.status_code} {retry.api_message(response)}"
                wait = retry.retry_after_seconds(response) or retry.backoff_seconds(attempt)
            wait += random.uniform(0, 1)  # noqa: S311 - jitter, not cryptography
            if time.monotonic() - started + wait > self.max_wait_seconds:
                msg = (
                    f"Could not get an access token from {self.auth_endpoint}: {problem} "
                    f"(gave up after {attempt} attempts, max_wait_seconds="
                    f"{self.max_wait_seconds:g})"
                )
                raise AuthenticationError(msg)
            logger.warning("Token request failed (%s); retrying in %.1f s", problem, wait)
            time.sleep(wait)

    def _accept(self, response: requests.Response, requested_at: dt.datetime) -> None:
        body = retry.json_body(response)
        if not isinstance(body, dict) or not body.get("access_token"):
            msg = f"The token endpoint {self.auth_endpoint} answered without an access_token"
            raise AuthenticationError(msg)
        self.access_token = body["access_token"]
        self.expires_in = int(body["expires_in"]) if body.get("expires_in") else None
        self.last_refreshed = requested_at
        self.organization_name = body.get("organization_name")
        rotated = body.get("refresh_token")
        if self.refresh_tokens and rotated and rotated != self.refresh_tokens.current():
            # The old refresh token may be dead already: keep the new one before anything else.
            self.refresh_tokens.save(rotated)
            logger.info("Stored the rotated refresh token in %s", self.refresh_tokens.path)

    def _raise_if_final(self, response: requests.Response) -> None:
        """Turn a token error that waiting cannot fix into a one-line, actionable error."""
        status, message = response.status_code, retry.api_message(response)
        body = retry.json_body(response)
        error = body.get("error") if isinstance(body, dict) else None
        if retry.is_quota_exhausted(response):
            msg = f"Mokapen's daily request quota for organization {self.organization_id} is spent"
            raise QuotaExhausted(msg)
        if status in (429,) or status >= 500:
            return
        where = f"token request for organization {self.organization_id} ({status})"
        if error == "invalid_client" or status == 401:
            msg = f"Mokapen rejected the {where}: {message} Check client_id and client_secret."
            raise AuthenticationError(msg)
        if error == "invalid_grant" and self.refresh_tokens:
            msg = (
                f"Mokapen rejected the {where}: {message} The refresh token was revoked "
                "or already used: authorize the app again (/oauth/authorize) and set the "
                "new refresh_token."
            )
            raise AuthenticationError(msg)
        if error == "invalid_scope":
            msg = f"Mokapen rejected the {where}: {message} Fix the scope setting."
            raise ConfigError(msg)
        if "organization" in message.lower():
            msg = f"Mokapen rejected the {where}: {message} Check the organization_id setting."
            raise ConfigError(msg)
        msg = f"Mokapen rejected the {where}: {message}"
        raise AuthenticationError(msg)
