"""``tap-mokapen --state FILE --resync STREAM``: the STATE with one stream set back to
its start, so that the next run reads that stream again in full and the others go on
from where they were.

Nothing is requested and no config is needed. The STATE comes as the tap writes it,
or as ``meltano state get`` prints it (``{"singer_state": ...}``), and goes to stdout
in the same form, ready for ``meltano state set --input-file``. What is forgotten,
and what is kept, is state.forget_position's to say.
"""

from __future__ import annotations

import json
import logging
import typing as t

import click

from tap_mokapen import state
from tap_mokapen.errors import ConfigError, cut, named_with_nearest

logger = logging.getLogger("tap-mokapen")

#: The key under which Meltano's state commands hold the Singer STATE.
MELTANO_WRAPPER = "singer_state"


def run(text: str | None, names: t.Sequence[str]) -> str:
    """The STATE in ``text`` without the positions of the streams ``names``, as JSON."""
    if text is None:
        msg = "--resync changes a STATE: give it with --state FILE (nothing else is needed)"
        raise ConfigError(msg)
    if not text.strip():
        msg = "--resync: the --state file is empty: every stream is read in full already"
        raise ConfigError(msg)
    try:
        document = json.loads(text)
    except ValueError as exc:
        msg = f"--resync: the --state file is not valid JSON: {cut(str(exc), 200)}"
        raise ConfigError(msg) from None
    except RecursionError:
        msg = "--resync: the --state file is nested too deep to be a STATE"
        raise ConfigError(msg) from None
    wrapped = isinstance(document, dict) and MELTANO_WRAPPER in document
    tap_state = document[MELTANO_WRAPPER] if wrapped else document
    bookmarks = tap_state.get("bookmarks") if isinstance(tap_state, dict) else None
    if not isinstance(bookmarks, dict):
        msg = "--resync: the --state file holds no bookmarks: every stream is read in full"
        raise ConfigError(msg)
    held = sorted(bookmarks)
    broken = [name for name in names if name in bookmarks and not isinstance(bookmarks[name], dict)]
    if broken:
        msg = (
            f"--resync: the STATE's entry for {', '.join(map(repr, broken))} is not an object: "
            "remove it from the STATE and that stream is read in full"
        )
        raise ConfigError(msg)
    unknown = [name for name in names if name not in bookmarks]
    if unknown:
        msg = (
            f"--resync: the STATE holds nothing for {named_with_nearest(unknown, held)} (it holds: "
            f"{', '.join(held) or 'no stream'}); a stream it does not hold is read in full"
        )
        raise ConfigError(msg)
    for name in dict.fromkeys(names):
        count = state.forget_position(bookmarks[name])
        logger.info(
            "'%s': the position of %d partition(s) forgotten; the next run reads it from "
            "its start (learned fields, page size and deletion baseline kept)",
            name,
            count,
        )
    return json.dumps(document)


def option() -> click.Option:
    """``--resync`` for the tap's command line; TapMokapen.invoke runs it."""
    return click.Option(
        ["--resync"],
        multiple=True,
        metavar="STREAM",
        help="Print the --state STATE with STREAM set back to its start (repeatable), so "
        "the next run reads it in full; requests nothing. Accepts and prints Meltano's "
        "'meltano state get' form too.",
    )
