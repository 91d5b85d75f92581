"""Every way Mokapen hands out access, and several organizations in one run."""

from __future__ import annotations

import collections
import json

import pytest

from mokapen_sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from tests.helpers import run_tap


def no_secret_in(run, *secrets):
    for secret in secrets:
        assert secret not in run.stdout and secret not in run.stderr


def config_without(sandbox, *names, **overrides):
    config = sandbox.config(**overrides)
    for name in names:
        config.pop(name, None)
    return config


def test_dashboard_token_is_used_as_it_is(sandbox):
    token = sandbox.dashboard_token()
    run = run_tap(config_without(sandbox, "client_id", "client_secret", access_token=token))

    assert run.returncode == 0, run.stderr
    assert len(run.records("contacts")) == 500
    assert sandbox.stats().get("token_requests", 0) == 0
    no_secret_in(run, token)


def test_revoked_dashboard_token_says_how_to_make_a_new_one(sandbox):
    token = sandbox.dashboard_token()
    sandbox.update(faults=[{"at": 2, "kind": "revoke"}])
    run = run_tap(config_without(sandbox, "client_id", "client_secret", access_token=token))

    assert run.returncode == 1
    assert "Generate Token" in run.stderr and "access_token setting" in run.stderr
    assert len(run.records("contacts")) == 100  # the page before the 401 was kept
    assert sandbox.stats().get("token_requests", 0) == 0
    no_secret_in(run, token)


def test_rotating_refresh_token_is_kept_for_the_next_run(sandbox, tmp_path):
    first_token = sandbox.refresh_token()
    store = tmp_path / "tokens.json"
    config = sandbox.config(refresh_token=first_token, refresh_token_store=str(store))

    first = run_tap(config)
    assert first.returncode == 0, first.stderr
    assert store.exists() and oct(store.stat().st_mode & 0o777) == "0o600"
    # The sandbox rotated the token: the configured one is dead, the stored one works.
    second = run_tap(config, state=first.final_state)
    assert second.returncode == 0, second.stderr
    third = run_tap(config, state=second.final_state)
    assert third.returncode == 0, third.stderr
    assert sandbox.stats()["token_requests"] == 3
    stored = json.loads(store.read_text())
    for run in (first, second, third):
        no_secret_in(
            run, first_token, *[e["refresh_token"] for e in stored.values()], *sandbox.tokens()
        )


def test_without_the_store_a_rotated_refresh_token_is_a_clear_error(sandbox, tmp_path):
    token = sandbox.refresh_token()
    assert (
        run_tap(
            sandbox.config(refresh_token=token, refresh_token_store=str(tmp_path / "a.json"))
        ).returncode
        == 0
    )
    lost = run_tap(
        sandbox.config(refresh_token=token, refresh_token_store=str(tmp_path / "b.json"))
    )
    assert lost.returncode == 1
    assert "authorize the app again" in lost.stderr
    no_secret_in(lost, token)


@pytest.mark.parametrize(
    ("overrides", "drop", "expected"),
    [
        ({"access_token": "x", "refresh_token": "y"}, (), "exclude each other"),
        ({"access_token": "x"}, (), "remove client_secret"),
        (
            {"refresh_token": "y"},
            ("client_secret",),
            "client_secret is required with refresh_token",
        ),
        ({}, ("client_id",), "client_id is required"),
        ({"organization_ids": [849, 850]}, (), "organization_id or organization_ids, not both"),
        (
            {"organization_ids": [849, 850], "refresh_token": "y"},
            ("organization_id",),
            "refresh_token is bound to one organization",
        ),
        ({"organization_ids": []}, ("organization_id",), "must be a non-empty list"),
    ],
)
def test_conflicting_or_incomplete_access_settings(sandbox, overrides, drop, expected):
    run = run_tap(config_without(sandbox, *drop, **overrides))
    assert run.returncode == 1
    assert expected in run.stderr
    assert sandbox.stats().get("requests", 0) == 0
    no_secret_in(run, DEMO_CLIENT_SECRET)


def test_two_organizations_in_one_run_with_their_own_tokens_and_bookmarks(sandbox):
    config = config_without(sandbox, "organization_id", organization_ids=[849, 850])
    run = run_tap(config)

    assert run.returncode == 0, run.stderr
    assert sandbox.stats()["tokens_issued"] == 2
    by_org = collections.defaultdict(set)
    for record in run.records("contacts"):
        by_org[record["organization_id"]].add(record["id"])
    for org in (849, 850):
        assert by_org[org] == {r["id"] for r in sandbox.records("contacts", org)}
    partitions = run.final_state["bookmarks"]["contacts"]["partitions"]
    assert sorted(p["context"]["organization_id"] for p in partitions) == [849, 850]
    marks = {p["context"]["organization_id"]: p["replication_key_value"] for p in partitions}
    for org in (849, 850):
        newest = max(
            r["updated_at"] for r in run.records("contacts") if r["organization_id"] == org
        )
        assert marks[org] == newest
    assert marks[849] != marks[850]
    schema = run.schemas()["contacts"]
    assert "organization_id" in schema["properties"]
    key = next(m for m in run.messages if m["type"] == "SCHEMA" and m["stream"] == "contacts")
    assert key["key_properties"] == ["organization_id", "id"]


def test_one_organization_out_of_quota_does_not_hold_back_the_other(sandbox):
    sandbox.update(quota_by_org={"850": 3})
    config = config_without(sandbox, "organization_id", organization_ids=[849, 850])
    first = run_tap(config)

    assert first.returncode == 0, first.stderr
    assert "Organization 850 paused (the others carry on)" in first.stderr
    org_849 = {r["id"] for r in first.records("contacts") if r["organization_id"] == 849}
    assert org_849 == {r["id"] for r in sandbox.records("contacts", 849)}
    assert len(first.records("tasks")) >= 200  # 849's tasks came after 850 paused

    sandbox.new_day()
    sandbox.update(quota_by_org={})
    second = run_tap(config, state=first.final_state)
    assert second.returncode == 0, second.stderr
    for stream in ("contacts", "tasks"):
        seen = {
            (r["organization_id"], r["id"]) for run in (first, second) for r in run.records(stream)
        }
        for org in (849, 850):
            assert {(org, r["id"]) for r in sandbox.records(stream, org)} <= seen


def test_all_organizations_lists_what_the_app_reaches(sandbox):
    run = run_tap(sandbox.config(all_organizations=True))
    assert run.returncode == 0, run.stderr
    assert {r["organization_id"] for r in run.records("contacts")} == {849, 850}
    assert sandbox.stats()["tokens_issued"] == 2


def test_client_credentials_stay_the_default(sandbox):
    run = run_tap(sandbox.config())
    assert run.returncode == 0
    assert sandbox.stats()["token_requests"] == 1
    assert DEMO_CLIENT_ID in json.dumps(sandbox.config())


def test_an_unwritable_store_stops_the_run_before_the_refresh_token_is_spent(sandbox, tmp_path):
    token = sandbox.refresh_token()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    run = run_tap(
        sandbox.config(refresh_token=token, refresh_token_store=str(blocker / "tokens.json"))
    )
    assert run.returncode == 1
    assert "cannot be written" in run.stderr and "the refresh token was not spent" in run.stderr
    assert sandbox.stats().get("token_requests", 0) == 0
    # The token is intact: with a store that works, the next run gets in.
    good = run_tap(
        sandbox.config(refresh_token=token, refresh_token_store=str(tmp_path / "tokens.json"))
    )
    assert good.returncode == 0, good.stderr
    no_secret_in(run, token)


def test_two_runs_sharing_a_store_both_get_in(sandbox, tmp_path):
    import subprocess
    import sys

    token = sandbox.refresh_token()
    config = tmp_path / "config.json"
    settings = sandbox.config(refresh_token=token, refresh_token_store=str(tmp_path / "t.json"))
    config.write_text(json.dumps(settings))
    command = [sys.executable, "-m", "tap_mokapen", "--config", str(config)]
    runs = [
        subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [(run.wait(120), run.stderr.read()) for run in runs if run.stderr]
    for code, stderr in results:
        assert code == 0, stderr
    assert sandbox.stats()["token_requests"] == 2  # each exchanged the newest token
