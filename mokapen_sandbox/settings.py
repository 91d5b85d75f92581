"""The sandbox's switches: what data it serves, which limits it enforces, which faults it injects.

Every switch can be set on the command line at start and changed at run time with
``POST /_sandbox/reset`` (a JSON object of the fields below), which is how the tests
drive one long-lived server through every scenario.
"""

from __future__ import annotations

import dataclasses
import typing as t

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
    throttle body) and ``quota`` (a 429 quota body).
    """

    at: int
    kind: str
    times: int = 1
    seconds: float = 2.0

    def covers(self, index: int) -> bool:
        return self.at <= index < self.at + self.times


@dataclasses.dataclass
class SandboxSettings:
    seed: int = 1
    contacts: int = 500
    tasks: int = 200
    organizations: dict[int, str] = dataclasses.field(
        default_factory=lambda: dict(DEFAULT_ORGANIZATIONS)
    )
    client_id: str = DEMO_CLIENT_ID
    client_secret: str = DEMO_CLIENT_SECRET
    enabled_scopes: list[str] = dataclasses.field(
        default_factory=lambda: ["contacts.read", "tasks.read", "tasks.write"]
    )
    token_ttl: int = 31_536_000
    rotate_refresh_tokens: bool = True

    # Limits. rate_limit requests per rate_window seconds per client (0: off).
    rate_limit: int = 0
    rate_window: float = 60.0
    retry_after_in: t.Literal["body", "header", "both"] = "body"
    daily_quota: int | None = None
    quota_by_org: dict[int, int] = dataclasses.field(default_factory=dict)
    # Answer every API request after this many with "quota exceeded" (None: off).
    quota_cutoff_after: int | None = None

    # Paginator variations (shared/mokapen-api.md section 6).
    envelope: bool = False
    ignore_per_page: bool = False
    max_per_page: int = 1000
    omit_next_page_url: bool = False
    omit_last_page: bool = False
    repeat_first_page: bool = False
    timestamp_style: t.Literal["iso", "plain", "mixed"] = "iso"
    extra_fields: bool = False

    # Faults and drift.
    faults: list[Fault] = dataclasses.field(default_factory=list)
    # Mutations applied to a dataset before every drift_every-th page request after
    # its first page (1: before every page, the worst case).
    drift: dict[str, int] = dataclasses.field(default_factory=dict)
    drift_every: int = 1

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
        if "faults" in values:
            values["faults"] = [Fault(**f) for f in values["faults"]]
        return cls(**values)

    def quota_for(self, org: int) -> int | None:
        return self.quota_by_org.get(org, self.daily_quota)

    def fault_at(self, index: int) -> Fault | None:
        return next((f for f in self.faults if f.covers(index)), None)
