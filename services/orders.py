"""The order lifecycle as a pure state machine (no I/O).

Submit and cancel are requests; an execution client answers with ExecEvents, and `advance`
applies one event to an order's OrderState. Fills accumulate (quantity, volume-weighted price,
fees). A fill is honoured whenever money may have moved: after a cancel request, and after the
venue said the order was cancelled or expired (then flagged late, for an alert). Events the
table below does not allow are refused and change nothing."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import Enum, StrEnum


class OrderStatus(StrEnum):
    NEW = "new"  # sent, not yet acknowledged
    WORKING = "working"
    PARTIALLY_FILLED = "partially_filled"
    CANCEL_REQUESTED = "cancel_requested"  # the venue acknowledged a cancel request
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"


FINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED})


class OrderPurpose(StrEnum):
    ENTRY = "entry"
    EXIT = "exit"


class ExecKind(StrEnum):
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCEL_REQUESTED = "cancel_requested"  # the venue acknowledged a cancel request, not yet done
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What the engine hands an execution client (never its own Order record)."""

    order_id: int
    client_id: str
    symbol: str
    side: str  # "buy" | "sell"
    qty: float
    order_type: str  # "market" | "limit"
    limit_price: float | None = None


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """A working order as a client reports it (for reconciliation)."""

    request: OrderRequest
    filled_qty: float


@dataclass(frozen=True, slots=True)
class ExecEvent:
    """What a client reports about one order. qty, price, fee and liquidity are this fill's."""

    order_id: int
    kind: ExecKind
    ts: float
    qty: float = 0.0
    price: float = 0.0
    fee: float = 0.0
    liquidity: str = ""  # "maker" | "taker"
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OrderState:
    status: OrderStatus
    qty: float
    filled_qty: float = 0.0
    avg_price: float | None = None
    fees: float = 0.0
    cancel_requested: bool = False  # the engine asked to cancel (the venue may not know yet)

    @property
    def final(self) -> bool:
        return self.status in FINAL

    @property
    def remaining(self) -> float:
        return 0.0 if self.status is OrderStatus.FILLED else max(0.0, self.qty - self.filled_qty)


@dataclass(frozen=True, slots=True)
class AppliedFill:
    qty: float
    price: float
    fee: float


@dataclass(frozen=True, slots=True)
class Step:
    """What one event did: the new state, the fill it applied, whether the order became final
    with it, whether the fill came after the order had ended (money moved anyway: alert), or
    why the event was refused (then the state is unchanged)."""

    state: OrderState
    fill: AppliedFill | None = None
    final: bool = False
    late: bool = False
    problem: str = ""


class _Then(Enum):
    FILL = "fill"  # the status follows the quantities: partially filled or filled
    LATE_FILL = "late fill"  # the fill is kept, the order stays as it ended


S, K = OrderStatus, ExecKind
_FILLS = {K.PARTIALLY_FILLED: _Then.FILL, K.FILLED: _Then.FILL}
_LATE_FILLS = {K.PARTIALLY_FILLED: _Then.LATE_FILL, K.FILLED: _Then.LATE_FILL}

# Every allowed transition: status -> {event: next status}. Anything else is refused.
TRANSITIONS: dict[OrderStatus, dict[ExecKind, OrderStatus | _Then]] = {
    S.NEW: {K.ACCEPTED: S.WORKING, **_FILLS, K.CANCEL_REQUESTED: S.CANCEL_REQUESTED,
            K.CANCELLED: S.CANCELLED, K.REJECTED: S.REJECTED, K.EXPIRED: S.EXPIRED},
    S.WORKING: {**_FILLS, K.CANCEL_REQUESTED: S.CANCEL_REQUESTED, K.CANCELLED: S.CANCELLED, K.EXPIRED: S.EXPIRED},
    S.PARTIALLY_FILLED: {**_FILLS, K.CANCEL_REQUESTED: S.CANCEL_REQUESTED, K.CANCELLED: S.CANCELLED,
                         K.EXPIRED: S.EXPIRED},
    S.CANCEL_REQUESTED: {**_FILLS, K.CANCELLED: S.CANCELLED, K.EXPIRED: S.EXPIRED},
    S.CANCELLED: _LATE_FILLS,
    S.EXPIRED: _LATE_FILLS,
    S.FILLED: {},
    S.REJECTED: {},
}
del S, K

QTY_TOLERANCE = 1e-9
"""Relative: an order is filled when its filled quantity is this close to its quantity, and a
fill may take it this far above."""


def advance(state: OrderState, event: ExecEvent) -> Step:
    """Apply one event to an order. A refused event (Step.problem) changes nothing."""
    then = TRANSITIONS[state.status].get(event.kind)
    if then is None:
        return Step(state, problem=f"{event.kind} is not expected for an order that is {state.status}")
    # new states are built field by field: dataclasses.replace costs several times as much per order
    if isinstance(then, OrderStatus):
        new = OrderState(then, state.qty, state.filled_qty, state.avg_price, state.fees,
                         state.cancel_requested or then is OrderStatus.CANCEL_REQUESTED)
        return Step(new, final=new.final)
    problem = _bad_fill(state, event)
    if problem:
        return Step(state, problem=problem)
    filled = state.filled_qty + event.qty
    avg = (event.price if state.avg_price is None
           else (state.avg_price * state.filled_qty + event.price * event.qty) / filled)
    fill = AppliedFill(event.qty, event.price, event.fee)
    fees = state.fees + event.fee
    if then is _Then.LATE_FILL:
        return Step(OrderState(state.status, state.qty, filled, avg, fees, state.cancel_requested), fill, late=True)
    done = filled >= state.qty * (1.0 - QTY_TOLERANCE)
    status = OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED
    return Step(OrderState(status, state.qty, filled, avg, fees, state.cancel_requested), fill, final=done)


def request_cancel(state: OrderState) -> Step:
    """The engine asks to cancel: noted on the order, which works on until the venue answers."""
    if state.final:
        return Step(state, problem=f"the order is already {state.status}")
    return Step(replace(state, cancel_requested=True))


def _bad_fill(state: OrderState, event: ExecEvent) -> str:
    qty, price = event.qty, event.price
    if not (math.isfinite(qty) and qty > 0):
        return f"a fill needs a positive quantity, got {qty!r}"
    if not (math.isfinite(price) and price > 0):
        return f"a fill needs a positive price, got {price!r}"
    if not math.isfinite(event.fee):
        return f"a fill needs a finite fee, got {event.fee!r}"
    if state.filled_qty + qty > state.qty * (1.0 + QTY_TOLERANCE):
        return (f"a fill of {qty:g} would take the filled quantity to {state.filled_qty + qty:g}, "
                f"above the order's {state.qty:g}")
    return ""
