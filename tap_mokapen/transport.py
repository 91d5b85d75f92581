"""Step 3 of the data path, underneath: every request has a deadline and a size cap.

requests' timeouts bound the wait for each read, not the request: a server that
sends one byte every few seconds keeps a request alive for ever, and a small gzip
body can inflate to gigabytes. ``GuardedAdapter`` is mounted on every session the
tap uses (the API's and the token's). It sends each request from a worker thread
(one, long-lived) and reads the answer there, decompressed, chunk by chunk, while
the caller waits at most the deadline:

* past ``request_deadline_seconds`` the caller gets a ``Timeout`` (retried like any
  network fault) and the stuck connection is shut, so the worker ends too;
* past ``max_response_mb`` decompressed, the read stops and the request fails with
  ``ResponseTooLargeError`` (not retried: the same answer would come again).
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import typing as t
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from tap_mokapen import sdk_private
from tap_mokapen.errors import APIError, url_path

CHUNK_BYTES = 1 << 20


class ResponseTooLargeError(APIError):
    """An answer larger than max_response_mb, decompressed."""


class _Worker(threading.Thread):
    """One long-lived thread that sends the requests, so none costs a thread start."""

    def __init__(self) -> None:
        super().__init__(daemon=True, name="tap-mokapen-request")
        self.jobs: queue.SimpleQueue[t.Callable[[], None] | None] = queue.SimpleQueue()
        self.start()

    def run(self) -> None:
        while (job := self.jobs.get()) is not None:
            job()


class GuardedAdapter(HTTPAdapter):
    """An HTTPAdapter with a total deadline and a cap on the decompressed size."""

    def __init__(self, *, deadline_seconds: float, max_bytes: int) -> None:
        super().__init__()
        self.deadline_seconds = deadline_seconds
        self.max_bytes = max_bytes
        self._worker: _Worker | None = None

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, stream: bool = False, **kwargs: t.Any
    ) -> requests.Response:
        outcome: dict[str, t.Any] = {}
        done = threading.Event()

        def job() -> None:
            self._send_and_read(request, kwargs, outcome)
            done.set()

        if self._worker is None:
            self._worker = _Worker()
        self._worker.jobs.put(job)
        if not done.wait(self.deadline_seconds):
            _shut(outcome.get("response"))  # the worker's read fails...
            self._worker.jobs.put(None)  # ...and it ends; the next request gets a new one
            self._worker = None
            host = urlsplit(request.url or "").netloc
            msg = (
                f"{request.method} {host} took longer than request_deadline_seconds="
                f"{self.deadline_seconds:g} (an answer that trickles in)"
            )
            raise requests.exceptions.Timeout(msg, request=request)
        if "error" in outcome:
            raise outcome["error"]
        return t.cast(requests.Response, outcome["response"])

    def _send_and_read(
        self, request: requests.PreparedRequest, kwargs: dict[str, t.Any], outcome: dict
    ) -> None:
        try:
            response = super().send(request, stream=True, **kwargs)
            outcome["response"] = response
            chunks, size = [], 0
            for chunk in response.iter_content(CHUNK_BYTES):
                chunks.append(chunk)
                size += len(chunk)
                if size > self.max_bytes:
                    response.close()
                    host = urlsplit(request.url or "").netloc
                    path = url_path(request.url)
                    msg = (
                        f"{request.method} {host}{path} answered with more than "
                        f"max_response_mb={self.max_bytes / 2**20:g} MB (decompressed): "
                        "stopped reading"
                    )
                    raise ResponseTooLargeError(msg)
            sdk_private.keep_body(response, b"".join(chunks))
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc


def _shut(response: requests.Response | None) -> None:
    connection = getattr(getattr(response, "raw", None), "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed
            sock.shutdown(socket.SHUT_RDWR)


def guard(session: requests.Session, *, deadline_seconds: float, max_bytes: int) -> None:
    """Mount the guarded adapter for http and https on a session."""
    adapter = GuardedAdapter(deadline_seconds=deadline_seconds, max_bytes=max_bytes)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
