"""Entries worked as limit orders with re-prices and a market fallback, precision (tick, lot
step, min notional) and sizing against allocated funds (DESIGN §3), on a fake clock."""

from __future__ import annotations

import pytest

from services.clock import FakeClock
from services.config import TradingConfig
from tui_trader.wiring import build_engine
from services.market import Quote
from services.rules.precision import floor_qty, round_price
from tests.conftest import T0
from tests.engine_support import RecordingStore


def config(starting_cash: float = 100_000.0, **strategies) -> TradingConfig:
    return TradingConfig.model_validate({
        "engine": {"tick_interval_s": 0.25},
        "paper": {"slippage_bps": 0, "maker_fee_bps": 0, "taker_fee_bps": 0, "starting_cash": starting_cash},
        "symbols": {
            "BTCUSDT": {"start_price": 100, "tick_size": 0.05, "lot_step": 0.001, "min_notional": 10},
            "ETHUSDT": {"start_price": 50, "tick_size": 0.01, "lot_step": 0.01},
        },
        "strategies": strategies,
    })


def limit(**kw) -> dict:
    base = {"symbols": ["BTCUSDT"], "side": "buy", "entry": "manual", "sizing": {"fixed_qty": 1},
            "execution": {"order_type": "limit", "max_retries": 2, "retry_delay_s": 5}}
    base.update(kw)
    return base


class Day:
    def __init__(self, cfg: TradingConfig, rules=None) -> None:
        self.clock = FakeClock(T0)
        self.store = RecordingStore()
        self.engine = build_engine(cfg, self.clock, self.store, rules=rules)
        self.engine.open()

    def quote(self, bid: float, ask: float, symbol: str = "BTCUSDT", dt: float = 0.0) -> None:
        self.clock.advance(dt)
        self.engine.on_quote(Quote(symbol, self.clock.now(), bid, ask))

    def wait(self, seconds: float) -> None:
        """Let time pass with the quotes unchanged (repeated each second, as a feed does)."""
        for i in range(1, int(seconds / 0.25) + 1):
            self.clock.advance(0.25)
            if i % 4 == 0:
                for q in list(self.engine.book.quotes.values()):
                    self.engine.on_quote(q._replace(ts=self.clock.now()))
            self.engine.tick()

    def orders(self) -> list[tuple]:
        return [(o.order_type, o.method, o.retry_count, o.limit_price, o.status) for o in self.engine.snapshot().orders]

    def run_status(self) -> str:
        return self.store.of("run")[-1]["status"]


def test_limit_entry_fills_after_two_reprices_toward_the_touch():
    day = Day(config(s=limit(execution={"order_type": "limit", "max_retries": 3, "retry_delay_s": 5})))
    day.quote(99.0, 101.0)
    assert day.engine.enter_now("s").ok
    assert day.orders() == [("limit", "limit", 0, 100.0, "working")]  # the mid, on the tick
    assert day.run_status() == "entering"
    day.wait(5)
    assert day.orders()[-1] == ("limit", "limit_retry", 1, 100.25, "working")  # 1/4 of the way to 101
    day.wait(5)
    assert day.orders()[-1] == ("limit", "limit_retry", 2, 100.5, "working")  # 2/4
    day.quote(100.0, 100.5, dt=1)  # the ask comes down to the limit: a maker fill at the limit
    assert day.orders() == [
        ("limit", "limit", 0, 100.0, "cancelled"),
        ("limit", "limit_retry", 1, 100.25, "cancelled"),
        ("limit", "limit_retry", 2, 100.5, "filled"),
    ]
    (p,) = day.engine.snapshot().positions
    assert (p.entry, p.qty) == (100.5, 1.0)
    group = day.store.of("group")[-1]
    assert (group["status"], group["entry_method"], group["entry_attempts"]) == ("open", "limit_retry", 3)
    assert day.run_status() == "live"
    order_rows = {r["id"]: r for r in day.store.of("order")}  # every attempt is an Order row
    assert sorted((r["method"], r["retry_count"], r["reference_price"]) for r in order_rows.values()) == [
        ("limit", 0, 100.0), ("limit_retry", 1, 100.0), ("limit_retry", 2, 100.0)]
    assert [e["message"] for e in day.store.events("entry") if "re-price" in e["message"]] == [
        "s: entry #1 BTCUSDT not filled: re-price 1 to 100.25", "s: entry #1 BTCUSDT not filled: re-price 2 to 100.50"]


def test_unfilled_limit_falls_back_to_market_after_the_last_reprice():
    day = Day(config(s=limit(execution={"order_type": "limit", "max_retries": 1, "retry_delay_s": 2})))
    day.quote(99.0, 101.0)
    day.engine.enter_now("s")
    day.wait(2)
    assert day.orders()[-1] == ("limit", "limit_retry", 1, 100.5, "working")
    day.wait(2)
    assert day.orders() == [
        ("limit", "limit", 0, 100.0, "cancelled"),
        ("limit", "limit_retry", 1, 100.5, "cancelled"),
        ("market", "market_fallback", 2, None, "filled"),
    ]
    (p,) = day.engine.snapshot().positions
    assert p.entry == 101.0  # at the touch
    assert day.store.of("group")[-1]["entry_method"] == "market_fallback"
    fallback = [e for e in day.store.events("entry") if "market fallback" in e["message"]]
    assert [e["level"] for e in fallback] == ["warning"]


def test_without_the_fallback_an_unfilled_entry_fails_with_the_reason():
    day = Day(config(s=limit(execution={"order_type": "limit", "max_retries": 0, "retry_delay_s": 2,
                                        "market_fallback": False})))
    day.quote(99.0, 101.0)
    day.engine.enter_now("s")
    day.wait(2)
    assert day.orders() == [("limit", "limit", 0, 100.0, "cancelled")]
    assert day.engine.snapshot().positions == ()
    run = day.store.of("run")[-1]
    assert run["status"] == "error"
    assert run["reason"] == "not filled after 0 re-price(s) and the market fallback is off"
    assert day.engine.snapshot().pool_used == 0


def test_a_marketable_limit_fills_at_once_at_the_touch():
    day = Day(config(s=limit(execution={"order_type": "limit", "bias": 0.5})))
    day.quote(99.0, 101.0)
    assert day.engine.enter_now("s").message == "entered buy 1 BTCUSDT at 101.00 (#1)"
    assert day.orders() == [("limit", "limit", 0, 101.0, "filled")]


def test_a_signal_price_is_the_limit_reference():
    day = Day(config(s=limit()))
    day.quote(99.0, 101.0)
    day.engine.enter_now("s", price=99.52)
    assert day.orders() == [("limit", "limit", 0, 99.5, "working")]  # a buy rounds down to the tick


def test_an_entry_below_min_notional_is_held_with_the_reason_once():
    day = Day(config(s=limit(entry="immediate", sizing={"fixed_qty": 0.05})))
    day.quote(99.0, 101.0)
    day.quote(99.0, 101.0, dt=1)
    reason = "BTCUSDT: order value 5.00 is below the minimum notional 10.00"
    assert [w.reason for w in day.engine.snapshot().waiting] == [reason]
    assert [e["message"] for e in day.store.events("entry")] == [f"s: entry on BTCUSDT held: {reason}"]
    assert day.orders() == []


def test_quantity_is_floored_to_the_lot_step():
    day = Day(config(s=limit(execution={"order_type": "market"}, sizing={"fixed_value": 1000})))
    day.quote(99.0, 101.0)
    day.engine.enter_now("s")
    (p,) = day.engine.snapshot().positions
    assert p.qty == 9.9  # 1000 / 101 = 9.90099 -> 9.900


def test_an_entry_that_exceeds_the_strategy_allocation_is_refused():
    day = Day(config(s=limit(execution={"order_type": "market"}, sizing={"fixed_value": 1000}, allocation=500)))
    day.quote(99.0, 101.0)
    result = day.engine.enter_now("s")
    assert not result.ok
    assert result.message == ("s BTCUSDT: held: insufficient funds: needs 999.90, s has 500.00 free of 500.00 allocated")
    assert day.orders() == []


def test_pct_allocation_sizes_from_the_allocation_and_uses_it_up():
    day = Day(config(s=limit(execution={"order_type": "market"}, symbols=["BTCUSDT", "ETHUSDT"],
                              sizing={"pct_allocation": 60}, allocation=1000)))
    day.quote(99.0, 101.0)
    day.quote(49.0, 50.0, symbol="ETHUSDT")
    result = day.engine.enter_now("s")
    (p,) = day.engine.snapshot().positions
    assert (p.symbol, p.qty) == ("BTCUSDT", 5.94)  # 600 / 101, floored to 0.001
    assert "ETHUSDT: held: insufficient funds: needs 600.00, s has 400.06 free of 1,000.00 allocated" in result.message


def test_the_book_cash_limits_entries_across_strategies():
    day = Day(config(starting_cash=1000, a=limit(execution={"order_type": "market"}, sizing={"fixed_value": 600}),
                     b=limit(execution={"order_type": "market"}, symbols=["ETHUSDT"], sizing={"fixed_value": 600})))
    day.quote(99.0, 100.0)
    day.quote(49.0, 50.0, symbol="ETHUSDT")
    assert day.engine.enter_now("a").ok
    refused = day.engine.enter_now("b")
    assert refused.message == "b ETHUSDT: held: insufficient funds: needs 600.00, the book has 400.00 cash free"
    assert day.engine.free_cash() == pytest.approx(400.0)


def test_a_symbol_without_precision_rules_is_held_not_guessed():
    class NoRules:
        def rules(self, symbol):
            return None

    day = Day(config(s=limit()), rules=NoRules())
    day.quote(99.0, 101.0)
    result = day.engine.enter_now("s")
    assert result.message == "s BTCUSDT: held: no precision rules for BTCUSDT yet (tick size, lot step, min notional)"


@pytest.mark.parametrize("price, side, tick, expected", [
    (100.07, "buy", 0.05, 100.05), (100.01, "sell", 0.05, 100.05), (100.05, "sell", 0.05, 100.05),
    (64999.99, "buy", 0.1, 64999.9), (0.123456, "sell", 0.0001, 0.1235), (5.0, "buy", None, 5.0),
])
def test_prices_round_to_the_tick_buy_down_sell_up(price, side, tick, expected):
    assert round_price(price, side, tick) == expected


@pytest.mark.parametrize("qty, step, expected", [(0.0153846, 0.001, 0.015), (0.3, 0.1, 0.3), (2.9999999, 1, 2), (7.5, None, 7.5)])
def test_quantities_floor_to_the_step(qty, step, expected):
    assert floor_qty(qty, step) == expected


def test_a_reprice_waits_for_a_fresh_quote_and_the_limit_keeps_resting_meanwhile():
    day = Day(config(s=limit(execution={"order_type": "limit", "max_retries": 1, "retry_delay_s": 2})))
    day.quote(99.0, 101.0)
    day.engine.enter_now("s")
    day.clock.advance(10)  # no quote for 10 s: stale
    day.engine.tick()
    assert day.orders() == [("limit", "limit", 0, 100.0, "working")]  # not re-priced blind
    day.quote(99.0, 101.0, dt=0.25)  # a fresh quote, and the tick it brings
    assert day.orders()[-1] == ("limit", "limit_retry", 1, 100.5, "working")


# -- multi-leg (basket) entries ----------------------------------------------------------------


def basket(**kw) -> dict:
    return limit(symbols=["BTCUSDT", "ETHUSDT"], basket=True, **kw)


def test_a_basket_enters_leg_by_leg_and_exits_as_one_position():
    day = Day(config(b=basket(execution={"order_type": "market"}, stop_loss="1%")))
    day.quote(99.0, 101.0)
    day.quote(49.0, 51.0, symbol="ETHUSDT")
    result = day.engine.enter_now("b")
    assert result.message == "entered buy 1 BTCUSDT at 101.00, 1 ETHUSDT at 51.00 (#1)"
    snap = day.engine.snapshot()
    assert [(p.group_id, p.symbol) for p in snap.positions] == [(1, "BTCUSDT"), (1, "ETHUSDT")]
    assert snap.pool_used == 1
    day.quote(49.0, 49.0, symbol="ETHUSDT", dt=1)  # through ETH's stop (50.49): the whole basket exits
    (trade,) = day.engine.snapshot().trades
    assert trade.exit_reason == "stop_loss" and trade.pnl == pytest.approx((99.0 - 101.0) + (49.0 - 51.0))
    assert day.engine.snapshot().positions == ()


def test_a_basket_leg_that_cannot_be_filled_unwinds_the_filled_legs():
    day = Day(config(b=basket(execution={"order_type": "limit", "max_retries": 0, "retry_delay_s": 2,
                                         "market_fallback": False})))
    day.quote(99.0, 101.0)
    day.quote(49.0, 51.0, symbol="ETHUSDT")
    day.engine.enter_now("b")
    assert day.orders() == [("limit", "limit", 0, 100.0, "working")]  # leg 1 first
    day.quote(99.5, 100.0)  # leg 1 fills at its limit; leg 2 goes out
    assert day.orders()[-1] == ("limit", "limit", 0, 50.0, "working")
    assert day.store.of("run")[-1]["status"] == "entering"  # not live until every leg is in
    day.wait(2)  # leg 2 never fills and may not fall back: unwind leg 1 at market
    assert [(o.symbol, o.purpose, o.order_type, o.status) for o in day.engine.snapshot().orders] == [
        ("BTCUSDT", "entry", "limit", "filled"), ("ETHUSDT", "entry", "limit", "cancelled"),
        ("BTCUSDT", "exit", "market", "filled")]
    assert day.engine.snapshot().positions == ()
    (trade,) = day.engine.snapshot().trades
    assert (trade.exit_reason, trade.pnl) == ("unwind", pytest.approx(99.5 - 100.0))
    run = day.store.of("run")[-1]
    assert run["status"] == "error"
    assert run["reason"] == "not filled after 0 re-price(s) and the market fallback is off; the filled legs are unwound"
    assert any("unwinding BTCUSDT" in e["message"] and e["level"] == "error" for e in day.store.events("entry"))


def test_a_hold_is_announced_once_per_kind_while_its_amounts_move():
    day = Day(config(s=limit(entry="immediate", execution={"order_type": "market"}, sizing={"fixed_value": 1000},
                             allocation=500)))
    for i in range(5):
        day.quote(99.0 + i, 101.0 + i, dt=1)  # the needed amount changes with the price
    held = [e["message"] for e in day.store.events("entry") if "held" in e["message"]]
    assert held == ["s: entry on BTCUSDT held: insufficient funds: needs 999.90, s has 500.00 free of 500.00 allocated"]
    assert day.engine.snapshot().waiting[0].reason == (
        "insufficient funds: needs 999.91, s has 500.00 free of 500.00 allocated")  # the shown reason stays current
