"""tap-mokapen: the Tap, its settings, and the resources one run shares."""

from __future__ import annotations

import datetime as dt
import logging
import sys
import typing as t
from functools import cached_property
from importlib.metadata import PackageNotFoundError, version

from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError

from tap_mokapen import checkpoints
from tap_mokapen import settings as config_rules
from tap_mokapen.auth import MokapenAuthenticator
from tap_mokapen.errors import MokapenError, QuotaExhausted, RunPaused
from tap_mokapen.limits import RequestPacer, SlidingWindowLimiter
from tap_mokapen.streams import STREAM_TYPES
from tap_mokapen.timestamps import to_rfc3339

if t.TYPE_CHECKING:
    from tap_mokapen.client import MokapenStream

try:
    __version__ = version("tap-mokapen")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"


class TapMokapen(Tap):
    """Singer tap for the Mokapen CRM API."""

    name = "tap-mokapen"

    config_jsonschema = th.PropertiesList(
        th.Property(
            "client_id",
            th.StringType,
            required=True,
            title="Client ID",
            description="OAuth client id of your Mokapen private app.",
        ),
        th.Property(
            "client_secret",
            th.StringType,
            required=True,
            secret=True,
            title="Client secret",
            description="OAuth client secret of the app.",
        ),
        th.Property(
            "organization_id",
            th.CustomType({"type": ["integer", "string"]}),
            required=True,
            title="Organization ID",
            description="The organization to extract: its numeric id (or encrypted id "
            "string). Sent with the token request and used in every URL.",
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

    def discover_streams(self) -> list[MokapenStream]:
        return [stream_type(tap=self) for stream_type in STREAM_TYPES]

    # -- what one run shares: settings, the request pacer, the token ----------

    @cached_property
    def settings(self) -> config_rules.Settings:
        return config_rules.Settings.from_config(self.config)

    @property
    def organization_id(self) -> int | str:
        return self.settings.organization_id

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
    def pacer(self) -> RequestPacer:
        limiter = SlidingWindowLimiter(
            self.settings.requests_per_minute, self.settings.rate_limit_window_seconds
        )
        return RequestPacer(limiter, self.settings.max_requests_per_run)

    @cached_property
    def authenticator(self) -> MokapenAuthenticator:
        return MokapenAuthenticator(
            token_url=f"{self.base_url}/oauth/token",
            client_id=self.settings.client_id,
            client_secret=self.settings.client_secret,
            organization_id=self.organization_id,
            scope=self.settings.scope,
            pacer=self.pacer,
            user_agent=self.user_agent,
            max_wait_seconds=self.max_wait_seconds,
        )

    # -- pausing cleanly --------------------------------------------------------

    paused: RunPaused | None = None

    @cached_property
    def cycle_started_at(self) -> str:
        """When the current sync cycle began: now, or when an unfinished one did."""
        return checkpoints.unfinished_cycle(self.state) or to_rfc3339(dt.datetime.now(dt.UTC))

    def pause(self, reason: RunPaused, stream: MokapenStream, next_page: int) -> None:
        """Stop requesting: the streams still to run are skipped, the state is resumable."""
        self.paused = reason
        progress = ", ".join(
            f"{s.name} {s.stats['records']} records"
            + (" (complete)" if s.stats["completed"] else "")
            for s in self.streams.values()
            if s.stats["records"] or s.stats["completed"]
        )
        where = f"'{stream.name}' stops before page {next_page}"
        if isinstance(reason, QuotaExhausted):
            tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
            when = f"The quota resets at {tomorrow.isoformat()}T00:00:00Z (next UTC midnight)"
        else:
            when = "The next run continues"
        self.logger.warning(
            "Run paused: %s after %d requests; synced: %s; %s. %s, resuming from the "
            "STATE just emitted.",
            reason.reason,
            self.pacer.requests,
            progress or "nothing yet",
            where,
            when,
        )

    # -- the command line: clean one-line errors ------------------------------

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
