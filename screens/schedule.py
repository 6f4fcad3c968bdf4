"""1 Schedule: every strategy, its lifecycle status and why, when it enters next and when
its position is planned to exit (live countdowns), its exits and its funds. `enter` opens
the strategy's full configuration and what an entry would risk now."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable

from services.views import EngineSnapshot, StrategyStatus, StrategyView

from . import commands
from .base import EngineScreen
from .format import (
    DIM, STATUS_STYLE, WARN, cell, clock_time, countdown, funds, money, num, pnl_cell, side_word,
)
from .widgets.keyed_table import KEY, NAME, KeyedTable
from .widgets.live_static import LiveStatic

COLUMNS = [
    ("id", "Strategy", NAME), ("status", "Status", KEY), ("next", "Next entry", 9), ("exit", "Planned exit", 8),
    ("symbols", "Symbols", 7), ("funds", "Used/alloc.>", 4), ("side", "Side", 6), ("open", "Open>", 5),
    ("exits", "Stop / target", 3), ("realized", "Realized>", KEY), ("unrealized", "Unreal.>", KEY),
    ("entry", "Entry", 2), ("reason", "Reason", 1),
]


def next_entry(s: StrategyView, now: float) -> str:
    """The countdown to the next entry ("in 1m23s", "now" when due), or what it waits for."""
    if s.next_entry_at is not None:
        return countdown(s.next_entry_at, now)
    if s.status == StrategyStatus.WAITING:
        return "manual (n)" if s.entry == "manual" else "next quote"
    return "—"


def next_entry_style(s: StrategyView, now: float) -> str:
    if s.next_entry_at is None:
        return ""
    return "bold cyan" if s.next_entry_at <= now else "cyan"


def planned_exit(s: StrategyView, now: float) -> str:
    return "—" if s.planned_exit_at is None else countdown(s.planned_exit_at, now, due="due")


def strategy_cells(s: StrategyView, now: float) -> tuple:
    symbols = ", ".join(s.symbols) if len(s.symbols) <= 2 else f"{', '.join(s.symbols[:2])} +{len(s.symbols) - 2}"
    used_up = s.allocation is not None and s.used_funds >= s.allocation - 0.005
    return (
        cell(s.id, "bold"), cell(s.status, STATUS_STYLE.get(s.status, "")),
        cell(next_entry(s, now), next_entry_style(s, now)),
        cell(planned_exit(s, now), "cyan" if s.planned_exit_at is not None else ""),
        cell(symbols), num(funds(s.used_funds, s.allocation), WARN if used_up else ""), cell(side_word(s.side)),
        num(str(s.open_positions)), cell(s.exits), pnl_cell(s.realized_today), pnl_cell(s.unrealized),
        cell(s.entry), cell(s.reason, DIM),
    )


def strategy_detail(s: StrategyView, now: float, timezone: str | None = None) -> str:
    """The selected strategy in full, one paragraph (the countdowns with their clock times)."""
    why = f" ({s.reason})" if s.reason else ""
    parts = [f"{s.id}: {s.status}{why}", f"{s.entry} entry", f"{side_word(s.side)} {', '.join(s.symbols)}"]
    if s.next_entry_at is not None:
        parts.append(f"next entry {clock_time(s.next_entry_at, timezone)} ({countdown(s.next_entry_at, now)})")
    if s.planned_exit_at is not None:
        parts.append(f"planned exit {clock_time(s.planned_exit_at, timezone)} "
                     f"({countdown(s.planned_exit_at, now, due='due')})")
    parts.append(f"exits: {s.exits}")
    if s.allocation is not None:
        parts.append(f"funds {s.used_funds:,.2f} used of {s.allocation:,.2f}")
    else:
        parts.append(f"funds {s.used_funds:,.2f} used (no allocation)")
    parts.append(f"{s.open_positions} open · realized today {money(s.realized_today)} · unrealized {money(s.unrealized)}")
    return " · ".join(parts)


class ScheduleScreen(EngineScreen):
    NAME = "Schedule"
    CSS_PATH = "schedule.tcss"

    BINDINGS = [
        Binding("enter", "details", "Details",
                tooltip="The selected strategy's configuration and what an entry would risk now",
                id="schedule.details"),
        Binding("p", "toggle_pause", "Pause/resume", tooltip="Pause or resume the selected strategy",
                id="schedule.pause"),
        Binding("n", "enter_now", "Enter now", tooltip="Enter the selected strategy now (confirm)",
                id="schedule.enter_now"),
        Binding("x", "exit_strategy", "Exit strategy",
                tooltip="Exit the selected strategy's open positions at market (confirm)", id="schedule.exit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, StrategyView] = {}
        self.now = 0.0

    def compose_body(self) -> ComposeResult:
        yield KeyedTable(COLUMNS, id="strategies")
        yield LiveStatic("", id="detail", markup=False)

    @property
    def table(self) -> KeyedTable:
        return self.query_one("#strategies", KeyedTable)

    def render_snapshot(self, snap: EngineSnapshot) -> None:
        # The countdowns are against the snapshot's time: the app renders at least once a
        # second (its heartbeat), so they tick even when nothing else changes.
        self.now = snap.ts
        self.rows = {s.id: s for s in snap.strategies}
        self.table.sync(self.rows, lambda s: strategy_cells(s, snap.ts))
        self._show_detail()

    def _show_detail(self) -> None:
        s = self.selected
        if s is None:
            text = "No strategy is configured: add one under [strategies] in settings.toml."
        else:
            text = strategy_detail(s, self.now, self._timezone(s.id))
        self.query_one("#detail", LiveStatic).show(text)

    def _config(self, strategy_id: str) -> Any:
        return self.engine.config.strategies.get(strategy_id)

    def _timezone(self, strategy_id: str) -> str | None:
        cfg = self._config(strategy_id)
        schedule = getattr(cfg, "schedule", None)
        return schedule.timezone if schedule is not None else None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()  # enter on the table: the same as the screen's enter key
        self.action_details()

    @property
    def selected(self) -> StrategyView | None:
        key = self.table.selected_key
        return self.rows.get(key) if key is not None else None

    def _require(self) -> StrategyView | None:
        s = self.selected
        if s is None:
            self.notify("No strategy selected", severity="warning")
        return s

    def action_details(self) -> None:
        if (s := self._require()) is not None:
            commands.strategy_details(self.app, s)

    def action_toggle_pause(self) -> None:
        if (s := self._require()) is not None:
            commands.toggle_pause(self.app, s)

    def action_enter_now(self) -> None:
        if (s := self._require()) is not None:
            commands.enter_now(self.app, s)

    def action_exit_strategy(self) -> None:
        if (s := self._require()) is not None:
            commands.exit_strategy(self.app, s)
