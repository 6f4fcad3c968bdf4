"""Amounts and times as the engine and the rules write them in events and messages, and what
an entry is worth."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:  # the settings import the rules, which format with this module
    from .config import StrategyConfig


def px(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.2f}" if abs(v) >= 1 else f"{v:.6g}"


def qty(v: float) -> str:
    return f"{v:.8g}"


def local_time(t: float, tz: str) -> str:
    """A time as the operator reads it in an event: weekday, hour and minute in a time zone."""
    return datetime.fromtimestamp(t, ZoneInfo(tz)).strftime(f"%a %H:%M {tz}")


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
