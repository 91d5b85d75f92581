"""What one run shares: built once by the Tap, handed to every stream and below.

The settings (config.py), the organizations with their tokens, pacers and cycles
(registry.py), the run's report (run_report.py), the rejected records
(rejected.py), the message writer and the SDK's stream-map builder. Nothing below
the Tap reaches up into it: whatever a stream needs of the run is here.
"""

from __future__ import annotations

import dataclasses
import typing as t

if t.TYPE_CHECKING:
    from singer_sdk.mapper import PluginMapper
    from singer_sdk.singerlib import Catalog, Message

    from tap_mokapen.config import Settings
    from tap_mokapen.registry import Organizations
    from tap_mokapen.rejected import Rejections
    from tap_mokapen.run_report import RunReport


@dataclasses.dataclass
class Run:
    """One run of the tap: a sync, ``--discover``, ``--plan`` or ``--list-organizations``."""

    settings: Settings
    organizations: Organizations
    report: RunReport
    rejections: Rejections
    #: The Tap's message writer (output.py): SCHEMA, STATE, ACTIVATE_VERSION.
    write_message: t.Callable[[Message], None]
    #: The User-Agent header of every request.
    user_agent: str
    #: The catalog given with ``--catalog`` (None: the tap's own).
    input_catalog: Catalog | None = None
    #: The SDK's stream-map builder; set by the Tap once the SDK has made it.
    mapper: PluginMapper | None = None
    #: How many Mokapen streams the catalog selects (each has a share of a budget).
    selected_streams: int = 1
