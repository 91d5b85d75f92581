"""Mokapen's answers sorted into fine, retry, re-authenticate, pause or fail - and the retries.

A mixin of the base stream (client.py): it holds the HTTP error policy so that the
stream class itself stays about URLs, paging and records.
"""

from __future__ import annotations

import time
import typing as t
from urllib.parse import urlsplit

import backoff
import requests
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError

from tap_mokapen import retry
from tap_mokapen.errors import (
    APIError,
    AuthenticationError,
    ConfigError,
    QuotaExhausted,
    ReauthenticationNeeded,
)
from tap_mokapen.records import NotJSONError

if t.TYPE_CHECKING:
    import collections

    from singer_sdk.helpers.types import Context

    from tap_mokapen.auth import MokapenAuthenticator
    from tap_mokapen.records import Page
    from tap_mokapen.tap import TapMokapen

#: Faults worth retrying: what the SDK retries, plus bodies cut short in transit.
RETRIABLE_ERRORS = (
    ConnectionResetError,
    RetriableAPIError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


class ResilientRequests:
    """validate_response, request_decorator and backoff hooks for a Mokapen stream."""

    mokapen_tap: TapMokapen
    organization_id: int | str
    stats: collections.Counter[str]
    name: str
    authenticator: MokapenAuthenticator
    log: t.Callable[..., None]
    read_page: t.Callable[[requests.Response], Page]

    def validate_response(self, response: requests.Response) -> None:
        """Sort every answer into: fine, retry, re-authenticate, pause, or fail clearly."""
        status = response.status_code
        if status == 429:
            self.stats["http_429"] += 1
            if retry.is_quota_exhausted(response):
                org = self.organization_id
                msg = f"Mokapen's daily request quota for organization {org} is spent"
                raise QuotaExhausted(msg)
            raise RetriableAPIError(self.response_error_message(response), response)
        if status == 401:
            raise ReauthenticationNeeded(self.response_error_message(response))
        if status >= 500:
            raise RetriableAPIError(self.response_error_message(response), response)
        if status == 403:
            raise ConfigError(self._forbidden_message(response))
        if status >= 400:
            raise FatalAPIError(self.response_error_message(response))
        try:
            self.read_page(response)
        except NotJSONError as exc:
            # A 200 whose body is cut short or is not JSON: a transport fault, retry.
            msg = f"{status} from GET {urlsplit(response.url).path}: {retry.api_message(response)}"
            raise RetriableAPIError(msg, response) from exc

    def response_error_message(self, response: requests.Response) -> str:
        # The path only: query strings and headers stay out of logs and errors.
        path = urlsplit(response.url).path
        return f"{response.status_code} from GET {path}: {retry.api_message(response)}"

    def _forbidden_message(self, response: requests.Response) -> str:
        body = retry.json_body(response)
        message = retry.api_message(response)
        prefix = self.response_error_message(response)
        org = self.organization_id
        if "organization" in message.lower():
            return (
                f"{prefix}. The token is bound to another organization than "
                f"{org}: check the organization_id setting."
            )
        if "scope" in message.lower():
            required = body.get("required") if isinstance(body, dict) else None
            needed = " ".join(required) if isinstance(required, list) else "the stream's scope"
            return (
                f"{prefix}. Add {needed} to the scope setting (and enable it for the app), "
                f"or deselect the '{self.name}' stream."
            )
        return prefix

    def request_decorator(self, func: t.Callable) -> t.Callable:
        """Pace every attempt, retry faults within max_wait_seconds, re-authenticate once."""

        def paced(prepared_request: requests.PreparedRequest, context: Context | None) -> t.Any:
            # The token request takes a slot of its own: fetch it before taking ours.
            self.authenticator.ensure_token()
            with self.mokapen_tap.pacer_for(self.organization_id).slot():
                self.stats["requests"] += 1
                return func(prepared_request, context)

        with_retries = backoff.on_exception(
            self.backoff_wait_generator,
            RETRIABLE_ERRORS,
            max_tries=None,
            max_time=self.mokapen_tap.max_wait_seconds,
            on_backoff=self.backoff_handler,
            jitter=self.backoff_jitter,
            logger=None,
        )(paced)

        def send(prepared_request: requests.PreparedRequest, context: Context | None) -> t.Any:
            try:
                try:
                    return with_retries(prepared_request, context)
                except ReauthenticationNeeded:
                    self.log("401 from the API: requesting a fresh token and retrying once")
                    self.authenticator.invalidate()
                    return with_retries(prepared_request, context)
            except ReauthenticationNeeded as exc:
                msg = (
                    f"{exc}. A fresh token was refused too: the app's access to "
                    f"organization {self.organization_id} was revoked or "
                    "its credentials changed."
                )
                raise AuthenticationError(msg) from None
            except RetriableAPIError as exc:
                msg = (
                    f"{exc} (still failing after retrying for "
                    f"max_wait_seconds={self.mokapen_tap.max_wait_seconds:g})"
                )
                raise APIError(msg) from None
            except RETRIABLE_ERRORS as exc:
                path = urlsplit(prepared_request.url or "").path
                msg = (
                    f"GET {path} failed: {type(exc).__name__} (still failing after "
                    f"retrying for max_wait_seconds={self.mokapen_tap.max_wait_seconds:g})"
                )
                raise APIError(msg) from None

        return send

    def backoff_wait_generator(self) -> t.Generator[float, t.Any, None]:
        """Wait as long as Mokapen asks (``retry_after``), else back off exponentially."""
        attempt = 0
        started = time.monotonic()
        exception = yield  # type: ignore[misc]
        while True:
            attempt += 1
            response = getattr(exception, "response", None)
            asked = retry.retry_after_seconds(response) if response is not None else None
            wait = asked if asked is not None else retry.backoff_seconds(attempt)
            remaining = self.mokapen_tap.max_wait_seconds - (time.monotonic() - started)
            if asked is not None and asked > remaining:
                msg = (
                    f"{exception} - Mokapen asks to wait {asked:g} s, more than the "
                    f"{max(remaining, 0):.0f} s left of max_wait_seconds"
                )
                raise APIError(msg)
            exception = yield wait

    def backoff_handler(self, details: t.Any) -> None:
        exception = details.get("exception")
        self.stats["retries"] += 1
        self.log(
            "Retrying in %.1f s (attempt %d): %s",
            details.get("wait", 0),
            details.get("tries", 0),
            exception or "no answer",
        )
