"""The tap's process: its command line, its exit codes and its signals.

``CommandLine`` is the Tap as a process (the SDK's command line is the Tap's
classmethods, so it is a subclass of TapMokapen): the SDK's command line, plus
``--plan`` (plan.py), ``--list-organizations`` (list_organizations.py),
``--resync`` (resync.py) and ``--authorize`` (consent.py). An error that ends the process is one
line and exit code 1, whichever command met it. SIGTERM and SIGINT stop the run
between two messages: the STATE as it stands goes out, then exit code 128 + the
signal's number, so that a stopped run never looks done.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import typing as t

import click
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.singerlib import StateMessage
from typing_extensions import override

from tap_mokapen import consent, output, plan, timestamps
from tap_mokapen import list_organizations as listing_cli
from tap_mokapen import resync as resync_cli
from tap_mokapen import state as state_rules
from tap_mokapen.errors import ConfigError, MokapenError, RunPaused, redact
from tap_mokapen.tap import TapMokapen

if t.TYPE_CHECKING:
    from types import FrameType


class StopRequested(BaseException):
    """SIGTERM or SIGINT arrived: unwinds the sync to CommandLine.invoke."""

    def __init__(self, tap: CommandLine, number: int) -> None:
        super().__init__(number)
        self.tap, self.number = tap, number


# TapMokapen's command line and signals: ``tap-mokapen`` runs ``CommandLine.cli``. The
# docstring is the description ``--about`` (and the Meltano definition) shows.
class CommandLine(TapMokapen):
    """Singer tap for the Mokapen CRM API: contacts, tasks and organizations."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        # After the SDK's own handlers, which exit 0: a stopped run must not look done.
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, self._stop)

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

    @override
    @classmethod
    def cb_config(cls, ctx: click.Context, param: click.Option, value: tuple[str, ...]) -> t.Any:
        """``--config``, with a missing or unreadable file as one line and exit code 1."""
        try:
            # The files, for the command --authorize tells the user to run next.
            ctx.meta["tap_mokapen.config_files"] = tuple(v for v in value if v != "ENV")
            return super().cb_config(ctx, param, value)
        except FileNotFoundError as exc:
            cls.logger.error("The config file does not exist: %s", exc.args[0] if exc.args else exc)
        except ValueError as exc:  # JSONDecodeError, of json or simplejson; not UTF-8
            files = ", ".join(value)
            cls.logger.error(
                "The config file %s is not valid JSON: %s", files, redact(str(exc), 200)
            )
        except RecursionError:
            files = ", ".join(value)
            cls.logger.error("The config file %s is nested too deep to be a config", files)
        ctx.exit(1)

    @override
    @classmethod
    def get_singer_command(cls) -> click.Command:
        command = super().get_singer_command()
        command.params += [plan.option(), listing_cli.option(), resync_cli.option()]
        command.params += consent.options()
        return command

    @override
    @classmethod
    def invoke(
        cls,
        *,
        plan: str | None = None,
        list_organizations: bool = False,
        resync: tuple[str, ...] = (),
        authorize: bool = False,
        no_browser: bool = False,
        **kwargs: t.Any,
    ) -> None:
        """The SDK's command (or ``--plan``, ``--list-organizations``, ``--resync``,
        ``--authorize``), with a MokapenError as one line and exit 1."""
        with cls._one_line_errors(authorizing=authorize):
            if authorize:
                cls.authorize(kwargs.get("config"), kwargs.get("catalog"), no_browser=no_browser)
            elif resync:
                state = kwargs.get("state")
                print(resync_cli.run(_text_of(state, "state") if state else None, resync))
            elif list_organizations:
                tap = cls.from_options(
                    kwargs.get("config"), kwargs.get("catalog"), None, listing=True
                )
                print(listing_cli.run(tap.run.organizations))
            elif plan:
                cls.print_plan(
                    plan,
                    config=kwargs.get("config"),
                    catalog=kwargs.get("catalog"),
                    state=cls._readable_state(kwargs.get("state")),
                )
            else:
                cls.sync(**kwargs)

    @classmethod
    @contextlib.contextmanager
    def _one_line_errors(cls, *, authorizing: bool = False) -> t.Iterator[None]:
        """Whatever the command, an error that ends it is one line and exit code 1 (a
        stop by signal, 128 + its number)."""
        try:
            yield
        except StopRequested as stop:
            if authorizing:  # no run, no STATE: only the consent stops
                cls.logger.warning(
                    "Stopped by signal %s: no consent was kept",
                    signal.Signals(stop.number).name,
                )
                sys.exit(128 + stop.number)
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

    @override
    @classmethod
    def cb_discover(cls, ctx: click.Context, param: click.Option, value: bool) -> None:
        """``--discover``, with every setting given checked first (a credential not given
        yet is no problem: discovery needs none) and any error one line."""
        if not value:
            return
        config = ctx.params.get("config")
        with cls._one_line_errors():
            tap = cls.from_options(config, None, None, describing=True, setup_mapper=False)
            tap.run_discovery()
        ctx.exit()

    @override
    @classmethod
    def cb_test(cls, ctx: click.Context, param: click.Option, value: str) -> None:
        """``--test``, as the SDK runs it, with any error one line."""
        with cls._one_line_errors():
            super().cb_test(ctx, param, value)

    @classmethod
    def sync(
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: t.Any = None,
        state: t.IO[str] | None = None,
        catalog: t.IO[str] | None = None,
    ) -> None:
        """The SDK's command (``--about``, or a sync) and, after every stream, the run's
        last line (run_report.py): the one place a run ends."""
        if about:
            if config and config.config:  # the settings given are checked, as everywhere
                cls.from_options(config, None, None, describing=True, setup_mapper=False)
            cls.print_about(about_format)
            sys.exit(0)
        cls.print_version(print_fn=cls.logger.info)
        tap = cls.from_options(config, catalog, cls._readable_state(state))
        tap.sync_all()
        tap.run.report.end()

    @classmethod
    def _readable_state(cls, file: t.IO[str] | None) -> dict[str, t.Any] | None:
        """The --state file, checked: empty is no state (with a warning); anything but a
        JSON object is one line naming the file and the problem. Parts of it that cannot
        be a state are dropped before the SDK reads it (state.repair says which)."""
        if file is None:
            return None
        text = _text_of(file, "state")
        if not text.strip():
            cls.logger.warning(
                "The state file %s is empty: every stream is read in full", file.name
            )
            return None
        document = _json_of(text, file.name, "state")
        if not isinstance(document, dict):
            msg = f"The state file {file.name} holds no JSON object: give a STATE the tap wrote"
            raise ConfigError(msg)
        for problem in state_rules.repair(document, timestamps.now()):
            cls.logger.warning("STATE: %s", problem)
        return document

    @classmethod
    def authorize(cls, config: t.Any, catalog: t.IO[str] | None, *, no_browser: bool) -> None:
        """``--authorize``: the public app's consent (consent.py); its last line printed."""
        tap = cls.from_options(config, catalog, None, authorizing=True)
        context = click.get_current_context(silent=True)
        files = context.meta.get("tap_mokapen.config_files", ()) if context else ()
        print(
            consent.run(
                tap.settings,
                tap.scope(),
                open_browser=not no_browser,
                user_agent=tap.user_agent,
                config_files=files,
            ),
            flush=True,
        )

    @classmethod
    def print_plan(
        cls,
        output_format: str,
        *,
        config: t.Any,
        catalog: t.IO[str] | None,
        state: dict[str, t.Any] | None,
    ) -> None:
        """``--plan``: what a sync of the selected streams costs, for one request per stream.

        With ``--state``, the page sizes learned by earlier runs are asked for."""
        tap = cls.from_options(config, catalog, state)
        print(plan.run(tap.run, tap.mokapen_streams(), output_format))

    @classmethod
    def from_options(
        cls,
        config: t.Any,
        catalog: t.IO[str] | None,
        state: dict[str, t.Any] | None,
        *,
        listing: bool = False,
        describing: bool = False,
        authorizing: bool = False,
        setup_mapper: bool = True,
    ) -> CommandLine:
        """The tap of ``--config``, ``--catalog`` and ``--state``, its config validated."""
        return cls(
            listing=listing,
            describing=describing,
            authorizing=authorizing,
            setup_mapper=setup_mapper,
            config=config.config if config else {},
            catalog=_catalog_of(catalog) if catalog else None,
            state=state,
            parse_env_config=bool(config and config.parse_env),
            validate_config=True,
        )


def _text_of(file: t.IO[str], what: str) -> str:
    """A file given on the command line, as text (the file closed, whatever comes next:
    an error that ends the run must not leave it open); one line when it is not UTF-8."""
    try:
        with file:
            return file.read()
    except UnicodeDecodeError as exc:
        msg = f"The {what} file {file.name} is not UTF-8 text (byte {exc.start} is not)"
        raise ConfigError(msg) from None


def _json_of(text: str, name: str, what: str) -> t.Any:
    """A file's JSON; one line naming the file when it is not JSON or nested too deep."""
    try:
        return json.loads(text)
    except ValueError as exc:
        msg = f"The {what} file {name} is not valid JSON: {redact(str(exc), 200)}"
        raise ConfigError(msg) from None
    except RecursionError:
        msg = f"The {what} file {name} is nested too deep to be a {what}"
        raise ConfigError(msg) from None


def _catalog_of(file: t.IO[str]) -> dict[str, t.Any]:
    """The --catalog file, as far as a Singer catalog's shape goes; one line if not."""
    document = _json_of(_text_of(file, "catalog"), file.name, "catalog")
    streams = document.get("streams") if isinstance(document, dict) else None
    problem = None
    if not isinstance(streams, list):
        problem = "it holds no list of streams"
    else:
        for entry in streams:
            if not isinstance(entry, dict) or not isinstance(entry.get("tap_stream_id"), str):
                problem = "a stream without its tap_stream_id"
            elif not isinstance(entry.get("schema"), dict):
                problem = f"the stream {entry['tap_stream_id']!r} has no schema object"
            elif not isinstance(entry.get("metadata", []), list) or not all(
                isinstance(m, dict) for m in entry.get("metadata", [])
            ):
                problem = f"the metadata of the stream {entry['tap_stream_id']!r} is not a list"
            if problem:
                break
    if problem:
        msg = f"The catalog file {file.name} is not a Singer catalog: {problem}"
        raise ConfigError(msg)
    return t.cast("dict[str, t.Any]", document)
