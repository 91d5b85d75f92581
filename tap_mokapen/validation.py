"""Step 1 of the data path, continued: a config checked as a whole before any request.

Every problem is one phrase naming its setting; all of them go out in one line
(TapMokapen.config_problems); no phrase ever echoes a secret.
"""

from __future__ import annotations

import decimal
import re
import typing as t
from urllib.parse import urlsplit

from tap_mokapen import extra_streams, timestamps
from tap_mokapen.config import (
    DEFAULT_BASE_URL,
    DEFAULT_REDIRECT_URI,
    IDENTIFIER,
    KNOWN_SETTINGS,
    MAX_PAGE_SIZE,
    SETTINGS,
    Rule,
    is_loopback,
    list_setting,
    number,
    organization_number,
)
from tap_mokapen.errors import cut, did_you_mean, named_with_nearest

#: Streams always on: extra_streams may not redeclare them (the optional ones it may).
ALWAYS_ON_STREAMS = ("contacts", "tasks", "organizations", "rejected_records")
#: The Mokapen streams the tap ships (streams.SHIPPED; tests/test_units.py holds the two
#: together), named here so that a setting naming streams is checked before any is built.
SHIPPED_STREAMS = ("contacts", "tasks", "companies", "projects", "organizations")


#: How a true setting may come, as JSON or as text from the environment.
_TRUE = {"true", "1", "yes", "on"}


def problems(
    config: t.Mapping[str, t.Any],
    *,
    listing: bool = False,
    describing: bool = False,
    authorizing: bool = False,
) -> list[str]:
    """Everything wrong with a config, one phrase per problem, never echoing a secret.

    ``listing``: the config is for ``--list-organizations``, where a dashboard token
    (access_token) needs no organization id: it is how a user finds the id.
    ``describing``: for ``--discover`` and ``--about``, which make no request: a
    setting given wrong is a problem, a credential or organization not given yet is not.
    ``authorizing``: for ``--authorize``, where the user chooses the organization in
    the browser, and only a public app's client_id and client_secret make sense."""
    if not config:
        return (
            []
            if describing
            else [
                "no settings were given: pass --config FILE (or --config ENV with TAP_MOKAPEN_* "
                "variables); tap-mokapen --help lists the options, --about the settings"
            ]
        )
    found: list[str] = [*_unknown_settings(config)]
    found += _credential_problems(config, required=not describing)
    if authorizing:
        found += _consent_problems(config)
    else:
        found += _organization_problems(config, listing=listing, required=not describing)
    if (problem := _redirect_uri_problem(config.get("redirect_uri"))) is not None:
        found.append(problem)

    base_url = config.get("base_url")
    if base_url is not None:
        parts = urlsplit(str(base_url))
        shown = _without_userinfo(str(base_url))
        if any(c.isspace() for c in str(base_url)):
            found.append(f"base_url must not contain spaces or line breaks (got {shown!r})")
        elif parts.scheme not in ("http", "https") or not parts.hostname:
            found.append(
                f"base_url must be an http(s) URL such as {DEFAULT_BASE_URL} (got {shown!r})"
            )
        elif parts.scheme == "http" and not is_loopback(parts.hostname):
            found.append(f"base_url must use https unless its host is loopback (got {shown!r})")
        elif parts.query or parts.fragment or parts.username or parts.password:
            found.append("base_url must be a site root without credentials, query or fragment")
        elif parts.path.strip("/"):
            found.append(
                f"base_url must be the site root, such as {DEFAULT_BASE_URL}, without a path "
                f"(got {shown!r}): the tap adds /oauth/token and /api/v1 itself"
            )
        elif _bad_port(parts):
            found.append(f"base_url has a port that is not a port (got {shown!r})")

    scope = config.get("scope")
    if scope is not None and (not isinstance(scope, str) or not scope.split()):
        found.append("scope must be space-separated scope names such as 'contacts.read'")

    start_date = config.get("start_date")
    if start_date is not None and timestamps.parse(str(start_date)) is None:
        found.append(f"start_date must be an ISO 8601 date-time (got {start_date!r})")

    for setting in SETTINGS:
        if setting.rule and (problem := _number_problem(config, setting.name, setting.rule)):
            found.append(problem)
    page_size = number(config.get("page_size"))
    if _is_int(page_size) and page_size > MAX_PAGE_SIZE:
        found.append(f"page_size must be at most {MAX_PAGE_SIZE} (got {page_size})")

    if str(config.get("emit_activate_version_messages", "")).strip().lower() in _TRUE:
        found.append(
            "emit_activate_version_messages is not for this tap: the SDK's would send "
            "ACTIVATE_VERSION before a full-table stream's records, so a run stopped early "
            "(the quota, a fault) retires every row it had not read yet; use "
            "detect_deletions, whose versions are activated only by a complete pass"
        )

    found += extra_streams.problems(
        list_setting(config.get("extra_streams")), taken=ALWAYS_ON_STREAMS
    )
    found += _deletions_problems(config)
    found += _removed_organizations_problems(config)

    user_agent = config.get("user_agent")
    if user_agent is not None and not isinstance(user_agent, str):
        found.append("user_agent must be a string")
    elif isinstance(user_agent, str) and any(c in user_agent for c in "\r\n"):
        found.append("user_agent must be one line (it becomes an HTTP header)")
    store = config.get("refresh_token_store")
    if store is not None and not isinstance(store, str):
        found.append(f"refresh_token_store must be a file path (got {store!r})")
    return found


def _deletions_problems(config: t.Mapping[str, t.Any]) -> list[str]:
    """detect_deletions names streams: each one the tap has (a typo named with the
    nearest stream), and none with BATCH messages, which carry no table version."""
    deletions = list_setting(config.get("detect_deletions"))
    if not all(isinstance(name, str) and name for name in deletions):
        return ["detect_deletions must be a list of stream names such as ['contacts']"]
    declared = list_setting(config.get("extra_streams"))
    streams = [*SHIPPED_STREAMS]
    streams += [
        entry["name"]
        for entry in declared
        if isinstance(entry, dict) and isinstance(entry.get("name"), str)
    ]
    unknown = [name for name in dict.fromkeys(deletions) if name not in streams]
    if unknown:
        return [
            f"detect_deletions names no stream: {named_with_nearest(unknown, streams)} "
            f"(streams: {', '.join(dict.fromkeys(streams))})"
        ]
    if deletions and config.get("batch_config"):
        # BATCH messages carry no table version: every row would look retired.
        return ["detect_deletions cannot be used with batch_config"]
    return []


def _removed_organizations_problems(config: t.Mapping[str, t.Any]) -> list[str]:
    """removed_organizations holds numeric organization ids (decimal text too, as the
    organization settings take them); the first one that is not is named."""
    removed = config.get("removed_organizations")
    entries = list_setting(removed)
    if removed is not None and removed != "" and not isinstance(entries, list):
        entries = [removed]
    for entry in entries:
        if organization_number(entry) is None:
            return [
                f"removed_organizations must list numeric organization ids such as [850] "
                f"(got {cut(repr(entry), 60)})"
            ]
    return []


def _unknown_settings(config: t.Mapping[str, t.Any]) -> list[str]:
    """A key no setting has (a typo, most likely), named with the nearest setting."""
    found = []
    allowed = KNOWN_SETTINGS | {"emit_activate_version_messages"}
    for key in sorted(str(k) for k in config if k not in allowed):
        found.append(f"{cut(repr(key), 60)} is not a setting{did_you_mean(key, KNOWN_SETTINGS)}")
    return found


def _bad_port(parts: t.Any) -> bool:
    try:
        parts.port  # noqa: B018 - urllib checks the port range only when asked
    except ValueError:
        return True
    return False


def _without_userinfo(url: str) -> str:
    """A URL as it may be shown: a user or password in it never is."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]).geturl()


def _is_int(value: t.Any) -> t.TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _number_problem(config: t.Mapping[str, t.Any], name: str, rule: Rule) -> str | None:
    value = number(config.get(name))
    if value is None:
        return None
    if rule == "share":
        if not isinstance(value, int | float | decimal.Decimal) or isinstance(value, bool):
            return f"{name} must be a number from 0 to 1 (got {value!r})"
        return None if 0 < value <= 1 else f"{name} must be above 0 and at most 1 (got {value!r})"
    integer = rule in ("positive_integer", "count")
    allow_zero = rule in ("zero_or_more", "count")
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


def _present(config: t.Mapping[str, t.Any], name: str) -> bool:
    return config.get(name) not in (None, "")


def _several(value: t.Any) -> bool:
    """Whether organization_id was given several organizations: a list, or text that
    separates ids with commas or spaces ("849, 850")."""
    if isinstance(value, list | tuple):
        return True
    if not isinstance(value, str):
        return False
    parts = re.split(r"[\s,;]+", value.strip(" ,;"))
    return len(parts) > 1 and all(IDENTIFIER.fullmatch(part) for part in parts)


def _credential_problems(config: t.Mapping[str, t.Any], *, required: bool) -> list[str]:
    """Exactly one way to get access, complete; never echoes a secret."""
    names = ("client_id", "client_secret", "access_token", "refresh_token")
    found = [
        f"{name} must be a string"
        for name in names
        if _present(config, name) and not isinstance(config[name], str)
    ]
    has = {name: _present(config, name) for name in names}
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
        if required and not has[name]:
            mode = "with refresh_token" if has["refresh_token"] else "(or give access_token)"
            found.append(f"{name} is required {mode}")
    return found


def _consent_problems(config: t.Mapping[str, t.Any]) -> list[str]:
    """--authorize asks a consent for client_id and client_secret: a token setting would
    either make it pointless (access_token) or win over the token it stores."""
    found = []
    if _present(config, "access_token"):
        found.append(
            "--authorize is a public app's consent for client_id and client_secret: remove "
            "access_token (a dashboard token needs no consent)"
        )
    if _present(config, "refresh_token"):
        found.append(
            "refresh_token is set, and a run would use it rather than the token --authorize "
            "stores: remove refresh_token to authorize"
        )
    return found


def _redirect_uri_problem(value: t.Any) -> str | None:
    """The redirect_uri --authorize listens on: http, a loopback host, a port, a path."""
    if value is None:
        return None
    rule = (
        f"redirect_uri must be an http loopback address with a port, such as {DEFAULT_REDIRECT_URI}"
    )
    if not isinstance(value, str):
        return f"{rule} (got a {type(value).__name__})"
    parts = urlsplit(value)
    shown = cut(repr(_without_userinfo(value)), 120)
    if (
        any(c.isspace() for c in value)
        or parts.scheme != "http"
        or not is_loopback(parts.hostname)
        or _bad_port(parts)
        or parts.port is None
        or parts.query
        or parts.fragment
        or parts.username
        or parts.password
    ):
        return f"{rule}, without query or fragment: the command listens there (got {shown})"
    return None


def _organization_problems(
    config: t.Mapping[str, t.Any], *, listing: bool, required: bool
) -> list[str]:
    found: list[str] = []
    single, many = config.get("organization_id"), config.get("organization_ids")
    if _present(config, "organization_id") and many is not None:
        found.append("give organization_id or organization_ids, not both")
    if many is not None and (not isinstance(many, list) or not many):
        found.append("organization_ids must be a non-empty list of organization ids")
        many = []
    values = many if many else ([single] if _present(config, "organization_id") else [])
    if required and not values and not (listing and _present(config, "access_token")):
        found.append(
            "organization_id (or organization_ids) is required: to find it, generate a "
            "token in Mokapen's Developer dashboard and run tap-mokapen "
            "--list-organizations with only access_token set"
        )
    if single is not None and many is None and _several(single):
        found.append(
            f"organization_id takes one organization (got {cut(repr(single), 60)}): to "
            "extract several, use organization_ids, such as [849, 850]"
        )
        values = []
    for org in values:
        if _is_int(org):
            if org <= 0:
                found.append(f"organization_id must be a positive integer (got {org})")
        elif not isinstance(org, str) or not IDENTIFIER.fullmatch(org.strip()):
            found.append(
                "organization_id must be a numeric organization id or an encrypted id "
                f"string (got {cut(repr(org), 60)})"
            )
    token_mode = next((n for n in ("access_token", "refresh_token") if _present(config, n)), None)
    if token_mode and (len(values) > 1 or config.get("all_organizations")):
        found.append(
            f"{token_mode} is bound to one organization: use a single "
            "organization_id, or client credentials for several"
        )
    return found
