"""The engine service: one object on the running event loop that owns the quote book and, in
its components, the positions and their exit rules and the orders; it persists every
decision before acting on it and publishes frozen snapshots. The TUI, the CLI and replay all
drive this same object. Its adapters (feed, execution client, instrument rules, store) are
built by the composition root and handed in.

Evaluation order on each quote (DESIGN §3), kept here in one place: (1) update the book;
(2) the execution client fills the resting orders the quote crosses; (3) mark the legs on the
symbol and move their trailing peak and level; (4) per-leg exit rules; (5) group and
portfolio rules; (6) entries. On each tick: the session boundary, the P&L scopes, what the
timers say is due (queued signals, re-prices, exits to send again, time exits), the risk
engine, the feed's health, retention."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from ..amounts import local_time
from ..config import TradingConfig
from ..domain import ExitReason, Group, GroupStatus, LastQuote, Leg, LegStatus
from ..event_log import EventQuery
from ..market import Quote, QuoteBook, mark_of
from ..rules.levels import KEEP
from ..rules.precision import RulesSource
from ..rules.schedule import entry_due
from ..signal_queue import SignalQueue
from ..timers import Timers
from ..views import CommandResult, EngineSnapshot, EventPage, RiskPreview
from .desk import Desk
from .entries import Entries, by_id
from .execution import Execution
from .exits import Exits
from .feed_watch import FeedWatch
from .grid import Grid, unplaced_layers
from .history import History
from .journal import Journal
from .ledger import Ledger
from .recovery import KEPT_AT_STOP, Recovery
from .risk import Risk
from .scopes import Scopes
from .signals import Signals
from .snapshot import Snapshots

if TYPE_CHECKING:
    from ..ports import ExecutionClient, Feed, Store

log = logging.getLogger("tui_trader.engine")

MARK_SAMPLE_S = 1.0  # PositionView.marks: one sample of every open leg's mark a second


class Engine:
    def __init__(self, config: TradingConfig, clock, store: Store, *, feed: Feed, client: ExecutionClient,
                 book: QuoteBook, rules: RulesSource) -> None:
        self.config, self.clock, self.store, self.feed, self.client, self.book, self.rules = (
            config, clock, store, feed, client, book, rules)
        # A store that keeps no marks (needs_marks = False, e.g. replay's) is not told about them.
        self._touch = store.touch if store.needs_marks else None
        self.mode = config.engine.mode
        self.state = "stopped"
        self._max_age = config.feed.max_quote_age_s
        self._quote_seq = 0
        self._next_tick = 0.0
        self._next_mark_sample = 0.0
        self._soon: list[Callable[[], None]] = []  # an async client's events, delivered when the current call returns
        self.timers = Timers()  # what tick() has to do, and when
        self.queue = SignalQueue(config.engine.queue_ttl_s)  # entry signals waiting for a slot
        self.last_quotes: dict[str, LastQuote] = {}  # each symbol's latest quote as stored
        engine = config.engine
        state, seq = (lambda: self.state), (lambda: self._quote_seq)

        # the components, each with the collaborators it needs
        journal = self.journal = Journal(store, clock)
        ledger = self.ledger = Ledger(journal, clock, config.paper.starting_cash)
        desk = self.desk = Desk(journal, ledger, config.strategies)
        scopes = self.scopes = Scopes(journal, ledger, desk, config.book, self._touch)
        self.history = History(journal, store, clock, config.logs)
        self.feed_watch = FeedWatch(journal, feed, book)
        grid = self.grid = Grid(journal, ledger, desk, rules)
        execution = self.execution = Execution(journal, ledger, client)
        entries = self.entering = Entries(journal, ledger, desk, scopes, book, rules, self.timers,
                                          engine.max_open_positions, state)
        exits = self.exits = Exits(journal, ledger, desk, scopes, book, rules, self.timers, self._touch, seq)
        risk = self.risk = Risk(journal, ledger, book, rules, config.risk_engine, config.paper.taker_fee_bps)
        self.signals = Signals(journal, ledger, desk, book, self.timers, entries, exits, grid, self.queue,
                               engine.max_open_positions, engine.signal_price_gap_pct, state, seq)
        self.recovery = Recovery(journal, ledger, desk, scopes, self.queue, self.timers, entries, grid)
        self.snapshots = Snapshots(config, journal, ledger, desk, scopes, book, feed, rules, self.queue, risk,
                                   self._mark_of)
        # the components that hand work to each other
        grid.execution = entries.execution = exits.execution = execution
        grid.entries, grid.exits, exits.grid, exits.entries, entries.exits, entries.grid = (
            entries, exits, grid, entries, exits, grid)
        execution.entries, execution.exits, risk.exits = entries, exits, exits
        execution.settle = self._deliver_soon
        scopes.cancel_entry, scopes.decide_exit = entries.cancel, lambda group, reason: exits.decide(group, reason, None)

        # what the shell, the CLI and tests read (the components' own containers)
        self.groups, self.runs, self.orders = ledger.groups, ledger.runs, ledger.orders
        self.recent_orders, self.trades, self.used_funds = ledger.recent_orders, ledger.trades, ledger.used_funds
        self.realized_today = ledger.realized_today
        self.strategies, self.quarantined, self.orphans, self.notes = desk.strategies, desk.quarantined, desk.orphans, desk.notes
        self.entries = desk.entries  # the book-wide entry switch (paused: every entry stopped)
        self.event_listeners, self.trade_listeners = journal.event_listeners, ledger.trade_listeners
        self.fill_listeners = execution.fill_listeners
        self.book_scope = scopes.book
        # the quote path's own aliases (containers never replaced): one lookup fewer per quote
        self._legs_by_symbol, self._wanting, self._mark_and_check = ledger.legs_by_symbol, desk.wanting, exits.mark_and_check

        self.started_at = 0.0
        self.first_event_id = 1  # the first event of this run (attachments started later catch up from it)
        self.resumed = 0  # open positions taken over from the previous run at this start
        self._subscribers: list[Callable[[EngineSnapshot], None]] = []
        self._tasks: list[asyncio.Task] = []
        self.attachments: list = []
        """Components started after the engine and stopped before it (async start(engine), stop())."""
        store.on_failure, store.on_recovery, store.on_refused = (
            journal.store_failed, journal.store_recovered, journal.store_refused)
        feed.on_error = self._delivery_failed  # a delivery that failed outside on_quote's own guard

    # what changes with the components' state
    # what a snapshot would show changed: the journal's changes, and every quote taken
    version = property(lambda self: self.journal.version + self._quote_seq)
    events = property(lambda self: self.journal.events)
    unread_alerts = property(lambda self: self.journal.unread_alerts)
    realized_total = property(lambda self: self.ledger.realized_total)
    quotes_seen = property(lambda self: self._quote_seq)
    day_start = property(lambda self: self.scopes.day_start)
    day_end = property(lambda self: self.scopes.day_end)

    # == lifecycle ===========================================================================

    def open(self) -> None:
        """Load and resume the persisted state (synchronous: replay uses it without a loop)."""
        if self.mode == "live":
            raise RuntimeError(
                'live trading is not available: no live broker adapter is built yet; '
                'set engine.mode = "paper"'
            )
        now = self.clock.now()
        self.scopes.new_session(now)
        loaded = self.store.open(self.scopes.day_start)
        for row in loaded.last_quotes:
            rec = self.last_quotes[row["symbol"]] = LastQuote(row["symbol"], row["bid"], row["ask"], row["last"], row["ts"])
            rec.saved = True
        if self.last_quotes:  # the simulated market continues from where it was
            self.feed.continue_from({sym: mark_of(Quote(sym, r.ts, r.bid, r.ask, r.last))
                                     for sym, r in self.last_quotes.items()})
        self.first_event_id = loaded.max_ids.get("event", 0) + 1
        self.resumed = self.recovery.restore(loaded, self.mode)
        self.started_at = now
        self._next_tick = now
        self.history.next_retention = now + 60.0  # not in the way of the restart itself
        self.state = "running"
        self._deliver_soon()
        self.journal.commit()

    async def start(self) -> None:
        """Open the store, resume, start the feed and the engine's own tasks on this loop."""
        self.state = "starting"
        loop = self.journal.loop = asyncio.get_running_loop()
        self.journal.loop_thread = threading.get_ident()
        self.open()
        self.store.start()
        self._tasks = [
            loop.create_task(self._ticker(), name="engine-ticker"),
            loop.create_task(self._publisher(), name="engine-publisher"),
        ]
        await self.feed.start(self.on_quote)
        for component in self.attachments:
            try:
                await component.start(self)
            except Exception as exc:  # one component failing to start does not keep the engine from trading
                self.journal.internal_error(f"starting {type(component).__name__}", exc)
        self._publish()

    async def stop(self) -> None:
        """Stop taking entries, stop the feed, cancel or keep the working orders
        (engine.orders_on_stop), flush every write, close. Open positions stay open and are
        managed again at the next start."""
        if self.state in ("stopped", "stopping"):
            return
        self.state = "stopping"
        self.journal.changed()
        self._publish()  # the UI shows "stopping" while the rest runs
        try:
            await self.feed.stop()
        except Exception as exc:  # the stop goes on: its orders, its writes and its event
            self.journal.internal_error("stopping the feed", exc)
        for component in reversed(self.attachments):
            try:
                await component.stop()
            except Exception as exc:
                self.journal.internal_error(f"stopping {type(component).__name__}", exc)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._tasks = []
        if self.history.retention_task is not None:
            self.history.retention_task.cancel()
        self._store_quotes()
        orders = self._stop_orders(self.config.engine.orders_on_stop == "keep")
        self._deliver_in_flight()
        self.journal.event("info", "engine", _stopped_text(len(self.groups), orders),
                           payload={"open_positions": len(self.groups), **orders})
        self.journal.commit()
        await self.store.drain()  # a database outage holds the stop up a few seconds at most, not the loop
        self.store.close()
        self.state = "stopped"
        self._publish()

    def _stop_orders(self, keep: bool) -> dict[str, int]:
        """Cancel the working orders, or mark them kept: a kept entry goes on at the next start
        (resting layers and exits are placed again then either way). Nothing is sold because
        the engine stops: only an entry with nothing filled is given up; the entry of a basket
        part-way in is kept whatever orders_on_stop says, as unwinding it would sell."""
        kept = cancelled = 0
        for order in list(self.orders.values()):
            group = self.groups.get(order.group_id)
            group_entry = group is not None and group.entry_order_id == order.id  # not a resting DCA layer's
            if keep or (group_entry and group is not None and group.open_legs()):
                order.reason = KEPT_AT_STOP
                self.journal.add(order)
                kept += 1
                continue
            cancelled += 1
            if group_entry:
                self.execution.cancel(order, "engine stopped",
                                      lambda _, g=group: self.entering.failed(g, "engine stopped before the entry filled"))
            else:  # the exit stays decided, the layer stays in its grid: sent again at the next start
                self.execution.cancel(order, "engine stopped; sent again at the next start")
        return {"orders_kept": kept, "orders_cancelled": cancelled}

    def _store_quotes(self) -> None:
        """Each symbol's latest quote, written behind (once a second and at the stop): the
        simulated market continues from it at the next start."""
        if self._touch is None:
            return  # a store that keeps no marks (replay's)
        for sym, q in self.book.quotes.items():
            rec = self.last_quotes.get(sym)
            if rec is None:
                self.last_quotes[sym] = LastQuote(sym, q.bid, q.ask, q.last, q.ts)
                self.journal.add(self.last_quotes[sym])  # inserted once, then updated behind
            elif rec.ts != q.ts:
                rec.bid, rec.ask, rec.last, rec.ts = q.bid, q.ask, q.last, q.ts
                self._touch(rec)

    def stop_now(self) -> None:
        """The forced stop (a second ctrl+c): no more waiting on the feed, components, the
        broker or the database. What was decided is committed (during a database outage: logged
        as not committed); working orders are left as they are (taken up at the next start like
        after a crash)."""
        if self.state == "stopped":
            return
        self.state = "stopped"
        for task in self._tasks:
            task.cancel()
        for component in self.attachments:  # e.g. the alert hook kills its commands
            stop_now = getattr(component, "stop_now", None)
            if stop_now is not None:
                stop_now()
        self.journal.event("warning", "engine", f"engine stopped by force: {len(self.groups)} open position(s) stay "
                           f"open; {len(self.orders)} working order(s) left as they were",
                           payload={"open_positions": len(self.groups)})
        try:
            self.journal.commit()
            self.store.close(force=True)
        except Exception:  # exiting anyway: the log file says what could not be written
            log.exception("writes at the forced stop failed")

    async def _ticker(self) -> None:
        interval = self.config.engine.tick_interval_s
        while True:
            await self.clock.sleep(interval)
            self._guarded_tick()

    def _guarded_tick(self) -> None:
        try:
            self.tick()
        except Exception as exc:  # a bug in a rule must not stop time exits for everyone
            self.journal.internal_error("the engine tick", exc)

    async def _publisher(self) -> None:
        period = 1.0 / self.config.engine.publish_hz
        published = -1
        while True:
            await asyncio.sleep(period)  # UI cadence is real time, whatever the engine clock
            if self.version != published and self._subscribers:
                published = self.version
                self._publish()

    def subscribe(self, callback: Callable[[EngineSnapshot], None]) -> Callable[[], None]:
        """Receive snapshots, coalesced to at most engine.publish_hz per second."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def _publish(self) -> None:
        if self._subscribers:
            try:
                snap = self.snapshot()
                for cb in list(self._subscribers):
                    cb(snap)
            except Exception as exc:  # a screen's failure stops neither the publisher nor the engine's stop
                self.journal.internal_error("publishing a snapshot", exc)

    def snapshot(self) -> EngineSnapshot:
        return self.snapshots.build(self.state, self.started_at, self.resumed, self.version)

    # == an async execution client's events ==================================================

    def later(self, delay_s: float, deliver: Callable[[], None]) -> None:
        """How an async execution client delivers an event: once the engine call that caused
        it has returned, or `delay_s` later (at the first tick after)."""
        if delay_s > 0:
            self.timers.at(self.clock.now() + delay_s, "deliver", deliver)
        else:
            self._soon.append(deliver)

    def _deliver_soon(self) -> None:
        while self._soon:
            soon, self._soon = self._soon, []
            for deliver in soon:
                deliver()

    def _deliver_in_flight(self) -> None:
        """At the stop: what the venue has done is booked before the last write, however long
        its answer would still take."""
        for deliver in self.timers.pop_due(math.inf).get("deliver", ()):
            deliver()
        self._deliver_soon()

    def _after(self, result: CommandResult) -> CommandResult:
        """A command's end: the events it caused are delivered before its answer is given."""
        if self._soon:
            self._deliver_soon()
        return result

    # == market data: the hot path ===========================================================

    def on_quote(self, q: Quote) -> None:
        seq = self._quote_seq = self._quote_seq + 1
        sym = q.symbol
        quotes = self.book.quotes
        prev = quotes.get(sym)
        if prev is not None and q.ts < prev.ts:
            return  # out of order: an older quote never replaces a newer one
        quotes[sym] = q
        now = self.clock.now()
        if now - q.ts > self._max_age:
            return  # a stale price never triggers an entry or an exit
        try:  # free while nothing is raised
            self.client.on_quote(q)
            legs = self._legs_by_symbol.get(sym)
            if legs:
                self._mark_and_check(legs, q, now)
            wanting = self._wanting.get(sym)
            if wanting and self.state == "running":
                enter = self.entering.enter
                for slot in wanting[:]:
                    if now >= slot.ready_at and slot.exit_seq != seq:
                        sched = slot.schedule
                        if sched is None:
                            enter(slot, q, "immediate")
                        elif entry_due(sched, now, slot.last_entry_at) is not None:
                            enter(slot, q, "schedule")
            if self._soon:
                self._deliver_soon()
        except Exception as exc:  # one symbol's failure ends neither the feed nor the other symbols' trading
            self.journal.internal_error("the quote path", exc, sym)
            self.desk.quarantine_check(sym, exc, now)
        if self.journal.pending:
            self.journal.commit()
        if now >= self._next_tick:
            self._guarded_tick()

    def _delivery_failed(self, symbol: str, exc: Exception) -> None:
        self.journal.internal_error("the feed's quote delivery", exc, symbol)

    # == time ================================================================================

    def tick(self) -> None:
        """Time-driven work: the session boundary, P&L rules, then what the timers say is due:
        queued signals' TTLs, re-pricing working limits, exits to send again, time exits. It
        costs what is due, not what is open."""
        now = self.clock.now()
        self._next_tick = now + self.config.engine.tick_interval_s
        scopes = self.scopes
        if now >= scopes.day_end:
            scopes.new_session(now)
            for slot in self.desk.slots():
                slot.entered = slot.group is not None
            scopes.apply_blocks(now)
            self.journal.event("info", "engine", "new trading session from "
                               f"{local_time(scopes.day_start, self.config.book.timezone)}: "
                               "day P&L, P&L rules and daily loss limits start over")
        scopes.tick(now)
        # the marks' history (sparklines) and the stored quotes, on the engine clock: not kept by a
        # run whose store keeps no marks (replay's), where nothing shows them
        if now >= self._next_mark_sample and self._touch is not None:
            self._next_mark_sample = now + MARK_SAMPLE_S
            for legs in self.ledger.legs_by_symbol.values():
                for leg in legs:
                    leg.marks.append(leg.mark)
            self._store_quotes()
        due = self.timers.pop_due(now)
        for deliver in due.get("deliver", ()):  # an async client's events whose latency has passed
            deliver()
        self._deliver_soon()
        # with the pool full and no TTL due, the queue has nothing to do
        if self.queue.items and ("queue" in due or len(self.groups) < self.config.engine.max_open_positions):
            self.signals.tick(now)
        if due:
            self.entering.rework(due.get("entry", ()), now)
            self.exits.rework(due.get("exit", ()), now)
        if self.config.risk_engine is not None:
            self.risk.tick(now)
        self.feed_watch.tick(now)
        self.history.tick(now)
        if due:
            self._tick_groups(due.get("group", ()), now)
        self._deliver_soon()
        self.journal.version += 1
        if self.journal.pending or self.journal.deferred:
            self.journal.commit()

    def _tick_groups(self, woken: Iterable[Group], now: float) -> None:
        """The timed work of the groups whose timer fell due: an entry order or DCA layers
        placed again after a restart, an exit to send again, a time exit. Work that waits for
        a fresh quote (or a basket still entering) is looked at again at the next tick."""
        groups = sorted((g for g in woken if self.groups.get(g.id) is g), key=by_id)
        due: list[tuple[Group, Leg | None]] = []  # found first: acting on them changes self.groups
        unplaced: list[Group] = []
        for group in groups:
            if group.resume_entry is not None and self.book.fresh(group.entry_symbol, now) is not None:
                resume, group.resume_entry = group.resume_entry, None
                self.entering.send(group, *resume)
            if unplaced_layers(group):
                unplaced.append(group)
            if group.pending_exit:
                if group.resend_at is not None and now >= group.resend_at:
                    due.append((group, None))  # an exit to send again
            elif group.status == GroupStatus.OPEN:
                for leg in group.legs:
                    t = leg.time_exit_at
                    if t is not None and now >= t and leg.status == LegStatus.OPEN:
                        due.append((group, leg))
                        break
        for group in unplaced:
            if self.book.fresh(group.symbol, now) is not None:
                self.grid.replace_layers(group, now)
        for group, leg in due:
            if leg is None:
                self.exits.send(group)
            elif self.book.fresh(leg.symbol, now) is not None:  # a stale price triggers nothing
                self.exits.decide(group, ExitReason.TIME, leg.mark, leg)
        for group in groups:
            if self.groups.get(group.id) is group and _group_due(group, now):
                self.timers.wake(group, now)

    def _mark_of(self, symbol: str) -> float | None:
        q = self.book.get(symbol)
        return mark_of(q) if q is not None else None

    # == commands (ports.EngineCommands): each component's own, answered once its events are in

    def enter_now(self, strategy_id: str, symbol: str | None = None, source: str = "tui", price: float | None = None,
                  payload: dict | None = None, timeframe: str = "", size: float | None = None) -> CommandResult:
        return self._after(self.signals.enter_now(strategy_id, symbol, source, price, payload, timeframe, size))

    def exit_signal(self, strategy_id: str, symbol: str | None = None, source: str = "cli",
                    price: float | None = None, payload: dict | None = None, timeframe: str = "") -> CommandResult:
        return self._after(self.signals.exit_signal(strategy_id, symbol, source, price, payload, timeframe))

    def promote_signal(self, queued_id: int) -> CommandResult:
        return self._after(self.signals.promote_signal(queued_id))

    def remove_signal(self, queued_id: int) -> CommandResult:
        return self._after(self.signals.remove_signal(queued_id))

    def force_add(self, queued_id: int) -> CommandResult:
        return self._after(self.signals.force_add(queued_id))

    def exit_position(self, group_id: int, reason: ExitReason = ExitReason.MANUAL) -> CommandResult:
        return self._after(self.exits.exit_position(group_id, reason))

    def exit_positions(self, group_ids) -> CommandResult:
        return self._after(self.exits.exit_positions(group_ids))

    def exit_strategy(self, strategy_id: str) -> CommandResult:
        return self._after(self.exits.exit_strategy(strategy_id))

    def exit_all(self) -> CommandResult:
        return self._after(self.exits.exit_all())

    def edit_levels(self, group_id: int, *, leg_id: int | None = None, stop=KEEP, target=KEEP, trail_distance=KEEP,
                    trail_activation=KEEP, time_exit_at=KEEP, confirm: bool = False) -> CommandResult:
        return self._after(self.exits.edit_levels(
            group_id, leg_id=leg_id, stop=stop, target=target, trail_distance=trail_distance,
            trail_activation=trail_activation, time_exit_at=time_exit_at, confirm=confirm))

    def keep_managing(self, strategy_id: str) -> CommandResult:
        return self.desk.keep_managing(strategy_id)

    def stop_entries(self, stopped: bool = True) -> CommandResult:
        return self.desk.stop_entries(stopped)

    def pause(self, strategy_id: str) -> CommandResult:
        return self.desk.set_paused(strategy_id, True)

    def resume(self, strategy_id: str) -> CommandResult:
        return self.desk.set_paused(strategy_id, False)

    def risk_run(self, group_id: int) -> CommandResult:
        return self._after(self.risk.risk_run(group_id))

    def risk_skip(self, group_id: int) -> CommandResult:
        return self.risk.risk_skip(group_id)

    def risk_block(self, group_id: int) -> CommandResult:
        return self.risk.risk_block(group_id)

    def risk_preview(self, strategy_id: str) -> tuple[RiskPreview, ...]:
        return self.entering.risk_preview(strategy_id)

    def free_cash(self) -> float:
        return self.ledger.free_cash()

    def ack_alerts(self, ids: Iterable[int] | None = None) -> CommandResult:
        return self.journal.ack_alerts(ids)

    def alerts_view(self):
        return self.journal.alerts_view()

    def note(self, level: str, category: str, message: str, *, strategy_id: str | None = None,
             payload: dict | None = None, needs_ack: bool = False) -> None:
        self.journal.note(level, category, message, strategy_id=strategy_id, payload=payload, needs_ack=needs_ack)

    async def find_events(self, query: EventQuery, before_id: int | None = None, limit: int = 200) -> EventPage:
        return await self.history.find_events(query, before_id, limit)

    async def export_events(self, query: EventQuery, path: Path) -> CommandResult:
        return await self.history.export_events(query, path)

    async def enforce_retention(self) -> int:
        return await self.history.enforce_retention()


def _group_due(group: Group, now: float) -> bool:
    """Whether the tick has work for this group now (a fresh quote it may wait for aside)."""
    if group.resume_entry is not None or unplaced_layers(group):
        return True
    if group.pending_exit:
        return group.resend_at is not None and now >= group.resend_at
    return any(lg.status == LegStatus.OPEN and lg.time_exit_at is not None and now >= lg.time_exit_at for lg in group.legs)


def _stopped_text(open_positions: int, orders: dict[str, int]) -> str:
    text = f"engine stopped: {open_positions} open position(s) stay open and are managed again at the next start"
    if orders["orders_cancelled"]:
        text += f"; {orders['orders_cancelled']} working order(s) cancelled"
    if orders["orders_kept"]:
        text += f"; {orders['orders_kept']} working order(s) kept for the next start"
    return text

