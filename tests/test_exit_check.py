"""check-exits' judgement (services/exit_check.py) on stored rows, without a database: the
order of the triggers and which legs are left out. The whole command: tests/test_cli_commands.py."""

from __future__ import annotations

from services.exit_check import check_exits
from tests.engine_support import make_config, strat

NOW = 1_000_000.0


def leg(group_id: int, **kw) -> dict:
    """A stored open long leg of strategy m, as read_open_positions returns it: 1 at 100, mark 104."""
    row = {"id": group_id, "group_id": group_id, "strategy_id": "m", "symbol": "BTCUSDT", "side": "buy", "qty": 1.0,
           "avg_entry": 100.0, "mark": 104.0, "mark_ts": NOW, "unrealized_pnl": 4.0, "entry_fee": 0.0, "stop": None,
           "target": None, "trail_distance": None, "trail_activation": None, "trail_act_amount": 0.0,
           "trail_active": False, "trail_peak": None, "trail_level": None, "trail_updated_at": None,
           "time_exit_at": None, "opened_at": NOW - 60, "pending_exit": None, "group_status": "open"}
    return row | kw


def test_price_triggers_come_first_by_percent_then_time_exits_then_trailing_stops_to_arm():
    legs = [leg(1, stop=90.0, time_exit_at=NOW + 30, trail_distance=2.0, trail_act_amount=10.0),
            leg(2, target=106.0), leg(3, stop=50.0, pending_exit="stop_loss")]
    check = check_exits(make_config({"m": strat()}), legs, [], NOW)
    assert [(t.group_id, t.kind) for _, t in check.triggers] == [
        (2, "target"), (1, "stop_loss"), (1, "time"), (1, "trail_arms")]
    assert [r["group_id"] for r, _ in check.triggers] == [2, 1, 1, 1]  # each with its stored leg
    assert [r["group_id"] for r in check.exiting] == [3] and check.open_legs == 3


def test_pnl_rules_with_no_state_this_session_start_at_the_open_positions_pnl():
    config = make_config({"m": strat(pnl={"target": 10.0})})
    check = check_exits(config, [leg(1), leg(2)], [{"scope": "m", "day_start": 0.0}], NOW)  # an older session's
    (rule,) = [r for r in check.rules if r.scope == "m"]
    assert (rule.kind, rule.pnl, rule.distance) == ("pnl_target", 8.0, 2.0)
