"""The engine's journal: the writes waiting for the next commit, the ids, the change counter
the publisher watches, and the events and alerts (raised, acknowledged, restored). Every
component records through it; it is the only one that writes to the store."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from dataclasses import replace
from typing import TYPE_CHECKING, Callable, Iterable

from ..domain import EventRecord, Record
from ..event_log import event_from_row
from ..views import CommandResult, EventView

if TYPE_CHECKING:
    from ..domain import Group, Leg
    from ..ports import Clock, Store

log = logging.getLogger("tui_trader.engine")

RECENT_EVENTS = 500
"""Events the engine holds in memory (the Logs screen pages the rest from the database)."""

MAX_ALERTS_SHOWN = 200
"""Unread alerts in a snapshot (newest first); the count covers all of them."""

FAULT_ALERT_EVERY_S = 60.0
"""An internal error caught at a boundary is alerted (and its traceback logged) at most once
in this long per place, symbol and kind of error: a flood of the same failure is one alert."""


class Journal:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.version = 0  # bumped by every change a snapshot would show
        self.ids: dict[str, int] = {}
        self.pending: list[Record] = []
        # Trailing-level moves: committed with the next write, tick or snapshot, so each is
        # durable before it is shown or acted on without a commit per quote (DESIGN §4).
        self.deferred: list[Leg] = []
        self.events: deque[EventView] = deque(maxlen=RECENT_EVENTS)
        self.event_listeners: list[Callable[[EventView], None]] = []
        self._unread: dict[int, EventRecord] = {}  # alerts not acknowledged yet, oldest first
        self._alerts_view: tuple[EventView, ...] | None = ()
        self._faults: dict[tuple, list] = {}  # (where, symbol, error type) -> [last alerted at, repeats since]
        self.loop: asyncio.AbstractEventLoop | None = None
        self.loop_thread = threading.get_ident()

    # == writes ===============================================================================

    def add(self, *records: Record) -> None:
        """Records to write with the next commit."""
        self.pending += records

    def commit(self) -> None:
        pending, self.pending = self.pending, []
        if self.deferred:
            pending += self.deferred
            self.deferred = []
        self.store.write(pending)

    def next_id(self, kind: str) -> int:
        n = self.ids.get(kind, 0) + 1
        self.ids[kind] = n
        return n

    def changed(self) -> None:
        self.version += 1

    # == events and alerts ====================================================================

    @property
    def unread_alerts(self) -> int:
        return len(self._unread)

    def alerts_view(self) -> tuple[EventView, ...]:
        """Unread alerts, newest first (at most MAX_ALERTS_SHOWN), for the snapshot."""
        if self._alerts_view is None:
            newest = list(self._unread.values())[-MAX_ALERTS_SHOWN:]
            self._alerts_view = tuple(_event_view(rec) for rec in reversed(newest))
        return self._alerts_view

    def event(self, level: str, category: str, message: str, group: "Group | None" = None, *,
              strategy_id: str | None = None, payload: dict | None = None, needs_ack: bool = False,
              symbol: str | None = None) -> None:
        """`symbol`: the one the event is about when not its group's (a basket's other legs)."""
        rec = EventRecord(self.next_id("event"), self.clock.now(), level, category, message,
                          strategy_id or (group.strategy_id if group else None),
                          symbol or (group.symbol if group else None), group.id if group else None, payload, needs_ack)
        view = _event_view(rec)
        self.events.append(view)
        if needs_ack:
            self._unread[rec.id] = rec
            self._alerts_view = None
        self.pending.append(rec)
        for listener in self.event_listeners:
            listener(view)
        self.version += 1

    def note(self, level: str, category: str, message: str, *, strategy_id: str | None = None,
             payload: dict | None = None, needs_ack: bool = False) -> None:
        """An event from a component attached to the engine (shown in Logs, persisted)."""
        self.event(level, category, message, strategy_id=strategy_id, payload=payload, needs_ack=needs_ack)
        self.commit()

    def internal_error(self, where: str, exc: BaseException, symbol: str | None = None) -> None:
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
        self.event("error", "engine", f"internal error in {where}{on}: {error}{again}; the rest goes on; see the log file",
                   symbol=symbol, needs_ack=True, payload={"where": where, "symbol": symbol, "error": error, "repeats": repeats})

    def restore(self, recent: list[dict], unread: list[dict]) -> None:
        for row in unread:
            rec = EventRecord(row["id"], row["ts"], row["level"], row["category"], row["message"], row["strategy_id"],
                              row["symbol"], row["group_id"], row["payload"], True)
            rec.saved = True
            self._unread[rec.id] = rec
        self._alerts_view = None
        for row in recent:
            self.events.append(event_from_row(row))

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
            self.pending.append(rec)
        acked = set(targets)
        self.events = deque((replace(e, acked_at=now) if e.id in acked else e for e in self.events),
                            maxlen=RECENT_EVENTS)
        self._alerts_view = None
        what = f"alert #{targets[0]}" if len(targets) == 1 else f"{len(targets)} alerts"
        self.event("info", "operator", f"{what} acknowledged by the operator", payload={"acked": targets})
        self.commit()
        return CommandResult.success(f"{what} acknowledged")

    # == store outage ========================================================================

    # The store calls these from inside a write (possibly on its write-behind thread): the
    # alert is raised on the loop, and its own row joins the next write.

    def store_failed(self, message: str) -> None:
        self._on_loop(self.event, "critical", "store",
                      f"database write failed ({message}); trading continues, writes are queued in memory", needs_ack=True)

    def store_recovered(self, count: int) -> None:
        self._on_loop(self.event, "warning", "store", f"database is back; {count} queued write(s) committed", needs_ack=True)

    def store_refused(self, what: str) -> None:
        self._on_loop(self.event, "error", "store",
                      f"bug: the database refused {what}; dropped, as is any later write of it that it refuses (the "
                      "rows are in the log file); every other write is committed", needs_ack=True)

    def _on_loop(self, fn, *args, **kwargs) -> None:
        loop = self.loop
        if loop is None or threading.get_ident() == self.loop_thread:
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


def first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]
