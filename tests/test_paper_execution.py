"""The paper execution client (DESIGN §3 "Paper fills"): market orders at the touch plus
slippage, marketable limits as taker at the touch, resting limits as maker at their limit, fees,
rejection without a fresh quote; partial fills against quote sizes; events delivered inside the
call or through a scheduler; the venue's own orders, positions and cash."""

from __future__ import annotations

import itertools

import pytest
from pydantic import ValidationError

from services.adapters.paper.execution import PaperExecution
from services.clock import FakeClock
from services.config import PaperConfig
from services.market import Quote, QuoteBook
from services.orders import ExecEvent, ExecKind, OpenOrder, OrderRequest, OrderState, OrderStatus, advance
from services.rules.precision import Rules

T0 = 1_767_225_600.0
K = ExecKind


class Later:
    """A scheduler that keeps what it is handed until run()."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, object]] = []

    def __call__(self, delay, fn) -> None:
        self.calls.append((delay, fn))

    def run(self) -> None:
        calls, self.calls = self.calls, []
        for _, fn in calls:
            fn()


class Venue:
    def __init__(self, slippage_bps=10, maker_fee_bps=2, taker_fee_bps=5, rules=None, schedule=None, **paper):
        self.clock = FakeClock(T0)
        self.book = QuoteBook(max_age_s=5.0)
        config = PaperConfig(slippage_bps=slippage_bps, maker_fee_bps=maker_fee_bps, taker_fee_bps=taker_fee_bps,
                             **paper)
        self.client = PaperExecution(config, self.book, self.clock, rules, schedule)
        self.events: list[ExecEvent] = []
        self.client.bind(self.events.append)

    def quote(self, bid, ask, bid_size=0.0, ask_size=0.0, symbol="BTCUSDT", dt=0.0):
        """A new quote, as the engine hands it: into the book, then to the client."""
        q = Quote(symbol, self.clock.now() + dt, bid, ask, 0.0, bid_size, ask_size)
        self.book.update(q)
        self.client.on_quote(q)

    def kinds(self):
        return [(e.order_id, e.kind) for e in self.events]

    def fills(self):
        return [e for e in self.events if e.kind in (K.PARTIALLY_FILLED, K.FILLED)]

    def rejects(self):
        return [e.reason for e in self.events if e.kind is K.REJECTED]


@pytest.fixture
def venue():
    return Venue()


_ids = itertools.count(1)


def order(side: str, qty: float = 2.0, order_type: str = "market", limit: float | None = None,
          symbol: str = "BTCUSDT") -> OrderRequest:
    oid = next(_ids)
    return OrderRequest(oid, f"tt-{oid}", symbol, side, qty, order_type, limit)


# -- fills at the touch, as the paper broker's ------------------------------------------------

def test_market_buy_fills_at_once_at_the_ask_plus_slippage_as_taker(venue):
    venue.quote(99.0, 101.0)
    o = order("buy")
    venue.client.submit(o)
    assert venue.kinds() == [(o.order_id, K.FILLED)]  # filled on arrival: no acknowledgement before the fill
    [fill] = venue.fills()
    assert fill.qty == 2.0 and fill.ts == T0
    assert fill.price == pytest.approx(101.0 * 1.001)  # 10 bps against the buyer
    assert fill.fee == pytest.approx(101.0 * 1.001 * 2.0 * 0.0005)  # taker 5 bps of the notional
    assert fill.liquidity == "taker"
    assert venue.client.open_orders() == []


def test_market_sell_fills_at_the_bid_minus_slippage_as_taker(venue):
    venue.quote(99.0, 101.0)
    venue.client.submit(order("sell", qty=3.0))
    [fill] = venue.fills()
    assert fill.qty == 3.0 and fill.kind is K.FILLED
    assert fill.price == pytest.approx(99.0 * 0.999)
    assert fill.fee == pytest.approx(99.0 * 0.999 * 3.0 * 0.0005)
    assert fill.liquidity == "taker"


def test_marketable_limit_buy_fills_at_the_ask_not_at_its_limit(venue):
    venue.quote(99.0, 101.0)
    venue.client.submit(order("buy", order_type="limit", limit=102.0))
    [fill] = venue.fills()
    assert fill.price == 101.0  # at the touch, no slippage for a limit
    assert fill.liquidity == "taker"
    assert fill.fee == pytest.approx(101.0 * 2.0 * 0.0005)
    assert venue.client.open_orders() == []


def test_marketable_limit_sell_fills_at_the_bid(venue):
    venue.quote(99.0, 101.0)
    venue.client.submit(order("sell", order_type="limit", limit=99.0))  # bid == limit is marketable
    [fill] = venue.fills()
    assert fill.price == 99.0 and fill.liquidity == "taker"


def test_non_marketable_limit_buy_rests_then_fills_at_its_limit_as_maker(venue):
    venue.quote(99.0, 101.0)
    o = order("buy", order_type="limit", limit=100.0)
    venue.client.submit(o)
    assert venue.kinds() == [(o.order_id, K.ACCEPTED)]
    assert venue.client.open_orders() == [OpenOrder(o, 0.0)]
    venue.quote(99.5, 100.5, dt=1)  # ask still above the limit
    venue.quote(10.0, 10.0, symbol="ETHUSDT", dt=1)  # another symbol: nothing
    assert venue.fills() == []
    venue.quote(98.0, 99.0, dt=2)  # ask crosses below the limit
    [fill] = venue.fills()
    assert (fill.order_id, fill.kind, fill.qty) == (o.order_id, K.FILLED, 2.0)
    assert fill.price == 100.0  # at its limit, not at the better ask
    assert fill.liquidity == "maker"
    assert fill.fee == pytest.approx(100.0 * 2.0 * 0.0002)  # maker 2 bps
    assert venue.client.open_orders() == []


def test_non_marketable_limit_sell_rests_then_fills_at_its_limit_when_the_bid_reaches_it(venue):
    venue.quote(99.0, 101.0)
    venue.client.submit(order("sell", order_type="limit", limit=100.5))
    venue.quote(100.4, 101.0, dt=1)
    assert venue.fills() == []
    venue.quote(100.5, 101.0, dt=2)  # bid == limit crosses
    [fill] = venue.fills()
    assert fill.price == 100.5 and fill.liquidity == "maker"
    assert fill.fee == pytest.approx(100.5 * 2.0 * 0.0002)


def test_a_resting_buy_fills_when_the_ask_reaches_its_limit(venue):
    venue.quote(99.0, 101.0)
    venue.client.submit(order("buy", order_type="limit", limit=100.0))
    venue.quote(99.0, 100.0, dt=1)
    assert [(f.price, f.liquidity) for f in venue.fills()] == [(100.0, "maker")]


def test_a_resting_buy_is_not_filled_by_a_quote_without_an_ask(venue):
    venue.quote(99.0, 101.0)
    venue.client.submit(order("buy", order_type="limit", limit=100.0))
    venue.quote(95.0, 0.0, dt=1)
    assert venue.fills() == []


def test_a_cancelled_resting_order_is_answered_cancelled_and_never_fills(venue):
    venue.quote(99.0, 101.0)
    o = order("buy", order_type="limit", limit=100.0)
    venue.client.submit(o)
    venue.client.cancel(o.order_id)
    assert venue.kinds() == [(o.order_id, K.ACCEPTED), (o.order_id, K.CANCELLED)]
    venue.client.cancel(o.order_id)  # no longer working: no answer
    venue.quote(90.0, 91.0, dt=1)
    assert venue.kinds() == [(o.order_id, K.ACCEPTED), (o.order_id, K.CANCELLED)]
    assert venue.client.open_orders() == []


def test_an_order_without_any_quote_is_rejected_with_the_reason(venue):
    o = order("buy")
    venue.client.submit(o)
    assert venue.events == [ExecEvent(o.order_id, K.REJECTED, T0, reason="no fresh quote for BTCUSDT")]


def test_an_order_on_a_stale_quote_is_rejected(venue):
    venue.quote(99.0, 101.0)
    venue.clock.advance(5.5)  # older than max_quote_age_s = 5
    venue.client.submit(order("sell"))
    venue.client.submit(order("buy", order_type="limit", limit=100.0))
    assert venue.fills() == []
    assert venue.rejects() == ["no fresh quote for BTCUSDT"] * 2
    assert venue.client.open_orders() == []  # a rejected limit does not rest


def test_an_order_without_the_side_it_needs_is_rejected(venue):
    venue.quote(99.0, 0.0)
    venue.client.submit(order("buy"))
    assert venue.rejects() == ["no ask for BTCUSDT"]
    venue.client.submit(order("sell"))  # the bid exists
    assert len(venue.fills()) == 1


@pytest.mark.parametrize("limit", [None, 0.0, -1.0])
def test_a_limit_order_without_a_positive_limit_is_rejected(venue, limit):
    venue.quote(99.0, 101.0)
    venue.client.submit(order("buy", order_type="limit", limit=limit))
    assert venue.rejects() == ["a limit order needs a positive limit price"]
    assert venue.client.open_orders() == []


def test_an_order_without_a_positive_quantity_or_with_the_id_of_a_working_one_is_rejected(venue):
    venue.quote(99.0, 101.0)
    venue.client.submit(order("buy", qty=0.0))
    resting = order("buy", order_type="limit", limit=100.0)
    venue.client.submit(resting)
    venue.client.submit(resting)
    assert venue.rejects() == ["an order needs a positive quantity, got 0.0",
                               f"order {resting.order_id} is working already"]
    assert venue.client.open_orders() == [OpenOrder(resting, 0.0)]


def test_zero_slippage_and_fees_fill_exactly_at_the_touch():
    venue = Venue(0, 0, 0)
    venue.quote(99.0, 101.0)
    venue.client.submit(order("buy"))
    venue.client.submit(order("sell"))
    assert [(f.price, f.fee) for f in venue.fills()] == [(101.0, 0.0), (99.0, 0.0)]


def test_a_slipped_fill_is_on_the_tick_and_never_in_the_traders_favour():
    class Ticks:
        def rules(self, symbol):
            return Rules(0.5, 0.001, 0.0)

    venue = Venue(10, 0, 0, rules=Ticks())
    venue.quote(99.0, 101.0)
    venue.client.submit(order("buy"))  # 101.101 -> 101.5, not 101.0
    venue.client.submit(order("sell"))  # 98.901 -> 98.5, not 99.0
    assert [f.price for f in venue.fills()] == [101.5, 98.5]
    unslipped = Venue(0, 0, 0, rules=Ticks())
    unslipped.quote(99.2, 101.2)  # off the tick: a touch without slippage is taken as it is
    unslipped.client.submit(order("buy"))
    assert [f.price for f in unslipped.fills()] == [101.2]


# -- partial fills against quote sizes -------------------------------------------------------

def test_a_market_buy_takes_the_ask_size_and_the_rest_fills_at_the_next_quotes_touch(venue):
    venue.quote(99.0, 101.0, bid_size=9.0, ask_size=0.5)
    o = order("buy")
    venue.client.submit(o)
    assert [(e.kind, e.qty) for e in venue.fills()] == [(K.PARTIALLY_FILLED, 0.5)]
    assert venue.client.open_orders() == [OpenOrder(o, 0.5)]
    venue.quote(100.0, 102.0, ask_size=1.0, dt=1)
    venue.quote(100.0, 103.0, ask_size=0.0, dt=2)  # size unknown: the rest in full
    fills = venue.fills()
    assert [(e.kind, e.qty, e.liquidity) for e in fills] == [
        (K.PARTIALLY_FILLED, 0.5, "taker"), (K.PARTIALLY_FILLED, 1.0, "taker"), (K.FILLED, 0.5, "taker")]
    assert [e.price for e in fills] == pytest.approx([101.0 * 1.001, 102.0 * 1.001, 103.0 * 1.001])
    assert [e.ts for e in fills] == [T0, T0, T0]  # the clock did not move; the quotes' times are their own
    assert venue.client.open_orders() == [] and venue.client.positions() == {"BTCUSDT": 2.0}


def test_a_market_sell_takes_the_bid_size(venue):
    venue.quote(99.0, 101.0, bid_size=1.5, ask_size=0.1)
    venue.client.submit(order("sell"))
    assert [(e.kind, e.qty) for e in venue.fills()] == [(K.PARTIALLY_FILLED, 1.5)]


def test_a_resting_limit_fills_part_by_part_at_its_limit_on_crossing_quotes(venue):
    venue.quote(99.0, 101.0, ask_size=10.0)
    o = order("buy", order_type="limit", limit=100.0)
    venue.client.submit(o)
    venue.quote(98.0, 99.0, ask_size=0.5, dt=1)
    venue.quote(99.5, 100.5, ask_size=5.0, dt=2)  # no longer crossing: nothing
    venue.quote(98.0, 99.5, ask_size=5.0, dt=3)
    assert [(e.kind, e.qty, e.price, e.liquidity) for e in venue.fills()] == [
        (K.PARTIALLY_FILLED, 0.5, 100.0, "maker"), (K.FILLED, 1.5, 100.0, "maker")]
    assert venue.events[0].kind is K.ACCEPTED


def test_a_marketable_limit_takes_the_size_as_taker_and_rests_its_remainder_as_maker(venue):
    venue.quote(99.0, 101.0, ask_size=0.5)
    venue.client.submit(order("buy", order_type="limit", limit=101.0))
    venue.quote(99.0, 100.0, ask_size=0.0, dt=1)
    assert [(e.qty, e.price, e.liquidity) for e in venue.fills()] == [(0.5, 101.0, "taker"), (1.5, 101.0, "maker")]


def test_fills_share_a_quotes_size_and_a_new_quote_brings_new_size(venue):
    venue.quote(99.0, 101.0, ask_size=1.5, bid_size=1.0)
    a, b, c = order("buy", qty=1.0), order("buy", qty=1.0), order("buy", qty=1.0)
    sell = order("sell", qty=1.0)
    for o in (a, b, c, sell):
        venue.client.submit(o)
    assert [(e.order_id, e.kind, e.qty) for e in venue.fills()] == [
        (a.order_id, K.FILLED, 1.0), (b.order_id, K.PARTIALLY_FILLED, 0.5), (sell.order_id, K.FILLED, 1.0)]
    assert [(w.request.order_id, w.filled_qty) for w in venue.client.open_orders()] == [
        (b.order_id, 0.5), (c.order_id, 0.0)]  # c found the quote's ask taken: it works on
    venue.quote(99.0, 101.0, ask_size=1.0, dt=1)  # the first working order fills first
    assert [(e.order_id, e.qty) for e in venue.fills()[3:]] == [(b.order_id, 0.5), (c.order_id, 0.5)]


def test_a_resting_order_and_a_new_one_share_the_quote_they_fill_on(venue):
    venue.quote(99.0, 101.0)
    resting = order("buy", order_type="limit", limit=100.0)
    venue.client.submit(resting)
    venue.quote(98.0, 99.0, ask_size=2.5, dt=1)  # the resting order takes 2
    venue.client.submit(order("buy"))  # the market order arrives on the same quote: 0.5 left
    assert [(e.kind, e.qty) for e in venue.fills()] == [(K.FILLED, 2.0), (K.PARTIALLY_FILLED, 0.5)]


def test_a_size_a_hair_below_the_remainder_fills_it_in_full(venue):
    venue.quote(99.0, 101.0, ask_size=2.0 * (1 - 1e-12))
    venue.client.submit(order("buy"))
    assert [(e.kind, e.qty) for e in venue.fills()] == [(K.FILLED, 2.0)]


def test_a_partly_filled_order_cancelled_keeps_what_filled(venue):
    venue.quote(99.0, 101.0, ask_size=0.5)
    o = order("buy")
    venue.client.submit(o)
    venue.client.cancel(o.order_id)
    assert venue.kinds()[-1] == (o.order_id, K.CANCELLED)
    venue.quote(99.0, 101.0, dt=1)
    assert venue.client.positions() == {"BTCUSDT": 0.5} and venue.client.open_orders() == []


def test_the_events_drive_the_order_lifecycle_to_filled(venue):
    venue.quote(99.0, 101.0, ask_size=0.5)
    o = order("buy", order_type="limit", limit=101.0)
    venue.client.submit(o)
    venue.quote(98.0, 100.0, ask_size=1.0, dt=1)
    venue.quote(98.0, 100.0, ask_size=1.0, dt=2)
    state = OrderState(OrderStatus.NEW, o.qty)
    statuses = []
    for event in venue.events:
        step = advance(state, event)
        assert step.problem == ""
        state = step.state
        statuses.append(state.status)
    assert statuses == [OrderStatus.WORKING, OrderStatus.PARTIALLY_FILLED, OrderStatus.PARTIALLY_FILLED,
                        OrderStatus.FILLED]
    assert state.avg_price == pytest.approx((0.5 * 101.0 + 1.5 * 101.0) / 2.0)
    assert state.fees == pytest.approx(0.5 * 101.0 * 0.0005 + 1.5 * 101.0 * 0.0002)


# -- cancel ------------------------------------------------------------------------------------

def test_cancelling_a_filled_or_unknown_order_answers_nothing(venue):
    venue.quote(99.0, 101.0)
    o = order("buy")
    venue.client.submit(o)
    before = list(venue.events)
    venue.client.cancel(o.order_id)
    venue.client.cancel(999_999)
    assert venue.events == before


def test_a_cancel_sent_on_the_first_event_of_a_market_order_finds_it_filled(venue):
    """The venue acts inside submit; events come after: the fill stands."""
    venue.quote(99.0, 101.0)
    o = order("buy")
    venue.client.bind(lambda e: (venue.events.append(e), venue.client.cancel(e.order_id)))
    venue.client.submit(o)
    assert venue.kinds() == [(o.order_id, K.FILLED)]  # nothing left to cancel: no answer


# -- asynchronous delivery ------------------------------------------------------------------

def test_async_events_are_handed_to_the_scheduler_with_the_latency_and_delivered_in_order_when_it_runs():
    later = Later()
    venue = Venue(schedule=later, events="async", latency_ms=250)
    venue.quote(99.0, 101.0, ask_size=0.5)
    o = order("buy")
    venue.client.submit(o)
    assert venue.events == []  # nothing inside the call
    assert [delay for delay, _ in later.calls] == [0.25, 0.25]
    venue.clock.advance(0.25)
    later.run()
    assert venue.kinds() == [(o.order_id, K.ACCEPTED), (o.order_id, K.PARTIALLY_FILLED)]
    assert [e.ts for e in venue.events] == [T0, T0]  # when the venue acted, not when it was told
    venue.quote(99.0, 101.0, dt=1)
    assert len(venue.events) == 2
    later.run()
    assert venue.kinds()[-1] == (o.order_id, K.FILLED)


def test_async_rejections_and_cancels_wait_for_the_scheduler_too():
    later = Later()
    venue = Venue(schedule=later, events="async")
    bad = order("buy")
    venue.client.submit(bad)  # no quote
    venue.quote(99.0, 101.0)
    resting = order("buy", order_type="limit", limit=100.0)
    venue.client.submit(resting)
    venue.client.cancel(resting.order_id)
    assert venue.events == [] and [delay for delay, _ in later.calls] == [0.0] * 3
    later.run()
    assert venue.kinds() == [(bad.order_id, K.REJECTED), (resting.order_id, K.ACCEPTED),
                             (resting.order_id, K.CANCELLED)]


def test_async_a_fill_scheduled_before_a_cancel_request_is_delivered_and_no_cancel_follows():
    later = Later()
    venue = Venue(schedule=later, events="async")
    venue.quote(99.0, 101.0)
    o = order("buy", order_type="limit", limit=100.0)
    venue.client.submit(o)
    later.run()
    venue.quote(98.0, 99.0, dt=1)  # the venue fills it; the engine does not know yet
    venue.client.cancel(o.order_id)  # ...and asks to cancel
    later.run()
    assert venue.kinds() == [(o.order_id, K.ACCEPTED), (o.order_id, K.FILLED)]


# -- the venue's state ------------------------------------------------------------------------

def test_positions_and_cash_follow_the_fills_and_open_orders_the_working_ones():
    venue = Venue(0, 2, 5, starting_cash=10_000.0)
    venue.quote(99.0, 101.0)
    venue.quote(9.0, 11.0, symbol="ETHUSDT")
    venue.client.submit(order("buy", qty=2.0))  # 202 + 0.101 fee
    venue.client.submit(order("sell", qty=3.0, symbol="ETHUSDT"))  # +27 - 0.0135 fee
    venue.client.submit(order("sell", qty=2.0))  # flat again: +198 - 0.099
    resting = order("sell", qty=1.0, order_type="limit", limit=12.0, symbol="ETHUSDT")
    venue.client.submit(resting)
    assert venue.client.positions() == {"BTCUSDT": 0.0, "ETHUSDT": -3.0}
    assert venue.client.balances() == {"cash": pytest.approx(10_000.0 - 202.101 + 26.9865 + 197.901)}
    assert venue.client.open_orders() == [OpenOrder(resting, 0.0)]
    venue.quote(12.0, 12.5, symbol="ETHUSDT", dt=1)  # maker fill at 12
    assert venue.client.positions()["ETHUSDT"] == -4.0
    assert venue.client.balances()["cash"] == pytest.approx(10_000.0 - 202.101 + 26.9865 + 197.901 + 12.0 - 0.0024)
    assert venue.client.open_orders() == []


def test_what_the_client_reports_is_a_copy_of_its_state(venue):
    venue.quote(99.0, 101.0, ask_size=0.5)
    venue.client.submit(order("buy"))
    positions, opened = venue.client.positions(), venue.client.open_orders()
    positions["BTCUSDT"] = 99.0
    venue.quote(99.0, 101.0, ask_size=0.5, dt=1)
    assert venue.client.positions() == {"BTCUSDT": 1.0}
    assert opened[0].filled_qty == 0.5 and venue.client.open_orders()[0].filled_qty == 1.0


# -- settings ---------------------------------------------------------------------------------

def test_paper_settings_take_async_events_with_a_latency_and_refuse_a_latency_they_would_ignore():
    assert PaperConfig().events == "immediate" and PaperConfig().latency_ms == 0
    assert PaperConfig(events="async", latency_ms=20).latency_ms == 20
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        PaperConfig(events="async", latency_ms=-1)
    with pytest.raises(ValidationError, match='latency_ms\n  applies only to events = "async"'):
        PaperConfig(latency_ms=5)
    with pytest.raises(ValidationError, match="'immediate' or 'async'"):
        PaperConfig(events="later")
