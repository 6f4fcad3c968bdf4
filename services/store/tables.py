"""SQLModel tables for the DESIGN §2 domain. No foreign keys: rows are written in the order
the engine decides, possibly replayed after a database outage."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel


class StrategyRunRow(SQLModel, table=True):
    __tablename__ = "strategy_runs"
    id: int = Field(primary_key=True)
    strategy_id: str = Field(index=True)
    symbol: str = ""
    status: str
    reason: str = ""
    started_at: float
    ended_at: float | None = None
    session_metadata: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class PositionGroupRow(SQLModel, table=True):
    __tablename__ = "position_groups"
    id: int = Field(primary_key=True)
    run_id: int
    strategy_id: str = Field(index=True)
    symbol: str
    side: str
    status: str = Field(index=True)
    opened_at: float
    closed_at: float | None = None
    exit_reason: str = ""
    realized_pnl: float = 0.0
    unrealized_pnl: float = 0.0
    entry_method: str = ""
    entry_attempts: int = 0
    pending_exit: str = ""
    # a DCA grid (DESIGN §3): its take-profit mode, aggregate take-profit, pyramids, the
    # risk engine's timers and the operator's hold on it
    tp_mode: str = ""
    agg_tp: float | None = None
    capital: float = 0.0
    pyramids: int = 0
    dca_submitted_at: float | None = None
    dca_filled_at: float | None = None
    fifth_pyramid_at: float | None = None
    risk_hold: str = ""


class LegRow(SQLModel, table=True):
    __tablename__ = "legs"
    id: int = Field(primary_key=True)
    group_id: int = Field(index=True)
    strategy_id: str
    symbol: str
    side: str
    qty: float
    avg_entry: float
    entry_fee: float = 0.0
    mark: float
    mark_ts: float
    unrealized_pnl: float = 0.0
    stop: float | None = None
    target: float | None = None
    trail_activation: str | None = None
    trail_distance: str | None = None
    trail_act_amount: float = 0.0
    trail_active: bool = False
    trail_peak: float | None = None
    trail_level: float | None = None
    trail_updated_at: float | None = None
    time_exit_at: float | None = None
    trigger: str = "mark"
    status: str = Field(index=True)
    opened_at: float
    closed_at: float | None = None
    exit_price: float | None = None
    exit_fee: float = 0.0
    exit_reason: str = ""
    realized_pnl: float = 0.0
    layer: int | None = None
    """A DCA layer's index in its strategy's layers (None: not a grid leg)."""
    pyramid: int = 0
    weight: float | None = None
    tp_pct: float | None = None


class OrderRow(SQLModel, table=True):
    __tablename__ = "orders"
    id: int = Field(primary_key=True)
    client_id: str = Field(unique=True)
    group_id: int = Field(index=True)
    leg_id: int | None = None
    strategy_id: str
    symbol: str
    side: str
    qty: float
    order_type: str
    method: str
    purpose: str
    retry_count: int = 0
    limit_price: float | None = None
    reference_price: float | None = None
    status: str = Field(index=True)
    reason: str = ""
    created_at: float
    updated_at: float
    filled_qty: float = 0.0
    avg_fill_price: float | None = None


class FillRow(SQLModel, table=True):
    __tablename__ = "fills"
    id: int = Field(primary_key=True)
    order_id: int = Field(index=True)
    leg_id: int | None = None
    symbol: str
    side: str
    qty: float
    price: float
    fee: float
    liquidity: str
    ts: float


class SignalRow(SQLModel, table=True):
    __tablename__ = "signals"
    id: int = Field(primary_key=True)
    strategy_id: str
    symbol: str | None = None
    side: str
    kind: str
    source: str
    price: float | None = None
    received_at: float
    status: str
    outcome: str = ""
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class SignalInboxRow(SQLModel, table=True):
    """Signals posted by another process (`tui-trader signal`), waiting for the engine.
    The engine allocates Signal ids itself, so other processes never insert into `signals`:
    they insert here (the database assigns the id) and the running engine takes the row."""

    __tablename__ = "signal_inbox"
    id: int | None = Field(default=None, primary_key=True)
    strategy_id: str
    symbol: str | None = None
    side: str | None = None
    price: float | None = None
    intent: str = "entry"
    """entry (a pyramid when the strategy already holds the symbol) or exit."""
    timeframe: str = ""
    size: float | None = None
    """An entry's quantity instead of the strategy's sizing (a DCA grid's: its capital / P0)."""
    source: str = "cli"
    created_at: float
    status: str = Field(default="pending", index=True)
    """pending -> taken (the engine entered) | rejected (with the reason) | expired (signal_ttl_s)."""
    outcome: str = ""
    signal_id: str | None = None
    """The engine's Signal row id(s) this produced, comma-separated."""
    taken_at: float | None = None


class EventRow(SQLModel, table=True):
    __tablename__ = "strategy_events"
    id: int = Field(primary_key=True)
    ts: float = Field(index=True)
    level: str
    category: str
    message: str
    strategy_id: str | None = None
    symbol: str | None = None
    group_id: int | None = None
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    needs_ack: bool = False
    acked_at: float | None = None


class StrategyStateRow(SQLModel, table=True):
    __tablename__ = "strategy_state"
    strategy_id: str = Field(primary_key=True)
    paused: bool = False


class PnlStateRow(SQLModel, table=True):
    """P&L rules' state of the book (scope "book") or a strategy, for the current session."""

    __tablename__ = "pnl_state"
    scope: str = Field(primary_key=True)
    day_start: float
    realized: float = 0.0
    unrealized: float = 0.0
    base: float = 0.0
    armed: bool = False
    peak: float | None = None
    fired_rule: str = ""
    fired_at: float | None = None
    fired_pnl: float | None = None
    limit_hit_at: float | None = None
    blocked_until: float | None = None
    updated_at: float = 0.0


class QueuedSignalRow(SQLModel, table=True):
    """Entry signals waiting for a free slot in the execution pool (and how each left it)."""

    __tablename__ = "signal_queue"
    id: int = Field(primary_key=True)
    signal_id: int
    strategy_id: str
    symbol: str
    timeframe: str = ""
    side: str
    price: float | None = None
    queued_at: float
    updated_at: float
    expires_at: float
    replacements: int = 0
    pinned: bool = False
    pyramid: bool = False
    size: float | None = None
    status: str = Field(default="queued", index=True)
    """queued -> entered | rejected | expired | removed"""
    outcome: str = ""


class LastQuoteRow(SQLModel, table=True):
    """Each symbol's latest quote, written behind: the simulated market continues from it at
    the next start (DESIGN §4)."""

    __tablename__ = "last_quotes"
    symbol: str = Field(primary_key=True)
    bid: float
    ask: float
    last: float
    ts: float


TABLES = {
    "run": StrategyRunRow.__table__,
    "group": PositionGroupRow.__table__,
    "leg": LegRow.__table__,
    "order": OrderRow.__table__,
    "fill": FillRow.__table__,
    "signal": SignalRow.__table__,
    "event": EventRow.__table__,
    "strategy_state": StrategyStateRow.__table__,
    "pnl_state": PnlStateRow.__table__,
    "queued_signal": QueuedSignalRow.__table__,
    "last_quote": LastQuoteRow.__table__,
}
PRIMARY_KEY = {kind: next(iter(t.primary_key.columns)).name for kind, t in TABLES.items()}


class CommandInboxRow(SQLModel, table=True):
    """Operator commands posted by another process (`tui-trader levels` / `exit`) for the
    running engine, which claims a row (sets taken_at), runs it and records the outcome."""

    __tablename__ = "command_inbox"
    id: int | None = Field(default=None, primary_key=True)
    kind: str
    """exit | levels"""
    args: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    created_at: float
    expires_at: float
    """The poster stops waiting then: an engine that has not taken it by then never runs it."""
    status: str = Field(default="pending", index=True)
    """pending -> done | refused (with the engine's reason) | cancelled (nobody took it in time)."""
    outcome: str = ""
    needs_confirm: bool = False
    """Refused only because the edit would exit at once: the poster may repeat it confirmed."""
    taken_at: float | None = None
    """When an engine claimed it; a pending row with taken_at set is being run."""
