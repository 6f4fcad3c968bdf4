"""Formatting shared by the screens: prices, quantities, P&L, times. Table cells are `Cell`
tuples (text, style, alignment): cheap to build for every row of every snapshot and cheap to
compare, so a table diff notices a colour change as well as a text change and only a cell
that changed becomes a rich Text."""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Mapping, NamedTuple, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich.text import Text

PROFIT = "green"
LOSS = "red"
WARN = "yellow"
DIM = "dim"


_DECIMALS: dict[str, int] = {}
"""Symbol -> the decimals of its tick size (set_ticks): its prices and distances are shown so."""
_ticks_seen: object = None


def set_ticks(ticks: Mapping[str, float]) -> None:
    """The symbols' tick sizes, from the engine's snapshot (kept until they change)."""
    global _ticks_seen
    if ticks is _ticks_seen:
        return
    _ticks_seen = ticks
    _DECIMALS.clear()
    _DECIMALS.update({sym: tick_decimals(tick) for sym, tick in ticks.items() if tick and tick > 0})


def tick_decimals(tick: float) -> int:
    """0.01 -> 2, 0.25 -> 2, 0.5 -> 1, 1 -> 0, 0.00001 -> 5."""
    text = f"{tick:.10f}".rstrip("0")
    return len(text.split(".")[1])


def px(v: float | None, symbol: str | None = None) -> str:
    """A price: at the symbol's tick precision when its tick is known, else 2 decimals (small
    prices 6 significant digits); thousands separators."""
    if v is None:
        return "—"
    decimals = _DECIMALS.get(symbol) if symbol is not None else None
    if decimals is not None:
        return f"{v:,.{decimals}f}"
    return f"{v:,.2f}" if abs(v) >= 1 else f"{v:.6g}"


def qty(v: float | None) -> str:
    return "—" if v is None else f"{v:.8g}"


def money(v: float) -> str:
    return f"{_unsigned_zero(v, 2):+,.2f}"


def pct(v: float | None) -> str:
    return "—" if v is None else f"{_unsigned_zero(v, 2):+.2f}%"


def _unsigned_zero(v: float, digits: int) -> float:
    """`v`, or 0.0 when it rounds to zero: a loss of 0.001 reads +0.00, never -0.00."""
    return v if round(v, digits) else 0.0


def hms(ts: float | None) -> str:
    """Engine clock time, UTC, HH:MM:SS."""
    return "—" if ts is None else time.strftime("%H:%M:%S", time.gmtime(ts))


def duration(seconds: float) -> str:
    """A short human duration: 45s, 4m05s, 2h03m."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def countdown(at: float, now: float, due: str = "now") -> str:
    """Time left until `at`, rounded up: "in 1m23s"; `due` once it has come."""
    left = at - now
    if left <= 0:
        return due
    return f"in {duration(math.ceil(left - 1e-6))}"


def clock_time(ts: float, timezone: str | None = None) -> str:
    """An instant as HH:MM:SS in a timezone (its abbreviation after it), UTC by default."""
    if not timezone or timezone == "UTC":
        return f"{hms(ts)} UTC"
    try:
        return datetime.fromtimestamp(ts, ZoneInfo(timezone)).strftime("%H:%M:%S %Z")
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return f"{hms(ts)} UTC"


def utc_datetime(ts: float) -> str:
    """An instant in full, to the millisecond: 2026-01-01 00:00:02.000 UTC."""
    return datetime.fromtimestamp(ts, ZoneInfo("UTC")).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def amount(v: float) -> str:
    """Funds: whole units with thousands separators; cents below 1,000 unless whole."""
    return f"{v:,.0f}" if abs(v) >= 1000 or v == int(v) else f"{v:,.2f}"


def funds(used: float, allocation: float | None) -> str:
    """What a strategy's positions hold against its allocation: "1,000 / 4,000", "— / 4,000"
    when nothing is used; without an allocation only what is used ("—" when nothing)."""
    held = amount(used) if used > 0.005 else "—"
    return held if allocation is None else f"{held} / {amount(allocation)}"


def gap(v: float, symbol: str | None = None) -> str:
    """A distance between two prices: at the symbol's tick precision when known, else 2
    decimals, or 4 significant digits below 1."""
    decimals = _DECIMALS.get(symbol) if symbol is not None else None
    if decimals is not None:
        return f"{v:,.{decimals}f}"
    return f"{v:,.2f}" if abs(v) >= 1 else f"{v:.4g}"


def signed_px(v: float | None) -> str:
    """A signed price difference (slippage): +0.66, -12.40, +0.0042."""
    if v is None:
        return "—"
    return f"{v:+,.2f}" if abs(v) >= 0.005 else f"{v:+.2g}" if v else "+0.00"


SPARK_BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int) -> str:
    """Recent values as at most `width` block characters, low to high between the lowest and
    the highest drawn; a longer history is thinned to one value (the latest) per cell."""
    n = len(values)
    points = values if n <= width else [values[(i + 1) * n // width - 1] for i in range(width)]
    if not points:
        return ""
    lo, hi = min(points), max(points)
    if hi - lo <= abs(hi) * 1e-9:
        return SPARK_BLOCKS[3] * len(points)  # flat
    top = len(SPARK_BLOCKS) - 1
    return "".join(SPARK_BLOCKS[round((v - lo) / (hi - lo) * top)] for v in points)


def side_word(side: str) -> str:
    return {"buy": "long", "sell": "short"}.get(side, side)


class Cell(NamedTuple):
    """A table cell: what it shows, in which style, aligned left or right. A Rich renderable
    (rendered as `to_text()`), so a DataTable can hold it as it is."""

    text: str
    style: str = ""
    right: bool = False

    @property
    def plain(self) -> str:
        return self.text

    def to_text(self) -> Text:
        """As a rich Text: one line, cut with an ellipsis, the style a span over the whole text."""
        t = Text(self.text, justify="right" if self.right else "left", no_wrap=True, overflow="ellipsis")
        if self.style and self.text:
            t.stylize(self.style)
        return t

    def __rich__(self) -> Text:  # a Cell is a renderable: tables store it as it is
        return self.to_text()


def cell(text: str, style: str = "", right: bool = False) -> Cell:
    """A table cell (left-aligned unless `right`)."""
    return Cell(text, style, right)


def num(text: str, style: str = "") -> Cell:
    """A right-aligned table cell, for figures."""
    return Cell(text, style, True)


def signed_style(v: float, eps: float = 0.0) -> str:
    if v > eps:
        return PROFIT
    if v < -eps:
        return LOSS
    return ""


def pnl_cell(v: float) -> Cell:
    return num(money(v), signed_style(v, 0.005))


def pnl_pct_cell(v: float) -> Cell:
    return num(pct(v), signed_style(v, 0.005))


LEVEL_STYLE = {"info": "", "warning": WARN, "error": LOSS, "critical": "bold reverse red"}

STATUS_STYLE = {
    # positions
    "OPEN": PROFIT, "STALE": "bold yellow", "EXITING": "bold yellow",
    # strategies
    "live": PROFIT, "waiting": "", "entering": WARN, "exiting": WARN, "cooldown": "cyan",
    "paused": "bold yellow", "stopped": "bold yellow", "disabled": DIM, "closed": DIM, "error": "bold red",
    # orders
    "filled": PROFIT, "rejected": LOSS, "cancelled": DIM, "working": WARN, "new": WARN, "partially_filled": WARN,
    "cancel_requested": WARN, "expired": DIM,
}
