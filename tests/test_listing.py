"""`tap-mokapen --list-organizations`: the ids an orchestrator fans out over, from the API."""

from __future__ import annotations

import json

from mokapen_sandbox import DEMO_CLIENT_SECRET
from tests.helpers import run_tap

LIST = ["--list-organizations"]


def test_lists_the_organizations_the_token_sees_for_a_token_and_a_page(sandbox):
    sandbox.reset(organizations={"849": "Acme", "850": "Globex", "1207": "Initech"})
    done = run_tap(sandbox.config(page_size=None), args=LIST)

    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == [849, 850, 1207]
    assert not done.messages  # no Singer message: stdout is the list alone
    stats = sandbox.stats()
    assert (stats["token_requests"], stats["api_requests"]) == (1, 1)
    assert stats["quota_used"] == {"849": 1}  # the configured organization's token listed
    assert "lists 3 organization(s): 849 (Acme), 850 (Globex), 1207 (Initech)" in done.stderr


def without_organization(config, **overrides):
    drop = {"organization_id", "organization_ids", *overrides.pop("drop", ())}
    return {k: v for k, v in config.items() if k not in drop} | overrides


def test_a_dashboard_token_finds_the_organization_id_without_knowing_one(sandbox):
    token = sandbox.dashboard_token()
    config = without_organization(
        sandbox.config(), drop=("client_id", "client_secret"), access_token=token
    )
    done = run_tap(config, args=LIST)

    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == [849, 850]
    assert "The access_token lists 2 organization(s): 849 (" in done.stderr
    assert sandbox.stats().get("token_requests", 0) == 0
    assert token not in done.stderr + done.stdout


def test_without_an_organization_the_error_says_how_to_find_it(sandbox):
    done = run_tap(without_organization(sandbox.config()), args=LIST)

    assert done.returncode == 1
    (error,) = done.error_lines()
    assert "organization_id (or organization_ids) is required" in error
    assert "Developer dashboard" in error and "--list-organizations" in error
    assert sandbox.stats().get("token_requests", 0) == 0


def test_a_sync_still_needs_the_organization_with_a_dashboard_token(sandbox):
    config = without_organization(
        sandbox.config(), drop=("client_id", "client_secret"), access_token="t"
    )
    done = run_tap(config)

    assert done.returncode == 1
    assert "organization_id (or organization_ids) is required" in done.error_lines()[0]


def test_a_paged_list_is_read_to_its_end(sandbox):
    done = run_tap(sandbox.config(page_size=1), args=LIST)

    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == [849, 850]
    assert sandbox.stats()["pages_served"] == {"0/organizations": 2}


def test_a_fault_and_a_throttle_are_waited_out(sandbox):
    sandbox.update(faults=[{"at": 1, "kind": "503"}, {"at": 2, "kind": "throttle"}])
    done = run_tap(sandbox.config(), args=LIST)

    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == [849, 850]
    assert sandbox.stats()["api_requests"] == 3
    assert "Retrying" in done.stderr


def test_refused_credentials_are_one_line_and_exit_1_without_a_list(sandbox):
    done = run_tap(sandbox.config(client_secret="not-the-secret"), args=LIST)

    assert done.returncode == 1
    assert done.stdout == ""
    (error,) = done.error_lines()
    assert "401" in error and "client_id and client_secret" in error
    assert "not-the-secret" not in done.stderr


def test_a_server_echoing_the_secret_never_gets_it_into_the_output(sandbox):
    sandbox.update(token_error_echo=True)
    done = run_tap(sandbox.config(), args=LIST)

    assert done.returncode == 1
    assert "client_secret=***" in done.stderr  # the answer is quoted, the secret masked
    assert DEMO_CLIENT_SECRET not in done.stderr + done.stdout


def test_a_spent_quota_fails_the_listing_and_says_how_to_do_without(sandbox):
    sandbox.update(quota_by_org={"849": 0})
    done = run_tap(sandbox.config(), args=LIST)

    assert done.returncode == 1
    assert done.stdout == ""
    (error,) = done.error_lines()
    assert "Could not list the organizations" in error
    assert "quota for organization 849 is spent" in error


ODDITIES = [
    {"id": True},
    {"id": False},
    {"id": 0},
    {"id": -1},
    {"id": 10**30},
    {"id": "x851"},
    7,
    {"id": {"id": 851}, "name": "an object as id"},
    {"id": [851], "name": "a list as id"},
    {"id": "850", "name": "Globex, its id as text"},  # as the settings take it: 850
]


def test_only_positive_integers_below_2_63_are_listed(sandbox):
    sandbox.update(listed_oddities=ODDITIES)
    done = run_tap(sandbox.config(), args=LIST)

    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == [849, 850]
    (line,) = [line for line in done.stderr.splitlines() if "without a valid id" in line]
    assert "9 listed organization(s) without a valid id" in line
    assert "True" in line and "-1" in line and "{'id': 851}" in line


def test_a_sync_of_all_organizations_skips_ids_that_cannot_be_organizations(sandbox):
    sandbox.update(listed_oddities=ODDITIES)
    run = run_tap(sandbox.config(all_organizations=True))

    assert run.returncode == 0, run.stderr[-2000:]
    organizations = {r["organization_id"] for r in run.records("contacts")}
    assert organizations == {849, 850}
    assert all(type(o) is int for o in organizations)
    assert "without a valid id" in run.stderr
    requested = set(sandbox.stats()["pages_served"])
    assert requested == {
        "0/organizations",
        "849/contacts",
        "850/contacts",
        "849/tasks",
        "850/tasks",
    }


def test_a_listed_organization_with_a_field_the_schema_lacks_is_read_like_any_other(sandbox):
    # The listing's answer is read twice (for the tap, and as the organizations stream):
    # a row with an unknown field must read the same both times.
    sandbox.update(listed_oddities=[{"id": 850, "name": "Globex", "region": {"eu": True}}])
    run = run_tap(sandbox.config(organization_id=849, all_organizations=True))

    assert run.returncode == 0, run.stderr[-2000:]
    assert {r["organization_id"] for r in run.records("contacts")} == {849, 850}
    assert "could not list" not in run.stderr


def test_a_listing_stopped_by_the_run_budget_is_a_pause_not_a_failure(sandbox):
    run = run_tap(sandbox.config(all_organizations=True, max_requests_per_run=1))

    assert run.returncode == 0, run.stderr[-2000:]
    assert "the organizations list waits for the next run" in run.stderr
    assert not run.error_lines()
