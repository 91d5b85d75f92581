"""Step 1 of the data path, the config: every setting defined once, checked as a whole.

``SETTINGS`` is the one list of the tap's settings: name, type, default, description
and the rule its value must follow. The SDK's config schema (and so ``--about`` and
the Meltano plugin definition generated from it), the defaults of ``Settings`` and
the one-line validation all come from it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
import typing as t

from singer_sdk import typing as th

from tap_mokapen import extra_streams
from tap_mokapen.extra_streams import ExtraStream

DEFAULT_BASE_URL = "https://mokapen.com"
#: Where Mokapen sends the browser back after the consent (tap-mokapen --authorize
#: listens there); the user registers it as the app's redirect URL.
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8976/callback"
#: A third of a CRM's contacts gone in a day is almost never real; a cut list is.
DEFAULT_MAX_DELETED_SHARE = 0.3
MAX_PAGE_SIZE = 10_000
IDENTIFIER = re.compile(r"[A-Za-z0-9_.\-=]{1,200}")
_ORGANIZATION_ID = th.CustomType({"type": ["integer", "string"]})

Rule = t.Literal["positive_integer", "positive_number", "zero_or_more", "count", "share"]
#: Each rule as JSON Schema bounds, in the config schema (``--about``, Meltano); the
#: one-line check of every problem (validation.py) says the same in words.
BOUNDS: dict[Rule, dict[str, int]] = {
    "positive_integer": {"minimum": 1},
    "positive_number": {"exclusiveMinimum": 0},
    "zero_or_more": {"minimum": 0},
    "count": {"minimum": 0},
    "share": {"exclusiveMinimum": 0, "maximum": 1},
}


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    type: th.JSONTypeHelper | type[th.JSONTypeHelper]
    description: str
    default: t.Any = None
    title: str | None = None
    secret: bool = False
    #: What a number must be; checked with every other problem before any request.
    rule: Rule | None = None
    #: How a valid value becomes the ``Settings`` field (None: as it is given).
    read: t.Callable[[t.Any], t.Any] | None = None
    #: The ``Settings`` field it fills, where its name differs.
    into: str | None = None


# -- how a setting's value is read into Settings (Setting.read) --------------------


def number(value: t.Any) -> t.Any:
    """A number given as text (``--config ENV`` passes every setting as text) as a number."""
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text) if text.lstrip("-").isdigit() else float(text)
        except ValueError:
            return value
    return value


#: Organization ids are positive integers below 2**63: they are path segments, STATE
#: keys and BIGINT columns. Anything else a server lists is not an organization.
LARGEST_ORGANIZATION_ID = 2**63 - 1


def organization_number(value: t.Any) -> int | None:
    """``value`` as an organization id, or None when it cannot be one (a boolean, zero, a
    negative number, a number past BIGINT, anything not an integer or a decimal string
    of one, as the organization settings accept it)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 < value <= LARGEST_ORGANIZATION_ID else None


def list_setting(value: t.Any) -> list[t.Any]:
    """A list setting as a list (``--config ENV`` and Meltano may pass it as JSON text)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [value]
    return value if isinstance(value, list) else [value]


def _integer(value: t.Any) -> int:
    return int(number(value))


def _integer_or_none(value: t.Any) -> int | None:
    return int(number(value)) if value else None


def _real(value: t.Any) -> float:
    return float(number(value))


def _megabytes(value: t.Any) -> int:
    return int(float(number(value)) * 2**20)


def _site_root(value: t.Any) -> str:
    return str(value).rstrip("/")


def _scopes(value: t.Any) -> str | None:
    return " ".join(str(value).split()) if value else None


def _names(value: t.Any) -> frozenset[str]:
    return frozenset(list_setting(value))


def _tuple(value: t.Any) -> tuple[t.Any, ...]:
    return tuple(value or ())


def _organization_numbers(value: t.Any) -> tuple[int, ...]:
    """Organization ids, decimal text too (validation.py has refused anything else)."""
    return tuple(n for n in map(organization_number, list_setting(value)) if n is not None)


def _extra_streams(value: t.Any) -> tuple[ExtraStream, ...]:
    return extra_streams.parse(list_setting(value))


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "client_id",
        th.StringType,
        "OAuth client id of your Mokapen app (private app: with client_secret; "
        "public app: with client_secret, after tap-mokapen --authorize).",
        title="Client ID",
    ),
    Setting(
        "client_secret",
        th.StringType,
        "OAuth client secret of the app.",
        title="Client secret",
        secret=True,
    ),
    Setting(
        "access_token",
        th.StringType,
        "A token made with 'Generate Token' in Mokapen's Developer dashboard, used as it "
        "is (no token request). Replaces client_id and client_secret.",
        title="Dashboard access token",
        secret=True,
    ),
    Setting(
        "refresh_token",
        th.StringType,
        "A public app's refresh token from a consent made outside the tap; wins over the "
        "one tap-mokapen --authorize stored. Exchanged for an access token on every run.",
        title="Refresh token",
        secret=True,
    ),
    Setting(
        "refresh_token_store",
        th.StringType,
        "File that keeps a public app's refresh token between runs, from tap-mokapen "
        "--authorize or a rotation (owner-only permissions); default "
        "$XDG_STATE_HOME/tap-mokapen/refresh-tokens.json.",
    ),
    Setting(
        "redirect_uri",
        th.StringType,
        "tap-mokapen --authorize: the app's redirect URL, registered in Mokapen; an http "
        "loopback address with a port, where the command listens for the consent's "
        "redirect.",
        default=DEFAULT_REDIRECT_URI,
        title="Redirect URI",
    ),
    Setting(
        "authorize_timeout",
        th.NumberType,
        "tap-mokapen --authorize: seconds to wait for the consent's redirect.",
        default=300,
        rule="positive_number",
        read=_real,
    ),
    Setting(
        "organization_id",
        _ORGANIZATION_ID,
        "The organization to extract: its numeric id (or encrypted id string). Sent "
        "with the token request and used in every URL.",
        title="Organization ID",
    ),
    Setting(
        "organization_ids",
        th.ArrayType(_ORGANIZATION_ID),
        "Several organizations to extract in one run, each with its own token, state "
        "and quota (instead of organization_id).",
        title="Organization IDs",
    ),
    Setting(
        "all_organizations",
        th.BooleanType,
        "Also extract every organization that GET /api/v1/organizations lists for the "
        "first organization's token.",
        default=False,
        read=bool,
    ),
    Setting(
        "base_url",
        th.StringType,
        "Site root; the token URL is {base_url}/oauth/token and the API "
        "{base_url}/api/v1. Plain http:// only for loopback hosts.",
        default=DEFAULT_BASE_URL,
        title="Base URL",
        read=_site_root,
    ),
    Setting(
        "scope",
        th.StringType,
        "Space-separated OAuth scopes requested with the token; default: the scope "
        "each selected stream needs (<stream>.read).",
        read=_scopes,
    ),
    Setting("start_date", th.DateTimeType, "The earliest updated_at to extract on a first run."),
    Setting(
        "freeze_schema",
        th.BooleanType,
        "Keep each stream's schema as shipped: fields the API adds are left out (and "
        "logged) rather than added to the schema, and a record with a value of another "
        "type than declared is rejected rather than widening the type.",
        default=False,
        read=bool,
    ),
    Setting(
        "max_learned_fields",
        th.IntegerType,
        "The most fields a stream adds to its schema from what the API sends. Past it, "
        "new fields go together into one JSON object column, overflow_fields. 500 keeps "
        "a table well inside PostgreSQL's and Redshift's 1,600 columns, shipped fields, "
        "the loader's own and one level of flattening included.",
        default=500,
        rule="positive_integer",
        read=_integer,
    ),
    Setting(
        "forget_learned_fields",
        th.BooleanType,
        "Start this run from the shipped schemas: the fields earlier runs added are "
        "forgotten (and learned again as they come). The rest of the state is kept. "
        "Fields not seen for 30 runs in a row are forgotten anyway.",
        default=False,
        read=bool,
    ),
    Setting(
        "strict_records",
        th.BooleanType,
        "Fail the stream on the first record that breaks its contract (no integer id, "
        "an updated_at that is not a timestamp) instead of sending it to the "
        "rejected_records stream.",
        default=False,
        read=bool,
    ),
    Setting(
        "extra_streams",
        th.ArrayType(
            th.ObjectType(
                th.Property("name", th.StringType, required=True),
                th.Property("path", th.StringType),
                th.Property("scope", th.StringType),
                th.Property("replication_key", th.StringType),
                th.Property("primary_key", th.ArrayType(th.StringType)),
            )
        ),
        "More organization-scoped list endpoints to extract, each {name, path, scope, "
        "replication_key, primary_key}: path defaults to the name (below "
        "/api/v1/{organization_id}/), scope to <name>.read, replication_key to "
        "updated_at (null: read whole), primary_key to id.",
        read=_extra_streams,
    ),
    Setting(
        "detect_deletions",
        th.ArrayType(th.StringType),
        "Streams whose deleted records the tap detects: each complete pass over such a "
        "stream emits every record under a new table version and then ACTIVATE_VERSION, "
        "so the target marks (or deletes) the rows the pass did not see.",
        read=_names,
    ),
    Setting(
        "max_deleted_share",
        th.NumberType,
        "The largest share of an organization's records one pass may lose. A pass "
        "holding fewer than (1 - this) of the records of the largest of the last few "
        "complete passes retires nothing (detect_deletions) and keeps the bookmark, and "
        "says so: in a CRM a third of the records gone in a day is almost never real. To "
        "confirm a real mass deletion, run once with 1.",
        default=DEFAULT_MAX_DELETED_SHARE,
        rule="share",
        read=_real,
    ),
    Setting(
        "max_unannounced_pages",
        th.IntegerType,
        "Pages one run may read of a list that announces no believable length (no total, "
        "an endless cursor) and that no pass has read to its end yet; past it that pass "
        "pauses with one line and the next run goes on from there. A list with a complete "
        "pass is bounded by that pass instead.",
        default=10_000,
        rule="positive_integer",
        read=_integer,
    ),
    Setting(
        "max_record_checks",
        th.IntegerType,
        "Requests a pass may spend asking Mokapen about single records (GET "
        ".../contacts/{id}): ids of the last complete pass's sample that this pass did "
        "not see (a 404 confirms a deletion; a record means the list lost records, so "
        "nothing is retired). A pass with none missing asks nothing. 0: never ask.",
        default=10,
        rule="count",
        read=_integer,
    ),
    Setting(
        "tables_per_organization",
        th.BooleanType,
        "detect_deletions: the target's tables hold only the organizations this run reads "
        "(a schema per organization, as the fan-out DAG gives, or a project that "
        "extracts only these). Without it, a run that does not read every organization "
        "the app is installed in retires nothing: in a shared table, its ACTIVATE_VERSION "
        "would retire the other organizations' rows.",
        default=False,
        read=bool,
    ),
    Setting(
        "removed_organizations",
        th.ArrayType(th.IntegerType),
        "detect_deletions: organizations confirmed gone (the app uninstalled). Their "
        "rows may be retired; without this, a pass that misses an organization of the "
        "last complete pass marks nothing deleted.",
        read=_organization_numbers,
    ),
    Setting(
        "page_size",
        th.IntegerType,
        "Records per page, sent as per_page. Unset: the tap asks for 1000, lowered only "
        "where the server refuses it or keeps failing at it (kept in the state, per "
        "organization and stream). Set: asked for as it is.",
        rule="positive_integer",
        read=_integer_or_none,
    ),
    Setting("user_agent", th.StringType, "User-Agent header; defaults to tap-mokapen/<version>."),
    Setting(
        "requests_per_minute",
        th.IntegerType,
        "Client-side limit on all requests (token requests included), kept within "
        "Mokapen's throttle.",
        default=60,
        rule="positive_integer",
        read=_integer,
    ),
    Setting(
        "rate_limit_window_seconds",
        th.NumberType,
        "Window of requests_per_minute, in seconds. Change it only to match a server "
        "with a different window (such as the sandbox).",
        default=60,
        rule="positive_number",
        read=_real,
    ),
    Setting(
        "max_wait_seconds",
        th.NumberType,
        "How long one request may keep being retried (throttling, 5xx, network faults) "
        "before the run fails.",
        default=900,
        rule="zero_or_more",
        read=_real,
    ),
    Setting(
        "request_deadline_seconds",
        th.NumberType,
        "The longest one request may take, answer included; a slower one (an answer "
        "that trickles in) is a network fault, retried within max_wait_seconds.",
        default=300,
        rule="positive_number",
        read=_real,
    ),
    Setting(
        "max_response_mb",
        th.NumberType,
        "The largest answer read, decompressed, in MB (a page of 1,000 contacts is about "
        "4 MB); a larger one fails that request.",
        default=100,
        rule="positive_number",
        read=_megabytes,
        into="max_response_bytes",
    ),
    Setting(
        "max_requests_per_run",
        th.IntegerType,
        "Stop the run cleanly, resumable, after this many requests.",
        rule="positive_integer",
        read=number,
    ),
    Setting(
        "progress_log_seconds",
        th.NumberType,
        "Seconds between progress lines per stream (records, pages, requests, time "
        "left); 0 logs every page.",
        default=30,
        rule="zero_or_more",
        read=_real,
    ),
)

DEFAULTS: dict[str, t.Any] = {s.name: s.default for s in SETTINGS if s.default is not None}
#: The settings the SDK adds to every tap with the tap's capabilities (stream maps,
#: flattening, batch messages).
SDK_SETTINGS = frozenset(
    {
        "stream_maps",
        "stream_map_config",
        "faker_config",
        "flattening_enabled",
        "flattening_max_depth",
        "flattening_max_key_length",
        "flattening_separator",
        "batch_config",
    }
)
#: Every key a config may hold (the SDK's emit_activate_version_messages is refused
#: with a reason of its own).
KNOWN_SETTINGS = frozenset(s.name for s in SETTINGS) | SDK_SETTINGS


def config_jsonschema() -> dict[str, t.Any]:
    """The SDK's config schema, for ``--about``, ``--discover`` and Meltano; a number's
    rule as its bounds."""
    schema = th.PropertiesList(
        *(
            th.Property(
                s.name,
                s.type,
                default=s.default,
                title=s.title,
                description=s.description,
                secret=s.secret or None,
            )
            for s in SETTINGS
        )
    ).to_dict()
    for setting in SETTINGS:
        if setting.rule:
            schema["properties"][setting.name].update(BOUNDS[setting.rule])
    return schema


@dataclasses.dataclass(frozen=True)
class Settings:
    """The config with its defaults filled in; build it only from a config without problems.

    Each field is filled from its setting in ``SETTINGS`` (``from_config``)."""

    client_id: str | None
    client_secret: str | None = dataclasses.field(repr=False)
    access_token: str | None = dataclasses.field(repr=False)
    refresh_token: str | None = dataclasses.field(repr=False)
    refresh_token_store: str | None
    redirect_uri: str
    authorize_timeout: float
    organization_ids: tuple[int | str, ...]
    all_organizations: bool
    base_url: str
    #: None: the scopes of the selected streams.
    scope: str | None
    page_size: int | None
    user_agent: str | None
    requests_per_minute: int
    rate_limit_window_seconds: float
    max_wait_seconds: float
    request_deadline_seconds: float
    max_response_bytes: int
    max_requests_per_run: int | None
    progress_log_seconds: float
    freeze_schema: bool
    max_learned_fields: int
    forget_learned_fields: bool
    strict_records: bool
    extra_streams: tuple[ExtraStream, ...]
    detect_deletions: frozenset[str]
    max_deleted_share: float
    max_record_checks: int
    max_unannounced_pages: int
    removed_organizations: tuple[int, ...]
    tables_per_organization: bool

    @classmethod
    def from_config(cls, config: t.Mapping[str, t.Any]) -> Settings:
        """Each field from its setting in ``SETTINGS`` (its default where none is given,
        read as the setting says); the organizations from either way to name them."""
        fields = {field.name for field in dataclasses.fields(cls)}
        values: dict[str, t.Any] = {"organization_ids": configured_organizations(config)}
        for setting in SETTINGS:
            name = setting.into or setting.name
            if name in values or name not in fields:
                continue  # organization_id (in organization_ids); the SDK's start_date
            given = config.get(setting.name)
            value = DEFAULTS.get(setting.name) if given is None or given == "" else given
            values[name] = setting.read(value) if setting.read else value
        return cls(**values)

    @property
    def auth_mode(self) -> str:
        """Which of Mokapen's three ways to get access the settings choose; with only
        client credentials, a refresh token that tap-mokapen --authorize stored makes an
        organization a public app's (registry.Organizations.authenticator)."""
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
