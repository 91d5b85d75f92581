"""Step 3 of the data path, the request's verdict: the one error and retry policy.

Every answer the tap gets, from the token endpoint or from a list endpoint, is judged
here and only here, into one of six outcomes:

==================  =====================================================  =================
outcome             answers                                                raised as
==================  =====================================================  =================
fine                2xx with a JSON body                                   (nothing)
retry               429 throttle, 5xx, HTML error pages, a body cut        RetriableAPIError
                    short, connection faults and timeouts
re-authenticate     401 from the API (once per request)                    ReauthenticationNeeded
pause               429 daily quota; the run's own request budget          RunPaused
smaller page        400/422 about per_page (see page_size.py)              PageSizeRefused
fail                any other 4xx, refused credentials, a fault that       MokapenError
                    outlasts ``max_wait_seconds``
==================  =====================================================  =================

Retries wait as long as Mokapen asks (``retry_after`` in the body, ``Retry-After``
in the header) or back off exponentially, always within ``max_wait_seconds``.
Every message here quotes only the status, the path and Mokapen's ``message``:
never a query string, a header, a token or a secret.
"""

from __future__ import annotations

import email.utils
import re
import time
import typing as t
from urllib.parse import urlsplit

import backoff
import msgspec
import requests
from singer_sdk.exceptions import RetriableAPIError

#: The longest single wait between retries of a failing (non-throttled) request.
MAX_BACKOFF_SECONDS = 60.0
_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|second|seconds)?\s*$", re.IGNORECASE)
_MINUTES = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|mins|minute|minutes)\s*$", re.IGNORECASE)


# -- what the user is told: one clear line, exit code 1 ---------------------------


class MokapenError(Exception):
    """A failure the user can act on; its message is the whole report."""


class ConfigError(MokapenError):
    """Settings that cannot work (found before any request, or by Mokapen's 403)."""


class ScopeNotEnabledError(ConfigError):
    """The token request asked for a scope Mokapen does not enable for the app."""

    def __init__(self, report: str, message: str) -> None:
        super().__init__(report)
        #: Mokapen's own message, which may name the scopes it refused.
        self.message = message


class AuthenticationError(MokapenError):
    """Mokapen refused the credentials or the token (token endpoint, or 401 twice)."""


class APIError(MokapenError):
    """An API answer the tap cannot recover from."""


# -- signals inside the request path ----------------------------------------------


class TruncatedAnswer(RetriableAPIError):  # noqa: N818 - the SDK names it, retried
    """A 2xx whose body is cut short or is not JSON: a transport fault, retried."""


class ReauthenticationNeeded(Exception):  # noqa: N818 - a signal, not a failure
    """A 401 from the API: the token must be replaced and the request sent once more."""


class PageSizeRefused(Exception):  # noqa: N818 - a signal inside the request loop
    """The server will not serve a page this large: ask again for fewer (page_size.py)."""

    def __init__(self, message: str, *, fault: bool = False) -> None:
        super().__init__(message)
        self.message = message
        #: Not a refusal but repeated faults (5xx, no answer) at a large size.
        self.fault = fault


class RunPaused(Exception):  # noqa: N818 - a clean stop, not a failure
    """The run stops early but cleanly: the emitted STATE resumes it exactly."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class QuotaExhausted(RunPaused):
    """Mokapen's daily request quota for the organization is spent."""

    def __init__(self, organization_id: int | str) -> None:
        super().__init__(
            f"Mokapen's daily request quota for organization {organization_id} is spent"
        )


class RequestBudgetSpent(RunPaused):
    """The run reached the user's max_requests_per_run."""


# -- never a secret in a message ----------------------------------------------------

#: The longest stretch of a server's answer any message quotes.
MAX_QUOTE = 300
_SECRETS: set[str] = set()


def register_secret(value: str | None) -> None:
    """A secret (client secret, token) that no message may show, whatever a server echoes.

    Kept for the process: masking a secret of another Tap in the same process too
    does no harm.
    """
    if value and len(value) >= 4:
        _SECRETS.add(value)


def redact(text: str, limit: int = MAX_QUOTE) -> str:
    """Text from a server, cut to ``limit`` characters, with every known secret masked."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return text if len(text) <= limit else text[:limit] + "..."


# -- reading Mokapen's answers ------------------------------------------------------

_MISSING = object()


def json_body(response: requests.Response) -> t.Any:
    """The response's JSON body, decoded once and kept on the response; None if not JSON."""
    cached = getattr(response, "_mokapen_json", _MISSING)
    if cached is _MISSING:
        try:
            cached = msgspec.json.decode(response.content)
        except msgspec.DecodeError:
            cached = None
        response._mokapen_json = cached  # type: ignore[attr-defined]
    return cached


def api_message(response: requests.Response) -> str:
    """Mokapen's own ``message``, or a short description of a body that has none."""
    body = json_body(response)
    if isinstance(body, dict):
        message = body.get("message") or body.get("error_description") or body.get("error")
        if message:
            return redact(str(message).strip())
    content_type = response.headers.get("Content-Type", "")
    if "html" in content_type or response.content[:15].lstrip().lower().startswith(b"<"):
        title = re.search(rb"<title>(.*?)</title>", response.content, re.IGNORECASE | re.DOTALL)
        return "an HTML error page" + (
            f" ({redact(title[1].decode(errors='replace').strip(), 80)})" if title else ""
        )
    return "no message" if not response.content else "a body that is not JSON"


def describe(response: requests.Response) -> str:
    """``<status> from <METHOD> <path>: <message>``; the path only, never the query."""
    method = response.request.method if response.request is not None else "GET"
    path = urlsplit(response.url).path
    return f"{response.status_code} from {method} {path}: {api_message(response)}"


def redirect_refused(response: requests.Response) -> str:
    """A redirect, named by its status and target host (never its query): never followed."""
    method = response.request.method if response.request is not None else "GET"
    target = urlsplit(response.headers.get("Location", ""))
    host = target.hostname or "the same host"
    where = f"{host}:{target.port}" if target.port else host
    return (
        f"{response.status_code} from {method} {urlsplit(response.url).path} redirects to "
        f"{where}: the tap follows no redirect, which could carry the token or the client "
        "secret elsewhere; check base_url"
    )


def is_quota_exhausted(response: requests.Response) -> bool:
    """A 429 for the daily quota (retrying is pointless until the next UTC day).

    The documented body is ``{"message": "Quota exceeded", "API daily request limit
    exceeded.\\n": 2000}``; the key is matched loosely in case it is ever fixed.
    """
    if response.status_code != 429:
        return False
    body = json_body(response)
    if not isinstance(body, dict):
        return False
    if "quota" in str(body.get("message", "")).lower():
        return True
    return any("daily request limit" in str(key).lower() for key in body)


def retry_after_seconds(response: requests.Response) -> float | None:
    """How long Mokapen asked us to wait: body ``retry_after`` or ``Retry-After`` header."""
    body = json_body(response)
    candidates: list[t.Any] = []
    if isinstance(body, dict):
        candidates.append(body.get("retry_after"))
    candidates.append(response.headers.get("Retry-After"))
    waits = [w for w in map(_parse_wait, candidates) if w is not None]
    return max(waits) if waits else None


def _parse_wait(value: t.Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return max(0.0, float(value))
    text = str(value)
    if match := _SECONDS.match(text):
        return float(match[1])
    if match := _MINUTES.match(text):
        return float(match[1]) * 60
    try:  # An HTTP date, as RFC 9110 also allows for Retry-After.
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff for faults that say nothing of when to come back."""
    return min(MAX_BACKOFF_SECONDS, 2.0 ** max(0, attempt - 1))


# -- the verdicts ------------------------------------------------------------------


def judge_api_answer(
    response: requests.Response, *, organization_id: int | str, stream: str, scope: str
) -> None:
    """Raise the outcome of a list endpoint's answer unless it is fine (see the table)."""
    status = response.status_code
    if 300 <= status < 400:
        raise APIError(redirect_refused(response))
    if status == 429:
        if is_quota_exhausted(response):
            raise QuotaExhausted(organization_id)
        raise RetriableAPIError(describe(response), response)
    if status == 401:
        raise ReauthenticationNeeded(describe(response))
    if status >= 500:
        raise RetriableAPIError(describe(response), response)
    if status == 403:
        raise ConfigError(_forbidden(response, organization_id, stream, scope))
    if status in (400, 422) and _about_page_size(response):
        raise PageSizeRefused(api_message(response) or describe(response))
    if status >= 400:
        raise APIError(describe(response))


_PAGE_SIZE_WORDS = re.compile(r"per[ _]?page|page[ _]?size", re.IGNORECASE)


def _about_page_size(response: requests.Response) -> bool:
    """A validation answer about ``per_page``: by Laravel's ``errors`` keys, or its message."""
    body = json_body(response)
    fields = body.get("errors") if isinstance(body, dict) else None
    if isinstance(fields, dict) and "per_page" in fields:
        return True
    return bool(_PAGE_SIZE_WORDS.search(api_message(response)))


def _forbidden(
    response: requests.Response, organization_id: int | str, stream: str, scope: str
) -> str:
    message = api_message(response).lower()
    if "organization" in message:
        return organization_refused(describe(response), organization_id)
    if "scope" in message:
        body = json_body(response)
        required = body.get("required") if isinstance(body, dict) else None
        needed = " ".join(required) if isinstance(required, list) else scope
        return (
            f"{describe(response)}. Add {needed} to the scope setting (and enable it for "
            f"the app), or deselect the '{stream}' stream."
        )
    return describe(response)


def organization_refused(what: str, organization_id: int | str) -> str:
    """Mokapen refused the organization (token request or API call): the setting to fix."""
    return (
        f"{what.rstrip('.')}. Mokapen does not accept organization {organization_id} for these "
        "credentials: check the organization_id setting."
    )


def judge_token_answer(
    response: requests.Response, *, organization_id: int | str, refreshing: bool
) -> None:
    """Raise the outcome of a token request's answer unless it is a 200."""
    status = response.status_code
    if status == 200:
        return
    if 300 <= status < 400:
        raise ConfigError(redirect_refused(response))
    if is_quota_exhausted(response):
        raise QuotaExhausted(organization_id)
    if status == 429 or status >= 500:
        raise RetriableAPIError(describe(response), response)
    message = api_message(response)
    body = json_body(response)
    error = body.get("error") if isinstance(body, dict) else None
    refused = (
        f"Mokapen rejected the token request for organization {organization_id} "
        f"({status}): {message}"
    )
    if error == "invalid_client" or status == 401:
        raise AuthenticationError(f"{refused} Check client_id and client_secret.")
    if error == "invalid_grant" and refreshing:
        msg = (
            f"{refused} The refresh token was revoked or already used: authorize the app "
            "again (/oauth/authorize) and set the new refresh_token."
        )
        raise AuthenticationError(msg)
    if error == "invalid_scope":
        raise ScopeNotEnabledError(f"{refused} Fix the scope setting.", message)
    if "organization" in message.lower():
        raise ConfigError(organization_refused(refused, organization_id))
    raise AuthenticationError(refused)


# -- retrying ------------------------------------------------------------------------

#: Faults worth retrying: what the SDK retries, plus bodies cut short in transit.
RETRIABLE_ERRORS = (
    ConnectionResetError,
    RetriableAPIError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)

Send = t.TypeVar("Send", bound=t.Callable[..., t.Any])


def wait_generator(
    max_wait_seconds: float, *, reached: t.Callable[[], bool] = lambda: True
) -> t.Generator[float, t.Any, None]:
    """Wait as long as Mokapen asks (``retry_after``), else back off exponentially.

    A request Mokapen asks to delay past ``max_wait_seconds`` fails at once rather
    than sleeping in vain. A connection refused (or a host unknown) before any
    server answered in this run is a wrong ``base_url``, not a fault: it fails
    after FIRST_CONTACT_TRIES quick attempts, naming the address.
    """
    attempt = 0
    started = time.monotonic()
    exception = yield  # type: ignore[misc]
    while True:
        attempt += 1
        if _unreachable(exception) and not reached() and attempt >= FIRST_CONTACT_TRIES:
            request = getattr(exception, "request", None)
            url = urlsplit(getattr(request, "url", "") or "")
            msg = (
                f"Cannot connect to {url.scheme}://{url.netloc} ({_reason(exception)}) after "
                f"{attempt} attempts, and nothing has answered in this run: check base_url"
            )
            raise ConfigError(msg)
        response = getattr(exception, "response", None)
        asked = retry_after_seconds(response) if response is not None else None
        wait = asked if asked is not None else backoff_seconds(attempt)
        remaining = max_wait_seconds - (time.monotonic() - started)
        if asked is not None and asked > remaining:
            msg = (
                f"{exception} - Mokapen asks to wait {asked:g} s, more than the "
                f"{max(remaining, 0):.0f} s left of max_wait_seconds"
            )
            raise APIError(msg)
        exception = yield wait


#: Quick attempts at a first connection before a refused one counts as a wrong address.
FIRST_CONTACT_TRIES = 3


def _unreachable(exception: t.Any) -> bool:
    return isinstance(exception, requests.exceptions.ConnectionError) and not isinstance(
        exception, requests.exceptions.Timeout
    )


def _reason(exception: t.Any) -> str:
    text = str(exception)
    for known in ("Connection refused", "Name or service not known", "No route to host"):
        if known in text:
            return known.lower()
    return type(exception).__name__


def retrying(
    send: Send,
    *,
    wait_gen: t.Callable[[], t.Generator[float, t.Any, None]],
    max_wait_seconds: float,
    on_retry: t.Callable[[t.Any], None],
    jitter: t.Callable[[float], float] | None = backoff.random_jitter,
    give_up: t.Callable[[Exception], bool] = lambda _: False,
) -> Send:
    """``send`` retried on every retriable fault, for at most ``max_wait_seconds``
    (or until ``give_up`` says a fault is not worth retrying as it is)."""
    return backoff.on_exception(
        wait_gen,
        RETRIABLE_ERRORS,
        max_tries=None,
        max_time=max_wait_seconds,
        giveup=give_up,
        on_backoff=on_retry,
        jitter=jitter,
        logger=None,
    )(send)


def gave_up(
    exception: Exception,
    what: str,
    max_wait_seconds: float,
    error: type[MokapenError] = APIError,
) -> MokapenError:
    """The error for a fault that outlasted ``max_wait_seconds``."""
    cause = exception if isinstance(exception, RetriableAPIError) else type(exception).__name__
    return error(
        f"{what}{cause} (still failing after retrying for max_wait_seconds={max_wait_seconds:g})"
    )
