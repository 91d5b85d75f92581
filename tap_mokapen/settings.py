"""The tap's settings, checked as a whole before any request: every problem in one line."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import typing as t
from urllib.parse import urlsplit

import pendulum

DEFAULT_BASE_URL = "https://mokapen.com"
DEFAULT_SCOPE = "contacts.read tasks.read"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 10_000
DEFAULT_REQUESTS_PER_MINUTE = 60
DEFAULT_MAX_WAIT_SECONDS = 900.0
SECRET_SETTINGS = ("client_secret",)
_IDENTIFIER = re.compile(r"^[A-Za-z0-9_.\-=]{1,200}$")


@dataclasses.dataclass(frozen=True)
class Settings:
    client_id: str
    client_secret: str = dataclasses.field(repr=False)
    organization_id: int | str
    base_url: str
    scope: str
    page_size: int
    requests_per_minute: int
    rate_limit_window_seconds: float
    max_wait_seconds: float
    max_requests_per_run: int | None
    progress_log_seconds: float

    @classmethod
    def from_config(cls, config: t.Mapping[str, t.Any]) -> Settings:
        """Settings with defaults filled in; call ``problems`` first."""
        return cls(
            client_id=config["client_id"],
            client_secret=config["client_secret"],
            organization_id=normalize_organization_id(config["organization_id"]),
            base_url=str(config.get("base_url") or DEFAULT_BASE_URL).rstrip("/"),
            scope=" ".join(str(config.get("scope") or DEFAULT_SCOPE).split()),
            page_size=int(config.get("page_size") or DEFAULT_PAGE_SIZE),
            requests_per_minute=int(
                config.get("requests_per_minute") or DEFAULT_REQUESTS_PER_MINUTE
            ),
            rate_limit_window_seconds=float(config.get("rate_limit_window_seconds") or 60),
            max_wait_seconds=float(config.get("max_wait_seconds", DEFAULT_MAX_WAIT_SECONDS)),
            max_requests_per_run=config.get("max_requests_per_run"),
            progress_log_seconds=float(config.get("progress_log_seconds", 30)),
        )


def normalize_organization_id(value: int | str) -> int | str:
    """Numeric ids as integers (so "849" and 849 are one organization); others as given."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return value


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_int(value: t.Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_number(
    config: t.Mapping[str, t.Any], name: str, *, integer: bool, allow_zero: bool = False
) -> str | None:
    if name not in config or config[name] is None:
        return None
    value = config[name]
    ok = (
        _is_int(value)
        if integer
        else isinstance(value, int | float) and not isinstance(value, bool)
    )
    if not ok or value < 0 or (value == 0 and not allow_zero):
        kind = "integer" if integer else "number"
        sign = "zero or more" if allow_zero else f"a positive {kind}"
        return f"{name} must be {sign} (got {value!r})"
    return None


def problems(config: t.Mapping[str, t.Any]) -> list[str]:
    """Everything wrong with a config, one phrase per problem, never echoing a secret."""
    found: list[str] = []
    for name in ("client_id", "client_secret"):
        value = config.get(name)
        if value is None or value == "":
            found.append(f"{name} is required")
        elif not isinstance(value, str):
            found.append(f"{name} must be a string")

    org = config.get("organization_id")
    if org is None or org == "":
        found.append("organization_id is required")
    elif _is_int(org):
        if org <= 0:
            found.append(f"organization_id must be a positive integer (got {org})")
    elif not isinstance(org, str) or not _IDENTIFIER.match(org.strip()):
        found.append(f"organization_id must be an integer or an identifier string (got {org!r})")

    base_url = config.get("base_url")
    if base_url is not None:
        parts = urlsplit(str(base_url))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            found.append(
                f"base_url must be an http(s) URL such as {DEFAULT_BASE_URL} (got {base_url!r})"
            )
        elif parts.scheme == "http" and not is_loopback(parts.hostname):
            found.append(f"base_url must use https unless its host is loopback (got {base_url!r})")
        elif parts.query or parts.username or parts.password:
            found.append("base_url must be a site root without credentials or query")

    scope = config.get("scope")
    if scope is not None and (not isinstance(scope, str) or not scope.split()):
        found.append(f"scope must be space-separated scope names such as '{DEFAULT_SCOPE}'")

    start_date = config.get("start_date")
    if start_date is not None:
        try:
            pendulum.parse(str(start_date), strict=False)
        except (ValueError, pendulum.parsing.exceptions.ParserError):
            found.append(f"start_date must be an ISO 8601 date-time (got {start_date!r})")

    for name, integer, allow_zero in (
        ("page_size", True, False),
        ("requests_per_minute", True, False),
        ("rate_limit_window_seconds", False, False),
        ("max_wait_seconds", False, True),
        ("max_requests_per_run", True, False),
        ("progress_log_seconds", False, True),
    ):
        if problem := _positive_number(config, name, integer=integer, allow_zero=allow_zero):
            found.append(problem)
    page_size = config.get("page_size")
    if _is_int(page_size) and page_size > MAX_PAGE_SIZE:
        found.append(f"page_size must be at most {MAX_PAGE_SIZE} (got {page_size})")

    user_agent = config.get("user_agent")
    if user_agent is not None and not isinstance(user_agent, str):
        found.append("user_agent must be a string")
    return found
