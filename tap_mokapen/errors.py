"""Errors the tap reports to its user as one clear line, never with secrets or tracebacks."""

from __future__ import annotations


class MokapenError(Exception):
    """A failure the user can act on; its message is the whole report."""


class ConfigError(MokapenError):
    """Settings that cannot work, found before any request is made."""


class AuthenticationError(MokapenError):
    """Mokapen refused the credentials or the token (token endpoint, or 401 twice)."""


class APIError(MokapenError):
    """An API answer the tap cannot recover from."""


class ReauthenticationNeeded(Exception):  # noqa: N818 - a signal, not a failure
    """A 401 from the API: the token must be replaced and the request sent once more."""


class RunPaused(Exception):  # noqa: N818 - a clean stop, not a failure
    """The run stops early but cleanly: the emitted STATE resumes it exactly."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class QuotaExhausted(RunPaused):
    """Mokapen's daily request quota for the organization is spent."""


class RequestBudgetSpent(RunPaused):
    """The run reached the user's max_requests_per_run."""
