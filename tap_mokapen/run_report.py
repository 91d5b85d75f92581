"""What one run did, told as it happens and once at its end: the streams that failed
and why, the organizations whose requests paused, the records rejected.

A stream that fails for a reason retrying cannot fix does not end the run: the others
go on, and the run's last line names every failure with its cause, once (``end``,
called by the command line after every stream has synced, cli.py). That line is what
``meltano config test`` and a scheduler's log show of a failed run.
"""

from __future__ import annotations

import logging
import typing as t

from tap_mokapen.errors import AuthenticationError, MokapenError, RunPaused, cut, sentences

if t.TYPE_CHECKING:
    from tap_mokapen.registry import OrganizationId, Organizations
    from tap_mokapen.rejected import Rejections

logger = logging.getLogger("tap-mokapen")


class RunReport:
    """The failures and pauses of one run, and its last line."""

    def __init__(self, organizations: Organizations, rejections: Rejections) -> None:
        self.organizations = organizations
        self.rejections = rejections
        #: The streams that failed this run: (stream, organization, cause).
        self.failures: list[tuple[str, int | str, str]] = []
        #: Organizations that failed as a whole (no token: credentials refused, server
        #: unreachable, app not installed, no scope enabled): the cause, once each...
        self.organization_failures: dict[OrganizationId, str] = {}
        #: ... and the streams each of them stopped.
        self.stopped: dict[OrganizationId, list[str]] = {}
        #: Each stream's counters (progress.py), in the order the streams sync.
        self.stream_stats: dict[str, t.Counter[str]] = {}
        #: Lists whose passes keep ending incomplete: (stream, organization, passes, why).
        self.standing_doubts: list[tuple[str, int | str, int, str]] = []

    def standing(self, stream: str, org: OrganizationId, passes: int, doubt: str) -> None:
        """A list no pass has completed for ``passes`` passes in a row: told at the end."""
        self.standing_doubts.append((stream, org, passes, doubt))

    def follow(self, stream: str, stats: t.Counter[str]) -> None:
        """Count ``stream`` in the progress a pause reports and in the last line."""
        self.stream_stats[stream] = stats

    def stream_failed(
        self, stream: str, org: OrganizationId, error: MokapenError, *, has_token: bool
    ) -> None:
        """One stream failed for a reason retrying cannot fix: say so and go on. Without
        a token, the organization failed, not the stream: told once, as the organization's."""
        if isinstance(error, AuthenticationError) or not has_token:
            # Its other streams would fail the same way, each spending a request.
            self.organizations.refused[org] = error
            if org not in self.organization_failures:
                # The cause is told once, in the run's last line (end).
                self.organization_failures[org] = str(error)
                logger.info(
                    "Organization %s failed: its streams are not read this run, and the "
                    "run's last line says why",
                    org,
                )
            self.stream_stopped(stream, org)
            return
        self.failures.append((stream, org, str(error)))
        logger.error(
            "%s",
            sentences(
                f"'{stream}' failed for organization {org}: {error}",
                "Carrying on with the other streams; the run will exit 1.",
            ),
        )

    def stream_stopped(self, stream: str, org: OrganizationId) -> None:
        """``stream`` is not read for ``org``, which failed as a whole (its cause is told)."""
        names = self.stopped.setdefault(org, [])
        if stream not in names:
            names.append(stream)

    def pause(self, reason: RunPaused, org: OrganizationId, where: str) -> None:
        """Stop requesting for the organization, saying how far the run got."""
        progress = ", ".join(
            f"{name} {stats['records']} records" + (" (complete)" if stats["completed"] else "")
            for name, stats in self.stream_stats.items()
            if stats["records"] or stats["completed"]
        )
        self.organizations.pause(org, reason, where, progress)

    def end(self) -> None:
        """After every stream: the rejections, and one line on what failed and what
        completed (a MokapenError: exit code 1)."""
        for name, count in self.rejections.counts.items():
            logger.warning("%d %s record(s) rejected (see rejected_records)", count, name)
        standing = "; ".join(
            f"'{name}' of organization {org}: {passes} incomplete passes in a row "
            f"({cut(doubt, 200)})"
            for name, org, passes, doubt in self.standing_doubts
        )
        listing = self.organizations.listing_failure
        if not (self.failures or listing or self.organization_failures):
            if standing:  # not a failure: every record went out; but say it last
                logger.warning("Lists that never complete: %s", standing)
            return
        failed = ", ".join(f"'{name}' of organization {org}" for name, org, _ in self.failures)
        causes = list(dict.fromkeys(cut(cause, 300) for _, _, cause in self.failures))
        if causes:  # the last line names why, each cause once
            failed += f" ({'cause' if len(causes) == 1 else 'causes'}: {' | '.join(causes)})"
        names = {name for name, _, _ in self.failures}
        names.update(name for stopped in self.stopped.values() for name in stopped)
        done = [
            name
            for name, stats in self.stream_stats.items()
            if stats["completed"] and name not in names
        ]
        parts = [
            sentences(
                f"Organization {org} failed: {cut(cause, 300)}",
                f"Streams it stopped: {', '.join(self.stopped.get(org, [])) or 'none'}",
            ).rstrip(".")
            for org, cause in self.organization_failures.items()
        ]
        parts += [f"{len(self.failures)} stream(s) failed: {failed}"] if failed else []
        parts += [listing] if listing else []
        parts += [f"never complete: {standing}"] if standing else []
        msg = (
            f"{'; '.join(parts)}; completed: {', '.join(done) or 'none'}. The emitted "
            "STATE resumes every stream without a gap."
        )
        raise MokapenError(msg)
