"""tap-mokapen: the Tap - its settings, the run it builds (run.py) and its streams.

The Tap is the top of the data path: it builds the run once and hands it to every
stream; nothing below imports it. The command line, exit codes and signals are
cli.py's (a subclass of this Tap); what a run reports at its end, run_report.py's.
"""

from __future__ import annotations

import contextlib
import typing as t
from functools import cached_property

from singer_sdk import Tap
from singer_sdk.exceptions import MapperNotInitialized, StreamMapConfigError
from typing_extensions import override

from tap_mokapen import config, sdk_private, validation
from tap_mokapen import state as state_rules
from tap_mokapen.client import MokapenStream
from tap_mokapen.errors import ConfigError, MokapenError, RunPaused, named_with_nearest, redact
from tap_mokapen.output import BufferedMsgSpecWriter
from tap_mokapen.registry import Organizations
from tap_mokapen.rejected import RejectedRecordsStream, Rejections
from tap_mokapen.run import Run
from tap_mokapen.run_report import RunReport
from tap_mokapen.streams import stream_types

if t.TYPE_CHECKING:
    from singer_sdk import Stream


class TapMokapen(sdk_private.OneLineConfigErrors, Tap):
    """Singer tap for the Mokapen CRM API."""

    name = "tap-mokapen"
    message_writer_class = BufferedMsgSpecWriter
    config_jsonschema = config.config_jsonschema()

    def __init__(
        self,
        *args: t.Any,
        listing: bool = False,
        describing: bool = False,
        authorizing: bool = False,
        **kwargs: t.Any,
    ) -> None:
        #: For --list-organizations: a dashboard token may come without an organization.
        self.listing = listing
        #: For --discover and --about: no request is made, so no credential is needed yet.
        self.describing = describing
        #: For --authorize: the organization is chosen in the browser.
        self.authorizing = authorizing
        try:
            super().__init__(*args, **kwargs)
        except StreamMapConfigError as exc:  # one line, not the SDK's traceback
            msg = f"stream_maps: {exc} (a map must name a selected stream and its fields)"
            raise ConfigError(msg) from None
        # The SDK makes its stream-map builder after the streams (setup_mapper).
        with contextlib.suppress(MapperNotInitialized):
            self.run.mapper = self.mapper
        self._check_catalog_streams()
        self._leave_out_streams_without_scope()
        self.run.selected_streams = sum(1 for s in self.mokapen_streams() if s.selected)
        tap_state = t.cast("dict[str, t.Any]", self.state)
        for problem in state_rules.repair(tap_state, self.organizations.run_started_at):
            self.logger.warning("STATE: %s", problem)

    def _check_catalog_streams(self) -> None:
        """A catalog selecting a stream this tap does not have (a typo) is an error: run
        silently, it would extract nothing and exit 0."""
        catalog = self.input_catalog
        if catalog is None:
            return
        known = set(self.streams)
        unknown = sorted(
            entry.tap_stream_id
            for entry in catalog.streams
            if entry.tap_stream_id not in known and entry.metadata.root.selected
        )
        if unknown:
            msg = (
                f"the catalog selects {named_with_nearest(unknown, known)}, which this tap "
                "does not have "
                f"(its streams: {', '.join(sorted(known))})"
            )
            raise ConfigError(msg)
        streams = self.mokapen_streams()
        if not any(stream.selected for stream in streams):
            # Meltano only warns about a `meltano select` that matches nothing: without
            # this, a typo is a green run that extracted nothing.
            msg = (
                "the catalog selects no stream (its streams: "
                f"{', '.join(s.name for s in streams)}): select at least one, such as "
                "`meltano select tap-mokapen contacts '*'` (in Meltano, rules that only "
                "exclude select nothing)"
            )
            raise ConfigError(msg)

    def _leave_out_streams_without_scope(self) -> None:
        """A stream off by default (an endpoint Mokapen does not document) is read only
        when the scope setting names its scope. Meltano selects every stream of a new
        project (``*.*``); asking for those scopes would cost a refused token request
        every run and leave empty tables, for streams the app was never set up for."""
        named = set((self.settings.scope or "").split())
        left_out = [
            stream
            for stream in self.mokapen_streams()
            if stream.selected
            and not stream.selected_by_default
            and stream.scope
            and stream.scope not in named
        ]
        if not left_out:
            return
        for stream in left_out:
            stream.selected = False  # no token scope, no SCHEMA, no request
        if not any(stream.selected for stream in self.mokapen_streams()):
            msg = (
                f"the catalog selects only {' and '.join(repr(s.name) for s in left_out)}, "
                "off by default and read only when the scope setting names "
                f"{' and '.join(s.scope or '' for s in left_out)}: add the scope, or "
                "select contacts or tasks"
            )
            raise ConfigError(msg)
        # The whole value to set: scope replaces the scopes the selected streams ask for.
        wanted = [s.scope for s in self.mokapen_streams() if s.selected and s.scope]
        wanted += [s.scope for s in left_out if s.scope]
        self.logger.warning(
            "Leaving out %s: off by default, they are read only when the scope setting "
            "names their scope. To read them, enable it for the app and set scope to "
            '"%s"; to silence this line, select only the streams you want (in Meltano: '
            "meltano select tap-mokapen contacts '*', and so on)",
            " and ".join(repr(s.name) for s in left_out),
            " ".join(dict.fromkeys(wanted)),
        )

    def config_problems(self) -> list[str]:
        """Every problem of the config, one phrase each (validation.py)."""
        return validation.problems(
            self.config,
            listing=self.listing,
            describing=self.describing,
            authorizing=self.authorizing,
        )

    @override
    def discover_streams(self) -> list[Stream]:
        declared = self.settings.extra_streams
        streams: list[Stream] = [
            stream_type(tap=self, run=self.run) for stream_type in stream_types(declared)
        ]
        return [*streams, RejectedRecordsStream(self, self.run.rejections)]

    @override
    def run_discovery(self) -> str:
        """The catalog; with credentials, declared streams without a schema sample a page."""
        can_ask = self.settings.client_id or self.settings.access_token
        if can_ask and self.organizations.ids:
            for stream in self.mokapen_streams():
                if stream.organization_scoped and not stream.packaged:
                    try:
                        added = stream.sample_fields()
                    except (MokapenError, RunPaused) as exc:
                        self.logger.warning(
                            "Could not sample '%s' (%s): its schema starts from its keys "
                            "and grows as records come",
                            stream.name,
                            redact(str(exc)),
                        )
                    else:
                        self.logger.info("Sampled '%s': %d fields found", stream.name, added)
        return super().run_discovery()

    @cached_property
    def run(self) -> Run:
        """What this run shares with every stream (run.py); built once, here."""
        organizations = Organizations(
            self.settings,
            user_agent=self.user_agent,
            scope=self.scope,
            tap_state=self._selected_state,
            list_organizations=self._list_organizations,
        )
        rejections = Rejections(strict=self.settings.strict_records)
        return Run(
            settings=self.settings,
            organizations=organizations,
            report=RunReport(organizations, rejections),
            rejections=rejections,
            write_message=self.write_message,
            user_agent=self.user_agent,
            input_catalog=self.input_catalog,
        )

    def mokapen_streams(self) -> list[MokapenStream]:
        return [s for s in self.streams.values() if isinstance(s, MokapenStream)]

    @cached_property
    def settings(self) -> config.Settings:
        return config.Settings.from_config(self.config)

    @cached_property
    def user_agent(self) -> str:
        # The SDK's plugin_version, as --version and --about give it: the installed
        # distribution's, whose one source is pyproject.toml.
        return self.settings.user_agent or f"tap-mokapen/{self.plugin_version}"

    @property
    def organizations(self) -> Organizations:
        return self.run.organizations

    def _selected_state(self) -> dict[str, t.Any]:
        """The state of the selected streams: a stream left out of the catalog holds no
        cycle open (its resume point waits for it), so the others are never frozen."""
        selected = {name for name, s in self.streams.items() if s.selected}
        bookmarks = self.state.get("bookmarks", {})
        return {"bookmarks": {k: v for k, v in bookmarks.items() if k in selected}}

    def scope(self) -> str:
        """The scope setting, else the scopes of the selected streams (Mokapen: ask no more)."""
        if self.settings.scope:
            return self.settings.scope
        streams = self.mokapen_streams()
        needed = [s.scope for s in streams if s.selected and s.scope]
        return " ".join(needed or [s.scope for s in streams if s.scope])

    def _list_organizations(self) -> t.Iterator[t.Any]:
        stream = self.streams["organizations"]
        assert isinstance(stream, MokapenStream)  # discover_streams made it
        return stream.list_all()
