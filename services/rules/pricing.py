"""Working an order's price: re-prices from the reference toward the touch (DESIGN §3), and
sizing an entry on a quote."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .precision import floor_qty

if TYPE_CHECKING:
    from .precision import Rules


def repriced(ref: float, touch: float, attempt: int, retries: int) -> float:
    """Re-price k of n sits k/(n+1) of the way from the reference price to the touch."""
    return ref + (touch - ref) * attempt / (retries + 1)


def entry_qty(symbol: str, raw: float, price: float, rules: Rules) -> float | str:
    """The quantity of an entry of `raw` units at `price` on the symbol's lot step, or why
    there can be none (it rounds to zero, or is worth less than the minimum notional)."""
    qty = floor_qty(raw, rules.lot_step)
    if qty <= 0:
        return f"{symbol}: the size {raw:.8g} rounds to zero at lot step {rules.lot_step:g}"
    if qty * price < rules.min_notional:
        return f"{symbol}: order value {qty * price:,.2f} is below the minimum notional {rules.min_notional:,.2f}"
    return qty
