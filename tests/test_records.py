"""Records right under load (issue 13): every fill has its leg, the risk engine closes the leg
its plan names, a basket leg is never exited before its own quote is fresh, basket events
name each leg's own symbol with its own price, and a DCA grid is called a grid."""

from __future__ import annotations

import sqlite3

import pytest

from services.clock import FakeClock
from services.config import RiskEngineConfig, TradingConfig
from tui_trader.wiring import build_engine
from services.market import Quote
from services.store import SqlStore

from .conftest import Harness
from .engine_support import RecordingStore, strat


def config(**strategies) -> TradingConfig:
    return TradingConfig.model_validate({
        "engine": {"max_open_positions": 10, "tick_interval_s": 0.25},
        "feed": {"max_quote_age_s": 5},
        "paper": {"slippage_bps": 0, "maker_fee_bps": 0, "taker_fee_bps": 0},
        "symbols": {
            "BTCUSDT": {"start_price": 100.0, "lot_step": 0.001},
            "ETHUSDT": {"start_price": 50.0, "lot_step": 0.0001},
            "ACME": {"start_price": 20.0, "lot_step": 1},
        },
        "strategies": strategies,
    })


def basket(**kw) -> dict:
    return strat(entry="manual", symbols=["BTCUSDT", "ETHUSDT"], basket=True, **kw)


GRID = {"layers": [{"gap_pct": 0, "weight": 1, "tp_pct": 1}, {"gap_pct": 2, "weight": 1, "tp_pct": 1}]}


def quotes(h: Harness, dt: float = 1.0, **prices: float) -> None:
    for i, (sym, px) in enumerate(prices.items()):
        h.quote(sym, px, dt=dt if i == 0 else 0)


# -- every fill has its leg ------------------------------------------------------------------


def test_every_entry_fill_of_a_basket_and_a_grid_is_written_with_its_leg(db_url):
    store = SqlStore(db_url, flush_interval_s=0.05)
    h = Harness(config(b=basket(), g=strat(entry="manual", sizing={"fixed_value": 200}, dca=GRID)), store=store)
    quotes(h, BTCUSDT=100.0, ETHUSDT=50.0)
    assert h.engine.enter_now("b").ok
    assert h.engine.enter_now("g").ok
    h.quote("BTCUSDT", 97.9)  # the grid's second layer fills
    store.close()
    db = sqlite3.connect(db_url[len("sqlite:///"):])
    try:
        fills = db.execute("select f.id, f.symbol, f.leg_id, l.symbol from fills f left join legs l on l.id = f.leg_id "
                           "order by f.id").fetchall()
    finally:
        db.close()
    assert len(fills) == 4  # the basket's two legs, the grid's two layers
    assert [(sym, leg_sym) for _, sym, _, leg_sym in fills] == [("BTCUSDT", "BTCUSDT"), ("ETHUSDT", "ETHUSDT"),
                                                                 ("BTCUSDT", "BTCUSDT"), ("BTCUSDT", "BTCUSDT")]


# -- the risk engine closes the leg its plan names ---------------------------------------------


def test_the_risk_plan_closes_the_basket_leg_it_names_on_that_legs_own_lot_step():
    cfg = config(loser=strat(entry="manual", sizing={"fixed_qty": 10}),
                 w=strat(entry="manual", symbols=["ETHUSDT", "ACME"], basket=True, sizing={"fixed_qty": 10}))
    cfg = cfg.model_copy(update={"risk_engine": RiskEngineConfig(loss_threshold_pct=2, enabled=False)})
    h = Harness(cfg, store=RecordingStore())
    quotes(h, BTCUSDT=100.0, ETHUSDT=50.0, ACME=20.0)
    assert h.engine.enter_now("loser").ok and h.engine.enter_now("w").ok
    ids = {g.strategy_id: g.id for g in h.engine.groups.values()}
    quotes(h, BTCUSDT=97.0, ETHUSDT=51.0, ACME=27.0)  # the loser -30; ETHUSDT +1 a unit, ACME +7 a unit
    (view,) = h.engine.snapshot().risk
    # ACME pays most a unit: 30 / 7 = 4.3, up to ACME's own lot step of 1 -> 5
    assert [(s.group_id, s.symbol, s.qty) for s in view.steps] == [(ids["w"], "ACME", 5.0)]
    assert f"close 5 ACME of #{ids['w']} (+35.00)" in view.plan
    assert h.engine.risk_run(ids["loser"]).ok
    (offset,) = [o for o in h.engine.recent_orders if o.purpose == "exit" and o.group_id == ids["w"]]
    acme = next(lg for lg in h.engine.groups[ids["w"]].legs if lg.symbol == "ACME")
    assert (offset.symbol, offset.leg_id, offset.qty) == ("ACME", acme.id, 5.0)
    assert acme.qty == pytest.approx(5.0)
    assert h.engine.realized_today["w"] == pytest.approx(35.0)


# -- a basket leg is not exited before its own quote is fresh ----------------------------------


def test_after_a_restart_a_baskets_time_exit_waits_for_each_legs_fresh_quote(db_url):
    cfg = config(b=basket(time_exit_s=60))
    h = Harness(cfg, store=SqlStore(db_url))
    quotes(h, BTCUSDT=100.0, ETHUSDT=50.0)
    assert h.engine.enter_now("b").ok
    h.engine.store.close()
    eng = build_engine(cfg, FakeClock(h.clock.now() + 120), SqlStore(db_url))  # back after the time exit
    eng.open()
    try:
        clock = eng.clock
        eng.on_quote(Quote("BTCUSDT", clock.now(), 101.0, 101.0))  # only BTCUSDT is fresh
        exits = [o for o in eng.recent_orders if o.purpose == "exit"]
        assert [(o.symbol, o.status) for o in exits] == [("BTCUSDT", "filled")]
        assert not any("rejected" in e.message for e in eng.events)
        clock.advance(1)
        eng.on_quote(Quote("ETHUSDT", clock.now(), 49.0, 49.0))  # its own fresh quote: now it goes
        exits = [o for o in eng.recent_orders if o.purpose == "exit"]
        assert [(o.symbol, o.status) for o in exits] == [("BTCUSDT", "filled"), ("ETHUSDT", "filled")]
        assert eng.groups == {}
        assert eng.trades[-1].exit_reason == "time"
    finally:
        eng.store.close()


def test_a_basket_stop_does_not_send_a_stale_legs_exit():
    h = Harness(config(b=basket(stop_loss="1%")), store=RecordingStore())
    quotes(h, BTCUSDT=100.0, ETHUSDT=50.0)
    assert h.engine.enter_now("b").ok
    h.quote("ETHUSDT", 49.0, dt=10)  # BTCUSDT's quote is 10 s old now: stale
    assert [(o.symbol, o.status) for o in h.engine.recent_orders if o.purpose == "exit"] == [("ETHUSDT", "filled")]
    h.quote("BTCUSDT", 99.0)
    assert [(o.symbol, o.status) for o in h.engine.recent_orders if o.purpose == "exit"] == [
        ("ETHUSDT", "filled"), ("BTCUSDT", "filled")]
    assert h.engine.groups == {} and h.engine.trades[-1].exit_reason == "stop_loss"


# -- basket events: each leg's own symbol and price --------------------------------------------


def test_basket_events_name_each_legs_own_symbol_with_its_own_price():
    store = RecordingStore()
    h = Harness(config(b=basket(stop_loss="1%")), store=store)
    quotes(h, BTCUSDT=100.0, ETHUSDT=50.0)
    assert h.engine.enter_now("b").ok
    fills = [(e["symbol"], e["message"]) for e in store.events("fill")]
    assert fills == [("BTCUSDT", "b: entered buy 1 BTCUSDT at 100.00 (stop 99.00)"),
                     ("ETHUSDT", "b: entered buy 1 ETHUSDT at 50.00 (stop 49.50)")]
    quotes(h, BTCUSDT=99.5, ETHUSDT=49.0)  # through ETHUSDT's stop
    exits = [(e["symbol"], e["message"]) for e in store.events("exit")]
    assert exits == [
        ("ETHUSDT", "b: exit #1 BTCUSDT+ETHUSDT: stop_loss on ETHUSDT at 49.00"),
        ("BTCUSDT", "b: closed #1 BTCUSDT+ETHUSDT (stop_loss): BTCUSDT at 99.50, ETHUSDT at 49.00, P&L -1.50"),
    ]
    (trade,) = h.engine.trades  # the round trip of its first leg, as the history shows it
    assert (trade.symbol, trade.entry_price, trade.exit_price, trade.pnl) == ("BTCUSDT", 100.0, 99.5, pytest.approx(-1.5))


# -- a grid is a grid ---------------------------------------------------------------------------


def test_editing_a_grid_without_a_layer_calls_it_a_grid():
    h = Harness(config(g=strat(entry="manual", sizing={"fixed_value": 200}, dca=GRID)), store=RecordingStore())
    h.quote("BTCUSDT", 100.0)
    assert h.engine.enter_now("g").ok
    h.quote("BTCUSDT", 97.9)
    group = next(iter(h.engine.groups.values()))
    result = h.engine.edit_levels(group.id, stop=90.0)
    assert not result.ok
    assert "basket" not in result.message
    assert result.message.startswith(f"#{group.id} is a DCA grid of 2 open layers; say which layer to edit")
