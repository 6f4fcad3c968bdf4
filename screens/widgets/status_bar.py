"""The bar at the top of every screen: screen tabs, then the engine's vital signs."""

from __future__ import annotations

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.style import Style
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
    P&L rule or the daily loss limit of the book has acted, ENTRIES STOPPED when the operator
    stopped them), pool usage, unread alerts and a
    database warning when the store is failing."""

    DEFAULT_CSS = """
    StatusBar {
        height: auto;
        max-height: 3;
        background: $panel;
        color: $foreground;
        padding: 0 1;
        link-style: none;  /* the tabs can be clicked, but read as tabs, not links */
    }
    """

    def __init__(self, current: str) -> None:
        super().__init__(self._render_text(current, None))
        self.current = current

    def show(self, snap: EngineSnapshot | None) -> None:  # type: ignore[override]
        super().show(self._render_text(self.current, snap))

    @staticmethod
    def _render_text(current: str, snap: EngineSnapshot | None) -> RenderableType:
        if snap is None:
            return Group(TabsAndClock(current, "--:--:--", "dim"), Text("engine starting…", style=WARN))
        top = TabsAndClock(current, hms(snap.ts), "bold")
        parts: list[tuple[Text, Text]] = []  # (full, abbreviated)

        def part(full: str, style: str = "", short: str | None = None) -> None:
            parts.append((Text(full, style=style), Text(full if short is None else short, style=style)))

        part(f" {snap.mode} ", "bold reverse red" if snap.mode == "LIVE" else "bold reverse cyan")
        if snap.state == "stopping":
            part(f"STOPPING: {snap.pool_used} position(s) stay open", WARN, f"STOPPING, {snap.pool_used} stay open")
        elif snap.state == "running" and snap.resumed and snap.ts - snap.started_at < RESUMED_NOTE_S:
            part(f"running, resumed {snap.resumed}", PROFIT, f"resumed {snap.resumed}")
        else:
            part(snap.state, PROFIT if snap.state == "running" else WARN)
        feed = snap.feed
        if feed.stale_symbols:
            shown = ", ".join(feed.stale_symbols[:2])
            more = f" +{len(feed.stale_symbols) - 2}" if len(feed.stale_symbols) > 2 else ""
            part(f"STALE {shown}{more}", "bold yellow", f"STALE {len(feed.stale_symbols)}")
        elif not feed.healthy:
            part(f"feed {feed.name} DOWN", "bold red", "feed DOWN")
        else:
            part("feed ok", PROFIT)
        pnl_style = PROFIT if snap.day_pnl > 0.005 else LOSS if snap.day_pnl < -0.005 else ""
        parts.append((Text.assemble("day P&L ", (money(snap.day_pnl), pnl_style)),
                      Text.assemble("P&L ", (money(snap.day_pnl), pnl_style))))
        if snap.portfolio and snap.portfolio[0].blocked:  # the book's P&L rule or daily loss limit acted
            part("ENTRIES BLOCKED", "bold reverse red", "BLOCKED")
        if snap.entries_stopped:  # the operator's book-wide switch (E)
            part("ENTRIES STOPPED", "bold reverse yellow", "NO ENTRIES")
        full = snap.pool_used >= snap.pool_total
        part(f"pool {snap.pool_used}/{snap.pool_total}", WARN if full else "")
        part(f"alerts {snap.unread_alerts}", "bold yellow" if snap.unread_alerts else "")
        if not snap.db_ok:
            part("DB DOWN: writes queued", "bold reverse red", "DB DOWN")
        return Group(top, OneLine(parts))


class OneLine:
    """The vital signs on one line: abbreviated when the full forms don't fit, then cut with an
    ellipsis, so the bar never grows a third line."""

    def __init__(self, parts: list[tuple[Text, Text]]) -> None:
        self.parts = parts

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        sep = Text(" · ", style="dim")
        line = sep.join(full for full, _ in self.parts)
        if line.cell_len > options.max_width:
            line = Text(" ", style="dim").join(short for _, short in self.parts)
        line.no_wrap, line.overflow = True, "ellipsis"
        yield line


class TabsAndClock:
    """The tabs and the clock, laid out for the width this line is rendered at (not the
    widget's width when it was last asked, which depends on the order of the first renders):
    the clock drops its " UTC" when both don't fit (80 columns)."""

    def __init__(self, current: str, clock: str, clock_style: str) -> None:
        self.current, self.clock, self.clock_style = current, clock, clock_style

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        tabs = Text(no_wrap=True, overflow="crop")
        for key, name in SCREENS:
            click = Style(meta={"@click": f"app.switch_mode('{name.lower()}')"})  # a click on a tab shows it
            if name == self.current:
                tabs.append(f" {key} {name} ", style=Style(bold=True, reverse=True) + click)
            else:
                tabs.append(f" {key} ", style=Style(bold=True) + click)
                tabs.append(f"{name} ", style=Style(dim=True) + click)
        utc = " UTC" if options.max_width >= TABS_WIDTH + len(self.clock) + len(" UTC") else ""
        top = Table.grid(expand=True)
        top.add_column(ratio=1, no_wrap=True)
        top.add_column(justify="right", no_wrap=True)
        top.add_row(tabs, Text(f"{self.clock}{utc}", style=self.clock_style))
        yield top
