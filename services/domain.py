"""Engine-internal domain records. Mutable, owned by the engine, persisted by the store
(each record names its table in KIND and gives its columns with row()). The UI never
sees these: it gets frozen views (services.views)."""

from __future__ import annotations

from collections import deque
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from .orders import OrderPurpose, OrderStatus
from .rules.distance import Distance
from .rules.exits import trail_level

if TYPE_CHECKING:
    from .plans import PositionPlan

LONG, SHORT = 1, -1
MARK_SAMPLES = 40


class RunStatus(StrEnum):
    ENTERING = "entering"
    LIVE = "live"
    EXITING = "exiting"
    CLOSED = "closed"
    ERROR = "error"  # its entry failed: the reason says why


class GroupStatus(StrEnum):
    ENTERING = "entering"
    OPEN = "open"
    EXITING = "exiting"
    CLOSED = "closed"


class LegStatus(StrEnum):
    PENDING = "pending"  # a DCA layer whose resting order has not filled
    OPEN = "open"
    CLOSED = "closed"
    CANCELLED = "cancelled"  # a DCA layer given up before it filled


class ExitReason(StrEnum):
    """Why a position was closed (a leg's or group's exit_reason, a group's pending_exit)."""

    STOP_LOSS = "stop_loss"
    TRAILING_STOP = "trailing_stop"
    TARGET = "target"
    TIME = "time"
    AGGREGATE_TP = "aggregate_tp"  # a DCA grid's take-profit over its average entry
    MANUAL = "manual"
    SIGNAL = "signal"
    UNWIND = "unwind"  # a multi-leg entry failed: the legs already in are sold
    ENTRY_FAILED = "entry_failed"
    RISK_OFFSET = "risk_offset"
    DAILY_LOSS_LIMIT = "daily_loss_limit"
    BOOK_PNL_STOP = "book_pnl_stop"
    BOOK_PNL_TRAILING = "book_pnl_trailing"
    BOOK_PNL_TARGET = "book_pnl_target"
    STRATEGY_PNL_STOP = "strategy_pnl_stop"
    STRATEGY_PNL_TRAILING = "strategy_pnl_trailing"
    STRATEGY_PNL_TARGET = "strategy_pnl_target"


def side_dir(side: str) -> int:
    return LONG if side == "buy" else SHORT


class Record:
    __slots__ = ("id", "saved")
    KIND = ""

    def row(self) -> dict[str, Any]:
        raise NotImplementedError


class Run(Record):
    """One lifecycle of a strategy on one symbol: entering -> live -> exiting -> closed."""

    __slots__ = ("strategy_id", "symbol", "status", "reason", "started_at", "ended_at", "metadata")
    KIND = "run"

    def __init__(self, id: int, strategy_id: str, symbol: str, started_at: float, metadata: dict) -> None:
        self.id, self.saved = id, False
        self.strategy_id, self.symbol = strategy_id, symbol
        self.status, self.reason = RunStatus.ENTERING, ""
        self.started_at, self.ended_at = started_at, None
        self.metadata = metadata

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id, "strategy_id": self.strategy_id, "symbol": self.symbol,
            "status": self.status, "reason": self.reason, "started_at": self.started_at,
            "ended_at": self.ended_at, "session_metadata": self.metadata,
        }


class RiskHold(StrEnum):
    """The operator's word to the risk engine about a group (its risk_hold; "" when none)."""

    BLOCKED = "blocked"  # the risk engine never closes it
    SKIPPED = "skipped"  # left alone until it stops being eligible


class Group(Record):
    """What one entry opened: one symbol with one leg, a basket of symbols, or a DCA grid (its
    layers are legs, pending until their resting order fills; pyramids add further grids). Its
    plan (services.plans) is its kind: the state and the decisions that depend on it."""

    __slots__ = (
        "run_id", "strategy_id", "symbol", "side", "status", "legs", "opened_at", "closed_at",
        "exit_reason", "realized_pnl", "entry_method", "entry_attempts", "pending_exit",
        "resend_at", "entry_ref", "entry_order_id", "entry_deadline", "notional", "entry_symbol", "plan",
        "risk_hold", "resume_entry",
    )
    KIND = "group"

    def __init__(self, id: int, run_id: int, strategy_id: str, symbol: str, side: str, opened_at: float,
                 plan: PositionPlan) -> None:
        self.id, self.saved = id, False
        self.run_id, self.strategy_id, self.symbol, self.side = run_id, strategy_id, symbol, side
        self.plan = plan
        self.status = GroupStatus.ENTERING
        self.legs: list[Leg] = []
        self.opened_at, self.closed_at = opened_at, None
        self.exit_reason = ""
        self.realized_pnl = 0.0
        self.entry_method, self.entry_attempts = "", 0
        self.pending_exit = ""  # an exit decided but not yet filled: its reason
        self.resend_at: float | None = None  # an exit order was rejected (or lost in a restart): send it again from then
        self.entry_ref: float | None = None  # the entry's reference price
        self.entry_order_id: int | None = None  # the entry order working now
        self.entry_deadline: float | None = None  # when a working limit entry is re-priced
        self.notional = 0.0  # funds this group holds (estimated until the entry fills)
        self.entry_symbol = symbol  # the leg being entered now
        self.resume_entry: tuple | None = None  # an entry order kept at the stop: (qty, type, method, limit, attempt)
        self.risk_hold = ""  # the operator's word to the risk engine (a RiskHold), "" when none

    def open_legs(self) -> list["Leg"]:
        return [leg for leg in self.legs if leg.status == LegStatus.OPEN]

    def held(self) -> float:
        """Funds the group holds (its plan's word)."""
        return self.plan.held(self)

    def cost(self) -> float:
        """What its open legs cost."""
        return sum(leg.entry * leg.qty for leg in self.legs if leg.status == LegStatus.OPEN)

    def avg_entry(self) -> float | None:
        legs = self.open_legs()
        qty = sum(leg.qty for leg in legs)
        return sum(leg.entry * leg.qty for leg in legs) / qty if qty else None

    def unrealized(self) -> float:
        return sum(leg.unrealized() for leg in self.legs if leg.status == LegStatus.OPEN)

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id, "run_id": self.run_id, "strategy_id": self.strategy_id,
            "symbol": self.symbol, "side": self.side, "status": self.status,
            "opened_at": self.opened_at, "closed_at": self.closed_at,
            "exit_reason": self.exit_reason, "realized_pnl": self.realized_pnl,
            "unrealized_pnl": self.unrealized(), "entry_method": self.entry_method,
            "entry_attempts": self.entry_attempts, "pending_exit": self.pending_exit,
            **self.plan.columns(), "risk_hold": self.risk_hold,
        }


class Leg(Record):
    """One instrument position with its exit levels and trailing state. `dir` is +1 long, -1 short.
    Levels are absolute prices; trail_act_amount is the profit (price units) that arms the trail.
    A DCA layer is a leg from the moment its order is placed: status pending (qty and entry are
    the order's) -> open when it fills -> closed; or cancelled when the group exits first."""

    __slots__ = (
        "group", "symbol", "side", "dir", "qty", "entry", "entry_fee", "mark", "mark_ts",
        "stop", "target", "trail_activation", "trail_distance", "trail_act_amount",
        "trail_active", "trail_peak", "trail_level", "trail_updated_at", "time_exit_at",
        "trigger", "status", "opened_at", "closed_at", "exit_price", "exit_fee", "exit_reason",
        "realized_pnl", "exit_order_id", "scopes", "trail_moves", "marks",
        "layer", "pyramid", "weight", "tp_pct", "entry_order_id",
    )
    KIND = "leg"

    def __init__(self, id: int, group: Group, symbol: str, side: str, qty: float, entry: float,
                 entry_fee: float, opened_at: float, trigger: str = "mark") -> None:
        self.id, self.saved = id, False
        self.group, self.symbol, self.side, self.dir = group, symbol, side, side_dir(side)
        self.qty, self.entry, self.entry_fee = qty, entry, entry_fee
        self.mark, self.mark_ts = entry, opened_at
        self.stop: float | None = None
        self.target: float | None = None
        self.trail_activation: Distance | None = None
        self.trail_distance: Distance | None = None
        self.trail_act_amount = 0.0
        self.trail_active = False
        self.trail_peak: float | None = None
        self.trail_level: float | None = None
        self.trail_updated_at: float | None = None
        self.time_exit_at: float | None = None
        self.trigger = trigger
        self.status = LegStatus.OPEN
        self.opened_at, self.closed_at = opened_at, None
        self.exit_price: float | None = None
        self.exit_fee = 0.0
        self.exit_reason = ""
        self.realized_pnl = 0.0
        self.exit_order_id: int | None = None  # the exit order working now
        self.scopes: tuple = ()  # the P&L scopes (services.portfolio) whose rules watch this leg
        self.trail_moves: deque[tuple[float, float]] = deque(maxlen=8)  # recent (time, level) trailing changes
        self.marks: deque[float] = deque(maxlen=MARK_SAMPLES)  # the mark once a second, for a sparkline
        self.layer: int | None = None  # a DCA layer: its index in the strategy's layers
        self.pyramid = 0  # which grid of its group: 0 the first, 1.. the pyramids
        self.weight: float | None = None
        self.tp_pct: float | None = None
        self.entry_order_id: int | None = None  # a pending layer's resting order

    def unrealized(self) -> float:
        """Mark-to-market P&L net of the entry fee."""
        return (self.mark - self.entry) * self.qty * self.dir - self.entry_fee

    def trail_level_from(self, extreme: float) -> float:
        assert self.trail_distance is not None
        return trail_level(self.trail_distance, self.dir, extreme)

    def arm_trail(self, mark: float, now: float) -> None:
        self.trail_active = True
        self.trail_peak = mark
        self.trail_level = self.trail_level_from(mark)
        self.trail_updated_at = now
        self.trail_moves.append((now, self.trail_level))

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id, "group_id": self.group.id, "strategy_id": self.group.strategy_id,
            "symbol": self.symbol, "side": self.side, "qty": self.qty, "avg_entry": self.entry,
            "entry_fee": self.entry_fee, "mark": self.mark, "mark_ts": self.mark_ts,
            "unrealized_pnl": self.unrealized() if self.status == LegStatus.OPEN else 0.0,
            "stop": self.stop, "target": self.target,
            "trail_activation": None if self.trail_activation is None else str(self.trail_activation),
            "trail_distance": None if self.trail_distance is None else str(self.trail_distance),
            "trail_act_amount": self.trail_act_amount, "trail_active": self.trail_active,
            "trail_peak": self.trail_peak, "trail_level": self.trail_level,
            "trail_updated_at": self.trail_updated_at, "time_exit_at": self.time_exit_at,
            "trigger": self.trigger, "status": self.status, "opened_at": self.opened_at,
            "closed_at": self.closed_at, "exit_price": self.exit_price, "exit_fee": self.exit_fee,
            "exit_reason": self.exit_reason, "realized_pnl": self.realized_pnl,
            "layer": self.layer, "pyramid": self.pyramid, "weight": self.weight, "tp_pct": self.tp_pct,
        }


class Order(Record):
    __slots__ = (
        "client_id", "group_id", "leg_id", "strategy_id", "symbol", "side", "qty", "order_type",
        "method", "purpose", "retry_count", "limit_price", "reference_price", "status", "reason",
        "created_at", "updated_at", "filled_qty", "avg_fill_price", "fees",
    )
    KIND = "order"

    def __init__(self, id: int, group_id: int, leg_id: int | None, strategy_id: str, symbol: str,
                 side: str, qty: float, order_type: str, method: str, purpose: OrderPurpose,
                 created_at: float, limit_price: float | None = None,
                 reference_price: float | None = None, retry_count: int = 0) -> None:
        self.id, self.saved = id, False
        self.client_id = f"tt-{id}"
        self.group_id, self.leg_id, self.strategy_id = group_id, leg_id, strategy_id
        self.symbol, self.side, self.qty = symbol, side, qty
        self.order_type, self.method, self.purpose = order_type, method, purpose
        self.retry_count = retry_count
        self.limit_price, self.reference_price = limit_price, reference_price
        self.status, self.reason = OrderStatus.NEW, ""
        self.created_at = self.updated_at = created_at
        self.filled_qty = 0.0
        self.avg_fill_price: float | None = None
        self.fees = 0.0  # of its fills so far; in memory only (each fill row has its own fee)

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in (
            "id", "client_id", "group_id", "leg_id", "strategy_id", "symbol", "side", "qty",
            "order_type", "method", "purpose", "retry_count", "limit_price", "reference_price",
            "status", "reason", "created_at", "updated_at", "filled_qty", "avg_fill_price")}


class Fill(Record):
    __slots__ = ("order_id", "leg_id", "symbol", "side", "qty", "price", "fee", "liquidity", "ts")
    KIND = "fill"

    def __init__(self, id: int, order_id: int, leg_id: int | None, symbol: str, side: str,
                 qty: float, price: float, fee: float, liquidity: str, ts: float) -> None:
        self.id, self.saved = id, False
        self.order_id, self.leg_id, self.symbol, self.side = order_id, leg_id, symbol, side
        self.qty, self.price, self.fee, self.liquidity, self.ts = qty, price, fee, liquidity, ts

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in (
            "id", "order_id", "leg_id", "symbol", "side", "qty", "price", "fee", "liquidity", "ts")}


class SignalStatus(StrEnum):
    RECEIVED = "received"
    QUEUED = "queued"  # waiting for a free slot: its QueuedSignal says what became of it
    DONE = "done"
    REJECTED = "rejected"


class QueuedStatus(StrEnum):
    """A queued entry signal's (services.signal_queue.QueuedSignal)."""

    QUEUED = "queued"
    ENTERED = "entered"
    REJECTED = "rejected"
    EXPIRED = "expired"  # no slot within queue_ttl_s
    REMOVED = "removed"  # by an exit signal or the operator


class Signal(Record):
    """An intent to enter or exit (today: the operator's manual entries)."""

    __slots__ = ("strategy_id", "symbol", "side", "kind", "source", "price", "received_at",
                 "status", "outcome", "payload")
    KIND = "signal"

    def __init__(self, id: int, strategy_id: str, symbol: str | None, side: str, kind: str,
                 source: str, received_at: float, price: float | None = None,
                 payload: dict | None = None) -> None:
        self.id, self.saved = id, False
        self.strategy_id, self.symbol, self.side, self.kind = strategy_id, symbol, side, kind
        self.source, self.price, self.received_at = source, price, received_at
        self.status, self.outcome = SignalStatus.RECEIVED, ""
        self.payload = payload or {}

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in (
            "id", "strategy_id", "symbol", "side", "kind", "source", "price", "received_at",
            "status", "outcome", "payload")}


class EventRecord(Record):
    """One audit-trail entry. Alerts are events with needs_ack."""

    __slots__ = ("ts", "level", "category", "message", "strategy_id", "symbol", "group_id",
                 "payload", "needs_ack", "acked_at")
    KIND = "event"

    def __init__(self, id: int, ts: float, level: str, category: str, message: str,
                 strategy_id: str | None = None, symbol: str | None = None,
                 group_id: int | None = None, payload: dict | None = None,
                 needs_ack: bool = False) -> None:
        self.id, self.saved = id, False
        self.ts, self.level, self.category, self.message = ts, level, category, message
        self.strategy_id, self.symbol, self.group_id = strategy_id, symbol, group_id
        self.payload = payload or {}
        self.needs_ack, self.acked_at = needs_ack, None

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in (
            "id", "ts", "level", "category", "message", "strategy_id", "symbol", "group_id",
            "payload", "needs_ack", "acked_at")}


class StrategyState(Record):
    """Operator state of a strategy that must survive a restart."""

    __slots__ = ("strategy_id", "paused")
    KIND = "strategy_state"

    def __init__(self, strategy_id: str, paused: bool = False) -> None:
        self.id, self.saved = strategy_id, False
        self.strategy_id, self.paused = strategy_id, paused

    def row(self) -> dict[str, Any]:
        return {"strategy_id": self.strategy_id, "paused": self.paused}


class LastQuote(Record):
    """A symbol's latest quote as stored (id: the symbol)."""

    __slots__ = ("bid", "ask", "last", "ts")
    KIND = "last_quote"

    def __init__(self, symbol: str, bid: float, ask: float, last: float, ts: float) -> None:
        self.id, self.saved = symbol, False
        self.bid, self.ask, self.last, self.ts = bid, ask, last, ts

    def row(self) -> dict[str, Any]:
        return {"symbol": self.id, "bid": self.bid, "ask": self.ask, "last": self.last, "ts": self.ts}
