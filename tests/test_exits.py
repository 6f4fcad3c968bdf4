"""Per-leg exit rules (DESIGN §3): stop-loss and target (long/short, % and points), P&L of
a round trip with fees, the trailing stop (activation, ratchet, arming event, level history),
precedence when one quote gaps through several levels, trigger_price modes, time exits,
and the stale rule."""

from __future__ import annotations

import pytest

from services.rules.exits import exit_reason as _exit_reason
from services.domain import Group, Leg
from services.plans import SinglePlan
from services.market import Quote
from tests.conftest import T0, Harness
from tests.engine_support import RecordingStore, make_config, strat


def harness(store=None, **strategy) -> Harness:
    return Harness(make_config({"s": strat(reentry=False, **strategy)}), store=store)


def only_trade(h: Harness):
    [trade] = h.engine.snapshot().trades
    return trade


# -- stop-loss and target ---------------------------------------------------------------------


def test_long_percent_stop_is_below_entry_and_exits_at_the_bid():
    h = harness(stop_loss="1%", target="2%")
    h.quote("BTCUSDT", 100.0)
    p = h.position()
    assert (p.entry, p.stop, p.target) == (100.0, 99.0, 102.0)
    h.quote("BTCUSDT", 99.01)
    assert h.position() is not None
    h.quote("BTCUSDT", 98.9, 99.1)  # mark 99.0 == stop
    assert h.position() is None
    t = only_trade(h)
    assert t.exit_reason == "stop_loss"
    assert t.exit_price == 98.9  # a long exits at market: the bid
    assert t.pnl == pytest.approx(-1.1)


def test_long_percent_target_is_above_entry():
    h = harness(stop_loss="1%", target="2%")
    h.quote("BTCUSDT", 100.0)
    h.quote("BTCUSDT", 101.99)
    assert h.position() is not None
    h.quote("BTCUSDT", 102.0)
    t = only_trade(h)
    assert (t.exit_reason, t.exit_price) == ("target", 102.0)
    assert t.pnl == pytest.approx(2.0)


def test_long_points_stop_and_target():
    h = harness(stop_loss=2.5, target=4)
    h.quote("BTCUSDT", 100.0)
    p = h.position()
    assert (p.stop, p.target) == (97.5, 104.0)
    h.quote("BTCUSDT", 97.6)
    assert h.position() is not None
    h.quote("BTCUSDT", 97.5)
    assert only_trade(h).exit_reason == "stop_loss"


def test_short_percent_stop_is_above_entry_and_exits_at_the_ask():
    h = harness(side="sell", stop_loss="1%", target="2%")
    h.quote("BTCUSDT", 100.0)
    p = h.position()
    assert (p.side, p.entry, p.stop, p.target) == ("sell", 100.0, 101.0, 98.0)
    h.quote("BTCUSDT", 100.99)
    assert h.position() is not None
    h.quote("BTCUSDT", 100.9, 101.1)  # mark 101 == stop
    t = only_trade(h)
    assert t.exit_reason == "stop_loss"
    assert t.exit_price == 101.1  # a short buys back at the ask
    assert t.pnl == pytest.approx(-1.1)


def test_short_points_target_is_below_entry():
    h = harness(side="sell", stop_loss=2, target=3)
    h.quote("BTCUSDT", 100.0)
    p = h.position()
    assert (p.stop, p.target) == (102.0, 97.0)
    h.quote("BTCUSDT", 97.01)
    assert h.position() is not None
    h.quote("BTCUSDT", 97.0)
    t = only_trade(h)
    assert (t.exit_reason, t.exit_price) == ("target", 97.0)
    assert t.pnl == pytest.approx(3.0)


def test_stop_and_target_are_measured_from_the_average_fill_not_the_mark():
    h = harness(stop_loss="1%", target="1%")
    h.quote("BTCUSDT", 99.0, 101.0)  # mark 100, the buy fills at the ask 101
    p = h.position()
    assert p.entry == 101.0
    assert p.stop == pytest.approx(99.99)
    assert p.target == pytest.approx(102.01)
    assert p.mark == 100.0


def test_round_trip_pnl_includes_slippage_and_both_fees():
    cfg = make_config({"s": strat(reentry=False, target="1%", sizing={"fixed_qty": 2})},
                      paper={"slippage_bps": 10, "maker_fee_bps": 0, "taker_fee_bps": 10})
    h = Harness(cfg)
    h.quote("BTCUSDT", 99.9, 100.1)
    entry = 100.1 * 1.001
    entry_fee = entry * 2 * 0.001
    p = h.position()
    assert p.entry == pytest.approx(entry)
    assert p.fees == pytest.approx(entry_fee)
    assert p.pnl == pytest.approx((100.0 - entry) * 2 - entry_fee)  # marked at the mid, net of the fee
    h.quote("BTCUSDT", 102.0, 102.2)  # mark 102.1 >= target 101.2020...
    exit_px = 102.0 * 0.999
    exit_fee = exit_px * 2 * 0.001
    t = only_trade(h)
    assert t.exit_reason == "target"
    assert t.exit_price == pytest.approx(exit_px)
    expected = (exit_px - entry) * 2 - entry_fee - exit_fee
    assert t.pnl == pytest.approx(expected)
    snap = h.engine.snapshot()
    assert snap.realized_today == pytest.approx(expected)
    assert snap.day_pnl == pytest.approx(expected)
    assert h.engine.realized_today["s"] == pytest.approx(expected)


# -- trailing stop ----------------------------------------------------------------------------


def test_long_trailing_in_percent_arms_at_activation_and_ratchets_up():
    store = RecordingStore()
    h = harness(store, trail_activation="1%", trail_distance="0.5%")
    h.quote("BTCUSDT", 100.0)
    p = h.position()
    assert (p.trail_active, p.trail_level, p.trail_peak) == (False, None, None)
    h.quote("BTCUSDT", 100.9)  # +0.9 %: not yet
    assert h.position().trail_active is False
    assert store.events("trailing") == []
    h.quote("BTCUSDT", 101.0)  # +1 %: arms, the arming quote is the peak
    armed_at = h.clock.now()
    p = h.position()
    assert p.trail_active is True
    assert p.trail_peak == 101.0
    assert p.trail_level == pytest.approx(101.0 * 0.995)
    assert p.trail_updated_at == armed_at
    [ev] = store.events("trailing")
    assert ev["ts"] == armed_at
    assert ev["payload"]["peak"] == 101.0
    assert ev["payload"]["level"] == pytest.approx(100.495)
    h.quote("BTCUSDT", 102.0)
    moved_at = h.clock.now()
    p = h.position()
    assert p.trail_peak == 102.0
    assert p.trail_level == pytest.approx(101.49)
    assert p.trail_updated_at == moved_at
    h.quote("BTCUSDT", 101.6)  # falls, above the level: the level never loosens
    p = h.position()
    assert (p.trail_peak, p.trail_updated_at) == (102.0, moved_at)
    assert p.trail_level == pytest.approx(101.49)
    h.quote("BTCUSDT", 101.5)
    assert h.position() is not None
    h.quote("BTCUSDT", 101.48)
    t = only_trade(h)
    assert (t.exit_reason, t.exit_price) == ("trailing_stop", 101.48)


def test_long_trailing_in_points_arms_at_activation_points():
    h = harness(trail_activation=2, trail_distance=1)
    h.quote("BTCUSDT", 100.0)
    h.quote("BTCUSDT", 101.99)
    assert h.position().trail_active is False
    h.quote("BTCUSDT", 102.0)
    p = h.position()
    assert (p.trail_active, p.trail_peak, p.trail_level) == (True, 102.0, 101.0)
    h.quote("BTCUSDT", 103.5)
    assert (h.position().trail_peak, h.position().trail_level) == (103.5, 102.5)
    h.quote("BTCUSDT", 102.51)
    assert h.position() is not None
    h.quote("BTCUSDT", 102.5)  # mark <= level triggers
    t = only_trade(h)
    assert (t.exit_reason, t.exit_price) == ("trailing_stop", 102.5)
    assert t.pnl == pytest.approx(2.5)


def test_trailing_with_activation_zero_is_armed_at_entry_from_the_entry_quote_mark():
    store = RecordingStore()
    h = harness(store, trail_distance="1%")  # trail_activation defaults to 0
    h.quote("BTCUSDT", 99.9, 100.1)  # fills at the ask 100.1, mark 100.0
    entered_at = h.clock.now()
    p = h.position()
    assert p.entry == 100.1
    assert p.trail_active is True
    assert p.trail_peak == 100.0  # the entry quote's mark, not the fill price
    assert p.trail_level == pytest.approx(99.0)
    assert p.trail_updated_at == entered_at
    [ev] = store.events("trailing")
    assert "armed at entry" in ev["message"]
    assert ev["payload"]["peak"] == 100.0


def test_trailing_points_armed_at_entry_triggers_on_the_first_pullback_of_the_distance():
    h = harness(trail_distance=0.5)
    h.quote("BTCUSDT", 100.0)
    assert h.position().trail_level == 99.5
    h.quote("BTCUSDT", 99.6)
    assert h.position().trail_level == 99.5  # no new peak, no change
    h.quote("BTCUSDT", 99.5)
    assert only_trade(h).exit_reason == "trailing_stop"


def test_short_trailing_in_percent_tracks_the_trough_and_triggers_above_the_level():
    h = harness(side="sell", trail_activation="1%", trail_distance="0.5%")
    h.quote("BTCUSDT", 100.0)
    h.quote("BTCUSDT", 99.1)
    assert h.position().trail_active is False
    h.quote("BTCUSDT", 99.0)  # 1 % in the short's favour
    p = h.position()
    assert (p.trail_active, p.trail_peak) == (True, 99.0)
    assert p.trail_level == pytest.approx(99.0 * 1.005)
    h.quote("BTCUSDT", 98.0)
    p = h.position()
    assert p.trail_peak == 98.0
    assert p.trail_level == pytest.approx(98.49)
    h.quote("BTCUSDT", 98.4)  # rises, below the level: the level stays at the trough's
    assert h.position().trail_level == pytest.approx(98.49)
    assert h.position().trail_peak == 98.0
    h.quote("BTCUSDT", 98.48)
    assert h.position() is not None
    h.quote("BTCUSDT", 98.5)
    t = only_trade(h)
    assert (t.exit_reason, t.exit_price) == ("trailing_stop", 98.5)  # bought back at the ask
    assert t.pnl == pytest.approx(1.5)


def test_short_trailing_in_points():
    h = harness(side="sell", trail_activation=2, trail_distance=1)
    h.quote("BTCUSDT", 100.0)
    h.quote("BTCUSDT", 98.0)
    p = h.position()
    assert (p.trail_active, p.trail_peak, p.trail_level) == (True, 98.0, 99.0)
    h.quote("BTCUSDT", 96.0)
    assert (h.position().trail_peak, h.position().trail_level) == (96.0, 97.0)
    h.quote("BTCUSDT", 96.99)
    assert h.position() is not None
    h.quote("BTCUSDT", 97.0)
    assert only_trade(h).exit_reason == "trailing_stop"


def test_every_trailing_level_change_is_committed_with_its_value_and_time():
    store = RecordingStore()
    h = harness(store, trail_distance=1)
    h.quote("BTCUSDT", 100.0)
    history = [(100.0 - 1, h.clock.now())]
    for px in (100.5, 100.2, 101.0, 100.9, 102.0):
        h.quote("BTCUSDT", px)
        if px - 1 > history[-1][0]:
            history.append((px - 1, h.clock.now()))
    assert history == [(99.0, T0 + 1), (99.5, T0 + 2), (100.0, T0 + 4), (101.0, T0 + 6)]
    committed = []
    for row in store.of("leg"):
        change = (row["trail_level"], row["trail_updated_at"])
        if not committed or committed[-1] != change:
            committed.append(change)
    assert committed == history


def test_trailing_coexists_with_the_fixed_stop_and_the_tighter_acts_first():
    h = harness(stop_loss=1, trail_activation=1, trail_distance=3)
    h.quote("BTCUSDT", 100.0)  # stop 99
    h.quote("BTCUSDT", 101.0)  # trail arms at 98 (looser than the stop)
    assert h.position().trail_level == 98.0
    h.quote("BTCUSDT", 99.0)
    assert only_trade(h).exit_reason == "stop_loss"

    h = harness(stop_loss=1, trail_activation=1, trail_distance=1)
    h.quote("BTCUSDT", 100.0)
    h.quote("BTCUSDT", 102.0)  # trail level 101 is tighter than the stop at 99
    h.quote("BTCUSDT", 101.0)
    assert only_trade(h).exit_reason == "trailing_stop"


# -- precedence on a gap ----------------------------------------------------------------------


def test_gap_through_stop_and_trailing_level_records_stop_loss():
    h = harness(stop_loss=1, trail_distance=0.5)
    h.quote("BTCUSDT", 100.0)  # stop 99, trail 99.5
    h.quote("BTCUSDT", 95.0)
    t = only_trade(h)
    assert (t.exit_reason, t.exit_price) == ("stop_loss", 95.0)
    assert len(h.engine.snapshot().trades) == 1  # a position exits at most once


def test_gap_through_stop_trailing_and_due_time_records_stop_loss():
    h = harness(stop_loss=1, trail_distance=0.5, time_exit_s=2)
    h.quote("BTCUSDT", 100.0)
    h.quote("BTCUSDT", 90.0, dt=3)  # time is due too
    assert only_trade(h).exit_reason == "stop_loss"


def test_trailing_and_target_on_one_quote_records_trailing_stop():
    # trigger_price = "last": the mark (mid) moves the peak, the last price trips both rules
    h = harness(trigger_price="last", target=2, trail_distance="1%")
    h.quote("BTCUSDT", 100.0, last=100.0)
    h.quote("BTCUSDT", 110.0, last=105.0)  # peak 110 -> level 108.9; last 105 <= level and >= target 102
    t = only_trade(h)
    assert t.exit_reason == "trailing_stop"
    assert t.exit_price == 110.0  # market exit at the bid


def test_target_and_due_time_on_one_quote_records_target():
    h = harness(target=2, time_exit_s=2)
    h.quote("BTCUSDT", 100.0)
    h.quote("BTCUSDT", 103.0, dt=5)
    assert only_trade(h).exit_reason == "target"


def test_trailing_and_due_time_on_one_quote_records_trailing_stop():
    h = harness(trail_distance=1, time_exit_s=2)
    h.quote("BTCUSDT", 100.0)
    h.quote("BTCUSDT", 98.0, dt=5)
    assert only_trade(h).exit_reason == "trailing_stop"


def test_exit_reason_precedence_when_every_rule_is_met():
    leg = Leg(1, Group(1, 1, "s", "X", "buy", 0.0, SinglePlan()), "X", "buy", 1.0, 100.0, 0.0, 0.0)
    leg.stop, leg.target, leg.time_exit_at = 99.0, 90.0, 5.0  # crossed levels: all met at 95
    leg.trail_active, leg.trail_level = True, 98.0
    assert _exit_reason(leg, 95.0, 10.0) == "stop_loss"
    leg.stop = None
    assert _exit_reason(leg, 95.0, 10.0) == "trailing_stop"
    leg.trail_active = False
    assert _exit_reason(leg, 95.0, 10.0) == "target"
    leg.target = None
    assert _exit_reason(leg, 95.0, 10.0) == "time"
    assert _exit_reason(leg, 95.0, 4.9) is None


# -- trigger price ----------------------------------------------------------------------------


def test_mark_trigger_ignores_a_bid_through_the_stop_while_the_mid_is_above():
    h = harness(stop_loss=1)
    h.quote("BTCUSDT", 100.0)
    h.quote("BTCUSDT", 98.9, 99.5)  # mid 99.2 > stop 99
    assert h.position() is not None


def test_bid_ask_trigger_exits_a_long_on_the_bid():
    h = harness(stop_loss=1, trigger_price="bid_ask")
    h.quote("BTCUSDT", 100.0)
    h.quote("BTCUSDT", 99.01, 99.5)
    assert h.position() is not None
    h.quote("BTCUSDT", 98.9, 99.5)  # mid 99.2, bid 98.9 <= stop
    t = only_trade(h)
    assert (t.exit_reason, t.exit_price) == ("stop_loss", 98.9)


def test_bid_ask_trigger_exits_a_short_on_the_ask():
    h = harness(side="sell", stop_loss=1, trigger_price="bid_ask")
    h.quote("BTCUSDT", 100.0)
    h.quote("BTCUSDT", 100.5, 100.99)
    assert h.position() is not None
    h.quote("BTCUSDT", 100.5, 101.1)  # mid 100.8 < stop 101, ask 101.1 >= stop
    t = only_trade(h)
    assert (t.exit_reason, t.exit_price) == ("stop_loss", 101.1)


def test_last_trigger_uses_the_last_trade():
    h = harness(stop_loss=1, trigger_price="last")
    h.quote("BTCUSDT", 100.0, last=100.0)
    h.quote("BTCUSDT", 99.5, 100.5, last=99.0)  # mid 100, last at the stop
    assert only_trade(h).exit_reason == "stop_loss"


# -- time exits -------------------------------------------------------------------------------


def test_time_exit_fires_from_the_engine_tick_without_a_new_quote():
    h = harness(time_exit_s=3)
    h.quote("BTCUSDT", 99.9, 100.1)
    assert h.position().time_exit_at == T0 + 1 + 3
    h.clock.advance(2.9)
    h.engine.tick()
    assert h.position() is not None
    h.clock.advance(0.1)  # exactly at time_exit_at; the quote is 3 s old, still fresh
    h.engine.tick()
    t = only_trade(h)
    assert t.exit_reason == "time"
    assert t.exit_price == 99.9
    assert t.exit_ts == T0 + 4


def test_time_exit_waits_for_a_fresh_quote():
    h = harness(time_exit_s=3)
    h.quote("BTCUSDT", 100.0)
    h.clock.advance(6)  # the last quote is now 6 s old (> 5)
    h.engine.tick()
    assert h.position() is not None
    assert h.position().status == "STALE"
    h.quote("BTCUSDT", 100.5)
    assert only_trade(h).exit_reason == "time"


# -- stale quotes -----------------------------------------------------------------------------


def test_a_stale_quote_triggers_no_exit_and_does_not_move_the_mark_or_the_trail():
    h = harness(stop_loss=1, target=1, trail_distance=0.5)
    h.quote("BTCUSDT", 100.0)
    before = h.position()
    h.clock.advance(10)  # newer than the last quote, but 6 s old when it arrives
    h.engine.on_quote(Quote("BTCUSDT", h.clock.now() - 6, 90.0, 90.0))  # through the stop
    p = h.position()
    assert p is not None
    assert (p.mark, p.trail_peak, p.trail_level) == (before.mark, before.trail_peak, before.trail_level)
    assert p.status == "STALE"
    h.clock.advance(1)
    h.engine.on_quote(Quote("BTCUSDT", h.clock.now() - 5.5, 120.0, 120.0))  # through the target
    assert h.position() is not None
    assert h.engine.snapshot().trades == ()
    h.quote("BTCUSDT", 99.0)  # fresh again: the stop acts
    assert only_trade(h).exit_reason == "stop_loss"


def test_an_out_of_order_quote_never_replaces_a_newer_one():
    h = harness(stop_loss=1, target=1)
    h.quote("BTCUSDT", 100.0)
    h.quote("BTCUSDT", 100.5)
    newest = h.engine.book.get("BTCUSDT")
    h.engine.on_quote(Quote("BTCUSDT", newest.ts - 0.5, 90.0, 90.0))  # late, and through the stop
    assert h.engine.book.get("BTCUSDT") is newest
    p = h.position()
    assert p is not None and p.mark == 100.5


def test_a_quote_exactly_max_age_old_still_counts():
    h = harness(stop_loss=1)
    h.quote("BTCUSDT", 100.0)
    h.clock.advance(10)
    h.engine.on_quote(Quote("BTCUSDT", h.clock.now() - 5.0, 99.0, 99.0))
    assert only_trade(h).exit_reason == "stop_loss"


def test_a_trailing_move_is_committed_before_a_snapshot_shows_it_and_within_a_tick():
    store = RecordingStore()
    h = harness(store=store, trail_distance="1%")
    h.quote("BTCUSDT", 100.0)  # armed at entry, level 99
    h.quote("BTCUSDT", 102.0, dt=0.01)  # level 100.98; the tick is not due yet
    committed_levels = [r["trail_level"] for r in store.of("leg")]
    assert committed_levels[-1] == pytest.approx(99.0)  # not yet: no commit per quote
    assert h.position().trail_level == pytest.approx(100.98)  # the snapshot committed it first...
    assert store.of("leg")[-1]["trail_level"] == pytest.approx(100.98)  # ...as this shows
    h.quote("BTCUSDT", 103.0, dt=0.01)
    h.clock.advance(h.engine.config.engine.tick_interval_s)
    h.engine.tick()
    assert store.of("leg")[-1]["trail_level"] == pytest.approx(101.97)  # the tick committed it


def test_triggers_give_each_armed_level_and_its_distance_for_long_and_short():
    h = Harness(make_config({
        "long": strat(stop_loss="1%", target="2%", trail_activation="1%", trail_distance="0.5%", time_exit_s=60),
        "short": strat(symbols=["ETHUSDT"], side="sell", stop_loss=2, trail_distance=1),
    }))
    h.quote("BTCUSDT", 100.0)
    h.quote("ETHUSDT", 50.0, dt=0)
    snap = h.engine.snapshot()
    got = {(t.symbol, t.kind): (t.level, t.distance) for t in snap.triggers()}
    assert got == {
        ("BTCUSDT", "stop_loss"): (pytest.approx(99.0), pytest.approx(1.0)),
        ("BTCUSDT", "target"): (pytest.approx(102.0), pytest.approx(2.0)),
        ("BTCUSDT", "trail_arms"): (pytest.approx(101.0), pytest.approx(1.0)),
        ("BTCUSDT", "time"): (T0 + 61, 60.0),  # entered at T0 + 1; snapshot at T0 + 1
        ("ETHUSDT", "stop_loss"): (52.0, 2.0),  # a short's stop is above
        ("ETHUSDT", "trailing_stop"): (51.0, 1.0),  # armed at entry: trough 50 + 1
    }
