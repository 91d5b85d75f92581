"""tap-mokapen: the Tap - its settings, its streams, and its command line."""

from __future__ import annotations

import json
import logging
import sys
import typing as t
from functools import cached_property
from importlib.metadata import PackageNotFoundError, version

import click
from singer_sdk import Tap
from typing_extensions import override

from tap_mokapen import config, plan, sdk_private
from tap_mokapen.errors import MokapenError, RunPaused
from tap_mokapen.organizations import Organizations
from tap_mokapen.output import BufferedMsgSpecWriter
from tap_mokapen.streams import stream_types

if t.TYPE_CHECKING:
    from tap_mokapen.client import MokapenStream

try:
    __version__ = version("tap-mokapen")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"

# backoff logs every retry itself; the streams log one line of their own instead.
logging.getLogger("backoff").setLevel(logging.CRITICAL)


class TapMokapen(sdk_private.OneLineConfigErrors, Tap):
    """Singer tap for the Mokapen CRM API."""

    name = "tap-mokapen"
    message_writer_class = BufferedMsgSpecWriter
    config_jsonschema = config.config_jsonschema()

    def config_problems(self) -> list[str]:
        """Every problem of the config, one phrase each (config.py)."""
        return config.problems(self.config)

    @override
    def discover_streams(self) -> list[MokapenStream]:
        return [stream_type(tap=self) for stream_type in stream_types()]

    @cached_property
    def settings(self) -> config.Settings:
        return config.Settings.from_config(self.config)

    @cached_property
    def user_agent(self) -> str:
        return self.settings.user_agent or f"tap-mokapen/{__version__}"

    @cached_property
    def organizations(self) -> Organizations:
        return Organizations(
            self.settings,
            user_agent=self.user_agent,
            scope=self.scope,
            tap_state=lambda: self.state,
            list_organizations=self._list_organizations,
        )

    def scope(self) -> str:
        """The scope setting, else the scopes of the selected streams (Mokapen: ask no more)."""
        if self.settings.scope:
            return self.settings.scope
        streams = t.cast("list[MokapenStream]", list(self.streams.values()))
        needed = [s.scope for s in streams if s.selected and s.scope]
        return " ".join(needed or [s.scope for s in streams if s.scope])

    def _list_organizations(self) -> t.Iterator[dict[str, t.Any]]:
        stream = self.streams["organizations"]
        to_dict = stream.record_type.to_dict  # type: ignore[attr-defined]
        for records, _ in stream.request_pages(None):  # type: ignore[attr-defined]
            yield from map(to_dict, records)

    def pause(self, reason: RunPaused, stream: MokapenStream, where: str) -> None:
        """Stop requesting for the stream's organization, saying how far the run got."""
        progress = ", ".join(
            f"{s.name} {s.stats['records']} records"
            + (" (complete)" if s.stats["completed"] else "")
            for s in t.cast("list[MokapenStream]", list(self.streams.values()))
            if s.stats["records"] or s.stats["completed"]
        )
        self.organizations.pause(stream.organization_id, reason, where, progress)

    # -- the command line ----------------------------------------------------

    @override
    @classmethod
    def get_singer_command(cls) -> click.Command:
        command = super().get_singer_command()
        command.params.append(plan.option())
        return command

    @override
    @classmethod
    def invoke(cls, *, plan: str | None = None, **kwargs: t.Any) -> None:
        """The SDK's command (or ``--plan``), with a MokapenError as one line and exit 1."""
        try:
            if plan:
                cls.print_plan(plan, config=kwargs.get("config"), catalog=kwargs.get("catalog"))
            else:
                super().invoke(**kwargs)
        except MokapenError as exc:
            cls.logger.error("%s", exc)
            sys.exit(1)

    @classmethod
    def print_plan(cls, output_format: str, *, config: t.Any, catalog: t.IO[str] | None) -> None:
        """``--plan``: what a sync of the selected streams costs, for one request per stream."""
        tap = cls(
            config=config.config if config else {},
            catalog=json.load(catalog) if catalog else None,
            parse_env_config=bool(config and config.parse_env),
            validate_config=True,
        )
        print(plan.run(tap, output_format))
