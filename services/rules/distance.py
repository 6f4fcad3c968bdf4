"""A price distance (a stop, a target, a trailing distance): a fraction of a reference price or
price points, and how the operator and the settings write one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .bounds import MAX_NUMBER


@dataclass(frozen=True, slots=True)
class Distance:
    """A price distance: a fraction of a reference price ("pct") or price points."""

    value: float
    unit: Literal["pct", "points"]

    def amount(self, ref: float) -> float:
        return ref * self.value if self.unit == "pct" else self.value

    def __str__(self) -> str:
        return f"{self.value * 100:g}%" if self.unit == "pct" else f"{self.value:g}"


def parse_distance(raw: object) -> Distance:
    """"0.5%" is half a percent of the reference price; a plain number is price points."""
    if isinstance(raw, Distance):
        return raw
    if isinstance(raw, bool):
        raise ValueError('expected a percentage like "0.5%" or a number of points like 25')
    try:
        if isinstance(raw, (int, float)):
            value, unit = float(raw), "points"
        elif isinstance(raw, str) and raw.strip().endswith("%"):
            value, unit = float(raw.strip()[:-1]) / 100.0, "pct"
        elif isinstance(raw, str):
            value, unit = float(raw.strip()), "points"
        else:
            raise ValueError
    except ValueError:
        raise ValueError(
            f'expected a percentage like "0.5%" or a number of points like 25, got {raw!r}'
        ) from None
    if not 0 <= value < (10.0 if unit == "pct" else MAX_NUMBER):  # also refuses nan
        raise ValueError(f"must be at least 0 and below {'1000%' if unit == 'pct' else f'{MAX_NUMBER:g} points'}, "
                         f"got {raw!r}")
    return Distance(value, unit)  # type: ignore[arg-type]
