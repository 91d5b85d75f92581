"""Deterministic, seeded Mokapen records, and the live datasets that change under the tap.

Records are generated from ``(seed, organization, id)`` on demand rather than kept in
memory, so a million-contact sandbox starts instantly and costs almost no RAM. Only
records that were changed, inserted or deleted after start are stored.
"""

from __future__ import annotations

import datetime as dt
import threading
import typing as t

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


MAKERS: dict[str, t.Callable[[int, int, int], dict[str, t.Any]]] = {
    "contacts": make_contact,
    "tasks": make_task,
}


class Dataset:
    """One organization's records of one kind, in the (unsorted) order the API pages them.

    Thread-safe: the server's handler threads read pages while tests mutate records.
    """

    def __init__(self, kind: str, seed: int, org: int, count: int) -> None:
        self.kind = kind
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
        record = MAKERS[self.kind](self.seed, self.org, record_id)
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

    def all_records(self) -> list[dict[str, t.Any]]:
        with self._lock:
            return [self._record(i) for i in self._ids]

    def mutate(self, *, update: int = 0, delete: int = 0, insert: int = 0) -> dict[str, list[int]]:
        """Change records the way users do between two page requests.

        Deleted and updated records are picked spread over the whole dataset, so
        deletions land on pages the tap has already read and shift the rest forward.
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
                record["description"] = f"Edited at {now.isoformat()} (change {self._mutations})"
                self._changed[record_id] = record
                done["updated"].append(record_id)
            for _ in range(insert):
                record_id = self._next_id
                self._next_id += 1
                record = MAKERS[self.kind](self.seed, self.org, record_id)
                record["created_at"] = record["updated_at"] = now
                if record.get("completed_at") == "__completed__":
                    record["completed_at"] = now
                self._changed[record_id] = record
                self._ids.append(record_id)
                done["inserted"].append(record_id)
        return done
