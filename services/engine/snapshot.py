"""The engine's frozen snapshot (what screens, the CLI and the API read): position groups with
their open legs (levels and exit orders) and a grid's layers, strategies with their status and
next entry, the book's and each strategy's P&L, the account, the queue, the risk engine's view."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..amounts import local_time, px as _px
from ..config import StrategyConfig, TradingConfig
from ..domain import GroupStatus, LegStatus
from ..market import QuoteBook
from ..rules.pnl_scopes import BOOK
from ..rules.precision import RulesSource
from ..rules.schedule import entry_due, next_entry
from ..signal_queue import SignalQueue
from ..views import (
    AccountView, EngineSnapshot, FeedView, GroupView, OrderView, OrphanView, PortfolioView, PositionStatus, PositionView,
    StrategyStatus, StrategyView, WaitingEntry,
)
from .desk import ENTRIES_STOPPED, Desk, Slot, StrategyRuntime
from .journal import Journal
from .ledger import Ledger
from .risk import Risk
from .scopes import Scopes

if TYPE_CHECKING:
    from ..domain import Leg, Order
    from ..ports import Feed


class Snapshots:
    def __init__(self, config: TradingConfig, journal: Journal, ledger: Ledger, desk: Desk, scopes: Scopes,
                 book: QuoteBook, feed: Feed, rules: RulesSource, queue: SignalQueue, risk: Risk,
                 mark_of: Callable[[str], float | None]) -> None:
        self.config, self.journal, self.ledger, self.desk, self.scopes = config, journal, ledger, desk, scopes
        self.book, self.feed, self.rules, self.queue, self.risk = book, feed, rules, queue, risk
        self.mark_of = mark_of
        self.clock = journal.clock
        self.groups, self.orders, self.strategies = ledger.groups, ledger.orders, desk.strategies
        self._ticks_shown: dict[str, float] = {}

    def build(self, state: str, started_at: float, resumed: int, version: int) -> EngineSnapshot:
        if self.journal.deferred:
            self.journal.commit()  # nothing is shown before it is durable
        now = self.clock.now()
        book = self.book
        groups, positions = [], []
        unrealized_by_strategy: dict[str, float] = {}
        for group in self.groups.values():
            legs: list[PositionView] = []
            open_pnl = 0.0
            for leg in group.legs:
                if leg.status != LegStatus.OPEN:
                    continue
                stale = book.fresh(leg.symbol, now) is None
                pnl = leg.unrealized()
                open_pnl += pnl
                unrealized_by_strategy[group.strategy_id] = unrealized_by_strategy.get(group.strategy_id, 0.0) + pnl
                notional = leg.entry * leg.qty
                status = PositionStatus.EXITING if group.pending_exit else PositionStatus.STALE if stale else PositionStatus.OPEN
                legs.append(PositionView(
                    group.id, leg.id, group.strategy_id, leg.symbol, leg.side, leg.qty, leg.entry, leg.mark, pnl,
                    pnl / notional * 100.0 if notional else 0.0, leg.entry_fee, leg.stop, leg.target,
                    _opt_str(leg.trail_distance), _opt_str(leg.trail_activation), leg.trail_active, leg.trail_peak,
                    leg.trail_level, leg.trail_updated_at, leg.time_exit_at, status, leg.opened_at, group.pending_exit,
                    leg.entry + leg.dir * leg.trail_act_amount if leg.trail_distance is not None and not leg.trail_active else None,
                    tuple(leg.trail_moves), self._exit_order_text(leg), tuple(leg.marks),
                ))
            positions.extend(legs)
            groups.append(GroupView(
                group.id, group.strategy_id, tuple(dict.fromkeys(lg.symbol for lg in group.legs)) or (group.symbol,),
                group.side, group.plan.kind, group.status, group.pending_exit, tuple(legs), group.realized_pnl,
                open_pnl, group.opened_at, group.plan.view(group),
            ))
        strategies = tuple(self._strategy_view(rt, unrealized_by_strategy.get(rt.id, 0.0), now) for rt in self.strategies.values())
        realized = sum(self.ledger.realized_today.values())
        unrealized = sum(unrealized_by_strategy.values())
        health = self.feed.health
        stale_symbols = tuple(sym for sym in self.feed.symbols if book.fresh(sym, now) is None)
        waiting = tuple(
            WaitingEntry(slot.strategy.id, slot.symbol, slot.hold or _wait_reason(slot, now, book))
            for slots in self.desk.wanting.values() for slot in slots
        )
        return EngineSnapshot(
            seq=version, ts=now, mode=self.config.engine.mode.upper(), state=state,
            feed=FeedView(health.name, health.is_healthy(now, book.max_age_s), health.last_event_at,
                          len(self.feed.symbols), stale_symbols),
            day_pnl=realized + unrealized, realized_today=realized, unrealized=unrealized,
            pool_used=len(self.groups), pool_total=self.config.engine.max_open_positions, unread_alerts=self.journal.unread_alerts,
            strategies=strategies, groups=tuple(groups), positions=tuple(positions),
            orders=tuple(_order_view(o) for o in self.ledger.recent_orders), events=tuple(self.journal.events),
            trades=tuple(self.ledger.trades), waiting=waiting, db_ok=self.journal.store.ok,
            notes=tuple(self.desk.notes), portfolio=self._portfolio_views(unrealized_by_strategy, now),
            session_start=self.scopes.day_start, session_end=self.scopes.day_end, queue=self.queue.views(self.mark_of),
            risk=self.risk.views(now), alerts=self.journal.alerts_view(), started_at=started_at, resumed=resumed,
            risk_engine="off" if self.config.risk_engine is None else "auto" if self.config.risk_engine.enabled else "manual",
            entries_stopped=self.desk.entries.paused, account=self._account_view(positions, unrealized), ticks=self._ticks(),
            orphans=tuple(
                OrphanView(sid, why, tuple(g.id for g in self.groups.values() if g.strategy_id == sid), decided)
                for sid, (why, decided) in self.desk.orphans.items() if any(g.strategy_id == sid for g in self.groups.values())
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
        cash = start + self.ledger.realized_total
        gross = sum(abs(p.qty * p.mark) for p in positions)
        net = sum((1 if p.side == "buy" else -1) * p.qty * p.mark for p in positions)
        return AccountView(start, cash, cash + unrealized, gross, net, self.ledger.free_cash())

    def _portfolio_views(self, unrealized: dict[str, float], now: float) -> tuple[PortfolioView, ...]:
        """The book, then every strategy with P&L rules, positions or a realized P&L today."""
        counts: dict[str, int] = {}
        for group in self.groups.values():
            counts[group.strategy_id] = counts.get(group.strategy_id, 0) + 1
        book = self.scopes.book
        book.realized, book.unrealized = sum(self.ledger.realized_today.values()), sum(unrealized.values())
        views = [PortfolioView(BOOK, book.realized, book.unrealized, book.pnl, len(self.groups),
                               book.rule_views(), book.block_reason(now), book.blocked_until)]
        for sid in dict.fromkeys((*self.strategies, *counts, *self.ledger.realized_today)):
            rt = self.strategies.get(sid)
            scope = rt.scope if rt is not None else None
            realized, unreal = self.ledger.realized_today.get(sid, 0.0), unrealized.get(sid, 0.0)
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
            status, reason = StrategyStatus.DISABLED, "disabled in the settings"
        elif rt.paused:
            status, reason = StrategyStatus.PAUSED, "paused by the operator"
        elif self.desk.entries.paused and not statuses:
            status, reason = StrategyStatus.STOPPED, ENTRIES_STOPPED
        elif rt.block and not statuses:
            status, reason = StrategyStatus.COOLDOWN, rt.block
            scope = rt.scope if rt.scope is not None and rt.scope.blocked(now) else self.scopes.book
            next_entry_at = scope.blocked_until
        elif GroupStatus.EXITING in statuses:
            status = StrategyStatus.EXITING
        elif GroupStatus.OPEN in statuses:
            status = StrategyStatus.LIVE
        elif GroupStatus.ENTERING in statuses:
            status = StrategyStatus.ENTERING
        elif cfg.entry == "scheduled":
            hold = next((s.hold for s in rt.slots.values() if s.hold), "")
            due = any(entry_due(cfg.schedule, now, s.last_entry_at) is not None for s in rt.slots.values())
            status = StrategyStatus.WAITING
            if due:
                next_entry_at, reason = now, hold or "entry window open: entering on the next fresh quote"
            else:
                next_entry_at = next_entry(cfg.schedule, now)
                reason = f"next entry window {local_time(next_entry_at, cfg.schedule.timezone)}"
        else:
            cooling = [s.ready_at for s in rt.slots.values() if s.ready_at > now and rt.wants_entry(s)]
            if cooling:
                status, next_entry_at = StrategyStatus.COOLDOWN, min(cooling)
            elif cfg.entry == "manual":
                status, reason = StrategyStatus.WAITING, "manual entry: press n"
            elif any(rt.wants_entry(s) for s in rt.slots.values()):
                status = StrategyStatus.WAITING
                reason = next((s.hold for s in rt.slots.values() if s.hold), "") or "waiting for a fresh quote"
            else:
                status, reason = StrategyStatus.CLOSED, "entered today; re-entry is off"
        exits = [leg.time_exit_at for g in groups for leg in g.legs if leg.status == LegStatus.OPEN and leg.time_exit_at]
        return StrategyView(
            rt.id, status, reason, cfg.entry, cfg.side, tuple(cfg.symbols), _exit_summary(cfg), len(groups),
            self.ledger.realized_today.get(rt.id, 0.0), unrealized, next_entry_at, cfg.enabled,
            min(exits) if exits else None, cfg.allocation, self.ledger.used_funds.get(rt.id, 0.0),
        )


def _opt_str(v: object) -> str | None:
    return None if v is None else str(v)


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
