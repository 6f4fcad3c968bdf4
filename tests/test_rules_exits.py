"""A leg's exit rules on their own (DESIGN §3 Stop-loss / target, Trailing stop, Evaluation
order, trigger_price): which rule a price meets and in what precedence, the price the rules
compare, where a trailing stop stands and how a mark moves it (and that the engine's inlined
copy moves it the same way), what a close or a partial close realizes, and the levels a leg
takes at entry."""

from __future__ import annotations

import pytest

from services.domain import Leg
from services.market import Quote
from services.rules.distance import Distance
from services.rules.exits import (
    apply_entry_levels, close_pnl, exit_reason, reduce_pnl, trail_level, trail_step, trigger_px)
from tests.conftest import T0, Harness
from tests.engine_support import make_config, strat


def leg(side: str = "buy", qty: float = 4.0, entry: float = 100.0, entry_fee: float = 0.8, trigger: str = "mark") -> Leg:
    return Leg(1, None, "BTCUSDT", side, qty, entry, entry_fee, T0, trigger=trigger)  # type: ignore[arg-type]


def levels(side: str, stop: float, target: float, time_exit_at: float | None = None) -> Leg:
    lg = leg(side)
    lg.stop, lg.target, lg.time_exit_at = stop, target, time_exit_at
    return lg


@pytest.mark.parametrize(("side", "stop", "target"), [("buy", 95.0, 110.0), ("sell", 105.0, 90.0)])
def test_a_level_acts_on_reaching_it_not_only_past_it(side, stop, target):
    lg = levels(side, stop, target)
    assert exit_reason(lg, stop, T0) == "stop_loss"
    assert exit_reason(lg, target, T0) == "target"
    assert exit_reason(lg, 100.0, T0) is None


@pytest.mark.parametrize(("side", "near_stop", "near_target"), [("buy", 95.5, 109.5), ("sell", 104.5, 90.5)])
def test_a_price_short_of_a_level_does_not_act(side, near_stop, near_target):
    lg = levels(side, 95.0 if side == "buy" else 105.0, 110.0 if side == "buy" else 90.0)
    assert exit_reason(lg, near_stop, T0) is None
    assert exit_reason(lg, near_target, T0) is None


@pytest.mark.parametrize(("side", "level", "short_of_it", "stop"), [("buy", 97.0, 97.5, 95.0), ("sell", 103.0, 102.5, 105.0)])
def test_an_armed_trailing_stop_acts_on_reaching_its_level_after_the_stop(side, level, short_of_it, stop):
    lg = levels(side, stop, 200.0 if side == "buy" else 1.0)
    lg.trail_active, lg.trail_level = True, level
    assert exit_reason(lg, short_of_it, T0) is None
    assert exit_reason(lg, level, T0) == "trailing_stop"
    assert exit_reason(lg, stop, T0) == "stop_loss"


def test_the_time_exit_acts_at_its_instant():
    lg = levels("buy", 95.0, 110.0, time_exit_at=T0 + 60)
    assert exit_reason(lg, 100.0, T0 + 59.9) is None
    assert exit_reason(lg, 100.0, T0 + 60) == "time"
    assert exit_reason(lg, 95.0, T0 + 60) == "stop_loss"  # the stop comes first on the same quote


QUOTE = Quote("BTCUSDT", T0, 99.0, 101.0, 100.4)


@pytest.mark.parametrize(("side", "trigger", "quote", "price"), [
    ("buy", "mark", QUOTE, 100.0), ("sell", "mark", QUOTE, 100.0),
    ("buy", "bid_ask", QUOTE, 99.0), ("sell", "bid_ask", QUOTE, 101.0),  # a long exits on the bid, a short on the ask
    ("buy", "last", QUOTE, 100.4), ("buy", "last", QUOTE._replace(last=0.0), 100.0),  # no last: the mark
])
def test_the_price_the_rules_compare(side, trigger, quote, price):
    assert trigger_px(leg(side, trigger=trigger), quote) == price


@pytest.mark.parametrize(("side", "realized"), [("buy", 20.0 - 0.4 - 0.22), ("sell", -20.0 - 0.4 - 0.22)])
def test_a_partial_close_takes_its_share_of_the_entry_fee(side, realized):
    # 2 of 4 closed 10 above the entry: half the 0.8 entry fee goes with them, and the close's own fee
    assert reduce_pnl(leg(side), 2.0, 110.0, 0.22) == (pytest.approx(realized), pytest.approx(0.4))


def test_a_closed_leg_realizes_its_move_less_both_fees():
    lg = leg("sell")
    lg.exit_price, lg.exit_fee = 90.0, 0.36
    assert close_pnl(lg) == pytest.approx(40.0 - 0.8 - 0.36)


def strategy(**kw):
    return make_config({"s": strat(**kw)}).strategies["s"]


def test_the_levels_a_leg_takes_at_entry():
    lg = leg("sell")
    apply_entry_levels(lg, strategy(side="sell", stop_loss="2%", target=5, time_exit_s=3600), T0)
    assert (lg.stop, lg.target, lg.time_exit_at) == (102.0, 95.0, T0 + 3600)


def test_a_trailing_stop_without_activation_arms_at_entry_and_one_with_it_waits():
    at_once = leg()
    apply_entry_levels(at_once, strategy(trail_distance="2%"), T0)
    assert (at_once.trail_active, at_once.trail_peak, at_once.trail_level) == (True, 100.0, 98.0)
    waiting = leg()
    apply_entry_levels(waiting, strategy(trail_distance="2%", trail_activation="1%"), T0)
    assert (waiting.trail_active, waiting.trail_act_amount, waiting.trail_level) == (False, 1.0, None)


@pytest.mark.parametrize(("time_exit_s", "exit_after_s", "exit_at"), [
    (None, 1800, T0 + 1800), (3600, 1800, T0 + 1800), (3600, 7200, T0 + 3600),  # the sooner of the two
])
def test_the_schedules_planned_exit_applies_when_it_comes_first(time_exit_s, exit_after_s, exit_at):
    lg = leg()
    schedule = {"entry_times": ["00:00"], "exit_after_s": exit_after_s}
    apply_entry_levels(lg, strategy(time_exit_s=time_exit_s, schedule=schedule), T0)
    assert lg.time_exit_at == exit_at


# -- the trailing stop's level and its steps ---------------------------------------------------------

PCT, POINTS = Distance(0.02, "pct"), Distance(1.5, "points")


@pytest.mark.parametrize(("distance", "d", "extreme", "level"), [
    (PCT, 1, 100.0, 98.0), (PCT, -1, 100.0, 102.0),  # 2 % behind a peak, above a trough
    (POINTS, 1, 100.0, 98.5), (POINTS, -1, 100.0, 101.5),
])
def test_the_trailing_level_stands_its_distance_behind_the_extreme(distance, d, extreme, level):
    assert trail_level(distance, d, extreme) == pytest.approx(level)


@pytest.mark.parametrize(("d", "beyond", "short_of_it"), [(1, 101.0, 99.0), (-1, 99.0, 101.0)])
def test_a_mark_beyond_the_peak_moves_it_and_the_level_with_it(d, beyond, short_of_it):
    level = trail_level(POINTS, d, 100.0)
    assert trail_step(POINTS, d, 100.0, level, beyond) == (beyond, pytest.approx(trail_level(POINTS, d, beyond)))
    assert trail_step(POINTS, d, 100.0, level, short_of_it) == (100.0, level)  # against the trade: nothing moves


@pytest.mark.parametrize("d", [1, -1])
def test_a_mark_at_the_peak_moves_nothing(d):
    # a level left looser than its peak's (restored, or behind a distance since narrowed): only a new peak tightens it
    loose = 100.0 - 5.0 * d
    assert trail_step(POINTS, d, 100.0, loose, 100.0) == (100.0, loose)


@pytest.mark.parametrize("d", [1, -1])
def test_a_level_never_loosens_when_the_peak_moves_under_a_wider_distance(d):
    tight = 100.0 - 1.0 * d  # 1 point behind the peak; the distance has since been widened to 1.5
    assert trail_step(POINTS, d, 100.0, tight, 100.0 + 0.4 * d) == (100.0 + 0.4 * d, tight)  # candidate 1.1 behind
    peak, level = trail_step(POINTS, d, 100.0, tight, 100.0 + 0.6 * d)  # candidate 0.9 behind: tighter
    assert (peak, level) == (100.0 + 0.6 * d, pytest.approx(100.0 - 0.9 * d))


@pytest.mark.parametrize(("side", "path"), [
    ("buy", [100.5, 100.5, 100.2, 101.0, 101.3, 100.9, 102.0]),
    ("sell", [99.5, 99.5, 99.8, 99.0, 98.7, 99.1, 98.0]),
])
def test_the_engines_inlined_trailing_update_takes_the_same_steps_as_the_rule(side, path):
    """services.engine.exits.mark_and_check inlines trail_step for speed: on the same marks, and
    across an edit that widens the distance, the two agree on the peak and the level."""
    h = Harness(make_config({"s": strat(side=side, trail_distance="1%", reentry=False)}))
    h.quote("BTCUSDT", 100.0)  # enters, armed at the entry quote's mark
    d = 1 if side == "buy" else -1
    distance, peak, level = Distance(0.01, "pct"), 100.0, trail_level(Distance(0.01, "pct"), d, 100.0)
    for i, mark in enumerate(path):
        if i == 3:  # widened: the level stays until the peak has gone far enough
            [group] = h.engine.snapshot().groups
            assert h.engine.edit_levels(group.id, trail_distance="1.5%", confirm=True).ok
            distance = Distance(0.015, "pct")
        h.quote("BTCUSDT", mark)
        peak, level = trail_step(distance, d, peak, level, mark)
        p = h.position()
        assert (p.trail_peak, p.trail_level) == (peak, pytest.approx(level)), i
