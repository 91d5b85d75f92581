"""``tap-mokapen --plan``: what a sync will cost, for one request per stream and organization.

The first page of each list gives the paginator's ``total`` and the page size the
server really uses; from them follow the records, the page requests, the time
under the throttle and the share of each Mokapen plan's daily quota. Mokapen has
no filter on ``updated_at``, so an incremental sync reads every page too: it
costs the same requests and emits only the changed records.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing as t

import click

from tap_mokapen import sdk_private

if t.TYPE_CHECKING:
    from tap_mokapen.client import MokapenStream
    from tap_mokapen.pages import Page
    from tap_mokapen.tap import TapMokapen

#: Daily request quota per organization of each Mokapen plan.
PLANS = {"Free": 200, "Small Team": 2_000, "Medium": 8_000, "Large": 20_000}


@dataclasses.dataclass
class StreamCost:
    stream: str
    organization_id: int | str | None
    records: int | None
    per_page: int
    pages: int | None


def first_page(stream: MokapenStream, context: dict | None) -> Page:
    """One paced, retried request for the first page, through the stream's request path."""
    if context:
        stream.organization_id = context["organization_id"]
    prepared = stream.prepare(context, stream.get_new_paginator().current_value)
    send = stream.request_decorator(lambda request, ctx: sdk_private.send(stream, request, ctx))
    return stream.read_page(send(prepared, context))


def estimate(tap: TapMokapen) -> list[StreamCost]:
    costs = []
    for stream in tap.mokapen_streams():
        if not stream.selected:
            continue
        contexts: list[dict | None] = list(stream.partitions or []) or [None]
        for context in contexts:
            page = first_page(stream, context)
            total = page.total if isinstance(page.total, int) else None
            per_page = page.per_page if isinstance(page.per_page, int) else len(page.data) or 1
            pages = None if total is None else max(1, math.ceil(total / per_page))
            org = (context or {}).get("organization_id", tap.organizations.first)
            costs.append(StreamCost(stream.name, org, total, per_page, pages))
    return costs


def report(tap: TapMokapen, costs: list[StreamCost]) -> dict[str, t.Any]:
    organizations = sorted({str(c.organization_id) for c in costs})
    page_requests = sum(c.pages or 0 for c in costs)
    token_requests = 0 if tap.settings.auth_mode == "access_token" else len(organizations)
    requests = page_requests + token_requests
    per_minute = tap.settings.requests_per_minute * 60 / tap.settings.rate_limit_window_seconds
    return {
        "streams": [dataclasses.asdict(c) for c in costs],
        "unknown_totals": [c.stream for c in costs if c.pages is None],
        "page_requests": page_requests,
        "token_requests": token_requests,
        "requests": requests,
        "minutes_at_rate_limit": round(requests / per_minute, 1),
        "plan_days": {
            name: round(requests / (quota * len(organizations)), 2) for name, quota in PLANS.items()
        },
        "plan_requests_spent": sum(1 for _ in costs) + token_requests,
    }


def render(summary: dict[str, t.Any]) -> str:
    lines = ["Cost of a full or incremental sync (incremental reads every page as well):", ""]
    lines.append(f"{'stream':<15}{'organization':>14}{'records':>10}{'per page':>10}{'pages':>8}")
    for cost in summary["streams"]:
        records = "?" if cost["records"] is None else cost["records"]
        pages = "?" if cost["pages"] is None else cost["pages"]
        lines.append(
            f"{cost['stream']:<15}{cost['organization_id']!s:>14}{records!s:>10}"
            f"{cost['per_page']:>10}{pages!s:>8}"
        )
    lines += [
        "",
        f"Requests: {summary['requests']} ({summary['page_requests']} pages + "
        f"{summary['token_requests']} token)",
        f"Time at the rate limit: {summary['minutes_at_rate_limit']} min",
        "Share of each plan's daily quota (days of quota): "
        + ", ".join(f"{name} {days}" for name, days in summary["plan_days"].items()),
        f"This plan spent {summary['plan_requests_spent']} requests.",
    ]
    if summary["unknown_totals"]:
        lines.append(
            "No 'total' from: "
            + ", ".join(summary["unknown_totals"])
            + " - their page counts are unknown."
        )
    return "\n".join(lines)


def run(tap: TapMokapen, output_format: str) -> str:
    costs = estimate(tap)
    if not costs:
        return "No stream is selected: a sync would make no request."
    summary = report(tap, costs)
    return json.dumps(summary, indent=2) if output_format == "json" else render(summary)


def option() -> click.Option:
    """``--plan`` for the tap's command line; TapMokapen.invoke runs it."""
    return click.Option(
        ["--plan"],
        is_flag=False,
        flag_value="table",
        default=None,
        type=click.Choice(["table", "json"]),
        help="Print the records, requests, time and quota a sync will cost "
        "(one request per selected stream), then exit. --plan=json for JSON.",
    )
