"""The P&L scope rules on their own (DESIGN §3 portfolio level and daily loss limit): each rule
acts on reaching its level and not short of it, in the order daily loss limit, stop, trailing,
target; the stop, target and trailing rules measure from the scope's base and the limit from
the day's P&L; a scope that fired is not judged again while blocked; each rule's view shows
how far the P&L is from it; and a blocked scope says why."""

from __future__ import annotations

import pytest

from services.config import PnlRules
from services.rules.pnl_scopes import BOOK, ScopeState, block_reason, judge, rule_views
from tests.conftest import T0


def state(day: float, *, base: float = 0.0, armed: bool = False, peak: float | None = None, fired_rule: str = "",
          fired_at: float | None = None, fired_pnl: float | None = None, limit_hit_at: float | None = None,
          blocked_until: float | None = None, scope: str = "s", **rules) -> ScopeState:
    return ScopeState(scope, PnlRules(**rules), day, base, armed, peak, fired_rule, fired_at, fired_pnl,
                      limit_hit_at, blocked_until)


def hit(s: ScopeState):
    return judge(s).hit


# -- which rule acts ---------------------------------------------------------------------------------


def test_no_rule_no_judgement():
    assert judge(state(-1e6)) == (None, False, None)


@pytest.mark.parametrize(("day", "acts"), [(-5.0, ("daily_loss_limit", -5.0)), (-4.99, None)])
def test_the_daily_loss_limit_acts_on_reaching_it(day, acts):
    assert hit(state(day, daily_loss_limit=5)) == acts


def test_the_daily_loss_limit_compares_the_days_pnl_not_the_pnl_since_the_base():
    assert hit(state(-5.0, base=-4.0, daily_loss_limit=5)) == ("daily_loss_limit", -5.0)  # -1 since the base
    assert hit(state(-4.0, base=2.0, daily_loss_limit=5)) is None  # -6 since the base


def test_the_daily_loss_limit_acts_once_a_session_then_the_other_rules_go_on():
    assert hit(state(-6.0, limit_hit_at=T0, blocked_until=T0 + 86400, daily_loss_limit=5)) is None
    assert hit(state(-6.0, limit_hit_at=T0, blocked_until=T0 + 86400, daily_loss_limit=5, stop=6)) == ("pnl_stop", -6.0)


def test_the_daily_loss_limit_comes_before_the_stop_and_before_a_block():
    assert hit(state(-6.0, stop=5, daily_loss_limit=6)) == ("daily_loss_limit", -6.0)
    fired = state(-6.0, fired_rule="pnl_stop", fired_at=T0, blocked_until=T0 + 60, stop=5, daily_loss_limit=6)
    assert hit(fired) == ("daily_loss_limit", -6.0)


@pytest.mark.parametrize(("day", "acts"), [(5.0, ("pnl_stop", -5.0)), (5.01, None)])
def test_the_stop_acts_on_reaching_it_from_the_base(day, acts):
    assert hit(state(day, base=10.0, stop=5)) == acts  # -5 since the base of +10


@pytest.mark.parametrize(("day", "acts"), [(18.0, ("pnl_target", 8.0)), (17.99, None)])
def test_the_target_acts_on_reaching_it_from_the_base(day, acts):
    assert hit(state(day, base=10.0, target=8)) == acts


def test_a_scope_that_fired_is_not_judged_again_until_its_block_is_released():
    fired = dict(fired_rule="pnl_stop", fired_at=T0, fired_pnl=-5.0, stop=5)
    assert hit(state(-9.0, blocked_until=T0 + 60, **fired)) is None
    assert hit(state(-9.0, **fired)) == ("pnl_stop", -5.0)  # released: judged again


def test_a_block_by_the_daily_loss_limit_alone_does_not_stop_the_other_rules():
    assert hit(state(-5.0, limit_hit_at=T0, blocked_until=T0 + 86400, stop=5)) == ("pnl_stop", -5.0)


# -- the trailing stop -------------------------------------------------------------------------------


@pytest.mark.parametrize(("rel", "armed"), [(10.0, True), (9.99, False)])
def test_the_trailing_stop_arms_on_reaching_its_activation_from_the_base(rel, armed):
    j = judge(state(rel + 3.0, base=3.0, trail_activation=10, trail_distance=4))
    assert (j.hit, j.armed, j.peak) == (None, armed, pytest.approx(rel) if armed else None)


def test_an_activation_of_zero_arms_at_a_pnl_of_zero():
    assert judge(state(0.0, trail_distance=4)) == (None, True, 0.0)


def test_an_armed_trailing_stop_keeps_its_peak_when_the_pnl_comes_back_over_the_activation():
    assert judge(state(10.0, armed=True, peak=12.0, trail_activation=10, trail_distance=4)) == (None, True, 12.0)


def test_the_peak_follows_the_pnl_up():
    assert judge(state(13.0, armed=True, peak=12.0, trail_activation=10, trail_distance=4)) == (None, True, 13.0)


@pytest.mark.parametrize(("rel", "acts"), [(8.0, ("pnl_trailing", 8.0)), (8.01, None)])
def test_the_trailing_stop_acts_on_reaching_peak_less_distance(rel, acts):
    assert judge(state(rel + 1.0, base=1.0, armed=True, peak=12.0, trail_activation=10, trail_distance=4)) == (
        acts, True, 12.0)


def test_the_stop_comes_before_the_trailing_stop_and_the_trailing_stop_before_the_target():
    assert hit(state(-5.0, armed=True, peak=0.0, stop=5, trail_distance=5)) == ("pnl_stop", -5.0)
    assert hit(state(8.0, armed=True, peak=12.0, trail_distance=4, target=8)) == ("pnl_trailing", 8.0)


def test_the_stop_leaves_the_trailing_state_as_it_was():
    assert judge(state(-5.0, stop=5, trail_distance=4)) == (("pnl_stop", -5.0), False, None)


# -- what the rules look like ------------------------------------------------------------------------


def test_each_rule_shows_its_level_the_pnl_it_compares_and_how_far_that_is():
    views = rule_views(state(-3.0, base=-1.0, armed=True, peak=4.0, stop=5, target=10, trail_activation=1,
                             trail_distance=3, daily_loss_limit=8))
    shown = {v.kind: (v.level, v.pnl, v.distance, v.armed) for v in views}
    assert shown == {
        "pnl_stop": (-5.0, -2.0, 3.0, True),  # -2 since the base: 3 short of -5
        "pnl_trailing": (1.0, -2.0, -3.0, True),  # past its level (it has fired or is about to)
        "pnl_target": (10.0, -2.0, 12.0, True),
        "daily_loss_limit": (-8.0, -3.0, 5.0, True),  # the day's P&L
    }
    assert [v.kind for v in views] == ["pnl_stop", "pnl_trailing", "pnl_target", "daily_loss_limit"]
    assert {v.scope for v in views} == {"s"}


def test_a_trailing_stop_not_armed_yet_shows_where_it_arms_and_no_level():
    [view] = rule_views(state(2.0, trail_activation=5, trail_distance=3))
    assert (view.level, view.distance, view.armed, view.arms_at, view.peak) == (None, None, False, 5.0, None)


@pytest.mark.parametrize("only", ["stop", "target", "trail_distance", "daily_loss_limit"])
def test_only_the_rules_set_are_shown(only):
    [view] = rule_views(state(0.0, **{only: 5}))
    assert view.kind == {"stop": "pnl_stop", "target": "pnl_target", "trail_distance": "pnl_trailing"}.get(only, only)


def test_the_rule_that_fired_and_the_limit_show_when_they_acted():
    views = rule_views(state(-9.0, fired_rule="pnl_trailing", fired_at=T0, limit_hit_at=T0 + 5, stop=20, target=5,
                             trail_distance=3, armed=True, peak=1.0, daily_loss_limit=8))
    assert {v.kind: v.fired_at for v in views} == {"pnl_stop": None, "pnl_trailing": T0, "pnl_target": None,
                                                   "daily_loss_limit": T0 + 5}


# -- why entries are refused --------------------------------------------------------------------------


def test_a_fired_rule_names_itself_its_scope_and_the_pnl_it_fired_at():
    assert block_reason(state(-6.0, fired_rule="pnl_stop", fired_pnl=-5.1, stop=5)) == "P&L stop of s fired at P&L -5.10"
    book = state(9.0, scope=BOOK, fired_rule="pnl_trailing", fired_pnl=8.0, trail_distance=4)
    assert block_reason(book) == "P&L trailing stop of the book fired at P&L +8.00"


def test_the_daily_loss_limit_says_until_when():
    s = state(-8.0, scope=BOOK, limit_hit_at=T0, daily_loss_limit=8)
    assert block_reason(s) == "daily loss limit of 8.00 reached by the book: no new entries until the next session"


def test_a_rule_that_fired_on_a_scope_with_a_daily_loss_limit_not_reached_names_the_rule():
    s = state(-5.0, fired_rule="pnl_stop", fired_pnl=-5.0, stop=5, daily_loss_limit=8)
    assert block_reason(s) == "P&L stop of s fired at P&L -5.00"
