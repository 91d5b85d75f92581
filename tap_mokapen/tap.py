"""tap-mokapen: the Tap - its settings, its streams, and its command line."""

from __future__ import annotations

import difflib
import io
import json
import logging
import signal
import sys
import typing as t
from functools import cached_property
from importlib.metadata import PackageNotFoundError, version

import click
from singer_sdk import Tap
from singer_sdk.exceptions import ConfigValidationError, StreamMapConfigError
from singer_sdk.singerlib import StateMessage
from typing_extensions import override

from tap_mokapen import config, listing, output, plan, sdk_private, validation
from tap_mokapen import resync as resync_cli
from tap_mokapen import state as state_rules
from tap_mokapen.errors import (
    AuthenticationError,
    ConfigError,
    MokapenError,
    RunPaused,
    cut,
    redact,
    sentences,
)
from tap_mokapen.organizations import Organizations
from tap_mokapen.output import BufferedMsgSpecWriter
from tap_mokapen.rejected import RejectedRecordsStream, Rejections
from tap_mokapen.streams import OrganizationScopedStream, stream_types
from tap_mokapen.sync import MokapenStream

if t.TYPE_CHECKING:
    from types import FrameType

    from singer_sdk import Stream

try:
    __version__ = version("tap-mokapen")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"

# backoff logs every retry itself; the streams log one line of their own instead.
logging.getLogger("backoff").setLevel(logging.CRITICAL)


class StopRequested(BaseException):
    """SIGTERM or SIGINT arrived: unwinds the sync to TapMokapen.invoke."""

    def __init__(self, tap: TapMokapen, number: int) -> None:
        super().__init__(number)
        self.tap, self.number = tap, number


class TapMokapen(sdk_private.OneLineConfigErrors, Tap):
    """Singer tap for the Mokapen CRM API."""

    name = "tap-mokapen"
    message_writer_class = BufferedMsgSpecWriter
    config_jsonschema = config.config_jsonschema()

    def __init__(self, *args: t.Any, listing: bool = False, **kwargs: t.Any) -> None:
        #: For --list-organizations: a dashboard token may come without an organization.
        self.listing = listing
        try:
            super().__init__(*args, **kwargs)
        except StreamMapConfigError as exc:  # one line, not the SDK's traceback
            msg = f"stream_maps: {exc} (a map must name a selected stream and its fields)"
            raise ConfigError(msg) from None
        self._check_catalog_streams()
        tap_state = t.cast("dict[str, t.Any]", self.state)
        for problem in state_rules.repair(tap_state, self.organizations.run_started_at):
            self.logger.warning("STATE: %s", problem)
        # After the SDK's own handlers, which exit 0: a stopped run must not look done.
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, self._stop)

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
            hints = [
                f"{name!r} (did you mean {near[0]!r}?)" if near else repr(name)
                for name in unknown
                for near in [difflib.get_close_matches(name, sorted(known), n=1)]
            ]
            msg = (
                f"the catalog selects {', '.join(hints)}, which this tap does not have "
                f"(its streams: {', '.join(sorted(known))})"
            )
            raise ConfigError(msg)

    def _stop(self, number: int, frame: FrameType | None) -> None:
        """SIGTERM or SIGINT: stop between two messages (see invoke)."""

        def stop() -> None:
            raise StopRequested(self, number)

        output.stop_between_writes(stop)

    def stopped(self, number: int) -> t.NoReturn:
        """The STATE as it stands (never ahead of the records written), one line, and
        128 + the signal's number as exit code: a stopped run must not look done."""
        self.write_message(StateMessage(value=self.state))
        self.logger.warning(
            "Stopped by signal %s: the STATE just emitted resumes the run where it stopped",
            signal.Signals(number).name,
        )
        sys.exit(128 + number)

    def config_problems(self) -> list[str]:
        """Every problem of the config, one phrase each (config.py)."""
        return validation.problems(self.config, listing=self.listing)

    @override
    def discover_streams(self) -> list[Stream]:
        declared = self.settings.extra_streams
        streams: list[Stream] = [stream_type(tap=self) for stream_type in stream_types(declared)]
        listed = [s.name for s in streams if isinstance(s, MokapenStream)]
        unknown = sorted(self.settings.detect_deletions - set(listed))
        if unknown:
            names = ", ".join(listed)
            msg = f"detect_deletions names no stream: {', '.join(unknown)} (streams: {names})"
            raise ConfigError(msg)
        return [*streams, RejectedRecordsStream(self)]

    @override
    def run_discovery(self) -> str:
        """The catalog; with credentials, declared streams without a schema sample a page."""
        can_ask = self.settings.client_id or self.settings.access_token
        if can_ask and self.organizations.ids:
            for stream in self.mokapen_streams():
                if isinstance(stream, OrganizationScopedStream) and not stream.packaged:
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
    def rejections(self) -> Rejections:
        return Rejections(self, strict=self.settings.strict_records)

    @cached_property
    def failures(self) -> list[tuple[str, int | str, str]]:
        """The streams that failed this run, with their organization and the cause."""
        return []

    def mokapen_streams(self) -> list[MokapenStream]:
        return [s for s in self.streams.values() if isinstance(s, MokapenStream)]

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
            tap_state=self._selected_state,
            list_organizations=self._list_organizations,
        )

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
        return stream.list_all(None)

    def stream_failed(self, stream: MokapenStream, error: MokapenError) -> None:
        """One stream failed for a reason retrying cannot fix: say so and go on."""
        org = stream.organization_id
        # Without a token its other streams would fail the same way, each spending a request.
        if isinstance(error, AuthenticationError) or not stream.authenticator.access_token:
            self.organizations.refused[org] = error
        self.failures.append((stream.name, org, str(error)))
        self.logger.error(
            "%s",
            sentences(
                f"'{stream.name}' failed for organization {org}: {error}",
                "Carrying on with the other streams; the run will exit 1.",
            ),
        )

    def costs_logged(self, stream: Stream) -> None:
        """The SDK logs every stream's costs once all have synced: the last one ends the run."""
        self._costs_logged.add(stream.name)
        if self._costs_logged >= set(self.streams):
            self.end_of_run()

    @cached_property
    def _costs_logged(self) -> set[str]:
        return set()

    def end_of_run(self) -> None:
        """After every stream: the rejections, and one line on what failed and what completed."""
        for name, count in self.rejections.counts.items():
            self.logger.warning("%d %s record(s) rejected (see rejected_records)", count, name)
        listing = self.organizations.listing_failure
        if self.failures or listing:
            failed = ", ".join(f"'{name}' of organization {org}" for name, org, _ in self.failures)
            causes = list(dict.fromkeys(cut(cause, 300) for _, _, cause in self.failures))
            if causes:  # the last line names why, each cause once
                failed += f" ({'cause' if len(causes) == 1 else 'causes'}: {' | '.join(causes)})"
            names = {name for name, _, _ in self.failures}
            done = [
                s.name
                for s in self.mokapen_streams()
                if s.stats["completed"] and s.name not in names
            ]
            parts = [f"{len(self.failures)} stream(s) failed: {failed}"] if failed else []
            parts += [listing] if listing else []
            msg = (
                f"{'; '.join(parts)}; completed: {', '.join(done) or 'none'}. The emitted "
                "STATE resumes every stream without a gap."
            )
            raise MokapenError(msg)

    def pause(self, reason: RunPaused, stream: MokapenStream, where: str) -> None:
        """Stop requesting for the stream's organization, saying how far the run got."""
        progress = ", ".join(
            f"{s.name} {s.stats['records']} records"
            + (" (complete)" if s.stats["completed"] else "")
            for s in self.mokapen_streams()
            if s.stats["records"] or s.stats["completed"]
        )
        self.organizations.pause(stream.organization_id, reason, where, progress)

    # -- the command line ----------------------------------------------------

    @override
    @classmethod
    def cb_config(cls, ctx: click.Context, param: click.Option, value: tuple[str, ...]) -> t.Any:
        """``--config``, with a missing or unreadable file as one line and exit code 1."""
        try:
            return super().cb_config(ctx, param, value)
        except FileNotFoundError as exc:
            cls.logger.error("The config file does not exist: %s", exc.args[0] if exc.args else exc)
        except ValueError as exc:  # JSONDecodeError, of json or simplejson
            files = ", ".join(value)
            cls.logger.error(
                "The config file %s is not valid JSON: %s", files, redact(str(exc), 200)
            )
        ctx.exit(1)

    @override
    @classmethod
    def get_singer_command(cls) -> click.Command:
        command = super().get_singer_command()
        command.params += [plan.option(), listing.option(), resync_cli.option()]
        return command

    @override
    @classmethod
    def invoke(
        cls,
        *,
        plan: str | None = None,
        list_organizations: bool = False,
        resync: tuple[str, ...] = (),
        **kwargs: t.Any,
    ) -> None:
        """The SDK's command (or ``--plan``, ``--list-organizations``, ``--resync``), with
        a MokapenError as one line and exit 1."""
        try:
            if resync:
                state = cls._readable_state(kwargs.get("state"))
                print(resync_cli.run(state.read() if state else None, resync))
            elif list_organizations:
                tap = cls.from_options(
                    kwargs.get("config"), kwargs.get("catalog"), None, listing=True
                )
                print(listing.run(tap))
            elif plan:
                cls.print_plan(
                    plan,
                    config=kwargs.get("config"),
                    catalog=kwargs.get("catalog"),
                    state=cls._readable_state(kwargs.get("state")),
                )
            else:
                kwargs["state"] = cls._readable_state(kwargs.get("state"))
                super().invoke(**kwargs)
        except StopRequested as stop:
            stop.tap.stopped(stop.number)
        except MokapenError as exc:
            cls.logger.error("%s", redact(str(exc), limit=2000))
            sys.exit(1)
        except ConfigValidationError as exc:  # one line, without the SDK's second one
            cls.logger.error("%s", redact("; ".join(exc.errors) or str(exc), limit=2000))
            sys.exit(1)
        except RunPaused as exc:  # --plan or --list-organizations: no answer to give
            cls.logger.error("Stopped before an answer: %s", redact(exc.reason, limit=2000))
            sys.exit(1)

    @classmethod
    def _readable_state(cls, file: t.IO[str] | None) -> t.IO[str] | None:
        """The --state file, checked: empty is no state (with a warning), not JSON an error."""
        if file is None:
            return None
        text = file.read()
        if not text.strip():
            cls.logger.warning(
                "The state file %s is empty: every stream is read in full", file.name
            )
            return None
        try:
            json.loads(text)
        except ValueError as exc:
            msg = f"The state file {file.name} is not valid JSON: {redact(str(exc), 200)}"
            raise ConfigError(msg) from None
        return io.StringIO(text)

    @classmethod
    def print_plan(
        cls,
        output_format: str,
        *,
        config: t.Any,
        catalog: t.IO[str] | None,
        state: t.IO[str] | None,
    ) -> None:
        """``--plan``: what a sync of the selected streams costs, for one request per stream.

        With ``--state``, the page sizes learned by earlier runs are asked for."""
        print(plan.run(cls.from_options(config, catalog, state), output_format))

    @classmethod
    def from_options(
        cls,
        config: t.Any,
        catalog: t.IO[str] | None,
        state: t.IO[str] | None,
        *,
        listing: bool = False,
    ) -> TapMokapen:
        """The tap of ``--config``, ``--catalog`` and ``--state``, its config validated."""
        return cls(
            listing=listing,
            config=config.config if config else {},
            catalog=json.load(catalog) if catalog else None,
            state=json.load(state) if state else None,
            parse_env_config=bool(config and config.parse_env),
            validate_config=True,
        )
