"""The sandbox's entities are data: one registry line gives a new entity everything.

These tests run a SandboxServer in-process (port 0), not the session's subprocess, so
they can patch the registry first; each stays well under a second.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing as t

import pytest
import requests

from mokapen_sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_ORGANIZATION_ID, cli, data
from mokapen_sandbox.data import Dataset, Entity, make_contact, make_generic, make_task
from mokapen_sandbox.server import SandboxServer
from mokapen_sandbox.settings import SandboxSettings

GIZMO_FIELDS = {
    "name": "Gizmo {id} of {org}",
    "industry": ["retail", "software", "logistics", None],
    "employees": range(1, 5000),
    "vat_number": "IT{n:06d}",
}


@pytest.fixture
def gizmos(monkeypatch: pytest.MonkeyPatch) -> Entity:
    """The one line a new entity takes, added for this test only."""
    entity = Entity(make_generic(GIZMO_FIELDS), default_count=37)
    monkeypatch.setitem(data.ENTITIES, "gizmos", entity)
    return entity


@pytest.fixture
def server(gizmos: Entity) -> t.Iterator[SandboxServer]:
    with SandboxServer(SandboxSettings()) as running:
        yield running


def token(url: str, scope: str, org: int = DEMO_ORGANIZATION_ID) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
        "organization_id": str(org),
        "scope": scope,
    }
    answer = requests.post(f"{url}/oauth/token", data=form, timeout=10)
    answer.raise_for_status()
    return answer.json()["access_token"]


def get(url: str, path: str, access_token: str, **params: t.Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {access_token}"}
    return requests.get(f"{url}{path}", headers=headers, params=params, timeout=10)


def admin(url: str, call: str, payload: dict[str, t.Any] | None = None) -> requests.Response:
    if payload is None:
        return requests.get(f"{url}/_sandbox/{call}", timeout=10)
    return requests.post(f"{url}/_sandbox/{call}", json=payload, timeout=10)


def page_through(url: str, access_token: str, per_page: int = 10) -> list[dict[str, t.Any]]:
    path = f"/api/v1/{DEMO_ORGANIZATION_ID}/gizmos"
    rows, page = [], 1
    while True:
        answer = get(url, path, access_token, page=page, per_page=per_page)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        rows += body["data"]
        if body["next_page_url"] is None:
            return rows
        page += 1


def test_one_registry_line_serves_a_new_entity(server):
    url = server.url
    read = token(url, "gizmos.read")
    rows = page_through(url, read)
    assert [row["id"] for row in rows] == list(range(1, 38))
    first = rows[0]
    assert first["name"] == f"Gizmo 1 of {DEMO_ORGANIZATION_ID}"
    assert first["industry"] in GIZMO_FIELDS["industry"]
    assert 1 <= first["employees"] < 5000
    assert first["vat_number"].startswith("IT")
    assert {"created_at", "updated_at"} <= set(first)

    # The admin view of the same dataset: the same records, timestamps aside.
    truth = admin(url, f"records?stream=gizmos&org={DEMO_ORGANIZATION_ID}").json()
    assert [row["id"] for row in truth] == [row["id"] for row in rows]
    assert [row["name"] for row in truth] == [row["name"] for row in rows]

    # Every organization gets one, and the demo app is granted the new read scope.
    other = admin(url, "records?stream=gizmos&org=850").json()
    assert other[0]["name"] == "Gizmo 1 of 850"
    dashboard = admin(url, "dashboard-token", {}).json()["access_token"]
    assert get(url, f"/api/v1/{DEMO_ORGANIZATION_ID}/gizmos", dashboard).status_code == 200


def test_the_new_entity_needs_its_read_scope(server):
    contacts_only = token(server.url, "contacts.read")
    answer = get(server.url, f"/api/v1/{DEMO_ORGANIZATION_ID}/gizmos", contacts_only)
    assert answer.status_code == 403
    assert answer.json() == {"message": "Missing required scopes", "required": ["gizmos.read"]}
    # ...and the existing entities still answer as before.
    contacts = get(server.url, f"/api/v1/{DEMO_ORGANIZATION_ID}/contacts", contacts_only)
    assert contacts.status_code == 200
    assert contacts.json()["total"] == 500


def test_mutate_drift_and_counts_reach_the_new_entity(server):
    url = server.url
    changed = admin(
        url,
        "mutate",
        {"stream": "gizmos", "org": DEMO_ORGANIZATION_ID, "delete": 2, "insert": 1, "update": 1},
    ).json()
    assert len(changed["deleted"]) == 2
    assert changed["inserted"] == [38]
    truth = admin(url, "records?stream=gizmos").json()
    assert len(truth) == 36
    # An entity without a description is edited through updated_at alone.
    assert "description" not in truth[0]

    assert admin(url, "reset", {"counts": {"gizmos": 25}, "drift": {"delete": 1}}).ok
    read = token(url, "gizmos.read")
    path = f"/api/v1/{DEMO_ORGANIZATION_ID}/gizmos"
    assert get(url, path, read, page=1, per_page=10).json()["total"] == 25
    assert get(url, path, read, page=2, per_page=10).json()["total"] == 24

    # The dedicated switches are untouched by counts.
    assert admin(url, "reset", {"contacts": 1234, "tasks": 345}).ok
    both = token(url, "contacts.read tasks.read gizmos.read")
    org = DEMO_ORGANIZATION_ID
    totals = {
        kind: get(url, f"/api/v1/{org}/{kind}", both).json()["total"]
        for kind in ("contacts", "tasks", "gizmos")
    }
    assert totals == {"contacts": 1234, "tasks": 345, "gizmos": 37}


def test_bad_counts_and_unknown_streams_are_refused_clearly(server):
    unknown = admin(server.url, "reset", {"counts": {"invoices": 5}})
    assert unknown.status_code == 400
    assert "invoices" in unknown.json()["message"]
    own_switch = admin(server.url, "reset", {"counts": {"contacts": 5}})
    assert own_switch.status_code == 400
    assert admin(server.url, "records?stream=invoices").status_code == 404


def test_without_the_registry_line_there_is_no_such_route():
    with SandboxServer(SandboxSettings()) as running:
        read = token(running.url, "contacts.read")
        answer = get(running.url, f"/api/v1/{DEMO_ORGANIZATION_ID}/gizmos", read)
        assert answer.status_code == 404
        assert "gizmos.read" not in SandboxSettings().enabled_scopes


def test_generic_records_are_seeded_and_checked():
    make = make_generic(GIZMO_FIELDS)
    assert make(1, 849, 5) == make(1, 849, 5)
    assert [make(1, 849, i) for i in range(1, 50)] != [make(2, 849, i) for i in range(1, 50)]
    salted = make_generic(GIZMO_FIELDS, salt="suppliers")
    assert [make(1, 849, i) for i in range(1, 50)] != [salted(1, 849, i) for i in range(1, 50)]
    with pytest.raises(ValueError, match="id"):
        make_generic({"id": range(3)})
    with pytest.raises(TypeError, match="flag"):
        make_generic({"flag": True})
    with pytest.raises(TypeError, match="empty"):
        make_generic({"empty": []})


def test_contacts_and_tasks_are_byte_identical_to_before():
    # Pinned from the makers as they were before the registry: the tests and the
    # benchmark compare exact seeded records, so these must never drift.
    digest = hashlib.sha256()
    for kind, make in (("contacts", make_contact), ("tasks", make_task)):
        for seed, org in ((1, 849), (7, 850)):
            rows = Dataset(kind, seed, org, 300, make).all_records()
            digest.update(json.dumps(rows, default=str, ensure_ascii=False).encode())
    assert digest.hexdigest() == "ebb4ccd12387819e6129fc8fff8bb52328c8cca21f93e530a65d845be01dd77b"


def test_help_lists_every_switch(capsys, gizmos):
    with pytest.raises(SystemExit):
        cli.parse_args(["--help"])
    out = capsys.readouterr().out
    listed = {line.split()[0] for line in out.splitlines() if line.startswith("  ")}
    for switch in dataclasses.fields(SandboxSettings):
        assert switch.name in listed, f"{switch.name} missing from mokapen-sandbox --help"
        assert switch.metadata["meaning"] in out.replace("\n", " ")
    assert "gizmos" in out.splitlines()[-1]


def test_records_flag(gizmos, capsys):
    args = cli.parse_args(["--records", "gizmos=12", "--contacts", "3"])
    assert dict(args.records) == {"gizmos": 12}
    assert args.contacts == 3
    assert args.tasks == 200
    for wrong in ("gizmos", "invoices=3", "contacts=3", "gizmos=x"):
        with pytest.raises(SystemExit):
            cli.parse_args(["--records", wrong])
    assert "--contacts 3" in capsys.readouterr().err


@pytest.mark.parametrize("verbose", [True, False])
def test_verbose_logs_every_request_and_quiet_logs_none(capsys, verbose):
    with SandboxServer(SandboxSettings(), verbose=verbose) as running:
        requests.get(f"{running.url}/api/v1/organizations", timeout=10)
    logged = capsys.readouterr().err
    assert ('"GET /api/v1/organizations HTTP/1.1" 401' in logged) is verbose
