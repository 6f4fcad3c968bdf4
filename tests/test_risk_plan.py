"""The risk engine's arithmetic (DESIGN §3 Risk engine): a loser's loss %, its eligibility
(each condition and each timer start), and the offset plan that has winners pay for it
(partial closes in whole lot steps, ordering, the winners cap, fees, shorts, ties)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.config import RiskEngineConfig
from services.rules.risk_plan import Close, Leg, Position, eligibility, offset_plan, summary
from tests.conftest import T0


def pos(group_id: int, mark: float, *legs: Leg, side: str = "buy", symbol: str = "ETHUSDT", **kw) -> Position:
    return Position(group_id, "s", symbol, side, legs or (Leg(1, 1.0, 100.0, 0.0),), mark, T0 - 3600, **kw)


def cfg(**kw) -> RiskEngineConfig:
    return RiskEngineConfig.model_validate({"loss_threshold_pct": 2, **kw})


def loser(group_id: int = 4, loss: float = 10.0, **kw) -> Position:
    """1 BTCUSDT bought at 100, marked `loss` lower."""
    return pos(group_id, 100.0 - loss, Leg(1, 1.0, 100.0, 0.0), symbol="BTCUSDT", **kw)


def winner(group_id: int, qty: float, gain: float, *, entry: float = 50.0, symbol: str = "ETHUSDT", **kw) -> Position:
    """One leg of `qty` at `entry`, marked `gain` higher."""
    return pos(group_id, entry + gain, Leg(group_id * 10, qty, entry, 0.0), symbol=symbol, **kw)


def closes(items: tuple[Close, ...]) -> list[tuple]:
    return [(c.group_id, c.leg_id, pytest.approx(c.qty), pytest.approx(c.expected_realized)) for c in items]


# -- loss ---------------------------------------------------------------------------------------


def test_loss_pct_is_the_unrealized_loss_net_of_entry_fees_over_cost():
    p = pos(1, 92.0, Leg(1, 1.0, 100.0, 0.2), Leg(2, 1.0, 90.0, 0.2))
    assert p.unrealized == pytest.approx(-8.0 + 2.0 - 0.4)
    assert p.loss_pct == pytest.approx(6.4 / 190 * 100)


def test_a_short_loses_when_the_mark_rises_and_a_winner_has_no_loss_pct():
    assert pos(1, 110.0, side="sell").loss_pct == pytest.approx(10.0)
    assert pos(1, 90.0, side="sell").loss_pct == 0.0


@pytest.mark.parametrize(("mark", "loss_pct", "text"), [
    (100.0, 0.0, "loss 0.00% < 2.00%"),  # break-even: no loss, and not a "-0.00%" one
    (100.5, 0.0, "loss 0.00% < 2.00%"),  # any profit, however small, is no loss
    (99.5, 0.5, "loss 0.50% < 2.00%"),  # any loss, however small, counts
])
def test_loss_pct_at_and_near_break_even(mark, loss_pct, text):
    p = pos(1, mark)
    assert p.loss_pct == pytest.approx(loss_pct)
    assert texts(p, cfg())["loss"] == (False, text)


# -- offset plan ----------------------------------------------------------------------------------


def test_one_winner_covers_with_a_partial_close_rounded_up_to_the_lot_step():
    book = [loser(), winner(7, 10.0, 3.0, lot_step=0.5), pos(8, 100.0)]  # the loser and a flat group take no part
    plan = offset_plan(loser(), book, cfg(), fee_rate=0.0)
    assert plan.required == pytest.approx(10.0)
    assert closes(plan.steps) == closes((Close(7, "ETHUSDT", 70, 3.5, 10.5),))  # 10/3 = 3.33 -> 3.5
    assert (plan.loser.group_id, plan.loser.qty, plan.loser.expected_realized) == (4, 1.0, pytest.approx(-10.0))
    assert plan.covers and plan.shortfall == 0.0
    assert plan.covered == pytest.approx(10.5)
    assert plan.notes == ()
    assert summary(plan) == "close 3.5 ETHUSDT of #7 (+10.50) to cover #4's -10.00; covered +10.50"


def several() -> list[Position]:
    """Three winners: #5 +20 (2 a unit), #9 +15 (3 a unit), #3 +8 (2 a unit)."""
    return [winner(3, 4.0, 2.0, entry=20.0, symbol="ACME"), winner(5, 10.0, 2.0),
            winner(9, 5.0, 3.0, entry=10.0, symbol="SOLUSDT", lot_step=0.1)]


def test_several_winners_are_taken_biggest_profit_first():
    plan = offset_plan(loser(loss=30.0), several(), cfg(), fee_rate=0.0)
    assert closes(plan.winners) == closes((Close(5, "ETHUSDT", None, 10.0, 20.0), Close(9, "SOLUSDT", None, 3.4, 10.2)))
    assert plan.covers and plan.covered == pytest.approx(30.2)
    assert summary(plan) == ("close 10 ETHUSDT of #5 (+20.00) and 3.4 SOLUSDT of #9 (+10.20) "
                             "to cover #4's -30.00; covered +30.20")


def test_the_winners_cap_leaves_a_shortfall_the_next_winner_would_have_covered():
    capped = offset_plan(loser(loss=40.0), several(), cfg(max_winners_to_combine=2), fee_rate=0.0)
    assert [w.group_id for w in capped.winners] == [5, 9]
    assert not capped.covers
    assert (capped.covered, capped.shortfall) == (pytest.approx(35.0), pytest.approx(5.0))
    assert summary(capped) == "not covered: winners give +35.00 of 40.00 needed (max_winners_to_combine 2)"
    assert offset_plan(loser(loss=40.0), several(), cfg(max_winners_to_combine=3), fee_rate=0.0).covers


def test_running_out_of_winners_says_so():
    plan = offset_plan(loser(loss=50.0), several(), cfg(max_winners_to_combine=5), fee_rate=0.0)
    assert plan.shortfall == pytest.approx(7.0)
    assert summary(plan) == "not covered: winners give +43.00 of 50.00 needed (no other winner to take from)"


def test_step_rounding_leaves_a_remainder_that_is_not_a_whole_step_open():
    w = pos(7, 53.0, Leg(1, 1.25, 50.0, 0.0), Leg(2, 0.3, 50.0, 0.0), lot_step=0.5)
    plan = offset_plan(loser(), [w], cfg(), fee_rate=0.0)
    assert closes(plan.steps) == closes((Close(7, "ETHUSDT", 1, 1.0, 3.0),))
    assert plan.notes == ("#7 leg 1: 0.25 ETHUSDT stays open (less than a lot step of 0.5)",
                          "#7 leg 2: 0.3 ETHUSDT stays open (less than a lot step of 0.5)")
    assert plan.shortfall == pytest.approx(7.0)


def test_a_winners_most_profitable_legs_go_first_and_its_losing_legs_are_skipped():
    w = pos(7, 50.0, Leg(1, 1.0, 40.0, 0.0), Leg(2, 1.0, 55.0, 0.0), Leg(3, 1.0, 45.0, 0.0),
            Leg(4, 1.0, 50.0, 0.0))  # +10, -5, +5, 0
    partial = offset_plan(loser(loss=12.0), [w], cfg(), fee_rate=0.0)
    assert closes(partial.steps) == closes((Close(7, "ETHUSDT", 1, 1.0, 10.0), Close(7, "ETHUSDT", 3, 0.4, 2.0)))
    short = offset_plan(loser(loss=20.0), [w], cfg(), fee_rate=0.0)
    assert [s.leg_id for s in short.steps] == [1, 3]
    assert short.shortfall == pytest.approx(5.0)


def test_a_short_loser_is_covered_by_a_short_winner():
    short_loser = pos(2, 110.0, Leg(1, 1.0, 100.0, 0.0), side="sell", symbol="BTCUSDT")
    short_winner = pos(3, 45.0, Leg(1, 4.0, 50.0, 0.0), side="sell", lot_step=1.0)
    plan = offset_plan(short_loser, [short_winner], cfg(), fee_rate=0.0)
    assert plan.required == pytest.approx(10.0)
    assert closes(plan.steps) == closes((Close(3, "ETHUSDT", 1, 2.0, 10.0),))
    assert plan.covers


def test_entry_and_exit_fees_count_on_both_sides():
    fee_loser = pos(4, 90.0, Leg(1, 1.0, 100.0, 0.1), symbol="BTCUSDT")
    fee_winner = pos(7, 53.0, Leg(1, 10.0, 50.0, 0.5), lot_step=0.1)
    plan = offset_plan(fee_loser, [fee_winner], cfg(), fee_rate=0.001)
    assert plan.required == pytest.approx(10.1 + 0.09)  # its loss with the entry fee, plus its exit fee
    assert plan.loser.expected_realized == pytest.approx(-10.19)
    per_unit = 3.0 - 0.05 - 0.053  # profit, entry fee share, exit fee
    assert closes(plan.steps) == closes((Close(7, "ETHUSDT", 1, 3.6, 3.6 * per_unit),))  # 10.19 / 2.897 = 3.52 -> 3.6
    assert plan.covers


def test_a_winner_whose_profit_the_exit_fee_eats_does_not_use_up_the_cap():
    eaten = pos(2, 100.5, Leg(1, 100.0, 100.0, 0.0))  # +50, but 0.5 a unit less 1.005 exit fee
    plan = offset_plan(loser(), [eaten, winner(3, 10.0, 3.0, lot_step=0.5)], cfg(max_winners_to_combine=1), 0.01)
    assert [s.group_id for s in plan.steps] == [3]
    assert plan.covers


def test_equal_winners_are_taken_in_group_id_order():
    plan = offset_plan(loser(loss=2.0), [winner(8, 2.0, 3.0), winner(6, 2.0, 3.0)], cfg(), fee_rate=0.0)
    assert [s.group_id for s in plan.steps] == [6]


def test_only_groups_in_profit_are_winners_even_when_one_of_their_legs_is():
    # each has a leg 4 up; the others take the group to -0.5 and to 0 net
    net_loss = pos(5, 54.0, Leg(1, 1.0, 50.0, 0.0), Leg(2, 1.0, 58.5, 0.0))
    flat = pos(6, 54.0, Leg(1, 1.0, 50.0, 0.0), Leg(2, 1.0, 58.0, 0.0))
    assert (net_loss.unrealized, flat.unrealized) == (-0.5, 0.0)
    assert offset_plan(loser(loss=2.0), [net_loss, flat], cfg(), fee_rate=0.0).steps == ()
    small = winner(7, 1.0, 0.5, lot_step=1.0)  # +0.5: little, but a winner
    plan = offset_plan(loser(loss=0.4), [net_loss, flat, small], cfg(), fee_rate=0.0)
    assert closes(plan.steps) == closes((Close(7, "ETHUSDT", 70, 1.0, 0.5),))
    assert plan.covers


def test_the_losers_exit_fee_is_on_its_whole_quantity():
    two = pos(4, 90.0, Leg(1, 2.0, 100.0, 0.0), symbol="BTCUSDT")
    plan = offset_plan(two, [winner(7, 100.0, 1.0)], cfg(), fee_rate=0.001)
    assert plan.required == pytest.approx(20.0 + 2 * 90.0 * 0.001)


def test_a_loser_its_fees_do_not_sink_needs_no_winner():
    plan = offset_plan(loser(loss=-1.0), [winner(7, 1.0, 3.0)], cfg(), fee_rate=0.0)
    assert plan.covers and plan.steps == ()
    assert summary(plan) == "#4 closes without a winner: nothing to cover"


# -- eligibility ----------------------------------------------------------------------------------

STRICT = cfg(require_max_pyramids=True, timer_start="after_all_dca_filled", timer_s=300, min_age_s=600)


def stuck(opened_at: float = T0 - 720, **kw) -> Position:
    """Down 3.2%, every pyramid used, its layers filled 400s ago, 12 minutes old."""
    base = {"pyramids": 3, "max_pyramids": 3, "dca_filled_at": T0 - 400, "layers_total": 4, "layers_submitted": 4,
            "layers_filled": 4}
    return replace(loser(loss=3.2, **{**base, **kw}), opened_at=opened_at)


def texts(p: Position, config: RiskEngineConfig = STRICT) -> dict[str, tuple[bool, str]]:
    return {c.name: (c.passed, c.text) for c in eligibility(p, config, T0).checks}


def test_a_stuck_loser_meeting_every_condition_is_eligible():
    e = eligibility(stuck(), STRICT, T0)
    assert e.eligible and e.timer_remaining == 0.0
    assert [c.text for c in e.checks] == ["loss 3.20% >= 2.00%", "pyramids 3/3: all used",
                                          "timer: 5m00s since every DCA layer filled", "age 12m00s >= 10m00s",
                                          "not blocked", "not skipped"]


def test_a_loser_exactly_at_the_loss_threshold_and_the_minimum_age_is_eligible():
    assert eligibility(replace(stuck(), mark=98.0, opened_at=T0 - 600), STRICT, T0).eligible


@pytest.mark.parametrize(("change", "name", "text"), [
    ({"mark": 98.5}, "loss", "loss 1.50% < 2.00%"),
    ({"pyramids": 2}, "pyramids", "pyramids 2/3: not all used"),
    ({"dca_filled_at": T0 - 50}, "timer", "timer: 4m10s left (started when every DCA layer filled)"),
    ({"opened_at": T0 - 300}, "age", "age 5m00s < 10m00s"),
    ({"blocked": True}, "blocked", "blocked by the operator"),
    ({"skipped": True}, "skipped", "skipped once by the operator"),
])
def test_each_condition_failing_alone_makes_it_ineligible_and_says_why(change, name, text):
    p = replace(stuck(), **change)
    e = eligibility(p, STRICT, T0)
    assert not e.eligible
    assert [(c.name, c.text) for c in e.checks if not c.passed] == [(name, text)]


def test_pyramids_and_age_pass_when_not_required():
    lenient = cfg(timer_start="after_all_dca_filled")
    checks = texts(stuck(pyramids=0, opened_at=T0 - 5), lenient)
    assert checks["pyramids"] == (True, "pyramids 0/3 (not required)")
    assert checks["age"] == (True, "age 5s (no minimum)")


TIMER_STARTS = [
    ("after_5_pyramids", "fifth_pyramid_at", "2 of 5 pyramids", "the fifth pyramid"),
    ("after_all_dca_submitted", "dca_submitted_at", "3 of 5 layers placed", "every DCA layer was placed"),
    ("after_all_dca_filled", "dca_filled_at", "3 of 5 layers filled", "every DCA layer filled"),
]


def timed(start_field: str, started: float | None) -> Position:
    """The other two start fields long past, so only the configured one can matter."""
    long_ago = {"fifth_pyramid_at": T0 - 9999, "dca_submitted_at": T0 - 9999, "dca_filled_at": T0 - 9999}
    return stuck(pyramids=2, max_pyramids=5, layers_total=5, layers_submitted=3, layers_filled=3,
                 **{**long_ago, start_field: started})


@pytest.mark.parametrize(("start", "field", "progress", "since"), TIMER_STARTS)
def test_each_timer_start_condition_not_started_running_and_elapsed(start, field, progress, since):
    config = cfg(timer_start=start, timer_s=300)
    not_started = eligibility(timed(field, None), config, T0)
    assert not not_started.eligible and not_started.timer_remaining is None
    assert texts(timed(field, None), config)["timer"] == (False, f"timer not started: {progress}")
    running = eligibility(timed(field, T0 - 50), config, T0)
    assert not running.eligible and running.timer_remaining == 250.0
    assert texts(timed(field, T0 - 50), config)["timer"] == (False, f"timer: 4m10s left (started when {since})")
    elapsed = eligibility(timed(field, T0 - 300), config, T0)
    assert elapsed.eligible and elapsed.timer_remaining == 0.0
    assert texts(timed(field, T0 - 300), config)["timer"] == (True, f"timer: 5m00s since {since}")


def test_a_fifth_pyramid_timer_says_when_the_strategy_can_never_reach_it():
    p = stuck(pyramids=3, max_pyramids=3)
    assert texts(p, cfg(timer_start="after_5_pyramids"))["timer"] == (
        False, "timer not started: 3 of 5 pyramids (max_pyramids is 3, so it never starts)")
    assert texts(stuck(pyramids=3, max_pyramids=4), cfg(timer_start="after_5_pyramids"))["timer"] == (
        False, "timer not started: 3 of 5 pyramids (max_pyramids is 4, so it never starts)")
    assert texts(stuck(pyramids=3, max_pyramids=5), cfg(timer_start="after_5_pyramids"))["timer"] == (
        False, "timer not started: 3 of 5 pyramids")


def test_the_timer_runs_until_its_last_fraction_of_a_second():
    e = eligibility(stuck(dca_filled_at=T0 - 299.5), STRICT, T0)
    assert not e.eligible and e.timer_remaining == 0.5
    assert texts(stuck(dca_filled_at=T0 - 299.5))["timer"] == (False, "timer: 1s left (started when every DCA layer filled)")


@pytest.mark.parametrize(("age", "text"), [
    (0, "0s"), (59, "59s"), (60, "1m00s"), (3599, "59m59s"), (3600, "1h00m"), (7380, "2h03m"),
    (-5, "0s"),  # stamped after now (a clock that stepped back): never a negative duration
])
def test_durations_read_in_seconds_then_minutes_then_hours(age, text):
    lenient = cfg(timer_start="after_all_dca_filled")
    assert texts(stuck(opened_at=T0 - age), lenient)["age"] == (True, f"age {text} (no minimum)")


def test_a_position_that_is_not_a_grid_times_from_its_entry():
    p = replace(stuck(), layers_total=0, layers_submitted=0, layers_filled=0)
    assert texts(p, cfg(timer_s=300))["timer"] == (True, "timer: 5m00s since it entered")
