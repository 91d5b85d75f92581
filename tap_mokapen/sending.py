"""Step 3 of the data path, one request sent: paced, retried, re-authenticated once.

Three small wrappers around sending one request, each with one job; the list reader
(list_reader.py) composes them, outermost first::

    reauthenticated_once(retried(paced(send)))

* ``paced``: the organization's token first (a token request takes a slot of its
  own), then a slot of the organization's pacer (throttle.py: the run's requests a
  minute, the organization's ``max_requests_per_run``);
* ``retried``: every retriable fault (verdict.py says which: 429, 5xx, a network
  fault, a body cut short) waited out as retries.py says, within ``max_wait_seconds``;
  a large page that keeps failing becomes a refusal of its size (page_size.py);
* ``reauthenticated_once``: a 401 drops the token and sends the request once more.
"""

from __future__ import annotations

import logging
import typing as t

import requests

from tap_mokapen import errors, retries

if t.TYPE_CHECKING:
    from tap_mokapen.auth import MokapenAuthenticator
    from tap_mokapen.page_size import PageSize
    from tap_mokapen.throttle import RequestPacer, WaitListener

logger = logging.getLogger("tap-mokapen")

Answer = t.TypeVar("Answer")
Send = t.Callable[[requests.PreparedRequest], Answer]


def paced(
    send: Send[Answer],
    *,
    authenticator: MokapenAuthenticator,
    pacer: RequestPacer,
    listener: WaitListener | None = None,
    counts: t.Counter[str] | None = None,
) -> Send[Answer]:
    """``send`` in a slot of ``pacer``, once the token is there; each attempt counted."""

    def paced_send(request: requests.PreparedRequest) -> Answer:
        authenticator.ensure_token()  # its request takes a slot of its own: before ours
        with pacer.slot(listener):
            if counts is not None:
                counts["requests"] += 1
            return send(request)

    return paced_send


def retried(
    send: Send[Answer],
    *,
    sizing: PageSize,
    max_wait_seconds: float,
    wait_gen: t.Callable[[], t.Generator[float, t.Any, None]],
    on_retry: t.Callable[[dict[str, t.Any]], None],
    jitter: t.Callable[[float], float] | None = None,
    sleep: t.Callable[[float], None] | None = None,
) -> Send[Answer]:
    """``send`` retried on every retriable fault within ``max_wait_seconds``; a fault
    that outlasts it is an error naming the request, or, where faults at a large page
    size say the page is too large, a refusal of that size."""
    with_retries = retries.retrying(
        send,
        wait_gen=wait_gen,
        max_wait_seconds=max_wait_seconds,
        on_retry=on_retry,
        jitter=jitter,
        give_up=sizing.count_fault,
        sleep=sleep,
    )

    def retried_send(request: requests.PreparedRequest) -> Answer:
        try:
            return with_retries(request)
        except retries.RETRIABLE_ERRORS as exc:
            path = errors.url_path(request.url)
            what = "" if isinstance(exc, errors.RetriableAPIError) else f"GET {path} failed: "
            if sizing.shrink_due:
                raise errors.PageSizeRefused(f"{what}{exc}", fault=True) from None
            raise retries.gave_up(exc, what, max_wait_seconds) from None

    return retried_send


def reauthenticated_once(
    send: Send[Answer], *, authenticator: MokapenAuthenticator, organization_id: t.Any
) -> Send[Answer]:
    """``send``; after a 401, once more with a fresh token. A second 401 is an
    authentication error naming the organization."""

    def send_once_more(request: requests.PreparedRequest) -> Answer:
        try:
            try:
                return send(request)
            except errors.ReauthenticationNeeded:
                logger.info("401 from the API: requesting a fresh token and retrying once")
                authenticator.invalidate()
                return send(request)
        except errors.ReauthenticationNeeded as exc:
            msg = errors.sentences(
                str(exc),
                f"A fresh token was refused too: the app's access to organization "
                f"{organization_id} was revoked or its credentials changed.",
            )
            raise errors.AuthenticationError(msg) from None

    return send_once_more
