"""Deterministic, seeded Mokapen records, and the live datasets that change under the tap.

Records are generated from ``(seed, organization, id)`` on demand rather than kept in
memory, so a million-contact sandbox starts instantly and costs almost no RAM. Only
records that were changed, inserted or deleted after start are stored.

``ENTITIES`` is the one list of organization-scoped entities: the routes, required
scopes, default scopes, record counts and admin calls are all derived from it, so a
new entity is one line there, e.g.
``"companies": Entity(make_generic({"name": "Company {id}", "tier": ["a", "b", None]}))``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import typing as t
import zlib

EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
SPAN_SECONDS = 600 * 86400

FIRST_NAMES = [
    "Anna",
    "Luca",
    "Zoë",
    "José",
    "Łukasz",
    "Søren",
    "Chloé",
    "Małgorzata",
    "Jürgen",
    "Giulia",
    "O'Brien",
    "Ærin",
    "Νίκος",
    "Дмитрий",
    "美咲",
    "Ahmed",
    "Siobhán",
    "Ngozi",
]
SURNAMES = [
    "Rossi",
    "Bianchi",
    "Müller",
    "Nørgaard",
    "García-López",
    "Kowalski",
    "Dupont",
    "Ferreira",
    "van der Berg",
    "Smith-Jones",
    "Papadopoulos",
    "Иванов",
    "山田",
    "Ó Briain",
]
CONTACT_TYPES = ["customer", "supplier", "partner", "lead", "other"]
ROLES = ["CEO", "CFO", "Buyer", "Engineer", "Sales", "Support", None]
COMPANIES = ["Acme S.r.l.", "Globex GmbH", "Initech SpA", "Umbrella Ltd", "Café Ütopia", None]
VISIBILITY = ["public", "private", "team"]
TASK_STATUSES = ["open", "in_progress", "waiting", "done", "cancelled"]
PRIORITIES = ["low", "normal", "high", "urgent"]
LONG_TEXT = "Lorem ipsum dolor sit amet, ☕ consectetur — adipiscing «elit» 🚀. " * 60

TimestampStyle = t.Literal["iso", "plain", "mixed"]


def _mix(*parts: int) -> int:
    """A cheap, well-spread 64-bit hash: the sandbox's only source of randomness."""
    value = 0x9E3779B97F4A7C15
    for part in parts:
        value ^= part & 0xFFFFFFFFFFFFFFFF
        value = (value * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        value ^= value >> 31
    return value


def format_timestamp(moment: dt.datetime, style: TimestampStyle, salt: int) -> str:
    """Render a UTC timestamp the way Mokapen may: ISO with micros and Z, or zone-less."""
    if style == "mixed":
        style = "iso" if salt % 2 else "plain"
    if style == "iso":
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _pick(pool: list, h: int, shift: int) -> t.Any:
    return pool[(h >> shift) % len(pool)]


def _maybe(value: t.Any, h: int, shift: int, one_in: int = 7) -> t.Any:
    """Null out a field for about one record in ``one_in``, as real CRMs do."""
    return None if (h >> shift) % one_in == 0 else value


def seeded_times(seed: int, org: int, record_id: int) -> tuple[dt.datetime, dt.datetime]:
    h = _mix(seed, org, record_id, 1)
    created = EPOCH + dt.timedelta(seconds=h % SPAN_SECONDS)
    updated = created + dt.timedelta(seconds=(h >> 20) % (90 * 86400))
    return created, updated


def make_contact(seed: int, org: int, record_id: int) -> dict[str, t.Any]:
    h = _mix(seed, org, record_id)
    name, surname = _pick(FIRST_NAMES, h, 3), _pick(SURNAMES, h, 9)
    slug = f"{record_id}.{org}"
    company = _pick(COMPANIES, h, 15)
    return {
        "id": record_id,
        "name": name,
        "surname": surname,
        "type": _pick(CONTACT_TYPES, h, 19),
        "role": _pick(ROLES, h, 22),
        "company_id": None if company is None else 1 + (h >> 25) % 500,
        "company_name": company,
        "description": LONG_TEXT if h % 97 == 0 else _maybe(f"Contact note {slug} ✓", h, 28),
        "email": f"contact{slug}@example.com",
        "email_2": _maybe(f"alt{slug}@example.org", h, 31, 3),
        "email_3": None,
        "pec": _maybe(f"pec{slug}@pec.example.it", h, 34, 4),
        "phone": _maybe(f"+39 02 {h % 10_000_000:07d}", h, 37),
        "phone_2": _maybe(f"+39 333 {(h >> 8) % 10_000_000:07d}", h, 40, 3),
        "phone_3": None,
        "address": _maybe(f"Via Roma {1 + h % 200}, Milano", h, 43),
        "address_2": None,
        "address_3": None,
        "vat_number": _maybe(f"IT{h % 10**11:011d}", h, 46, 3),
        "fiscal_code": _maybe(f"FC{(h >> 4) % 10**14:014d}", h, 49, 3),
        "visibility": _pick(VISIBILITY, h, 52),
    }


def make_task(seed: int, org: int, record_id: int) -> dict[str, t.Any]:
    h = _mix(seed, org, record_id, 7)
    start = EPOCH + dt.timedelta(days=h % 600)
    status = _pick(TASK_STATUSES, h, 11)
    return {
        "id": record_id,
        "title": f"Task {record_id}: follow up «{_pick(SURNAMES, h, 5)}»",
        "description": LONG_TEXT if h % 89 == 0 else _maybe(f"Details for task {record_id}", h, 17),
        "status": status,
        "priority": _pick(PRIORITIES, h, 21),
        "start_date": start.date().isoformat(),
        "due_date": _maybe((start + dt.timedelta(days=(h >> 24) % 30)).date().isoformat(), h, 29),
        "completed_at": "__completed__" if status == "done" else None,
        "assignee_id": _maybe(1 + (h >> 33) % 40, h, 38),
        "contact_id": _maybe(1 + (h >> 41) % 5000, h, 44, 3),
        "company_id": _maybe(1 + (h >> 47) % 500, h, 50, 3),
        "project_id": _maybe(1 + (h >> 53) % 60, h, 56, 2),
    }


Maker = t.Callable[[int, int, int], dict[str, t.Any]]
# Picks (start, end, more_beyond) from a dataset's ids, which stay ascending in list
# order: 1..count at first, deletions keep the order, insertions append larger ids.
Window = t.Callable[[list[int]], tuple[int, int, bool]]
# What make_generic accepts for one field: choices (None among them makes it nullable),
# an int range, or a format string with {id}, {org} and {n} (a seeded 0-999999 number).
FieldSpec = list[t.Any] | tuple[t.Any, ...] | range | str
# Dataset adds these itself; a generic field of the same name would be overwritten.
RESERVED_FIELDS = frozenset({"id", "created_at", "updated_at"})


def make_generic(fields: t.Mapping[str, FieldSpec], *, salt: str = "") -> Maker:
    """A record maker for an entity that needs nothing bespoke, from a spec per field.

    Each field draws from its own hash of (seed, org, id, field name), so adding or
    reordering fields never changes the values of the others. The field's salt comes
    from crc32, not hash(): str hashes differ between processes, and the tests compare
    records across the sandbox process and themselves. ``salt`` sets apart two entities
    that share field names.
    """
    reserved = sorted(RESERVED_FIELDS & set(fields))
    if reserved:
        msg = f"make_generic: {', '.join(reserved)} are set by the sandbox itself"
        raise ValueError(msg)
    specs: list[tuple[str, int, FieldSpec]] = []
    for name, spec in fields.items():
        if not isinstance(spec, list | tuple | range | str) or (
            not isinstance(spec, str) and len(spec) == 0
        ):
            msg = f"make_generic: field {name!r} needs choices, a range or a format string"
            raise TypeError(msg)
        specs.append((name, zlib.crc32(f"{salt}/{name}".encode()), spec))

    def make(seed: int, org: int, record_id: int) -> dict[str, t.Any]:
        record: dict[str, t.Any] = {"id": record_id}
        for name, field_salt, spec in specs:
            h = _mix(seed, org, record_id, field_salt)
            if isinstance(spec, str):
                record[name] = spec.format(id=record_id, org=org, n=h % 1_000_000)
            else:
                record[name] = spec[h % len(spec)]
        return record

    return make


@dataclasses.dataclass(frozen=True)
class Entity:
    """An organization-scoped entity, served at ``GET /api/v1/{org}/<name>``.

    Reading it needs the scope ``<name>.read``; ``default_count`` records are made per
    organization unless the settings ask for another number.
    """

    make: Maker
    default_count: int = 100


# contacts and tasks keep bespoke makers: the tests pin their exact seeded output.
ENTITIES: dict[str, Entity] = {
    "contacts": Entity(make_contact, default_count=500),
    "tasks": Entity(make_task, default_count=200),
    # Not documented by Mokapen; served so that the tap's packaged streams (off by
    # default) and its extra_streams setting have something to read.
    "companies": Entity(
        make_generic(
            {
                "name": "Company {id}",
                "industry": ["retail", "software", "manufacturing", None],
                "vat_number": "IT{n}",
                "owner_id": range(1, 40),
            }
        ),
        default_count=60,
    ),
    "projects": Entity(
        make_generic(
            {
                "name": "Project {id}",
                "status": ["open", "on_hold", "closed"],
                "company_id": range(1, 60),
            },
            salt="projects",
        ),
        default_count=30,
    ),
}


def required_scope(kind: str) -> str:
    return f"{kind}.read"


class Dataset:
    """One organization's records of one kind, in the (unsorted) order the API pages them.

    Thread-safe: the server's handler threads read pages while tests mutate records.
    """

    def __init__(self, kind: str, seed: int, org: int, count: int, make: Maker) -> None:
        self.kind = kind
        self._make = make
        self.seed = seed
        self.org = org
        self._ids: list[int] = list(range(1, count + 1))
        self._changed: dict[int, dict[str, t.Any]] = {}
        self._next_id = count + 1
        self._mutations = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._ids)

    def _record(self, record_id: int) -> dict[str, t.Any]:
        changed = self._changed.get(record_id)
        if changed is not None:
            return dict(changed)
        record = self._make(self.seed, self.org, record_id)
        created, updated = seeded_times(self.seed, self.org, record_id)
        record["created_at"], record["updated_at"] = created, updated
        if record.get("completed_at") == "__completed__":
            record["completed_at"] = updated
        return record

    def page(self, offset: int, limit: int) -> tuple[list[dict[str, t.Any]], int]:
        """Records at positions [offset, offset+limit) and the total at that moment."""
        with self._lock:
            ids = self._ids[offset : offset + limit]
            return [self._record(i) for i in ids], len(self._ids)

    def select(self, window: Window) -> tuple[list[dict[str, t.Any]], bool]:
        """The records at the positions ``window`` picks from the ids (cursor pages), read
        under one lock so a concurrent drift cannot slip in between."""
        with self._lock:
            start, end, more = window(self._ids)
            return [self._record(i) for i in self._ids[start:end]], more

    def ids(self) -> list[int]:
        with self._lock:
            return list(self._ids)

    def get(self, record_id: int) -> dict[str, t.Any] | None:
        """One record by its id (the show route), or None when there is no such record."""
        with self._lock:
            return self._record(record_id) if record_id in self._ids else None

    def all_records(self) -> list[dict[str, t.Any]]:
        with self._lock:
            return [self._record(i) for i in self._ids]

    def mutate(
        self, *, update: int = 0, delete: int = 0, insert: int = 0, to_front: bool = False
    ) -> dict[str, list[int]]:
        """Change records the way users do between two page requests.

        Deleted and updated records are picked spread over the whole dataset, so
        deletions land on pages the tap has already read and shift the rest forward.
        ``to_front``: an updated record moves to the front of the list, as in a list
        ordered by most recently updated.
        """
        now = dt.datetime.now(dt.UTC)
        done: dict[str, list[int]] = {"updated": [], "deleted": [], "inserted": []}
        with self._lock:
            for _ in range(delete):
                if not self._ids:
                    break
                self._mutations += 1
                position = _mix(self.seed, self._mutations, 3) % len(self._ids)
                record_id = self._ids.pop(position)
                self._changed.pop(record_id, None)
                done["deleted"].append(record_id)
            for _ in range(update):
                if not self._ids:
                    break
                self._mutations += 1
                record_id = self._ids[_mix(self.seed, self._mutations, 5) % len(self._ids)]
                record = self._record(record_id)
                record["updated_at"] = now
                # A visible edit where the entity has a description (contacts and tasks
                # always do); elsewhere the new updated_at alone marks the change.
                if "description" in record:
                    record["description"] = (
                        f"Edited at {now.isoformat()} (change {self._mutations})"
                    )
                self._changed[record_id] = record
                done["updated"].append(record_id)
                if to_front:
                    self._ids.remove(record_id)
                    self._ids.insert(0, record_id)
            for _ in range(insert):
                record_id = self._next_id
                self._next_id += 1
                record = self._make(self.seed, self.org, record_id)
                record["created_at"] = record["updated_at"] = now
                if record.get("completed_at") == "__completed__":
                    record["completed_at"] = now
                self._changed[record_id] = record
                self._ids.append(record_id)
                done["inserted"].append(record_id)
        return done
