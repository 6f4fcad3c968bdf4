"""What a store hands the engine at start: the rows it needs to resume."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Row = dict[str, Any]


@dataclass
class LoadedState:
    runs: list[Row] = field(default_factory=list)  # runs not closed
    groups: list[Row] = field(default_factory=list)  # groups not closed
    legs: list[Row] = field(default_factory=list)  # open legs of those groups
    working_orders: list[Row] = field(default_factory=list)  # orders new/working at the stop
    strategy_state: list[Row] = field(default_factory=list)
    pnl_state: list[Row] = field(default_factory=list)  # P&L rules' state per scope (any session)
    queued_signals: list[Row] = field(default_factory=list)  # entry signals waiting for a slot
    last_exit: dict[tuple[str, str], float] = field(default_factory=dict)  # (strategy, symbol) -> closed_at
    entered_today: set[tuple[str, str]] = field(default_factory=set)
    last_entry: dict[tuple[str, str], float] = field(default_factory=dict)  # (strategy, symbol) -> last opened_at
    realized_today: dict[str, float] = field(default_factory=dict)  # strategy -> realized P&L today
    realized_total: float = 0.0  # every group's realized P&L (open ones' partial closes too): the paper account's gain
    recent_events: list[Row] = field(default_factory=list)
    recent_orders: list[Row] = field(default_factory=list)
    recent_trades: list[Row] = field(default_factory=list)
    unread_alerts: list[Row] = field(default_factory=list)  # alerts not acknowledged yet, oldest first
    last_quotes: list[Row] = field(default_factory=list)  # each symbol's latest stored quote
    max_ids: dict[str, int] = field(default_factory=dict)
