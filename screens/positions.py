"""3 Positions: every open leg marked to market, its levels and health (STALE, EXITING)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable

from services.views import EngineSnapshot, PositionView

from . import commands
from .base import EngineScreen
from .format import (
    DIM, STATUS_STYLE, cell, hms, money, num, pct, pnl_cell, pnl_pct_cell, px, qty, side_word,
)
from .widgets.keyed_table import KeyedTable
from .widgets.live_static import LiveStatic

COLUMNS = [
    ("id", "#>"), ("strategy", "Strategy"), ("symbol", "Symbol"), ("side", "Side"), ("status", "Status"),
    ("qty", "Qty>"), ("entry", "Entry>"), ("mark", "Mark>"), ("pnl", "P&L>"), ("pnl_pct", "P&L %>"),
    ("stop", "Stop>"), ("target", "Target>"), ("trail", "Trail>"),
]


def trail_cell(p: PositionView):
    if p.trail_active and p.trail_level is not None:
        return num(px(p.trail_level))
    if p.trail_distance is not None:
        return num("idle", DIM)
    return num("—", DIM)


def position_cells(p: PositionView) -> tuple:
    return (
        num(str(p.group_id)), cell(p.strategy_id), cell(p.symbol), cell(side_word(p.side)),
        cell(p.status, STATUS_STYLE.get(p.status, "")), num(qty(p.qty)), num(px(p.entry)), num(px(p.mark)),
        pnl_cell(p.pnl), pnl_pct_cell(p.pnl_pct), num(px(p.stop)), num(px(p.target)), trail_cell(p),
    )


def position_detail(p: PositionView) -> str:
    if p.trail_distance is None:
        trail = "no trailing stop"
    elif p.trail_active:
        trail = f"trail {p.trail_distance} armed, level {px(p.trail_level)} (peak {px(p.trail_peak)})"
    else:
        trail = f"trail {p.trail_distance} arms at +{p.trail_activation}"
    status = f"{p.status} ({p.exit_pending})" if p.exit_pending else p.status
    return (
        f"#{p.group_id} {p.strategy_id} {side_word(p.side)} {qty(p.qty)} {p.symbol} @ {px(p.entry)} · "
        f"mark {px(p.mark)} · P&L {money(p.pnl)} ({pct(p.pnl_pct)}) · fees {p.fees:,.2f} · "
        f"stop {px(p.stop)} · target {px(p.target)} · {trail} · opened {hms(p.opened_at)} · {status}"
    )


class PositionsScreen(EngineScreen):
    NAME = "Positions"
    CSS_PATH = "positions.tcss"

    BINDINGS = [
        Binding("x", "exit_position", "Exit", tooltip="Exit the selected position at market (confirm)",
                id="positions.exit"),
        Binding("X", "exit_all", "Exit all", tooltip="Exit every open position at market (confirm)",
                id="positions.exit_all"),
        Binding("e", "edit_levels", "Edit levels", tooltip="Edit stop / target / trailing of the selected position",
                id="positions.edit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, PositionView] = {}

    def compose_body(self) -> ComposeResult:
        yield KeyedTable(COLUMNS, id="positions")
        yield LiveStatic("", id="detail", markup=False)

    @property
    def table(self) -> KeyedTable:
        return self.query_one("#positions", KeyedTable)

    def render_snapshot(self, snap: EngineSnapshot) -> None:
        self.rows = {f"{p.group_id}:{p.leg_id}": p for p in snap.positions}
        self.table.sync(self.rows, position_cells)
        self._show_detail()

    def _show_detail(self) -> None:
        detail = self.query_one("#detail", LiveStatic)
        p = self.selected
        if p is not None:
            detail.show(position_detail(p))
        elif self.shown is not None and self.shown.notes:
            detail.show(" · ".join(self.shown.notes))
        else:
            detail.show("No open position. Strategies enter on their own schedule (1 Schedule; n enters now).")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    @property
    def selected(self) -> PositionView | None:
        key = self.table.selected_key
        return self.rows.get(key) if key is not None else None

    def action_exit_position(self) -> None:
        p = self.selected
        if p is None:
            self.notify("No position selected", severity="warning")
            return
        commands.exit_position(self.app, p)

    def action_exit_all(self) -> None:
        commands.exit_all(self.app)

    def action_edit_levels(self) -> None:
        p = self.selected
        if p is None:
            self.notify("No position selected", severity="warning")
            return
        commands.edit_levels(self.app, p)
