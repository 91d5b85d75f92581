"""HTTP plumbing for the sandbox: a threaded stdlib server tuned not to be the bottleneck.

Two details keep a keep-alive client from stalling ~40 ms a response (Nagle's algorithm
meeting delayed ACKs): TCP_NODELAY on every connection, and the status line, headers
and body sent in one write.
"""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from mokapen_sandbox.app import Sandbox
from mokapen_sandbox.replies import Reply
from mokapen_sandbox.settings import SandboxSettings

REASONS = {
    200: "OK",
    302: "Found",
    307: "Temporary Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = self.server.sandbox.handle(self.command, parts.path, parts.query, headers, body)
        # The answer is written by hand (send_response would log it): --verbose logs here.
        self.log_request(reply.status)
        if reply.delay:
            time.sleep(reply.delay)
        if reply.action == "trickle":
            self._trickle(reply)
            return
        if reply.action == "reset":
            # An abortive close (RST), as a crashed proxy would do.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            self.close_connection = True
            return
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        self.wfile.write(self._head(reply) + reply.body)

    @staticmethod
    def _head(reply: Reply) -> bytes:
        lines = [
            f"HTTP/1.1 {reply.status} {REASONS.get(reply.status, 'Unknown')}",
            f"Content-Type: {reply.content_type}; charset=utf-8",
            f"Content-Length: {len(reply.body)}",
            *(f"{k}: {v}" for k, v in reply.headers.items()),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _trickle(self, reply: Reply) -> None:
        """Headers, then the body a byte at a time: each read is quick, the whole is not."""
        head, body = self._head(reply), reply.body
        self.wfile.write(head)
        for index in range(len(body)):
            time.sleep(self.server.sandbox.settings.trickle_seconds)
            try:
                self.wfile.write(body[index : index + 1])
            except OSError:  # the client gave up, as it should
                return

    do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815

    def log_message(self, format: str, *args: object) -> None:
        if self.server.verbose:
            super().log_message(format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sandbox: Sandbox, *, verbose: bool) -> None:
        super().__init__(address, _Handler)
        self.sandbox = sandbox
        self.verbose = verbose


class SandboxServer:
    """A running sandbox on loopback; usable as a context manager in tests."""

    def __init__(
        self,
        settings: SandboxSettings | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        verbose: bool = False,
    ) -> None:
        self.sandbox = Sandbox(settings or SandboxSettings())
        self._server = _Server((host, port), self.sandbox, verbose=verbose)
        host_bound, self.port = self._server.server_address[:2]
        self.host = str(host_bound)
        self.url = f"http://{self.host}:{self.port}"
        self.sandbox.base_url = self.url
        self._thread: threading.Thread | None = None

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def start(self) -> SandboxServer:
        # A short poll: stop() returns within 50 ms (tests start and stop many servers).
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
