"""``tap-mokapen --list-organizations``: the organizations the token can see, as JSON.

An orchestrator that runs one sync per organization (the Airflow fan-out DAG,
``orchestrate/airflow/dags/mokapen_per_organization.py``) needs the list before it
can fan out. It is read through the organizations stream's own request path, so
it is paced by ``requests_per_minute``, retried like any request, and errors are
reported in one redacted line. It costs the first configured organization's
token request plus one request per page of ``GET /api/v1/organizations``.
"""

from __future__ import annotations

import json
import logging
import typing as t

import click

from tap_mokapen.errors import MokapenError, RunPaused, cut, sentences
from tap_mokapen.organizations import listed_ids
from tap_mokapen.sync import MokapenStream

if t.TYPE_CHECKING:
    from tap_mokapen.tap import TapMokapen

logger = logging.getLogger("tap-mokapen")


def organization_ids(tap: TapMokapen) -> list[int]:
    """The numeric ids the first configured organization's token lists, in listed order."""
    stream = tap.streams["organizations"]
    assert isinstance(stream, MokapenStream)  # discover_streams made it
    return listed_ids(stream.list_all(None), "--list-organizations")


def run(tap: TapMokapen) -> str:
    """The JSON list for stdout; the log says whose token listed them."""
    try:
        ids = organization_ids(tap)
    except RunPaused as pause:
        # Nothing to resume here: the caller has no list, so this is a failure (exit 1).
        msg = sentences(
            f"Could not list the organizations: {pause.reason}",
            "Name the organizations to the orchestrator instead; that spends no request.",
        )
        raise MokapenError(msg) from None
    logger.info(
        "The token of organization %s lists %d organization(s): %s",
        tap.organizations.first,
        len(ids),
        cut(", ".join(map(str, ids)), 500) or "none",
    )
    return json.dumps(ids)


def option() -> click.Option:
    """``--list-organizations`` for the tap's command line; TapMokapen.invoke runs it."""
    return click.Option(
        ["--list-organizations"],
        is_flag=True,
        default=False,
        help="Print the ids of the organizations the configured credentials' token can "
        "see (GET /api/v1/organizations) as a JSON list, then exit.",
    )
