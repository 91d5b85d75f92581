"""Step 2 of the data path, the token: one per organization and run, shared by its streams."""

from __future__ import annotations

import datetime as dt
import logging
import re
from urllib.parse import urlsplit

import requests
from singer_sdk.authenticators import OAuthAuthenticator

from tap_mokapen import clock, errors, output, retries, transport, verdict
from tap_mokapen.throttle import RequestPacer
from tap_mokapen.token_store import RefreshTokenStore

logger = logging.getLogger("tap-mokapen")

#: Renew this long before expiry, so a token never dies between check and use.
RENEW_MARGIN = dt.timedelta(minutes=5)
TOKEN_TIMEOUT_SECONDS = 60
#: Longer than any token lives (Mokapen's example is a year): beyond, expires_in is nonsense.
MAX_LIFETIME_SECONDS = 10 * 365 * 86400


class MokapenAuthenticator(OAuthAuthenticator):
    """One organization's token, owned by the Tap's organization registry.

    Unlike the SDK template's process-wide singleton, a second Tap in the same
    process (as in tests) gets its own authenticator and its own credentials.

    Three modes, as Mokapen hands out access: ``client_credentials`` (private app),
    ``refresh_token`` (public app; a rotated refresh token is kept in a
    ``RefreshTokenStore``) and ``access_token`` (a dashboard token, used as it is).
    The token request is judged and retried by the same policy as every API
    request (verdict.py, retries.py), and takes a slot of the organization's request pacer.
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
        deadline_seconds: float = 300,
        max_bytes: int = 100 * 2**20,
        first_contact: retries.FirstContact,
        access_token: str | None = None,
        refresh_tokens: RefreshTokenStore | None = None,
        narrowable: bool = False,
    ) -> None:
        super().__init__(
            auth_endpoint=token_url,
            oauth_scopes=scope,
            client_id=client_id,
            client_secret=client_secret,
        )
        self.organization_id = organization_id
        #: The scope was derived from the selected streams: one Mokapen refuses may be
        #: dropped, failing only the streams that need it.
        self.narrowable = narrowable
        self.scopes = scope
        self.refused_scopes: set[str] = set()
        self.pacer = pacer
        self.max_wait_seconds = max_wait_seconds
        self.organization_name: str | None = None
        self._warned_lifetime = False
        #: The organization the token is bound to, by the token answer (None: not said).
        self.token_organization_id: int | None = None
        self.refresh_tokens = refresh_tokens
        self.dashboard_token = access_token
        errors.register_secret(client_secret, client_id=client_id)
        errors.register_secret(access_token)
        if refresh_tokens:
            errors.register_secret(refresh_tokens.current())
        # A session of our own: retries are retries.py's, not urllib3's.
        self.token_session = requests.Session()
        self.token_session.headers.update({"Accept": "application/json", "User-Agent": user_agent})
        transport.guard(self.token_session, deadline_seconds=deadline_seconds, max_bytes=max_bytes)
        #: Whether any server answer arrived this run (shared by the run's requests).
        self.first_contact = first_contact
        if access_token:
            self.access_token = access_token
            self.last_refreshed = clock.now()

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
            "scope": self.scopes,
            "organization_id": str(self.organization_id),
        }

    def is_token_valid(self) -> bool:
        if self.access_token is None or self.last_refreshed is None:
            return False
        if not self.expires_in:
            return True
        margin = min(RENEW_MARGIN, dt.timedelta(seconds=self.expires_in / 10))
        expires_at = self.last_refreshed + dt.timedelta(seconds=self.expires_in)
        return clock.now() < expires_at - margin

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
            raise errors.AuthenticationError(msg)
        logger.info("Requesting an access token for organization %s", self.organization_id)
        request = retries.retrying(
            self._request_token,
            wait_gen=lambda: retries.wait_generator(
                self.max_wait_seconds, reached=lambda: self.first_contact.reached
            ),
            max_wait_seconds=self.max_wait_seconds,
            on_retry=self._log_retry,
        )
        try:
            if self.refresh_tokens:
                with self.refresh_tokens.exchange():
                    request()
            else:
                request()
        except errors.ScopeNotEnabledError as exc:
            if not self._drop_refused_scopes(exc.message):
                raise
            self.update_access_token()
        except retries.RETRIABLE_ERRORS as exc:
            what = f"Could not get an access token from {self.auth_endpoint}: "
            error = errors.AuthenticationError
            raise retries.gave_up(exc, what, self.max_wait_seconds, error) from None

    def _drop_refused_scopes(self, message: str) -> bool:
        """Ask again without the scopes Mokapen's message names, if it names some of them."""
        asked = self.scopes.split()
        named = [s for s in asked if re.search(rf"(?<![\w.]){re.escape(s)}(?![\w.])", message)]
        kept = [s for s in asked if s not in named]
        if not (self.narrowable and named and kept):
            return False
        logger.warning(
            "Mokapen does not enable %s for this app (organization %s): the streams that "
            "need it fail, the others go on",
            " ".join(named),
            self.organization_id,
        )
        self.refused_scopes.update(named)
        self.scopes = " ".join(kept)
        return True

    def _request_token(self) -> None:
        requested_at = clock.now()
        with self.pacer.slot(), output.uninterrupted():
            # A signal waits for the grant and the saving of the token it rotates (at most
            # the request's deadline): a run stopped in between would lose the only valid
            # refresh token.
            # Never redirected: a 3xx would carry the client secret to another host.
            response = self.token_session.post(
                self.auth_endpoint,
                data=self.oauth_request_payload,
                timeout=TOKEN_TIMEOUT_SECONDS,
                allow_redirects=False,
            )
            self.first_contact.answered()
            verdict.judge_token_answer(
                response,
                organization_id=self.organization_id,
                grant="refresh_token" if self.refresh_tokens else "client_credentials",
            )
            self._accept(response, requested_at)

    def _log_retry(self, details: dict) -> None:
        logger.warning(
            "Token request to %s failed (%s); retrying in %.1f s",
            urlsplit(self.auth_endpoint).netloc,
            retries.described(details.get("exception")),
            details.get("wait", 0),
        )

    def _lifetime(self, value: object) -> int | None:
        """``expires_in`` when it is a sane number of seconds; else unknown (renewed on 401)."""
        if value is None:
            return None
        seconds = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        if isinstance(value, str) and value.strip().isdigit():
            seconds = int(value)
        if seconds is not None and 0 < seconds <= MAX_LIFETIME_SECONDS:
            return int(seconds)
        if not self._warned_lifetime:
            self._warned_lifetime = True
            logger.warning(
                "The token answer's expires_in (%.40r) is not a sane number of seconds: the "
                "token is used until Mokapen refuses it",
                value,
            )
        return None

    def _accept(self, response: requests.Response, requested_at: dt.datetime) -> None:
        body = verdict.json_body(response)
        rotated = body.get("refresh_token") if isinstance(body, dict) else None
        if isinstance(rotated, str) and rotated:
            errors.register_secret(rotated)
            if self.refresh_tokens and rotated != self.refresh_tokens.current():
                # The old refresh token may be dead already: keep the new one before
                # reading anything else of the answer (which may be broken).
                self.refresh_tokens.save(rotated)
                logger.info("Stored the rotated refresh token in %s", self.refresh_tokens.path)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            msg = f"The token endpoint {self.auth_endpoint} answered without an access_token"
            raise errors.AuthenticationError(msg)
        assert isinstance(body, dict)  # the token came from it
        self.access_token = token
        errors.register_secret(self.access_token)
        self.expires_in = self._lifetime(body.get("expires_in"))
        self.last_refreshed = requested_at
        name = body.get("organization_name")
        self.organization_name = name if isinstance(name, str) else None
        said = str(body.get("organization_id", ""))
        self.token_organization_id = int(said) if said.isascii() and said.isdigit() else None
