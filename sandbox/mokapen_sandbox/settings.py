"""The sandbox's switches: what data it serves, which limits it enforces, which faults it injects.

Every switch can be set on the command line at start and changed at run time with
``POST /_sandbox/reset`` (a JSON object of the fields below), which is how the tests
drive one long-lived server through every scenario.
"""

from __future__ import annotations

import dataclasses
import typing as t
from dataclasses import field

from mokapen_sandbox.breakage import BAD_KINDS, check_spec
from mokapen_sandbox.data import ENTITIES, required_scope
from mokapen_sandbox.glitches import GLITCH_KINDS
from mokapen_sandbox.glitches import check_spec as check_glitches
from mokapen_sandbox.shapes import LIST_SHAPES, PAGINATOR_FAULTS

DEMO_CLIENT_ID = "sandbox-client"
DEMO_CLIENT_SECRET = "sandbox-secret-do-not-use-in-production"  # noqa: S105
DEMO_ORGANIZATION_ID = 849
DEFAULT_ORGANIZATIONS = {849: "Acme Sandbox S.r.l.", 850: "Globex Sandbox GmbH"}


@dataclasses.dataclass
class Fault:
    """Make API requests number ``at`` .. ``at + times - 1`` (1-based) misbehave.

    kinds: ``500``, ``503``, ``html502`` (an HTML error page), ``truncated`` (a JSON
    body cut in half), ``reset`` (connection closed without an answer), ``slow``
    (answer after ``seconds``), ``revoke`` (every token revoked first, so a 401),
    ``expire`` (the caller's token expires first, so a 401), ``throttle`` (a 429
    throttle body), ``quota`` (a 429 quota body), ``trickle`` (a small page sent a
    byte every ``trickle_seconds``), ``oversized`` (a 50 MB page) and ``gzip_bomb``
    (200 KB of gzip that inflates to 200 MB).
    """

    at: int
    kind: str
    times: int = 1
    seconds: float = 2.0

    def covers(self, index: int) -> bool:
        return self.at <= index < self.at + self.times


# The entities with a switch of their own, kept for existing clients; any other entity's
# count goes in ``counts``.
COUNT_FIELDS = ("contacts", "tasks")
# Scopes the demo app holds beyond every entity's "<name>.read": a write scope, so tests
# can check the tap asks only for what it reads.
EXTRA_SCOPES = ("tasks.write",)


def meaning(text: str) -> dict[str, str]:
    """Field metadata: the switch's one-line meaning, listed by ``mokapen-sandbox --help``."""
    return {"meaning": text}


def default_scopes() -> list[str]:
    # Read from ENTITIES at construction time (not import), so a registry patched in a
    # test is granted too.
    return [required_scope(kind) for kind in ENTITIES] + list(EXTRA_SCOPES)


@dataclasses.dataclass
class SandboxSettings:
    seed: int = field(
        default=1, metadata=meaning("seed of the generated records (same seed, same records)")
    )
    contacts: int = field(
        default=ENTITIES["contacts"].default_count, metadata=meaning("contacts per organization")
    )
    tasks: int = field(
        default=ENTITIES["tasks"].default_count, metadata=meaning("tasks per organization")
    )
    counts: dict[str, int] = field(
        default_factory=dict,
        metadata=meaning(
            "records per organization of any other entity, {name: n}; "
            "one not named gets its registry default_count"
        ),
    )
    organizations: dict[int, str] = field(
        default_factory=lambda: dict(DEFAULT_ORGANIZATIONS),
        metadata=meaning("organizations the app is installed in, {id: name}"),
    )
    listed_oddities: list[t.Any] = field(
        default_factory=list,
        metadata=meaning(
            "rows appended to GET /api/v1/organizations as they are, such as "
            '{"id": true} or {"id": -1}: organizations no app can be installed in'
        ),
    )
    client_id: str = field(
        default=DEMO_CLIENT_ID, metadata=meaning("the demo app's OAuth client id")
    )
    client_secret: str = field(
        default=DEMO_CLIENT_SECRET, metadata=meaning("the demo app's OAuth client secret")
    )
    enabled_scopes: list[str] = field(
        default_factory=default_scopes,
        metadata=meaning(
            "scopes the demo app may request (by default every <entity>.read, plus "
            + ", ".join(EXTRA_SCOPES)
            + ")"
        ),
    )
    token_ttl: int = field(
        default=31_536_000, metadata=meaning("access token lifetime, in seconds")
    )
    rotate_refresh_tokens: bool = field(
        default=True,
        metadata=meaning("answer a refresh_token grant with a new refresh token, voiding the old"),
    )
    client_credentials_allowed: bool = field(
        default=True,
        metadata=meaning(
            "grant client_credentials tokens; false: the app is a public app, refused with "
            "unauthorized_client (it must use the consent and refresh tokens)"
        ),
    )

    # The browser consent at GET /oauth/authorize (consent.py), answered at once.
    consent: t.Literal["approve", "deny"] = field(
        default="approve",
        metadata=meaning(
            "what the user does on the consent page: approve (a 302 to redirect_uri with "
            "code and state) or deny (a 302 with error=access_denied)"
        ),
    )
    consent_organization: int | None = field(
        default=None,
        metadata=meaning("the organization the user grants (None: the first of organizations)"),
    )
    redirect_uris: list[str] | None = field(
        default=None,
        metadata=meaning(
            "the app's registered redirect URLs (None: any http loopback URL with a port, "
            "as a native app may use)"
        ),
    )

    # A hostile or broken server: redirects elsewhere, secrets echoed back.
    token_redirect: str | None = field(
        default=None,
        metadata=meaning("answer POST /oauth/token with a 307 to this URL (a hostile server)"),
    )
    api_redirect: str | None = field(
        default=None,
        metadata=meaning("answer every API list request with a 302 to this URL plus its path"),
    )
    expires_in_sent: t.Any = field(
        default=None,
        metadata=meaning("the expires_in a token answer says (any JSON), instead of token_ttl"),
    )
    trickle_seconds: float = field(
        default=1.0, metadata=meaning("the pause between two bytes of a 'trickle' fault's answer")
    )
    token_without_access_token: bool = field(
        default=False,
        metadata=meaning(
            "granted token answers lack access_token (a rotated refresh_token is still in it)"
        ),
    )
    token_delay_seconds: float = field(
        default=0.0,
        metadata=meaning(
            "how long a granted token answer takes (the grant, a refresh token's "
            "rotation included, is done when the request arrives)"
        ),
    )
    refresh_refused_message: str = field(
        default="The refresh token is invalid.",
        metadata=meaning("the message of the invalid_grant answer to an unknown refresh token"),
    )
    token_error_echo: bool = field(
        default=False,
        metadata=meaning("answer POST /oauth/token with a 400 quoting the form it was sent"),
    )

    # Limits.
    rate_limit: int = field(
        default=0, metadata=meaning("requests per rate_window per client (0: no throttle)")
    )
    rate_window: float = field(
        default=60.0, metadata=meaning("the throttle's sliding window, in seconds")
    )
    retry_after_in: t.Literal["body", "header", "both"] = field(
        default="body",
        metadata=meaning("where a throttle 429 says how long to wait: body, header or both"),
    )
    daily_quota: int | None = field(
        default=None,
        metadata=meaning("API requests per organization and day before 'Quota exceeded'"),
    )
    quota_by_org: dict[int, int] = field(
        default_factory=dict, metadata=meaning("daily_quota for some organizations, {id: n}")
    )
    quota_cutoff_after: int | None = field(
        default=None,
        metadata=meaning("answer every API request after this many with 'Quota exceeded'"),
    )

    # Paginator variations (docs/mokapen-api.md).
    envelope: bool = field(
        default=False, metadata=meaning("wrap each page in {status: true, data: page}")
    )
    ignore_per_page: bool = field(
        default=False, metadata=meaning("ignore per_page, always 15 a page")
    )
    max_per_page: int = field(default=1000, metadata=meaning("the largest per_page honoured"))
    above_max_per_page: t.Literal["clamp", "refuse", "refuse_vaguely", "slow", "fail"] = field(
        default="clamp",
        metadata=meaning(
            "a per_page above max_per_page is: clamp (served at max_per_page, silently), "
            "refuse (422 naming the limit, as Laravel's validation does), refuse_vaguely "
            "(422 naming no number), slow (answered after slow_page_seconds) or fail (500)"
        ),
    )
    slow_page_seconds: float = field(
        default=5.0, metadata=meaning("the delay of an answer above max_per_page when 'slow'")
    )
    omit_next_page_url: bool = field(
        default=False, metadata=meaning("leave next_page_url out of pages")
    )
    omit_last_page: bool = field(
        default=False,
        metadata=meaning("leave last_page, last_page_url, total and next_page_url out of pages"),
    )
    repeat_first_page: bool = field(
        default=False, metadata=meaning("answer every page request with page 1")
    )
    timestamp_style: t.Literal["iso", "plain", "mixed"] = field(
        default="iso",
        metadata=meaning("timestamps as iso (with micros and Z), plain (zone-less) or mixed"),
    )
    extra_fields: bool = field(
        default=False,
        metadata=meaning(
            "add fields the schemas do not know to records: custom_fields (object), "
            "legacy_ref (string), tags (list of strings), score (float)"
        ),
    )
    added_fields: list[dict[str, t.Any]] = field(
        default_factory=list,
        metadata=meaning(
            'fields set on served records, [{"every": n, "fields": {name: value}}]: on '
            "each record whose id is a multiple of n, in order (a later entry wins); "
            "any name, any value"
        ),
    )
    # Laravel's other list bodies (docs/mokapen-api.md, part 2), per list or for all.
    list_shape: str | dict[str, str] = field(
        default="length_aware",
        metadata=meaning(
            "list body shape, one for every list or {entity or organizations: shape}: "
            + ", ".join(LIST_SHAPES)
        ),
    )
    cursor_growth: int = field(
        default=0,
        metadata=meaning(
            "cursor lists: each next_cursor carries this many characters of filler more "
            "than the one before (a cursor that grows without bound)"
        ),
    )
    paginator_fault: str | None = field(
        default=None,
        metadata=meaning(
            "a length-aware paginator that misbehaves on entity lists: "
            + ", ".join(PAGINATOR_FAULTS)
        ),
    )
    bad_records: dict[str, t.Any] | None = field(
        default=None,
        metadata=meaning(
            'broken entity records, {"every": N, "kinds": [...]}: each one whose id is a '
            "multiple of N, the kinds in turn: " + ", ".join(BAD_KINDS)
        ),
    )

    # Faults and drift.
    faults: list[Fault] = field(
        default_factory=list,
        metadata=meaning(
            "API requests that misbehave, [{at, kind, times, seconds}]; kinds: 500, 503, "
            "html502, truncated, reset, slow, revoke, expire, throttle, quota, trickle, "
            "oversized, gzip_bomb (see Fault)"
        ),
    )
    # Mutations applied to a dataset before every drift_every-th page request after
    # its first page (1: before every page, the worst case).
    drift: dict[str, int] = field(
        default_factory=dict,
        metadata=meaning(
            "changes made to a dataset between page requests, {update, delete, insert}"
        ),
    )
    drift_every: int = field(
        default=1, metadata=meaning("apply drift before every n-th page request")
    )
    edits_move_to_front: bool = field(
        default=False,
        metadata=meaning(
            "an edited record moves to the front of its list, as in a list ordered by "
            "most recently updated (drift edits; lists paged by number only)"
        ),
    )
    paging_lies: dict[str, t.Any] = field(
        default_factory=dict,
        metadata=meaning(
            'paging keys every list answer states whatever the truth, {"per_page": 1000, '
            '"total": 10**12}: a silent clamp, an absurd total (see glitches.py)'
        ),
    )
    record_route: bool = field(
        default=True,
        metadata=meaning(
            "serve GET /api/v1/{org}/<entity>/{id}, one record (404 for a deleted or "
            "unknown id); false: no such route"
        ),
    )
    unstable_order: str | None = field(
        default=None,
        metadata=meaning(
            "entity lists paged by number come back in another order on each request: "
            "'all' (no ORDER BY on a table being updated) or 'block' (the middle half "
            "shares one sort key, a bulk import)"
        ),
    )
    list_cut: float | None = field(
        default=None,
        metadata=meaning(
            "entity lists hold only this share of the records, their total cut too (an "
            "offset cap that never contradicts itself); the show route still has them all"
        ),
    )
    glitches: list[dict[str, t.Any]] = field(
        default_factory=list,
        metadata=meaning(
            "entity list answers that contradict themselves, [{at, kind, times, org, "
            "entity, keep, drop}], at counted per organization and entity; kinds: "
            + ", ".join(GLITCH_KINDS)
            + " (see glitches.py)"
        ),
    )

    def __post_init__(self) -> None:
        # Checked here, not at the first request for that entity, so a bad reset fails
        # at once and says why.
        unknown = sorted(set(self.counts) - set(ENTITIES))
        if unknown:
            msg = f"counts: no such entity: {', '.join(unknown)} (known: {', '.join(ENTITIES)})"
            raise ValueError(msg)
        own = sorted(set(self.counts) & set(COUNT_FIELDS))
        if own:
            msg = f"counts: set {', '.join(own)} with its own switch"
            raise ValueError(msg)
        self._check_list_shape()
        if self.paginator_fault is not None and self.paginator_fault not in PAGINATOR_FAULTS:
            msg = (
                f"paginator_fault: unknown fault {self.paginator_fault!r} "
                f"(faults: {', '.join(PAGINATOR_FAULTS)})"
            )
            raise ValueError(msg)
        check_spec(self.bad_records)
        check_glitches(self.glitches)
        if self.unstable_order not in (None, "all", "block"):
            msg = f"unstable_order: {self.unstable_order!r} is not 'all' or 'block'"
            raise ValueError(msg)
        if self.consent not in ("approve", "deny"):
            msg = f"consent: {self.consent!r} is not 'approve' or 'deny'"
            raise ValueError(msg)
        if self.consent_organization is not None and (
            self.consent_organization not in self.organizations
        ):
            msg = f"consent_organization: {self.consent_organization} is not in organizations"
            raise ValueError(msg)
        if self.list_cut is not None and not 0 < self.list_cut <= 1:
            msg = f"list_cut: {self.list_cut!r} is not a share above 0 and at most 1"
            raise ValueError(msg)

    def _check_list_shape(self) -> None:
        shapes = self.list_shape if isinstance(self.list_shape, dict) else {"": self.list_shape}
        lists = ["organizations", *ENTITIES]
        unknown_lists = sorted(set(shapes) - set(lists) - {""})
        if unknown_lists:
            msg = (
                f"list_shape: no such list: {', '.join(unknown_lists)} (lists: {', '.join(lists)})"
            )
            raise ValueError(msg)
        wrong = sorted({str(shape) for shape in shapes.values()} - set(LIST_SHAPES))
        if wrong:
            msg = (
                f"list_shape: unknown shape(s) {', '.join(wrong)} "
                f"(shapes: {', '.join(LIST_SHAPES)})"
            )
            raise ValueError(msg)

    def shape_for(self, kind: str) -> str:
        """The list shape of one entity's list, or of the organizations list."""
        if isinstance(self.list_shape, dict):
            return self.list_shape.get(kind, "length_aware")
        return self.list_shape

    def count_for(self, kind: str) -> int:
        """Records per organization of one entity."""
        if kind in COUNT_FIELDS:
            return int(getattr(self, kind))
        return self.counts.get(kind, ENTITIES[kind].default_count)

    @classmethod
    def from_dict(cls, values: dict[str, t.Any]) -> SandboxSettings:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            msg = f"unknown sandbox setting(s): {', '.join(unknown)}"
            raise ValueError(msg)
        values = dict(values)
        if "organizations" in values:
            values["organizations"] = {int(k): v for k, v in values["organizations"].items()}
        if "quota_by_org" in values:
            values["quota_by_org"] = {int(k): v for k, v in values["quota_by_org"].items()}
        if "counts" in values:
            values["counts"] = {str(k): int(v) for k, v in values["counts"].items()}
        if "faults" in values:
            values["faults"] = [Fault(**f) for f in values["faults"]]
        return cls(**values)

    def quota_for(self, org: int) -> int | None:
        return self.quota_by_org.get(org, self.daily_quota)

    def fault_at(self, index: int) -> Fault | None:
        return next((f for f in self.faults if f.covers(index)), None)


def describe_switches() -> list[tuple[str, t.Any, str]]:
    """(name, default, meaning) of every switch, for ``mokapen-sandbox --help``."""
    rows = []
    for switch in dataclasses.fields(SandboxSettings):
        if switch.default_factory is not dataclasses.MISSING:
            default = switch.default_factory()
        else:
            default = switch.default
        rows.append((switch.name, default, switch.metadata["meaning"]))
    return rows


# Fail at import, not in --help, when a switch is added without its meaning.
_undocumented = [f.name for f in dataclasses.fields(SandboxSettings) if "meaning" not in f.metadata]
if _undocumented:
    msg = f"SandboxSettings: give {', '.join(_undocumented)} metadata=meaning(...)"
    raise TypeError(msg)
