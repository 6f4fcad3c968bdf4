"""The paper broker (DESIGN §3 "Paper fills"): market orders at the touch plus slippage,
marketable limits as taker at the touch, resting limits as maker at their limit, fees, and
rejection without a fresh quote."""

from __future__ import annotations

import pytest

from services.brokers.paper import PaperBroker
from services.clock import FakeClock
from services.config import PaperConfig
from services.domain import Order
from services.market import Quote, QuoteBook

T0 = 1_767_225_600.0


class Recorder:
    def __init__(self) -> None:
        self.fills: list[tuple[Order, float, float, float, str]] = []
        self.rejects: list[tuple[Order, str]] = []

    def on_fill(self, order, qty, price, fee, liquidity):
        self.fills.append((order, qty, price, fee, liquidity))

    def on_reject(self, order, reason):
        self.rejects.append((order, reason))


@pytest.fixture
def paper():
    clock = FakeClock(T0)
    book = QuoteBook(max_age_s=5.0)
    broker = PaperBroker(PaperConfig(slippage_bps=10, maker_fee_bps=2, taker_fee_bps=5), book, clock)
    rec = Recorder()
    broker.bind(rec.on_fill, rec.on_reject)
    return broker, book, clock, rec


_ids = iter(range(1, 10_000))


def order(side: str, qty: float = 2.0, order_type: str = "market", limit: float | None = None,
          symbol: str = "BTCUSDT") -> Order:
    return Order(next(_ids), 1, None, "s", symbol, side, qty, order_type, order_type, "entry", T0, limit_price=limit)


def test_market_buy_fills_at_the_ask_plus_slippage_as_taker(paper):
    broker, book, clock, rec = paper
    book.update(Quote("BTCUSDT", T0, 99.0, 101.0))
    o = order("buy")
    broker.submit(o)
    assert rec.rejects == []
    [(filled, qty, price, fee, liq)] = rec.fills
    assert filled is o and qty == 2.0
    assert price == pytest.approx(101.0 * 1.001)  # 10 bps against the buyer
    assert fee == pytest.approx(101.0 * 1.001 * 2.0 * 0.0005)  # taker 5 bps of the notional
    assert liq == "taker"


def test_market_sell_fills_at_the_bid_minus_slippage_as_taker(paper):
    broker, book, clock, rec = paper
    book.update(Quote("BTCUSDT", T0, 99.0, 101.0))
    broker.submit(order("sell", qty=3.0))
    [(_, qty, price, fee, liq)] = rec.fills
    assert qty == 3.0
    assert price == pytest.approx(99.0 * 0.999)
    assert fee == pytest.approx(99.0 * 0.999 * 3.0 * 0.0005)
    assert liq == "taker"


def test_marketable_limit_buy_fills_at_the_ask_not_at_its_limit(paper):
    broker, book, clock, rec = paper
    book.update(Quote("BTCUSDT", T0, 99.0, 101.0))
    broker.submit(order("buy", order_type="limit", limit=102.0))
    [(_, _, price, fee, liq)] = rec.fills
    assert price == 101.0  # at the touch, no slippage for a limit
    assert liq == "taker"
    assert fee == pytest.approx(101.0 * 2.0 * 0.0005)
    assert broker.resting.get("BTCUSDT", []) == []


def test_marketable_limit_sell_fills_at_the_bid(paper):
    broker, book, clock, rec = paper
    book.update(Quote("BTCUSDT", T0, 99.0, 101.0))
    broker.submit(order("sell", order_type="limit", limit=99.0))  # bid == limit is marketable
    [(_, _, price, _, liq)] = rec.fills
    assert price == 99.0 and liq == "taker"


def test_non_marketable_limit_buy_rests_then_fills_at_its_limit_as_maker(paper):
    broker, book, clock, rec = paper
    book.update(Quote("BTCUSDT", T0, 99.0, 101.0))
    o = order("buy", order_type="limit", limit=100.0)
    broker.submit(o)
    assert rec.fills == [] and rec.rejects == []
    assert o.status == "working"
    assert broker.resting["BTCUSDT"] == [o]
    broker.on_quote(Quote("BTCUSDT", T0 + 1, 99.5, 100.5))  # ask still above the limit
    assert rec.fills == []
    broker.on_quote(Quote("ETHUSDT", T0 + 1, 10.0, 10.0))  # another symbol: nothing
    assert rec.fills == []
    broker.on_quote(Quote("BTCUSDT", T0 + 2, 98.0, 99.0))  # ask crosses below the limit
    [(filled, qty, price, fee, liq)] = rec.fills
    assert filled is o
    assert price == 100.0  # at its limit, not at the better ask
    assert liq == "maker"
    assert fee == pytest.approx(100.0 * 2.0 * 0.0002)  # maker 2 bps
    assert broker.resting["BTCUSDT"] == []


def test_non_marketable_limit_sell_rests_then_fills_at_its_limit_when_the_bid_reaches_it(paper):
    broker, book, clock, rec = paper
    book.update(Quote("BTCUSDT", T0, 99.0, 101.0))
    o = order("sell", order_type="limit", limit=100.5)
    broker.submit(o)
    assert rec.fills == []
    broker.on_quote(Quote("BTCUSDT", T0 + 1, 100.4, 101.0))
    assert rec.fills == []
    broker.on_quote(Quote("BTCUSDT", T0 + 2, 100.5, 101.0))  # bid == limit crosses
    [(_, _, price, fee, liq)] = rec.fills
    assert price == 100.5 and liq == "maker"
    assert fee == pytest.approx(100.5 * 2.0 * 0.0002)


def test_a_resting_buy_is_not_filled_by_a_quote_without_an_ask(paper):
    broker, book, clock, rec = paper
    book.update(Quote("BTCUSDT", T0, 99.0, 101.0))
    broker.submit(order("buy", order_type="limit", limit=100.0))
    broker.on_quote(Quote("BTCUSDT", T0 + 1, 95.0, 0.0))
    assert rec.fills == []


def test_a_cancelled_resting_order_never_fills(paper):
    broker, book, clock, rec = paper
    book.update(Quote("BTCUSDT", T0, 99.0, 101.0))
    o = order("buy", order_type="limit", limit=100.0)
    broker.submit(o)
    assert broker.cancel(o) is True
    assert o.status == "cancelled"
    assert broker.cancel(o) is False  # no longer working
    broker.on_quote(Quote("BTCUSDT", T0 + 1, 90.0, 91.0))
    assert rec.fills == []


def test_an_order_without_any_quote_is_rejected_with_the_reason(paper):
    broker, book, clock, rec = paper
    o = order("buy")
    broker.submit(o)
    assert rec.fills == []
    assert rec.rejects == [(o, "no fresh quote for BTCUSDT")]


def test_an_order_on_a_stale_quote_is_rejected(paper):
    broker, book, clock, rec = paper
    book.update(Quote("BTCUSDT", T0, 99.0, 101.0))
    clock.advance(5.5)  # older than max_quote_age_s = 5
    broker.submit(order("sell"))
    broker.submit(order("buy", order_type="limit", limit=100.0))
    assert rec.fills == []
    assert [r for _, r in rec.rejects] == ["no fresh quote for BTCUSDT"] * 2
    assert broker.resting.get("BTCUSDT", []) == []  # a rejected limit does not rest


def test_an_order_without_the_side_it_needs_is_rejected(paper):
    broker, book, clock, rec = paper
    book.update(Quote("BTCUSDT", T0, 99.0, 0.0))
    broker.submit(order("buy"))
    assert [r for _, r in rec.rejects] == ["no ask for BTCUSDT"]
    broker.submit(order("sell"))  # the bid exists
    assert len(rec.fills) == 1


def test_a_limit_order_without_a_positive_limit_is_rejected(paper):
    broker, book, clock, rec = paper
    book.update(Quote("BTCUSDT", T0, 99.0, 101.0))
    broker.submit(order("buy", order_type="limit", limit=None))
    assert [r for _, r in rec.rejects] == ["a limit order needs a positive limit price"]


def test_zero_slippage_and_fees_fill_exactly_at_the_touch():
    clock = FakeClock(T0)
    book = QuoteBook(5.0)
    broker = PaperBroker(PaperConfig(slippage_bps=0, maker_fee_bps=0, taker_fee_bps=0), book, clock)
    rec = Recorder()
    broker.bind(rec.on_fill, rec.on_reject)
    book.update(Quote("BTCUSDT", T0, 99.0, 101.0))
    broker.submit(order("buy"))
    broker.submit(order("sell"))
    assert [(p, f) for _, _, p, f, _ in rec.fills] == [(101.0, 0.0), (99.0, 0.0)]


def test_a_slipped_fill_is_on_the_tick_and_never_in_the_traders_favour():
    from services.rules.precision import Rules

    class Ticks:
        def rules(self, symbol):
            return Rules(0.5, 0.001, 0.0)

    clock = FakeClock(T0)
    book = QuoteBook(max_age_s=5.0)
    broker = PaperBroker(PaperConfig(slippage_bps=10, maker_fee_bps=0, taker_fee_bps=0), book, clock, Ticks())
    rec = Recorder()
    broker.bind(rec.on_fill, rec.on_reject)
    book.update(Quote("BTCUSDT", T0, 99.0, 101.0))
    broker.submit(order("buy"))  # 101.101 -> 101.5, not 101.0
    broker.submit(order("sell"))  # 98.901 -> 98.5, not 99.0
    assert [price for _, _, price, _, _ in rec.fills] == [101.5, 98.5]
