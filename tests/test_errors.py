"""Bad settings, refused credentials and API errors: one clear line, never a secret."""

from __future__ import annotations

import pytest

from mokapen_sandbox import DEMO_CLIENT_SECRET, DEMO_ORGANIZATION_ID
from tap_mokapen.errors import AuthenticationError
from tap_mokapen.tap import TapMokapen
from tests.helpers import free_port, run_tap, selecting


def assert_no_secret(run, *secrets):
    for secret in (DEMO_CLIENT_SECRET, *secrets):
        assert secret not in run.stderr and secret not in run.stdout


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"client_id": None}, "client_id is required"),
        ({"client_secret": ""}, "client_secret is required"),
        (
            {"organization_id": "not an id!"},
            "organization_id must be a numeric organization id or an encrypted id",
        ),
        ({"organization_id": -3}, "organization_id must be a positive integer"),
        ({"page_size": -5}, "page_size must be a positive integer (got -5)"),
        ({"base_url": "http://mokapen.example.com"}, "base_url must use https unless"),
        ({"base_url": "ftp://x"}, "base_url must be an http(s) URL"),
        ({"start_date": "last tuesday"}, "start_date must be an ISO 8601 date-time"),
        ({"max_requests_per_run": 0}, "max_requests_per_run must be a positive integer"),
        # Versions are the tap's alone (detect_deletions).
        ({"emit_activate_version_messages": True}, "emit_activate_version_messages is not"),
        ({"emit_activate_version_messages": "true"}, "use detect_deletions, whose versions"),
    ],
)
def test_bad_setting_is_rejected_before_any_request(sandbox, overrides, expected):
    config = {k: v for k, v in sandbox.config(**overrides).items() if v is not None}
    run = run_tap(config)

    assert run.returncode == 1
    assert expected in run.stderr
    assert not run.messages
    assert sandbox.stats().get("token_requests", 0) == 0
    assert_no_secret(run)


def test_every_problem_is_listed_in_one_line(sandbox):
    config = sandbox.config(page_size=-1, start_date="nope", base_url="http://example.com")
    del config["client_id"]
    run = run_tap(config)

    (line,) = [line for line in run.error_lines() if "Invalid tap-mokapen settings" in line]
    for problem in ("client_id is required", "page_size", "start_date", "base_url"):
        assert problem in line


def test_numeric_string_and_encrypted_organization_ids_work(sandbox):
    assert run_tap(sandbox.config(organization_id="849")).returncode == 0
    encrypted = f"enc_{849 * 7919:x}"
    run = run_tap(sandbox.config(organization_id=encrypted))
    assert run.returncode == 0, run.stderr
    assert len(run.records("contacts")) == 500


def test_wrong_client_secret_is_a_clear_authentication_error(sandbox):
    run = run_tap(sandbox.config(client_secret="wrong-secret-value"))
    assert run.returncode == 1
    assert "Check client_id and client_secret" in run.stderr
    assert "Traceback" not in run.stderr
    assert_no_secret(run, "wrong-secret-value")


def test_scope_not_enabled_for_the_app_names_the_scope_setting(sandbox):
    run = run_tap(sandbox.config(scope="contacts.read admin.everything"))
    assert run.returncode == 1
    assert "admin.everything" in run.stderr and "scope setting" in run.stderr


def test_missing_scope_names_the_scope_and_the_stream(sandbox):
    run = run_tap(sandbox.config(scope="contacts.read"))
    assert run.returncode == 1
    line = next(line for line in run.error_lines() if "403" in line)
    assert "/api/v1/849/tasks" in line and "tasks.read" in line and "scope setting" in line
    # Contacts were synced before tasks failed, with their state.
    assert len(run.records("contacts")) == 500


def test_revoked_token_gets_one_fresh_token_and_the_run_completes(sandbox):
    sandbox.reset(faults=[{"at": 3, "kind": "revoke"}])
    run = run_tap(sandbox.config(page_size=100))

    assert run.returncode == 0, run.stderr
    assert len(set(run.ids("contacts"))) == 500 and len(run.records("tasks")) == 200
    assert sandbox.stats()["tokens_issued"] == 2


def test_expired_token_is_replaced(sandbox):
    sandbox.reset(faults=[{"at": 2, "kind": "expire"}])
    run = run_tap(sandbox.config(page_size=100))
    assert run.returncode == 0, run.stderr
    assert len(set(run.ids("contacts"))) == 500


def test_a_second_401_ends_the_run_with_an_authentication_error(sandbox):
    sandbox.reset(faults=[{"at": 2, "kind": "revoke", "times": 2}])
    run = run_tap(sandbox.config(page_size=100))

    assert run.returncode == 1
    assert "A fresh token was refused too" in run.stderr
    assert "401 from GET /api/v1/849/contacts: Invalid Token" in run.stderr
    assert sandbox.stats()["tokens_issued"] == 2
    # The page read before the 401 was emitted.
    assert len(run.records("contacts")) == 100


def test_each_tap_instance_has_its_own_token_and_credentials(sandbox):
    good = TapMokapen(config=sandbox.config())
    assert sum(1 for _ in good.streams["organizations"].get_records(None)) == 2
    bad = TapMokapen(config=sandbox.config(client_secret="another-wrong-secret"))
    org = DEMO_ORGANIZATION_ID
    assert bad.organizations.authenticator(org) is not good.organizations.authenticator(org)
    # The refusal ends that stream (and the organization's others), not the process.
    assert list(bad.streams["organizations"].get_records(None)) == []
    assert isinstance(bad.organizations.refused[org], AuthenticationError)
    # The organization failed, not the stream: reported once, as the organization's.
    assert bad.run.report.failures == []
    assert "Client authentication failed" in bad.run.report.organization_failures[org]
    assert bad.run.report.stopped[org] == ["organizations"]
    assert good.streams["contacts"].authenticator is good.streams["tasks"].authenticator


def test_about_hides_the_secret_and_lists_settings():
    run = run_tap({}, args=["--about", "--format=json"])
    assert run.returncode == 0
    assert '"client_secret"' in run.stdout and DEMO_CLIENT_SECRET not in run.stdout


def test_fractional_seconds_settings_are_accepted(sandbox):
    # JSON numbers with a fraction reach the tap as Decimal.
    run = run_tap(sandbox.config(rate_limit_window_seconds=2.5, max_wait_seconds=30.5))
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"base_url": "http://127.0.0.1:99999"}, "base_url has a port that is not a port"),
        ({"base_url": "http://127.0.0.1:8765\n"}, "base_url must not contain spaces"),
        ({"base_url": "http://127.0.0.1:8765/api/v1"}, "base_url must be the site root"),
        ({"base_url": "http://127.0.0.1:8765/#x"}, "without credentials, query or fragment"),
        ({"refresh_token_store": 123}, "refresh_token_store must be a file path"),
        ({"user_agent": "tap\r\nX-Evil: 1"}, "user_agent must be one line"),
    ],
)
def test_more_bad_settings_are_one_line_errors(sandbox, overrides, expected):
    run = run_tap(sandbox.config(**overrides))
    assert run.returncode == 1
    assert expected in run.stderr and "Traceback" not in run.stderr
    assert sandbox.stats().get("requests", 0) == 0


def test_a_missing_or_broken_config_file_is_one_line(tmp_path):
    broken = tmp_path / "config.json"
    broken.write_text('{"client_id": ')
    for path, expected in ((tmp_path / "nope.json", "does not exist"), (broken, "not valid JSON")):
        done = run_tap(None, catalog=None, args=["--config", str(path)])
        assert done.returncode == 1
        assert expected in done.stderr and "Traceback" not in done.stderr
        assert len(done.error_lines()) == 1, done.stderr


def test_numbers_from_the_environment_are_numbers(sandbox):
    env = {
        f"TAP_MOKAPEN_{k.upper()}": str(v)
        for k, v in sandbox.config(max_wait_seconds=30, rate_limit_window_seconds=60).items()
    }
    env["TAP_MOKAPEN_PROGRESS_LOG_SECONDS"] = "5"
    run = run_tap({}, args=["--config", "ENV"], env=env, catalog=None)
    assert run.returncode == 0, run.stderr
    assert len(run.records("contacts")) == 500


def test_streams_off_by_default_selected_by_a_wildcard_are_left_out_without_asking(sandbox):
    """Meltano selects every stream ("*.*") unless told otherwise; an app set up as the
    README says holds contacts.read and tasks.read only. The run is not a failure, asks
    for no scope the app lacks (one token request), and writes no SCHEMA (no empty
    tables) for the streams it leaves out, which one line names."""
    sandbox.update(enabled_scopes=["contacts.read", "tasks.read"])
    everything = selecting("contacts", "tasks", "organizations", "companies", "projects")
    run = run_tap(sandbox.config(), catalog=everything)

    assert run.returncode == 0, run.stderr[-2000:]
    told = [line for line in run.stderr.splitlines() if "companies" in line and "INFO" not in line]
    (line,) = told
    assert "WARNING" in line and "Leaving out 'companies' and 'projects': off by default" in line
    assert 'set scope to "contacts.read tasks.read companies.read projects.read"' in line
    assert "fail" not in line
    assert sandbox.stats()["token_requests"] == 1
    assert {"companies", "projects"}.isdisjoint(run.schemas())
    assert len(run.records("contacts")) == 500


def test_a_stream_off_by_default_is_read_when_the_scope_setting_names_its_scope(sandbox):
    catalog = selecting("contacts", "companies")
    run = run_tap(sandbox.config(scope="contacts.read companies.read"), catalog=catalog)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Leaving out" not in run.stderr
    assert run.records("companies")


def test_a_catalog_selecting_only_streams_left_out_is_one_line(sandbox):
    run = run_tap(sandbox.config(), catalog=selecting("companies"))
    assert run.returncode == 1
    (line,) = run.error_lines()
    assert "the catalog selects only 'companies', off by default" in line
    assert sandbox.stats().get("requests", 0) == 0


def test_a_catalog_selecting_no_stream_is_one_line_naming_the_streams(sandbox):
    """`meltano select` with a typo (or `--rm` of the last rule) selects nothing: a green
    run that extracted nothing would look done."""
    run = run_tap(sandbox.config(), catalog=selecting())
    assert run.returncode == 1
    (line,) = run.error_lines()
    assert "the catalog selects no stream (its streams: companies, contacts, organizations" in line
    assert sandbox.stats().get("requests", 0) == 0


def test_a_misspelled_setting_is_named_with_the_nearest_one(sandbox):
    config = sandbox.config(organization_id=None, organisation_id=849)
    run = run_tap(config)
    assert run.returncode == 1
    (line,) = [line for line in run.error_lines() if "Invalid tap-mokapen settings" in line]
    assert "'organisation_id' is not a setting (did you mean 'organization_id'?)" in line
    assert "organization_id (or organization_ids) is required" in line
    assert sandbox.stats().get("requests", 0) == 0


def test_no_settings_at_all_point_to_the_options():
    run = run_tap(None, catalog=None)
    assert run.returncode == 1
    assert "no settings were given: pass --config FILE" in run.stderr
    assert "tap-mokapen --help" in run.stderr


def test_a_catalog_selecting_a_stream_the_tap_lacks_is_one_line(sandbox):
    catalog = selecting("contacts")
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] == "contacts":
            entry["tap_stream_id"] = entry["stream"] = "contact"
    run = run_tap(sandbox.config(), catalog=catalog)
    assert run.returncode == 1
    (line,) = run.error_lines()
    assert "the catalog selects 'contact' (did you mean 'contacts'?)" in line
    assert sandbox.stats().get("requests", 0) == 0


def test_a_stream_map_for_a_stream_not_selected_is_one_line(sandbox):
    run = run_tap(sandbox.config(stream_maps={"tasks": {"x": "1"}}), catalog=selecting("contacts"))
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    (line,) = run.error_lines()
    assert "stream_maps: " in line and "'tasks'" in line


def test_the_last_line_of_a_failed_run_names_the_cause(sandbox):
    run = run_tap(sandbox.config(client_secret="not-the-secret"))
    assert run.returncode == 1
    last = run.error_lines()[-1]
    # The cause is the organization's, named once, before the streams it stopped.
    assert "Organization 849 failed: Mokapen rejected the token request" in last
    # Told once: the line as the failure happens does not repeat the cause.
    assert sum("Check client_id" in line for line in run.stderr.splitlines()) == 1
    assert last.count("Check client_id and client_secret") == 1
    assert last.index("Check client_id") < last.index("Streams it stopped: contacts")
    assert "stream(s) failed" not in last


def test_a_connection_failure_is_never_called_a_credential_failure(sandbox):
    url = f"http://127.0.0.1:{free_port()}"
    run = run_tap(sandbox.config(base_url=url))
    assert run.returncode == 1
    assert f"Cannot connect to {url}" in run.error_lines()[-1]
    assert "credentials were refused" not in run.stderr
    assert "no token could be had (the error above says why)" in run.stderr
    # Each retry says why in the tap's words, not urllib3's.
    retried = [line for line in run.stderr.splitlines() if "retrying in" in line]
    assert retried and all("connection refused" in line for line in retried)
    assert "HTTPConnectionPool" not in run.stderr and "Max retries" not in run.stderr


def test_a_host_that_does_not_resolve_is_named_as_such(sandbox):
    run = run_tap(sandbox.config(base_url="https://mokapen.invalid", max_wait_seconds=1))

    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert "https://mokapen.invalid" in last and "does not resolve" in last
    assert "ConnectionError" not in last and "refused" not in last


def test_a_start_date_past_the_calendars_end_is_one_line(sandbox):
    run = run_tap(sandbox.config(start_date="9999-12-31T23:59:59-01:00"))

    assert run.returncode == 1
    (error,) = run.error_lines()
    assert "start_date must be an ISO 8601 date-time" in error


@pytest.mark.parametrize(
    ("args", "catalog"),
    [([], "tested streams"), (["--discover"], None), (["--about"], None), (["--plan"], None)],
    ids=["sync", "discover", "about", "plan"],
)
@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (
            {"detect_deletions": ["contact"]},
            "detect_deletions names no stream: 'contact' (did you mean 'contacts'?)",
        ),
        (
            {"extra_streams": [{"name": "deals", "pth": "deals"}]},
            "extra_streams 'deals' has unknown keys: pth (did you mean 'path'?)",
        ),
        (
            {"removed_organizations": ["85O"]},
            "removed_organizations must list numeric organization ids such as [850] (got '85O')",
        ),
    ],
    ids=["detect_deletions", "extra_streams", "removed_organizations"],
)
def test_a_list_setting_given_wrong_is_one_line_on_every_path(
    sandbox, args, catalog, settings, expected
):
    """Under Meltano, discovery is the first path a setting meets: it gave a traceback."""
    run = run_tap(sandbox.config(**settings), catalog=catalog, args=args)
    assert run.returncode == 1
    (line,) = run.error_lines()
    assert expected in line
    assert "Traceback" not in run.stderr
    assert sandbox.stats().get("requests", 0) == 0


def test_discovery_needs_no_credential_yet():
    run = run_tap({"detect_deletions": ["contacts"]}, catalog=None, args=["--discover"])
    assert run.returncode == 0, run.stderr
    assert "contacts" in run.stdout


@pytest.mark.parametrize("given", ["849, 850", "849 850", [849, 850]])
def test_organization_id_given_several_points_at_organization_ids(sandbox, given):
    run = run_tap(sandbox.config(organization_id=given))
    assert run.returncode == 1
    (line,) = run.error_lines()
    assert "organization_id takes one organization" in line
    assert "use organization_ids, such as [849, 850]" in line


def test_removed_organizations_take_ids_as_decimal_text(sandbox):
    run = run_tap(sandbox.config(removed_organizations=["850"]))
    assert run.returncode == 0, run.stderr[-2000:]


def test_no_scope_enabled_for_any_stream_is_the_organizations_failure_told_once(sandbox):
    sandbox.update(enabled_scopes=[])
    run = run_tap(sandbox.config())
    assert run.returncode == 1
    last = run.error_lines()[-1]
    assert "Organization 849 failed:" in last and "Streams it stopped: contacts" in last
    assert sum("Organization 849 failed" in line for line in run.error_lines()) == 1
    assert sandbox.stats()["token_requests"] == 1
