"""Formatting shared by the screens: prices, quantities, P&L, times. Cells are rich Text so
a table diff (which compares cells) notices a colour change as well as a text change."""

from __future__ import annotations

import time

from rich.text import Text

PROFIT = "green"
LOSS = "red"
WARN = "yellow"
DIM = "dim"


def px(v: float | None) -> str:
    """A price: 2 decimals with thousands separators, small prices with 6 significant digits."""
    if v is None:
        return "—"
    return f"{v:,.2f}" if abs(v) >= 1 else f"{v:.6g}"


def qty(v: float | None) -> str:
    return "—" if v is None else f"{v:.8g}"


def money(v: float) -> str:
    return f"{v:+,.2f}"


def pct(v: float | None) -> str:
    return "—" if v is None else f"{v:+.2f}%"


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


def side_word(side: str) -> str:
    return {"buy": "long", "sell": "short"}.get(side, side)


def cell(text: str, style: str = "", right: bool = False) -> Text:
    """A table cell. The style is a span (not the Text's base style) so it takes part in equality."""
    t = Text(text, justify="right" if right else "left", no_wrap=True, overflow="ellipsis")
    if style and text:
        t.stylize(style)
    return t


def num(text: str, style: str = "") -> Text:
    return cell(text, style, right=True)


def signed_style(v: float, eps: float = 0.0) -> str:
    if v > eps:
        return PROFIT
    if v < -eps:
        return LOSS
    return ""


def pnl_cell(v: float) -> Text:
    return num(money(v), signed_style(v, 0.005))


def pnl_pct_cell(v: float) -> Text:
    return num(pct(v), signed_style(v, 0.005))


LEVEL_STYLE = {"info": "", "warning": WARN, "error": LOSS, "critical": "bold reverse red"}

STATUS_STYLE = {
    # positions
    "OPEN": PROFIT, "STALE": "bold yellow", "EXITING": "bold yellow",
    # strategies
    "live": PROFIT, "waiting": "", "entering": WARN, "exiting": WARN, "cooldown": "cyan",
    "paused": "bold yellow", "disabled": DIM, "closed": DIM, "error": "bold red",
    # orders
    "filled": PROFIT, "rejected": LOSS, "cancelled": DIM, "working": WARN, "new": WARN,
}
