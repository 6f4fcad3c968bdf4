"""Exit rules of one leg (DESIGN §3): which rule a price meets, the price the rules compare,
where a trailing stop stands and how a mark moves it, what a close realizes, and the levels a
leg takes from its strategy at entry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..market import Quote, mark_of
from .schedule import planned_exit

if TYPE_CHECKING:
    from ..config import StrategyConfig
    from ..domain import Leg
    from .distance import Distance


def exit_reason(leg: Leg, px: float, now: float) -> str | None:
    """The first exit rule this price meets, in DESIGN §3 precedence."""
    d = leg.dir
    stop = leg.stop
    if stop is not None and (px - stop) * d <= 0:
        return "stop_loss"
    if leg.trail_active and (px - leg.trail_level) * d <= 0:
        return "trailing_stop"
    target = leg.target
    if target is not None and (px - target) * d >= 0:
        return "target"
    if leg.time_exit_at is not None and now >= leg.time_exit_at:
        return "time"
    return None


def trail_level(distance: Distance, d: int, extreme: float) -> float:
    """The trailing level a distance puts behind a peak (long, d = +1) or a trough (short, -1)."""
    if distance.unit == "pct":
        return extreme * (1.0 - distance.value * d)
    return extreme - distance.value * d


def trail_step(distance: Distance, d: int, peak: float, level: float, mark: float) -> tuple[float, float]:
    """An armed trailing stop's (peak, level) after a mark: the peak follows a mark beyond it in
    the trade's favour, and the level follows the peak but never loosens (a distance widened by
    an edit leaves it where it was until the peak has gone far enough)."""
    if (mark - peak) * d <= 0:
        return peak, level
    candidate = trail_level(distance, d, mark)
    return mark, candidate if (candidate - level) * d > 0 else level


def trigger_px(leg: Leg, q: Quote) -> float:
    """The price a leg's exit rules compare (DESIGN §3 trigger_price)."""
    if leg.trigger == "bid_ask":
        return q.bid if leg.dir > 0 else q.ask
    if leg.trigger == "last":
        return q.last or mark_of(q)
    return mark_of(q)


def close_pnl(leg: Leg) -> float:
    """What a closed leg's close realized (a part closed before took its share of the entry fee then)."""
    return (leg.exit_price - leg.entry) * leg.qty * leg.dir - leg.entry_fee - leg.exit_fee


def reduce_pnl(leg: Leg, qty: float, price: float, fee: float) -> tuple[float, float]:
    """(realized, entry fee share) of closing `qty` of an open leg at `price`: the part takes
    its share of the entry fee with it."""
    fee_in = leg.entry_fee * qty / leg.qty
    return (price - leg.entry) * qty * leg.dir - fee_in - fee, fee_in


def apply_entry_levels(leg: Leg, cfg: StrategyConfig, now: float) -> None:
    """The stop, target, trailing stop and time exit a leg takes from its strategy at entry;
    the schedule's planned exit when it comes before the time exit."""
    entry, d = leg.entry, leg.dir
    if cfg.stop_loss is not None:
        leg.stop = entry - d * cfg.stop_loss.amount(entry)
    if cfg.target is not None:
        leg.target = entry + d * cfg.target.amount(entry)
    if cfg.trail_distance is not None:
        leg.trail_distance = cfg.trail_distance
        leg.trail_activation = cfg.trail_activation
        leg.trail_act_amount = cfg.trail_activation.amount(entry)
        if leg.trail_act_amount == 0:
            leg.arm_trail(leg.mark, now)  # armed at entry: the peak starts at the entry quote's mark
    if cfg.time_exit_s is not None:
        leg.time_exit_at = now + cfg.time_exit_s
    planned = planned_exit(cfg.schedule, now) if cfg.schedule is not None else None
    if planned is not None and (leg.time_exit_at is None or planned < leg.time_exit_at):
        leg.time_exit_at = planned
