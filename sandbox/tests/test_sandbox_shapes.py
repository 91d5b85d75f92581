"""The sandbox plays every Laravel list shape, bad records and misbehaving paginators.

The tap's tests for those cases rely on these switches doing exactly what
docs/mokapen-api.md (part 3) says, so they are pinned here. One SandboxServer runs
in-process for the module (port 0), reset before each test; no subprocess.
"""

from __future__ import annotations

import base64
import json
import typing as t

import pytest
import requests

from mokapen_sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_ORGANIZATION_ID, cli, data
from mokapen_sandbox.breakage import BAD_KINDS, DEEP_NESTING_LEVELS
from mokapen_sandbox.data import Entity, make_generic
from mokapen_sandbox.server import SandboxServer
from mokapen_sandbox.settings import SandboxSettings
from mokapen_sandbox.shapes import LIST_SHAPES, PAGINATOR_FAULTS

ORG = DEMO_ORGANIZATION_ID
CONTACTS = f"/api/v1/{ORG}/contacts"
TASKS = f"/api/v1/{ORG}/tasks"
ORGANIZATIONS = "/api/v1/organizations"
PATHS = {"contacts": CONTACTS, "tasks": TASKS, "organizations": ORGANIZATIONS}
PAGED_SHAPES = ("length_aware", "simple", "cursor", "resource")
TIMESTAMPS = ("created_at", "updated_at", "completed_at")
LENGTH_AWARE_KEYS = [
    "current_page",
    "data",
    "first_page_url",
    "from",
    "last_page",
    "last_page_url",
    "next_page_url",
    "path",
    "per_page",
    "prev_page_url",
    "to",
    "total",
]


class Api:
    """The sandbox seen by a client: a token after every reset, and the admin calls."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()
        self.token = ""

    def reset(self, **settings: t.Any) -> None:
        answer = self.http.post(f"{self.url}/_sandbox/reset", json=settings, timeout=10)
        assert answer.status_code == 200, answer.text
        form = {
            "grant_type": "client_credentials",
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
            "organization_id": str(ORG),
            "scope": "contacts.read tasks.read",
        }
        answer = self.http.post(f"{self.url}/oauth/token", data=form, timeout=10)
        answer.raise_for_status()
        self.token = answer.json()["access_token"]

    def raw(self, path: str, **params: t.Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return self.http.get(f"{self.url}{path}", headers=headers, params=params, timeout=10)

    def get(self, path: str, **params: t.Any) -> t.Any:
        answer = self.raw(path, **params)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def admin(self, call: str, payload: dict[str, t.Any] | None = None, **params: t.Any) -> t.Any:
        if payload is None:
            answer = self.http.get(f"{self.url}/_sandbox/{call}", params=params, timeout=10)
        else:
            answer = self.http.post(f"{self.url}/_sandbox/{call}", json=payload, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def truth(self, stream: str = "contacts") -> list[dict[str, t.Any]]:
        if stream == "organizations":
            return [{"id": 849}, {"id": 850}]
        return self.admin("records", stream=stream, org=ORG)


@pytest.fixture(scope="module")
def server() -> t.Iterator[SandboxServer]:
    with SandboxServer(SandboxSettings()) as running:
        yield running


@pytest.fixture
def api(server: SandboxServer) -> t.Iterator[Api]:
    client = Api(server.url)
    client.reset()
    yield client
    client.reset()


def unwrap(body: t.Any, envelope: bool) -> t.Any:
    if envelope:
        assert body["status"] is True
        return body["data"]
    return body


def page_through(
    api: Api, shape: str, path: str, *, per_page: int = 10, envelope: bool = False
) -> tuple[list[dict[str, t.Any]], int]:
    """Every record of one list, read by the shape's own rules, and the requests it took."""
    url = f"{api.url}{path}"
    rows: list[dict[str, t.Any]] = []
    params: dict[str, t.Any] = {"per_page": per_page}
    if shape != "cursor":
        params["page"] = 1
    for made in range(1, 200):
        body = unwrap(api.get(path, **params), envelope)
        if shape == "array":
            return body, made
        if shape == "paged_array":  # nothing says where it ends but an empty page
            rows += body
            params["page"] += 1
            if not body:
                return rows, made
            continue
        rows += body["data"]
        if shape == "data_list":
            return rows, made
        if shape == "cursor":
            following = body["next_cursor"]
            expected_url = following and f"{url}?cursor={following}"
            assert body["next_page_url"] == expected_url
            params["cursor"] = following
        else:
            following = body["links"]["next"] if shape == "resource" else body["next_page_url"]
            params["page"] += 1
        if following is None:
            return rows, made
    raise AssertionError("paging never ended")


def intact(row: dict[str, t.Any]) -> dict[str, t.Any]:
    """A record without its timestamps (served and admin views format them differently)."""
    return {k: v for k, v in row.items() if k not in TIMESTAMPS}


# -- shapes ----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", LIST_SHAPES)
def test_each_shape_has_its_laravel_keys(api, shape):
    api.reset(contacts=25, list_shape=shape)
    body = api.get(CONTACTS, page=2, per_page=10)
    url = f"{api.url}{CONTACTS}"
    if shape == "length_aware":
        assert list(body) == LENGTH_AWARE_KEYS
        assert body["total"] == 25
    elif shape == "simple":
        assert list(body) == [
            *("current_page", "data", "first_page_url", "from", "next_page_url", "path"),
            *("per_page", "prev_page_url", "to"),
        ]
        assert (body["current_page"], body["from"], body["to"]) == (2, 11, 20)
        assert body["next_page_url"] == f"{url}?page=3"
        assert body["prev_page_url"] == f"{url}?page=1"
        # The last page knows nothing follows.
        assert api.get(CONTACTS, page=3, per_page=10)["next_page_url"] is None
    elif shape == "cursor":
        assert list(body) == [
            *("data", "path", "per_page", "next_cursor", "next_page_url"),
            *("prev_cursor", "prev_page_url"),
        ]
        # page is ignored: no cursor is the first page.
        assert [row["id"] for row in body["data"]] == list(range(1, 11))
        assert body["prev_cursor"] is None
        assert body["prev_page_url"] is None
        assert body["next_page_url"] == f"{url}?cursor={body['next_cursor']}"
        decoded = base64.urlsafe_b64decode(body["next_cursor"] + "==")
        assert json.loads(decoded)["id"] == 10
    elif shape == "resource":
        assert list(body) == ["data", "links", "meta"]
        assert list(body["links"]) == ["first", "last", "prev", "next"]
        assert body["meta"] == {
            "current_page": 2,
            "from": 11,
            "last_page": 3,
            "links": [],
            "path": url,
            "per_page": 10,
            "to": 20,
            "total": 25,
        }
        assert body["links"]["next"] == f"{url}?page=3"
    elif shape == "data_list":
        assert list(body) == ["data"]
        assert len(body["data"]) == 25
    elif shape == "paged_array":
        assert [row["id"] for row in body] == list(range(11, 21))  # page 2, nothing said
    else:
        assert isinstance(body, list)
        assert len(body) == 25


@pytest.mark.parametrize("envelope", [False, True], ids=["bare", "envelope"])
@pytest.mark.parametrize("stream", ["contacts", "tasks", "organizations"])
@pytest.mark.parametrize("shape", LIST_SHAPES)
def test_paging_by_each_shapes_rules_yields_every_record_once(api, shape, stream, envelope):
    api.reset(contacts=57, tasks=31, list_shape={stream: shape}, envelope=envelope)
    rows, made = page_through(api, shape, PATHS[stream], envelope=envelope)
    truth = api.truth(stream)
    assert [row["id"] for row in rows] == [row["id"] for row in truth]
    if stream != "organizations":
        assert [intact(row) for row in rows] == [intact(row) for row in truth]
        served = api.admin("stats")["pages_served"][f"{ORG}/{stream}"]
        assert served == made
    # A shape named for one list leaves the others length-aware.
    other = "tasks" if stream == "contacts" else "contacts"
    assert list(unwrap(api.get(PATHS[other]), envelope)) == LENGTH_AWARE_KEYS


@pytest.mark.parametrize("shape", ["data_list", "array"])
def test_unpaged_shapes_ignore_page_and_per_page(api, shape):
    api.reset(contacts=40, list_shape=shape)
    whole = api.get(CONTACTS)
    assert api.get(CONTACTS, page=3, per_page=5) == whole
    assert len(whole if shape == "array" else whole["data"]) == 40


def test_envelope_wraps_whatever_the_shape_gives(api):
    api.reset(contacts=3, list_shape="data_list", envelope=True)
    body = api.get(CONTACTS)
    assert list(body) == ["status", "data"]
    assert list(body["data"]) == ["data"]
    assert [row["id"] for row in body["data"]["data"]] == [1, 2, 3]
    api.reset(contacts=3, list_shape="array", envelope=True)
    body = api.get(CONTACTS)
    assert body["status"] is True
    assert [row["id"] for row in body["data"]] == [1, 2, 3]


def test_omit_switches_touch_only_the_length_aware_body(api):
    api.reset(contacts=25, list_shape={"contacts": "simple"}, omit_last_page=True)
    assert api.get(CONTACTS, per_page=10)["next_page_url"] is not None
    api.reset(contacts=25, list_shape="resource", omit_next_page_url=True, omit_last_page=True)
    body = api.get(CONTACTS, per_page=10)
    assert body["meta"]["total"] == 25
    assert body["links"]["next"] is not None


# -- cursor ----------------------------------------------------------------------------


def test_cursor_pages_do_not_shift_when_records_are_deleted(api):
    api.reset(contacts=60, list_shape="cursor")
    first = api.get(CONTACTS, per_page=10)
    seen = [row["id"] for row in first["data"]]
    changed = api.admin("mutate", {"stream": "contacts", "org": ORG, "delete": 15, "insert": 2})
    # Deletions among the records already read would push a page-number paginator's
    # next page forward past unread records; a cursor page must not move.
    assert any(record_id <= 10 for record_id in changed["deleted"])
    cursor = first["next_cursor"]
    second = None
    while cursor:
        page = api.get(CONTACTS, cursor=cursor, per_page=10)
        second = second or page
        seen += [row["id"] for row in page["data"]]
        cursor = page["next_cursor"]
    truth = [row["id"] for row in api.truth()]
    assert len(seen) == len(set(seen))
    assert seen[10:] == [record_id for record_id in truth if record_id > 10]
    assert changed["inserted"] == truth[-2:]

    # Back from the second page with its previous cursor: what is left of the first.
    assert second is not None
    back = api.get(CONTACTS, cursor=second["prev_cursor"], per_page=10)
    assert [row["id"] for row in back["data"]] == [i for i in truth if i <= 10][-10:]
    assert back["next_cursor"] is not None


def test_cursor_paging_survives_drift(api):
    api.reset(contacts=60, list_shape="cursor", drift={"delete": 2, "insert": 1})
    rows, made = page_through(api, "cursor", CONTACTS)
    seen = [row["id"] for row in rows]
    truth = [row["id"] for row in api.truth()]
    assert len(seen) == len(set(seen))
    assert set(truth) <= set(seen)
    assert max(truth) > 60  # the inserts were appended and read
    assert api.admin("stats")["pages_served"][f"{ORG}/contacts"] == made


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "abc",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(b'{"id": "7", "_pointsToNextItems": true}').decode(),
        base64.urlsafe_b64encode(b'{"id": true, "_pointsToNextItems": true}').decode(),
        base64.urlsafe_b64encode(b"[10]").decode(),
    ],
)
def test_a_garbage_cursor_is_a_400(api, cursor):
    api.reset(list_shape="cursor")
    answer = api.raw(CONTACTS, cursor=cursor)
    assert answer.status_code == 400
    assert answer.json()["message"] == "The cursor field is invalid."
    assert "cursor" in answer.json()["errors"]


# -- switches that must work with every paged shape ---------------------------------


def first_ids(body: t.Any) -> list[int]:
    return [row["id"] for row in body["data"]]


@pytest.mark.parametrize("shape", PAGED_SHAPES)
def test_page_size_switches_and_repeat_first_page_work_with_every_paged_shape(api, shape):
    api.reset(contacts=100, list_shape=shape, ignore_per_page=True)
    assert len(api.get(CONTACTS, per_page=50)["data"]) == 15
    api.reset(contacts=100, list_shape=shape, max_per_page=7)
    body = api.get(CONTACTS, per_page=50)
    assert len(body["data"]) == 7
    assert (body["meta"] if shape == "resource" else body)["per_page"] == 7

    api.reset(contacts=100, list_shape=shape, repeat_first_page=True)
    cursor = api.get(CONTACTS, per_page=10).get("next_cursor") or "garbage!"
    later = api.get(CONTACTS, page=3, cursor=cursor, per_page=10)
    assert first_ids(later) == list(range(1, 11))


@pytest.mark.parametrize("shape", PAGED_SHAPES)
def test_drift_faults_quota_and_throttle_work_with_every_paged_shape(api, shape):
    api.reset(contacts=30, list_shape=shape, drift={"delete": 1})
    page_through(api, shape, CONTACTS)
    assert len(api.truth()) == 28  # drift before the second and third page

    api.reset(list_shape=shape, faults=[{"at": 2, "kind": "503"}], daily_quota=2)
    assert api.raw(CONTACTS).status_code == 200
    assert api.raw(CONTACTS).status_code == 503
    assert api.raw(CONTACTS).status_code == 200
    quota = api.raw(CONTACTS)
    assert quota.status_code == 429
    assert quota.json()["message"] == "Quota exceeded"

    api.reset(list_shape=shape, rate_limit=1, rate_window=60)
    assert api.raw(CONTACTS).status_code == 429  # the token request used the one slot


# -- bad records -----------------------------------------------------------------------


def served_bytes(api: Api, path: str = CONTACTS) -> bytes:
    answer = api.raw(path, per_page=1000)
    assert answer.status_code == 200
    return answer.content


@pytest.mark.parametrize("stream", ["contacts", "tasks"])
@pytest.mark.parametrize(
    "kind", [k for k in BAD_KINDS if k not in ("invalid_utf8", "deep_nesting")]
)
def test_each_bad_kind_is_served_as_specified(api, kind, stream):
    api.reset(contacts=30, tasks=30, bad_records={"every": 7, "kinds": [kind]})
    served = json.loads(served_bytes(api, PATHS[stream]))["data"]
    truth = api.truth(stream)
    assert len(served) == len(truth) == 30
    for good, row in zip(truth, served, strict=True):
        record_id = good["id"]
        if record_id % 7:
            assert row["id"] == record_id
            assert intact(row) == intact(good)
            continue
        if kind == "missing_id":
            assert "id" not in row
        elif kind == "string_id":
            assert row["id"] == f"abc-{record_id}"
        elif kind == "bad_updated_at":
            assert row["updated_at"] == "not a date"
        elif kind == "int_updated_at":
            assert row["updated_at"] == 1700000000
        elif kind == "changed_type":
            assert row["company_id"] == f"C-{record_id}"
        elif kind == "object_name":
            name = "name" if stream == "contacts" else "title"
            assert row[name] == {"first": "x", "last": "y"}
    # The admin view stays the ground truth of the good data.
    assert all(type(row["id"]) is int for row in truth)
    assert all(isinstance(row["updated_at"], str) for row in truth)
    expected = [{"id": i, "kind": kind} for i in (7, 14, 21, 28)]
    assert api.admin("bad-records", stream=stream, org=ORG) == expected


def test_invalid_utf8_breaks_only_the_bytes_of_one_field(api):
    api.reset(contacts=12, bad_records={"every": 5, "kinds": ["invalid_utf8"]})
    body = served_bytes(api)
    assert body.count(b"\xff\xfe") == 2
    with pytest.raises(UnicodeDecodeError):
        json.loads(body.decode())
    rows = json.loads(body.decode(errors="replace"))["data"]
    truth = api.truth()
    for good, row in zip(truth, rows, strict=True):
        if good["id"] % 5 == 0:
            assert row["description"] == (good["description"] or "") + "\ufffd\ufffd"
            assert intact({**row, "description": None}) == intact({**good, "description": None})
        else:
            assert intact(row) == intact(good)


def test_deep_nesting_is_a_hundred_thousand_levels(api):
    api.reset(contacts=10, bad_records={"every": 10, "kinds": ["deep_nesting"]})
    body = served_bytes(api)
    deep = b"[" * DEEP_NESTING_LEVELS + b"]" * DEEP_NESTING_LEVELS
    assert DEEP_NESTING_LEVELS == 100_000
    assert body.count(b'"custom": ' + deep) == 1
    # Python's json cannot parse it (recursion); with the nesting cut short, the rest is
    # a valid page whose tenth record carries the field.
    rows = json.loads(body.replace(deep, b"[]"))["data"]
    assert [("custom" in row) for row in rows] == [False] * 9 + [True]


def test_kinds_take_turns_and_every_shape_serves_them(api):
    kinds = ["missing_id", "string_id", "object_name"]
    api.reset(contacts=45, list_shape="cursor", bad_records={"every": 10, "kinds": kinds})
    listed = api.admin("bad-records", stream="contacts")
    assert listed == [
        {"id": 10, "kind": "missing_id"},
        {"id": 20, "kind": "string_id"},
        {"id": 30, "kind": "object_name"},
        {"id": 40, "kind": "missing_id"},
    ]
    # The cursor comes from the record's own id, so a broken last record (id 10, 20,
    # ...) still leads to the next page.
    rows, _ = page_through(api, "cursor", CONTACTS)
    assert len(rows) == 45
    assert "id" not in rows[9]
    assert rows[19]["id"] == "abc-20"
    assert rows[29]["name"] == {"first": "x", "last": "y"}
    # Other organizations and streams, and inserted records, follow the same rule.
    assert len(api.admin("bad-records", stream="tasks", org=850)) == 20
    api.admin("mutate", {"stream": "contacts", "insert": 5})
    assert api.admin("bad-records", stream="contacts")[-1] == {"id": 50, "kind": "string_id"}
    assert api.http.get(f"{api.url}/_sandbox/bad-records?stream=nope").status_code == 404
    # Organizations are never broken.
    assert [row["id"] for row in api.get(ORGANIZATIONS)["data"]] == [849, 850]


def test_without_bad_records_nothing_is_listed(api):
    assert api.admin("bad-records", stream="contacts") == []


def test_text_and_name_fields_fall_back_on_entities_without_them(monkeypatch, server):
    monkeypatch.setitem(data.ENTITIES, "notes", Entity(make_generic({"title": "T{id}"}), 4))
    monkeypatch.setitem(data.ENTITIES, "pings", Entity(make_generic({"n": range(9)}), 4))
    client = Api(server.url)
    bad = {"every": 2, "kinds": ["invalid_utf8", "object_name"]}
    client.reset(bad_records=bad)
    try:
        dashboard = client.admin("dashboard-token", {"scopes": ["notes.read", "pings.read"]})
        client.token = dashboard["access_token"]
        notes = json.loads(served_bytes(client, f"/api/v1/{ORG}/notes").decode(errors="replace"))
        assert notes["data"][1]["title"] == "T2\ufffd\ufffd"
        assert notes["data"][3]["title"] == {"first": "x", "last": "y"}
        pings = json.loads(served_bytes(client, f"/api/v1/{ORG}/pings").decode(errors="replace"))
        assert pings["data"][1]["note"] == "\ufffd\ufffd"
        assert pings["data"][3]["name"] == {"first": "x", "last": "y"}
    finally:
        monkeypatch.undo()
        client.reset()


def test_extra_fields_bring_one_unknown_field_of_each_type(api):
    api.reset(contacts=5, extra_fields=True)
    for row in api.get(CONTACTS)["data"]:
        assert isinstance(row["custom_fields"], dict)
        assert isinstance(row["legacy_ref"], str)
        assert isinstance(row["tags"], list)
        assert all(isinstance(tag, str) for tag in row["tags"])
        assert type(row["score"]) is float


# -- paginator faults ------------------------------------------------------------------


def test_next_page_url_never_null(api):
    api.reset(contacts=25, paginator_fault="next_page_url_never_null")
    url = f"{api.url}{CONTACTS}"
    last = api.get(CONTACTS, page=3, per_page=10)
    assert len(last["data"]) == 5
    assert last["next_page_url"] == f"{url}?page=4"
    beyond = api.get(CONTACTS, page=4, per_page=10)
    assert list(beyond) == LENGTH_AWARE_KEYS
    assert beyond["data"] == []
    assert beyond["current_page"] == 4
    assert beyond["next_page_url"] == f"{url}?page=5"
    assert (beyond["last_page"], beyond["total"]) == (3, 25)


def test_huge_last_page(api):
    api.reset(contacts=25, paginator_fault="huge_last_page")
    first = api.get(CONTACTS, per_page=10)
    assert first["last_page"] == 1_000_000_000
    assert "total" not in first
    beyond = api.get(CONTACTS, page=4, per_page=10)
    assert beyond["data"] == []
    assert beyond["next_page_url"] == f"{api.url}{CONTACTS}?page=5"


def test_endless_empty_pages(api):
    api.reset(contacts=25, paginator_fault="endless_empty_pages")
    for page in (1, 3, 4, 9, 500):
        body = api.get(CONTACTS, page=page, per_page=10)
        assert body["last_page"] == page + 1
        assert body["current_page"] < body["last_page"]
        assert body["next_page_url"] == f"{api.url}{CONTACTS}?page={page + 1}"
        assert (body["data"] == []) is (page > 3)


def test_total_flapping(api):
    api.reset(contacts=120, paginator_fault="total_flapping")
    bodies = [api.get(CONTACTS, page=1, per_page=50) for _ in range(4)]
    assert [body["total"] for body in bodies] == [120, 70, 120, 70]
    assert all(body["data"] == bodies[0]["data"] for body in bodies)
    assert len(api.truth()) == 120  # nothing was deleted


@pytest.mark.parametrize("fault", PAGINATOR_FAULTS)
def test_paginator_faults_spare_the_organizations_list_and_other_shapes(api, fault):
    api.reset(contacts=25, paginator_fault=fault, list_shape={"tasks": "resource"})
    organizations = api.get(ORGANIZATIONS)
    assert (organizations["last_page"], organizations["total"]) == (1, 2)
    assert organizations["next_page_url"] is None
    for _ in range(2):
        meta = api.get(TASKS, per_page=100)["meta"]
        assert (meta["last_page"], meta["total"]) == (2, 200)


# -- switches are checked and listed ---------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"list_shape": "paged"}, "list_shape"),
        ({"list_shape": {"contacts": "cursor", "invoices": "simple"}}, "invoices"),
        ({"list_shape": {"tasks": "sideways"}}, "sideways"),
        ({"paginator_fault": "sometimes"}, "paginator_fault"),
        ({"bad_records": {"every": 3}}, "bad_records"),
        ({"bad_records": {"every": 0, "kinds": ["missing_id"]}}, "every"),
        ({"bad_records": {"every": 3, "kinds": []}}, "kinds"),
        ({"bad_records": {"every": 3, "kinds": ["missing_id", "haunted"]}}, "haunted"),
    ],
)
def test_unknown_values_are_refused_clearly(api, settings, named):
    for call in ("reset", "update"):
        answer = api.http.post(f"{api.url}/_sandbox/{call}", json=settings, timeout=10)
        assert answer.status_code == 400
        assert named in answer.json()["message"]
    # Nothing changed.
    assert list(api.get(CONTACTS)) == LENGTH_AWARE_KEYS


def test_update_switches_shape_keeping_data_and_tokens(api):
    api.reset(contacts=20)
    api.admin("mutate", {"stream": "contacts", "delete": 3})
    api.admin(
        "update", {"list_shape": "array", "bad_records": {"every": 4, "kinds": ["string_id"]}}
    )
    rows = api.get(CONTACTS)
    assert len(rows) == 17
    assert sum(isinstance(row["id"], str) for row in rows) == len(
        api.admin("bad-records", stream="contacts")
    )


def test_help_lists_the_new_switches(capsys):
    with pytest.raises(SystemExit):
        cli.parse_args(["--help"])
    out = capsys.readouterr().out
    for name in ("list_shape", "paginator_fault", "bad_records", "extra_fields"):
        assert f"  {name} " in out
    for value in (*LIST_SHAPES, *PAGINATOR_FAULTS, *BAD_KINDS, "tags", "score"):
        assert value in out
