"""A position's exit levels: each check written once, and the edit that applies them.

The TUI's edit form and `tui-trader levels` (services.level_input) read what the operator
types with these checks, the settings (services.config) check a strategy's trailing distance
with them, and the engine validates an edit against the mark with `edit_errors`.

Time-exit horizon: a time exit is at most TIME_EXIT_HORIZON_S ahead, the year the settings
allow for a strategy's `time_exit_s` (bounds.MAX_SECONDS). One bound, so the operator can set
any time exit a strategy could have given the position (a few weeks out included), while a
typo of a few zeros (`+100000000`, three years) is still refused, not scheduled."""

from __future__ import annotations

import math

from ..amounts import local_time, px
from ..domain import Leg
from .bounds import MAX_SECONDS
from .distance import Distance, parse_distance

TIME_EXIT_HORIZON_S = float(MAX_SECONDS)
"""A time exit is at most this far ahead (see the module's docstring)."""

KEEP = object()
"""edit_errors (and the engine's edit_levels): leave this level as it is (None removes it)."""

EDITABLE = ("stop", "target", "trail_distance", "trail_activation", "trail_level", "time_exit_at")
"""The leg's fields an edit may change (trail_level moves with a new distance)."""
LEVEL_LABELS = {"trail_distance": "trailing distance", "trail_activation": "trailing arms at",
                "trail_level": "trailing level", "time_exit_at": "time exit"}
"""How a level is named to the operator (an edit's message), where its field name differs."""


def price_problem(price: float) -> str | None:
    """Why `price` cannot be a stop or target, or None: it must be a finite price above 0."""
    return None if math.isfinite(price) and price > 0 else "must be a positive price"


def level_problem(name: str, price: float, mark: float, d: int) -> str | None:
    """Why a stop or target (`name`) at `price` cannot be set on a leg of direction `d` (1
    long, -1 short) marked at `mark`, or None: it must be a positive price on its side of the
    mark. A long's stop is below the mark and its target above (a short's mirrored); a level
    exactly at the mark is refused: it would exit on the next quote."""
    if (problem := price_problem(price)) is not None:
        return f"{name} {problem}"
    want = -1 if name == "stop" else 1  # the side of the mark the level belongs on, for a long
    if (price - mark) * d * want > 0:
        return None
    where = "above" if d * want > 0 else "below"
    return (f"{name} {px(price)} is on the wrong side: a {'long' if d > 0 else 'short'}'s {name} must be "
            f"{where} the mark {px(mark)}")


def trail_distance_problem(distance: Distance) -> str | None:
    """Why a trailing distance cannot be used, or None: it must be above 0 and, as a
    percentage of the peak, below 100 % (at 100 % a long's level would be 0)."""
    if not distance.value > 0:
        return "must be above 0"
    if distance.unit == "pct" and distance.value >= 1:
        return "must be below 100%"
    return None


def activation_distance(raw: object) -> Distance:
    """The profit over the entry that arms the trailing stop: "0.2%" of the entry or points,
    at least 0 (parse_distance's bounds); None is 0, armed at once. Raises ValueError naming
    the grammar."""
    return parse_distance(0 if raw is None else raw)


def within_horizon(at: float, now: float) -> bool:
    """A time exit at `at` (epoch seconds) is a time and at most TIME_EXIT_HORIZON_S ahead of
    `now` (it may be past: the position then exits at once)."""
    return 0 < at <= now + TIME_EXIT_HORIZON_S


def edit_errors(leg: Leg, now: float, *, stop=KEEP, target=KEEP, trail_distance=KEEP, trail_activation=KEEP,
                time_exit_at=KEEP) -> list[str]:
    """Apply an edit to `leg` (a copy) and say what is wrong with it, one line per field.
    Prices are absolute, distances "0.5%" or points, the time exit epoch seconds; None
    removes a level, KEEP leaves it."""
    mark, d = leg.mark, leg.dir
    errors = []
    for name, price in (("stop", stop), ("target", target)):
        if price is KEEP:
            continue
        problem = None if price is None else level_problem(name, price, mark, d)
        if problem is not None:
            errors.append(problem)
        else:
            setattr(leg, name, price)
    if trail_activation is not KEEP:
        try:
            activation = activation_distance(trail_activation)
        except ValueError as exc:
            errors.append(f"trailing activation: {exc}")
        else:
            if leg.trail_active:
                errors.append("trailing activation: the trailing stop is already armed; the activation no longer applies")
            else:
                leg.trail_activation, leg.trail_act_amount = activation, activation.amount(leg.entry)
    if trail_distance is None:
        leg.trail_distance = leg.trail_activation = None
        leg.trail_active = False
        leg.trail_peak = leg.trail_level = None
        leg.trail_updated_at = now
    elif trail_distance is not KEEP:
        try:
            distance = parse_distance(trail_distance)
            if trail_distance_problem(distance) is not None:
                raise ValueError("trailing distance must be above 0 (and below 100%)")
        except ValueError as exc:
            errors.append(str(exc))
        else:
            leg.trail_distance = distance
            if leg.trail_active:  # the level moves with the new distance, never loosening
                candidate = leg.trail_level_from(leg.trail_peak)
                level = (max if d > 0 else min)(leg.trail_level, candidate)
                if level != leg.trail_level:
                    leg.trail_level, leg.trail_updated_at = level, now
                    leg.trail_moves.append((now, level))
            elif leg.trail_activation is None:  # a trail added to a position that had none arms now
                leg.trail_activation, leg.trail_act_amount = Distance(0.0, "points"), 0.0
    if leg.trail_distance is not None and not leg.trail_active and leg.trail_act_amount == 0:
        leg.arm_trail(mark, now)  # activation 0: armed from now, the peak starting at the mark
    if time_exit_at is not KEEP:
        if time_exit_at is not None and not within_horizon(time_exit_at, now):
            errors.append("time exit must be a time (epoch seconds) within the next year")
        else:
            leg.time_exit_at = time_exit_at
    return errors


def level_value(v: object) -> object:
    """A level as an edit's audit payload holds it: a price or time as is, a distance as text."""
    return v if v is None or isinstance(v, float) else str(v)


def fmt_level(name: str, v: object) -> str:
    """A level as an edit's message shows it (old -> new); times in UTC, like the TUI's."""
    if v is None:
        return "none"
    if name == "time_exit_at":
        return local_time(v, "UTC")
    return px(v) if isinstance(v, float) else str(v)
