"""The engine service: one object on the running event loop that owns the quote book, the
positions and their exit rules, and the orders; it persists every decision before acting on
it and publishes frozen snapshots. The TUI, the CLI and replay all drive this same object.

Evaluation order on each quote (DESIGN §3): (1) update the book; (2) fill resting paper
orders the quote crosses; (3) mark the legs on the symbol and move their trailing peak and
level; (4) per-leg exit rules; (5) group and portfolio rules; (6) entries.

Parts live in mixins: events and alerts (engine_events), DCA grids and pyramids
(engine_grid), the risk engine (engine_risk)."""

from __future__ import annotations

import asyncio
import copy
import logging
import re
import threading
from collections import deque
from typing import Callable, Iterable

from .amounts import entry_capital as _capital, px as _px, qty as _qty
from .brokers.paper import PaperBroker
from .clock import Clock
from .config import Distance, StrategyConfig, TradingConfig, parse_distance
from .domain import Fill, Group, LastQuote, Leg, Order, Record, Run, Signal, StrategyState
from .engine_events import EngineEvents, error_text
from .engine_grid import EngineGrid
from .engine_risk import EngineRisk
from .feeds.simulated import SimulatedFeed
from .market import Quote, QuoteBook, fill_price_from_quotes, mark_of
from .portfolio import BOOK, RULE_LABEL, PnlScope
from .rules.precision import RulesSource, SettingsRules, floor_qty, round_price
from .rules.schedule import entry_due, next_entry, planned_exit, session_bounds
from .signal_queue import QueuedSignal, SignalQueue
from .store.loaded import LoadedState
from .timers import Timers
from .views import (
    AccountView, CommandResult, EngineSnapshot, FeedView, OrderView, OrphanView, PortfolioView, PositionView, RiskPreview,
    StrategyView, TradeView, WaitingEntry,
)

log = logging.getLogger("tui_trader.engine")

KEEP = object()
"""edit_levels: leave this level as it is (None removes it)."""

_AMOUNTS = re.compile(r"\d[\d,.]*")
ALL_ENTRIES = "*"
"""The strategy_state row of the book-wide entry switch (Engine.stop_entries)."""
ENTRIES_STOPPED = "entries stopped for the whole book by the operator"
KEPT_AT_STOP = "kept working at the engine stop"
"""Order.reason of an order engine.orders_on_stop = "keep" left working."""
EXIT_RETRY_S = 1.0  # a rejected exit order is sent again on the first fresh quote after this
MARK_SAMPLE_S = 1.0  # PositionView.marks: one sample of every open leg's mark a second
QUARANTINE_ERRORS, QUARANTINE_WINDOW_S = 3, 60.0  # a symbol failing this often this fast takes no new entries


class Slot:
    """One strategy on one symbol: holds at most one position group at a time."""

    __slots__ = ("strategy", "symbol", "symbols", "group", "ready_at", "exit_seq", "entered", "hold", "hold_kind",
                 "schedule", "last_entry_at")

    def __init__(self, strategy: "StrategyRuntime", symbol: str, symbols: tuple[str, ...] = ()) -> None:
        self.strategy, self.symbol = strategy, symbol
        self.symbols = symbols or (symbol,)  # a basket enters all of them, leg by leg
        cfg = strategy.config
        self.schedule = cfg.schedule if cfg.entry == "scheduled" else None  # entry windows, if any
        self.last_entry_at: float | None = None  # once per window
        self.group: Group | None = None
        self.ready_at = 0.0  # no re-entry before this time (cooldown)
        self.exit_seq = -1  # the quote that closed the last position: no entry on it
        self.entered = False  # entered since the day started (matters when reentry is off)
        self.hold = ""  # why an entry that is wanted is not happening
        self.hold_kind = ""  # that reason without its amounts: announced once per kind


class StrategyRuntime:
    __slots__ = ("id", "config", "state", "slots", "scope", "block")

    def __init__(self, sid: str, config: StrategyConfig, day_start: float) -> None:
        self.id, self.config = sid, config
        self.state = StrategyState(sid)
        pnl = config.pnl
        self.scope = PnlScope(sid, pnl, day_start, pnl.cooldown_s) if pnl is not None and pnl.any else None
        self.block = ""  # why its entries are refused by a P&L rule or a daily loss limit ("" when not)
        if config.basket:  # one position over all its symbols, keyed by the first
            self.slots = {config.symbols[0]: Slot(self, config.symbols[0], tuple(config.symbols))}
        else:
            self.slots = {sym: Slot(self, sym) for sym in config.symbols}

    @property
    def paused(self) -> bool:
        return self.state.paused

    def wants_entry(self, slot: Slot) -> bool:
        """Whether an immediate entry should be considered for this slot."""
        cfg = self.config
        if not cfg.enabled or self.paused or self.block or slot.group is not None:
            return False
        if cfg.entry == "scheduled":
            return True  # whether a window is open is checked on each quote
        return cfg.entry == "immediate" and (cfg.reentry or not slot.entered)


class Engine(EngineEvents, EngineRisk, EngineGrid):
    def __init__(self, config: TradingConfig, clock: Clock, store, feed=None, broker=None,
                 rules: RulesSource | None = None) -> None:
        self.config = config
        self.clock = clock
        self.store = store
        # A store that keeps no marks (needs_marks = False, e.g. replay's) is not told about them.
        self._touch = store.touch if getattr(store, "needs_marks", True) else None
        self.book = QuoteBook(config.feed.max_quote_age_s)
        self.feed = feed if feed is not None else SimulatedFeed(config.symbols, clock, config.feed.seed)
        self.rules = rules if rules is not None else SettingsRules(config.symbols)
        self.broker = broker if broker is not None else PaperBroker(config.paper, self.book, clock, self.rules)
        self.broker.bind(self._on_fill, self._on_reject)
        self._broker_on_quote = getattr(self.broker, "on_quote", None)
        self.mode = config.engine.mode
        self.state = "stopped"
        self._max_age = config.feed.max_quote_age_s
        self._pool_size = config.engine.max_open_positions
        self._ids: dict[str, int] = {}
        self._pending: list[Record] = []
        # Trailing-level moves: committed with the next write, tick or snapshot, so each is
        # durable before it is shown or acted on without a commit per quote (DESIGN §4).
        self._deferred: list[Leg] = []
        self.strategies = {sid: StrategyRuntime(sid, cfg, 0.0) for sid, cfg in config.strategies.items()}
        self.book_scope = PnlScope(BOOK, config.book, 0.0)
        # The scopes whose rules are judged on each quote of their legs (none: no cost at all).
        self._rule_scopes = [rt.scope for rt in self.strategies.values() if rt.scope is not None]
        if config.book.any:
            self._rule_scopes.insert(0, self.book_scope)
        self.queue = SignalQueue(config.engine.queue_ttl_s)  # entry signals waiting for a slot
        self.orphans: dict[str, list] = {}  # strategy id -> [why, decided] for positions of removed/disabled strategies
        self.groups: dict[int, Group] = {}  # every group that is not closed
        self.runs: dict[int, Run] = {}
        self.orders: dict[int, Order] = {}  # orders sent and not final
        self._legs_by_symbol: dict[str, list[Leg]] = {}
        self._wanting: dict[str, list[Slot]] = {}
        self.recent_orders: deque[Order] = deque(maxlen=200)
        self._init_events()
        self.trades: deque[TradeView] = deque(maxlen=200)
        self.realized_today: dict[str, float] = {}
        self.realized_total = 0.0  # since the first start: paper cash = starting cash + this
        self.used_funds: dict[str, float] = {}  # strategy -> value its groups hold
        self.last_quotes: dict[str, LastQuote] = {}  # each symbol's latest quote as stored
        self._ticks_shown: dict[str, float] = {}
        self.entries = StrategyState(ALL_ENTRIES)  # paused: the operator stopped every entry of the book
        self.notes: list[str] = []
        self.quarantined: dict[str, str] = {}  # symbol -> why it takes no new entries (until the next start)
        self._symbol_errors: dict[str, deque[float]] = {}  # symbol -> when its latest quotes failed
        self.started_at = 0.0
        self.first_event_id = 1  # the first event of this run (attachments started later catch up from it)
        self.resumed = 0  # open positions taken over from the previous run at this start
        self.day_start = self.day_end = 0.0
        self.version = 0
        self._quote_seq = 0
        self._next_tick = 0.0
        self.timers = Timers()  # what tick() has to do, and when
        self._next_mark_sample = 0.0
        self._subscribers: list[Callable[[EngineSnapshot], None]] = []
        self.trade_listeners: list[Callable[[TradeView], None]] = []
        self.fill_listeners: list[Callable[[Fill], None]] = []
        self._tasks: list[asyncio.Task] = []
        self.attachments: list = []
        """Components started after the engine and stopped before it (async start(engine), stop())."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = threading.get_ident()
        if hasattr(store, "on_failure"):
            store.on_failure = self._store_failed
            store.on_recovery = self._store_recovered
            store.on_refused = self._store_refused
        if hasattr(self.feed, "on_error"):  # a delivery that failed outside on_quote's own guard
            self.feed.on_error = self._delivery_failed

    # == lifecycle ===========================================================================

    def open(self) -> None:
        """Load and resume the persisted state (synchronous: replay uses it without a loop)."""
        if self.mode == "live":
            raise RuntimeError(
                'live trading is not available: no live broker adapter is built yet; '
                'set engine.mode = "paper"'
            )
        now = self.clock.now()
        self._new_session(now)
        loaded = self.store.open(self.day_start)
        self._restore(loaded)
        self._next_tick = now
        self._next_retention = now + 60.0  # not in the way of the restart itself
        self.state = "running"
        self._commit()

    async def start(self) -> None:
        """Open the store, resume, start the feed and the engine's own tasks on this loop."""
        self.state = "starting"
        loop = self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
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
                self._internal_error(f"starting {type(component).__name__}", exc)
        self._publish()

    async def stop(self) -> None:
        """Stop taking entries, stop the feed, cancel or keep the working orders
        (engine.orders_on_stop), flush every write, close. Open positions stay open and are
        managed again at the next start."""
        if self.state in ("stopped", "stopping"):
            return
        self.state = "stopping"
        self.version += 1
        self._publish()  # the UI shows "stopping" while the rest runs
        try:
            await self.feed.stop()
        except Exception as exc:  # the stop goes on: its orders, its writes and its event
            self._internal_error("stopping the feed", exc)
        for component in reversed(self.attachments):
            try:
                await component.stop()
            except Exception as exc:
                self._internal_error(f"stopping {type(component).__name__}", exc)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._tasks = []
        if self._retention_task is not None:
            self._retention_task.cancel()
        self._store_quotes()
        orders = self._stop_orders(self.config.engine.orders_on_stop == "keep")
        self._event("info", "engine", self._stopped_text(orders), payload={"open_positions": len(self.groups), **orders})
        self._commit()
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
            group_entry = order.purpose == "entry" and order.leg_id is None  # not a resting DCA layer's
            if keep or (group_entry and group is not None and group.open_legs()):
                order.reason = KEPT_AT_STOP
                self._pending.append(order)
                kept += 1
                continue
            if not self.broker.cancel(order):
                continue
            cancelled += 1
            if group_entry:
                self._order_final(order, "cancelled", "engine stopped")
                self._entry_failed(group, "engine stopped before the entry filled")
            else:  # the exit stays decided, the layer stays in its grid: sent again at the next start
                self._order_final(order, "cancelled", "engine stopped; sent again at the next start")
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
                self._pending.append(self.last_quotes[sym])  # inserted once, then updated behind
            elif rec.ts != q.ts:
                rec.bid, rec.ask, rec.last, rec.ts = q.bid, q.ask, q.last, q.ts
                self._touch(rec)

    def _stopped_text(self, orders: dict[str, int]) -> str:
        text = f"engine stopped: {len(self.groups)} open position(s) stay open and are managed again at the next start"
        if orders["orders_cancelled"]:
            text += f"; {orders['orders_cancelled']} working order(s) cancelled"
        if orders["orders_kept"]:
            text += f"; {orders['orders_kept']} working order(s) kept for the next start"
        return text

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
        self._event("warning", "engine", f"engine stopped by force: {len(self.groups)} open position(s) stay open; "
                    f"{len(self.orders)} working order(s) left as they were", payload={"open_positions": len(self.groups)})
        try:
            self._commit()
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
            self._internal_error("the engine tick", exc)

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
                self._internal_error("publishing a snapshot", exc)

    # == market data: the hot path ===========================================================

    def on_quote(self, q: Quote) -> None:
        seq = self._quote_seq = self._quote_seq + 1
        sym = q.symbol
        quotes = self.book.quotes
        prev = quotes.get(sym)
        if prev is not None and q.ts < prev.ts:
            return  # out of order: an older quote never replaces a newer one
        quotes[sym] = q
        self.version += 1
        now = self.clock.now()
        if now - q.ts > self._max_age:
            return  # a stale price never triggers an entry or an exit
        try:  # free while nothing is raised
            if self._broker_on_quote is not None:
                self._broker_on_quote(q)
            legs = self._legs_by_symbol.get(sym)
            if legs:
                self._mark_and_check(legs, q, now)
            wanting = self._wanting.get(sym)
            if wanting and self.state == "running":
                for slot in wanting[:]:
                    if now >= slot.ready_at and slot.exit_seq != seq:
                        sched = slot.schedule
                        if sched is None:
                            self._enter(slot, q, "immediate")
                        elif entry_due(sched, now, slot.last_entry_at) is not None:
                            self._enter(slot, q, "schedule")
        except Exception as exc:  # one symbol's failure ends neither the feed nor the other symbols' trading
            self._symbol_failed(sym, exc, now)
        if self._pending:
            self._commit()
        if now >= self._next_tick:
            self._guarded_tick()

    def _delivery_failed(self, symbol: str, exc: Exception) -> None:
        self._internal_error("the feed's quote delivery", exc, symbol)

    def _symbol_failed(self, symbol: str, exc: Exception, now: float) -> None:
        """The work of one quote failed (alerted once a minute); a symbol failing
        QUARANTINE_ERRORS times within QUARANTINE_WINDOW_S is quarantined: no new entries on it
        until the next start, its open positions still managed as far as they can be."""
        self._internal_error("the quote path", exc, symbol)
        if symbol in self.quarantined:
            return
        times = self._symbol_errors.setdefault(symbol, deque(maxlen=QUARANTINE_ERRORS))
        times.append(now)
        if len(times) < QUARANTINE_ERRORS or now - times[0] > QUARANTINE_WINDOW_S:
            return
        why = self.quarantined[symbol] = f"quarantined after {QUARANTINE_ERRORS} errors: {error_text(exc)}"
        self._event("critical", "engine", f"{symbol} {why} (within {QUARANTINE_WINDOW_S:g} s): no new entries on it until "
                    "the engine restarts; its open positions are still managed; see the log file", symbol=symbol,
                    needs_ack=True, payload={"symbol": symbol, "errors": QUARANTINE_ERRORS, "error": error_text(exc)})
        for rt in self.strategies.values():
            for slot in rt.slots.values():
                if symbol in slot.symbols:
                    self._hold(slot, why, quiet=True)  # shown where its entries wait; the alert said it once

    def _mark_and_check(self, legs: list[Leg], q: Quote, now: float) -> None:
        """Steps (3) and (4) for the legs on the quote's symbol: mark each leg, move its trailing
        peak and level, and decide its group's exit when a rule triggers. The hot path: one call
        per quote, not per leg, with the store's touch skipped when the store keeps no marks."""
        bid, ask = q.bid, q.ask
        mark = (bid + ask) * 0.5 if bid > 0 and ask > 0 else (q.last or bid or ask)
        touch = self._touch
        deferred = self._deferred
        scoped = False
        aggregates: list[tuple[Leg, float]] = []  # DCA grids to check in step (5)
        for leg in legs[:]:  # a copy: an exit that fills at once removes its leg from the list
            if leg.status != "open":
                continue  # closed by an exit earlier on this same quote
            if leg.scopes:  # P&L rules watch this leg: keep their running P&L current
                delta = (mark - leg.mark) * leg.qty * leg.dir
                for scope in leg.scopes:
                    scope.unrealized += delta
                scoped = True
            leg.mark = mark
            leg.mark_ts = now
            if touch is not None:
                touch(leg)
            group = leg.group
            if group.pending_exit:
                if leg.exit_order_id is None and (group.resend_at is None or now >= group.resend_at):
                    self._send_exit(group)  # its quote is fresh again, or its last exit order was rejected: send it
                continue
            d = leg.dir
            if leg.trail_distance is not None:
                if leg.trail_active:
                    if (mark - leg.trail_peak) * d > 0:
                        leg.trail_peak = mark
                        level = leg.trail_level_from(mark)
                        if (level - leg.trail_level) * d > 0:
                            leg.trail_level = level
                            leg.trail_updated_at = now
                            leg.trail_moves.append((now, level))
                            deferred.append(leg)
                elif (mark - leg.entry) * d >= leg.trail_act_amount:
                    leg.arm_trail(mark, now)
                    self._event("info", "trailing", f"trailing stop armed on {leg.symbol} at {_px(leg.trail_level)} (peak {_px(mark)})",
                                group, symbol=leg.symbol, payload={"level": leg.trail_level, "peak": mark})
                    self._pending.append(leg)
            trigger = leg.trigger
            if trigger == "mark":
                px = mark
            elif trigger == "bid_ask":
                px = bid if d > 0 else ask
            else:
                px = q.last or mark
            reason = _exit_reason(leg, px, now)
            if reason is None:
                if group.agg_tp is not None:
                    aggregates.append((leg, px))
            elif reason == "target" and group.tp_mode:
                self._exit_leg(group, leg, reason, px)  # a layer's own take-profit closes that layer only
            else:
                self._decide_exit(group, reason, px, leg)
        # A grid's aggregate take-profit is a group rule: judged once every layer's own rules
        # have acted on this quote, over the layers still open (it follows their average).
        for leg, px in aggregates:
            group, agg = leg.group, leg.group.agg_tp
            if group.status == "open" and agg is not None and (px - agg) * leg.dir >= 0:
                self._decide_exit(group, "aggregate_tp", px, leg)
        if scoped:
            self._check_scopes(now)

    # == time ================================================================================

    def tick(self) -> None:
        """Time-driven work: the session boundary, P&L rules, then what the timers say is due:
        queued signals' TTLs, re-pricing working limits, exits to send again, time exits. It
        costs what is due, not what is open."""
        now = self.clock.now()
        self._next_tick = now + self.config.engine.tick_interval_s
        if now >= self.day_end:
            self._new_session(now)
            for rt in self.strategies.values():
                for slot in rt.slots.values():
                    slot.entered = slot.group is not None
            self._apply_blocks(now)
            self._event("info", "engine", f"new trading session from {_local_time(self.day_start, self.config.book.timezone)}: "
                        "day P&L, P&L rules and daily loss limits start over")
        self._tick_scopes(now)
        # the marks' history (sparklines) and the stored quotes, on the engine clock: not kept by a
        # run whose store keeps no marks (replay's), where nothing shows them
        if now >= self._next_mark_sample and self._touch is not None:
            self._next_mark_sample = now + MARK_SAMPLE_S
            for legs in self._legs_by_symbol.values():
                for leg in legs:
                    leg.marks.append(leg.mark)
            self._store_quotes()
        due = self.timers.pop_due(now)
        # with the pool full and no TTL due, the queue has nothing to do
        if self.queue.items and ("queue" in due or len(self.groups) < self._pool_size):
            self._tick_queue(now)
        if due:
            self._rework_entries(due.get("entry", ()), now)
            self._rework_exits(due.get("exit", ()), now)
        if self.config.risk_engine is not None:
            self._tick_risk(now)
        self._tick_feed_health(now)
        self._tick_retention(now)
        if due:
            self._tick_groups(due.get("group", ()), now)
        self.version += 1
        if self._pending or self._deferred:
            self._commit()

    def _wake(self, group: Group, at: float | None) -> None:
        """Have the tick look at this group from `at` on (a time exit, an exit to send again)."""
        if at is not None:
            self.timers.at(at, "group", group)

    def _tick_groups(self, woken: Iterable[Group], now: float) -> None:
        """The timed work of the groups whose timer fell due: an entry order or DCA layers
        placed again after a restart, an exit to send again, a time exit. Work that waits for
        a fresh quote (or a basket still entering) is looked at again at the next tick."""
        groups = sorted((g for g in woken if self.groups.get(g.id) is g), key=_by_id)
        due: list[tuple[Group, Leg | None]] = []  # found first: acting on them changes self.groups
        unplaced: list[Group] = []
        for group in groups:
            if group.resume_entry is not None and self.book.fresh(group.entry_symbol, now) is not None:
                resume, group.resume_entry = group.resume_entry, None
                self._send_entry(group, *resume)
            if _unplaced_layers(group):
                unplaced.append(group)
            if group.pending_exit:
                if group.resend_at is not None and now >= group.resend_at:
                    due.append((group, None))  # an exit to send again
            elif group.status == "open":
                for leg in group.legs:
                    t = leg.time_exit_at
                    if t is not None and now >= t and leg.status == "open":
                        due.append((group, leg))
                        break
        for group in unplaced:
            if self.book.fresh(group.symbol, now) is not None:
                self._replace_layers(group, now)
        for group, leg in due:
            if leg is None:
                self._send_exit(group)
            elif self.book.fresh(leg.symbol, now) is not None:  # a stale price triggers nothing
                self._decide_exit(group, "time", leg.mark, leg)
        for group in groups:
            if self.groups.get(group.id) is group and _group_due(group, now):
                self._wake(group, now)

    # == the session and the P&L rules (DESIGN §3 portfolio level, daily loss limit) ============

    def _new_session(self, now: float) -> None:
        """Start the trading day that contains `now` (book.session_start in book.timezone)."""
        book = self.config.book
        self.day_start, self.day_end = session_bounds(now, book.session_start, book.timezone)
        self.realized_today.clear()
        for scope in self._scopes():
            scope.realized = 0.0
            scope.new_day(self.day_start)
            self._pending.append(scope)

    def _scopes(self) -> list[PnlScope]:
        return [self.book_scope, *(rt.scope for rt in self.strategies.values() if rt.scope is not None)]

    def _check_scopes(self, now: float) -> None:
        """Step (5): after the legs of a quote are marked, judge the P&L rules that watch them."""
        for scope in self._rule_scopes:
            hit = scope.check()
            if hit is not None:
                self._scope_fired(scope, hit[0], hit[1], now)

    def _scope_fired(self, scope: PnlScope, kind: str, level: float, now: float) -> None:
        """A P&L rule or a daily loss limit acted: block new entries in scope, exit its positions
        (a daily loss limit only when it is set to flatten), and say which rule at what value."""
        book = scope.scope == BOOK
        rules = scope.rules
        if kind == "daily_loss_limit" or book or scope.cooldown_s is None:
            until = self.day_end
        else:
            until = now + scope.cooldown_s
        pnl = scope.pnl if kind == "daily_loss_limit" else scope.pnl - scope.base
        scope.fire(kind, now, until)
        self._pending.append(scope)
        flatten = kind != "daily_loss_limit" or rules.flatten_on_daily_limit
        groups = [g for g in self.groups.values() if book or g.strategy_id == scope.scope]
        who = "the book" if book else scope.scope
        then = f"exiting {len(groups)} position(s); " if flatten and groups else ""
        until_text = "the next session" if until >= self.day_end else _local_time(until, self.config.book.timezone)
        self._event("critical" if book else "warning", "risk",
                    f"{RULE_LABEL[kind]} of {who} reached: P&L {pnl:+,.2f} against {level:+,.2f}; "
                    f"{then}no new entries until {until_text}",
                    strategy_id=None if book else scope.scope, needs_ack=True,
                    payload={"scope": scope.scope, "rule": kind, "level": level, "pnl": pnl, "until": until})
        self._apply_blocks(now)
        if flatten:
            reason = kind if kind == "daily_loss_limit" else f"{'book' if book else 'strategy'}_{kind}"
            for group in groups:
                if group.status == "entering":
                    self._cancel_entry(group, f"{RULE_LABEL[kind]} of {who} reached")
                elif not group.pending_exit and group.status == "open":
                    self._decide_exit(group, reason, None)
        self._commit()

    def _tick_scopes(self, now: float) -> None:
        """Bring every scope's P&L back to the exact sums (the quote path adds deltas) and write
        the scopes behind, then end the blocks whose time has come. A store that keeps no marks
        (replay's) keeps no scope rows either: its rules go on with the running sums, and the
        tick does not walk every position. Rules are judged on fresh quotes and fills only (a
        stale price never triggers an exit), not here."""
        if not self._rule_scopes and not self.book_scope.blocked_until:
            return
        if self._touch is not None:
            unrealized: dict[str, float] = {}
            for group in self.groups.values():
                unrealized[group.strategy_id] = unrealized.get(group.strategy_id, 0.0) + group.unrealized()
            for scope in self._scopes():
                if scope.scope == BOOK:
                    scope.realized, scope.unrealized = sum(self.realized_today.values()), sum(unrealized.values())
                else:
                    scope.realized = self.realized_today.get(scope.scope, 0.0)
                    scope.unrealized = unrealized.get(scope.scope, 0.0)
        released = False
        for scope in self._scopes():
            scope.updated_at = now
            if scope.blocked_until is not None and now >= scope.blocked_until:
                scope.release()
                self._pending.append(scope)
                released = True
                self._event("info", "risk", f"{'the book' if scope.scope == BOOK else scope.scope}: new entries allowed again; "
                            f"P&L rules measure from {scope.base:+,.2f}", strategy_id=None if scope.scope == BOOK else scope.scope)
            elif scope.saved and self._touch is not None:
                self._touch(scope)
        if released:
            self._apply_blocks(now)

    def _leg_scopes(self, strategy_id: str) -> tuple[PnlScope, ...]:
        """The scopes whose rules watch a leg of this strategy."""
        rt = self.strategies.get(strategy_id)
        return tuple(sc for sc in (rt.scope if rt is not None else None, self.book_scope)
                     if sc is not None and sc in self._rule_scopes)

    def _apply_blocks(self, now: float) -> None:
        """Give each strategy the reason its entries are refused (the book's first), if any."""
        book = self.book_scope.block_reason(now)
        for rt in self.strategies.values():
            block = book or (rt.scope.block_reason(now) if rt.scope is not None else "")
            if block != rt.block:
                rt.block = block
                for slot in rt.slots.values():
                    self._refresh_wanting(slot)
                self.version += 1

    # == entries =============================================================================

    def _enter(self, slot: Slot, q: Quote, source: str, signal_price: float | None = None,
               beyond_pool: bool = False, size: float | None = None) -> CommandResult:
        if self.state != "running":  # stopping: a quote or signal still in flight enters nothing
            return CommandResult.error(f"the engine is {self.state}: no new entries")
        rt = slot.strategy
        cfg = rt.config
        if self.entries.paused:
            return self._hold(slot, ENTRIES_STOPPED, quiet=True)
        if self.quarantined:
            why = next((self.quarantined[s] for s in slot.symbols if s in self.quarantined), "")
            if why:
                return self._hold(slot, why, quiet=True)
        if rt.block:
            return self._hold(slot, rt.block)
        if len(self.groups) >= self._pool_size and not beyond_pool:
            return self._hold(slot, f"pool full ({len(self.groups)}/{self._pool_size})", quiet=True,
                              message=f"{rt.id} {slot.symbol}: no free slot in the pool ({self._pool_size} positions open)")
        side, buy = cfg.side, cfg.side == "buy"
        now = self.clock.now()
        legs = []
        for sym in slot.symbols:
            lq = q if sym == slot.symbol else self.book.fresh(sym, now)
            if lq is None:
                return self._hold(slot, f"no fresh quote for {sym}", quiet=True)
            if (lq.ask if buy else lq.bid) <= 0:
                return self._hold(slot, f"no {'ask' if buy else 'bid'} price for {sym}", quiet=True)
            plan = self._plan(rt, sym, lq, signal_price if sym == slot.symbol else None, size)
            if isinstance(plan, str):
                return self._hold(slot, plan)
            legs.append((sym, *plan))
        notional = sum(qty * price for _, qty, price, _ in legs)
        dca = cfg.dca
        if dca is not None:  # the whole grid is reserved: its layers rest as orders once the first fills
            ref = legs[0][3]
            capital = _capital(cfg, size, ref)
            notional = sum(p.value for p in self._grid(cfg, slot.symbol, ref, capital))
        ex = cfg.execution
        refusal = self._funds_refusal(rt, notional)
        if refusal:
            return self._hold(slot, refusal)
        sym, qty, price, ref = legs[0]
        run = Run(self._next_id("run"), rt.id, slot.symbol, now, {
            "config_id": rt.id, "entry_method": source, "attempts": 0, "order_type": ex.order_type,
            "selected": list(slot.symbols), "reference_price": ref, "mark": mark_of(q),
            "scheduled_entry": entry_due(slot.schedule, now, None) if slot.schedule is not None else None,
        })
        group = Group(self._next_id("group"), run.id, rt.id, slot.symbol, side, now)
        group.basket = [(s, lq) for s, lq, _, _ in legs[1:]]
        if dca is not None:
            group.tp_mode, group.capital = dca.tp_mode, capital
        self._reserve(group, notional)
        self.runs[run.id] = run
        self.groups[group.id] = group
        slot.group = group
        slot.entered = True
        slot.last_entry_at = now
        slot.hold = slot.hold_kind = ""
        self._refresh_wanting(slot)
        self._pending += (run, group)
        self._start_leg(group, sym, qty, price, ref, source)
        if group.status == "open":
            filled = ", ".join(f"{_qty(leg.qty)} {leg.symbol} at {_px(leg.entry)}" for leg in group.open_legs())
            resting = [leg for leg in group.legs if leg.status == "pending"]
            rest = f"; {len(resting)} DCA layer(s) resting at {', '.join(_px(leg.entry) for leg in resting)}" if resting else ""
            return CommandResult.success(f"entered {side} {filled} (#{group.id}){rest}")
        if group.status == "entering":
            return CommandResult.success(f"entry #{group.id} for {group.entry_symbol}: limit {_px(group.entry_ref)} is working"
                                         if ex.order_type == "limit" else f"entry #{group.id} is working")
        return CommandResult.error(f"entry for {slot.symbol} failed: {run.reason}")

    def _start_leg(self, group: Group, symbol: str, qty: float, price: float, ref: float, source: str) -> None:
        """Send the entry of one leg (the only one, or the next of a basket)."""
        ex = self.strategies[group.strategy_id].config.execution
        group.entry_symbol, group.entry_ref = symbol, ref
        how = "at market" if ex.order_type == "market" else f"limit {_px(price)} (reference {_px(ref)})"
        self._event("info", "entry", f"{group.strategy_id}: entering {group.side} {_qty(qty)} {symbol} {how} ({source})",
                    group, symbol=symbol, payload={"qty": qty, "reference": ref, "price": price, "source": source, "symbol": symbol})
        if ex.order_type == "market":
            self._send_entry(group, qty, "market", "market", None, 0)
        else:
            self._send_entry(group, qty, "limit", "limit", price, 0)

    def _next_leg(self, group: Group) -> None:
        """A basket leg filled: enter the next one on its current quote, or unwind if it cannot go."""
        rt = self.strategies.get(group.strategy_id)
        symbol, qty = group.basket.pop(0)
        q = self.book.fresh(symbol, self.clock.now())
        plan = self._plan(rt, symbol, q) if rt is not None and q is not None else f"no fresh quote for {symbol}"
        if isinstance(plan, str):
            self._entry_failed(group, f"leg {symbol} could not be entered: {plan}")
            return
        _, price, ref = plan
        self._start_leg(group, symbol, qty, price, ref, "basket")

    def _plan(self, rt: StrategyRuntime, symbol: str, q: Quote, signal_price: float | None = None,
              size: float | None = None):
        """(qty, price, reference) of an entry on this quote, or why there can be none. The
        price is the limit (on the tick) or, for a market entry, the touch. `size` (a signal's)
        replaces the strategy's sizing; a DCA grid enters its first layer here."""
        cfg, side = rt.config, rt.config.side
        rules = self.rules.rules(symbol)
        if rules is None:
            return f"no precision rules for {symbol} yet (tick size, lot step, min notional)"
        ex = cfg.execution
        if ex.order_type == "limit":
            ref = signal_price if signal_price is not None else fill_price_from_quotes(side, q.bid, q.ask, ex.bias)
            price = round_price(ref, side, rules.tick_size)
        else:  # market: slippage is measured against the mark, the size against the touch
            ref, price = mark_of(q), (q.ask if side == "buy" else q.bid)
        if cfg.dca is not None:
            plans = self._grid(cfg, symbol, ref, _capital(cfg, size, ref))
            problem = self._grid_problem(symbol, plans)
            if problem:
                return f"{symbol}: DCA grid at {_px(ref)}: {problem}"
            raw = plans[0].qty
        elif size is not None:
            raw = size
        elif cfg.sizing.fixed_qty is not None:
            raw = cfg.sizing.fixed_qty
        else:
            raw = _capital(cfg, None, price) / price
        qty = floor_qty(raw, rules.lot_step)
        if qty <= 0:
            return f"{symbol}: the size {raw:.8g} rounds to zero at lot step {rules.lot_step:g}"
        if qty * price < rules.min_notional:
            return f"{symbol}: order value {qty * price:,.2f} is below the minimum notional {rules.min_notional:,.2f}"
        return qty, price, ref

    def _send_entry(self, group: Group, qty: float, order_type: str, method: str, price: float | None,
                    attempt: int) -> None:
        now = self.clock.now()
        order = Order(self._next_id("order"), group.id, None, group.strategy_id, group.entry_symbol, group.side, qty,
                      order_type, method, "entry", now, limit_price=price, reference_price=group.entry_ref,
                      retry_count=attempt)
        rt = self.strategies.get(group.strategy_id)
        group.entry_order_id = order.id
        group.entry_attempts = attempt + 1
        group.entry_deadline = now + rt.config.execution.retry_delay_s if order_type == "limit" and rt else None
        self.orders[order.id] = order
        self.recent_orders.append(order)
        if group.entry_deadline is not None:
            self.timers.at(group.entry_deadline, "entry", group)
        if attempt:
            what = "market fallback" if method == "market_fallback" else f"re-price {attempt} to {_px(price)}"
            self._event("warning" if method == "market_fallback" else "info", "entry",
                        f"{group.strategy_id}: entry #{group.id} {group.entry_symbol} not filled: {what}", group,
                        symbol=group.entry_symbol, payload={"attempt": attempt, "price": price, "reference": group.entry_ref, "method": method})
        self._pending += (order, group)
        self._commit()  # the order is durable before it is sent
        self.broker.submit(order)

    def _rework_entries(self, groups: Iterable[Group], now: float) -> None:
        """Re-price limit entries whose delay has passed, then fall back to market (DESIGN §3):
        attempt k of n re-prices sits k/(n+1) of the way from the reference to the touch."""
        for group in sorted(groups, key=_by_id):
            if group.status != "entering" or group.entry_deadline is None or now < group.entry_deadline:
                continue  # filled, failed, or re-priced since: its newer deadline has a timer of its own
            q = self.book.fresh(group.entry_symbol, now)
            if q is None:
                self.timers.at(now, "entry", group)  # the order keeps resting until a fresh price comes
                continue
            order = self.orders.get(group.entry_order_id)
            rt = self.strategies.get(group.strategy_id)
            if order is None or rt is None or not self.broker.cancel(order):
                continue  # filled (or gone) meanwhile
            ex = rt.config.execution
            attempt = order.retry_count + 1
            then = ("re-priced" if attempt <= ex.max_retries else
                    "market fallback" if ex.market_fallback else "no market fallback: the entry failed")
            self._order_final(order, "cancelled", f"not filled in time: {then}")
            if attempt <= ex.max_retries:
                touch = q.ask if group.side == "buy" else q.bid
                rules = self.rules.rules(group.entry_symbol)
                price = _repriced(group.entry_ref, touch, attempt, ex.max_retries)
                self._send_entry(group, order.qty, "limit", "limit_retry",
                                 round_price(price, group.side, rules.tick_size if rules else None), attempt)
            elif ex.market_fallback:
                self._send_entry(group, order.qty, "market", "market_fallback", None, attempt)
            else:
                reason = f"not filled after {ex.max_retries} re-price(s) and the market fallback is off"
                self._event("error", "entry", f"{group.strategy_id}: entry #{group.id} {group.entry_symbol} failed: {reason}",
                            group, symbol=group.entry_symbol, needs_ack=True)
                self._entry_failed(group, reason)

    def _hold(self, slot: Slot, reason: str, quiet: bool = False, message: str = "") -> CommandResult:
        """An entry that cannot go now: say why where the operator looks. The reason shown stays
        current; it is announced once per kind (amounts that move with the price do not count)."""
        if slot.hold != reason:
            slot.hold = reason
            kind = _AMOUNTS.sub("#", reason)
            if kind != slot.hold_kind:
                slot.hold_kind = kind
                if not quiet:
                    self._event("warning", "entry", f"{slot.strategy.id}: entry on {slot.symbol} held: {reason}",
                                strategy_id=slot.strategy.id, payload={"symbol": slot.symbol, "reason": reason})
            self.version += 1
        return CommandResult.error(message or f"{slot.strategy.id} {slot.symbol}: held: {reason}")

    # -- funds ------------------------------------------------------------------------------

    def _funds_refusal(self, rt: StrategyRuntime, notional: float) -> str:
        alloc = rt.config.allocation
        if alloc is not None:
            free = alloc - self.used_funds.get(rt.id, 0.0)
            if notional > free + 1e-9:
                return (f"insufficient funds: needs {notional:,.2f}, {rt.id} has {max(free, 0):,.2f} free "
                        f"of {alloc:,.2f} allocated")
        cash = self.free_cash()
        if notional > cash + 1e-9:
            return f"insufficient funds: needs {notional:,.2f}, the book has {max(cash, 0):,.2f} cash free"
        return ""

    def free_cash(self) -> float:
        """Paper cash: the starting cash plus realized P&L, less what open positions hold."""
        return self.config.paper.starting_cash + self.realized_total - sum(self.used_funds.values())

    def _reserve(self, group: Group, notional: float) -> None:
        self.used_funds[group.strategy_id] = self.used_funds.get(group.strategy_id, 0.0) + notional - group.notional
        group.notional = notional

    def _open_leg(self, order: Order, fill: Fill) -> None:
        group = self.groups[order.group_id]
        rt = self.strategies.get(group.strategy_id)
        now = self.clock.now()
        qty, price, fee = fill.qty, fill.price, fill.fee
        leg = next((lg for lg in group.legs if lg.id == order.leg_id), None) if order.leg_id is not None else None
        if leg is not None:  # a DCA layer's order filled: its pending leg opens
            leg.qty, leg.entry, leg.entry_fee, leg.opened_at = qty, price, fee, now
            leg.status, leg.entry_order_id = "open", None
        else:
            leg = Leg(self._next_id("leg"), group, order.symbol, order.side, qty, price, fee, now,
                      rt.config.trigger_price if rt else "mark")
            # before anything below commits (a basket's next leg, a grid's layers) with the fill pending
            order.leg_id = fill.leg_id = leg.id
            group.legs.append(leg)
            group.status = "entering" if group.basket else "open"
            group.entry_order_id = group.entry_deadline = None
            group.entry_method = order.method
            group.entry_attempts = order.retry_count + 1
            run = self.runs.get(group.run_id)
            if run is not None:
                run.status = "entering" if group.basket else "live"
                run.metadata = {**run.metadata, "attempts": group.entry_attempts, "filled_by": order.method,
                                "fill_price": price}
                self._pending.append(run)
        q = self.book.get(order.symbol)
        leg.mark = mark_of(q) if q is not None else price
        if rt is not None:
            _apply_config_levels(leg, rt.config, now)
            self._wake(group, leg.time_exit_at)
        leg.scopes = self._leg_scopes(group.strategy_id)
        for scope in leg.scopes:
            scope.unrealized += leg.unrealized()
        self._legs_by_symbol.setdefault(leg.symbol, []).append(leg)
        self._pending += (leg, group)
        layer = f" (layer {leg.layer + 1}{f', pyramid {leg.pyramid}' if leg.pyramid else ''})" if leg.layer is not None else ""
        self._event("info", "fill", f"{group.strategy_id}: entered {leg.side} {_qty(qty)} {leg.symbol} at {_px(price)}{layer}"
                    f"{_levels_text(leg)}", group, symbol=leg.symbol, payload={"price": price, "qty": qty, "fee": fee, "stop": leg.stop,
                                                            "target": leg.target, "trail_level": leg.trail_level,
                                                            "layer": leg.layer, "pyramid": leg.pyramid})
        if leg.trail_active:
            self._event("info", "trailing", f"trailing stop armed at entry on {leg.symbol} at {_px(leg.trail_level)}",
                        group, symbol=leg.symbol, payload={"level": leg.trail_level, "peak": leg.trail_peak})
        if group.tp_mode and rt is not None:
            self._layer_filled(group, leg, rt.config, now)
        if not group.basket:  # fully in: hold what the fills cost, not the estimate
            self._reserve(group, group.held())
        if group.pending_exit:  # filled while its group is exiting: out with the rest
            self._send_exit(group)
        elif group.basket:
            self._next_leg(group)

    # -- DCA grids and pyramids (DESIGN §3) ---------------------------------------------------

    def _entry_failed(self, group: Group | None, reason: str) -> None:
        if group is None:
            return
        if any(leg.status == "open" for leg in group.legs):  # a basket part-way in: get out of it
            group.basket = []
            run = self.runs.get(group.run_id)
            if run is not None:
                run.reason = f"{reason}; the filled legs are unwound"
            self._event("error", "entry", f"{group.strategy_id}: entry #{group.id} failed: {reason}; unwinding "
                        f"{', '.join(leg.symbol for leg in group.legs if leg.status == 'open')}", group, needs_ack=True)
            self._decide_exit(group, "unwind", None)
            return
        group.status = "closed"
        group.exit_reason = "entry_failed"
        group.closed_at = self.clock.now()
        self._reserve(group, 0.0)
        self.groups.pop(group.id, None)
        run = self.runs.pop(group.run_id, None)
        if run is not None:
            run.status, run.reason, run.ended_at = "error", reason, group.closed_at
            self._pending.append(run)
        self._pending.append(group)
        rt = self.strategies.get(group.strategy_id)
        if rt is not None:
            slot = rt.slots.get(group.symbol)
            if slot is not None and slot.group is group:
                slot.group = None
                slot.hold = reason
                slot.ready_at = self.clock.now() + 1.0
                self._refresh_wanting(slot)

    def _cancel_entry(self, group: Group, reason: str) -> None:
        """Stop an entry that is still working (its order cancelled; filled basket legs unwound)."""
        order = self.orders.get(group.entry_order_id) if group.entry_order_id is not None else None
        if order is not None:
            if not self.broker.cancel(order):
                return  # it filled meanwhile: the position is open and exits like the others
            self._order_final(order, "cancelled", reason)
        self._entry_failed(group, reason)

    # == exits ===============================================================================

    def _decide_exit(self, group: Group, reason: str, price: float | None, leg: Leg | None = None) -> None:
        """`price`: that of `leg` (the one whose rule triggered, or whose mark is shown)."""
        group.pending_exit = reason
        group.status = "exiting"
        run = self.runs.get(group.run_id)
        if run is not None:
            run.status = "exiting"
            self._pending.append(run)
        self._pending.append(group)
        name = _symbols(group)
        symbol = leg.symbol if leg is not None else None
        on = f" on {symbol}" if symbol is not None and symbol != name else ""
        at = f"{on} at {_px(price)}" if price is not None else ""
        self._event("info" if reason != "stop_loss" else "warning", "exit",
                    f"{group.strategy_id}: exit #{group.id} {name}: {reason}{at}", group, symbol=symbol,
                    payload={"reason": reason, "price": price, "symbol": symbol})
        self._cancel_layers(group, f"the group exits ({reason})")
        self._send_exit(group)
        if group.status != "closed" and not any(leg.status == "open" for leg in group.legs):
            self._close_group(group, self.clock.now())  # only resting layers were left: nothing to sell
        if self._pending:  # no leg had a fresh quote to send on: the decision is durable all the same
            self._commit()

    def _send_exit(self, group: Group) -> None:
        """Send an exit order for each open leg that has none working and a fresh quote (an
        order without one is rejected): a basket leg whose quote is stale goes on its own next
        fresh quote."""
        group.resend_at = None
        now = self.clock.now()
        for leg in group.legs:
            if leg.status == "open" and leg.exit_order_id is None and self.book.fresh(leg.symbol, now) is not None:
                self._send_exit_order(group, leg, 0, None, now)

    def _send_exit_order(self, group: Group, leg: Leg, attempt: int, ref: float | None, now: float,
                         reason: str = "", qty: float | None = None) -> None:
        """Attempt `attempt` at closing one leg: market by default; with a limit exit, a limit at
        the reference price re-priced toward the touch (like entries), then market. An exit is
        never abandoned: with no fresh quote to price a limit from, it goes at market."""
        rt = self.strategies.get(group.strategy_id)
        ex = rt.config.exit_execution if rt is not None else None
        side = "sell" if leg.dir > 0 else "buy"
        q = self.book.fresh(leg.symbol, now)
        reason = reason or group.pending_exit
        # an exit signal and the risk engine close at market (DESIGN §3); other exits are worked as configured
        if (ex is not None and ex.order_type == "limit" and q is not None and attempt <= ex.max_retries
                and reason not in ("signal", "risk_offset")):
            if ref is None:
                ref = fill_price_from_quotes(side, q.bid, q.ask, ex.bias)
            rules = self.rules.rules(leg.symbol)
            price = round_price(_repriced(ref, q.ask if side == "buy" else q.bid, attempt, ex.max_retries), side,
                                rules.tick_size if rules else None)
            order_type, method, limit = "limit", "limit_retry" if attempt else "limit", price
        else:
            q = q or self.book.get(leg.symbol)
            ref = ref if ref is not None else (mark_of(q) if q is not None else None)
            order_type, method, limit = "market", "market_fallback" if attempt else "market", None
        order = Order(self._next_id("order"), group.id, leg.id, group.strategy_id, leg.symbol, side,
                      qty or leg.qty, order_type, method, "exit", now, limit_price=limit, reference_price=ref,
                      retry_count=attempt)
        order.reason = reason
        leg.exit_order_id = order.id
        self.orders[order.id] = order
        self.recent_orders.append(order)
        if order_type == "limit":
            self.timers.at(now + ex.retry_delay_s, "exit", leg)  # re-priced then if still working
        self._pending += (order, group)
        self._commit()  # the exit decision and its order are durable before it is sent
        self.broker.submit(order)

    def _rework_exits(self, legs: Iterable[Leg], now: float) -> None:
        """Re-price limit exits whose delay has passed; after the last re-price, market."""
        for leg in sorted(legs, key=_by_group_and_id):
            group = leg.group
            order = self.orders.get(leg.exit_order_id) if leg.exit_order_id is not None else None
            if order is None or order.order_type != "limit" or self.groups.get(group.id) is not group:
                continue  # filled or re-priced since: a newer limit has a timer of its own
            rt = self.strategies.get(group.strategy_id)
            if now < order.created_at + (rt.config.exit_execution.retry_delay_s if rt is not None else 0.0):
                continue
            if self.book.fresh(leg.symbol, now) is None:
                self.timers.at(now, "exit", leg)  # no fresh price to re-price from: again at the next tick
                continue
            if not self.broker.cancel(order):
                continue  # it filled meanwhile
            attempt = order.retry_count + 1
            last = rt is None or attempt > rt.config.exit_execution.max_retries
            reason = order.reason
            self._order_final(order, "cancelled", "not filled in time: " + ("market fallback" if last else "re-priced"))
            leg.exit_order_id = None
            self._send_exit_order(group, leg, attempt, order.reference_price, now, reason,
                                  order.qty if order.qty < leg.qty else None)

    def _close_leg(self, order: Order, qty: float, price: float, fee: float) -> None:
        group = self.groups.get(order.group_id)
        if group is None:
            return
        leg = next((lg for lg in group.legs if lg.id == order.leg_id), None)
        if leg is None or leg.status != "open":
            return
        now = self.clock.now()
        if qty < leg.qty * (1 - 1e-9):
            self._reduce_leg(group, leg, order, qty, price, fee, now)
            return
        leg.status = "closed"
        leg.closed_at = now
        leg.exit_price, leg.exit_fee = price, fee
        leg.exit_reason = group.pending_exit or order.reason
        realized = _close_pnl(leg)
        leg.realized_pnl += realized
        leg.exit_order_id = None
        self._realize(group, realized)
        for scope in leg.scopes:  # the leg's P&L moves from unrealized to realized
            scope.unrealized -= leg.unrealized()
            scope.realized += realized
        legs = self._legs_by_symbol.get(leg.symbol)
        if legs is not None and leg in legs:
            legs.remove(leg)
        self._pending.append(leg)
        if not group.pending_exit:  # closed on its own (a layer's own take-profit, a risk offset), not by the group's exit
            self._leg_trade(leg, leg.qty, price, leg.exit_reason, realized, now)
        if leg.scopes:
            self._check_scopes(now)  # a realized loss can reach a daily loss limit
        if group.tp_mode:
            self._reserve(group, group.held())
            rt = self.strategies.get(group.strategy_id)
            self._rearm_aggregate(group, rt.config if rt is not None else None)  # a layer's own TP leaves the aggregate
        if any(lg.status == "open" for lg in group.legs) or (
                not group.pending_exit and any(lg.status == "pending" for lg in group.legs)):
            self._pending.append(group)  # legs still open, or layers still resting after their own take-profits
            return
        self._close_group(group, now)

    def _realize(self, group: Group, amount: float) -> None:
        group.realized_pnl += amount
        self.realized_today[group.strategy_id] = self.realized_today.get(group.strategy_id, 0.0) + amount
        self.realized_total += amount

    def _reduce_leg(self, group: Group, leg: Leg, order: Order, qty: float, price: float, fee: float, now: float) -> None:
        """Part of a leg closed (the risk engine takes from a winner): the rest stays open with
        its share of the entry fee."""
        fee_in = leg.entry_fee * qty / leg.qty
        realized = (price - leg.entry) * qty * leg.dir - fee_in - fee
        for scope in leg.scopes:
            scope.unrealized -= (leg.mark - leg.entry) * qty * leg.dir - fee_in
            scope.realized += realized
        leg.qty -= qty
        leg.entry_fee -= fee_in
        leg.realized_pnl += realized
        leg.exit_order_id = None
        self._realize(group, realized)
        self._reserve(group, group.held())
        self._pending += (leg, group)
        self._leg_trade(leg, qty, price, order.reason, realized, now)
        self._event("info", "exit", f"{group.strategy_id}: closed {_qty(qty)} of #{group.id} {leg.symbol} at {_px(price)} "
                    f"({order.reason}), {realized:+,.2f}; {_qty(leg.qty)} stays open", group, symbol=leg.symbol,
                    payload={"reason": order.reason, "qty": qty, "price": price, "pnl": realized, "leg_id": leg.id})
        if leg.scopes:
            self._check_scopes(now)

    def _leg_trade(self, leg: Leg, qty: float, price: float, reason: str, pnl: float, now: float) -> None:
        """A leg, or part of one, closed on its own, not by its group's exit: a trade of its own."""
        group = leg.group
        self._record_trade(TradeView(group.id, group.strategy_id, leg.symbol, leg.side, qty, leg.opened_at, leg.entry,
                                     now, price, reason, pnl))

    def _record_trade(self, trade: TradeView) -> None:
        self.trades.append(trade)
        for listener in self.trade_listeners:
            listener(trade)

    def _close_group(self, group: Group, now: float) -> None:
        group.status = "closed"
        group.closed_at = now
        exit_reason = group.pending_exit
        # (a grid whose layers all reached their own take-profit ends with the last one's reason)
        group.exit_reason = exit_reason or next(
            (lg.exit_reason for lg in reversed(group.legs) if lg.status == "closed"), "")
        group.pending_exit = ""
        self.groups.pop(group.id, None)
        run = self.runs.pop(group.run_id, None)
        if run is not None:
            run.ended_at = now
            if group.exit_reason == "unwind":  # the entry failed: the run ends in error, with its reason
                run.status = "error"
            else:
                run.status, run.reason = "closed", group.exit_reason
            self._pending.append(run)
        self._pending.append(group)
        self._reserve(group, 0.0)
        # The trade of the legs the group's exit closed (a leg closed on its own before was a trade then).
        closed = [lg for lg in group.legs if lg.status == "closed" and lg.exit_reason == exit_reason] if exit_reason else []
        name = _symbols(group)
        exit_price, at = None, ""
        if closed:
            leg = closed[0]  # a basket's round trip is its first leg's, as the history shows it
            qty, entry, exit_price = leg.qty, leg.entry, leg.exit_price
            if group.tp_mode:  # a grid: the round trip of the layers it closed, at average prices
                qty = sum(lg.qty for lg in closed)
                entry = sum(lg.entry * lg.qty for lg in closed) / qty
                exit_price = sum(lg.exit_price * lg.qty for lg in closed) / qty
            self._record_trade(TradeView(group.id, group.strategy_id, group.symbol, group.side, qty, group.opened_at,
                                         entry, now, exit_price, group.exit_reason, sum(map(_close_pnl, closed))))
            at = f" at {_px(exit_price)}"
            if name != group.symbol:  # a basket: each leg at its own price
                at = ": " + ", ".join(f"{lg.symbol} at {_px(lg.exit_price)}" for lg in closed)
        self._event("info", "exit", f"{group.strategy_id}: closed #{group.id} {name} ({group.exit_reason})"
                    f"{at}, P&L {group.realized_pnl:+,.2f}", group,
                    payload={"reason": group.exit_reason, "price": exit_price, "pnl": group.realized_pnl})
        rt = self.strategies.get(group.strategy_id)
        slot = rt.slots.get(group.symbol) if rt is not None else None
        if slot is not None and slot.group is group:
            slot.group = None
            slot.ready_at = now + rt.config.cooldown_s
            slot.exit_seq = self._quote_seq  # an exit and an entry never happen on the same quote
            self._refresh_wanting(slot)

    # == broker callbacks ====================================================================

    def _on_fill(self, order: Order, qty: float, price: float, fee: float, liquidity: str) -> None:
        now = self.clock.now()
        fill = Fill(self._next_id("fill"), order.id, order.leg_id, order.symbol, order.side, qty, price, fee, liquidity, now)
        order.filled_qty += qty
        order.avg_fill_price = price
        order.updated_at = now
        self._order_final(order, "filled", order.reason)
        self._pending.append(fill)
        if order.purpose == "entry":
            self._open_leg(order, fill)
        else:
            self._close_leg(order, qty, price, fee)
        self._commit()  # the fill is durable before anything else sees it
        for listener in self.fill_listeners:
            listener(fill)

    def _on_reject(self, order: Order, reason: str) -> None:
        self._order_final(order, "rejected", reason)
        group = self.groups.get(order.group_id)
        layer = next((lg for lg in group.legs if lg.id == order.leg_id), None) if group and order.leg_id else None
        if order.purpose == "entry" and layer is not None and layer.status == "pending":
            # one layer of a grid could not be placed: the grid goes on without it
            layer.status, layer.entry_order_id, layer.exit_reason = "cancelled", None, f"rejected: {reason}"
            self._reserve(group, group.held())
            self._pending.append(layer)
            self._event("warning", "order", f"{order.strategy_id}: #{group.id} {order.symbol} layer {layer.layer + 1} order "
                        f"rejected: {reason}; the grid goes on without it", group, needs_ack=True,
                        payload={"order_id": order.id, "reason": reason, "leg_id": layer.id})
            if not any(lg.status in ("open", "pending") for lg in group.legs) and not group.pending_exit:
                self._close_group(group, self.clock.now())
        elif order.purpose == "entry":
            self._event("warning", "order", f"{order.strategy_id}: entry order for {order.symbol} rejected: {reason}", group,
                        symbol=order.symbol, payload={"order_id": order.id, "reason": reason})
            self._entry_failed(group, f"entry rejected: {reason}")
        elif group is not None:
            leg = next((lg for lg in group.legs if lg.id == order.leg_id), None)
            if leg is not None and leg.exit_order_id == order.id:
                leg.exit_order_id = None
            group.resend_at = self.clock.now() + EXIT_RETRY_S
            self._wake(group, group.resend_at)
            rejected = sum(1 for o in self.recent_orders
                           if o.group_id == group.id and o.purpose == "exit" and o.status == "rejected")
            self._event("warning", "order", f"{order.strategy_id}: exit order for #{group.id} {order.symbol} rejected "
                        f"({rejected} so far): {reason}; retrying on the next fresh quote", group, symbol=order.symbol,
                        payload={"order_id": order.id, "reason": reason, "rejections": rejected},
                        needs_ack=rejected == 1)  # one alert per exit, not one per retry
        self._commit()

    def _order_final(self, order: Order, status: str, reason: str) -> None:
        order.status, order.reason = status, reason
        order.updated_at = self.clock.now()
        self.orders.pop(order.id, None)
        self._pending.append(order)

    # == operator commands ===================================================================

    def enter_now(self, strategy_id: str, symbol: str | None = None, source: str = "tui",
                  price: float | None = None, payload: dict | None = None, timeframe: str = "",
                  size: float | None = None) -> CommandResult:
        """Enter now (the operator, or a signal from the CLI). Every call is recorded as a
        Signal with its outcome; `price` is the signal's price, kept on the Signal; `size` the
        quantity instead of the strategy's sizing. With the pool full the signal is queued
        (DESIGN §3 pool & queue) and entered when a slot frees. For a DCA strategy that holds
        the symbol already, the signal is a pyramid: a new grid on the same group, no slot."""
        rt = self.strategies.get(strategy_id)
        if rt is None:
            return CommandResult.error(f"unknown strategy {strategy_id!r}")
        if self.state != "running":
            return CommandResult.error(f"the engine is {self.state}; entries are not taken")
        if not rt.config.enabled:
            return CommandResult.error(f"{strategy_id} is disabled in the settings")
        if rt.paused:
            return CommandResult.error(f"{strategy_id} is paused; resume it first")
        if self.entries.paused:
            return CommandResult.error(f"{ENTRIES_STOPPED}; resume them first (tui-trader resume --all)")
        if symbol is not None and symbol not in rt.slots:
            return CommandResult.error(f"{strategy_id} does not trade {symbol} (it trades {', '.join(rt.slots)})")
        now = self.clock.now()
        results = []
        for slot in (rt.slots[symbol],) if symbol else tuple(rt.slots.values()):
            pyramid = slot.group is not None and rt.config.dca is not None
            signal = Signal(self._next_id("signal"), rt.id, slot.symbol, rt.config.side, "pyramid" if pyramid else "entry",
                            source, now, price, payload)
            self._pending.append(signal)
            q = self.book.fresh(slot.symbol, now)
            far = self._far_from_market(slot.symbol, price, q)
            if far:
                result = CommandResult.error(far)
            elif pyramid:
                result = self._pyramid(slot.group, q, price, size, source) if q is not None else CommandResult.error(
                    f"{slot.symbol}: no fresh quote (older than {self._max_age:g}s); no pyramid on a stale price")
            elif slot.group is not None:
                result = CommandResult.error(f"{slot.symbol}: {strategy_id} already holds #{slot.group.id}")
            elif rt.block:
                result = CommandResult.error(f"{strategy_id} {slot.symbol}: entries are blocked: {rt.block}")
            elif len(self.groups) >= self._pool_size:
                result = self._queue_signal(signal, timeframe, size, now)
            elif q is None:
                result = CommandResult.error(f"{slot.symbol}: no fresh quote (older than {self._max_age:g}s); not entering on a stale price")
            else:
                result = self._enter(slot, q, source, price, size=size)
            signal.status = "queued" if signal.status == "queued" else "done" if result.ok else "rejected"
            signal.outcome = result.message
            self._pending.append(signal)
            results.append(result)
        self._commit()
        return _combine(results)

    def _far_from_market(self, symbol: str, price: float | None, q: Quote | None) -> str:
        """Why a signal's price is no level to trade at (another symbol's price, a misplaced
        decimal point): further than engine.signal_price_gap_pct from the mark ("" when not)."""
        if price is None or q is None:
            return ""
        mark = mark_of(q)
        gap = abs(price / mark - 1) * 100 if mark > 0 else 0.0
        limit = self.config.engine.signal_price_gap_pct
        if gap <= limit:
            return ""
        return (f"{symbol}: signal price {_px(price)} is {gap:.1f}% from the market ({_px(mark)}); more than "
                f"engine.signal_price_gap_pct ({limit:g}%): refused")

    # -- the queue (DESIGN §3 pool & queue) --------------------------------------------------

    def _queue_signal(self, signal: Signal, timeframe: str, size: float | None, now: float) -> CommandResult:
        """The pool is full: the signal waits for a slot, replacing a queued one of the same
        strategy, symbol and timeframe."""
        signal.status = "queued"
        queued = self.queue.find(signal.strategy_id, signal.symbol, timeframe)
        if queued is not None:
            self.queue.replace(queued, signal.id, signal.side, signal.price, size, now)
            what = f"replaced queued signal #{queued.id} (replacement {queued.replacements})"
        else:
            queued = QueuedSignal(self._next_id("queued_signal"), signal.id, signal.strategy_id, signal.symbol,
                                  timeframe, signal.side, signal.price, now, self.queue.ttl_s)
            queued.size = size
            self.queue.add(queued)
            what = f"queued as #{queued.id}"
        self.timers.at(queued.expires_at, "queue")
        self._pending.append(queued)
        rank = next(i for i, (q, _) in enumerate(self.queue.ranked(self._mark_of), 1) if q is queued)
        tf = f" {timeframe}" if timeframe else ""
        message = (f"{signal.strategy_id} {signal.symbol}{tf}: pool full ({len(self.groups)}/{self._pool_size}); "
                   f"{what}, rank {rank} of {len(self.queue)}")
        self._event("info", "queue", message, strategy_id=signal.strategy_id,
                    payload={"queued": queued.id, "signal": signal.id, "rank": rank, "replacements": queued.replacements})
        return CommandResult.success(message)

    def _mark_of(self, symbol: str) -> float | None:
        q = self.book.get(symbol)
        return mark_of(q) if q is not None else None

    def _tick_queue(self, now: float) -> None:
        """Expire old signals, then give free slots to the queue in rank order."""
        for queued in self.queue.expired(now):
            self._close_queued(queued, "expired", f"no slot within queue_ttl_s ({self.queue.ttl_s:g} s)", now)
        if self.state != "running" or self.entries.paused:
            return
        for queued, _ in self.queue.ranked(self._mark_of):
            if len(self.groups) >= self._pool_size:
                break
            q = self.book.fresh(queued.symbol, now)
            rt = self.strategies.get(queued.strategy_id)
            slot = rt.slots.get(queued.symbol) if rt is not None else None
            if q is None or (slot is not None and slot.exit_seq == self._quote_seq):
                continue  # no fresh price, or its slot exited on this quote: the next in line may go first
            self._enter_queued(queued, q, now, beyond_pool=False)

    def _enter_queued(self, queued: QueuedSignal, q: Quote, now: float, beyond_pool: bool) -> CommandResult:
        rt = self.strategies.get(queued.strategy_id)
        slot = rt.slots.get(queued.symbol) if rt is not None else None
        if slot is None:
            result = CommandResult.error(f"{queued.strategy_id} no longer trades {queued.symbol}")
        elif slot.group is not None:
            result = CommandResult.error(f"{queued.strategy_id} already holds #{slot.group.id} on {queued.symbol}")
        elif rt.paused or not rt.config.enabled:
            result = CommandResult.error(f"{queued.strategy_id} is {'paused' if rt.paused else 'disabled'}")
        elif far := self._far_from_market(queued.symbol, queued.price, q):  # the market moved while it waited
            result = CommandResult.error(far)
        else:
            result = self._enter(slot, q, "queue", queued.price, beyond_pool=beyond_pool, size=queued.size)
        self._close_queued(queued, "entered" if result.ok else "rejected", result.message, now)
        return result

    def _close_queued(self, queued: QueuedSignal, status: str, outcome: str, now: float) -> None:
        self.queue.close(queued, status, outcome, now)
        self._pending.append(queued)
        level = "info" if status == "entered" else "warning"
        self._event(level, "queue", f"queued signal #{queued.id} {queued.strategy_id} {queued.symbol} {status}: {outcome}",
                    strategy_id=queued.strategy_id, payload={"queued": queued.id, "status": status})

    def exit_signal(self, strategy_id: str, symbol: str | None = None, source: str = "cli",
                    price: float | None = None, payload: dict | None = None, timeframe: str = "") -> CommandResult:
        """An exit intent: drop the strategy's queued entry signals on the symbol (all its
        symbols when none is given; one timeframe when given) and close its position there.
        Recorded as a Signal of kind exit with its outcome."""
        rt = self.strategies.get(strategy_id)
        symbols = (symbol,) if symbol else tuple(rt.slots) if rt is not None else ()
        if rt is None and not any(g.strategy_id == strategy_id for g in self.groups.values()):
            return CommandResult.error(f"unknown strategy {strategy_id!r}")
        now = self.clock.now()
        signal = Signal(self._next_id("signal"), strategy_id, symbol, rt.config.side if rt else "", "exit", source, now,
                        price, payload)
        results = []
        for queued in list(self.queue.items.values()):
            if queued.strategy_id == strategy_id and queued.symbol in symbols and timeframe in ("", queued.timeframe):
                self._close_queued(queued, "removed", f"cancelled by an exit signal (#{signal.id})", now)
                results.append(CommandResult.success(f"queued entry #{queued.id} {queued.symbol} cancelled"))
        for group in [g for g in self.groups.values() if g.strategy_id == strategy_id and g.symbol in symbols]:
            if group.status == "entering":
                self._cancel_entry(group, f"cancelled by an exit signal (#{signal.id})")
                results.append(CommandResult.success(f"entry #{group.id} {group.symbol} cancelled"))
            else:
                results.append(self.exit_position(group.id, reason="signal"))
        result = _combine(results) if results else CommandResult.error(
            f"{strategy_id} has no position or queued entry on {', '.join(symbols) or 'any symbol'} to exit")
        signal.status, signal.outcome = ("done" if result.ok else "rejected"), result.message
        self._pending.append(signal)
        self._commit()
        return result

    def promote_signal(self, queued_id: int) -> CommandResult:
        """The operator puts a queued signal first in line for the next free slot."""
        queued = self.queue.items.get(queued_id)
        if queued is None:
            return CommandResult.error(f"no queued signal #{queued_id}")
        if queued.pinned:
            return CommandResult.error(f"#{queued_id} is already promoted")
        queued.pinned = True
        self._pending.append(queued)
        self._event("info", "queue", f"queued signal #{queued_id} {queued.strategy_id} {queued.symbol} promoted by the operator",
                    strategy_id=queued.strategy_id)
        self._commit()
        return CommandResult.success(f"#{queued_id} {queued.symbol} is first in line for the next free slot")

    def remove_signal(self, queued_id: int) -> CommandResult:
        queued = self.queue.items.get(queued_id)
        if queued is None:
            return CommandResult.error(f"no queued signal #{queued_id}")
        self._close_queued(queued, "removed", "removed by the operator", self.clock.now())
        self._commit()
        return CommandResult.success(f"removed queued signal #{queued_id} {queued.strategy_id} {queued.symbol}")

    def force_add(self, queued_id: int) -> CommandResult:
        """Enter a queued signal now, beyond the pool's size (the operator confirmed it)."""
        queued = self.queue.items.get(queued_id)
        if queued is None:
            return CommandResult.error(f"no queued signal #{queued_id}")
        now = self.clock.now()
        q = self.book.fresh(queued.symbol, now)
        if q is None:
            return CommandResult.error(f"{queued.symbol}: no fresh quote; not entering on a stale price")
        result = self._enter_queued(queued, q, now, beyond_pool=True)
        self._commit()
        return result

    def exit_position(self, group_id: int, reason: str = "manual") -> CommandResult:
        group = self.groups.get(group_id)
        if group is None:
            return CommandResult.error(f"no open position #{group_id}")
        if group.status == "entering":
            return CommandResult.error(f"#{group_id} is still entering; wait for its fill")
        if group.pending_exit:
            return CommandResult.error(f"#{group_id} is already exiting ({group.pending_exit})")
        legs = group.open_legs()
        self._decide_exit(group, reason, legs[0].mark if legs else None, legs[0] if legs else None)
        self.version += 1
        if group.status == "closed":
            return CommandResult.success(f"closed #{group_id} {group.symbol}, P&L {group.realized_pnl:+,.2f}")
        return CommandResult.success(f"exit of #{group_id} {group.symbol} is pending: it is sent on the next fresh quote")

    def exit_strategy(self, strategy_id: str) -> CommandResult:
        if strategy_id not in self.strategies and not any(g.strategy_id == strategy_id for g in self.groups.values()):
            return CommandResult.error(f"unknown strategy {strategy_id!r}")
        if strategy_id in self.orphans:
            self.orphans[strategy_id][1] = "close"
        ids = [g.id for g in self.groups.values() if g.strategy_id == strategy_id and g.status == "open"]
        if not ids:
            return CommandResult.error(f"{strategy_id} has no open position to exit")
        return _combine([self.exit_position(gid) for gid in ids])

    def exit_all(self) -> CommandResult:
        ids = [g.id for g in self.groups.values() if g.status == "open"]
        if not ids:
            return CommandResult.error("there is no open position to exit")
        return _combine([self.exit_position(gid) for gid in ids])

    def exit_positions(self, group_ids) -> CommandResult:
        """Exit several positions (the operator's multi-selection): one answer for all."""
        ids = list(dict.fromkeys(group_ids))
        if not ids:
            return CommandResult.error("no position selected")
        return _combine([self.exit_position(gid) for gid in ids])

    def keep_managing(self, strategy_id: str) -> CommandResult:
        """The operator's answer for the open positions of a strategy that was removed from (or
        disabled in) the settings: keep managing them on their stored levels."""
        orphan = self.orphans.get(strategy_id)
        if orphan is None:
            return CommandResult.error(f"{strategy_id} has no open position left over from the settings")
        orphan[1] = "keep"
        ids = ", ".join(f"#{g.id}" for g in self.groups.values() if g.strategy_id == strategy_id)
        self._event("info", "lifecycle", f"{strategy_id} ({orphan[0]}): the operator keeps managing {ids} "
                    "on their stored levels", strategy_id=strategy_id)
        self._commit()
        return CommandResult.success(f"{ids} of {strategy_id} stay open, managed on their stored levels")

    def stop_entries(self, stopped: bool = True) -> CommandResult:
        """The book-wide switch: no entry of any strategy (signals, schedules, re-entries, the
        queue, pyramids) while stopped; open positions are still managed. Survives a restart."""
        word = "stopped" if stopped else "resumed"
        if self.entries.paused == stopped:
            return CommandResult.error(f"entries are already {word}")
        self.entries.paused = stopped
        for rt in self.strategies.values():
            for slot in rt.slots.values():
                if slot.hold == ENTRIES_STOPPED:
                    slot.hold = slot.hold_kind = ""
                self._refresh_wanting(slot)
        self._pending.append(self.entries)
        note = ": no strategy enters until they are resumed; open positions are still managed" if stopped else ""
        self._event("warning" if stopped else "info", "lifecycle", f"entries {word} for the whole book by the operator{note}")
        self._commit()
        self.version += 1
        return CommandResult.success(f"entries {word} for the whole book{note}")

    def pause(self, strategy_id: str) -> CommandResult:
        return self._set_paused(strategy_id, True)

    def resume(self, strategy_id: str) -> CommandResult:
        return self._set_paused(strategy_id, False)

    def _set_paused(self, strategy_id: str, paused: bool) -> CommandResult:
        rt = self.strategies.get(strategy_id)
        if rt is None:
            return CommandResult.error(f"unknown strategy {strategy_id!r}")
        word = "paused" if paused else "resumed"
        if rt.paused == paused:
            return CommandResult.error(f"{strategy_id} is already {word}")
        rt.state.paused = paused
        for slot in rt.slots.values():
            self._refresh_wanting(slot)
        self._pending.append(rt.state)
        note = "; its open positions are still managed" if paused else ""
        self._event("info", "lifecycle", f"{strategy_id} {word} by the operator{note}", strategy_id=strategy_id)
        self._commit()
        self.version += 1
        return CommandResult.success(f"{strategy_id} {word}{note}")

    def edit_levels(self, group_id: int, *, leg_id: int | None = None, stop=KEEP, target=KEEP, trail_distance=KEEP,
                    trail_activation=KEEP, time_exit_at=KEEP, confirm: bool = False) -> CommandResult:
        """Move a position's stop, target (absolute prices), trailing distance or activation
        ("0.5%" or points) or time exit (epoch seconds). None removes a level. Validated against
        the current mark; an edit that would exit at once needs confirm=True (it then exits on
        this quote). Persisted and audited with old and new values before it takes effect. A
        basket's levels are its legs' own: `leg_id` says which."""
        group = self.groups.get(group_id)
        legs = [leg for leg in group.legs if leg.status == "open"] if group is not None else []
        if not legs:
            return CommandResult.error(f"no open position #{group_id}")
        if group.pending_exit:
            return CommandResult.error(f"#{group_id} is exiting ({group.pending_exit}); its levels can no longer change")
        if leg_id is None and len(legs) > 1:
            if group.tp_mode:
                return CommandResult.error(f"#{group_id} is a DCA grid of {len(legs)} open layers; say which layer to edit "
                                           f"({', '.join(f'{leg.id} {_layer_name(leg)}' for leg in legs)})")
            return CommandResult.error(f"#{group_id} is a basket of {len(legs)} legs; say which leg to edit "
                                       f"({', '.join(f'{leg.id} {leg.symbol}' for leg in legs)})")
        leg = next((leg for leg in legs if leg.id == leg_id), None) if leg_id is not None else legs[0]
        if leg is None:
            return CommandResult.error(f"#{group_id} has no open leg {leg_id}")
        now = self.clock.now()
        probe = copy.copy(leg)  # the leg as the edit would leave it; applied only if it is valid
        probe.trail_moves = deque(leg.trail_moves, maxlen=8)
        errors = _edit_errors(probe, now, stop, target, trail_distance, trail_activation, time_exit_at)
        if errors:
            return CommandResult.error("; ".join(errors))
        changes = [f"{LEVEL_LABELS.get(k, k)} {_fmt_level(k, getattr(leg, k))} -> {_fmt_level(k, getattr(probe, k))}"
                   for k in _EDITABLE if getattr(leg, k) != getattr(probe, k)]
        if not changes:
            return CommandResult.error("nothing changed")
        q = self.book.fresh(leg.symbol, now)
        px = _trigger_px(probe, q) if q is not None else probe.mark
        reason = _exit_reason(probe, px, now)
        if reason is not None and not confirm:
            return CommandResult(False, f"#{group_id} {leg.symbol}: this edit would exit at once ({reason} at {_px(px)}); "
                                 "confirm to apply it and exit now", needs_confirm=True)
        old = {k: _level_value(getattr(leg, k)) for k in _EDITABLE}
        for name in (*_EDITABLE, "trail_act_amount", "trail_active", "trail_peak", "trail_updated_at", "trail_moves"):
            setattr(leg, name, getattr(probe, name))
        self._wake(group, leg.time_exit_at)
        new = {k: _level_value(getattr(leg, k)) for k in _EDITABLE}
        self._pending.append(leg)
        self._event("info", "levels", f"#{group_id} {leg.symbol} levels edited: {', '.join(changes)}", group,
                    payload={"old": old, "new": new})
        self._commit()  # persisted before it takes effect
        self.version += 1
        text = f"#{group_id} {leg.symbol}: {', '.join(changes)}"
        if reason is not None and q is not None:
            self._decide_exit(group, reason, px, leg)
            return CommandResult.success(f"{text}; exiting ({reason})")
        return CommandResult.success(text)

    # == persistence helpers =================================================================

    def _commit(self) -> None:
        pending, self._pending = self._pending, []
        if self._deferred:
            pending += self._deferred
            self._deferred = []
        self.store.write(pending)

    def _next_id(self, kind: str) -> int:
        n = self._ids.get(kind, 0) + 1
        self._ids[kind] = n
        return n

    def _refresh_wanting(self, slot: Slot) -> None:
        wanting = self._wanting.setdefault(slot.symbol, [])
        wants = not self.entries.paused and slot.strategy.wants_entry(slot)
        if wants and slot not in wanting:
            wanting.append(slot)
        elif not wants and slot in wanting:
            wanting.remove(slot)

    # == restart =============================================================================

    def _restore(self, st: LoadedState) -> None:
        self._ids.update(st.max_ids)
        for row in st.last_quotes:
            rec = self.last_quotes[row["symbol"]] = LastQuote(row["symbol"], row["bid"], row["ask"], row["last"], row["ts"])
            rec.saved = True
        continue_from = getattr(self.feed, "continue_from", None)
        if continue_from is not None and self.last_quotes:
            continue_from({sym: mark_of(Quote(sym, r.ts, r.bid, r.ask, r.last)) for sym, r in self.last_quotes.items()})
        self.first_event_id = self._ids.get("event", 0) + 1
        for row in st.strategy_state:
            if row["strategy_id"] == ALL_ENTRIES:
                self.entries.paused, self.entries.saved = bool(row["paused"]), True
            rt = self.strategies.get(row["strategy_id"])
            if rt is not None:
                rt.state.paused = bool(row["paused"])
                rt.state.saved = True
        for row in st.runs:
            run = Run(row["id"], row["strategy_id"], row["symbol"], row["started_at"], row["session_metadata"] or {})
            run.status, run.reason, run.saved = row["status"], row["reason"], True
            self.runs[run.id] = run
        legs_by_group: dict[int, list[dict]] = {}
        for row in st.legs:
            legs_by_group.setdefault(row["group_id"], []).append(row)
        for row in st.groups:
            group = Group(row["id"], row["run_id"], row["strategy_id"], row["symbol"], row["side"], row["opened_at"])
            group.status, group.saved = row["status"], True
            group.realized_pnl, group.entry_method, group.entry_attempts = row["realized_pnl"], row["entry_method"], row["entry_attempts"]
            group.pending_exit = row["pending_exit"]
            for name in _GROUP_GRID_FIELDS:
                setattr(group, name, row[name])
            for lrow in legs_by_group.get(group.id, []):
                leg = _leg_from_row(lrow, group)
                group.legs.append(leg)
                if leg.status == "open":
                    self._legs_by_symbol.setdefault(leg.symbol, []).append(leg)
            self.groups[group.id] = group
            self._reserve(group, group.held())
        self.realized_total = st.realized_total
        cancelled: dict[int, Order] = {}
        for row in st.working_orders:
            order = cancelled[row["id"]] = _order_from_row(row)
            group = self.groups.get(order.group_id)
            if row["reason"] == KEPT_AT_STOP and order.purpose == "entry" and group is not None and group.status == "entering":
                # the paper broker keeps no orders across processes: the same order is placed again
                self._order_final(order, "cancelled", "placed again after the restart")
                group.entry_symbol, group.entry_ref = order.symbol, order.reference_price
                group.resume_entry = (order.qty - order.filled_qty, order.order_type, order.method, order.limit_price,
                                      order.retry_count)
                self._event("info", "recovery", f"entry #{group.id} {order.symbol} was kept working at the stop: its order "
                            "is placed again on the next fresh quote", group, payload={"order_id": order.id})
                continue
            self._order_final(order, "cancelled", "not working after a restart (the paper broker keeps no orders)")
            self._event("warning", "recovery", f"order {order.client_id} ({order.purpose} {order.side} {order.symbol}) was "
                        f"{row['status']} when the engine stopped; marked cancelled", payload={"order_id": order.id})
        for group in list(self.groups.values()):
            if group.resume_entry is None and (
                    group.status == "entering" or not any(leg.status in ("open", "pending") for leg in group.legs)):
                self._event("warning", "recovery", f"entry #{group.id} {group.symbol} had not filled when the engine stopped; "
                            "it is abandoned", group)
                self._entry_failed(group, "the engine stopped before the entry filled")
            elif group.pending_exit:
                group.status = "exiting"
                group.resend_at = 0.0
                self._event("warning", "recovery", f"resuming the exit of #{group.id} {group.symbol} ({group.pending_exit}); "
                            "it is sent on the next fresh quote", group)
                self._cancel_layers(group, "the group was exiting when the engine stopped")
            for leg in group.legs:
                if leg.status == "pending":
                    leg.entry_order_id = None  # the paper broker kept no orders: placed again on a fresh quote
        for group in self.groups.values():
            self._wake(group, self.clock.now())  # an entry or layers to place again, an exit to send again
            for leg in group.legs:
                leg.scopes = self._leg_scopes(group.strategy_id)
                if leg.status == "open":
                    self._wake(group, leg.time_exit_at)
            rt = self.strategies.get(group.strategy_id)
            slot = rt.slots.get(group.symbol) if rt is not None else None
            if rt is None or not rt.config.enabled:
                why = "removed from the settings" if rt is None else "disabled in the settings"
                self.orphans.setdefault(group.strategy_id, [why, ""])
            if slot is None:
                continue
            slot.group = group
        for sid, (why, _) in self.orphans.items():
            ids = ", ".join(f"#{g.id} {g.symbol}" for g in self.groups.values() if g.strategy_id == sid)
            self.notes.append(f"{sid} is {why} but holds {ids}: still managed on the stored levels until you close them "
                              f"(S on 3 Positions, or tui-trader exit --strategy {sid})")
            self._event("warning", "recovery", self.notes[-1], strategy_id=sid, needs_ack=True,
                        payload={"strategy": sid, "why": why, "positions": [g.id for g in self.groups.values()
                                                                             if g.strategy_id == sid]})
        for rt in self.strategies.values():
            for sym, slot in rt.slots.items():
                last = st.last_exit.get((rt.id, sym))
                if last is not None:
                    slot.ready_at = last + rt.config.cooldown_s
                slot.entered = (rt.id, sym) in st.entered_today or slot.group is not None
                slot.last_entry_at = st.last_entry.get((rt.id, sym))
                self._refresh_wanting(slot)
        self.realized_today = dict(st.realized_today)
        for row in st.queued_signals:
            self.queue.add(QueuedSignal.from_row(row))
            self.timers.at(row["expires_at"], "queue")
        stored = {row["scope"]: row for row in st.pnl_state}
        for scope in self._scopes():
            row = stored.get(scope.scope)
            if row is not None:
                scope.saved = True
                if row["day_start"] == self.day_start:
                    scope.restore(row)  # the same session: its rules' state (a firing, a P&L peak) carries on
        self._tick_scopes(self.clock.now())
        self._apply_blocks(self.clock.now())
        self._restore_events(st.recent_events, st.unread_alerts)
        for row in st.recent_orders:  # loaded before the cancels above: show the cancelled state
            self.recent_orders.append(cancelled.get(row["id"]) or _order_from_row(row))
        for row in st.recent_trades:
            self.trades.append(TradeView(row["id"], row["strategy_id"], row["symbol"], row["side"], row.get("qty") or 0.0,
                                         row["opened_at"], row.get("avg_entry") or 0.0, row["closed_at"] or 0.0,
                                         row.get("exit_price") or 0.0, row["exit_reason"], row["realized_pnl"]))
        open_count = self.resumed = len(self.groups)
        self.started_at = self.clock.now()
        self._event("info", "engine", f"engine started ({self.mode}); resumed {open_count} open position(s)"
                    + (": managed again on their stored levels" if open_count else ""), payload={"open_positions": open_count})

    # == snapshots ===========================================================================

    def snapshot(self) -> EngineSnapshot:
        if self._deferred:
            self._commit()  # nothing is shown before it is durable
        now = self.clock.now()
        book = self.book
        positions = []
        unrealized_by_strategy: dict[str, float] = {}
        for group in self.groups.values():
            for leg in group.legs:
                if leg.status != "open":
                    continue
                stale = book.fresh(leg.symbol, now) is None
                pnl = leg.unrealized()
                unrealized_by_strategy[group.strategy_id] = unrealized_by_strategy.get(group.strategy_id, 0.0) + pnl
                notional = leg.entry * leg.qty
                status = "EXITING" if group.pending_exit else ("STALE" if stale else "OPEN")
                positions.append(PositionView(
                    group.id, leg.id, group.strategy_id, leg.symbol, leg.side, leg.qty, leg.entry, leg.mark, pnl,
                    pnl / notional * 100.0 if notional else 0.0, leg.entry_fee, leg.stop, leg.target,
                    _opt_str(leg.trail_distance), _opt_str(leg.trail_activation), leg.trail_active, leg.trail_peak,
                    leg.trail_level, leg.trail_updated_at, leg.time_exit_at, status, leg.opened_at, group.pending_exit,
                    leg.entry + leg.dir * leg.trail_act_amount if leg.trail_distance is not None and not leg.trail_active else None,
                    tuple(leg.trail_moves), self._exit_order_text(leg), tuple(leg.marks),
                ))
        strategies = tuple(self._strategy_view(rt, unrealized_by_strategy.get(rt.id, 0.0), now) for rt in self.strategies.values())
        realized = sum(self.realized_today.values())
        unrealized = sum(unrealized_by_strategy.values())
        health = self.feed.health
        stale_symbols = tuple(sym for sym in self.feed.symbols if book.fresh(sym, now) is None)
        waiting = tuple(
            WaitingEntry(slot.strategy.id, slot.symbol, slot.hold or _wait_reason(slot, now, book))
            for slots in self._wanting.values() for slot in slots
        )
        return EngineSnapshot(
            seq=self.version, ts=now, mode=self.mode.upper(), state=self.state,
            feed=FeedView(health.name, health.is_healthy(now, self._max_age), health.last_event_at,
                          len(self.feed.symbols), stale_symbols),
            day_pnl=realized + unrealized, realized_today=realized, unrealized=unrealized,
            pool_used=len(self.groups), pool_total=self._pool_size, unread_alerts=self.unread_alerts,
            strategies=strategies, positions=tuple(positions),
            orders=tuple(_order_view(o) for o in self.recent_orders), events=tuple(self.events),
            trades=tuple(self.trades), waiting=waiting, db_ok=getattr(self.store, "ok", True),
            notes=tuple(self.notes), portfolio=self._portfolio_views(unrealized_by_strategy, now),
            session_start=self.day_start, session_end=self.day_end, queue=self.queue.views(self._mark_of),
            grids=tuple(self._grid_view(g) for g in self.groups.values() if g.tp_mode),
            risk=self._risk_views(now), alerts=self.alerts_view(), started_at=self.started_at, resumed=self.resumed,
            risk_engine="off" if self.config.risk_engine is None else "auto" if self.config.risk_engine.enabled else "manual",
            entries_stopped=self.entries.paused, account=self._account_view(positions, unrealized), ticks=self._ticks(),
            orphans=tuple(
                OrphanView(sid, why, tuple(g.id for g in self.groups.values() if g.strategy_id == sid), decided)
                for sid, (why, decided) in self.orphans.items() if any(g.strategy_id == sid for g in self.groups.values())
            ),
        )

    def _ticks(self) -> dict[str, float]:
        """Each configured symbol's tick size (the same dict while the rules don't change)."""
        ticks = {sym: r.tick_size for sym in self.config.symbols if (r := self.rules.rules(sym)) and r.tick_size}
        if ticks != self._ticks_shown:
            self._ticks_shown = ticks
        return self._ticks_shown

    def _account_view(self, positions: list[PositionView], unrealized: float) -> AccountView:
        """The paper account: cash is the starting cash plus every realized P&L, equity adds
        the open positions' unrealized P&L; exposure at the marks."""
        start = self.config.paper.starting_cash
        cash = start + self.realized_total
        gross = sum(abs(p.qty * p.mark) for p in positions)
        net = sum((1 if p.side == "buy" else -1) * p.qty * p.mark for p in positions)
        return AccountView(start, cash, cash + unrealized, gross, net, self.free_cash())

    def _portfolio_views(self, unrealized: dict[str, float], now: float) -> tuple[PortfolioView, ...]:
        """The book, then every strategy with P&L rules, positions or a realized P&L today."""
        counts: dict[str, int] = {}
        for group in self.groups.values():
            counts[group.strategy_id] = counts.get(group.strategy_id, 0) + 1
        book = self.book_scope
        book.realized, book.unrealized = sum(self.realized_today.values()), sum(unrealized.values())
        views = [PortfolioView(BOOK, book.realized, book.unrealized, book.pnl, len(self.groups),
                               book.rule_views(), book.block_reason(now), book.blocked_until)]
        for sid in dict.fromkeys((*self.strategies, *counts, *self.realized_today)):
            rt = self.strategies.get(sid)
            scope = rt.scope if rt is not None else None
            realized, unreal = self.realized_today.get(sid, 0.0), unrealized.get(sid, 0.0)
            if scope is None and not counts.get(sid) and not realized:
                continue
            if scope is not None:
                scope.realized, scope.unrealized = realized, unreal
            views.append(PortfolioView(sid, realized, unreal, realized + unreal, counts.get(sid, 0),
                                       scope.rule_views() if scope is not None else (),
                                       rt.block if rt is not None else "",
                                       scope.blocked_until if scope is not None else book.blocked_until))
        return tuple(views)

    def _exit_order_text(self, leg: Leg) -> str:
        order = self.orders.get(leg.exit_order_id) if leg.exit_order_id is not None else None
        if order is None:
            return ""
        if order.order_type == "market":
            return "market fallback" if order.method == "market_fallback" else "market"
        rt = self.strategies.get(order.strategy_id)
        retries = rt.config.exit_execution.max_retries if rt is not None else 0
        return f"limit {_px(order.limit_price)}" + (f" (re-price {order.retry_count} of {retries})" if order.retry_count else "")

    def _strategy_view(self, rt: StrategyRuntime, unrealized: float, now: float) -> StrategyView:
        cfg = rt.config
        groups = [s.group for s in rt.slots.values() if s.group is not None]
        statuses = {g.status for g in groups}
        next_entry_at = None
        reason = ""
        if not cfg.enabled:
            status, reason = "disabled", "disabled in the settings"
        elif rt.paused:
            status, reason = "paused", "paused by the operator"
        elif self.entries.paused and not statuses:
            status, reason = "stopped", ENTRIES_STOPPED
        elif rt.block and not statuses:
            status, reason = "cooldown", rt.block
            scope = rt.scope if rt.scope is not None and rt.scope.blocked(now) else self.book_scope
            next_entry_at = scope.blocked_until
        elif "exiting" in statuses:
            status = "exiting"
        elif "open" in statuses:
            status = "live"
        elif "entering" in statuses:
            status = "entering"
        elif cfg.entry == "scheduled":
            hold = next((s.hold for s in rt.slots.values() if s.hold), "")
            due = any(entry_due(cfg.schedule, now, s.last_entry_at) is not None for s in rt.slots.values())
            status = "waiting"
            if due:
                next_entry_at, reason = now, hold or "entry window open: entering on the next fresh quote"
            else:
                next_entry_at = next_entry(cfg.schedule, now)
                reason = f"next entry window {_local_time(next_entry_at, cfg.schedule.timezone)}"
        else:
            cooling = [s.ready_at for s in rt.slots.values() if s.ready_at > now and rt.wants_entry(s)]
            if cooling:
                status, next_entry_at = "cooldown", min(cooling)
            elif cfg.entry == "manual":
                status, reason = "waiting", "manual entry: press n"
            elif any(rt.wants_entry(s) for s in rt.slots.values()):
                status = "waiting"
                reason = next((s.hold for s in rt.slots.values() if s.hold), "") or "waiting for a fresh quote"
            else:
                status, reason = "closed", "entered today; re-entry is off"
        exits = [leg.time_exit_at for g in groups for leg in g.legs if leg.status == "open" and leg.time_exit_at]
        return StrategyView(
            rt.id, status, reason, cfg.entry, cfg.side, tuple(cfg.symbols), _exit_summary(cfg), len(groups),
            self.realized_today.get(rt.id, 0.0), unrealized, next_entry_at, cfg.enabled,
            min(exits) if exits else None, cfg.allocation, self.used_funds.get(rt.id, 0.0),
        )

    def risk_preview(self, strategy_id: str) -> tuple[RiskPreview, ...]:
        """What an entry would be now, per symbol: size, value, loss at the stop, reward at the
        target, at current prices (or why it cannot be sized)."""
        rt = self.strategies.get(strategy_id)
        if rt is None:
            return ()
        now, out = self.clock.now(), []
        for sym, slot in rt.slots.items():
            q = self.book.fresh(sym, now)
            plan = self._plan(rt, sym, q) if q is not None else f"no fresh quote for {sym}"
            if isinstance(plan, str):
                out.append(RiskPreview(sym, None, None, None, None, None, plan))
                continue
            qty, price, _ = plan
            cfg = rt.config
            loss = cfg.stop_loss.amount(price) * qty if cfg.stop_loss is not None else None
            reward = cfg.target.amount(price) * qty if cfg.target is not None else None
            out.append(RiskPreview(sym, qty, price, qty * price, loss, reward, self._funds_refusal(rt, qty * price)))
        return tuple(out)

# == helpers (module level: cheap to call, easy to test) =======================================






def _symbols(group: Group) -> str:
    """A group's symbol; a basket's, joined: BTCUSDT+ETHUSDT."""
    return "+".join(dict.fromkeys(leg.symbol for leg in group.legs)) or group.symbol


def _layer_name(leg: Leg) -> str:
    return f"layer {(leg.layer or 0) + 1}" + (f" of pyramid {leg.pyramid}" if leg.pyramid else "")


def _by_id(record: Record) -> int:
    return record.id


def _by_group_and_id(leg: Leg) -> tuple[int, int]:
    return leg.group.id, leg.id


def _unplaced_layers(group: Group) -> bool:
    """DCA layers whose resting order is to be placed again (the paper broker kept none over a restart)."""
    return bool(group.tp_mode) and not group.pending_exit and any(
        lg.status == "pending" and lg.entry_order_id is None for lg in group.legs)


def _group_due(group: Group, now: float) -> bool:
    """Whether the tick has work for this group now (a fresh quote it may wait for aside)."""
    if group.resume_entry is not None or _unplaced_layers(group):
        return True
    if group.pending_exit:
        return group.resend_at is not None and now >= group.resend_at
    return any(lg.status == "open" and lg.time_exit_at is not None and now >= lg.time_exit_at for lg in group.legs)


def _repriced(ref: float, touch: float, attempt: int, retries: int) -> float:
    """Re-price k of n sits k/(n+1) of the way from the reference price to the touch."""
    return ref + (touch - ref) * attempt / (retries + 1)


def _close_pnl(leg: Leg) -> float:
    """What a closed leg's close realized (a part closed before took its share of the entry fee then)."""
    return (leg.exit_price - leg.entry) * leg.qty * leg.dir - leg.entry_fee - leg.exit_fee


def _exit_reason(leg: Leg, px: float, now: float) -> str | None:
    """The first exit rule this price meets, in DESIGN §3 precedence."""
    d = leg.dir
    stop = leg.stop
    if stop is not None and (px - stop) * d <= 0:
        return "stop_loss"
    if leg.trail_active and (px - leg.trail_level) * d <= 0:
        return "trailing_stop"
    target = leg.target
    if target is not None and (px - target) * d >= 0:
        return "target"
    if leg.time_exit_at is not None and now >= leg.time_exit_at:
        return "time"
    return None


_EDITABLE = ("stop", "target", "trail_distance", "trail_activation", "trail_level", "time_exit_at")
LEVEL_LABELS = {"trail_distance": "trailing distance", "trail_activation": "trailing arms at",
                "trail_level": "trailing level", "time_exit_at": "time exit"}
"""How a level is named to the operator (an edit's message), where its field name differs."""


def _edit_errors(leg: Leg, now: float, stop, target, trail_distance, trail_activation, time_exit_at) -> list[str]:
    """Apply an edit to `leg` (a copy) and say what is wrong with it, one line per field."""
    mark, d = leg.mark, leg.dir
    long = d > 0
    errors = []
    if stop is not KEEP:
        if stop is not None and not stop > 0:
            errors.append("stop must be a positive price")
        elif stop is not None and (stop - mark) * d >= 0:
            errors.append(f"stop {_px(stop)} is on the wrong side: a {'long' if long else 'short'}'s stop must be "
                          f"{'below' if long else 'above'} the mark {_px(mark)}")
        else:
            leg.stop = stop
    if target is not KEEP:
        if target is not None and not target > 0:
            errors.append("target must be a positive price")
        elif target is not None and (target - mark) * d <= 0:
            errors.append(f"target {_px(target)} is on the wrong side: a {'long' if long else 'short'}'s target must be "
                          f"{'above' if long else 'below'} the mark {_px(mark)}")
        else:
            leg.target = target
    if trail_activation is not KEEP:
        try:
            activation = parse_distance(0 if trail_activation is None else trail_activation)
        except ValueError as exc:
            errors.append(f"trailing activation: {exc}")
        else:
            if leg.trail_active:
                errors.append("trailing activation: the trailing stop is already armed; the activation no longer applies")
            else:
                leg.trail_activation, leg.trail_act_amount = activation, activation.amount(leg.entry)
    if trail_distance is None:
        leg.trail_distance = leg.trail_activation = None
        leg.trail_active = False
        leg.trail_peak = leg.trail_level = None
        leg.trail_updated_at = now
    elif trail_distance is not KEEP:
        try:
            distance = parse_distance(trail_distance)
            if distance.value <= 0 or (distance.unit == "pct" and distance.value >= 1):
                raise ValueError("trailing distance must be above 0 (and below 100%)")
        except ValueError as exc:
            errors.append(str(exc))
        else:
            leg.trail_distance = distance
            if leg.trail_active:  # the level moves with the new distance, never loosening
                candidate = leg.trail_level_from(leg.trail_peak)
                level = (max if long else min)(leg.trail_level, candidate)
                if level != leg.trail_level:
                    leg.trail_level, leg.trail_updated_at = level, now
                    leg.trail_moves.append((now, level))
            elif leg.trail_activation is None:  # a trail added to a position that had none arms now
                leg.trail_activation, leg.trail_act_amount = Distance(0.0, "points"), 0.0
    if leg.trail_distance is not None and not leg.trail_active and leg.trail_act_amount == 0:
        leg.arm_trail(mark, now)  # activation 0: armed from now, the peak starting at the mark
    if time_exit_at is not KEEP:
        if time_exit_at is not None and not 0 < time_exit_at < now + 366 * 86_400:
            errors.append("time exit must be a time (epoch seconds) within the next year")
        else:
            leg.time_exit_at = time_exit_at
    return errors


def _trigger_px(leg: Leg, q: Quote) -> float:
    """The price a leg's exit rules compare (DESIGN §3 trigger_price)."""
    if leg.trigger == "bid_ask":
        return q.bid if leg.dir > 0 else q.ask
    if leg.trigger == "last":
        return q.last or mark_of(q)
    return mark_of(q)


def _level_value(v: object) -> object:
    return v if v is None or isinstance(v, float) else str(v)


def _apply_config_levels(leg: Leg, cfg: StrategyConfig, now: float) -> None:
    entry, d = leg.entry, leg.dir
    if cfg.stop_loss is not None:
        leg.stop = entry - d * cfg.stop_loss.amount(entry)
    if cfg.target is not None:
        leg.target = entry + d * cfg.target.amount(entry)
    if cfg.trail_distance is not None:
        leg.trail_distance = cfg.trail_distance
        leg.trail_activation = cfg.trail_activation
        leg.trail_act_amount = cfg.trail_activation.amount(entry)
        if leg.trail_act_amount == 0:
            leg.arm_trail(leg.mark, now)  # armed at entry: the peak starts at the entry quote's mark
    if cfg.time_exit_s is not None:
        leg.time_exit_at = now + cfg.time_exit_s
    planned = planned_exit(cfg.schedule, now) if cfg.schedule is not None else None
    if planned is not None and (leg.time_exit_at is None or planned < leg.time_exit_at):
        leg.time_exit_at = planned


_GROUP_GRID_FIELDS = ("tp_mode", "agg_tp", "capital", "pyramids", "dca_submitted_at", "dca_filled_at",
                      "fifth_pyramid_at", "risk_hold")


def _leg_from_row(row: dict, group: Group) -> Leg:
    leg = Leg(row["id"], group, row["symbol"], row["side"], row["qty"], row["avg_entry"], row["entry_fee"],
              row["opened_at"], row["trigger"])
    leg.saved = True
    leg.mark, leg.mark_ts = row["mark"], row["mark_ts"]
    leg.stop, leg.target = row["stop"], row["target"]
    leg.trail_activation = parse_distance(row["trail_activation"]) if row["trail_activation"] is not None else None
    leg.trail_distance = parse_distance(row["trail_distance"]) if row["trail_distance"] is not None else None
    leg.trail_act_amount = row["trail_act_amount"]
    leg.trail_active = bool(row["trail_active"])
    leg.trail_peak, leg.trail_level, leg.trail_updated_at = row["trail_peak"], row["trail_level"], row["trail_updated_at"]
    leg.time_exit_at = row["time_exit_at"]
    leg.status, leg.exit_reason = row["status"], row["exit_reason"] or ""
    leg.closed_at, leg.exit_price, leg.realized_pnl = row["closed_at"], row["exit_price"], row["realized_pnl"] or 0.0
    leg.exit_fee = row["exit_fee"]
    leg.layer, leg.pyramid, leg.weight, leg.tp_pct = row["layer"], row["pyramid"] or 0, row["weight"], row["tp_pct"]
    return leg


def _order_from_row(row: dict) -> Order:
    order = Order(row["id"], row["group_id"], row["leg_id"], row["strategy_id"], row["symbol"], row["side"], row["qty"],
                  row["order_type"], row["method"], row["purpose"], row["created_at"], row["limit_price"],
                  row["reference_price"], row["retry_count"])
    order.saved = True
    order.client_id, order.status, order.reason = row["client_id"], row["status"], row["reason"]
    order.updated_at, order.filled_qty, order.avg_fill_price = row["updated_at"], row["filled_qty"], row["avg_fill_price"]
    return order


def _order_view(o: Order) -> OrderView:
    return OrderView(o.id, o.group_id, o.strategy_id, o.symbol, o.side, o.qty, o.order_type, o.method, o.purpose,
                     o.retry_count, o.limit_price, o.reference_price, o.status, o.reason, o.created_at, o.avg_fill_price)


def _wait_reason(slot: Slot, now: float, book: QuoteBook) -> str:
    if slot.ready_at > now:
        return f"cooldown, {slot.ready_at - now:.0f}s left"
    if book.fresh(slot.symbol, now) is None:
        return "waiting for a fresh quote"
    return "entering on the next quote"


def _exit_summary(cfg: StrategyConfig) -> str:
    parts = []
    if cfg.stop_loss is not None:
        parts.append(f"SL {cfg.stop_loss}")
    if cfg.target is not None:
        parts.append(f"TP {cfg.target}")
    if cfg.trail_distance is not None:
        act = f" from +{cfg.trail_activation}" if cfg.trail_activation.value else ""
        parts.append(f"trail {cfg.trail_distance}{act}")
    if cfg.time_exit_s is not None:
        parts.append(f"time {cfg.time_exit_s:g}s")
    return ", ".join(parts) or "manual exit only"


def _combine(results: list[CommandResult]) -> CommandResult:
    if len(results) == 1:
        return results[0]
    ok = any(r.ok for r in results)
    return CommandResult(ok, "; ".join(r.message for r in results))


def _levels_text(leg: Leg) -> str:
    parts = [f"{name} {_px(v)}" for name, v in (("stop", leg.stop), ("target", leg.target)) if v is not None]
    if leg.trail_distance is not None:
        parts.append(f"trail {leg.trail_distance}")
    return f" ({', '.join(parts)})" if parts else ""


def _opt_str(v: object) -> str | None:
    return None if v is None else str(v)


def _fmt_level(name: str, v: object) -> str:
    if v is None:
        return "none"
    if name == "time_exit_at":
        return _local_time(v, "UTC")
    return _px(v) if isinstance(v, float) else str(v)


def _local_time(t: float, tz: str) -> str:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.fromtimestamp(t, ZoneInfo(tz)).strftime(f"%a %H:%M {tz}")




