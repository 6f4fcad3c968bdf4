"""The loss-offsetting risk engine's arithmetic (DESIGN §3 Risk engine), free of the engine.

A stuck loser is eligible once its loss, pyramids, post-full timer and age say so and the
operator has neither blocked nor skipped it. Its plan closes part of the book's winners,
biggest first and at most `max_winners_to_combine`, so that their realized profit (net of
entry and exit fees) pays for the loser's loss and its exit fee; then the loser closes."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ..domain import side_dir
from .precision import floor_qty

if TYPE_CHECKING:  # its type only: at run time the rules import no settings
    from ..config import RiskEngineConfig

_EPS = 1e-9  # amounts (money, quantity, seconds) below this are float noise


@dataclass(frozen=True, slots=True)
class Leg:
    leg_id: int
    qty: float  # > 0
    entry: float  # fill price
    entry_fee: float  # paid at entry, account currency
    # A basket's legs are on symbols of their own, each with its own mark and lot step; a leg
    # without a symbol is on its position's (its mark and lot step).
    symbol: str = ""
    mark: float | None = None
    lot_step: float | None = None


@dataclass(frozen=True, slots=True)
class Position:
    """One open group as the risk engine sees it."""

    group_id: int
    strategy_id: str
    symbol: str
    side: Literal["buy", "sell"]
    legs: tuple[Leg, ...]  # open legs only
    mark: float
    opened_at: float
    lot_step: float | None = None
    pyramids: int = 0  # pyramids added to it
    max_pyramids: int = 0  # its strategy's
    layers_total: int = 0  # DCA layers of all its grids
    layers_submitted: int = 0
    layers_filled: int = 0
    dca_submitted_at: float | None = None  # when every layer's order had been placed
    dca_filled_at: float | None = None  # when every layer had filled
    fifth_pyramid_at: float | None = None
    blocked: bool = False  # by the operator
    skipped: bool = False  # "skip once", until it stops being eligible

    def symbol_of(self, leg: Leg) -> str:
        return leg.symbol or self.symbol

    def mark_of(self, leg: Leg) -> float:
        return self.mark if leg.mark is None else leg.mark

    def lot_step_of(self, leg: Leg) -> float | None:
        return leg.lot_step if leg.symbol else self.lot_step

    def per_unit(self, leg: Leg, fee_rate: float) -> float:
        """What closing one unit of this leg at its mark realizes, net of fees."""
        mark = self.mark_of(leg)
        return (mark - leg.entry) * side_dir(self.side) - leg.entry_fee / leg.qty - mark * fee_rate

    @property
    def unrealized(self) -> float:
        return sum((self.mark_of(leg) - leg.entry) * leg.qty * side_dir(self.side) - leg.entry_fee for leg in self.legs)

    @property
    def loss_pct(self) -> float:
        """The unrealized loss as a percent of cost; 0 when not losing."""
        cost = sum(leg.entry * leg.qty for leg in self.legs)
        return -self.unrealized / cost * 100.0 if self.unrealized < 0 and cost else 0.0


@dataclass(frozen=True, slots=True)
class Check:
    name: Literal["loss", "pyramids", "timer", "age", "blocked", "skipped"]
    passed: bool
    text: str  # for the operator


@dataclass(frozen=True, slots=True)
class Eligibility:
    checks: tuple[Check, ...]  # one per condition, in the order above
    timer_remaining: float | None  # seconds; None while the timer has not started

    @property
    def eligible(self) -> bool:
        return all(check.passed for check in self.checks)


_TIMER_START = {
    "after_5_pyramids": "the fifth pyramid",
    "after_all_dca_submitted": "every DCA layer was placed",
    "after_all_dca_filled": "every DCA layer filled",
}


def _duration(seconds: float) -> str:
    """A short human duration: 45s, 4m05s, 2h03m."""
    s = max(0, round(seconds))
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def eligibility(p: Position, cfg: RiskEngineConfig, now: float) -> Eligibility:
    loss_ok = p.loss_pct >= cfg.loss_threshold_pct
    all_used = p.pyramids >= p.max_pyramids
    pyramids = f"pyramids {p.pyramids}/{p.max_pyramids}"
    pyramids += (": all used" if all_used else ": not all used") if cfg.require_max_pyramids else " (not required)"
    age = now - p.opened_at
    age_ok = cfg.min_age_s is None or age >= cfg.min_age_s
    age_text = (f"age {_duration(age)} (no minimum)" if cfg.min_age_s is None
                else f"age {_duration(age)} {'>=' if age_ok else '<'} {_duration(cfg.min_age_s)}")
    timer, remaining = _timer(p, cfg, now)
    return Eligibility((
        Check("loss", loss_ok, f"loss {p.loss_pct:.2f}% {'>=' if loss_ok else '<'} {cfg.loss_threshold_pct:.2f}%"),
        Check("pyramids", all_used or not cfg.require_max_pyramids, pyramids),
        timer,
        Check("age", age_ok, age_text),
        Check("blocked", not p.blocked, "blocked by the operator" if p.blocked else "not blocked"),
        Check("skipped", not p.skipped, "skipped once by the operator" if p.skipped else "not skipped"),
    ), remaining)


def _timer(p: Position, cfg: RiskEngineConfig, now: float) -> tuple[Check, float | None]:
    start = {"after_5_pyramids": p.fifth_pyramid_at, "after_all_dca_submitted": p.dca_submitted_at,
             "after_all_dca_filled": p.dca_filled_at}[cfg.timer_start]
    if start is None:
        return Check("timer", False, f"timer not started: {_progress(p, cfg)}"), None
    remaining = max(0.0, start + cfg.timer_s - now)
    grid = p.layers_total or cfg.timer_start == "after_5_pyramids"
    since = _TIMER_START[cfg.timer_start] if grid else "it entered"
    if remaining > 0:
        return Check("timer", False, f"timer: {_duration(math.ceil(remaining - _EPS))} left (started when {since})"), remaining
    return Check("timer", True, f"timer: {_duration(cfg.timer_s)} since {since}"), 0.0


def _progress(p: Position, cfg: RiskEngineConfig) -> str:
    if cfg.timer_start == "after_5_pyramids":
        never = f" (max_pyramids is {p.max_pyramids}, so it never starts)" if p.max_pyramids < 5 else ""
        return f"{p.pyramids} of 5 pyramids{never}"
    if cfg.timer_start == "after_all_dca_submitted":
        return f"{p.layers_submitted} of {p.layers_total} layers placed"
    return f"{p.layers_filled} of {p.layers_total} layers filled"


@dataclass(frozen=True, slots=True)
class Close:
    """A quantity to close at the mark and what it is expected to realize, net of fees.
    A step of the plan names one leg; a winner's total or the loser's close has leg_id None."""

    group_id: int
    symbol: str
    leg_id: int | None
    qty: float
    expected_realized: float


@dataclass(frozen=True, slots=True)
class Plan:
    loser: Close  # the whole loser
    steps: tuple[Close, ...]  # the winners' legs, in the order they are closed
    winners: tuple[Close, ...]  # per winner, its steps summed
    required: float  # the loser's loss plus its exit fee
    covered: float  # what the steps realize
    max_winners: int
    notes: tuple[str, ...]  # quantities the lot step leaves open

    @property
    def shortfall(self) -> float:
        gap = self.required - self.covered
        return gap if gap > _EPS else 0.0

    @property
    def covers(self) -> bool:
        return self.shortfall == 0.0


def offset_plan(loser: Position, candidates: Iterable[Position], cfg: RiskEngineConfig,
                fee_rate: float) -> Plan:
    """Which winners pay for `loser`, and how much of each (whole lot steps) closes."""
    loser_qty = sum(leg.qty for leg in loser.legs)
    loser_realized = loser.unrealized - sum(loser.mark_of(leg) * leg.qty for leg in loser.legs) * fee_rate
    required = max(0.0, -loser_realized)
    winners = sorted((c for c in candidates if c.group_id != loser.group_id and c.unrealized > 0),
                     key=lambda c: (-c.unrealized, c.group_id))
    steps: list[Close] = []
    totals: list[Close] = []
    notes: list[str] = []
    remaining = required
    for winner in winners:
        if len(totals) == cfg.max_winners_to_combine:
            break
        taken = _take(winner, remaining, fee_rate, notes)
        if taken:
            steps += taken
            realized = sum(s.expected_realized for s in taken)
            totals.append(Close(winner.group_id, winner.symbol, None, sum(s.qty for s in taken), realized))
            remaining -= realized
    covered = sum(t.expected_realized for t in totals)
    return Plan(Close(loser.group_id, loser.symbol, None, loser_qty, loser_realized), tuple(steps),
                tuple(totals), required, covered, cfg.max_winners_to_combine, tuple(notes))


def _take(winner: Position, remaining: float, fee_rate: float, notes: list[str]) -> list[Close]:
    """Its most profitable legs first, each closed by just enough whole steps (of its own
    symbol's lot step) to cover what remains (its whole closable quantity when that is not enough)."""
    legs = sorted(((winner.per_unit(leg, fee_rate), leg) for leg in winner.legs), key=lambda x: (-x[0], x[1].leg_id))
    taken = []
    for per_unit, leg in legs:
        if remaining <= _EPS or per_unit <= 0:
            break
        step, symbol = winner.lot_step_of(leg), winner.symbol_of(leg)
        closable = floor_qty(leg.qty, step)
        # the needed quantity rounded up to the step: flooring its negative rounds it up
        qty = min(-floor_qty(-remaining / per_unit, step), closable)
        if qty == closable and leg.qty - closable > _EPS:
            notes.append(f"#{winner.group_id} leg {leg.leg_id}: {leg.qty - closable:.8g} {symbol} stays open "
                         f"(less than a lot step of {step:g})")
        if qty > 0:
            taken.append(Close(winner.group_id, symbol, leg.leg_id, qty, qty * per_unit))
            remaining -= qty * per_unit
    return taken


def summary(plan: Plan) -> str:
    """The plan in one line for the operator."""
    need = f"{plan.required:,.2f}"
    if not plan.covers:
        why = f"max_winners_to_combine {plan.max_winners}" if len(plan.winners) == plan.max_winners else "no other winner to take from"
        return f"not covered: winners give {plan.covered:+,.2f} of {need} needed ({why})"
    per_symbol: dict[tuple[int, str], tuple[float, float]] = {}  # a basket's legs are named each on its own symbol
    for st in plan.steps:
        qty, realized = per_symbol.get((st.group_id, st.symbol), (0.0, 0.0))
        per_symbol[st.group_id, st.symbol] = (qty + st.qty, realized + st.expected_realized)
    closes = [f"{qty:.8g} {symbol} of #{gid} ({realized:+,.2f})" for (gid, symbol), (qty, realized) in per_symbol.items()]
    if not closes:
        return f"#{plan.loser.group_id} closes without a winner: nothing to cover"
    listed = ", ".join(closes[:-1]) + " and " + closes[-1] if len(closes) > 1 else closes[0]
    return f"close {listed} to cover #{plan.loser.group_id}'s -{need}; covered {plan.covered:+,.2f}"
