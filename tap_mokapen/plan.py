"""``tap-mokapen --plan``: what a sync will cost, for one request per stream and organization.

The first page of each list, asked at the size the sync would ask (page_size.py),
gives the paginator's ``total`` and the page size the server really uses; from them
follow the records, the page requests, the time under the throttle and the share
of each Mokapen plan's daily quota. Where ``page_size`` is set, the cost at the
largest page the server is known to honour is given beside it. Mokapen has no
filter on ``updated_at``, so an incremental sync reads every page too: it costs the
same requests and emits only the changed records.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing as t

import click

from tap_mokapen import state
from tap_mokapen.list_pass import MAX_CATCH_UP_PAGES
from tap_mokapen.page_size import DEFAULT_PAGE_SIZE
from tap_mokapen.paging import believed

if t.TYPE_CHECKING:
    from tap_mokapen.client import MokapenStream
    from tap_mokapen.run import Run

#: Daily request quota per organization of each Mokapen plan.
PLANS = {"Free": 200, "Small Team": 2_000, "Medium": 8_000, "Large": 20_000}


@dataclasses.dataclass
class StreamCost:
    stream: str
    organization_id: int | str | None
    records: int | None
    per_page: int
    pages: int | None
    #: The largest page the server is known to honour, and the pages a sync at it takes.
    largest_page: int | None
    pages_at_largest: int | None
    #: Requests the plan spent on page sizes the server refused.
    learning_requests: int = 0
    #: Why the last passes of this list were incomplete, when several in a row were.
    never_complete: str | None = None


def pages_of(total: int | None, size: int | None) -> int | None:
    return None if total is None or not size else max(1, math.ceil(total / size))


def estimate(run: Run, streams: t.Iterable[MokapenStream]) -> list[StreamCost]:
    costs = []
    for stream in streams:
        if not stream.selected:
            continue
        contexts: list[dict | None] = list(stream.partitions or []) or [None]
        for context in contexts:
            page, sizing = stream.first_page(context)
            total = believed(page.total)  # an absurd total is no estimate
            per_page = believed(page.per_page) or page.size or 1
            largest = sizing.learned
            org = (context or {}).get("organization_id", run.organizations.first)
            costs.append(
                StreamCost(
                    stream.name,
                    org,
                    total,
                    per_page,
                    pages_of(total, per_page),
                    largest,
                    pages_of(total, largest),
                    sizing.learning_requests,
                    state.Partition(stream.get_context_state(context), "").standing_doubt(),
                )
            )
    return costs


def report(run: Run, costs: list[StreamCost]) -> dict[str, t.Any]:
    organizations = sorted({str(c.organization_id) for c in costs})
    page_requests = sum(c.pages or 0 for c in costs)
    token_requests = 0 if run.settings.auth_mode == "access_token" else len(organizations)
    settings = run.settings
    # A versioned pass that completes asks whether the app reaches organizations the run
    # does not read (deletions.py): once a run, unless nothing needs asking.
    listing_requests = int(
        any(c.stream in settings.detect_deletions for c in costs)
        and not (settings.all_organizations or settings.tables_per_organization)
    )
    requests = page_requests + token_requests + listing_requests
    at_largest = token_requests + listing_requests
    at_largest += sum(c.pages_at_largest or c.pages or 0 for c in costs)
    per_minute = run.settings.requests_per_minute * 60 / run.settings.rate_limit_window_seconds

    def days(spent: int) -> dict[str, float]:
        return {
            name: round(spent / (quota * len(organizations)), 4) for name, quota in PLANS.items()
        }

    return {
        "streams": [dataclasses.asdict(c) for c in costs],
        "unknown_totals": [c.stream for c in costs if c.pages is None],
        "page_size": run.settings.page_size,
        "page_requests": page_requests,
        "token_requests": token_requests,
        "organizations_list_requests": listing_requests,
        "requests": requests,
        "minutes_at_rate_limit": round(requests / per_minute, 1),
        "plan_days": days(requests),
        "requests_at_largest_page": at_largest,
        "plan_days_at_largest_page": days(at_largest),
        "plan_requests_spent": sum(1 + c.learning_requests for c in costs) + token_requests,
        # Asked only where a pass misses ids of the last one's sample (record_checks.py).
        "record_checks_at_most": run.settings.max_record_checks * len(costs),
    }


def render(summary: dict[str, t.Any]) -> str:
    lines = ["Cost of a full or incremental sync (incremental reads every page as well):", ""]
    lines.append(
        f"{'stream':<15}{'organization':>14}{'records':>10}{'per page':>10}{'pages':>8}"
        f"{'largest page':>14}{'pages at it':>13}"
    )
    for cost in summary["streams"]:
        shown = {key: "?" if value is None else value for key, value in cost.items()}
        lines.append(
            f"{cost['stream']:<15}{cost['organization_id']!s:>14}{shown['records']!s:>10}"
            f"{cost['per_page']:>10}{shown['pages']!s:>8}{shown['largest_page']!s:>14}"
            f"{shown['pages_at_largest']!s:>13}"
        )
    # Learned: a size was refused this run, or one from earlier runs is asked.
    learned = any(
        c["learning_requests"] or c["per_page"] != DEFAULT_PAGE_SIZE for c in summary["streams"]
    )
    if summary["page_size"]:
        at = f"page_size={summary['page_size']}"
    elif learned:
        at = "the learned page size"
    else:
        at = f"the default page size ({DEFAULT_PAGE_SIZE})"
    unknown = " + the pages of lists without a total" if summary["unknown_totals"] else ""
    listing = (
        " + 1 organizations list (detect_deletions)"
        if summary["organizations_list_requests"]
        else ""
    )
    lines += [
        "",
        f"Requests at {at}: {summary['requests']} ({summary['page_requests']} pages + "
        f"{summary['token_requests']} token{listing}{unknown})",
        f"Time at the rate limit: {summary['minutes_at_rate_limit']} min",
        "Share of each plan's daily quota (days of quota): "
        + ", ".join(f"{name} {share(days)}" for name, days in summary["plan_days"].items()),
    ]
    if summary["requests_at_largest_page"] != summary["requests"]:
        lines += [
            f"Requests at the largest page the server honours: "
            f"{summary['requests_at_largest_page']}; days of quota: "
            + ", ".join(
                f"{name} {share(days)}"
                for name, days in summary["plan_days_at_largest_page"].items()
            ),
        ]
    for cost in summary["streams"]:
        if cost["never_complete"]:
            lines.append(
                f"'{cost['stream']}' of organization {cost['organization_id']} has not "
                f"completed for several passes: {cost['never_complete']}"
            )
    if summary["record_checks_at_most"]:
        lines.append(
            f"Plus at most {summary['record_checks_at_most']} single-record checks "
            "(max_record_checks per stream and organization), only where a pass misses "
            "records the last complete one held: a deletion to confirm; and at most "
            f"{MAX_CATCH_UP_PAGES} pages a pass read again where a list's ids repeat "
            "(records edited during the pass)."
        )
    lines.append(f"This plan spent {summary['plan_requests_spent']} requests.")
    if any(None in (c["records"], c["pages"], c["largest_page"]) for c in summary["streams"]):
        lines.append(
            "?: not known from the first page (no believable total, or no page size "
            "learned: the server honoured the size asked)."
        )
    if summary["unknown_totals"]:
        lines.append(
            "No believable 'total' from: "
            + ", ".join(summary["unknown_totals"])
            + " - their page counts are unknown (a sync reads them to their end)."
        )
    return "\n".join(lines)


def share(days: float) -> str:
    """A share of a daily quota as shown: a small one as small, never as 0.0."""
    if days == 0:
        return "0"
    return "<0.01" if days < 0.01 else f"{days:.2f}"


def run(the_run: Run, streams: t.Iterable[MokapenStream], output_format: str) -> str:
    costs = estimate(the_run, streams)
    if not costs:
        return "No stream is selected: a sync would make no request."
    summary = report(the_run, costs)
    return json.dumps(summary, indent=2) if output_format == "json" else render(summary)


def option() -> click.Option:
    """``--plan`` for the tap's command line (cli.py runs it)."""
    return click.Option(
        ["--plan"],
        is_flag=False,
        flag_value="table",
        default=None,
        type=click.Choice(["table", "json"]),
        help="Print the records, requests, time and quota a sync will cost, then exit; "
        "it spends a token request per organization and one request per selected "
        "stream and organization. --plan=json for JSON.",
    )
