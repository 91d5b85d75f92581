"""What one run keeps per organization: its token, its request pacer, its cycle, its pause.

Mokapen binds a token to one organization and counts the daily quota per
organization, while the 60-a-minute throttle is per client. So one run has one
rate limiter, and per organization one authenticator, one pacer (request count and
``max_requests_per_run`` budget), one sync cycle (state.py) and possibly a pause.
"""

from __future__ import annotations

import datetime as dt
import logging
import typing as t
from functools import cached_property

from tap_mokapen import clock, state, timestamps
from tap_mokapen.auth import MokapenAuthenticator
from tap_mokapen.config import organization_number
from tap_mokapen.errors import (
    AuthenticationError,
    ConfigError,
    MokapenError,
    QuotaExhausted,
    RunPaused,
    cut,
)
from tap_mokapen.retries import FirstContact
from tap_mokapen.throttle import RequestPacer, SlidingWindowLimiter
from tap_mokapen.token_store import RefreshTokenStore

if t.TYPE_CHECKING:
    from tap_mokapen.config import Settings

logger = logging.getLogger("tap-mokapen")

OrganizationId = int | str


def listed_ids(listed: t.Iterable[t.Any], who: str) -> list[int]:
    """The valid ids of a ``GET /organizations`` answer, each once, in listed order; one
    line names what was left out."""
    ids: list[int] = []
    invalid: list[str] = []
    for organization in listed:
        found = organization.get("id") if isinstance(organization, dict) else None
        number = organization_number(found)
        if number is None:
            invalid.append(cut(repr(found), 40))
        else:
            ids.append(number)
    if invalid:
        logger.warning(
            "%s: %d listed organization(s) without a valid id (a positive integer below "
            "2^63) are left out: %s",
            who,
            len(invalid),
            cut(", ".join(invalid), 300),
        )
    return list(dict.fromkeys(ids))


class Installed(t.NamedTuple):
    """The organizations list, as deletions need it (Organizations.installed)."""

    #: Every organization listed (numeric ids as text; one without a usable id as shown).
    listed: frozenset[str]
    #: Those this run does not read, in listed order.
    unread: tuple[str, ...]
    #: The organizations this run reads, as configured and as numbers.
    read: frozenset[str]
    #: Why the list could not be had, if it could not.
    failure: str | None = None


class Organizations:
    """The per-organization resources of one run, created on first use."""

    def __init__(
        self,
        settings: Settings,
        *,
        user_agent: str,
        scope: t.Callable[[], str],
        tap_state: t.Callable[[], t.Mapping[str, t.Any]],
        list_organizations: t.Callable[[], t.Iterable[t.Any]],
    ) -> None:
        self.settings = settings
        self.user_agent = user_agent
        self._scope = scope
        self._current_state = tap_state
        self._list_organizations = list_organizations
        self._pacers: dict[OrganizationId, RequestPacer] = {}
        self._authenticators: dict[OrganizationId, MokapenAuthenticator] = {}
        self._cycles: dict[OrganizationId, str] = {}
        self._numeric: dict[OrganizationId, OrganizationId] = {}
        self._spelling: dict[OrganizationId, OrganizationId] = {}
        self.paused: dict[OrganizationId, RunPaused] = {}
        #: Whether any server answer arrived this run: until one does, a refused
        #: connection is a configuration problem, not a fault to wait out.
        self.first_contact = FirstContact()
        self.refused: dict[OrganizationId, MokapenError] = {}
        #: Why all_organizations could not list the organizations this run, if it could
        #: not: the run extracts the configured ones, activates no table version (an
        #: organization left out would see its rows retired) and exits 1.
        self.listing_failure: str | None = None
        #: The listing met the quota or the run's budget: the run is paused, not failed,
        #: but it activates no table version either.
        self.listing_paused = False
        self.run_started_at = timestamps.now()

    @property
    def first(self) -> OrganizationId:
        """The first configured organization, as configured: its token lists organizations."""
        return self.settings.organization_ids[0] if self.settings.organization_ids else ""

    @cached_property
    def ids(self) -> list[OrganizationId]:
        """The organizations to extract, as configured, plus listed ones (all_organizations).

        Encrypted ids are resolved to numbers by each stream as it starts (``numeric``),
        where a failure ends that organization's streams only.
        """
        configured = list(self.settings.organization_ids)
        if not self.settings.all_organizations:
            return configured
        try:
            listed = list(self.listed())
        except RunPaused as exc:
            # The quota or the run's budget: a pause, not a failure; no deletion either.
            self.listing_paused = True
            logger.warning(
                "all_organizations: the organizations list waits for the next run (%s); "
                "extracting the configured ones only, and no deletion is detected this run",
                exc.reason,
            )
            return configured
        except MokapenError as exc:
            self.listing_failure = f"all_organizations could not list the organizations: {exc}"
            logger.error(
                "%s. Extracting the configured ones only; no deletion is detected this run",
                self.listing_failure,
            )
            return configured
        found = listed_ids(listed, "all_organizations")
        logger.info(
            "all_organizations: the app reaches organizations %s",
            cut(", ".join(map(str, found)), 500),
        )
        # An organization configured by its encrypted id is not added a second time.
        known = set(configured) | {
            organization_number(o.get("id"))
            for o in listed
            if isinstance(o, dict) and o.get("encrypted_id") in configured
        }
        return configured + [org for org in dict.fromkeys(found) if org not in known]

    @cached_property
    def installed(self) -> Installed | None:
        """What the organizations list says of the organizations this run does not read,
        for deletions (deletions.py): a table shared by organizations read one process
        each (the fan-out DAG) holds rows this run's passes never see. None where nothing
        needs asking: the user says the tables are separate (tables_per_organization),
        or every listed organization is read (all_organizations). Asked once a run (one
        request), when a versioned pass completes."""
        if self.settings.tables_per_organization or self.settings.all_organizations:
            return None
        read = {str(o) for o in self.settings.organization_ids}
        read |= {str(n) for n in self._numeric.values()} | {str(o) for o in self._numeric}
        try:
            listed = list(self.listed())
        except (RunPaused, MokapenError) as exc:
            return Installed(frozenset(), (), frozenset(read), failure=cut(str(exc), 300))
        names: list[str] = []
        for item in listed:
            if not isinstance(item, dict):
                continue
            encrypted = item.get("encrypted_id")
            if encrypted is not None and str(encrypted) in read:
                continue
            number = organization_number(item.get("id"))
            # Listed without a usable id: an organization all the same, and not this run's.
            name = str(number) if number is not None else cut(repr(item.get("id")), 40)
            if name not in names:
                names.append(name)
        unread = tuple(name for name in names if name not in read)
        return Installed(frozenset(names), unread, frozenset(read))

    def listed(self) -> t.Iterator[t.Any]:
        """``GET /api/v1/organizations`` for the first organization's token, as listed."""
        return iter(self._list_organizations())

    def numeric(self, org: OrganizationId) -> OrganizationId:
        """The numeric id of an organization configured by its encrypted id.

        Records carry one spelling of their organization, the number, so joins and
        upserts work the same whichever spelling the config uses. The token answer
        says it (no extra request); a dashboard token asks the organizations list.
        """
        if isinstance(org, int) or org in self._numeric or not org:
            return self._numeric.get(org, org)
        auth = self.authenticator(org)
        auth.ensure_token()
        found = auth.token_organization_id
        if found is None:
            listed = self.listed()
            found = next(
                (
                    o.get("id")
                    for o in listed
                    if isinstance(o, dict) and org in (o.get("encrypted_id"), o.get("id"))
                ),
                None,
            )
        number = organization_number(found)
        if number is None:
            msg = (
                f"organization_id {org!r}: Mokapen did not say which numeric organization "
                "it is; configure the numeric id instead"
            )
            raise ConfigError(msg)
        found = number
        logger.info("Organization %s is organization %d", org, found)
        self._numeric[org] = found
        # One token and one quota per organization, whichever spelling is used.
        self._authenticators.setdefault(found, auth)
        self._pacers.setdefault(found, self.pacer(org))
        self._spelling[found] = org
        return found

    @cached_property
    def limiter(self) -> SlidingWindowLimiter:
        """One throttle for the whole run: Mokapen limits the client, not the organization."""
        return SlidingWindowLimiter(
            self.settings.requests_per_minute, self.settings.rate_limit_window_seconds
        )

    def pacer(self, org: OrganizationId) -> RequestPacer:
        """Each organization has its own quota, so its own request count and budget."""
        if org not in self._pacers:
            self._pacers[org] = RequestPacer(self.limiter, self.settings.max_requests_per_run)
        return self._pacers[org]

    def authenticator(self, org: OrganizationId) -> MokapenAuthenticator:
        """Tokens are bound to an organization: one per organization, shared by streams."""
        if org not in self._authenticators:
            settings = self.settings
            configured = self._spelling.get(org, org)
            store = self._refresh_tokens(configured)
            self._authenticators[org] = MokapenAuthenticator(
                token_url=f"{settings.base_url}/oauth/token",
                client_id=settings.client_id,
                client_secret=settings.client_secret,
                organization_id=configured,
                scope=self._scope(),
                pacer=self.pacer(org),
                user_agent=self.user_agent,
                max_wait_seconds=settings.max_wait_seconds,
                deadline_seconds=settings.request_deadline_seconds,
                max_bytes=settings.max_response_bytes,
                first_contact=self.first_contact,
                access_token=settings.access_token,
                refresh_tokens=store,
                # Only the client_credentials grant asks for scopes (the others carry theirs).
                narrowable=settings.scope is None and store is None and not settings.access_token,
            )
        return self._authenticators[org]

    def _refresh_tokens(self, org: OrganizationId) -> RefreshTokenStore | None:
        """The organization's refresh-token store, when its access is a public app's.

        The rule: a configured refresh_token is a public app (and wins over the store,
        as it always did); with only client_id and client_secret, the refresh token that
        ``tap-mokapen --authorize`` stored for this app and organization makes it a
        public app too; with none stored it is a private app, client credentials, as
        it always was (so a private app never needs a consent, and a public app that
        was never authorized hears from Mokapen's refusal, with the hint to authorize).
        """
        settings = self.settings
        if settings.auth_mode == "access_token":
            return None
        store = RefreshTokenStore(
            settings.refresh_token_store,
            client_id=settings.client_id or "",
            organization_id=org,
            configured_token=settings.refresh_token,
        )
        if settings.auth_mode == "refresh_token":
            return store
        if not store.holds_token():
            return None
        logger.info(
            "Organization %s: using the refresh token tap-mokapen --authorize stored in %s "
            "(a public app)",
            org,
            store.path,
        )
        return store

    def has_token(self, org: OrganizationId) -> bool:
        """Whether the organization's token was had this run (nothing is requested)."""
        found = self._authenticators.get(org)
        return bool(found and found.access_token)

    def why_skip(self, org: OrganizationId) -> str | None:
        """Why the organization's streams are not read any more this run, if they are not."""
        if org in self.paused:
            return "its requests are paused"
        refused = self.refused.get(org)
        if isinstance(refused, AuthenticationError):
            return "its credentials were refused"
        if refused is not None:  # no token for another reason: a wrong URL, the network
            return "no token could be had (the error above says why)"
        return None

    def cycle_started_at(self, org: OrganizationId) -> str:
        """When the organization's sync cycle began: now, or when an unfinished one did."""
        # Decided once per run, before this run's own checkpoints change the state.
        if org not in self._cycles:
            unfinished = state.unfinished_cycle(
                self._current_state(), org, owns_unpartitioned=org == self.first
            )
            self._cycles[org] = unfinished or self.run_started_at
        return self._cycles[org]

    def pause(self, org: OrganizationId, reason: RunPaused, where: str, progress: str) -> None:
        """Stop requesting for this organization: its streams still to run are skipped."""
        self.paused[org] = reason
        several = len(self.ids) > 1
        what = f"Organization {org} paused (the others carry on)" if several else "Run paused"
        if isinstance(reason, QuotaExhausted):
            tomorrow = clock.now().date() + dt.timedelta(days=1)
            when = f"The quota resets at {tomorrow.isoformat()}T00:00:00Z (next UTC midnight)"
        else:
            when = "The next run continues"
        logger.warning(
            "%s: %s after %d requests; synced: %s; %s. %s, resuming from the STATE just emitted.",
            what,
            reason.reason,
            self.pacer(org).requests,
            progress or "nothing yet",
            where,
            when,
        )
