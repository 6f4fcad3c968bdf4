"""1 Schedule: the strategies, their lifecycle status and why, and when they enter next."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable

from services.views import EngineSnapshot, StrategyView

from . import commands
from .base import EngineScreen
from .format import DIM, STATUS_STYLE, cell, duration, money, num, pnl_cell, side_word
from .widgets.keyed_table import KeyedTable
from .widgets.live_static import LiveStatic

COLUMNS = [
    ("id", "Strategy"), ("status", "Status"), ("side", "Side"), ("symbols", "Symbols"), ("open", "Open>"),
    ("realized", "Realized>"), ("unrealized", "Unreal.>"), ("next", "Next entry"), ("entry", "Entry"),
    ("exits", "Exits"), ("reason", "Reason"),
]


def next_entry(s: StrategyView, now: float) -> str:
    if s.next_entry_at is not None:
        return f"in {duration(s.next_entry_at - now)}"
    if s.status == "waiting":
        return "manual (n)" if s.entry == "manual" else "next quote"
    return "—"


def strategy_cells(s: StrategyView, now: float) -> tuple:
    symbols = ", ".join(s.symbols) if len(s.symbols) <= 2 else f"{', '.join(s.symbols[:2])} +{len(s.symbols) - 2}"
    return (
        cell(s.id, "bold"), cell(s.status, STATUS_STYLE.get(s.status, "")), cell(side_word(s.side)), cell(symbols),
        num(str(s.open_positions)), pnl_cell(s.realized_today), pnl_cell(s.unrealized),
        cell(next_entry(s, now), "cyan" if s.next_entry_at is not None else ""), cell(s.entry), cell(s.exits),
        cell(s.reason, DIM),
    )


def strategy_detail(s: StrategyView) -> str:
    why = f" ({s.reason})" if s.reason else ""
    return (
        f"{s.id}: {s.status}{why} · {s.entry} entry · {side_word(s.side)} {', '.join(s.symbols)} · exits: {s.exits} · "
        f"{s.open_positions} open · realized today {money(s.realized_today)} · unrealized {money(s.unrealized)}"
    )


class ScheduleScreen(EngineScreen):
    NAME = "Schedule"
    CSS_PATH = "schedule.tcss"

    BINDINGS = [
        Binding("p", "toggle_pause", "Pause/resume", tooltip="Pause or resume the selected strategy",
                id="schedule.pause"),
        Binding("n", "enter_now", "Enter now", tooltip="Enter the selected strategy now at market (confirm)",
                id="schedule.enter_now"),
        Binding("x", "exit_strategy", "Exit strategy",
                tooltip="Exit the selected strategy's open positions at market (confirm)", id="schedule.exit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, StrategyView] = {}

    def compose_body(self) -> ComposeResult:
        yield KeyedTable(COLUMNS, id="strategies")
        yield LiveStatic("", id="detail", markup=False)

    @property
    def table(self) -> KeyedTable:
        return self.query_one("#strategies", KeyedTable)

    def render_snapshot(self, snap: EngineSnapshot) -> None:
        self.rows = {s.id: s for s in snap.strategies}
        self.table.sync(self.rows, lambda s: strategy_cells(s, snap.ts))
        self._show_detail()

    def _show_detail(self) -> None:
        s = self.selected
        text = strategy_detail(s) if s is not None else "No strategy is configured: add one under [strategies] in settings.toml."
        self.query_one("#detail", LiveStatic).show(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    @property
    def selected(self) -> StrategyView | None:
        key = self.table.selected_key
        return self.rows.get(key) if key is not None else None

    def _require(self) -> StrategyView | None:
        s = self.selected
        if s is None:
            self.notify("No strategy selected", severity="warning")
        return s

    def action_toggle_pause(self) -> None:
        if (s := self._require()) is not None:
            commands.toggle_pause(self.app, s)

    def action_enter_now(self) -> None:
        if (s := self._require()) is not None:
            commands.enter_now(self.app, s)

    def action_exit_strategy(self) -> None:
        if (s := self._require()) is not None:
            commands.exit_strategy(self.app, s)
