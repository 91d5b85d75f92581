"""Reading Mokapen's error answers: throttle or quota, how long to wait, what went wrong."""

from __future__ import annotations

import email.utils
import re
import time
import typing as t

import msgspec
import requests

_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|second|seconds)?\s*$", re.IGNORECASE)
_MINUTES = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|mins|minute|minutes)\s*$", re.IGNORECASE)
#: The longest single wait between retries of a failing (non-throttled) request.
MAX_BACKOFF_SECONDS = 60.0


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
            return str(message).strip()
    content_type = response.headers.get("Content-Type", "")
    if "html" in content_type or response.content[:15].lstrip().lower().startswith(b"<"):
        title = re.search(rb"<title>(.*?)</title>", response.content, re.IGNORECASE | re.DOTALL)
        return "an HTML error page" + (
            f" ({title[1].decode(errors='replace').strip()})" if title else ""
        )
    return "no message" if not response.content else "a body that is not JSON"


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
