"""tap-mokapen: the Tap, its settings, and the resources one run shares."""

from __future__ import annotations

import datetime as dt
import logging
import sys
import typing as t
from functools import cached_property
from importlib.metadata import PackageNotFoundError, version

import click
from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError

from tap_mokapen import checkpoints, plan
from tap_mokapen import settings as config_rules
from tap_mokapen.auth import MokapenAuthenticator
from tap_mokapen.errors import MokapenError, QuotaExhausted, RunPaused
from tap_mokapen.limits import RequestPacer, SlidingWindowLimiter
from tap_mokapen.output import BufferedMsgSpecWriter
from tap_mokapen.streams import STREAM_TYPES
from tap_mokapen.timestamps import to_rfc3339
from tap_mokapen.token_store import RefreshTokenStore

if t.TYPE_CHECKING:
    from tap_mokapen.client import MokapenStream

try:
    __version__ = version("tap-mokapen")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"


class TapMokapen(Tap):
    """Singer tap for the Mokapen CRM API."""

    name = "tap-mokapen"
    message_writer_class = BufferedMsgSpecWriter

    config_jsonschema = th.PropertiesList(
        th.Property(
            "client_id",
            th.StringType,
            title="Client ID",
            description="OAuth client id of your Mokapen app (private app: with "
            "client_secret; public app: with client_secret and refresh_token).",
        ),
        th.Property(
            "client_secret",
            th.StringType,
            secret=True,
            title="Client secret",
            description="OAuth client secret of the app.",
        ),
        th.Property(
            "access_token",
            th.StringType,
            secret=True,
            title="Dashboard access token",
            description="A token made with 'Generate Token' in Mokapen's Developer dashboard, "
            "used as it is (no token request). Replaces client_id and client_secret.",
        ),
        th.Property(
            "refresh_token",
            th.StringType,
            secret=True,
            title="Refresh token",
            description="A public app's refresh token from the browser consent at "
            "/oauth/authorize; exchanged for an access token on every run.",
        ),
        th.Property(
            "refresh_token_store",
            th.StringType,
            description="File that keeps a rotated refresh token between runs (owner-only "
            "permissions); default $XDG_STATE_HOME/tap-mokapen/refresh-tokens.json.",
        ),
        th.Property(
            "organization_id",
            th.CustomType({"type": ["integer", "string"]}),
            title="Organization ID",
            description="The organization to extract: its numeric id (or encrypted id "
            "string). Sent with the token request and used in every URL.",
        ),
        th.Property(
            "organization_ids",
            th.ArrayType(th.CustomType({"type": ["integer", "string"]})),
            title="Organization IDs",
            description="Several organizations to extract in one run, each with its own "
            "token, state and quota (instead of organization_id).",
        ),
        th.Property(
            "all_organizations",
            th.BooleanType,
            default=False,
            description="Also extract every organization that GET /api/v1/organizations "
            "lists for the first organization's token.",
        ),
        th.Property(
            "base_url",
            th.StringType,
            default=config_rules.DEFAULT_BASE_URL,
            title="Base URL",
            description="Site root; the token URL is {base_url}/oauth/token and the "
            "API {base_url}/api/v1. Plain http:// only for loopback hosts.",
        ),
        th.Property(
            "scope",
            th.StringType,
            default=config_rules.DEFAULT_SCOPE,
            description="Space-separated OAuth scopes requested with the token.",
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            description="The earliest updated_at to extract on a first run.",
        ),
        th.Property(
            "page_size",
            th.IntegerType,
            default=config_rules.DEFAULT_PAGE_SIZE,
            description="Records per page, sent as per_page; the tap follows the page "
            "size the server actually returns.",
        ),
        th.Property(
            "user_agent",
            th.StringType,
            description="User-Agent header; defaults to tap-mokapen/<version>.",
        ),
        th.Property(
            "requests_per_minute",
            th.IntegerType,
            default=config_rules.DEFAULT_REQUESTS_PER_MINUTE,
            description="Client-side limit on all requests (token requests included), "
            "kept within Mokapen's throttle.",
        ),
        th.Property(
            "rate_limit_window_seconds",
            th.NumberType,
            default=60,
            description="Window of requests_per_minute, in seconds. Change it only to "
            "match a server with a different window (such as the sandbox).",
        ),
        th.Property(
            "max_wait_seconds",
            th.NumberType,
            default=config_rules.DEFAULT_MAX_WAIT_SECONDS,
            description="How long one request may keep being retried (throttling, "
            "5xx, network faults) before the run fails.",
        ),
        th.Property(
            "max_requests_per_run",
            th.IntegerType,
            description="Stop the run cleanly, resumable, after this many requests.",
        ),
        th.Property(
            "progress_log_seconds",
            th.NumberType,
            default=30,
            description="Seconds between progress lines per stream (records, pages, "
            "requests, time left); 0 logs every page.",
        ),
    ).to_dict()

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """All problems in one line, naming each setting and never echoing a secret."""
        found = config_rules.problems(self.config)
        if found and raise_errors:
            message = "Invalid tap-mokapen settings: " + "; ".join(found)
            raise ConfigValidationError(message, errors=[message])
        return found

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        self._pacers: dict[int | str | None, RequestPacer] = {}
        self._authenticators: dict[int | str | None, MokapenAuthenticator] = {}
        self.paused: dict[int | str | None, RunPaused] = {}
        self._cycles: dict[int | str | None, str] = {}
        super().__init__(*args, **kwargs)

    def discover_streams(self) -> list[MokapenStream]:
        return [stream_type(tap=self) for stream_type in STREAM_TYPES]

    # -- what one run shares: settings, the request pacer, the token ----------

    @cached_property
    def settings(self) -> config_rules.Settings:
        return config_rules.Settings.from_config(self.config)

    @property
    def settings_organization(self) -> int | str | None:
        """The first configured organization: its token lists organizations."""
        return self.settings.organization_ids[0] if self.settings.organization_ids else None

    @cached_property
    def organization_ids(self) -> list[int | str]:
        configured = list(self.settings.organization_ids)
        if not self.settings.all_organizations:
            return configured
        listed = self.streams["organizations"].request_records(None)
        found = [org["id"] for org in listed if "id" in org]
        self.logger.info("all_organizations: the app reaches organizations %s", found)
        return list(dict.fromkeys(configured + found))

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    @property
    def max_wait_seconds(self) -> float:
        return self.settings.max_wait_seconds

    @cached_property
    def user_agent(self) -> str:
        return self.config.get("user_agent") or f"tap-mokapen/{__version__}"

    @cached_property
    def limiter(self) -> SlidingWindowLimiter:
        """One throttle for the whole run: Mokapen limits the client, not the organization."""
        return SlidingWindowLimiter(
            self.settings.requests_per_minute, self.settings.rate_limit_window_seconds
        )

    def pacer_for(self, organization_id: int | str | None) -> RequestPacer:
        """Each organization has its own quota, so its own request count and budget."""
        if organization_id not in self._pacers:
            self._pacers[organization_id] = RequestPacer(
                self.limiter, self.settings.max_requests_per_run
            )
        return self._pacers[organization_id]

    def authenticator_for(self, organization_id: int | str | None) -> MokapenAuthenticator:
        """Tokens are bound to an organization: one per organization, shared by streams."""
        if organization_id not in self._authenticators:
            settings = self.settings
            store = None
            if settings.auth_mode == "refresh_token":
                store = RefreshTokenStore(
                    settings.refresh_token_store,
                    client_id=settings.client_id or "",
                    organization_id=organization_id or "",
                    configured_token=settings.refresh_token or "",
                )
            self._authenticators[organization_id] = MokapenAuthenticator(
                token_url=f"{self.base_url}/oauth/token",
                client_id=settings.client_id,
                client_secret=settings.client_secret,
                organization_id=organization_id or "",
                scope=settings.scope,
                pacer=self.pacer_for(organization_id),
                user_agent=self.user_agent,
                max_wait_seconds=self.max_wait_seconds,
                access_token=settings.access_token,
                refresh_tokens=store,
            )
        return self._authenticators[organization_id]

    @property
    def authenticator(self) -> MokapenAuthenticator:
        return self.authenticator_for(self.settings_organization)

    @property
    def pacer(self) -> RequestPacer:
        return self.pacer_for(self.settings_organization)

    # -- pausing cleanly --------------------------------------------------------

    def cycle_started_at(self, context: t.Mapping[str, t.Any] | None) -> str:
        """When the partition's sync cycle began: now, or when an unfinished one did."""
        org = (context or {}).get("organization_id", self.settings_organization)
        # Decided once per run, before this run's own checkpoints change the state.
        if org not in self._cycles:
            unfinished = checkpoints.unfinished_cycle(
                self.state, org, owns_unpartitioned=org == self.settings_organization
            )
            self._cycles[org] = unfinished or self.run_started_at
        return self._cycles[org]

    @cached_property
    def run_started_at(self) -> str:
        return to_rfc3339(dt.datetime.now(dt.UTC))  # type: ignore[return-value]

    def pause(self, reason: RunPaused, stream: MokapenStream, next_page: int) -> None:
        """Stop requesting for this organization: its streams still to run are skipped."""
        org = stream.organization_id
        self.paused[org] = reason
        progress = ", ".join(
            f"{s.name} {s.stats['records']} records"
            + (" (complete)" if s.stats["completed"] else "")
            for s in self.streams.values()
            if s.stats["records"] or s.stats["completed"]
        )
        several = len(self.organization_ids) > 1
        what = f"Organization {org} paused (the others carry on)" if several else "Run paused"
        where = f"'{stream.name}' stops before page {next_page}"
        if isinstance(reason, QuotaExhausted):
            tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
            when = f"The quota resets at {tomorrow.isoformat()}T00:00:00Z (next UTC midnight)"
        else:
            when = "The next run continues"
        self.logger.warning(
            "%s: %s after %d requests; synced: %s; %s. %s, resuming from the STATE just emitted.",
            what,
            reason.reason,
            self.pacer_for(org).requests,
            progress or "nothing yet",
            where,
            when,
        )

    # -- the command line: a cost plan, and clean one-line errors -------------

    @classmethod
    def cb_plan(cls, ctx: click.Context, param: click.Option, value: str | None) -> None:
        """``--plan``: print what a sync costs, spending one request per stream."""
        if not value:
            return
        config = ctx.params.get("config")
        try:
            tap = cls(
                config=config.config if config else {},
                parse_env_config=bool(config and config.parse_env),
                validate_config=True,
            )
            print(plan.run(tap, value))
        except MokapenError as exc:
            cls.logger.error("%s", exc)
            ctx.exit(1)
        ctx.exit()

    @classmethod
    def get_singer_command(cls) -> click.Command:
        command = super().get_singer_command()
        command.params.append(
            click.Option(
                ["--plan"],
                is_flag=False,
                flag_value="table",
                default=None,
                type=click.Choice(["table", "json"]),
                help="Print the records, requests, time and quota a sync will cost "
                "(one request per stream), then exit. --plan=json for JSON.",
                callback=cls.cb_plan,
                expose_value=False,
            )
        )
        return command

    # -- clean one-line errors --------------------------------------------------

    @classmethod
    def invoke(cls, *args: t.Any, **kwargs: t.Any) -> None:
        try:
            super().invoke(*args, **kwargs)
        except MokapenError as exc:
            cls.logger.error("%s", exc)
            sys.exit(1)


logging.getLogger("backoff").setLevel(logging.CRITICAL)

if __name__ == "__main__":
    TapMokapen.cli()
