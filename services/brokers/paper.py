"""Paper broker (DESIGN §3 paper fills).

Market orders fill at the touch plus slippage against the trader, rounded to the symbol's tick
against the trader (a buy up, a sell down). A limit order that is
marketable on arrival fills at the touch (taker); otherwise it rests and fills at its limit
when the touch crosses it (maker). An order for a symbol without a fresh quote is rejected."""

from __future__ import annotations

import math

from ..config import PaperConfig
from ..domain import Order
from ..market import Quote, QuoteBook
from ..rules.precision import RulesSource, round_price
from .base import FillHandler, RejectHandler


class PaperBroker:
    name = "paper"

    def __init__(self, config: PaperConfig, book: QuoteBook, clock, rules: RulesSource | None = None) -> None:
        self.config = config
        self.rules = rules
        self.book = book
        self.clock = clock
        self._slip = config.slippage_bps / 10_000.0
        self._maker = config.maker_fee_bps / 10_000.0
        self._taker = config.taker_fee_bps / 10_000.0
        self.resting: dict[str, list[Order]] = {}
        self._on_fill: FillHandler | None = None
        self._on_reject: RejectHandler | None = None

    def bind(self, on_fill: FillHandler, on_reject: RejectHandler) -> None:
        self._on_fill, self._on_reject = on_fill, on_reject

    def submit(self, order: Order) -> None:
        q = self.book.fresh(order.symbol, self.clock.now())
        if q is None:
            self._reject(order, f"no fresh quote for {order.symbol}")
            return
        buy = order.side == "buy"
        touch = q.ask if buy else q.bid
        if touch <= 0:
            self._reject(order, f"no {'ask' if buy else 'bid'} for {order.symbol}")
            return
        if order.order_type == "market":
            price = touch * (1.0 + self._slip) if buy else touch * (1.0 - self._slip)
            if self._slip:
                price = self._on_tick_against(order, price)
            self._fill(order, price, self._taker, "taker")
            return
        limit = order.limit_price
        if limit is None or limit <= 0:
            self._reject(order, "a limit order needs a positive limit price")
            return
        if (buy and touch <= limit) or (not buy and touch >= limit):
            self._fill(order, touch, self._taker, "taker")
            return
        order.status = "working"
        self.resting.setdefault(order.symbol, []).append(order)

    def cancel(self, order: Order) -> bool:
        orders = self.resting.get(order.symbol)
        if orders and order in orders:
            orders.remove(order)
            order.status = "cancelled"
            return True
        return False

    def on_quote(self, q: Quote) -> None:
        """Fill the resting orders this quote crosses, at their limit price."""
        orders = self.resting.get(q.symbol)
        if not orders:
            return
        for order in orders[:]:
            limit = order.limit_price
            if (order.side == "buy" and 0 < q.ask <= limit) or (order.side == "sell" and q.bid >= limit > 0):
                orders.remove(order)
                self._fill(order, limit, self._maker, "maker")

    def _on_tick_against(self, order: Order, price: float) -> float:
        """A slipped price on the symbol's tick, never in the trader's favour: a buy pays the
        tick above, a sell gets the tick below (round_price rounds the other way, for resting orders)."""
        rules = self.rules.rules(order.symbol) if self.rules is not None else None
        tick = rules.tick_size if rules is not None else None
        if not tick or not math.isfinite(price):
            return price
        return round_price(price, "sell" if order.side == "buy" else "buy", tick)

    def _fill(self, order: Order, price: float, fee_rate: float, liquidity: str) -> None:
        qty = order.qty
        assert self._on_fill is not None, "bind() the broker before submitting"
        self._on_fill(order, qty, price, abs(price * qty) * fee_rate, liquidity)

    def _reject(self, order: Order, reason: str) -> None:
        assert self._on_reject is not None, "bind() the broker before submitting"
        self._on_reject(order, reason)
