"""Amounts as the engine writes them in its events and messages, and what an entry is worth."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the settings import the rules, which format with this module
    from .config import StrategyConfig


def px(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.2f}" if abs(v) >= 1 else f"{v:.6g}"


def qty(v: float) -> str:
    return f"{v:.8g}"


def entry_capital(cfg: StrategyConfig, size: float | None, price: float) -> float:
    """What an entry at `price` is worth: a signal's size, else the strategy's sizing."""
    sizing = cfg.sizing
    if size is not None:
        return size * price
    if sizing.fixed_value is not None:
        return sizing.fixed_value
    if sizing.pct_allocation is not None:
        return cfg.allocation * sizing.pct_allocation / 100.0
    return sizing.fixed_qty * price
