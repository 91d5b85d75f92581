"""Answers that contradict themselves, as real servers sometimes send them.

``glitches = [{"at": n, "kind": k, "times": 1, "org": 849, "entity": "contacts"}]``
changes the answers to list requests number ``at`` .. ``at + times - 1`` of one
dataset (counted per organization and entity, as ``paginator_fault`` counts them).
``org`` and ``entity`` default to every organization and every entity
(``entity: "organizations"`` glitches the organizations list). A glitch
changes what the answer *says*, never the dataset: ``/_sandbox/records`` stays the
truth, so a test can tell what the tap missed.

kinds:

* ``empty``: ``data`` is ``[]``, every paging key as it would be (more pages said);
* ``short``: ``data`` keeps its first ``keep`` records (default 10), keys unchanged;
* ``shrunk_total``: ``total`` (and ``last_page``, ``next_page_url``) as if ``drop``
  records (default half of them) were gone, the records served unchanged;
* ``end``: the answer says the list ends here (no next page or cursor);
* ``empty_end``: ``empty`` and ``end`` together (an expired cursor's answer).

``paging_lies = {"per_page": 1000, "total": 10**12}`` sets paging keys on every
list answer to a value whatever the truth (a server that clamps pages without
saying so, an absurd total).
"""

from __future__ import annotations

import math
import typing as t

GLITCH_KINDS = ("empty", "short", "shrunk_total", "end", "empty_end")


def check_spec(glitches: t.Any) -> None:
    """Refuse a ``glitches`` value the sandbox cannot honour, saying why."""
    if not isinstance(glitches, list):
        msg = "glitches: expected a list of {at, kind, ...}"
        raise ValueError(msg)
    for glitch in glitches:
        if not isinstance(glitch, dict) or glitch.get("kind") not in GLITCH_KINDS:
            msg = f"glitches: each needs a kind among {', '.join(GLITCH_KINDS)}: {glitch!r}"
            raise ValueError(msg)
        unknown = set(glitch) - {"at", "kind", "times", "org", "entity", "keep", "drop"}
        if unknown or type(glitch.get("at", 1)) is not int:
            msg = f"glitches: unknown keys or a bad 'at' in {glitch!r}"
            raise ValueError(msg)


def glitch_for(
    glitches: list[dict[str, t.Any]], org: int, entity: str, number: int
) -> dict[str, t.Any] | None:
    """The glitch that strikes the dataset's list request number ``number``, if any."""
    for glitch in glitches:
        at = int(glitch.get("at", 1))
        if not at <= number < at + int(glitch.get("times", 1)):
            continue
        if glitch.get("org", org) == org and glitch.get("entity", entity) == entity:
            return glitch
    return None


def apply(body: t.Any, glitch: dict[str, t.Any]) -> t.Any:
    """The body (before any envelope) as the glitch changes it."""
    kind = glitch["kind"]
    if isinstance(body, list):  # a plain array: only its records can change
        if kind in ("empty", "empty_end"):
            return []
        return body[: int(glitch.get("keep", 10))] if kind == "short" else body
    if kind in ("empty", "empty_end"):
        body["data"] = []
    if kind == "short":
        body["data"] = body["data"][: int(glitch.get("keep", 10))]
    if kind == "shrunk_total":
        _shrink(body, glitch)
    if kind in ("end", "empty_end"):
        _end(body)
    return body


def _keys(body: dict[str, t.Any]) -> dict[str, t.Any]:
    """Where the paging keys are: the body, or its ``meta`` (a resource collection)."""
    meta = body.get("meta")
    return meta if isinstance(meta, dict) else body


def _shrink(body: dict[str, t.Any], glitch: dict[str, t.Any]) -> None:
    keys = _keys(body)
    total = keys.get("total")
    if not isinstance(total, int):
        return
    shown = max(0, total - int(glitch.get("drop", total // 2)))
    per_page = keys.get("per_page") or 1
    keys["total"] = shown
    keys["last_page"] = max(1, math.ceil(shown / per_page))
    if keys.get("current_page", 1) >= keys["last_page"]:
        _end(body)


def _end(body: dict[str, t.Any]) -> None:
    keys = _keys(body)
    for key in ("next_page_url", "next_cursor"):
        if key in body:
            body[key] = None
    if isinstance(body.get("links"), dict):
        body["links"]["next"] = None
    if "last_page" in keys and "current_page" in keys:
        keys["last_page"] = keys["current_page"]
        keys["total"] = keys.get("to") or 0


def lie(body: dict[str, t.Any], lies: dict[str, t.Any]) -> dict[str, t.Any]:
    """The body with its paging keys saying what ``lies`` says (keys it has only)."""
    keys = _keys(body)
    for key, value in lies.items():
        if key in keys:
            keys[key] = value
    return body
