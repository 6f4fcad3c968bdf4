"""How exits are worked (market, or limit with re-prices then market), rejected exit orders
retried with their reasons, level edits (activation, time exit, an edit that would exit at
once), bulk exits, and open positions of strategies gone from the settings."""

from __future__ import annotations

import pytest

from services.clock import FakeClock
from services.engine import Engine
from tui_trader.wiring import build_engine
from services.market import Quote
from services.store import SqlStore
from tests.conftest import T0, Harness
from tests.engine_support import RecordingStore, RejectingClient, make_config, strat


def exit_orders(h: Harness) -> list[tuple]:
    return [(o.method, o.order_type, o.limit_price, o.status) for o in h.engine.recent_orders if o.purpose == "exit"]


def test_a_limit_exit_rests_at_the_mid_is_repriced_toward_the_touch_then_goes_at_market():
    h = Harness(make_config({"s": strat(target="5%", exit_execution={"order_type": "limit", "max_retries": 1,
                                                                      "retry_delay_s": 2})}))
    h.quote("BTCUSDT", 100.0)
    h.quote("BTCUSDT", 105.0, 107.0)  # mid 106 >= target 105: a limit sell at the mid
    assert exit_orders(h) == [("limit", "limit", 106.0, "working")]
    assert h.position().exit_order == "limit 106.00"
    h.quote("BTCUSDT", 105.0, 107.0, dt=2)  # the tick re-prices halfway to the bid
    assert exit_orders(h)[-2:] == [("limit", "limit", 106.0, "cancelled"), ("limit_retry", "limit", 105.5, "working")]
    assert h.position().exit_order == "limit 105.50 (re-price 1 of 1)"
    h.quote("BTCUSDT", 105.0, 107.0, dt=2)  # then at market: fills at the bid
    assert exit_orders(h)[-1] == ("market_fallback", "market", None, "filled")
    assert h.engine.trades[-1].exit_price == 105.0 and h.engine.trades[-1].exit_reason == "target"


def test_a_resting_limit_exit_fills_when_the_touch_reaches_it():
    h = Harness(make_config({"s": strat(side="sell", stop_loss="2%", exit_execution={"order_type": "limit"})}))
    h.quote("BTCUSDT", 100.0)
    h.quote("BTCUSDT", 101.0, 103.0)  # a short's stop (102) at the mid: buy limit 102
    assert exit_orders(h) == [("limit", "limit", 102.0, "working")]
    h.quote("BTCUSDT", 100.5, 101.5)  # the ask crosses 102: filled at the limit (maker)
    assert h.engine.trades[-1].exit_price == 102.0 and h.engine.trades[-1].exit_reason == "stop_loss"


def test_a_rejected_exit_order_is_retried_with_each_rejection_recorded_and_one_alert():
    cfg = make_config({"s": strat(stop_loss="1%")})
    clock, store = FakeClock(T0), RecordingStore()
    engine = build_engine(cfg, clock, store, client=RejectingClient)
    engine.open()

    def quote(px: float) -> None:
        clock.advance(1)
        engine.on_quote(Quote("BTCUSDT", clock.now(), px, px, 0.0))

    quote(100.0)
    quote(98.0)  # stop: the exit order is rejected
    assert [(o.status, o.reason) for o in engine.recent_orders if o.purpose == "exit"] == [("rejected", "insufficient margin")]
    quote(98.0)  # retried on the next fresh quote: rejected again
    quote(98.0)  # and then filled
    assert [o.status for o in engine.recent_orders if o.purpose == "exit"] == ["rejected", "rejected", "filled"]
    assert engine.trades[-1].exit_reason == "stop_loss"
    rejections = [e for e in store.events("order") if "rejected" in e["message"]]
    assert [e["payload"]["rejections"] for e in rejections] == [1, 2]
    assert [e["needs_ack"] for e in rejections] == [True, False]
    assert all("insufficient margin" in e["message"] for e in rejections)


def test_exit_positions_exits_exactly_the_selected_groups():
    h = Harness(make_config({"a": strat(), "b": strat(symbols=["ETHUSDT"]), "c": strat(symbols=["ACME"])}))
    for sym in ("BTCUSDT", "ETHUSDT", "ACME"):
        h.quote(sym, 10.0)
    ids = {g.symbol: g.id for g in h.engine.groups.values()}
    r = h.engine.exit_positions([ids["BTCUSDT"], ids["ACME"], ids["ACME"]])
    assert r.ok and r.message.count("closed") == 2
    assert [g.symbol for g in h.engine.groups.values()] == ["ETHUSDT"]
    assert not h.engine.exit_positions([]).ok


def long_at_100(**kw) -> tuple[Harness, int]:
    h = Harness(make_config({"s": strat(reentry=False, **kw)}), RecordingStore())
    h.quote("BTCUSDT", 100.0)
    return h, h.position().group_id


def test_editing_the_trailing_activation_and_the_time_exit():
    h, gid = long_at_100(trail_activation="2%", trail_distance="1%")
    r = h.engine.edit_levels(gid, trail_activation="1%")
    assert r.ok and "trailing arms at 2% -> 1%" in r.message
    h.quote("BTCUSDT", 101.0)
    assert h.position().trail_active  # armed at +1%
    r = h.engine.edit_levels(gid, trail_activation=5)
    assert not r.ok and "already armed" in r.message
    r = h.engine.edit_levels(gid, time_exit_at=h.clock.now() + 60)
    assert r.ok and "time exit none -> " in r.message
    assert h.position().time_exit_at == h.clock.now() + 60
    h.clock.advance(61)
    h.quote("BTCUSDT", 101.5)
    assert h.engine.trades[-1].exit_reason == "time"


def test_a_stop_between_the_bid_and_the_mark_would_exit_at_once_on_bid_ask_so_it_asks_first():
    h, gid = long_at_100(trigger_price="bid_ask")
    h.quote("BTCUSDT", 99.0, 101.0)  # mark 100, bid 99
    r = h.engine.edit_levels(gid, stop=99.5)  # below the mark, above the bid
    assert not r.ok and r.needs_confirm and "stop_loss at 99.00" in r.message
    assert h.position().stop is None
    r = h.engine.edit_levels(gid, stop=101.0)  # above the mark: simply wrong
    assert not r.ok and not r.needs_confirm and "wrong side" in r.message
    r = h.engine.edit_levels(gid, time_exit_at=h.clock.now() - 1)  # a time already past
    assert r.needs_confirm and "(time at" in r.message
    r = h.engine.edit_levels(gid, stop=99.5, confirm=True)
    assert r.ok and h.engine.trades[-1].exit_reason == "stop_loss"
    [edit] = h.store.events("levels")
    assert edit["payload"]["new"]["stop"] == 99.5


def restart_without(db_url: str, cfg_before, cfg_after) -> Engine:
    h = Harness(cfg_before, SqlStore(db_url))
    h.quote("BTCUSDT", 100.0)
    h.quote("ETHUSDT", 50.0)
    h.engine.store.close()
    eng = build_engine(cfg_after, FakeClock(h.clock.now() + 1), SqlStore(db_url))
    eng.open()
    return eng


def test_positions_of_a_removed_or_disabled_strategy_are_reported_and_still_managed(db_url):
    before = make_config({"gone": strat(stop_loss="1%"), "off": strat(symbols=["ETHUSDT"])})
    after = make_config({"off": strat(symbols=["ETHUSDT"], enabled=False)})
    eng = restart_without(db_url, before, after)
    try:
        snap = eng.snapshot()
        assert sorted((o.strategy_id, o.why, o.decided) for o in snap.orphans) == [
            ("gone", "removed from the settings", ""), ("off", "disabled in the settings", "")]
        assert any("gone is removed from the settings but holds #1 BTCUSDT" in n for n in snap.notes)
        r = eng.keep_managing("gone")
        assert r.ok and "#1 of gone stay open" in r.message
        assert {o.strategy_id: o.decided for o in eng.snapshot().orphans}["gone"] == "keep"
        eng.on_quote(Quote("BTCUSDT", eng.clock.now(), 98.0, 98.0, 0.0))  # the stored stop still acts
        assert eng.trades[-1].exit_reason == "stop_loss"
        r = eng.exit_strategy("off")
        assert r.ok and "pending" in r.message  # no fresh quote yet: it stays pending...
        eng.clock.advance(1)
        eng.on_quote(Quote("ETHUSDT", eng.clock.now(), 50.0, 50.0, 0.0))
        assert not eng.groups and not eng.snapshot().orphans  # ...and goes on the next one
    finally:
        eng.store.close()


def test_keep_managing_refuses_a_strategy_with_nothing_left_over():
    h, _ = long_at_100()
    assert not h.engine.keep_managing("s").ok


def test_a_baskets_levels_are_edited_leg_by_leg():
    h = Harness(make_config({"b": strat(symbols=["BTCUSDT", "ETHUSDT"], basket=True)}))
    h.quote("ETHUSDT", 50.0)
    h.quote("BTCUSDT", 100.0)
    [group] = h.engine.groups.values()
    btc, eth = group.legs
    r = h.engine.edit_levels(group.id, stop=49.0)
    assert not r.ok and r.message == f"#{group.id} is a basket of 2 legs; say which leg to edit ({btc.id} BTCUSDT, {eth.id} ETHUSDT)"
    r = h.engine.edit_levels(group.id, leg_id=eth.id, stop=49.0)
    assert r.ok and (btc.stop, eth.stop) == (None, 49.0)
    assert not h.engine.edit_levels(group.id, leg_id=999, stop=49.0).ok


@pytest.mark.parametrize("field, value, message", [
    ("stop", -1.0, "stop must be a positive price"),
    ("trail_activation", "x", "trailing activation: expected a percentage"),
    ("time_exit_at", 0.0, "time exit must be a time"),
])
def test_bad_edit_values_are_refused_with_the_field(field, value, message):
    h, gid = long_at_100(trail_activation="2%", trail_distance="1%")
    r = h.engine.edit_levels(gid, **{field: value})
    assert not r.ok and r.message.startswith(message)
