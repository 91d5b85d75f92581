"""Resumable syncing: a STATE after every page, a clean pause, progress and summary lines.

A mixin of the base stream (client.py). The state it keeps is described in
checkpoints.py; here is when it is written and what is logged.
"""

from __future__ import annotations

import time
import typing as t

from tap_mokapen import checkpoints
from tap_mokapen.errors import RunPaused

if t.TYPE_CHECKING:
    import collections

    from singer_sdk.helpers.types import Context

    from tap_mokapen.pagination import LaravelPaginator
    from tap_mokapen.records import PageReader
    from tap_mokapen.tap import TapMokapen


class ResumableSync:
    """get_pages with checkpoints; the stream supplies the paginator and request_pages."""

    mokapen_tap: TapMokapen
    organization_id: int | str
    stats: collections.Counter[str]
    name: str
    replication_key: str | None
    log: t.Callable[..., None]
    _paginator: LaravelPaginator | None
    _markers: dict[str, t.Any] | None
    page_reader: PageReader
    request_pages: t.Callable[[Context | None], t.Iterator[list[t.Any]]]

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Records as dicts, for the SDK's own record path (page_sync.py has the fast one)."""
        to_dict = self.page_reader.to_dict
        for page in self.get_pages(context):
            yield from map(to_dict, page)

    def get_pages(self, context: Context | None) -> t.Iterator[list[t.Any]]:
        """The stream's pages for one organization, from where the last run stopped."""
        tap = self.mokapen_tap
        self.organization_id = (context or {}).get("organization_id", tap.settings_organization)
        state = self.get_context_state(context)
        cycle = self._cycle = tap.cycle_started_at(context)
        paused = self.organization_id in tap.paused
        if paused or checkpoints.completed_in_cycle(state, cycle):
            self.log(
                "Skipping '%s' for organization %s: %s",
                self.name,
                self.organization_id,
                "its requests are paused" if paused else "already synced in this cycle",
            )
            return
        self._state = state
        self._resume = checkpoints.start(state, self.replication_key)
        self._markers = state.get(checkpoints.PROGRESS_MARKERS)
        if self._resume:
            self.log("Resuming '%s' at page %d", self.name, self._resume["next_page"])
        started = self._started = self._last_progress_log = time.monotonic()
        try:
            yield from self.request_pages(context)
        except RunPaused as exc:
            paginator = self._paginator
            next_page = paginator.current_value if paginator else 1
            checkpoints.pause(
                state,
                next_page=next_page,
                cycle=cycle,
                total=paginator.total if paginator else None,
                per_page=paginator.per_page if paginator else None,
            )
            tap.pause(exc, self, next_page)
        else:
            checkpoints.finish(state, cycle=cycle)
            self.stats["completed"] = 1
        finally:
            self.stats["seconds"] += time.monotonic() - started
            if self._paginator:
                self.stats["drift_rereads"] += self._paginator.drift_rereads
            self.log_summary()

    def _checkpoint(self, paginator: LaravelPaginator) -> None:
        self.stats["pages"] += 1
        self._log_progress(paginator)
        if paginator.finished:
            return  # the stream's own end writes the final state
        checkpoints.checkpoint(
            self._state,
            next_page=paginator.current_value,
            cycle=self._cycle,
            total=paginator.total,
            per_page=paginator.per_page,
        )
        self.state_manager.is_flushed = False
        self._write_state_message()

    def _log_progress(self, paginator: LaravelPaginator) -> None:
        """A steady progress line: a throttled sync of a large account takes hours."""
        now = time.monotonic()
        interval = self.mokapen_tap.settings.progress_log_seconds
        if now - self._last_progress_log < interval:
            return
        self._last_progress_log = now
        total, size = paginator.total, paginator.per_page
        pages = f"{self.stats['pages']} pages"
        estimate = ""
        if total is not None and size:
            all_pages = -(-total // size)
            left = max(0, all_pages - paginator.covered // size)
            pages = f"page {paginator.covered // size} of {all_pages}"
            elapsed = now - self._started
            if self.stats["pages"] and left:
                seconds = left * elapsed / self.stats["pages"]
                estimate = f"; {left} pages left, about {seconds / 60:.1f} min at this pace"
        self.log(
            "Progress of '%s': %d records, %s, %d requests%s",
            self.name,
            self.stats["records"],
            pages,
            self.stats["requests"],
            estimate,
        )

    def log_summary(self) -> None:
        stats = self.stats
        self.log(
            "Summary of '%s': %d records, %d pages, %d requests, %d retries, %d 429 "
            "answers, %d drift re-reads, %.1f s",
            self.name,
            stats["records"],
            stats["pages"],
            stats["requests"],
            stats["retries"],
            stats["http_429"],
            stats["drift_rereads"],
            stats["seconds"],
        )
