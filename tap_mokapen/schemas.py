"""Where the stream JSON Schemas live: inside the wheel, or in the repo's schemas/ folder."""

from __future__ import annotations

from pathlib import Path

_PACKAGED = Path(__file__).parent / "schemas"
# An editable install runs from the source tree, where the schemas sit at the top level.
_SOURCE_TREE = Path(__file__).parent.parent / "schemas"


def schema_path(stream_name: str) -> Path:
    folder = _PACKAGED if _PACKAGED.is_dir() else _SOURCE_TREE
    return folder / f"{stream_name}.json"
