"""The tap's settings, checked as a whole before any request: every problem in one line."""

from __future__ import annotations

import dataclasses
import decimal
import ipaddress
import re
import typing as t
from urllib.parse import urlsplit

DEFAULT_BASE_URL = "https://mokapen.com"
DEFAULT_SCOPE = "contacts.read tasks.read"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 10_000
DEFAULT_REQUESTS_PER_MINUTE = 60
DEFAULT_MAX_WAIT_SECONDS = 900.0
_IDENTIFIER = re.compile(r"^[A-Za-z0-9_.\-=]{1,200}$")


@dataclasses.dataclass(frozen=True)
class Settings:
    client_id: str | None
    client_secret: str | None = dataclasses.field(repr=False)
    access_token: str | None = dataclasses.field(repr=False)
    refresh_token: str | None = dataclasses.field(repr=False)
    refresh_token_store: str | None
    organization_ids: tuple[int | str, ...]
    all_organizations: bool
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
            client_id=config.get("client_id") or None,
            client_secret=config.get("client_secret") or None,
            access_token=config.get("access_token") or None,
            refresh_token=config.get("refresh_token") or None,
            refresh_token_store=config.get("refresh_token_store") or None,
            organization_ids=configured_organizations(config),
            all_organizations=bool(config.get("all_organizations")),
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

    @property
    def auth_mode(self) -> str:
        """Which of Mokapen's three ways to get access the settings choose."""
        if self.access_token:
            return "access_token"
        if self.refresh_token:
            return "refresh_token"
        return "client_credentials"


def configured_organizations(config: t.Mapping[str, t.Any]) -> tuple[int | str, ...]:
    """organization_ids if given, else organization_id, without duplicates, in order."""
    values = config.get("organization_ids")
    if values is None:
        single = config.get("organization_id")
        values = [] if single is None or single == "" else [single]
    ids = [normalize_organization_id(v) for v in values]
    return tuple(dict.fromkeys(ids))


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
    # The SDK reads JSON numbers with a fraction as Decimal.
    ok = (
        _is_int(value)
        if integer
        else isinstance(value, int | float | decimal.Decimal) and not isinstance(value, bool)
    )
    if not ok or value < 0 or (value == 0 and not allow_zero):
        kind = "integer" if integer else "number"
        sign = "zero or more" if allow_zero else f"a positive {kind}"
        return f"{name} must be {sign} (got {value!r})"
    return None


def problems(config: t.Mapping[str, t.Any]) -> list[str]:
    """Everything wrong with a config, one phrase per problem, never echoing a secret."""
    found: list[str] = [*_credential_problems(config), *_organization_problems(config)]

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
        import pendulum

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


def _present(config: t.Mapping[str, t.Any], name: str) -> bool:
    return config.get(name) not in (None, "")


def _credential_problems(config: t.Mapping[str, t.Any]) -> list[str]:
    """Exactly one way to get access, complete; never echoes a secret."""
    found = [
        f"{name} must be a string"
        for name in ("client_id", "client_secret", "access_token", "refresh_token")
        if _present(config, name) and not isinstance(config[name], str)
    ]
    has = {
        name: _present(config, name)
        for name in ("client_id", "client_secret", "access_token", "refresh_token")
    }
    if has["access_token"]:
        if has["refresh_token"]:
            found.append(
                "access_token and refresh_token exclude each other: give the "
                "dashboard token or the public app's refresh token, not both"
            )
        if has["client_secret"]:
            found.append(
                "access_token (a dashboard token) is used as it is: remove "
                "client_secret, or remove access_token to use client credentials"
            )
        return found
    for name in ("client_id", "client_secret"):
        if not has[name]:
            mode = "with refresh_token" if has["refresh_token"] else "(or give access_token)"
            found.append(f"{name} is required {mode}")
    return found


def _organization_problems(config: t.Mapping[str, t.Any]) -> list[str]:
    found: list[str] = []
    single, many = config.get("organization_id"), config.get("organization_ids")
    if _present(config, "organization_id") and many is not None:
        found.append("give organization_id or organization_ids, not both")
    if many is not None and (not isinstance(many, list) or not many):
        found.append("organization_ids must be a non-empty list of organization ids")
        many = []
    values = many if many else ([single] if _present(config, "organization_id") else [])
    if not values:
        found.append("organization_id (or organization_ids) is required")
    for org in values:
        if isinstance(org, int) and not isinstance(org, bool):
            if org <= 0:
                found.append(f"organization_id must be a positive integer (got {org})")
        elif not isinstance(org, str) or not _IDENTIFIER.match(org.strip()):
            found.append(
                f"organization_id must be an integer or an identifier string (got {org!r})"
            )
    token_mode = next((n for n in ("access_token", "refresh_token") if _present(config, n)), None)
    if token_mode and (len(values) > 1 or config.get("all_organizations")):
        found.append(
            f"{token_mode} is bound to one organization: use a single "
            "organization_id, or client credentials for several"
        )
    return found
