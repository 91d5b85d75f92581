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
    found = record.get("id") if type(record) is dict else getattr(record, "id", None)
    if type(found) is int and 0 < found <= LARGEST_ID:
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


#: Ids below this are kept as bits (a bitmap of at most 16 MB, 1 MB for 8 million ids):
#: memory follows the largest id, not the number of records; larger ids go in a set.
BITMAP_IDS = 1 << 27


#: Ids a pass also keeps as a list while it has read no more: the ids at risk that a
#: total which over-counts is settled against (list_pass.py) are at most this many.
LISTED_IDS = 20_000


class SeenIds:
    """The ids one pass read in this run: each distinct id once, and how many records
    were ids it had already read. Auto-increment ids (the usual) are kept as bits."""

    def __init__(self) -> None:
        #: The distinct ids in the order read, while they are at most LISTED_IDS.
        self.listed: list[int] | None = []
        #: Records whose id cannot be kept (record_id: not a positive integer below 2^63).
        self.untracked = 0
        self._bits = bytearray()
        self._others: set[int] = set()
        self._count = 0
        self.repeats = 0
        self.low: int | None = None
        self.high: int | None = None

    def __len__(self) -> int:
        return self._count

    def __contains__(self, value: object) -> bool:
        if type(value) is not int or value <= 0:
            return False
        if value < BITMAP_IDS:
            index = value >> 3
            return index < len(self._bits) and bool(self._bits[index] & (1 << (value & 7)))
        return value in self._others

    def add(self, ids: t.Iterable[int | None]) -> list[int]:
        """Count ``ids``; the ones read for the first time."""
        bits, others, new = self._bits, self._others, []
        for value in ids:
            if value is None:
                self.untracked += 1
                continue
            if value < BITMAP_IDS:
                index, mask = value >> 3, 1 << (value & 7)
                if index >= len(bits):
                    grown = min(max(index + 1, 2 * len(bits)), BITMAP_IDS >> 3)
                    bits.extend(bytes(grown - len(bits)))
                if bits[index] & mask:
                    self.repeats += 1
                    continue
                bits[index] |= mask
            elif value in others:
                self.repeats += 1
                continue
            else:
                others.add(value)
            new.append(value)
        if new:
            if self.listed is not None:
                self.listed.extend(new)
                if len(self.listed) > LISTED_IDS:
                    self.listed = None
            self._count += len(new)
            low, high = min(new), max(new)
            self.low = low if self.low is None else min(self.low, low)
            self.high = high if self.high is None else max(self.high, high)
        return new


class IdSample:
    """A fixed-size uniform random sample of distinct ids (bottom-k of a salted hash)."""

    def __init__(self, salt: str, ids: t.Iterable[int] = (), size: int = SAMPLE_SIZE) -> None:
        self.salt = salt
        self.size = size
        self._salt_number = int.from_bytes(hashlib.blake2b(salt.encode(), digest_size=8).digest())
        self._heap: list[tuple[int, int]] = []  # (-hash, id): the largest hash on top
        self._members: set[int] = set()
        self._encoded: str | None = None
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
        # Written with every checkpoint, changed ever more rarely: encoded once a change.
        if self._encoded is None:
            self._encoded = encode_ids(self._members)
        return {"salt": self.salt, "ids": self._encoded}

    def offer(self, ids: t.Iterable[int]) -> None:
        # The hash of a tuple of integers is the interpreter's own, fast and the same in
        # every process (only str and bytes hashes are randomized); the salt, drawn once
        # per sample, makes the sample random. A sample drawn under another
        # interpreter's hash is still a uniform sample of the ids it was drawn from.
        salt, heap, members = self._salt_number, self._heap, self._members
        for value in ids:
            key = hash((salt, value))
            if len(heap) < self.size:
                if value not in members:
                    heapq.heappush(heap, (-key, value))
                    members.add(value)
                    self._encoded = None
            elif key < -heap[0][0] and value not in members:
                _, dropped = heapq.heapreplace(heap, (-key, value))
                members.discard(dropped)
                members.add(value)
                self._encoded = None

    @property
    def ids(self) -> frozenset[int]:
        return frozenset(self._members)

    def __len__(self) -> int:
        return len(self._members)
