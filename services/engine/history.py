"""The event history beyond what the journal holds: searching it (memory first, then the
database in a worker thread), exporting it, and enforcing its retention."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from ..event_log import EventQuery, export_format, write_export
from ..views import CommandResult, EventPage, EventView
from .journal import Journal, first_line

if TYPE_CHECKING:
    from ..config import LogsConfig
    from ..ports import Clock, Store

log = logging.getLogger("tui_trader.engine")

RETENTION_EVERY_S = 3600.0
"""How often the retention of the event history is enforced (first a minute after start)."""


class History:
    def __init__(self, journal: Journal, store: Store, clock: Clock, config: LogsConfig) -> None:
        self.journal, self.store, self.clock, self.config = journal, store, clock, config
        self.next_retention = 0.0
        self.retention_task: asyncio.Task | None = None

    async def find_events(self, query: EventQuery, before_id: int | None = None, limit: int = 200) -> EventPage:
        """Up to `limit` matching events older than before_id, newest first: the database's
        (read in a worker thread) together with the ones in memory not written yet."""
        recent = [e for e in self.journal.events if (before_id is None or e.id < before_id) and query.matches(e)]
        error = ""
        try:
            stored = await asyncio.to_thread(self.store.read_events, query, before_id=before_id, limit=limit)
        except Exception as exc:  # the database is down: what memory holds is still shown
            log.warning("reading the event history failed: %s", exc)
            error = f"the database cannot be read ({first_line(exc)}): showing the events in memory"
            stored = []
        merged = {e.id: e for e in stored}
        merged.update((e.id, e) for e in recent)  # memory holds the newest acknowledgements
        return EventPage(sorted(merged.values(), key=lambda e: e.id, reverse=True)[:limit], error)

    async def export_events(self, query: EventQuery, path: Path) -> CommandResult:
        """Write every event matching `query` (oldest first) to `path`, CSV or JSON lines by
        its suffix. An existing file is never overwritten."""
        path = path.expanduser()
        if export_format(path) is None:
            return CommandResult.error(f"{path.name}: end the file name with .csv or .jsonl")
        if path.exists():
            return CommandResult.error(f"{path} already exists: choose another name")
        recent = [e for e in self.journal.events if query.matches(e)]
        up_to = recent[-1].id if recent else None

        def events() -> Iterator[EventView]:
            last = 0
            for e in self.store.iter_events(query, up_to_id=up_to):
                last = e.id
                yield e
            yield from (e for e in recent if e.id > last)  # not written to the database yet

        def write() -> int | None:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                path.touch(exist_ok=False)
            except FileExistsError:  # another export took the name since the check
                return None
            try:
                return write_export(path, events())
            except BaseException:
                path.unlink(missing_ok=True)  # nothing half-written is left behind
                raise

        try:
            count = await asyncio.to_thread(write)
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
            return CommandResult.error(f"cannot write {path}: {exc.strerror or exc}{where}")
        except Exception as exc:  # the database failed mid-way
            log.exception("event export failed")
            return CommandResult.error(f"the export failed: {first_line(exc)}")
        if count is None:
            return CommandResult.error(f"{path} already exists: choose another name")
        return CommandResult.success(f"{count} event(s) written to {path}")

    def tick(self, now: float) -> None:
        loop = self.journal.loop
        if now < self.next_retention or loop is None or self.retention_task is not None:
            return
        self.next_retention = now + RETENTION_EVERY_S
        self.retention_task = loop.create_task(self.enforce_retention(), name="event-retention")

    async def enforce_retention(self) -> int:
        """Delete events older than logs.retention_days and beyond logs.max_rows (never an
        unread alert), in a worker thread, in small batches. Returns how many went."""
        cfg = self.config
        cutoff = self.clock.now() - cfg.retention_days * 86400.0
        try:
            deleted = await asyncio.to_thread(self.store.purge_events, cutoff, cfg.max_rows)
        except Exception as exc:
            log.warning("event retention failed: %s", exc)
            self.journal.event("warning", "store", f"deleting old events failed ({first_line(exc)}); tried again in an hour")
            deleted = 0
        else:
            if deleted:
                self.journal.event("info", "store", f"retention: {deleted} event(s) older than {cfg.retention_days:g} "
                                   f"day(s) or beyond {cfg.max_rows} rows deleted", payload={"deleted": deleted})
        finally:
            self.retention_task = None
        self.journal.commit()
        return deleted
