"""4 Exits, the exit timeline: for each position every armed trigger with its level and how
far the mark still is from it (the closest first and marked), its planned exit and the time
left; the portfolio's P&L rules (book and strategies) with their distance; and for the
highlighted position the history of its levels, trailing moves and exit. `x` exits and `e`
edits the levels of the highlighted position.

Each part is a diff on refresh; the history is computed for the highlighted position only."""

from __future__ import annotations

from typing import NamedTuple

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable

from services.rules.pnl_scopes import RULE_LABEL
from services.views import EngineSnapshot, PortfolioView, PositionView, RuleView

from . import commands
from .base import EngineScreen
from .format import DIM, WARN, cell, hms, money, num, pnl_cell, px
from .widgets.exit_history import ExitHistory, position_summary, reason_label, timeline, trade_summary
from .widgets.exit_triggers import ClosedRow, ExitTriggers
from .widgets.keyed_table import KEY, NAME, KeyedTable
from .widgets.live_static import LiveStatic

RULE_COLUMNS = [
    ("scope", "Scope", NAME), ("rule", "Rule", NAME), ("level", "P&L level>", 2), ("pnl", "P&L>", KEY),
    ("distance", "Distance>", KEY), ("state", "State", 3),
]
RULE_ORDER = {kind: i for i, kind in enumerate(RULE_LABEL)}


class RuleRow(NamedTuple):
    rule: RuleView
    scope_index: int
    first: bool  # the scope's first rule: it names the scope


def rule_rows(portfolio: tuple[PortfolioView, ...]) -> dict[str, RuleRow]:
    return {f"{view.scope}:{r.kind}": RuleRow(r, i, n == 0)
            for i, view in enumerate(portfolio) for n, r in enumerate(view.rules)}


def _rule_order(key: str, row: RuleRow) -> tuple:
    return row.scope_index, RULE_ORDER.get(row.rule.kind, 9)


def rule_cells(row: RuleRow) -> tuple:
    r = row.rule
    if r.fired_at is not None:
        state, style = f"fired {hms(r.fired_at)}", "bold red"
    elif r.kind == "pnl_trailing" and not r.armed:
        state, style = f"arms at P&L {money(r.arms_at or 0.0)}", DIM
    elif r.kind == "pnl_trailing":
        state, style = f"armed, peak {money(r.peak or 0.0)}", WARN
    else:
        state, style = "armed", ""
    if r.distance is None:
        distance = num("—", DIM)
    elif r.distance <= 0:
        distance = num("reached", "bold red")
    else:
        distance = num(f"{r.distance:,.2f}")
    return (cell(r.scope if row.first else ""), cell(RULE_LABEL.get(r.kind, r.kind)),
            num(money(r.level)) if r.level is not None else num("—", DIM), pnl_cell(r.pnl), distance, cell(state, style))


def blocked_text(portfolio: tuple[PortfolioView, ...]) -> str:
    reasons = [v.blocked + (f" (until {hms(v.blocked_until)})" if v.blocked_until is not None else "")
               for v in portfolio if v.blocked]
    return "Entries blocked: " + "; ".join(reasons) if reasons else ""


class ExitsScreen(EngineScreen):
    NAME = "Exits"
    CSS_PATH = "exits.tcss"
    VERTICAL_BREAKPOINTS = [(0, "-short"), (28, "-tall")]  # 80x24: more room for the triggers

    BINDINGS = [
        Binding("x", "exit_position", "Exit", tooltip="Exit the highlighted position at market (confirm)",
                id="exits.exit"),
        Binding("e", "edit_levels", "Edit levels",
                tooltip="Edit stop / target / trailing of the highlighted position", id="exits.edit"),
    ]

    def compose_body(self) -> ComposeResult:
        with Vertical(id="triggers-box") as box:
            box.border_title = "Exit triggers, closest first (▸) · distance: how far the mark still is"
            yield ExitTriggers(id="triggers")
        with Vertical(id="rules-box") as box:
            box.border_title = "Portfolio P&L rules (P&L = realized today + unrealized)"
            yield KeyedTable(RULE_COLUMNS, id="rules", sort_key=_rule_order)
            yield LiveStatic("", id="rules-note", markup=False)
        yield ExitHistory(id="history")

    @property
    def table(self) -> ExitTriggers:
        return self.query_one("#triggers", ExitTriggers)

    def render_snapshot(self, snap: EngineSnapshot) -> None:
        self.table.show(snap)
        self._show_rules(snap.portfolio)
        self._show_history()

    def _show_rules(self, portfolio: tuple[PortfolioView, ...]) -> None:
        rows = rule_rows(portfolio)
        rules = self.query_one("#rules", KeyedTable)
        rules.sync(rows, rule_cells)
        if rules.display != bool(rows):
            rules.display = bool(rows)
        note = blocked_text(portfolio) or (
            "" if rows else "No P&L rules (set `pnl` in a strategy or `book` in the settings).")
        note_widget = self.query_one("#rules-note", LiveStatic)
        note_widget.show(note)
        if note_widget.display != bool(note):
            note_widget.display = bool(note)

    def _show_history(self) -> None:
        history = self.query_one("#history", ExitHistory)
        snap, row = self.shown, self.table.selected_row
        if snap is None or row is None:
            history.border_title = "History"
            history.show_note("No open position. Strategies enter on their own schedule (1 Schedule).")
            return
        if isinstance(row, ClosedRow):
            t = row.trade
            title, summary = f"#{t.group_id} {t.strategy_id} {t.symbol}", trade_summary(t)
            lines = timeline(snap, t.group_id, None, t)
        else:
            p = row[0]
            title, summary = f"#{p.group_id} {p.strategy_id} {p.symbol}", position_summary(p, snap.ts)
            lines = timeline(snap, p.group_id, p, None)
        if history.border_title != f"History of {title}":
            history.border_title = f"History of {title}"
        history.show(summary, lines)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "triggers":
            self._show_history()

    def _selected_position(self) -> PositionView | None:
        row = self.table.selected_row
        if isinstance(row, ClosedRow):
            t = row.trade
            self.notify(f"#{t.group_id} {t.symbol} is already closed ({reason_label(t.exit_reason)} at "
                        f"{px(t.exit_price)})", severity="warning")
            return None
        if row is None:
            self.notify("No position selected", severity="warning")
            return None
        return row[0]

    def action_exit_position(self) -> None:
        p = self._selected_position()
        if p is not None:
            commands.exit_position(self.app, p)

    def action_edit_levels(self) -> None:
        p = self._selected_position()
        if p is not None:
            commands.edit_levels(self.app, p)
