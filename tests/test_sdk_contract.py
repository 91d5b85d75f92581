"""The private names (singer-sdk's, requests') tap_mokapen/sdk_private.py relies on are still there.

When an SDK release renames, removes or re-signs any of them, this fails once,
naming each one, before any sync can go wrong in a subtler way.
"""

from __future__ import annotations

import importlib
import inspect
import pathlib
import re

from singer_sdk.streams import Stream

from tap_mokapen import sdk_private, state
from tap_mokapen.tap import TapMokapen


def changed_private_names() -> list[str]:
    changed = []
    for name, signature in sdk_private.PRIVATE_NAMES.items():
        module_name, qualified = name.split(":")
        owner_name, attribute = qualified.split(".")
        owner = getattr(importlib.import_module(module_name), owner_name, None)
        if owner is None:
            changed.append(f"{name}: {owner_name} is gone")
            continue
        if signature is None:
            # An instance attribute: set in __init__, so look for it in the source.
            if f"self.{attribute} =" not in inspect.getsource(owner):
                changed.append(f"{name}: attribute no longer set")
            continue
        found = getattr(owner, attribute, None)
        if found is None:
            changed.append(f"{name}: gone")
        elif str(inspect.signature(found)) != signature:
            changed.append(f"{name}: now {inspect.signature(found)}, was {signature}")
    return changed


def test_every_private_sdk_name_the_tap_uses_is_unchanged():
    changed = changed_private_names()
    assert not changed, (
        "singer-sdk changed private names that tap_mokapen/sdk_private.py relies on; "
        "review that module before raising the SDK pin:\n  " + "\n  ".join(changed)
    )


def sdk_private_names() -> set[str]:
    """Every private name of the SDK classes the tap builds on: methods and attributes."""
    from singer_sdk import Tap
    from singer_sdk.authenticators import OAuthAuthenticator
    from singer_sdk.pagination import BaseAPIPaginator
    from singer_sdk.streams import RESTStream
    from singer_sdk.streams._state import StreamStateManager

    names: set[str] = set()
    for cls in (Tap, RESTStream, OAuthAuthenticator, BaseAPIPaginator, StreamStateManager):
        for klass in cls.__mro__:
            if not klass.__module__.startswith("singer_sdk"):
                continue
            names |= {n for n in vars(klass) if n.startswith("_") and not n.startswith("__")}
            names |= set(re.findall(r"self\.(_[a-z]\w*)\s*[:=]", inspect.getsource(klass)))
    return names | {"is_flushed"} | requests_private_names()


def requests_private_names() -> set[str]:
    """The private names of requests' Response, which transport.py reads bodies into."""
    import requests

    source = inspect.getsource(requests.Response)
    names = {n for n in vars(requests.Response) if n.startswith("_") and not n.startswith("__")}
    names |= set(re.findall(r"self\.(_[a-z]\w*)\s*=", source))
    # The paginators' own "_next" (the next request) is not Response's (the next redirect).
    return names - {"_next"}


def test_no_module_outside_the_fence_uses_a_private_sdk_name():
    """The fence holds: private SDK names appear in sdk_private.py only."""
    private = sdk_private_names()
    assert {"_sync_records", "_page_count", "_requests_session", "_tap", "_content"} <= private
    offenders = []
    package = pathlib.Path(sdk_private.__file__).parent
    for path in sorted(package.glob("*.py")):
        if path.name == "sdk_private.py":
            continue
        used = set(re.findall(r"\.(_[a-z]\w*|is_flushed)\b", path.read_text()))
        offenders += [f"{path.name}: {name}" for name in sorted(used & private)]
    assert not offenders, offenders


def test_the_tap_overrides_the_fenced_hooks():
    # If the override stopped being reached, the fast path would silently vanish.
    assert TapMokapen.__mro__.index(sdk_private.OneLineConfigErrors) < TapMokapen.__mro__.index(
        importlib.import_module("singer_sdk").Tap
    )
    stream_type = importlib.import_module("tap_mokapen.streams").stream_types()[0]
    assert stream_type._sync_records is sdk_private.PageAtATimeSync._sync_records
    assert stream_type._sync_records is not Stream._sync_records


def test_the_sdks_own_loop_keeps_records_without_a_replication_value():
    """With a record limit (--test) the SDK's loop runs; a record lacking updated_at must
    not break it. (Stream maps no longer need it: the tap's loop writes through them.)"""
    tap = TapMokapen(config={"organization_id": 849}, validate_config=False)
    stream = tap.streams["contacts"]
    stream.ABORT_AT_RECORD_COUNT = 1
    assert not sdk_private.writes_lines_directly(stream)
    context = {"organization_id": 849}
    partition = stream.get_context_state(context)
    state.Partition(partition, "").open("updated_at")
    newest = "2025-01-01T00:00:00.000000Z"
    for record in ({"id": 1}, {"id": 2, "updated_at": None}, {"id": 3, "updated_at": newest}):
        stream._increment_stream_state(record, context=context)
    assert partition["progress_markers"]["replication_key_value"] == newest
