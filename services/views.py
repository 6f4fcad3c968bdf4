"""Immutable snapshots the engine publishes to the UI, the CLI and tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Mapping

from .rules.risk_plan import Close as RiskStepView  # one close of a plan: a quantity of a winner's leg


@dataclass(frozen=True, slots=True)
class CommandResult:
    """The answer to an operator command: ok with a message, or a clear error."""

    ok: bool
    message: str
    needs_confirm: bool = False  # refused only until the operator confirms (the message says what happens)

    @classmethod
    def success(cls, message: str) -> "CommandResult":
        return cls(True, message)

    @classmethod
    def error(cls, message: str) -> "CommandResult":
        return cls(False, message)


class PositionStatus(StrEnum):
    """How a position (an open leg) stands, as the screens show it."""

    OPEN = "OPEN"
    STALE = "STALE"  # no fresh quote: no exit triggers on its price
    EXITING = "EXITING"  # its group's exit is decided, not yet filled


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
    status: PositionStatus
    opened_at: float
    exit_pending: str = ""
    trail_arm_at: float | None = None  # the mark that arms a trailing stop not yet armed
    trail_moves: tuple[tuple[float, float], ...] = ()  # recent (time, level) trailing-level changes, oldest first
    exit_order: str = ""  # the exit order working now, e.g. "limit 101.20, re-price 1/2"
    marks: tuple[float, ...] = ()  # the mark sampled about once a second, oldest first (for a sparkline)


class TriggerKind(StrEnum):
    """An exit trigger of a position; those that close it have their exit reason's value."""

    STOP_LOSS = "stop_loss"
    TRAILING_STOP = "trailing_stop"
    TARGET = "target"
    TRAIL_ARMS = "trail_arms"  # where a trailing stop not yet armed arms
    TIME = "time"


@dataclass(frozen=True, slots=True)
class TriggerView:
    """One armed exit trigger of a position and how far the trigger price is from it."""

    group_id: int
    symbol: str
    kind: TriggerKind
    level: float | None  # a price, or the epoch time for a time exit
    distance: float | None  # price units (positive = not yet reached), or seconds left
    distance_pct: float | None


class LayerState(StrEnum):
    """A DCA layer as the grid views show it."""

    PENDING = "pending"  # its resting order has not filled
    FILLED = "filled"  # open
    TP_HIT = "tp-hit"  # closed by its own take-profit
    CLOSED = "closed"  # closed with its group
    CANCELLED = "cancelled"  # given up before it filled


@dataclass(frozen=True, slots=True)
class GridLegView:
    """One layer of a DCA grid, filled or not."""

    leg_id: int
    pyramid: int  # 0: the first grid; 1..: the pyramids
    layer: int  # 0-based
    price: float  # the fill price, or the resting order's limit while pending
    weight: float | None
    tp_target: float | None  # its own take-profit (per_leg and hybrid modes)
    qty: float  # the order's quantity
    filled_qty: float
    state: LayerState
    realized: float = 0.0


@dataclass(frozen=True, slots=True)
class GridView:
    """A DCA group's grid: every layer of every pyramid, the average entry and the aggregate take-profit."""

    group_id: int
    strategy_id: str
    symbol: str
    side: str
    tp_mode: str
    avg_entry: float | None  # over the filled layers still open
    agg_tp: float | None  # aggregate and hybrid modes
    pyramids: int
    max_pyramids: int
    legs: tuple[GridLegView, ...]
    opened_at: float = 0.0


@dataclass(frozen=True, slots=True)
class GroupView:
    """A position group: what one entry opened, with its open legs (its positions), its P&L and,
    for a DCA grid, its layers (a grid shows while only resting layers are left)."""

    id: int
    strategy_id: str
    symbols: tuple[str, ...]  # its legs' (a basket's several), else the one it enters
    side: str
    kind: str  # single | basket | grid
    status: str  # entering | open | exiting
    pending_exit: str  # the reason of an exit decided and not yet filled
    legs: tuple[PositionView, ...]  # its open legs
    realized_pnl: float
    unrealized_pnl: float  # its open legs', net of their entry fees
    opened_at: float
    grid: GridView | None = None


@dataclass(frozen=True, slots=True)
class RiskView:
    """A losing position as the risk engine sees it: its eligibility and the projected offset plan."""

    group_id: int
    strategy_id: str
    symbol: str
    side: str
    loss_pct: float
    pnl: float  # its unrealized P&L (negative)
    timer_remaining: float | None  # seconds; None while the post-full timer has not started
    pyramids: int
    max_pyramids: int
    age_s: float
    checks: tuple[tuple[str, bool, str], ...]  # (loss | pyramids | timer | age | blocked | skipped, passed, text)
    eligible: bool
    hold: str  # "blocked" | "skipped" | ""
    plan: str  # the plan in one line
    steps: tuple[RiskStepView, ...]  # the winners' closes, in order
    required: float
    covered: float
    covers: bool
    notes: tuple[str, ...] = ()


class StrategyStatus(StrEnum):
    """Where a strategy stands in its lifecycle (StrategyView.reason says why)."""

    DISABLED = "disabled"  # in the settings
    PAUSED = "paused"  # by the operator
    STOPPED = "stopped"  # every entry of the book is stopped
    COOLDOWN = "cooldown"
    EXITING = "exiting"
    LIVE = "live"
    ENTERING = "entering"
    WAITING = "waiting"  # for its entry window, a quote or the operator
    CLOSED = "closed"  # entered today and re-entry is off


@dataclass(frozen=True, slots=True)
class StrategyView:
    id: str
    status: StrategyStatus
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
    planned_exit_at: float | None = None  # the earliest planned (time) exit of its open positions
    allocation: float | None = None  # funds allocated in the settings (None: only the book's cash limits it)
    used_funds: float = 0.0  # what its open and entering positions hold


@dataclass(frozen=True, slots=True)
class RuleView:
    """One P&L rule of a scope (the book or a strategy) and how far its P&L is from acting."""

    scope: str  # "book" or a strategy id
    kind: str  # pnl_stop, pnl_trailing, pnl_target, daily_loss_limit
    level: float | None  # the P&L at which it acts; None for a trailing rule not armed yet
    pnl: float  # the P&L it compares (since its last firing today; the day's P&L for the limit)
    distance: float | None  # how far pnl still is from level (> 0: not reached)
    armed: bool
    arms_at: float | None = None  # trailing: the P&L that arms it
    peak: float | None = None  # trailing: the highest P&L since it armed
    fired_at: float | None = None  # when it last acted this session


@dataclass(frozen=True, slots=True)
class PortfolioView:
    """P&L of a scope and its rules. Scope "book" is every position."""

    scope: str
    realized_today: float
    unrealized: float
    day_pnl: float
    open_positions: int
    rules: tuple[RuleView, ...] = ()
    blocked: str = ""  # why new entries in this scope are refused now ("" when they are not)
    blocked_until: float | None = None


@dataclass(frozen=True, slots=True)
class OrphanView:
    """Open positions of a strategy that was removed from, or disabled in, the settings."""

    strategy_id: str
    why: str  # "removed from the settings" or "disabled in the settings"
    group_ids: tuple[int, ...]
    decided: str = ""  # "" until the operator chose: "keep" (managed on stored levels) or "close"


@dataclass(frozen=True, slots=True)
class QueuedSignalView:
    """An entry signal waiting for a free slot in the execution pool."""

    id: int
    strategy_id: str
    symbol: str
    timeframe: str
    side: str
    price: float | None  # the signal's price
    mark: float | None  # the current price
    depth_pct: float | None  # how far the current price is through the signal's price in the trade's favour
    replacements: int
    queued_at: float
    expires_at: float
    rank: int  # 1 = the next to get a slot
    rank_reason: str
    pinned: bool  # promoted by the operator
    pyramid: bool


@dataclass(frozen=True, slots=True)
class RiskPreview:
    """What an entry would be now on one symbol (Engine.risk_preview)."""

    symbol: str
    qty: float | None
    price: float | None
    notional: float | None
    loss_at_stop: float | None
    reward_at_target: float | None
    note: str  # why it cannot be sized, or a funds refusal; empty when it would go


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
    """An alert: it stays unread until the operator acknowledges it."""
    acked_at: float | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)

    @property
    def unread(self) -> bool:
        return self.needs_ack and self.acked_at is None


@dataclass(frozen=True, slots=True)
class EventPage:
    """A page of the history, newest first. `error` says why the database part is missing."""

    events: list[EventView]
    error: str = ""


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
class AccountView:
    """The paper account (account currency)."""

    starting_cash: float
    cash: float  # starting cash + every realized P&L
    equity: float  # cash + the open positions' unrealized P&L
    gross_exposure: float  # the open positions' notional at their marks
    net_exposure: float  # long minus short notional
    funds_free: float  # cash less what open positions and working entries hold


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
    groups: tuple[GroupView, ...] = ()  # every group that is not closed, by id
    positions: tuple[PositionView, ...] = ()  # the groups' open legs, one after the other
    orders: tuple[OrderView, ...] = ()
    events: tuple[EventView, ...] = ()
    trades: tuple[TradeView, ...] = ()
    waiting: tuple[WaitingEntry, ...] = ()
    db_ok: bool = True
    notes: tuple[str, ...] = field(default=())
    portfolio: tuple[PortfolioView, ...] = ()  # the book first, then strategies with P&L rules or positions
    session_start: float = 0.0  # the trading day: [session_start, session_end)
    session_end: float = 0.0
    orphans: tuple[OrphanView, ...] = ()
    queue: tuple[QueuedSignalView, ...] = ()  # next first
    risk: tuple[RiskView, ...] = ()  # losing positions, biggest loss first (when the risk engine is configured)
    alerts: tuple[EventView, ...] = ()  # unread alerts, newest first (at most MAX_ALERTS_SHOWN)
    started_at: float = 0.0
    resumed: int = 0  # open positions taken over from the previous run at this start
    risk_engine: str = "off"  # off (not configured) | auto (runs eligible plans) | manual (plans shown, the operator runs them)
    entries_stopped: bool = False  # the operator stopped every entry of the book (Engine.stop_entries)
    ticks: Mapping[str, float] = field(default_factory=dict)  # symbol -> tick size: prices are shown at it
    account: AccountView | None = None

    @property
    def grids(self) -> tuple[GridView, ...]:
        """The DCA groups' layers."""
        return tuple(g.grid for g in self.groups if g.grid is not None)

    def group(self, group_id: int) -> GroupView | None:
        return next((g for g in self.groups if g.id == group_id), None)

    def triggers(self) -> tuple[TriggerView, ...]:
        """Every armed trigger of every position and how far the mark is from it. Derived
        from the positions on demand: only the Exits screen needs them."""
        return tuple(t for p in self.positions for t in triggers_of(p, self.ts))


TRIGGER_LABEL = {
    TriggerKind.STOP_LOSS: "stop loss", TriggerKind.TRAILING_STOP: "trailing stop", TriggerKind.TARGET: "target",
    TriggerKind.TRAIL_ARMS: "trail arms at", TriggerKind.TIME: "time exit",
}
"""How a trigger kind (TriggerView.kind, also an exit reason) reads on screen and in the shell."""


def triggers_of(p: PositionView, now: float) -> list[TriggerView]:
    mark, d = p.mark, 1 if p.side == "buy" else -1
    out = []
    for kind, level in ((TriggerKind.STOP_LOSS, p.stop),
                        (TriggerKind.TRAILING_STOP, p.trail_level if p.trail_active else None),
                        (TriggerKind.TARGET, p.target)):
        if level is not None:
            dist = (mark - level) * d if kind != TriggerKind.TARGET else (level - mark) * d
            out.append(TriggerView(p.group_id, p.symbol, kind, level, dist, dist / mark * 100.0 if mark else None))
    if p.trail_arm_at is not None:
        dist = (p.trail_arm_at - mark) * d
        out.append(TriggerView(p.group_id, p.symbol, TriggerKind.TRAIL_ARMS, p.trail_arm_at, dist, dist / mark * 100.0 if mark else None))
    if p.time_exit_at is not None:
        out.append(TriggerView(p.group_id, p.symbol, TriggerKind.TIME, p.time_exit_at, p.time_exit_at - now, None))
    return out
