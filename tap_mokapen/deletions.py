"""Deletions, seen at no extra request: table versions, retired over two complete passes.

Mokapen has no ``updated_at`` filter, so every pass reads every page and sees every
live record. For a stream in ``detect_deletions`` the tap uses that the Singer way:
the stream is read whole (full table, no bookmark) and every RECORD of a pass
carries the pass's *table version*. ``ACTIVATE_VERSION V`` makes a target mark
(``_sdc_deleted_at``) or delete every row of the stream whose version is older
than V.

A row is retired only when two consecutive complete passes lacked it: when a pass
completes, the tap activates the version of the complete pass *before* it. A row
seen by either pass carries one of the two versions and stays; a record missed
once (edited mid-pass in a list ordered by last update, slid past by drift) is
read again by the next pass. The cost is latency: a record deleted in Mokapen is
retired when the second complete pass after its deletion ends.

A pass is complete for deletions only when, for every organization it must cover:

* the answers agreed with each other (paging.py: no doubt stood);
* no record was rejected (rejected.py), in any run of the pass;
* it holds at least ``1 - max_deleted_share`` of the records of the largest of
  the organization's last few complete passes (a guard against an answer cut short
  that looks whole, which a list cut a little more each pass cannot lower); a pass
  with no such count to compare with (a STATE of an earlier release) only sets it;
* nothing the pass itself saw says otherwise: no unstable order, no sampled record
  of the last complete pass live at Mokapen's show route (list_pass.py,
  record_checks.py);
* the run's organizations listing (``all_organizations``) did not fail, and the
  pass covers every organization of the last complete pass, unless the user
  confirmed one gone (``removed_organizations``);
* the activation cannot reach rows of organizations the run does not read: the
  run reads every organization the app is installed in (the organizations list
  says, one request a run), or the user says each organization has tables of its
  own (``tables_per_organization``, which the fan-out DAG sets).

State, at the stream's level::

    "table_version": {"version": 1764325200000,   # the open pass's version (ms)
                      "organizations": ["849", "850"],
                      "done": ["849"]}            # organizations that completed it
    # once the pass ended: {"version": 1764325200000, "closed": true}
    "table_complete": {"version": ..., "organizations": [...]}  # the last complete
                                                                # pass, activated when
                                                                # the next one completes
    "reinstated_organizations": ["850"]  # confirmed gone, then read again: ignored

and, in each organization's partition, ``"table_pass": {"version": ..., "rejected":
false}``. A pass spread over several runs (the quota, ``max_requests_per_run``)
keeps its version. Every organization of one run reads under the same version,
the one open when the run began (or a new one), even when an organization before
it completes or closes that version: a version then never straddles a deletion
for some organizations only. A pass to resume that began under another version
(or before detect_deletions was set) starts over, since its first pages do not
carry this version. A pass that ended without counting (a doubt, a rejection,
the guard) closes its version unactivated, and the next pass takes a new one.
When the set of organizations changes mid-pass, the open version is dropped.
STATE holds a few numbers and the organization ids, whatever the number of
records.
"""

from __future__ import annotations

import logging
import typing as t

from singer_sdk.mapper import RemoveRecordTransform
from singer_sdk.singerlib import ActivateVersionMessage

from tap_mokapen import clock

if t.TYPE_CHECKING:
    from singer_sdk import Stream
    from singer_sdk.singerlib import Message

    from tap_mokapen.registry import Installed
    from tap_mokapen.state import Partition

logger = logging.getLogger("tap-mokapen")

TABLE_VERSION = "table_version"
TABLE_COMPLETE = "table_complete"
#: Organizations of removed_organizations that a pass covered again (their
#: confirmation no longer holds).
REINSTATED = "reinstated_organizations"
#: The organizations the organizations list has ever named (at most MAX_INSTALLED): one
#: a later listing leaves out is not taken for gone (removed_organizations says so).
INSTALLED = "installed_organizations"
MAX_INSTALLED = 1000
# In each organization's partition, state.Partition keeps the version its pass is under
# and whether it rejected a record (then the pass retires nothing, even once complete).


class PassOutcome(t.NamedTuple):
    """What one organization's pass over a versioned stream came to."""

    organization: t.Any
    #: Why the answers do not add up to the whole list (paging.py), or None.
    doubt: str | None
    #: Records the pass read (all its runs), and the most of the last few complete
    #: passes (state.Partition.baseline).
    records: int
    last_complete_records: int | None
    #: Complete passes were read before, but their record counts are not known (a STATE
    #: of a release that kept none): this pass sets the baseline, it retires nothing.
    baseline_missing: bool = False
    #: The pass counted because the records settled a total that over-counts
    #: (list_pass.py): it asked about the ids at risk, not about every row the target
    #: holds, so it activates nothing and its version is never activated.
    settled: bool = False


class TableVersions:
    """The table versions of one stream, in the stream's state."""

    def __init__(
        self,
        stream: str,
        stream_state: dict[str, t.Any],
        *,
        max_deleted_share: float = 0.5,
        removed_organizations: t.Iterable[t.Any] = (),
    ) -> None:
        self.stream = stream
        self.state = stream_state
        self.max_deleted_share = max_deleted_share
        self.removed = {str(o) for o in removed_organizations}

    def open(self, organizations: t.Iterable[t.Any], *, listing_unsure: bool = False) -> int:
        """The version of the pass under way; a new one when none is open for these organizations.

        A version is opened for a set of organizations: when the set changes, the old
        version is dropped, since its pass no longer covers the same rows. Unless the
        organizations listing failed or paused this run (``listing_unsure``): the set is
        then only the configured part, and the open version is kept for the runs after.
        """
        members = sorted({str(o) for o in organizations})
        open_version = self._open()
        if open_version is not None and listing_unsure:
            return int(open_version["version"])
        if open_version is not None and open_version.get("organizations") != members:
            logger.warning(
                "'%s': the organizations changed while a pass was under way: a new table "
                "version, and no row is marked deleted for the old one",
                self.stream,
            )
            open_version = None
        if open_version is None:
            # Later than any version before, even within the same millisecond.
            version = max(int(clock.epoch_seconds() * 1000), self._last_version() + 1)
            open_version = {"version": version, "organizations": members, "done": []}
            self.state[TABLE_VERSION] = open_version
        return int(open_version["version"])

    def begin_pass(self, partition: Partition, version: int) -> bool:
        """Tie an organization's pass to ``version``; False when a resume point must go.

        A pass resumed under another version (or from a state without one) read its
        first pages under none of this version: they would be retired. It starts over.
        """
        own = partition.table_pass()
        if partition.resuming and own is not None and own.get("version") == version:
            return True
        partition.tie_table_pass(version)
        return not partition.resuming

    def completed(
        self,
        outcome: PassOutcome,
        partition: Partition,
        *,
        listing_failed: bool = False,
        installed: t.Callable[[], Installed | None] = lambda: None,
    ) -> int | None:
        """Note an organization's pass that reached the list's end; the version to activate.

        That is the version of the last complete pass, once this pass is complete for
        every organization (see the module's rules); None otherwise. ``installed`` is
        the organizations list (registry.Organizations.installed, one request a run),
        asked once the pass is complete for every organization: an activation may not
        reach rows of organizations the run does not read (``_sharing_risk``).
        """
        open_version = self._open()
        own = partition.table_pass()
        if open_version is None or own is None:
            return None
        if own.get("version") != open_version["version"]:
            return None
        org = outcome.organization
        if not self._counts(outcome, rejected=bool(own.get("rejected"))):
            # This version's pass can no longer be complete: the next pass takes a new one,
            # so rows it holds are not kept alive by a version that never counted.
            self.state[TABLE_VERSION] = {"version": open_version["version"], "closed": True}
            return None
        done = {str(o) for o in open_version["done"]} | {str(org)}
        open_version["done"] = sorted(done)
        if outcome.settled:
            open_version["settled"] = True
        waiting = sorted(set(self._members()) - done)
        if waiting:
            logger.info(
                "'%s': deletions wait for organizations %s to complete the pass",
                self.stream,
                ", ".join(waiting),
            )
            return None
        members = list(open_version["organizations"])
        self.state[TABLE_VERSION] = {"version": open_version["version"], "closed": True}
        if listing_failed:
            logger.warning(
                "'%s': the organizations listing failed this run, so this pass is not "
                "counted complete and no row is marked deleted",
                self.stream,
            )
            return None
        confirmed_gone = self._confirmed_gone(members)
        missing = sorted(self._remembered() - set(members) - confirmed_gone, key=_numeric)
        if missing:
            stale = [org for org in missing if org in self.removed]
            how = (
                "take it out of removed_organizations for one run, then put it back: that "
                "confirmation was given before the organization came back"
                if stale
                else "add it to removed_organizations and its rows will be retired"
            )
            logger.warning(
                "'%s': organization(s) %s of the last complete pass are missing from this "
                "one, so no row is marked deleted. If an organization is really gone (the "
                "app uninstalled), %s",
                self.stream,
                ", ".join(missing),
                how,
            )
            return None
        version = self._confirm(
            int(open_version["version"]), members, settled=open_version.get("settled") is True
        )
        # Asked at every complete pass, not only when there is a version to activate: the
        # organizations it names are remembered before any activation could need them.
        risk = self._sharing_risk(installed())
        if version is not None and risk:
            logger.warning(
                "'%s': two complete passes, but no row is marked deleted: %s",
                self.stream,
                risk,
            )
            return None
        return version

    def _sharing_risk(self, installed: Installed | None) -> str | None:
        """Why this activation may retire rows of organizations the run does not read.

        Fails closed: an organization listed by any earlier run counts as installed until
        removed_organizations confirms it gone, so one listing that leaves it out (a
        glitch, a page short) does not let its rows go; a list that cannot be had is a
        risk too."""
        if installed is None:
            return None
        setting = (
            "If the target's tables hold only the organizations this run reads (a schema "
            "per organization), set tables_per_organization"
        )
        if installed.failure:
            return (
                "the organizations list, which tells whether the app is installed in "
                f"organizations this run does not read, could not be had ({installed.failure}). "
                f"{setting}"
            )
        kept = self.state.get(INSTALLED)
        remembered = {str(o) for o in kept} if isinstance(kept, list) else set()
        known = sorted(remembered | installed.listed, key=_numeric)[:MAX_INSTALLED]
        self.state[INSTALLED] = known
        # Listed now: installed, whatever removed_organizations says (a confirmation holds
        # only while the organization stays missing).
        unread = list(installed.unread)
        missing = sorted(
            remembered - installed.listed - installed.read - self.removed, key=_numeric
        )
        if not (unread or missing):
            return None
        named = [*unread, *(f"{o} (listed by an earlier run)" for o in missing)]
        return (
            f"the app is also installed in organization(s) {', '.join(named[:20])}, which "
            "this run does not read: in a table shared with them, ACTIVATE_VERSION would "
            f"retire their rows. {setting}; for one confirmed gone, removed_organizations"
        )

    def _counts(self, outcome: PassOutcome, *, rejected: bool) -> bool:
        """Whether this organization's pass counts as complete for deletions (logs why not)."""
        org = outcome.organization
        if rejected:
            logger.warning(
                "'%s' of organization %s: records were rejected in this pass, so it does not "
                "count as complete for deletions (no row is marked deleted)",
                self.stream,
                org,
            )
            return False
        if outcome.doubt:  # the paginator said what contradicted what
            return False
        if outcome.baseline_missing:
            logger.warning(
                "'%s' of organization %s: no record count of an earlier complete pass is "
                "known (a STATE of an earlier release), so this pass sets the baseline "
                "(%d records) and marks nothing deleted; the next complete pass is held "
                "to it",
                self.stream,
                org,
                outcome.records,
            )
            return False
        last = outcome.last_complete_records
        if far_fewer(outcome.records, last, self.max_deleted_share):
            logger.warning(
                "'%s' of organization %s: this pass holds %d records, the last complete one "
                "%d (the most of the last few): more than max_deleted_share (%s) would be "
                "retired, so no row is marked deleted. If they were really deleted, run once "
                "with max_deleted_share set to 1 (in Meltano: TAP_MOKAPEN_MAX_DELETED_SHARE=1)",
                self.stream,
                org,
                outcome.records,
                last,
                self.max_deleted_share,
            )
            return False
        return True

    def _confirm(self, version: int, members: list[str], *, settled: bool = False) -> int | None:
        """A complete pass: it waits for the next; the one before it is activated now.
        A settled pass (or one after it) activates nothing: two passes whose answers
        agree retire rows, one settled on the ids at risk does not."""
        before = self.state.get(TABLE_COMPLETE)
        complete: dict[str, t.Any] = {"version": version, "organizations": members}
        if settled:
            complete["settled"] = True
        self.state[TABLE_COMPLETE] = complete
        if settled or (isinstance(before, dict) and before.get("settled") is True):
            logger.info(
                "'%s': a pass settled on a total that over-counts is one of the last two "
                "complete passes: no row is marked deleted",
                self.stream,
            )
            return None
        if not (isinstance(before, dict) and isinstance(before.get("version"), int)):
            logger.info(
                "'%s': a complete pass; rows it lacked are marked deleted when the next "
                "complete pass lacks them too",
                self.stream,
            )
            return None
        if before["version"] >= version:
            # Not a pass before this one (a STATE edited by hand, a clock set back):
            # activating it would retire every row of this pass.
            logger.warning(
                "'%s': the last complete pass in STATE has table version %d, not older than "
                "this pass's %d: it is not activated, and this pass starts a fresh baseline",
                self.stream,
                before["version"],
                version,
            )
            return None
        return int(before["version"])

    def _confirmed_gone(self, members: list[str]) -> set[str]:
        """The organizations of ``removed_organizations`` whose confirmation still holds.

        A confirmation holds only while the organization stays missing: once a pass
        covers it again (the app reinstalled), it is ignored, and a later omission is
        refused again, until the user takes it out of the setting (and may put it back
        when the organization is really gone)."""
        kept = self.state.get(REINSTATED)
        reinstated = {str(o) for o in kept} if isinstance(kept, list) else set()
        reinstated &= self.removed  # taken out of the setting: forgotten
        back = self.removed & {str(o) for o in members}
        for org in sorted(back - reinstated, key=_numeric):
            logger.warning(
                "'%s': organization %s is in removed_organizations but is read again: that "
                "confirmation no longer holds (a later omission retires nothing); take %s "
                "out of removed_organizations",
                self.stream,
                org,
                org,
            )
        reinstated |= back
        if reinstated:
            self.state[REINSTATED] = sorted(reinstated, key=_numeric)
        else:
            self.state.pop(REINSTATED, None)
        return self.removed - reinstated

    def _remembered(self) -> set[str]:
        """The organizations of the last complete pass: the one this pass would activate.

        Its rows that this pass does not hold are retired, so it must cover them all.
        """
        value = self.state.get(TABLE_COMPLETE)
        members = value.get("organizations") if isinstance(value, dict) else None
        return {str(o) for o in members} if isinstance(members, list) else set()

    def _members(self) -> list[str]:
        open_version = self._open()
        return list(open_version["organizations"]) if open_version else []

    def _open(self) -> dict[str, t.Any] | None:
        """The open version; None when it ended (closed), is missing or malformed."""
        value = self.state.get(TABLE_VERSION)
        if (
            isinstance(value, dict)
            and isinstance(value.get("version"), int)
            and isinstance(value.get("done"), list)
            and isinstance(value.get("organizations"), list)
            and not value.get("closed")
        ):
            return value
        return None

    def _last_version(self) -> int:
        value = self.state.get(TABLE_VERSION)
        last = value.get("version") if isinstance(value, dict) else None
        return last if isinstance(last, int) and not isinstance(last, bool) else 0


def far_fewer(records: int, last_complete: int | None, share: float) -> bool:
    """Whether a pass holds fewer than ``1 - share`` of the last complete pass's records."""
    return bool(last_complete) and records < (1 - share) * (last_complete or 0)


def _numeric(org: str) -> tuple[int, str]:
    return (int(org), org) if org.isdigit() else (2**63, org)


def forget(stream_state: dict[str, t.Any], partition: Partition) -> None:
    """A stream not (or no longer) versioned: an old version must never be activated."""
    for key in (TABLE_VERSION, TABLE_COMPLETE):
        stream_state.pop(key, None)
    partition.forget_table_pass()


def activate(stream: Stream, version: int, write_message: t.Callable[[Message], None]) -> None:
    """ACTIVATE_VERSION for the stream (and each alias a stream map gives it)."""
    for stream_map in stream.stream_maps:
        if not isinstance(stream_map, RemoveRecordTransform):
            write_message(ActivateVersionMessage(stream=stream_map.stream_alias, version=version))
    logger.info(
        "'%s': two complete passes in a row: ACTIVATE_VERSION %d (the target marks the "
        "rows of records neither pass saw as deleted)",
        stream.name,
        version,
    )
