"""Immutable snapshots the engine publishes to the UI, the CLI and tests."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class CommandResult:
    """The answer to an operator command: ok with a message, or a clear error."""

    ok: bool
    message: str

    @classmethod
    def success(cls, message: str) -> "CommandResult":
        return cls(True, message)

    @classmethod
    def error(cls, message: str) -> "CommandResult":
        return cls(False, message)


@dataclass(frozen=True, slots=True)
class PositionView:
    group_id: int
    leg_id: int
    strategy_id: str
    symbol: str
    side: str
    qty: float
    entry: float
    mark: float
    pnl: float
    pnl_pct: float
    fees: float
    stop: float | None
    target: float | None
    trail_distance: str | None
    trail_activation: str | None
    trail_active: bool
    trail_peak: float | None
    trail_level: float | None
    trail_updated_at: float | None
    time_exit_at: float | None
    status: str  # OPEN, STALE, EXITING
    opened_at: float
    exit_pending: str = ""


@dataclass(frozen=True, slots=True)
class TriggerView:
    """One armed exit trigger of a position and how far the trigger price is from it."""

    group_id: int
    symbol: str
    kind: str  # stop_loss, trailing_stop, target, time
    level: float | None  # a price, or the epoch time for a time exit
    distance: float | None  # price units (positive = not yet reached), or seconds left
    distance_pct: float | None


@dataclass(frozen=True, slots=True)
class StrategyView:
    id: str
    status: str
    reason: str
    entry: str
    side: str
    symbols: tuple[str, ...]
    exits: str
    open_positions: int
    realized_today: float
    unrealized: float
    next_entry_at: float | None
    enabled: bool


@dataclass(frozen=True, slots=True)
class OrderView:
    id: int
    group_id: int
    strategy_id: str
    symbol: str
    side: str
    qty: float
    order_type: str
    method: str
    purpose: str
    retry_count: int
    limit_price: float | None
    reference_price: float | None
    status: str
    reason: str
    created_at: float
    avg_fill_price: float | None


@dataclass(frozen=True, slots=True)
class EventView:
    id: int
    ts: float
    level: str
    category: str
    message: str
    strategy_id: str | None
    symbol: str | None
    group_id: int | None
    needs_ack: bool


@dataclass(frozen=True, slots=True)
class TradeView:
    """A closed round trip."""

    group_id: int
    strategy_id: str
    symbol: str
    side: str
    qty: float
    entry_ts: float
    entry_price: float
    exit_ts: float
    exit_price: float
    exit_reason: str
    pnl: float


@dataclass(frozen=True, slots=True)
class FeedView:
    name: str
    healthy: bool
    last_event_at: float | None
    symbols: int
    stale_symbols: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class WaitingEntry:
    """A strategy/symbol that wants to enter but cannot yet, and why."""

    strategy_id: str
    symbol: str
    reason: str


@dataclass(frozen=True, slots=True)
class EngineSnapshot:
    seq: int
    ts: float
    mode: str
    state: str
    feed: FeedView
    day_pnl: float
    realized_today: float
    unrealized: float
    pool_used: int
    pool_total: int
    unread_alerts: int
    strategies: tuple[StrategyView, ...] = ()
    positions: tuple[PositionView, ...] = ()
    triggers: tuple[TriggerView, ...] = ()
    orders: tuple[OrderView, ...] = ()
    events: tuple[EventView, ...] = ()
    trades: tuple[TradeView, ...] = ()
    waiting: tuple[WaitingEntry, ...] = ()
    db_ok: bool = True
    notes: tuple[str, ...] = field(default=())
