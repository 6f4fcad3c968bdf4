"""A position's exit levels (services.rules.levels): each check at its boundaries (exactly 0,
exactly 100 %, exactly at the mark, the time-exit horizon), the edit that applies them to a
leg, and the form parser and the settings that use the same checks."""

from __future__ import annotations

import math

import pytest

from services.config import StrategyConfig
from services.domain import Group, Leg
from services.plans import SinglePlan
from services.level_input import parse_activation, parse_price, parse_time_exit, parse_trail
from services.rules.bounds import MAX_SECONDS
from services.rules.distance import Distance
from services.rules.levels import (
    EDITABLE, KEEP, LEVEL_LABELS, TIME_EXIT_HORIZON_S, activation_distance, edit_errors, fmt_level, level_problem,
    level_value, price_problem, trail_distance_problem, within_horizon,
)
from tests.conftest import T0

ABOVE_0 = "must be above 0"
BELOW_100 = "must be below 100%"


def leg(side: str = "buy", mark: float = 100.0, **levels) -> Leg:
    """One leg entered at 100 and marked at `mark`, with `levels` set on it."""
    group = Group(1, 1, "s", "BTCUSDT", side, T0, SinglePlan())
    out = Leg(1, group, "BTCUSDT", side, 1.0, 100.0, 0.0, T0)
    out.mark = mark
    for name, value in levels.items():
        setattr(out, name, value)
    return out


# -- positivity ---------------------------------------------------------------------------------

@pytest.mark.parametrize("price", [0.0, -0.0, -1.0, math.inf, math.nan])
def test_a_price_must_be_finite_and_above_0(price):
    assert price_problem(price) == "must be a positive price"


@pytest.mark.parametrize("price", [1e-12, 0.5, 1e9])
def test_any_finite_price_above_0_is_a_price(price):
    assert price_problem(price) is None


# -- side of the mark ---------------------------------------------------------------------------

def test_a_stop_or_target_exactly_at_the_mark_is_on_the_wrong_side():
    assert level_problem("stop", 100.0, 100.0, 1) == ("stop 100.00 is on the wrong side: a long's stop must be "
                                                      "below the mark 100.00")
    assert level_problem("target", 100.0, 100.0, 1) == ("target 100.00 is on the wrong side: a long's target must "
                                                        "be above the mark 100.00")
    assert level_problem("stop", 100.0, 100.0, -1) == ("stop 100.00 is on the wrong side: a short's stop must be "
                                                       "above the mark 100.00")
    assert level_problem("target", 100.0, 100.0, -1) == ("target 100.00 is on the wrong side: a short's target "
                                                         "must be below the mark 100.00")


@pytest.mark.parametrize("name, d, price", [
    ("stop", 1, 99.99), ("target", 1, 100.01), ("stop", -1, 100.01), ("target", -1, 99.99),
])
def test_a_level_just_on_its_side_of_the_mark_is_accepted(name, d, price):
    assert level_problem(name, price, 100.0, d) is None


@pytest.mark.parametrize("name, d, price", [
    ("stop", 1, 100.01), ("target", 1, 99.99), ("stop", -1, 99.99), ("target", -1, 100.01),
])
def test_a_level_just_past_the_mark_is_refused(name, d, price):
    assert "is on the wrong side" in level_problem(name, price, 100.0, d)


def test_a_level_that_is_no_price_says_so_before_its_side():
    assert level_problem("stop", 0.0, 100.0, 1) == "stop must be a positive price"
    assert level_problem("target", -5.0, 100.0, -1) == "target must be a positive price"


# -- trailing distance --------------------------------------------------------------------------

@pytest.mark.parametrize("distance, problem", [
    (Distance(0.0, "points"), ABOVE_0),
    (Distance(0.0, "pct"), ABOVE_0),
    (Distance(math.nan, "points"), ABOVE_0),
    (Distance(1e-12, "points"), None),
    (Distance(1e-6, "pct"), None),
    (Distance(0.9999, "pct"), None),
    (Distance(1.0, "pct"), BELOW_100),
    (Distance(1.5, "pct"), BELOW_100),
    (Distance(1.0, "points"), None),  # 100 % bounds a percentage, not points
    (Distance(150.0, "points"), None),
])
def test_a_trailing_distance_is_above_0_and_as_a_percentage_below_100(distance, problem):
    assert trail_distance_problem(distance) == problem


# -- trailing activation ------------------------------------------------------------------------

def test_no_activation_is_0_armed_at_once():
    assert activation_distance(None) == Distance(0.0, "points")
    assert activation_distance(0) == Distance(0.0, "points")
    assert activation_distance("0.2%") == Distance(0.002, "pct")
    assert activation_distance(Distance(3.0, "points")) == Distance(3.0, "points")


@pytest.mark.parametrize("raw", ["-0.01", "-1%", "x", "nan", "inf", ""])
def test_an_activation_below_0_or_not_a_distance_is_refused(raw):
    with pytest.raises(ValueError):
        activation_distance(raw)


# -- time-exit horizon --------------------------------------------------------------------------

def test_the_horizon_is_the_year_the_settings_allow_a_time_exit():
    assert TIME_EXIT_HORIZON_S == MAX_SECONDS == 366 * 86_400


def test_a_time_exit_is_a_time_at_most_the_horizon_ahead():
    assert within_horizon(T0 + TIME_EXIT_HORIZON_S, T0)
    assert not within_horizon(T0 + TIME_EXIT_HORIZON_S + 1e-3, T0)
    assert within_horizon(T0, T0)  # now: exits at once
    assert within_horizon(1e-9, T0)  # past: exits at once
    assert not within_horizon(0.0, T0)
    assert not within_horizon(-1.0, T0)
    assert not within_horizon(math.nan, T0)


# -- the edit -----------------------------------------------------------------------------------

def test_an_edit_sets_what_it_names_and_keeps_the_rest():
    probe = leg(stop=90.0, target=110.0, time_exit_at=T0 + 60)
    assert edit_errors(probe, T0, stop=95.0) == []
    assert (probe.stop, probe.target, probe.time_exit_at, probe.trail_distance) == (95.0, 110.0, T0 + 60, None)
    assert edit_errors(probe, T0, target=None, time_exit_at=None) == []
    assert (probe.stop, probe.target, probe.time_exit_at) == (95.0, None, None)


def test_an_edit_says_what_is_wrong_one_line_per_field_and_leaves_those_levels():
    probe = leg(stop=90.0, target=110.0)
    errors = edit_errors(probe, T0, stop=100.0, target=0.0, trail_distance="100%", trail_activation="x",
                         time_exit_at=T0 + TIME_EXIT_HORIZON_S + 1)
    assert errors == [
        "stop 100.00 is on the wrong side: a long's stop must be below the mark 100.00",
        "target must be a positive price",
        "trailing activation: expected a percentage like \"0.5%\" or a number of points like 25, got 'x'",
        "trailing distance must be above 0 (and below 100%)",
        "time exit must be a time (epoch seconds) within the next year",
    ]
    assert (probe.stop, probe.target, probe.trail_distance, probe.time_exit_at) == (90.0, 110.0, None, None)


@pytest.mark.parametrize("value", ["0", "0%", 0.0])
def test_an_edit_refuses_a_trailing_distance_of_0(value):
    assert edit_errors(leg(), T0, trail_distance=value) == ["trailing distance must be above 0 (and below 100%)"]


def test_an_edit_accepts_a_time_exit_exactly_at_the_horizon():
    probe = leg()
    assert edit_errors(probe, T0, time_exit_at=T0 + TIME_EXIT_HORIZON_S) == []
    assert probe.time_exit_at == T0 + TIME_EXIT_HORIZON_S


def test_a_trail_added_without_an_activation_arms_at_the_mark():
    probe = leg(mark=104.0)
    assert edit_errors(probe, T0 + 5, trail_distance="1%") == []
    assert probe.trail_distance == Distance(0.01, "pct") and probe.trail_activation == Distance(0.0, "points")
    assert probe.trail_active and probe.trail_peak == 104.0
    assert probe.trail_level == pytest.approx(104.0 * 0.99) and probe.trail_updated_at == T0 + 5


def test_a_trail_with_an_activation_waits_for_it():
    probe = leg(mark=101.0)
    assert edit_errors(probe, T0, trail_distance="1%", trail_activation="2") == []
    assert probe.trail_act_amount == 2.0 and not probe.trail_active and probe.trail_level is None


def test_the_activation_of_an_armed_trail_can_no_longer_change():
    probe = leg(mark=104.0)
    edit_errors(probe, T0, trail_distance="1%")
    assert edit_errors(probe, T0, trail_activation="1%") == [
        "trailing activation: the trailing stop is already armed; the activation no longer applies"]


def test_a_new_distance_moves_an_armed_level_only_when_tighter():
    probe = leg(mark=104.0)
    edit_errors(probe, T0, trail_distance="2%")  # level 101.92
    assert edit_errors(probe, T0 + 1, trail_distance="3%") == []  # 100.88 would loosen it
    assert probe.trail_level == pytest.approx(101.92) and probe.trail_updated_at == T0
    assert edit_errors(probe, T0 + 2, trail_distance="1%") == []
    assert probe.trail_level == pytest.approx(102.96) and probe.trail_updated_at == T0 + 2
    assert probe.trail_moves[-1] == (T0 + 2, pytest.approx(102.96))


def test_a_short_trail_tightens_downwards():
    probe = leg("sell", mark=96.0)
    edit_errors(probe, T0, trail_distance="2%")  # level 97.92
    edit_errors(probe, T0 + 1, trail_distance="1%")
    assert probe.trail_level == pytest.approx(96.96)
    edit_errors(probe, T0 + 2, trail_distance="3%")
    assert probe.trail_level == pytest.approx(96.96)


def test_removing_the_trail_clears_its_state():
    probe = leg(mark=104.0)
    edit_errors(probe, T0, trail_distance="1%")
    assert edit_errors(probe, T0 + 3, trail_distance=None) == []
    assert (probe.trail_distance, probe.trail_activation, probe.trail_active, probe.trail_peak, probe.trail_level,
            probe.trail_updated_at) == (None, None, False, None, None, T0 + 3)


def test_keep_leaves_every_level():
    probe = leg(stop=90.0, target=110.0, time_exit_at=T0 + 60)
    assert edit_errors(probe, T0, stop=KEEP, target=KEEP, trail_distance=KEEP, trail_activation=KEEP,
                       time_exit_at=KEEP) == []
    assert (probe.stop, probe.target, probe.time_exit_at, probe.trail_distance) == (90.0, 110.0, T0 + 60, None)


def test_how_an_edit_names_and_shows_its_levels():
    assert EDITABLE == ("stop", "target", "trail_distance", "trail_activation", "trail_level", "time_exit_at")
    assert LEVEL_LABELS["time_exit_at"] == "time exit"
    assert fmt_level("stop", None) == "none"
    assert fmt_level("stop", 1234.5) == "1,234.50"
    assert fmt_level("trail_distance", Distance(0.005, "pct")) == "0.5%"
    assert fmt_level("time_exit_at", T0 + 5400) == "Thu 01:30 UTC"
    assert level_value(Distance(0.005, "pct")) == "0.5%"
    assert level_value(95.0) == 95.0 and level_value(None) is None


# -- the form parser and the settings use the same checks ---------------------------------------

def test_the_form_refuses_what_the_checks_refuse():
    for raw, problem in (("0", "must be a positive price"), ("inf", "must be a positive price")):
        with pytest.raises(ValueError, match=problem):
            parse_price(raw)
    for raw, problem in (("0", ABOVE_0), ("0%", ABOVE_0), ("100%", BELOW_100)):
        with pytest.raises(ValueError, match=problem):
            parse_trail(raw)
    assert parse_trail("99.9%") == "99.9%" and parse_trail("100") == 100.0
    assert parse_activation("") == 0.0 and parse_activation(" 0.2% ") == "0.2%"
    with pytest.raises(ValueError, match="expected a percentage"):
        parse_activation("x")


def test_the_form_takes_a_time_exit_up_to_the_horizon():
    horizon = int(TIME_EXIT_HORIZON_S)
    assert parse_time_exit(f"+{horizon}", T0) == T0 + horizon
    assert parse_time_exit("+8784h", T0) == T0 + horizon  # 366 days
    assert parse_time_exit("+504h", T0) == T0 + 21 * 86_400  # three weeks out
    with pytest.raises(ValueError, match="is more than 366 days ahead"):
        parse_time_exit(f"+{horizon + 1}", T0)


def strategy(**levels) -> StrategyConfig:
    return StrategyConfig.model_validate({"symbols": ["BTCUSDT"], "side": "buy", "entry": "immediate",
                                          "sizing": {"fixed_qty": 1}, **levels})


def test_the_settings_check_a_trailing_distance_as_an_edit_does():
    assert str(strategy(trail_distance="99.9%").trail_distance) == "99.9%"
    assert strategy(trail_distance=150).trail_distance == Distance(150.0, "points")
    for value, problem in (("100%", BELOW_100), (0, ABOVE_0)):
        with pytest.raises(ValueError, match=f"{problem} \\(leave it out for none\\)"):
            strategy(trail_distance=value)
