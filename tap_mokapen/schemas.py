"""Where the stream JSON Schemas live: inside the wheel, or in the repo's schemas/ folder."""

from __future__ import annotations

from pathlib import Path

from singer_sdk import SchemaDirectory

_PACKAGED = Path(__file__).parent / "schemas"
# An editable install runs from the source tree, where the schemas sit at the top level.
_SOURCE_TREE = Path(__file__).parent.parent / "schemas"

SCHEMAS = SchemaDirectory(_PACKAGED if _PACKAGED.is_dir() else _SOURCE_TREE)
