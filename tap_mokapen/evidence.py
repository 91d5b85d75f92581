"""What a pass saw, by identity rather than by position: the ids it read, the ids it
read twice, and a small random sample of them to ask Mokapen about later.

Positions and counts can all agree while a list loses records (an order that changes
between requests, a list cut short whose total is cut too). Ids cannot: a pass knows
which records it saw. ``SeenIds`` counts them within a run, exactly. ``IdSample`` is
a fixed-size random sample of a pass's distinct ids (a bottom-k sketch: the ids with
the smallest salted hash), small and the same size whatever the list's size, so that
STATE stays small: SAMPLE_SIZE ids, written as text of about 4 bytes an id (about
0.4 KB per organization and stream; 1,000 organizations with two streams, 0.8 MB).
The same id always hashes the same, so a sample built over several runs of a pass,
or read twice, is still a uniform sample of its distinct ids.
"""

from __future__ import annotations

import hashlib
import heapq
import secrets
import typing as t

#: Ids kept in a sample: a pass that misses 5% of a list misses a sampled id with
#: probability 1 - 0.95^100 = 99.4%; a list no larger than this is sampled whole.
SAMPLE_SIZE = 100
#: The most ids written in any one list of ids in STATE (a bound on hostile files too).
MAX_KEPT_IDS = SAMPLE_SIZE
#: Record ids are positive integers below 2**63 (BIGINT).
LARGEST_ID = 2**63 - 1


def record_id(record: t.Any) -> int | None:
    """A record's id when it is one the tap can ask about: a positive integer."""
    found = record.get("id") if isinstance(record, dict) else getattr(record, "id", None)
    if isinstance(found, int) and not isinstance(found, bool) and 0 < found <= LARGEST_ID:
        return found
    return None


def encode_ids(ids: t.Iterable[int]) -> str:
    """Ids as compact text for STATE: sorted, each the difference from the one before, in
    base 36, joined by dots ("1.a.2s" is 1, 11, 111)."""
    text, previous = [], 0
    for value in sorted(set(ids)):
        text.append(_base36(value - previous))
        previous = value
    return ".".join(text)


def decode_ids(text: t.Any, limit: int = MAX_KEPT_IDS) -> list[int]:
    """The ids of ``encode_ids``; nothing for text that is not such (a hostile STATE)."""
    if not isinstance(text, str) or not text:
        return []
    ids, total = [], 0
    for part in text.split(".")[:limit]:
        try:
            step = int(part, 36)
        except ValueError:
            return []
        total += step
        if step <= 0 or total > LARGEST_ID:
            return []
        ids.append(total)
    return ids


def _base36(value: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        value, rest = divmod(value, 36)
        out = digits[rest] + out
        if not value:
            return out


class SeenIds:
    """The ids one pass read in this run: each distinct id once, and how many records
    were ids it had already read."""

    def __init__(self) -> None:
        self.ids: set[int] = set()
        self.repeats = 0

    def add(self, ids: t.Iterable[int | None]) -> list[int]:
        """Count ``ids``; the ones read for the first time."""
        new = []
        for value in ids:
            if value is None:
                continue
            if value in self.ids:
                self.repeats += 1
            else:
                self.ids.add(value)
                new.append(value)
        return new


class IdSample:
    """A fixed-size uniform random sample of distinct ids (bottom-k of a salted hash)."""

    def __init__(self, salt: str, ids: t.Iterable[int] = (), size: int = SAMPLE_SIZE) -> None:
        self.salt = salt
        self.size = size
        self._heap: list[tuple[int, int]] = []  # (-hash, id): the largest hash on top
        self._members: set[int] = set()
        self.offer(ids)

    @classmethod
    def fresh(cls) -> IdSample:
        return cls(secrets.token_hex(8))

    @classmethod
    def from_state(cls, value: t.Any) -> IdSample | None:
        """The sample STATE keeps (``to_state``), or None when there is none or it is
        not one."""
        if not isinstance(value, dict):
            return None
        salt = value.get("salt")
        if not isinstance(salt, str) or not 0 < len(salt) <= 64:
            return None
        return cls(salt, decode_ids(value.get("ids")))

    def to_state(self) -> dict[str, t.Any]:
        return {"salt": self.salt, "ids": encode_ids(self._members)}

    def _hash(self, value: int) -> int:
        digest = hashlib.blake2b(f"{self.salt}:{value}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big")

    def offer(self, ids: t.Iterable[int]) -> None:
        for value in ids:
            if value in self._members:
                continue
            key = self._hash(value)
            if len(self._heap) < self.size:
                heapq.heappush(self._heap, (-key, value))
                self._members.add(value)
            elif key < -self._heap[0][0]:
                _, dropped = heapq.heapreplace(self._heap, (-key, value))
                self._members.discard(dropped)
                self._members.add(value)

    @property
    def ids(self) -> frozenset[int]:
        return frozenset(self._members)

    def __len__(self) -> int:
        return len(self._members)
