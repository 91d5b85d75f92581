"""The sandbox's own ``/_sandbox/`` calls: not part of Mokapen, never counted against limits.

Tests and the benchmark use them to reset switches, read the truth behind the API
(records, the records served broken, tokens, stats) and change records while the tap
pages through them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import typing as t
from urllib.parse import parse_qs

from mokapen_sandbox.breakage import bad_list
from mokapen_sandbox.data import Dataset
from mokapen_sandbox.replies import TIMESTAMP_FIELDS, Reply, json_reply
from mokapen_sandbox.settings import SandboxSettings

if t.TYPE_CHECKING:
    from mokapen_sandbox.app import Sandbox


def admin_reply(sandbox: Sandbox, method: str, path: str, query: str, body: bytes) -> Reply:
    payload = json.loads(body or b"{}") if method == "POST" else {}
    params = {k: v[0] for k, v in parse_qs(query).items()}
    try:
        return _route(sandbox, method, path, params, payload)
    except ValueError as exc:
        # Bad switches (an unknown name, counts for an unknown entity): say which,
        # rather than dropping the connection.
        return json_reply(400, {"message": str(exc)})


def _route(
    sandbox: Sandbox, method: str, path: str, params: dict[str, str], payload: dict[str, t.Any]
) -> Reply:
    settings = sandbox.settings
    if path == "/_sandbox/reset" and method == "POST":
        sandbox.reset(SandboxSettings.from_dict(payload))
        return json_reply(200, {"ok": True})
    if path == "/_sandbox/update" and method == "POST":
        # Change switches, keeping the data, tokens and counters.
        merged = {**dataclasses.asdict(settings), **payload}
        sandbox.settings = SandboxSettings.from_dict(merged)
        return json_reply(200, {"ok": True})
    if path == "/_sandbox/new-day" and method == "POST":
        sandbox.new_day()
        return json_reply(200, {"ok": True})
    if path == "/_sandbox/tokens":
        # For tests that check no token ever reaches the tap's output.
        return json_reply(200, sorted(sandbox.tokens.access_tokens))
    if path == "/_sandbox/stats":
        return json_reply(200, _stats(sandbox))
    if path == "/_sandbox/records":
        dataset = _dataset(sandbox, params.get("org"), params.get("stream", "contacts"))
        if isinstance(dataset, Reply):
            return dataset
        return json_reply(200, [_plain(row) for row in dataset.all_records()])
    if path == "/_sandbox/bad-records":
        # Which records the API serves broken (bad_records), by their original ids; the
        # records call above keeps serving them intact.
        dataset = _dataset(sandbox, params.get("org"), params.get("stream", "contacts"))
        if isinstance(dataset, Reply):
            return dataset
        return json_reply(200, bad_list(settings.bad_records, dataset.ids()))
    if path == "/_sandbox/mutate" and method == "POST":
        dataset = _dataset(sandbox, payload.pop("org", None), payload.pop("stream", "contacts"))
        if isinstance(dataset, Reply):
            return dataset
        return json_reply(200, dataset.mutate(**payload))
    if path == "/_sandbox/revoke" and method == "POST":
        sandbox.tokens.revoke_all()
        return json_reply(200, {"ok": True})
    if path == "/_sandbox/dashboard-token" and method == "POST":
        org = int(payload.get("org", next(iter(settings.organizations))))
        scopes = payload.get("scopes", settings.enabled_scopes)
        token = sandbox.tokens.dashboard_token(org, scopes, settings)
        return json_reply(200, {"access_token": token})
    if path == "/_sandbox/refresh-token" and method == "POST":
        org = int(payload.get("org", next(iter(settings.organizations))))
        scopes = payload.get("scopes", settings.enabled_scopes)
        return json_reply(200, {"refresh_token": sandbox.tokens.grant_refresh_token(org, scopes)})
    return json_reply(404, {"message": "Unknown sandbox admin call"})


def _dataset(sandbox: Sandbox, org: t.Any, stream: str) -> Dataset | Reply:
    """One organization's dataset of one entity (the first organization by default)."""
    org_id = int(org or next(iter(sandbox.settings.organizations)))
    dataset = sandbox.datasets.get((org_id, stream))
    if dataset is None:
        known = ", ".join(sandbox.entities)
        message = f"No dataset for organization {org_id} and stream {stream!r} (streams: {known})"
        return json_reply(404, {"message": message})
    return dataset


def _plain(row: dict[str, t.Any]) -> dict[str, t.Any]:
    """A record with its timestamps as ISO strings, whatever timestamp_style serves."""
    timestamps = {
        f: row[f].isoformat() for f in TIMESTAMP_FIELDS if isinstance(row.get(f), dt.datetime)
    }
    return {**row, **timestamps}


def _stats(sandbox: Sandbox) -> dict[str, t.Any]:
    return {
        **sandbox.stats,
        "tokens_issued": sandbox.tokens.issued,
        "first_request_at": sandbox.first_request_at,
        "last_request_at": sandbox.last_request_at,
        "quota_used": {str(k): v for k, v in sandbox.quota_used.items()},
        "pages_served": {f"{o}/{k}": n for (o, k), n in sandbox.pages_served.items()},
    }
