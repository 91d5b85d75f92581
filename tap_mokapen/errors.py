"""The tap's exceptions, and the rule that no message ever carries a secret.

What each answer of the server means (fine, retry, re-authenticate, pause, smaller
page, fail) is decided in verdict.py, which raises these; how long a retry waits is
retries.py's. Every message quotes only a status, a path and Mokapen's ``message``:
never a query string, a header, a token or a secret (``register_secret``, ``redact``).
"""

from __future__ import annotations

import base64
import difflib
import json
import typing as t
from urllib.parse import quote, quote_plus, urlsplit

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


# -- quoting a URL and writing sentences ------------------------------------------


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


def did_you_mean(name: str, known: t.Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` with the nearest of ``known`` to a name given wrong (a
    typo, most likely), or nothing when none is near."""
    near = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean {near[0]!r}?)" if near else ""


def named_with_nearest(names: t.Iterable[str], known: t.Iterable[str]) -> str:
    """Names given wrong, each quoted with its nearest known one: "'contact' (did you
    mean 'contacts'?), 'x'"."""
    known = sorted(known)
    return ", ".join(f"{name!r}{did_you_mean(name, known)}" for name in names)
