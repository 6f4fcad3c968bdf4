"""The DCA grid calculator (DESIGN §3 DCA grid).

Layer i rests at P_i = P0 * (1 - gap_i) for a long (1 + gap_i for a short), rounded to the
tick in the trader's favour; its quantity is capital * weight_i / sum(weights) / P_i, floored
to the lot step. A layer whose order would be under the minimum notional (or round to zero)
cannot be placed: settings are checked at the symbol's start price, entries at P0."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .precision import floor_qty, round_price


@dataclass(frozen=True, slots=True)
class LayerPlan:
    index: int  # 0-based position in the strategy's layers
    gap_pct: float
    weight: float
    tp_pct: float
    price: float  # on the tick
    qty: float  # on the lot step

    @property
    def value(self) -> float:
        return self.price * self.qty


def grid(layers: Sequence, side: str, p0: float, capital: float, tick: float | None,
         step: float | None) -> list[LayerPlan]:
    """Price and size every layer of a grid entered at p0 with this much capital."""
    d = 1.0 if side == "buy" else -1.0
    total = sum(layer.weight for layer in layers)
    plans = []
    for i, layer in enumerate(layers):
        price = round_price(p0 * (1.0 - d * layer.gap_pct / 100.0), side, tick)
        qty = floor_qty(capital * layer.weight / total / price, step) if price > 0 else 0.0
        plans.append(LayerPlan(i, layer.gap_pct, layer.weight, layer.tp_pct, price, qty))
    return plans


def layer_problem(plan: LayerPlan, min_notional: float, step: float | None) -> str:
    """Why this layer's order cannot be placed ("" when it can)."""
    where = f"layers[{plan.index}] (gap {plan.gap_pct:g}%)"
    if plan.qty <= 0:
        return f"{where}: its size rounds to zero at lot step {step:g}; give it more weight or capital"
    if plan.value < min_notional:
        return (f"{where}: order value {plan.value:,.2f} is below the minimum notional {min_notional:,.2f}; "
                "give it more weight or capital, or use fewer layers")
    return ""


def grid_problems(layers: Sequence, side: str, p0: float, capital: float, tick: float | None,
                  step: float | None, min_notional: float, symbol: str) -> list[tuple[int, str]]:
    """(index, why) of each layer that could not be placed on `symbol` if entered at p0."""
    return [(plan.index, f"{problem} ({symbol} at {p0:g})") for plan in grid(layers, side, p0, capital, tick, step)
            if (problem := layer_problem(plan, min_notional, step))]


def tp_price(fill: float, tp_pct: float, side: str, tick: float | None) -> float:
    """The take-profit of a position entered at `fill` (a long's is above it, on the tick
    rounded up: the exit sells; a short's below, rounded down)."""
    if side == "buy":
        return round_price(fill * (1.0 + tp_pct / 100.0), "sell", tick)
    return round_price(fill * (1.0 - tp_pct / 100.0), "buy", tick)
