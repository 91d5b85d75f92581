"""``tap-mokapen --list-organizations``: the organizations the token can see, as JSON.

An orchestrator that runs one sync per organization (the Airflow fan-out DAG,
``orchestrate/airflow/dags/mokapen_per_organization.py``) needs the list before it
can fan out. It is read through the organizations stream's own request path, so
it is paced by ``requests_per_minute``, retried like any request, and errors are
reported in one redacted line. It costs the first configured organization's
token request plus one request per page of ``GET /api/v1/organizations``.

It is also how a user finds an organization id: a token generated in Mokapen's
Developer dashboard (``access_token``) needs no ``organization_id`` to list.
"""

from __future__ import annotations

import json
import logging
import typing as t

import click

from tap_mokapen.config import organization_number
from tap_mokapen.errors import MokapenError, RunPaused, cut, sentences
from tap_mokapen.registry import listed_ids

if t.TYPE_CHECKING:
    from tap_mokapen.registry import Organizations

logger = logging.getLogger("tap-mokapen")


def run(organizations: Organizations) -> str:
    """The JSON list for stdout; the log says whose token listed them, with their names."""
    try:
        listed = list(organizations.listed())
    except RunPaused as pause:
        # Nothing to resume here: the caller has no list, so this is a failure (exit 1).
        msg = sentences(
            f"Could not list the organizations: {pause.reason}",
            "Name the organizations to the orchestrator instead; that spends no request.",
        )
        raise MokapenError(msg) from None
    ids = listed_ids(listed, "--list-organizations")
    first = organizations.first
    logger.info(
        "%s lists %d organization(s): %s",
        f"The token of organization {first}" if first != "" else "The access_token",
        len(ids),
        cut(", ".join(_described(ids, listed)), 1000) or "none",
    )
    return json.dumps(ids)


def _described(ids: list[int], listed: list[t.Any]) -> list[str]:
    """Each id with its name, as listed, on one line (a name is the server's text)."""
    names = {
        organization_number(item.get("id")): " ".join(str(item.get("name")).split())
        for item in listed
        if isinstance(item, dict) and item.get("name") not in (None, "")
    }
    return [f"{i} ({cut(names[i], 80)})" if i in names else str(i) for i in ids]


def option() -> click.Option:
    """``--list-organizations`` for the tap's command line (cli.py runs it)."""
    return click.Option(
        ["--list-organizations"],
        is_flag=True,
        default=False,
        help="Print the ids of the organizations the configured credentials' token can "
        "see (GET /api/v1/organizations) as a JSON list, then exit.",
    )
