"""The sandbox's behaviour, free of HTTP plumbing: routes, limits, paging, faults."""

from __future__ import annotations

import collections
import datetime as dt
import gzip
import math
import re
import threading
import time
import typing as t
from urllib.parse import parse_qs

from mokapen_sandbox import glitches
from mokapen_sandbox.admin import admin_reply
from mokapen_sandbox.breakage import bad_kind, break_record, finish_body
from mokapen_sandbox.consent import authorize
from mokapen_sandbox.data import ENTITIES, Dataset, format_timestamp, required_scope
from mokapen_sandbox.glitches import glitch_for
from mokapen_sandbox.oauth import (
    IssuedToken,
    OAuthError,
    TokenIssuer,
    encrypted_id,
    resolve_organization,
)
from mokapen_sandbox.orders import Cut, Reordered
from mokapen_sandbox.replies import TIMESTAMP_FIELDS, Reply, json_reply
from mokapen_sandbox.settings import SandboxSettings
from mokapen_sandbox.shapes import (
    CursorError,
    ListRequest,
    Render,
    RowList,
    Source,
    cursor_error_body,
    list_body,
    list_request,
    oversized_page,
)


def entity_route(names: t.Iterable[str], *, record: bool = False) -> re.Pattern[str]:
    """``/api/v1/{org}/<entity>`` for exactly these entities (``record``: the show route,
    ``/api/v1/{org}/<entity>/{id}``); anything else is a 404."""
    kinds = "|".join(re.escape(name) for name in names)
    one = "/(?P<id>[^/]+)" if record else ""
    return re.compile(rf"^/api/v1/(?P<org>[^/]+)/(?P<kind>{kinds}){one}$")


class Clock(t.Protocol):
    """What the sandbox reads the time from: the ``time`` module, or a test's clock that
    jumps forward when the tap sleeps (so token lifetimes and the throttle's window see
    the same time as the tap)."""

    def time(self) -> float: ...

    def monotonic(self) -> float: ...


class Sandbox:
    def __init__(self, settings: SandboxSettings, base_url: str = "http://127.0.0.1") -> None:
        self.base_url = base_url
        self.clock: Clock = time
        self._lock = threading.Lock()
        self.reset(settings)

    def reset(self, settings: SandboxSettings) -> None:
        with self._lock:
            self.settings = settings
            self.tokens = TokenIssuer(lambda: self.clock.time())
            # The registry as it is now: a test that patches ENTITIES before starting a
            # sandbox gets the new entity's route and datasets, and nothing changes under
            # a running one.
            self.entities = dict(ENTITIES)
            self.entity_path = entity_route(self.entities)
            self.record_path = entity_route(self.entities, record=True)
            self.datasets: dict[tuple[int, str], Dataset] = {}
            for org in settings.organizations:
                for kind, entity in self.entities.items():
                    count = settings.count_for(kind)
                    self.datasets[org, kind] = Dataset(kind, settings.seed, org, count, entity.make)
            self.api_requests = 0
            self.quota_used: collections.Counter[int] = collections.Counter()
            self.window: dict[str, collections.deque[float]] = {}
            self.stats: collections.Counter[str] = collections.Counter()
            self.pages_served: collections.Counter[tuple[int, str]] = collections.Counter()
            self.first_request_at = self.last_request_at = 0.0

    def new_day(self) -> None:
        """A new UTC day: the daily quota and the cut-off counter start again."""
        with self._lock:
            self.quota_used.clear()
            self.api_requests = 0

    # -- limits ---------------------------------------------------------------

    def _throttle(self, client_id: str) -> Reply | None:
        """The documented 60-a-minute throttle, as a sliding window per client."""
        limit, window = self.settings.rate_limit, self.settings.rate_window
        if not limit:
            return None
        now = self.clock.monotonic()
        with self._lock:
            stamps = self.window.setdefault(client_id, collections.deque())
            while stamps and stamps[0] <= now - window:
                stamps.popleft()
            if len(stamps) < limit:
                stamps.append(now)
                return None
            wait = max(1, math.ceil(stamps[0] + window - now))
            self.stats["throttled"] += 1
        return self.throttle_reply(wait)

    def throttle_reply(self, wait: int) -> Reply:
        body = {
            "status": False,
            "message": "Too Many Requests",
            "max_attempts": self.settings.rate_limit or 60,
            "remaining": 0,
            "retry_after": f"{wait} seconds",
        }
        where = self.settings.retry_after_in
        if where == "header":
            body.pop("retry_after")
        headers = {"Retry-After": str(wait)} if where in ("header", "both") else {}
        return json_reply(429, body, headers=headers)

    def quota_reply(self, org: int) -> Reply:
        self.stats["quota_rejected"] += 1
        limit = self.settings.quota_for(org) or self.settings.quota_cutoff_after or 0
        return json_reply(
            429, {"message": "Quota exceeded", "API daily request limit exceeded.\n": limit}
        )

    def _over_quota(self, org: int) -> bool:
        cutoff = self.settings.quota_cutoff_after
        if cutoff is not None and self.api_requests > cutoff:
            return True
        limit = self.settings.quota_for(org)
        return limit is not None and self.quota_used[org] >= limit

    # -- routes ---------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: str, headers: t.Mapping[str, str], body: bytes
    ) -> Reply:
        try:
            if path == "/oauth/token" and method == "POST":
                return self._token(body)
            if path == "/oauth/authorize" and method == "GET":
                self.stats["authorize_requests"] += 1
                return authorize(query, self.tokens, self.settings)
            if path.startswith("/_sandbox/"):
                return admin_reply(self, method, path, query, body)
            if path.startswith("/api/"):
                return self._api(method, path, query, headers)
            return json_reply(404, {"message": "Not Found"})
        except OAuthError as exc:
            return json_reply(exc.status, exc.body)

    def _count_request(self) -> None:
        """Stamp every Mokapen request (not admin calls), for measuring the tap's rate."""
        now = self.clock.time()
        with self._lock:
            self.stats["requests"] += 1
            self.first_request_at = self.first_request_at or now
            self.last_request_at = now

    def _token(self, body: bytes) -> Reply:
        self._count_request()
        self.stats["token_requests"] += 1
        if self.settings.token_redirect:
            return Reply(307, b"", headers={"Location": self.settings.token_redirect})
        if self.settings.token_error_echo:
            return json_reply(400, {"message": f"Invalid request: {body.decode(errors='replace')}"})
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        # Which grants were asked for: a test tells a refresh from client credentials.
        grant = form.get("grant_type")
        if grant in ("client_credentials", "refresh_token", "authorization_code"):
            self.stats[f"grant_{grant}"] += 1
        if throttled := self._throttle(form.get("client_id", "")):
            return throttled
        answer = self.tokens.issue(form, self.settings)
        if self.settings.token_without_access_token:
            answer.pop("access_token", None)
        reply = json_reply(200, answer)
        reply.delay = self.settings.token_delay_seconds
        return reply

    def _api(self, method: str, path: str, query: str, headers: t.Mapping[str, str]) -> Reply:
        self._count_request()
        if self.settings.api_redirect:
            location = f"{self.settings.api_redirect}{path}?{query}"
            return Reply(302, b"", headers={"Location": location})
        with self._lock:
            self.api_requests += 1
            index = self.api_requests
        self.stats["api_requests"] += 1
        fault = self.settings.fault_at(index)
        delay = 0.0
        if fault:
            self.stats[f"fault_{fault.kind}"] += 1
            if fault.kind == "revoke":
                self.tokens.revoke_all()
            elif fault.kind == "expire":
                self.tokens.expire(headers.get("authorization"))
            elif fault.kind == "slow":
                delay = fault.seconds
            elif fault.kind == "throttle":
                self.stats["throttled"] += 1
                return self.throttle_reply(2)
            else:
                return self._broken(fault.kind)
        token = self.tokens.check(headers.get("authorization"))
        if throttled := self._throttle(token.client_id):
            return throttled
        if self._over_quota(token.organization_id):
            return self.quota_reply(token.organization_id)
        self.quota_used[token.organization_id] += 1
        params = {k: v[0] for k, v in parse_qs(query).items()}
        if method != "GET":
            return json_reply(405, {"message": "Method Not Allowed"})
        too_large = oversized_page(params, self.settings)
        if too_large is not None and too_large.status != 200:
            self.stats["pages_too_large"] += 1
            return too_large
        if path == "/api/v1/organizations":
            reply = self._organizations(path, params)
        elif match := self.entity_path.match(path):
            reply = self._entities(token, match["org"], match["kind"], path, params)
        elif self.settings.record_route and (match := self.record_path.match(path)):
            reply = self._one_record(token, match["org"], match["kind"], match["id"])
        else:
            reply = json_reply(404, {"message": "Not Found"})
        reply.delay = max(delay, too_large.delay if too_large else 0.0)
        return reply

    def _broken(self, kind: str) -> Reply:
        if kind == "html502":
            page = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
            return Reply(502, page, content_type="text/html")
        if kind == "truncated":
            return Reply(200, b'{"current_page": 1, "data": [{"id": 1, "name": "Tr')
        if kind == "reset":
            return Reply(0, b"", action="reset")
        if kind == "quota":
            return self.quota_reply(0)
        if kind == "trickle":  # a valid page, one byte at a time, `seconds` apart
            body = b'{"current_page": 1, "data": [], "total": 0}'
            return Reply(200, body, action="trickle", delay=0.0)
        if kind == "oversized":  # a valid page of one record with a 50 MB field
            note = "x" * (50 * 2**20)
            return json_reply(200, {"current_page": 1, "data": [{"id": 1, "note": note}]})
        if kind == "gzip_bomb":  # 200 KB on the wire, 200 MB inflated
            bomb = gzip.compress(b'{"data": ["' + b"0" * (200 * 2**20) + b'"]}', 6)
            return Reply(200, bomb, headers={"Content-Encoding": "gzip"})
        status = int(kind) if kind.isdigit() else 500
        return json_reply(status, {"message": "Server Error"})

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _organizations(self, path: str, params: dict[str, str]) -> Reply:
        self.pages_served[0, "organizations"] += 1
        rows = [
            {"id": org, "name": name, "plan": "sandbox", "encrypted_id": encrypted_id(org)}
            for org, name in sorted(self.settings.organizations.items())
        ] + list(self.settings.listed_oddities)
        shape = self.settings.shape_for("organizations")
        try:
            request = list_request(shape, self._url(path), params, self.settings)
        except CursorError:
            return json_reply(400, cursor_error_body())
        # Organizations are served as they are: no timestamps, extra fields or breakage.
        number = self.pages_served[0, "organizations"]
        glitch = glitch_for(self.settings.glitches, 0, "organizations", number)
        return self._list_reply(shape, RowList(rows), request, render=list, glitch=glitch)

    def _refusal(self, token: IssuedToken, org_ref: str, kind: str) -> Reply | int:
        """Why the token may not read the organization's entity, else the organization."""
        org = resolve_organization(org_ref, self.settings)
        if org is None:
            return json_reply(404, {"message": f"Organization {org_ref} not found."})
        if org != token.organization_id:
            message = "This token is not authorized for this organization."
            return json_reply(403, {"message": message})
        scope = required_scope(kind)
        if scope not in token.scopes:
            return json_reply(403, {"message": "Missing required scopes", "required": [scope]})
        return org

    def _one_record(self, token: IssuedToken, org_ref: str, kind: str, record_id: str) -> Reply:
        """The show route: one record as Laravel's JsonResource serves it, or a 404."""
        org = self._refusal(token, org_ref, kind)
        if isinstance(org, Reply):
            return org
        self.stats["record_requests"] += 1
        record = self.datasets[org, kind].get(int(record_id)) if record_id.isdigit() else None
        if record is None:
            model = kind.rstrip("s").title()
            message = f"No query results for model [App\\Models\\{model}] {record_id}"
            return json_reply(404, {"message": message})
        return json_reply(200, {"data": self._render([record])[0]})

    def _entities(
        self, token: IssuedToken, org_ref: str, kind: str, path: str, params: dict[str, str]
    ) -> Reply:
        org = self._refusal(token, org_ref, kind)
        if isinstance(org, Reply):
            return org
        dataset = self.datasets[org, kind]
        shape = self.settings.shape_for(kind)
        self.pages_served[org, kind] += 1
        number = self.pages_served[org, kind]
        fault = self.settings.paginator_fault
        try:
            request = list_request(
                shape, self._url(path), params, self.settings, fault=fault, number=number
            )
        except CursorError:
            return json_reply(400, cursor_error_body())
        # Drift strikes before pages after the first, whatever says which page that is.
        later_page = request.page > 1 or request.cursor is not None
        if later_page and self.settings.drift and number % self.settings.drift_every == 0:
            dataset.mutate(**self.settings.drift, to_front=self.settings.edits_move_to_front)
        glitch = glitch_for(self.settings.glitches, org, kind, number)
        source: Source = dataset
        if self.settings.list_cut is not None:
            source = Cut(source, self.settings.list_cut)
        if self.settings.unstable_order:
            source = Reordered(source, self.settings.unstable_order, number)
        return self._list_reply(shape, source, request, render=self._render, glitch=glitch)

    def _list_reply(
        self,
        shape: str,
        source: Source,
        request: ListRequest,
        *,
        render: Render,
        glitch: dict[str, t.Any] | None = None,
    ) -> Reply:
        """A list body in its shape, glitched, in the envelope if switched on, bad bytes put in."""
        body = list_body(shape, source, request, render)
        if glitch:
            self.stats[f"glitch_{glitch['kind']}"] += 1
            body = glitches.apply(body, glitch)
        if self.settings.paging_lies and isinstance(body, dict):
            body = glitches.lie(body, self.settings.paging_lies)
        if self.settings.envelope:
            body = {"status": True, "data": body}
        reply = json_reply(200, body)
        if self.settings.bad_records:
            reply.body = finish_body(reply.body)
        return reply

    def _render(self, rows: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
        """Entity records as served: serialized, then broken where bad_records says."""
        spec = self.settings.bad_records
        for row in rows:
            kind = bad_kind(spec, row["id"])
            self._serialize(row)
            if kind is not None:
                break_record(row, kind)
        return rows

    def _serialize(self, row: dict[str, t.Any]) -> dict[str, t.Any]:
        style = self.settings.timestamp_style
        for field in TIMESTAMP_FIELDS:
            value = row.get(field)
            if isinstance(value, dt.datetime):
                row[field] = format_timestamp(value, style, row["id"])
        if self.settings.extra_fields:
            # One unknown field of each JSON type: object, string, array, number.
            row["custom_fields"] = {"source": "sandbox", "score": row["id"] % 10}
            row["legacy_ref"] = f"LEG-{row['id']:06d}"
            row["tags"] = ["sandbox", f"group-{row['id'] % 3}"]
            row["score"] = row["id"] % 100 / 8
        for added in self.settings.added_fields:
            if row["id"] % int(added.get("every", 1)) == 0:
                row.update(added.get("fields", {}))
        return row
