"""How a fault the verdict (verdict.py) calls retriable is retried: how long to wait, until when.

Retries wait as long as Mokapen asks (``retry_after`` in the body, ``Retry-After``
in the header) or back off exponentially, always within ``max_wait_seconds``; a
wait Mokapen asks for that is longer than what is left fails at once. The token
request and every API request are retried by ``retrying``.
"""

from __future__ import annotations

import email.utils
import functools
import re
import typing as t
from urllib.parse import urlsplit

import backoff
import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_mokapen import clock
from tap_mokapen.errors import APIError, ConfigError, MokapenError, redact
from tap_mokapen.verdict import json_body

#: The longest single wait between retries of a failing (non-throttled) request.
MAX_BACKOFF_SECONDS = 60.0
_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|second|seconds)?\s*$", re.IGNORECASE)
_MINUTES = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|mins|minute|minutes)\s*$", re.IGNORECASE)


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
    return max(0.0, moment.timestamp() - clock.epoch_seconds())


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff for faults that say nothing of when to come back."""
    return min(MAX_BACKOFF_SECONDS, 2.0 ** max(0, attempt - 1))


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


class FirstContact:
    """Whether any server answer arrived this run (one for the run, registry.py): until
    one does, a refused connection is a wrong ``base_url``, not a fault to wait out."""

    def __init__(self) -> None:
        self.reached = False

    def answered(self) -> None:
        self.reached = True


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
    started = clock.monotonic()
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
        remaining = max_wait_seconds - (clock.monotonic() - started)
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


def described(exception: t.Any) -> str:
    """What went wrong with a try, for the line announcing the next: the tap's own words
    for a network failure, never urllib3's ("HTTPConnectionPool(host=..., port=...):
    Max retries exceeded with url: ... (Caused by NewConnectionError(<urllib3...>))")."""
    if exception is None:
        return "no answer"
    text = str(exception)
    urllib3s = "Pool(" in text or "Caused by" in text
    if isinstance(exception, requests.exceptions.Timeout):
        return "no answer in time" if urllib3s else redact(text)  # transport.py's own
    if isinstance(exception, requests.exceptions.ConnectionError):
        reason = _reason(exception)
        return "the connection failed" if reason == type(exception).__name__ else reason
    if isinstance(exception, requests.exceptions.RequestException):
        return type(exception).__name__
    return redact(str(exception))


def _reason(exception: t.Any) -> str:
    text = str(exception)
    if "Connection refused" in text:
        return "connection refused"
    if "Failed to resolve" in text or "NameResolutionError" in text:
        return "the host name does not resolve"
    if "No route to host" in text:
        return "no route to host"
    return type(exception).__name__


def retrying(
    send: Send,
    *,
    wait_gen: t.Callable[[], t.Generator[float, t.Any, None]],
    max_wait_seconds: float,
    on_retry: t.Callable[[dict[str, t.Any]], None],
    jitter: t.Callable[[float], float] | None = backoff.random_jitter,
    give_up: t.Callable[[Exception], bool] = lambda _: False,
    sleep: t.Callable[[float], None] | None = None,
) -> Send:
    """``send`` retried on every retriable fault, for at most ``max_wait_seconds``
    (or until ``give_up`` says a fault is not worth retrying as it is).

    The loop backoff.on_exception runs, on the tap's clock (clock.py): ``wait_gen``
    is the SDK's ``backoff_wait_generator`` and ``on_retry`` gets backoff's details
    (tries, elapsed, wait, exception, args). ``sleep`` waits (the stream's progress,
    which shows and counts the wait; else the clock's sleep).
    """
    pause = sleep or clock.sleep

    @functools.wraps(send)
    def send_with_retries(*args: t.Any, **kwargs: t.Any) -> t.Any:
        started = clock.monotonic()
        waits = wait_gen()
        next(waits)  # primed: the generator is sent each fault in turn
        tries = 0
        while True:
            tries += 1
            try:
                return send(*args, **kwargs)
            except RETRIABLE_ERRORS as exc:
                elapsed = clock.monotonic() - started
                if give_up(exc) or elapsed >= max_wait_seconds:
                    raise
                wait = waits.send(exc)
                if jitter is not None:
                    wait = jitter(wait)
                wait = max(0.0, min(wait, max_wait_seconds - elapsed))
                details = {"tries": tries, "elapsed": elapsed, "wait": wait, "exception": exc}
                on_retry({**details, "args": args, "kwargs": kwargs})
                pause(wait)

    return t.cast(Send, send_with_retries)


def gave_up(
    exception: Exception,
    what: str,
    max_wait_seconds: float,
    error: type[MokapenError] = APIError,
) -> MokapenError:
    """The error for a fault that outlasted ``max_wait_seconds``."""
    cause = exception if isinstance(exception, RetriableAPIError) else _reason(exception)
    return error(
        f"{what}{cause} (still failing after retrying for max_wait_seconds={max_wait_seconds:g})"
    )
