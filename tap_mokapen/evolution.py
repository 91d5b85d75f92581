"""Step 5 of the data path, continued: a stream's schema learns what the API really sends.

Every field list in ``schemas/`` is a guess (docs/mokapen-api.md). A field the
schema does not name is still the user's data, so when one appears the schema
grows a nullable property for it, typed from the values seen, and the stream
emits a new SCHEMA before the first record that carries it.

A field name the output cannot take as it is gets another, once per stream with one
line: a name a loader conforms to ``_sdc_...`` (the prefix Singer loaders keep for their
own columns: ``_sdc_deleted_at`` from the API would mark the row deleted) and the tap's
own OVERFLOW get ``api`` before them, and a quote, a backslash or a control character in
a name becomes ``_``.

A value of another type than declared (``company_id`` ``"C-12"`` where the schema
says integer) cannot widen the column: SQL loaders create the column from the
first SCHEMA and will not alter its type later (meltanolabs-target-postgres
refuses BIGINT to TEXT). So the value moves to a field of its own type,
``company_id__string``, a new nullable property like any other, and the record's
``company_id`` becomes null: the column keeps its type, the value is kept. A
``null`` where the schema did not allow one just makes the property nullable.
Growth is bounded: a stream adds at most ``max_learned_fields`` fields; past that, new
fields go together into one JSON object column, OVERFLOW. A learned field not seen for
FORGET_AFTER_RUNS runs in a row is forgotten, and ``forget_learned_fields`` forgets them
all for one run.

Each change is logged once per stream. With ``freeze_schema`` the schema never
changes: a new field is left out (with the same log line) and a record whose
value does not fit its declared type is rejected instead.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import typing as t

from tap_mokapen.errors import cut
from tap_mokapen.record_type import carriable, carriable_name, json_types

logger = logging.getLogger("tap-mokapen")

#: What each JSON type is called in a schema, by the Python type msgspec decodes it to.
_JSON_TYPE = {
    type(None): "null",
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    dict: "object",
    list: "array",
}
#: The prefix Singer loaders keep for their own columns: the API's fields that start
#: with it are emitted with "api" before it.
RESERVED_PREFIX = "_sdc_"

#: Where new fields go once a stream has learned max_learned_fields of them.
OVERFLOW = "overflow_fields"
#: A learned field not seen for this many runs in a row is forgotten.
FORGET_AFTER_RUNS = 30
#: How many forgotten fields keep their type in STATE.
MAX_FORGOTTEN = 1000
#: Output names given to API names that needed one (renamed, a type split, a
#: collision), kept in STATE: the most recently given, at most.
MAX_GIVEN_NAMES = 1000

#: Types a value of the key's type also fits (an integer is a JSON number).
_ALSO_FITS = {"integer": ("number",)}


def json_type(value: t.Any) -> str:
    return _JSON_TYPE.get(type(value), "string")


def fits(value: t.Any, types: t.Sequence[str]) -> bool:
    kind = json_type(value)
    return kind in types or any(other in types for other in _ALSO_FITS.get(kind, ()))


class SchemaEvolution:
    """One stream's current schema, grown from the records it meets."""

    def __init__(
        self,
        stream: str,
        schema: t.Mapping[str, t.Any],
        *,
        frozen: bool,
        fixed: t.Iterable[str] = (),
        deselected: t.Iterable[str] = (),
        learned: t.Mapping[str, t.Any] | None = None,
        unseen_runs: t.Mapping[str, t.Any] | None = None,
        forgotten: t.Mapping[str, t.Any] | None = None,
        given_names: t.Mapping[str, t.Any] | None = None,
        max_learned: int = 500,
    ) -> None:
        self.stream = stream
        self.schema = copy.deepcopy(dict(schema))
        #: The fields of the stream's contract and shipped schema: never given to another.
        shipped = set(self.schema.get("properties") or {})
        self.frozen = frozen
        #: Fields whose type is the stream's contract (keys): never widened.
        self.fixed = set(fixed)
        #: Fields the catalog deselects: never split or grown, they stay out.
        self.deselected = set(deselected)
        #: New fields a frozen schema leaves out.
        self.left_out: set[str] = set()
        #: New fields seen only as null so far: decoded, not emitted, until a value types them.
        self.untyped: set[str] = set()
        self._split: set[tuple[str, str]] = set()
        self._renamed: set[str] = set()
        #: What earlier runs learned (kept in STATE), so a column's type never changes.
        self.learned: dict[str, t.Any] = {}
        self.max_learned = max_learned
        #: New fields past max_learned: their values go into OVERFLOW.
        self.overflow: set[str] = set()
        #: Learned fields met in this run, and how many runs before it each went unseen.
        self.seen: set[str] = set()
        self._unseen_before: dict[str, int] = {}
        #: Forgotten fields and their types: one that comes back keeps its column's type.
        self.forgotten: dict[str, t.Any] = {
            name: schema for name, schema in (forgotten or {}).items() if isinstance(schema, dict)
        }
        dropped = []
        if not frozen:
            for name, property_schema in (learned or {}).items():
                if name != self.output_name(name):
                    continue  # learned before such names were renamed: learned again
                runs = (unseen_runs or {}).get(name, 0)
                runs = runs if isinstance(runs, int) and not isinstance(runs, bool) else 0
                if runs >= FORGET_AFTER_RUNS:
                    dropped.append(name)
                    if isinstance(property_schema, dict):
                        self.forgotten[name] = property_schema
                    continue
                if name not in self.properties and isinstance(property_schema, dict):
                    self.properties[name] = dict(property_schema)
                    self.learned[name] = property_schema
                    self._unseen_before[name] = runs
        if dropped:
            logger.info(
                "%s: %d learned field(s) not seen for %d runs are forgotten: %s",
                stream,
                len(dropped),
                FORGET_AFTER_RUNS,
                cut(", ".join(dropped), 300),
            )
        # Bounded like everything STATE keeps: the most recently forgotten.
        self.forgotten = dict(list(self.forgotten.items())[-MAX_FORGOTTEN:])
        #: The output name given to each API name that needed one (a rename, a type
        #: split, a collision; a split's key is ``name`` NUL ``type``), as earlier runs
        #: gave it: a name once given is given again, so one API field keeps one column
        #: and one column holds one API field. Kept in STATE.
        self.given_names: dict[str, str] = {}
        self._owner: dict[str, str] = {}
        kept = given_names if isinstance(given_names, dict) else {}
        for name, given in list(kept.items())[-MAX_GIVEN_NAMES:]:
            # A STATE from elsewhere: never a shipped field, never one column twice.
            if (
                isinstance(name, str)
                and isinstance(given, str)
                and given
                and given != name
                and given not in shipped
                and given not in self._owner
            ):
                self.given_names[name] = given
                self._owner[given] = name
        if not kept:
            self._adopt_learned_splits()

    def _adopt_learned_splits(self) -> None:
        """A STATE of a release that kept no output names: the type splits it learned
        (``<field>__<type>``) stay their fields' columns."""
        for name in self.learned:
            found = _SPLIT_NAME.fullmatch(name)
            if found and found[1] in self.properties and name not in self._owner:
                key = f"{found[1]}\x00{found[2]}"
                if key not in self.given_names:
                    self.given_names[key] = name
                    self._owner[name] = key

    def output_name(self, name: str) -> str:
        """The name a field of the API is emitted under (the same, nearly always).

        Loaders compare names as they conform them (lower case, ``-``, ``.`` and spaces
        as ``_``), so ``_SDC_DELETED_AT`` and ``_sdc-deleted-at`` are the loader's own
        column too; so is the tap's own OVERFLOW.
        """
        if _conformed(name).startswith(RESERVED_PREFIX) or name == OVERFLOW:
            name = "api" + name.strip() if name != OVERFLOW else f"api_{OVERFLOW}"
        return name if carriable(name) else carriable_name(name)

    def _given(self, key: str, wanted: str, record: t.Mapping[str, t.Any]) -> str:
        """The output name of ``key`` (an API name, or a split's key), whose own would be
        ``wanted``: as given before, else ``wanted`` or the first free suffix of it. Free:
        given to no other key, and no other field of this record by its own name."""
        given = self.given_names.get(key)
        if given is not None:
            return given
        candidate, number = wanted, 1
        while self._taken(candidate, key, record):
            number += 1
            candidate = f"{wanted}_{number}"
        if candidate != key:  # a field under its own name needs no entry
            self.given_names[key] = candidate
            self._owner[candidate] = key
            if len(self.given_names) > MAX_GIVEN_NAMES:
                oldest = next(iter(self.given_names))
                self._owner.pop(self.given_names.pop(oldest), None)
        return candidate

    def _taken(self, candidate: str, key: str, record: t.Mapping[str, t.Any]) -> bool:
        """Whether ``candidate`` is another field's column: given to another key, sent by
        the API under that very name in this record, or a column of that name already
        (a field the API sends under its own name: shipped, or learned so)."""
        owner = self._owner.get(candidate)
        if owner is not None:
            return owner != key
        return candidate != key and (candidate in record or candidate in self.properties)

    def rename_fields(self, record: dict[str, t.Any]) -> dict[str, t.Any]:
        """The record with every field under its output name (a new dict only when one
        changes); two fields never merge, and a name once given is given again."""
        owner = self._owner
        if all(name == self.output_name(name) and owner.get(name, name) == name for name in record):
            return record
        renamed: dict[str, t.Any] = {}
        for name, value in record.items():
            new = self._given(name, self.output_name(name), record)
            if new != name and name not in self._renamed:
                self._renamed.add(name)
                why = (
                    _why_renamed(name)
                    if self.output_name(name) != name
                    else "its name is the column of another field"
                )
                logger.warning(
                    "field %s in %s is emitted as %s (%s)",
                    json.dumps(name)[:80],
                    self.stream,
                    json.dumps(new)[:80],
                    why,
                )
            renamed[new] = value
        return renamed

    @property
    def properties(self) -> dict[str, t.Any]:
        return t.cast(dict[str, t.Any], self.schema.setdefault("properties", {}))

    def misfit(self, record: dict[str, t.Any]) -> str | None:
        """Why a frozen schema cannot take this record (a value of another type), if so."""
        for name, value in record.items():
            schema = self.properties.get(name)
            types = json_types(schema) if schema is not None else []
            if types and name not in self.left_out and not fits(value, types):
                return f"{name} is {json_type(value)}, the frozen schema says {'/'.join(types)}"
        return None

    def split_misfits(self, record: dict[str, t.Any]) -> None:
        """Move each value of another type than declared to ``<field>__<type>``, in place."""
        for name, value in list(record.items()):
            schema = self.properties.get(name)
            if schema is None or value is None or name in self.fixed | self.deselected:
                continue
            types = json_types(schema)
            if not types or fits(value, types):
                continue
            kind = json_type(value)
            key = f"{name}\x00{kind}"
            split = self.given_names.get(key)
            if split is None:
                split, number = f"{name}__{kind}", 1
                # Never a name the API sends itself, nor one given to another field or
                # learned with another type.
                while (
                    record.get(split) is not None
                    or self._taken(split, key, record)
                    or not self._typed_for(split, value)
                ):
                    number += 1
                    split = f"{name}__{kind}_{number}"
                self._given(key, split, {})
            record[split] = value
            record[name] = None
            if (name, kind) not in self._split:
                self._split.add((name, kind))
                logger.warning(
                    "field %s in %s: a %s value goes to %s (the field stays %s)",
                    name,
                    self.stream,
                    kind,
                    split,
                    "/".join(types),
                )

    def unseen_runs(self) -> dict[str, int]:
        """For STATE: how many runs in a row, this one included, each learned field went
        unseen (0: seen in this run)."""
        return {
            name: 0 if name in self.seen else self._unseen_before.get(name, 0) + 1
            for name in self.learned
        }

    def fold_overflow(self, record: dict[str, t.Any]) -> None:
        """Move the values of fields past max_learned_fields into OVERFLOW, in place."""
        folded = {name: record.pop(name) for name in self.overflow & record.keys()}
        if folded:
            record[OVERFLOW] = {**record.get(OVERFLOW, {}), **folded}

    def _typed_for(self, name: str, value: t.Any) -> bool:
        """Whether ``value`` may go to field ``name``: new, or declared with its type."""
        schema = self.properties.get(name)
        if schema is None:
            return True
        types = json_types(schema)
        return not types or fits(value, types)

    def learn(self, records: t.Iterable[dict[str, t.Any]]) -> bool:
        """Grow the schema for these records' fields and types; True when it changed."""
        seen: dict[str, set[str]] = {}
        for record in records:
            for name, value in record.items():
                seen.setdefault(name, set()).add(json_type(value))
        self.seen.update(seen)
        changed = False
        for name, kinds in seen.items():
            schema = self.properties.get(name)
            if name in self.deselected:
                continue
            if schema is None:
                changed |= self._add(name, kinds)
            elif name not in self.fixed and name not in self.left_out:
                changed |= self._widen(name, schema, kinds)
        return changed

    def _add(self, name: str, kinds: set[str]) -> bool:
        if name in self.left_out or name in self.overflow:
            return False
        if not self.frozen and len(self.learned) - (OVERFLOW in self.learned) >= self.max_learned:
            self.overflow.add(name)
            if OVERFLOW not in self.properties:
                self.properties[OVERFLOW] = {"type": ["object", "null"]}
                self.learned[OVERFLOW] = self.properties[OVERFLOW]
                logger.warning(
                    "%s has learned %d fields (max_learned_fields): new fields from now on "
                    "go together into %s, starting with %s",
                    self.stream,
                    self.max_learned,
                    OVERFLOW,
                    json.dumps(name)[:80],
                )
                return True
            return False
        if kinds == {"null"} and not self.frozen:
            # A null says nothing of the column's type: wait for a value to type it.
            self.untyped.add(name)
            return False
        self.untyped.discard(name)
        if name in self.forgotten and not self.frozen:
            # Back after being forgotten: its column has a type already (misfits split).
            self.properties[name] = self.learned[name] = self.forgotten.pop(name)
            logger.warning("field %s in %s is back, with its former type", name, self.stream)
            return True
        described = "/".join(sorted(kinds - {"null"}) or ["null"])
        if self.frozen:
            self.left_out.add(name)
            logger.warning(
                "new field %s (%s) in %s: left out, the schema is frozen (freeze_schema)",
                name,
                described,
                self.stream,
            )
            return False
        self.properties[name] = {"type": _ordered(kinds | {"null"})}
        self.learned[name] = self.properties[name]
        logger.warning("new field %s (%s) in %s", name, described, self.stream)
        return True

    def _widen(self, name: str, schema: dict[str, t.Any], kinds: set[str]) -> bool:
        """A null where none was allowed makes the field nullable (its column type stays)."""
        declared = json_types(schema)
        if not declared or "null" not in kinds or "null" in declared or self.frozen:
            return False
        schema["type"] = _ordered({*declared, "null"})
        logger.warning("field %s in %s may now be null", name, self.stream)
        return True


_ORDER = ["integer", "number", "boolean", "string", "object", "array", "null"]
_SPLIT_NAME = re.compile(r"(.+)__(integer|number|boolean|string|object|array)(?:_\d+)?")


def _why_renamed(name: str) -> str:
    if name == OVERFLOW:
        return f"{OVERFLOW} is the tap's column for fields past max_learned_fields"
    if _conformed(name).startswith(RESERVED_PREFIX):
        return "loaders keep the _sdc_ prefix for their own columns"
    return "a quote, a backslash or a control character in a name becomes _"


def _conformed(name: str) -> str:
    """A name as SQL loaders conform it to a column name (the SDK's conform_name, roughly)."""
    return re.sub(r"[\s\-.]", "_", name.strip().lower())


def _ordered(kinds: set[str]) -> list[str]:
    return [k for k in _ORDER if k in kinds]
