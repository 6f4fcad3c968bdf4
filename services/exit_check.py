"""What `tui-trader check-exits` shows, judged from the stored state (the store's read
models) as the engine judges it: each open leg's armed triggers, measured as the Exits screen
measures them, and every P&L rule of the book and of each strategy. Pure: rows in, views out."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import TradingConfig
from .portfolio import PnlScope
from .rules.pnl_scopes import BOOK
from .rules.schedule import session_bounds
from .views import PositionStatus, PositionView, RuleView, TriggerKind, TriggerView, triggers_of

TRIGGER_TIER = {TriggerKind.TIME: 1, TriggerKind.TRAIL_ARMS: 2}
"""Sort order: price triggers by distance in % of the mark, then time exits by time left,
then trailing stops not armed yet (arming is not an exit) by distance."""


@dataclass(frozen=True)
class ExitCheck:
    triggers: list[tuple[dict, TriggerView]]
    """(stored leg, trigger) of the legs not exiting yet, closest first."""
    rules: list[RuleView]
    """The P&L rules, closest first (those with no distance last)."""
    exiting: list[dict]
    """The stored legs with an exit under way."""
    open_legs: int


def check_exits(config: TradingConfig, legs: list[dict], pnl_state: list[dict], now: float) -> ExitCheck:
    """legs: read_open_positions' rows; pnl_state: read_pnl_state's."""
    triggers = sorted(((r, t) for r in legs if not r["pending_exit"] for t in leg_triggers(r, now)),
                      key=lambda rt: _trigger_order(rt[1]))
    rules = sorted(pnl_rules(config, pnl_state, legs, now),
                   key=lambda v: (v.distance is None, v.distance if v.distance is not None else 0.0))
    return ExitCheck(triggers, rules, [r for r in legs if r["pending_exit"]], len(legs))


def leg_triggers(row: dict, now: float) -> list[TriggerView]:
    """One stored leg's armed triggers."""
    side = 1 if row["side"] == "buy" else -1
    arms_at = None
    if row["trail_distance"] is not None and not row["trail_active"]:
        arms_at = row["avg_entry"] + side * row["trail_act_amount"]
    notional = row["avg_entry"] * row["qty"]
    view = PositionView(
        group_id=row["group_id"], leg_id=row["id"], strategy_id=row["strategy_id"], symbol=row["symbol"],
        side=row["side"], qty=row["qty"], entry=row["avg_entry"], mark=row["mark"], pnl=row["unrealized_pnl"],
        pnl_pct=row["unrealized_pnl"] / notional * 100.0 if notional else 0.0, fees=row["entry_fee"],
        stop=row["stop"], target=row["target"], trail_distance=row["trail_distance"],
        trail_activation=row["trail_activation"], trail_active=row["trail_active"], trail_peak=row["trail_peak"],
        trail_level=row["trail_level"], trail_updated_at=row["trail_updated_at"], time_exit_at=row["time_exit_at"],
        status=PositionStatus.OPEN, opened_at=row["opened_at"], exit_pending=row["pending_exit"], trail_arm_at=arms_at)
    return triggers_of(view, now)


def _trigger_order(t: TriggerView) -> tuple:
    closeness = t.distance if t.kind == TriggerKind.TIME else t.distance_pct
    return TRIGGER_TIER.get(t.kind, 0), closeness if closeness is not None else math.inf, t.group_id


def pnl_rules(config: TradingConfig, stored: list[dict], legs: list[dict], now: float) -> list[RuleView]:
    """Every P&L rule of the book and of each strategy, judged on the stored state of this
    session (a scope with no state this session starts the day at its open positions' P&L)."""
    book = config.book
    day_start = session_bounds(now, book.session_start, book.timezone)[0]
    rows = {r["scope"]: r for r in stored}
    scopes = [(BOOK, book, None)] + [(sid, cfg.pnl, cfg.pnl.cooldown_s)
                                     for sid, cfg in config.strategies.items() if cfg.pnl is not None]
    views = []
    for scope, rules, cooldown_s in scopes:
        state = PnlScope(scope, rules, day_start, cooldown_s)
        row = rows.get(scope)
        if row is not None and row["day_start"] == day_start:
            state.restore(row)
        else:
            state.unrealized = sum(r["unrealized_pnl"] for r in legs if scope in (BOOK, r["strategy_id"]))
        views.extend(state.rule_views())
    return views
