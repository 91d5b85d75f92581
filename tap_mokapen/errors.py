"""The tap's exceptions, and the rule that no message ever carries a secret.

What each answer of the server means (fine, retry, re-authenticate, pause, smaller
page, fail) is decided in verdict.py, which raises these; how long a retry waits is
retries.py's. Every message quotes only a status, a path and Mokapen's ``message``:
never a query string, a header, a token or a secret (``register_secret``, ``redact``).
"""

from __future__ import annotations

import base64
import difflib
import html
import json
import re
import typing as t
from urllib.parse import quote, quote_plus, unquote_plus, urlsplit

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


class PassBudgetSpent(RunPaused):
    """One pass read as many pages as a list that announces none may take in a run
    (max_unannounced_pages): that pass pauses, the organization's other streams go on."""


# -- never a secret in a message ----------------------------------------------------

#: The longest stretch of a server's answer any message quotes.
MAX_QUOTE = 300
_SECRETS: set[str] = set()
#: Every run of GRAM characters of each secret, lower-cased: a server's echo of a
#: secret, however encoded and cut, holds one of them once decoded.
GRAM = 8
_GRAMS: set[str] = set()
#: How many times an echo is decoded at most (a form nested in another, twice encoded).
_DECODING_ROUNDS = 5
_BACKSLASH_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|x([0-9a-fA-F]{2})|(.))", re.DOTALL)


def register_secret(value: str | None, *, client_id: str | None = None) -> None:
    """A secret (client secret, token) that no message may show, whatever a server echoes.

    Masked as it is and in every form a server may echo it in: URL-encoded (``%`` and
    ``+`` forms), JSON-escaped, HTML-escaped, as the base64 of the secret alone and, given
    the ``client_id`` it goes with, of ``client_id:secret`` (HTTP Basic); and any text
    that, once decoded (``redact``), holds GRAM characters of it in a row, in any case.
    Kept for the process: masking a secret of another Tap in the same process too does
    no harm.
    """
    if not value or len(value) < 4:
        return
    alone = value.encode()
    forms = {
        value,
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        html.escape(value),
        base64.b64encode(alone).decode(),
        base64.urlsafe_b64encode(alone).decode(),
        base64.b64encode(alone).decode().rstrip("="),
    }
    if client_id:
        basic = f"{client_id}:{value}".encode()
        forms.add(base64.b64encode(basic).decode())
        forms.add(base64.urlsafe_b64encode(basic).decode())
    _SECRETS.update(form for form in forms if len(form) >= 4)
    folded = value.casefold()
    grams = {folded[i : i + GRAM] for i in range(len(folded) - GRAM + 1)}
    # What the client id shares with the secret is no secret ("sandbox-" of both).
    public = (client_id or "").casefold()
    _GRAMS.update(gram for gram in grams if gram not in public)


def _decoded(text: str) -> str:
    """``text`` as a reader would see it: URL-, HTML- and backslash-escapes undone, again
    and again, then case-folded."""
    for _ in range(_DECODING_ROUNDS):
        before = text
        text = html.unescape(unquote_plus(text))
        text = _BACKSLASH_ESCAPE.sub(_unescaped, text)
        if text == before:
            break
    return text.casefold()


def _unescaped(match: re.Match[str]) -> str:
    code = match.group(1) or match.group(2)
    return chr(int(code, 16)) if code else match.group(3)


def holds_secret(text: str) -> bool:
    """Whether ``text`` shows a secret, or GRAM characters of one in a row, in any form."""
    if not _SECRETS:
        return False
    if any(secret in text for secret in _SECRETS):
        return True
    # As it is too: decoding changes a secret that holds "+" or "%".
    for seen in (text.casefold(), _decoded(text), *_base64_decoded(text)):
        if any(seen[i : i + GRAM] in _GRAMS for i in range(len(seen) - GRAM + 1)):
            return True
    return False


_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{12,}")


def _base64_decoded(text: str) -> list[str]:
    """What runs of base64 in ``text`` say, case-folded (a secret's base64, cut or split,
    still shows GRAM of its characters once decoded, from either end)."""
    found = []
    for run in _BASE64_RUN.findall(text):
        for start in range(4):  # a run cut anywhere: one of four alignments is the secret's
            chunk = run[start:]
            chunk = chunk[: len(chunk) - len(chunk) % 4]
            try:
                found.append(base64.b64decode(chunk.replace("-", "+").replace("_", "/")))
            except ValueError:
                continue
    return [raw.decode("utf-8", "ignore").casefold() for raw in found]


def redact(text: str, limit: int = MAX_QUOTE) -> str:
    """Text from a server, cut to ``limit`` characters, with every known secret masked.

    A secret's own forms are replaced by ``***``; then any word (a run without white
    space) that still shows a secret once decoded is replaced whole. A secret cut by a
    line break leaves at most GRAM - 1 of its characters on one side."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    # Cut first: a server's body may be megabytes, and only this much of it is shown.
    text = cut(text, limit)
    if _GRAMS:
        text = re.sub(r"\S+", lambda word: _masked(word[0]), text)
    return text


#: Where a word (a form body, a JSON object) is cut into parts to mask only the part
#: that shows a secret.
_PARTS = re.compile(r"([&=,;:\"'{}\[\]()<>|]+)")


def _masked(word: str) -> str:
    """The word, or the parts of it that show a secret, as ``***``; the whole word when
    the secret spans several parts (a secret holding ``&`` or ``=``)."""
    if not holds_secret(word):
        return word
    parts = _PARTS.split(word)
    masked = [
        ("***" if holds_secret(part) else part) if i % 2 == 0 else part
        for i, part in enumerate(parts)
    ]
    joined = "".join(masked)
    return "***" if holds_secret(joined) else joined


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
