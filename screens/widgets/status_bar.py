"""The bar at the top of every screen: screen tabs, then the engine's vital signs."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from services.views import EngineSnapshot

from ..format import LOSS, PROFIT, WARN, hms, money
from .live_static import LiveStatic

SCREENS = (("1", "Schedule"), ("2", "Entry"), ("3", "Positions"), ("4", "Exits"), ("5", "Queue"), ("6", "Logs"),
           ("7", "Risk"))
RESUMED_NOTE_S = 60.0
"""For this long after a start the state reads "running, resumed N" (positions taken over)."""
TABS_WIDTH = sum(len(name) + 4 for _, name in SCREENS)
"""The tabs' width. When the bar has no room for them and "HH:MM:SS UTC" (80 columns), the clock drops its " UTC"."""


class StatusBar(LiveStatic):
    """Line 1: the screens (number keys) with the current one highlighted, and the engine
    clock (UTC). Line 2: mode, engine state, feed health, day P&L (and ENTRIES BLOCKED when a
    P&L rule or the daily loss limit of the book has acted), pool usage, unread alerts and a
    database warning when the store is failing."""

    DEFAULT_CSS = """
    StatusBar {
        height: auto;
        max-height: 3;
        background: $panel;
        color: $foreground;
        padding: 0 1;
    }
    """

    def __init__(self, current: str) -> None:
        super().__init__(self._render_text(current, None))
        self.current = current

    def show(self, snap: EngineSnapshot | None) -> None:  # type: ignore[override]
        super().show(self._render_text(self.current, snap, self.content_size.width if self.is_mounted else 0))

    @staticmethod
    def _render_text(current: str, snap: EngineSnapshot | None, width: int = 0) -> RenderableType:
        tabs = Text(no_wrap=True, overflow="crop")
        for key, name in SCREENS:
            if name == current:
                tabs.append(f" {key} {name} ", style="bold reverse")
            else:
                tabs.append(f" {key} ", style="bold")
                tabs.append(f"{name} ", style="dim")
        top = Table.grid(expand=True)
        top.add_column(ratio=1, no_wrap=True)
        top.add_column(justify="right", no_wrap=True)
        utc = " UTC" if not width or width >= TABS_WIDTH + len("00:00:00 UTC") else ""
        if snap is None:
            top.add_row(tabs, Text(f"--:--:--{utc}", style="dim"))
            return Group(top, Text("engine starting…", style=WARN))
        top.add_row(tabs, Text(f"{hms(snap.ts)}{utc}", style="bold"))
        parts: list[Text] = []
        parts.append(Text(snap.mode, style="bold reverse red" if snap.mode == "LIVE" else "bold"))
        if snap.state == "stopping":
            parts.append(Text(f"STOPPING: {snap.pool_used} position(s) stay open", style=WARN))
        elif snap.state == "running" and snap.resumed and snap.ts - snap.started_at < RESUMED_NOTE_S:
            parts.append(Text(f"running, resumed {snap.resumed}", style=PROFIT))
        else:
            parts.append(Text(snap.state, style=PROFIT if snap.state == "running" else WARN))
        feed = snap.feed
        if feed.stale_symbols:
            shown = ", ".join(feed.stale_symbols[:2])
            more = f" +{len(feed.stale_symbols) - 2}" if len(feed.stale_symbols) > 2 else ""
            parts.append(Text(f"STALE {shown}{more}", style="bold yellow"))
        elif not feed.healthy:
            parts.append(Text(f"feed {feed.name} DOWN", style="bold red"))
        else:
            parts.append(Text("feed ok", style=PROFIT))
        pnl_style = PROFIT if snap.day_pnl > 0.005 else LOSS if snap.day_pnl < -0.005 else ""
        parts.append(Text.assemble("day P&L ", (money(snap.day_pnl), pnl_style)))
        if snap.portfolio and snap.portfolio[0].blocked:  # the book's P&L rule or daily loss limit acted
            parts.append(Text("ENTRIES BLOCKED", style="bold reverse red"))
        full = snap.pool_used >= snap.pool_total
        parts.append(Text(f"pool {snap.pool_used}/{snap.pool_total}", style=WARN if full else ""))
        parts.append(Text(f"alerts {snap.unread_alerts}", style="bold yellow" if snap.unread_alerts else ""))
        if not snap.db_ok:
            parts.append(Text("DB DOWN: writes queued", style="bold reverse red"))
        return Group(top, Text(" · ", style="dim").join(parts))
