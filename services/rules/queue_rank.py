"""Queue ranking (DESIGN §3 pool & queue): which queued entry signal takes the next free slot,
and what places each one where it stands.

Order: (0) a signal the operator promoted, (1) a pyramid continuation of an active group, (2)
the deepest loss %: how far the current price is through the signal's price in the trade's
favour (a buy signal at 100 with the price now at 98 is 2 % deep), (3) the highest replacement
count, (4) first in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from ..domain import side_dir


class Standing(NamedTuple):
    """A queued signal as the ranking sees it."""

    id: int
    pinned: bool  # promoted by the operator
    pyramid: bool  # a pyramid continuation of an active group
    depth: float | None  # depth_pct; None: no price to compare
    replacements: int
    queued_at: float
    priced: bool  # the signal has a price (a market signal has none)


def depth_pct(side: str, price: float | None, mark: float | None) -> float | None:
    """How far `mark` is through the signal's price in the trade's favour, in %."""
    if mark is None or not price:
        return None
    return (price - mark) * side_dir(side) / price * 100.0


def rank_key(s: Standing) -> tuple:
    """Sorts the next signal first; the id settles what nothing else does."""
    return (not s.pinned, not s.pyramid, -(s.depth if s.depth is not None else float("-inf")), -s.replacements,
            s.queued_at, s.id)


def rank_reasons(ranked: Sequence[Standing]) -> list[str]:
    """What places each signal of the ranked queue ahead of the next one; for the last one,
    what keeps it behind the one ahead when they tie on depth."""
    out = []
    for i, s in enumerate(ranked):
        last = i == len(ranked) - 1
        other = ranked[i - 1] if last and i else ranked[i + 1] if not last else None
        out.append(rank_reason(s, other, last))
    return out


def rank_reason(s: Standing, other: Standing | None, last: bool) -> str:
    """What places `s` ahead of `other` (the next one), or behind it when `last` (the one ahead)."""
    if s.pinned:
        return "promoted by the operator"
    if s.pyramid:
        return "pyramid of an open group"
    if other is None or other.pinned or other.pyramid or s.depth != other.depth:
        if s.depth is None:
            return "no current price to compare" if s.priced else "no signal price to compare"
        return f"{s.depth:+.2f}% through its price"
    if s.replacements != other.replacements:
        return f"{'fewer' if last else 'more'} replacements ({s.replacements})"
    return "later in" if last else "first in"
