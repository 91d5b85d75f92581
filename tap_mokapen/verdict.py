"""Step 3 of the data path, the request's verdict: what every answer means.

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

import re
import typing as t
from urllib.parse import urlsplit

import msgspec
import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_mokapen.errors import (
    APIError,
    AuthenticationError,
    ConfigError,
    PageSizeRefused,
    QuotaExhausted,
    ReauthenticationNeeded,
    ScopeNotEnabledError,
    redact,
    sentences,
    url_path,
)

# -- reading Mokapen's answers ------------------------------------------------------


def json_body(response: requests.Response) -> t.Any:
    """The response's JSON body as plain JSON; None if it is not JSON.

    Only small bodies come here (errors, the token answer, a page the typed decoder
    could not take): a page of records is decoded by shapes.py, once per answer."""
    try:
        return msgspec.json.decode(response.content)
    except (msgspec.DecodeError, UnicodeDecodeError):  # msgspec < 0.23 raised the latter
        return None


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
    response: requests.Response, *, organization_id: int | str | None, grant: str
) -> None:
    """Raise the outcome of a token request's answer unless it is a 200; ``grant`` is
    the grant_type asked for (a refused grant says what to do for that grant)."""
    status = response.status_code
    if status == 200:
        return
    if 300 <= status < 400:
        raise ConfigError(redirect_refused(response))
    if is_quota_exhausted(response):
        raise QuotaExhausted("" if organization_id is None else organization_id)
    if status == 429 or status >= 500:
        raise RetriableAPIError(describe(response), response)
    message = api_message(response)
    body = json_body(response)
    error = body.get("error") if isinstance(body, dict) else None
    whose = "" if organization_id is None else f" for organization {organization_id}"
    refused = f"Mokapen rejected the token request{whose} ({status}): {message}"
    if error == "invalid_client" or status == 401:
        raise AuthenticationError(sentences(refused, "Check client_id and client_secret."))
    if error == "invalid_grant" and grant == "refresh_token":
        msg = sentences(
            refused,
            "The refresh token was revoked or already used: authorize the app again with "
            "tap-mokapen --config FILE --authorize (and remove any refresh_token setting, "
            "which would win over the new token).",
        )
        raise AuthenticationError(msg)
    if error == "invalid_grant" and grant == "authorization_code":
        msg = sentences(
            refused,
            "The consent's code was refused (used, expired, or issued for another "
            "redirect_uri): run tap-mokapen --authorize again.",
        )
        raise AuthenticationError(msg)
    if error in ("unauthorized_client", "unsupported_grant_type") and (
        grant == "client_credentials"
    ):
        msg = sentences(
            refused,
            "If the app is a public app, authorize it once with tap-mokapen --config FILE "
            "--authorize: the runs after use the refresh token it stores.",
        )
        raise AuthenticationError(msg)
    if error == "invalid_scope":
        raise ScopeNotEnabledError(sentences(refused, "Fix the scope setting."), message)
    if organization_id is not None and "organization" in message.lower():
        raise ConfigError(organization_refused(refused, organization_id))
    raise AuthenticationError(refused)
