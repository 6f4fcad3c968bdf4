"""Instrument precision: tick size, lot step and minimum notional (DESIGN §3 Precision).
Prices are rounded to the tick (a buy down, a sell up: never worse than asked), quantities
floored to the step. Rules come from a source; a symbol without rules is not guessed."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Protocol



@dataclass(frozen=True, slots=True)
class Rules:
    tick_size: float | None = None
    lot_step: float | None = None
    min_notional: float = 0.0


class RulesSource(Protocol):
    def rules(self, symbol: str) -> Rules | None:
        """The rules of a symbol, or None while they are not known (the entry is held)."""


class SymbolRules(Protocol):
    """What a symbol's settings say of its precision (services.config.SymbolConfig)."""

    tick_size: float | None
    lot_step: float | None
    min_notional: float


class SettingsRules:
    """Rules of the simulated symbols, from settings.toml."""

    def __init__(self, symbols: Mapping[str, SymbolRules]) -> None:
        self._rules = {s: Rules(c.tick_size, c.lot_step, c.min_notional) for s, c in symbols.items()}

    def rules(self, symbol: str) -> Rules | None:
        return self._rules.get(symbol)

    async def refresh(self) -> None:
        """Nothing to load: the settings change only at a restart."""


def _decimals(step: float) -> int:
    return max(0, -math.floor(math.log10(step)) + 6)


def _noise(n: float) -> float:
    """How far a count of steps (the quotient of two decimals) may be off a whole number by float
    error alone: a few parts in 1e16 of itself, so more than 1e-9 past ten million steps
    (0.32904922 / 1e-8 is 32904921.999999996)."""
    return max(1e-9, abs(n) * 1e-12)


def floor_qty(qty: float, step: float | None) -> float:
    if not step:
        return qty
    n = qty / step
    return round(math.floor(n + _noise(n)) * step, _decimals(step))


def round_price(price: float, side: str, tick: float | None) -> float:
    """A buy is rounded down to the tick, a sell up."""
    if not tick:
        return price
    n = price / tick
    n = math.floor(n + _noise(n)) if side == "buy" else math.ceil(n - _noise(n))
    return round(n * tick, _decimals(tick))
