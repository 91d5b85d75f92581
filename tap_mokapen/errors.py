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

How long a retry waits, and for how long a request keeps being retried, is
retries.py's.
Every message here quotes only the status, the path and Mokapen's ``message``:
never a query string, a header, a token or a secret.
"""

from __future__ import annotations

import base64
import json
import re
import typing as t
from urllib.parse import quote, quote_plus, urlsplit

import msgspec
import requests
from singer_sdk.exceptions import RetriableAPIError

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


def register_secret(value: str | None, *, client_id: str | None = None) -> None:
    """A secret (client secret, token) that no message may show, whatever a server echoes.

    Masked in every form a server may echo it in: as it is, URL-encoded (``%`` and ``+``
    forms, as a form body or a query carries it), JSON-escaped, and, given the
    ``client_id`` it goes with, as the base64 of ``client_id:secret`` that HTTP Basic
    authentication sends. Kept for the process: masking a secret of another Tap in the
    same process too does no harm.
    """
    if not value or len(value) < 4:
        return
    forms = {
        value,
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
    }
    if client_id:
        basic = f"{client_id}:{value}".encode()
        forms.add(base64.b64encode(basic).decode())
        forms.add(base64.urlsafe_b64encode(basic).decode())
    _SECRETS.update(form for form in forms if len(form) >= 4)


def redact(text: str, limit: int = MAX_QUOTE) -> str:
    """Text from a server, cut to ``limit`` characters, with every known secret masked."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return cut(text, limit)


def cut(text: str, limit: int = MAX_QUOTE) -> str:
    """Text cut to ``limit`` characters, saying how much was left out: a path, a listing or
    an answer quoted in a message can be of any length."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


# -- reading Mokapen's answers ------------------------------------------------------

_MISSING = object()


def json_body(response: requests.Response) -> t.Any:
    """The response's JSON body, decoded once and kept on the response; None if not JSON."""
    cached = getattr(response, "_mokapen_json", _MISSING)
    if cached is _MISSING:
        try:
            cached = msgspec.json.decode(response.content)
        except (msgspec.DecodeError, UnicodeDecodeError):  # msgspec < 0.23 raised the latter
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


#: The longest path a message quotes: a server's next_page_url can be of any length.
MAX_PATH_QUOTE = 200


def url_path(url: str | None) -> str:
    """The path of a URL as a message quotes it: never the query (it may hold a secret),
    cut to MAX_PATH_QUOTE characters."""
    return cut(urlsplit(url or "").path, MAX_PATH_QUOTE)


def sentences(*parts: str) -> str:
    """Parts as written sentences: each ends with one full stop (a server's message may
    end with one already, or with none), joined by a space."""
    ended = []
    for part in parts:
        text = part.strip()
        if text:
            ended.append(text if text[-1] in ".!?" else f"{text}.")
    return " ".join(ended)


def describe(response: requests.Response) -> str:
    """``<status> from <METHOD> <path>: <message>``; the path only, never the query."""
    method = response.request.method if response.request is not None else "GET"
    path = url_path(response.url)
    return f"{response.status_code} from {method} {path}: {api_message(response)}"


def redirect_refused(response: requests.Response) -> str:
    """A redirect, named by its status and target host (never its query): never followed."""
    method = response.request.method if response.request is not None else "GET"
    target = urlsplit(response.headers.get("Location", ""))
    host = target.hostname or "the same host"
    where = f"{host}:{target.port}" if target.port else host
    return (
        f"{response.status_code} from {method} {url_path(response.url)} redirects to "
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
        raise PageSizeRefused(_page_size_message(response))
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


def _page_size_message(response: requests.Response) -> str:
    """Mokapen's message and Laravel's ``errors.per_page`` lines, which may name the limit."""
    body = json_body(response)
    fields = body.get("errors") if isinstance(body, dict) else None
    lines = fields.get("per_page") if isinstance(fields, dict) else None
    details = [str(line) for line in lines if line] if isinstance(lines, list) else []
    message = api_message(response)
    return redact(" ".join([message, *(d for d in details if d not in message)]))


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
        return sentences(
            describe(response),
            f"Add {needed} to the scope setting (and enable it for the app), or deselect "
            f"the '{stream}' stream.",
        )
    return describe(response)


def organization_refused(what: str, organization_id: int | str) -> str:
    """Mokapen refused the organization (token request or API call): the setting to fix."""
    return sentences(
        what,
        f"Mokapen does not accept organization {organization_id} for these credentials: "
        "check the organization_id setting.",
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
        raise AuthenticationError(sentences(refused, "Check client_id and client_secret."))
    if error == "invalid_grant" and refreshing:
        msg = sentences(
            refused,
            "The refresh token was revoked or already used: authorize the app again "
            "(/oauth/authorize) and set the new refresh_token.",
        )
        raise AuthenticationError(msg)
    if error == "invalid_scope":
        raise ScopeNotEnabledError(sentences(refused, "Fix the scope setting."), message)
    if "organization" in message.lower():
        raise ConfigError(organization_refused(refused, organization_id))
    raise AuthenticationError(refused)
