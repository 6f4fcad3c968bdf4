"""The engine's events and alerts: raising them, acknowledging alerts, searching the history
(memory first, then the database in a worker thread), exports, retention, and the feed's
health as events. A mixin of services.engine.Engine: it uses the engine's clock, store,
pending writes and loop."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from .domain import EventRecord
from .event_log import EventQuery, event_from_row, export_format, write_export
from .views import CommandResult, EventView

if TYPE_CHECKING:
    from .domain import Group

log = logging.getLogger("tui_trader.engine")

RECENT_EVENTS = 500
"""Events the engine holds in memory (the Logs screen pages the rest from the database)."""

MAX_ALERTS_SHOWN = 200
"""Unread alerts in a snapshot (newest first); the count covers all of them."""

FAULT_ALERT_EVERY_S = 60.0
"""An internal error caught at a boundary is alerted (and its traceback logged) at most once
in this long per place, symbol and kind of error: a flood of the same failure is one alert."""

RETENTION_EVERY_S = 3600.0
"""How often the retention of the event history is enforced (first a minute after start)."""


@dataclass(frozen=True, slots=True)
class EventPage:
    """A page of the history, newest first. `error` says why the database part is missing."""

    events: list[EventView]
    error: str = ""


class EngineEvents:
    """Mixed into Engine (which sets up everything these use)."""

    clock: Any
    config: Any
    store: Any
    feed: Any
    book: Any
    state: str
    version: int
    _pending: list
    _loop: asyncio.AbstractEventLoop | None
    _loop_thread: int
    _next_id: Callable[[str], int]
    _commit: Callable[[], None]

    def _init_events(self) -> None:
        self.events: deque[EventView] = deque(maxlen=RECENT_EVENTS)
        self.event_listeners: list[Callable[[EventView], None]] = []
        self._unread: dict[int, EventRecord] = {}  # alerts not acknowledged yet, oldest first
        self._alerts_view: tuple[EventView, ...] | None = ()
        self._stale_symbols: frozenset[str] = frozenset()
        self._quoted = 0  # symbols in the book at the last look at their staleness
        self._oldest_fresh = float("inf")  # the oldest fresh quote's ts then: nothing goes stale before it does
        self._feed_down = False
        self._next_retention = 0.0
        self._retention_task: asyncio.Task | None = None
        self._faults: dict[tuple, list] = {}  # (where, symbol, error type) -> [last alerted at, repeats since]

    @property
    def unread_alerts(self) -> int:
        return len(self._unread)

    def alerts_view(self) -> tuple[EventView, ...]:
        """Unread alerts, newest first (at most MAX_ALERTS_SHOWN), for the snapshot."""
        if self._alerts_view is None:
            newest = list(self._unread.values())[-MAX_ALERTS_SHOWN:]
            self._alerts_view = tuple(_event_view(rec) for rec in reversed(newest))
        return self._alerts_view

    # == raising ============================================================================

    def note(self, level: str, category: str, message: str, *, strategy_id: str | None = None,
             payload: dict | None = None, needs_ack: bool = False) -> None:
        """An event from a component attached to the engine (shown in Logs, persisted)."""
        self._event(level, category, message, strategy_id=strategy_id, payload=payload, needs_ack=needs_ack)
        self._commit()

    def _event(self, level: str, category: str, message: str, group: "Group | None" = None, *,
               strategy_id: str | None = None, payload: dict | None = None, needs_ack: bool = False,
               symbol: str | None = None) -> None:
        """`symbol`: the one the event is about when not its group's (a basket's other legs)."""
        rec = EventRecord(self._next_id("event"), self.clock.now(), level, category, message,
                          strategy_id or (group.strategy_id if group else None),
                          symbol or (group.symbol if group else None), group.id if group else None, payload, needs_ack)
        view = _event_view(rec)
        self.events.append(view)
        if needs_ack:
            self._unread[rec.id] = rec
            self._alerts_view = None
        self._pending.append(rec)
        for listener in self.event_listeners:
            listener(view)
        self.version += 1

    def _internal_error(self, where: str, exc: BaseException, symbol: str | None = None) -> None:
        """An exception caught at a boundary (one quote, one symbol, one component) so that the
        rest goes on: its traceback to the log file and an error alert naming where, once per
        FAULT_ALERT_EVERY_S for the same place, symbol and kind of error."""
        now = self.clock.now()
        key = (where, symbol, type(exc).__name__)
        seen = self._faults.get(key)
        if seen is not None and now - seen[0] < FAULT_ALERT_EVERY_S:
            seen[1] += 1
            return
        repeats = seen[1] if seen is not None else 0
        self._faults[key] = [now, 0]
        on = f" on {symbol}" if symbol else ""
        log.error("internal error in %s%s", where, on, exc_info=exc)
        again = f" ({repeats} more time(s) since the last alert)" if repeats else ""
        error = error_text(exc)
        self._event("error", "engine", f"internal error in {where}{on}: {error}{again}; the rest goes on; see the log file",
                    symbol=symbol, needs_ack=True, payload={"where": where, "symbol": symbol, "error": error, "repeats": repeats})

    def _restore_events(self, recent: list[dict], unread: list[dict]) -> None:
        for row in unread:
            rec = EventRecord(row["id"], row["ts"], row["level"], row["category"], row["message"], row["strategy_id"],
                              row["symbol"], row["group_id"], row["payload"], True)
            rec.saved = True
            self._unread[rec.id] = rec
        self._alerts_view = None
        for row in recent:
            self.events.append(event_from_row(row))

    # == acknowledging =======================================================================

    def ack_alerts(self, ids: Iterable[int] | None = None) -> CommandResult:
        """Acknowledge these alerts (every unread one when ids is None); persisted, so they
        stay read after a restart."""
        if ids is None:
            targets = list(self._unread)
        else:
            wanted = list(ids)
            targets = [i for i in wanted if i in self._unread]
            if not targets:
                return CommandResult.error(f"no unread alert {', '.join(f'#{i}' for i in wanted)}" if wanted
                                           else "no alert given")
        if not targets:
            return CommandResult.error("no unread alerts")
        now = self.clock.now()
        for i in targets:
            rec = self._unread.pop(i)
            rec.acked_at = now
            self._pending.append(rec)
        acked = set(targets)
        self.events = deque((replace(e, acked_at=now) if e.id in acked else e for e in self.events),
                            maxlen=RECENT_EVENTS)
        self._alerts_view = None
        what = f"alert #{targets[0]}" if len(targets) == 1 else f"{len(targets)} alerts"
        self._event("info", "operator", f"{what} acknowledged by the operator", payload={"acked": targets})
        self._commit()
        return CommandResult.success(f"{what} acknowledged")

    # == the history =========================================================================

    async def find_events(self, query: EventQuery, before_id: int | None = None, limit: int = 200) -> EventPage:
        """Up to `limit` matching events older than before_id, newest first: the database's
        (read in a worker thread) together with the ones in memory not written yet."""
        recent = [e for e in self.events if (before_id is None or e.id < before_id) and query.matches(e)]
        error = ""
        try:
            stored = await asyncio.to_thread(self.store.read_events, query, before_id=before_id, limit=limit)
        except Exception as exc:  # the database is down: what memory holds is still shown
            log.warning("reading the event history failed: %s", exc)
            error = f"the database cannot be read ({_first_line(exc)}): showing the events in memory"
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
        recent = [e for e in self.events if query.matches(e)]
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
            return CommandResult.error(f"the export failed: {_first_line(exc)}")
        if count is None:
            return CommandResult.error(f"{path} already exists: choose another name")
        return CommandResult.success(f"{count} event(s) written to {path}")

    # == retention ============================================================================

    def _tick_retention(self, now: float) -> None:
        if now < self._next_retention or self._loop is None or self._retention_task is not None:
            return
        self._next_retention = now + RETENTION_EVERY_S
        self._retention_task = self._loop.create_task(self.enforce_retention(), name="event-retention")

    async def enforce_retention(self) -> int:
        """Delete events older than logs.retention_days and beyond logs.max_rows (never an
        unread alert), in a worker thread, in small batches. Returns how many went."""
        cfg = self.config.logs
        cutoff = self.clock.now() - cfg.retention_days * 86400.0
        try:
            deleted = await asyncio.to_thread(self.store.purge_events, cutoff, cfg.max_rows)
        except Exception as exc:
            log.warning("event retention failed: %s", exc)
            self._event("warning", "store", f"deleting old events failed ({_first_line(exc)}); tried again in an hour")
            deleted = 0
        else:
            if deleted:
                self._event("info", "store", f"retention: {deleted} event(s) older than {cfg.retention_days:g} day(s) "
                            f"or beyond {cfg.max_rows} rows deleted", payload={"deleted": deleted})
        finally:
            self._retention_task = None
        self._commit()
        return deleted

    # == feed health ==========================================================================

    def _tick_feed_health(self, now: float) -> None:
        """Feed down/up and symbols going stale/fresh again are events (a symbol that never
        had a quote is not called stale). The symbols are looked at only when one can have
        changed: a symbol is new, a stale one is fresh again, or the oldest fresh quote (quotes
        only get newer) has gone stale."""
        health = self.feed.health
        down = health.last_event_at is not None and not health.is_healthy(now, self.book.max_age_s)
        if down != self._feed_down:
            self._feed_down = down
            if down:
                why = f": {health.error}" if health.error else ""
                self._event("error", "feed", f"feed {health.name} is down (no data for {self.book.max_age_s:g} s){why}; "
                            "no entries or exits until it is back", needs_ack=True, payload={"feed": health.name})
            else:
                self._event("info", "feed", f"feed {health.name} is back", payload={"feed": health.name})
        quotes, max_age = self.book.quotes, self.book.max_age_s
        if (now - self._oldest_fresh <= max_age and len(quotes) == self._quoted and not (
                self._stale_symbols and any(now - quotes[sym].ts <= max_age for sym in self._stale_symbols))):
            return
        stale = frozenset(sym for sym, q in quotes.items() if now - q.ts > max_age)
        self._quoted = len(quotes)
        self._oldest_fresh = min((q.ts for sym, q in quotes.items() if sym not in stale), default=float("inf"))
        if stale != self._stale_symbols:
            went, back = sorted(stale - self._stale_symbols), sorted(self._stale_symbols - stale)
            self._stale_symbols = stale
            if went and not down:
                self._event("warning", "feed", f"{', '.join(went)}: no fresh quote for {self.book.max_age_s:g} s; "
                            "stale prices trigger no entry or exit", payload={"stale": went})
            if back:
                self._event("info", "feed", f"{', '.join(back)}: fresh quotes again", payload={"fresh": back})

    # == store outage ========================================================================

    # The store calls these from inside a write (possibly on its write-behind thread): the
    # alert is raised on the loop, and its own row joins the next write.

    def _store_failed(self, message: str) -> None:
        self._on_loop(self._event, "critical", "store",
                      f"database write failed ({message}); trading continues, writes are queued in memory", needs_ack=True)

    def _store_recovered(self, count: int) -> None:
        self._on_loop(self._event, "warning", "store", f"database is back; {count} queued write(s) committed", needs_ack=True)

    def _store_refused(self, what: str) -> None:
        self._on_loop(self._event, "error", "store",
                      f"bug: the database refused {what}; dropped, as is any later write of it that it refuses (the "
                      "rows are in the log file); every other write is committed", needs_ack=True)

    def _on_loop(self, fn, *args, **kwargs) -> None:
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread:
            fn(*args, **kwargs)
        else:
            loop.call_soon_threadsafe(lambda: fn(*args, **kwargs))


def _event_view(rec: EventRecord) -> EventView:
    return EventView(rec.id, rec.ts, rec.level, rec.category, rec.message, rec.strategy_id, rec.symbol,
                     rec.group_id, rec.needs_ack, rec.acked_at, rec.payload)


def error_text(exc: BaseException) -> str:
    """An exception in one line: its type and the first line of its message."""
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]

