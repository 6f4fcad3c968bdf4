"""Positions and the ledger: the groups, runs and orders that are not final, each open leg by
symbol, the recent orders and trades, realized P&L, and the funds the positions hold."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Callable

from ..domain import Group, Leg, Order, Run
from ..views import TradeView
from .journal import Journal

if TYPE_CHECKING:
    from ..orders import OrderStatus
    from ..ports import Clock


class Ledger:
    def __init__(self, journal: Journal, clock: Clock, starting_cash: float) -> None:
        self.journal, self.clock = journal, clock
        self.starting_cash = starting_cash
        self.groups: dict[int, Group] = {}  # every group that is not closed
        self.runs: dict[int, Run] = {}
        self.orders: dict[int, Order] = {}  # orders sent and not final
        self.legs_by_symbol: dict[str, list[Leg]] = {}  # the open legs
        self.recent_orders: deque[Order] = deque(maxlen=200)
        self.trades: deque[TradeView] = deque(maxlen=200)
        self.trade_listeners: list[Callable[[TradeView], None]] = []
        self.realized_today: dict[str, float] = {}
        self.realized_total = 0.0  # since the first start: paper cash = starting cash + this
        self.used_funds: dict[str, float] = {}  # strategy -> value its groups hold

    def free_cash(self) -> float:
        """Paper cash: the starting cash plus realized P&L, less what open positions hold."""
        return self.starting_cash + self.realized_total - sum(self.used_funds.values())

    def reserve(self, group: Group, notional: float) -> None:
        self.used_funds[group.strategy_id] = self.used_funds.get(group.strategy_id, 0.0) + notional - group.notional
        group.notional = notional

    def realize(self, group: Group, amount: float) -> None:
        group.realized_pnl += amount
        self.realized_today[group.strategy_id] = self.realized_today.get(group.strategy_id, 0.0) + amount
        self.realized_total += amount

    def add_order(self, order: Order) -> None:
        self.orders[order.id] = order
        self.recent_orders.append(order)

    def order_final(self, order: Order, status: OrderStatus, reason: str) -> None:
        order.status, order.reason = status, reason
        order.updated_at = self.clock.now()
        self.orders.pop(order.id, None)
        self.journal.add(order)

    def leg_opened(self, leg: Leg) -> None:
        self.legs_by_symbol.setdefault(leg.symbol, []).append(leg)

    def leg_closed(self, leg: Leg) -> None:
        legs = self.legs_by_symbol.get(leg.symbol)
        if legs is not None and leg in legs:
            legs.remove(leg)

    def record_trade(self, trade: TradeView) -> None:
        self.trades.append(trade)
        for listener in self.trade_listeners:
            listener(trade)

    def leg_trade(self, leg: Leg, qty: float, price: float, reason: str, pnl: float, now: float) -> None:
        """A leg, or part of one, closed on its own, not by its group's exit: a trade of its own."""
        group = leg.group
        self.record_trade(TradeView(group.id, group.strategy_id, leg.symbol, leg.side, qty, leg.opened_at, leg.entry,
                                    now, price, reason, pnl))
