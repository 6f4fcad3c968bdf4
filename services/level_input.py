"""What an operator types for a position's levels, read the same way by the TUI's edit form
and by `tui-trader levels`: an empty text removes a level. Times of day are UTC, like every
time the TUI and the CLI show. Each parser raises ValueError with a message naming the
grammar; the engine then checks the values against the mark. The checks themselves are in
services.rules.levels, shared with the engine and the settings."""

from __future__ import annotations

import re

from .rules.distance import parse_distance
from .rules.levels import (TIME_EXIT_HORIZON_S, activation_distance, price_problem, trail_distance_problem,
                           within_horizon)

_IN = re.compile(r"^\+\s*(\d+(?:\.\d+)?)\s*([smh]?)$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")


def parse_price(raw: str) -> float | None:
    """'' -> None (remove the level); otherwise a positive number."""
    text = raw.strip().replace(",", "")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"not a number: {raw.strip()!r}") from None
    problem = price_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def parse_trail(raw: str) -> str | float | None:
    """'' -> None (no trailing stop); "0.5%" (of the peak) or points."""
    text = raw.strip()
    if not text:
        return None
    distance = parse_distance(text)  # raises ValueError with the grammar in its message
    problem = trail_distance_problem(distance)
    if problem is not None:
        raise ValueError(problem)
    return text if distance.unit == "pct" else distance.value


def parse_activation(raw: str) -> str | float:
    """'' -> 0 (armed from now); "0.2%" of the entry or points."""
    text = raw.strip()
    distance = activation_distance(text or None)
    return text if distance.unit == "pct" else distance.value


def parse_time_exit(raw: str, now: float) -> float | None:
    """'' -> None (no time exit); "+90s", "+90", "+5m", "+1h" from now; or "HH:MM[:SS]" UTC,
    the next time the clock shows it. At most TIME_EXIT_HORIZON_S ahead."""
    text = raw.strip().lower()
    if not text:
        return None
    match = _IN.match(text)
    if match:
        at = now + float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]
        if not within_horizon(at, now):
            raise ValueError(f"{raw.strip()!r} is more than {TIME_EXIT_HORIZON_S / 86_400:g} days ahead")
        return at
    match = _CLOCK.match(text)
    if match and int(match.group(1)) < 24 and int(match.group(2)) < 60 and int(match.group(3) or 0) < 60:
        seconds = int(match.group(1)) * 3600 + int(match.group(2)) * 60 + int(match.group(3) or 0)
        at = now - now % 86_400 + seconds
        return at if at > now else at + 86_400
    raise ValueError(f"not a time: {raw.strip()!r} (use HH:MM UTC, or +90s / +5m / +1h from now)")
