"""What the sandbox answers, shared by the API routes (app.py) and the admin calls (admin.py)."""

from __future__ import annotations

import dataclasses
import json
import typing as t

TIMESTAMP_FIELDS = ("created_at", "updated_at", "completed_at")


@dataclasses.dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    # Transport misbehaviour the HTTP layer carries out: "reset" or a delay.
    action: str | None = None
    delay: float = 0.0


def json_reply(status: int, payload: t.Any, **kwargs: t.Any) -> Reply:
    return Reply(status, json.dumps(payload, ensure_ascii=False).encode(), **kwargs)
