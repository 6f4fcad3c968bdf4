"""The paper execution client: a simulated venue (DESIGN §3 paper fills).

A market order fills at the touch plus slippage against the trader, on the symbol's tick
against the trader (a buy up, a sell down). A limit order that is marketable on arrival fills
at the touch (taker); otherwise it rests and fills at its limit when the touch crosses it
(maker). An order for a symbol without a fresh quote is rejected.

When a quote gives sizes, a fill takes at most the size on its side (what earlier fills took
from the same quote is gone): the rest of the order keeps working, a market order's at the
touch of the next quotes, a limit's at its limit on the next quotes that cross it. A size of
0 means unknown: the order fills in full.

Submit and cancel are requests answered by ExecEvents. The venue acts at once (its fills,
positions and cash change inside the call); its events are delivered inside the call, or,
given a scheduler, each handed to it to deliver after the configured latency."""

from __future__ import annotations

import math
from functools import partial
from typing import Callable

from ...clock import Clock
from ...config import PaperConfig
from ...market import Quote, QuoteBook
from ...orders import QTY_TOLERANCE, ExecEvent, ExecKind, OpenOrder, OrderRequest
from ...rules.precision import RulesSource, round_price

EventHandler = Callable[[ExecEvent], None]
Schedule = Callable[[float, Callable[[], None]], None]  # (delay in seconds, what to run then)


class _Working:
    """The venue's own record of a working order."""

    __slots__ = ("request", "buy", "filled")

    def __init__(self, request: OrderRequest) -> None:
        self.request, self.buy, self.filled = request, request.side == "buy", 0.0


class PaperExecution:
    name = "paper"

    def __init__(self, config: PaperConfig, book: QuoteBook, clock: Clock, rules: RulesSource | None = None,
                 schedule: Schedule | None = None) -> None:
        self.book, self.clock, self.rules = book, clock, rules
        self._slip = config.slippage_bps / 10_000.0
        self._maker = config.maker_fee_bps / 10_000.0
        self._taker = config.taker_fee_bps / 10_000.0
        self._schedule = schedule
        self._latency = config.latency_ms / 1000.0
        self._on_event: EventHandler | None = None
        self._working: dict[int, _Working] = {}
        self._by_symbol: dict[str, dict[int, _Working]] = {}  # in arrival order: the first fills first
        self._taken: dict[str, tuple[Quote, float, float]] = {}  # a symbol's last quote filled against: bought, sold
        self._positions: dict[str, float] = {}
        self._cash = config.starting_cash

    def bind(self, on_event: EventHandler) -> None:
        self._on_event = on_event

    # -- requests -------------------------------------------------------------------------

    def submit(self, request: OrderRequest) -> None:
        events: list[ExecEvent] = []
        self._arrive(request, events)
        self._deliver(events)

    def cancel(self, order_id: int) -> None:
        """Answered by CANCELLED; by nothing when the order is no longer working (its fill stands)."""
        w = self._working.pop(order_id, None)
        if w is None:
            return
        del self._by_symbol[w.request.symbol][order_id]
        self._deliver([ExecEvent(order_id, ExecKind.CANCELLED, self.clock.now())])

    def on_quote(self, q: Quote) -> None:
        """Fill the working orders of q's symbol that it reaches: market orders at its touch,
        limits at their limit when it crosses them."""
        orders = self._by_symbol.get(q.symbol)
        if not orders:
            return
        events: list[ExecEvent] = []
        for oid, w in list(orders.items()):
            limit = w.request.limit_price
            if w.request.order_type == "market":
                touch = q.ask if w.buy else q.bid
                done = touch > 0 and self._fill(w, q, self._market_price(w, touch), self._taker, "taker", events)
            else:
                done = ((w.buy and 0 < q.ask <= limit) or (not w.buy and q.bid >= limit > 0)) and \
                    self._fill(w, q, limit, self._maker, "maker", events)
            if done:  # a filled order stops working
                del self._working[oid], orders[oid]
        if events:
            self._deliver(events)

    # -- the venue's state, for reconciliation ---------------------------------------------

    def open_orders(self) -> list[OpenOrder]:
        return [OpenOrder(w.request, w.filled) for w in self._working.values()]

    def positions(self) -> dict[str, float]:
        """Net quantity per symbol from this venue's fills (a symbol traded flat shows 0)."""
        return dict(self._positions)

    def balances(self) -> dict[str, float]:
        """Paper cash: the starting cash, less what buys cost, plus what sells brought, less fees."""
        return {"cash": self._cash}

    # -- inside -----------------------------------------------------------------------------

    def _arrive(self, request: OrderRequest, events: list[ExecEvent]) -> None:
        now = self.clock.now()
        oid, symbol = request.order_id, request.symbol
        q = self.book.fresh(symbol, now)
        buy = request.side == "buy"
        touch = 0.0 if q is None else q.ask if buy else q.bid
        limit = request.limit_price
        reason = ""
        if oid in self._working:
            reason = f"order {oid} is working already"
        elif not (math.isfinite(request.qty) and request.qty > 0):
            reason = f"an order needs a positive quantity, got {request.qty!r}"
        elif q is None:
            reason = f"no fresh quote for {symbol}"
        elif touch <= 0:
            reason = f"no {'ask' if buy else 'bid'} for {symbol}"
        elif request.order_type != "market" and (limit is None or not limit > 0):
            reason = "a limit order needs a positive limit price"
        if reason:
            events.append(ExecEvent(oid, ExecKind.REJECTED, now, reason=reason))
            return
        assert q is not None
        w = _Working(request)
        fills: list[ExecEvent] = []
        if request.order_type == "market":
            done = self._fill(w, q, self._market_price(w, touch), self._taker, "taker", fills)
        else:
            done = ((buy and touch <= limit) or (not buy and touch >= limit)) and \
                self._fill(w, q, touch, self._taker, "taker", fills)
        if not done:  # it rests, whole or in part: acknowledged first; one filled at once just fills
            self._working[oid] = w
            self._by_symbol.setdefault(symbol, {})[oid] = w
            events.append(ExecEvent(oid, ExecKind.ACCEPTED, now))
        events += fills

    def _fill(self, w: _Working, q: Quote, price: float, fee_rate: float, liquidity: str,
              events: list[ExecEvent]) -> bool:
        """Fill what q's size on w's side allows of w's remainder; whether that filled it."""
        request, buy = w.request, w.buy
        symbol = request.symbol
        size = q.ask_size if buy else q.bid_size
        remaining = request.qty - w.filled
        qty, done = remaining, True
        if size > 0:
            taken = self._taken.get(symbol)
            bought, sold = (taken[1], taken[2]) if taken is not None and taken[0] == q else (0.0, 0.0)
            available = size - (bought if buy else sold)
            if available <= 0:
                return False
            if available < remaining * (1.0 - QTY_TOLERANCE):
                qty, done = available, False
            self._taken[symbol] = (q, bought + qty, sold) if buy else (q, bought, sold + qty)
        w.filled += qty
        fee = abs(price * qty) * fee_rate
        signed = qty if buy else -qty
        self._positions[symbol] = self._positions.get(symbol, 0.0) + signed
        self._cash -= signed * price + fee
        events.append(ExecEvent(request.order_id, ExecKind.FILLED if done else ExecKind.PARTIALLY_FILLED,
                                self.clock.now(), qty, price, fee, liquidity))
        return done

    def _market_price(self, w: _Working, touch: float) -> float:
        """The touch slipped against the trader, on the symbol's tick and never in the trader's
        favour: a buy pays the tick above, a sell gets the tick below (round_price rounds the
        other way, for resting orders)."""
        if not self._slip:
            return touch
        price = touch * (1.0 + self._slip) if w.buy else touch * (1.0 - self._slip)
        rules = self.rules.rules(w.request.symbol) if self.rules is not None else None
        tick = rules.tick_size if rules is not None else None
        if not tick or not math.isfinite(price):
            return price
        return round_price(price, "sell" if w.buy else "buy", tick)

    def _deliver(self, events: list[ExecEvent]) -> None:
        on_event = self._on_event
        assert on_event is not None, "bind() the client before submitting"
        if self._schedule is None:
            for event in events:
                on_event(event)
        else:
            for event in events:
                self._schedule(self._latency, partial(on_event, event))
