"""3 Positions: every open position group marked to market, its health and what will exit it
first. A group is one row (a basket's legs, or a DCA grid's layers, open under it with enter),
a grid also while only its resting layers are left; the rows sort (o, r),
filter (/) and take a multi-selection (space) for a bulk exit (x). Above the table, the
book's and each strategy's P&L today; below it, the highlighted position in full."""

from __future__ import annotations

from typing import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, Label

from services.views import EngineSnapshot, PositionStatus, PositionView

from . import commands
from .base import EngineScreen
from .grid_health import grid_cells, grid_detail, grid_exit_question, layer_detail, layer_name
from .position_health import COLUMNS, Group, Row, book_summary, group_detail, groups_of, position_detail, row_cells
from .widgets.live_static import LiveStatic
from .widgets.ordered_table import OrderedTable

# == sorting and filtering ===================================================================

SORTS: tuple[tuple[str, str, Callable[[Group], tuple]], ...] = (
    ("id", "#", lambda g: (g.id,)),
    ("strategy", "strategy", lambda g: (g.strategy_id, g.id)),
    ("symbol", "symbol", lambda g: (g.symbols, g.id)),
    ("pnl", "P&L", lambda g: (g.pnl, g.id)),
    ("pnl_pct", "P&L %", lambda g: (g.pnl_pct, g.id)),
    ("age", "age", lambda g: (-g.opened_at, g.id)),  # youngest first
)


class FilterError(ValueError):
    """A filter the screen cannot read (the message says how to write it)."""


def parse_filter(text: str) -> list[Callable[[Group], bool]]:
    """Every word must match: `pnl<N` / `pnl>N` compare the group's P&L (pnl<0: losers), any
    other word is looked for (case-insensitive) in its strategy, symbols and side ("grid"
    finds the DCA grids)."""
    tests: list[Callable[[Group], bool]] = []
    for word in text.lower().split():
        if word.startswith(("pnl<", "pnl>")):
            try:
                bound = float(word[4:])
            except ValueError:
                raise FilterError(f"{word!r}: write pnl< or pnl> with a number, e.g. pnl<0 (losers)") from None
            tests.append((lambda g, b=bound: g.pnl < b) if word[3] == "<" else (lambda g, b=bound: g.pnl > b))
        else:
            tests.append(lambda g, w=word: w in g.search_text)
    return tests


# == the screen ==============================================================================


class PositionsScreen(EngineScreen):
    NAME = "Positions"
    CSS_PATH = "positions.tcss"

    BINDINGS = [
        Binding("x", "exit_positions", "Exit",
                tooltip="Exit the selected positions, else the highlighted one (confirm)", id="positions.exit"),
        Binding("S", "exit_strategy", "Exit strategy",
                tooltip="Exit every open position of the highlighted position's strategy (confirm)",
                id="positions.exit_strategy"),
        Binding("X", "exit_all", "Exit all", tooltip="Exit every open position at market (type EXIT to confirm)",
                id="positions.exit_all"),
        Binding("e", "edit_levels", "Edit", tooltip="Edit stop / target / trailing of the highlighted position",
                id="positions.edit"),
        Binding("space", "toggle_select", "Select", tooltip="Select or unselect the highlighted position for x",
                id="positions.select"),
        Binding("enter", "toggle_expand", "Legs", show=False,
                tooltip="Show or hide the legs of the highlighted basket, or the layers of a DCA grid",
                id="positions.expand"),
        Binding("slash", "filter", "Filter",
                tooltip="Filter by strategy, symbol, side, or pnl<0 / pnl>0; escape clears", id="positions.filter"),
        Binding("o", "cycle_sort", "Sort", show=False,
                tooltip="Sort by the next column: # strategy symbol P&L P&L % age", id="positions.sort"),
        Binding("r", "reverse_sort", "Reverse", show=False, tooltip="Reverse the sort order",
                id="positions.reverse"),
        Binding("escape", "clear_filter", "Clear filter", show=False, tooltip="Clear the filter",
                id="positions.clear_filter"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, Row] = {}
        self.groups: dict[int, Group] = {}
        self.selection: set[int] = set()
        self.expanded: set[int] = set()
        self.sort_index = 0
        self.sort_reversed = False
        self.filter_text = ""
        self.filter_error = ""
        self._filters: list[Callable[[Group], bool]] = []
        self.shown_groups = 0
        self.now = 0.0
        self._summary: Text | None = None

    def compose_body(self) -> ComposeResult:
        yield LiveStatic("", id="book", markup=False)
        yield LiveStatic("", id="view", markup=False)
        yield OrderedTable(COLUMNS, id="positions")
        with Horizontal(id="filter-bar"):
            yield Label("Filter: ")
            yield Input(placeholder="strategy, symbol, side, pnl<0 or pnl>0 · enter keeps it · escape clears",
                        id="filter", compact=True)
        yield LiveStatic("", id="detail", markup=False)

    @property
    def table(self) -> OrderedTable:
        return self.query_one("#positions", OrderedTable)

    # == rendering ===========================================================================

    def render_snapshot(self, snap: EngineSnapshot) -> None:
        self.now = snap.ts
        self.groups = groups_of(snap)
        # groups that closed or are exiting already drop out of the selection
        self.selection = {gid for gid in self.selection if gid in self.groups and self.groups[gid].status != PositionStatus.EXITING}
        self.expanded &= self.groups.keys()
        self._render_rows()
        summary = book_summary(snap.portfolio, snap.account)
        if summary != self._summary:  # a Text: LiveStatic would lay it out again each time
            self._summary = summary
            self.query_one("#book", LiveStatic).show(summary)

    def _render_rows(self) -> None:
        _, _, sort_key = SORTS[self.sort_index]
        groups = self.groups.values()
        if self._filters:
            groups = [g for g in groups if all(test(g) for test in self._filters)]
        shown = sorted(groups, key=sort_key, reverse=self.sort_reversed)
        rows: dict[str, Row] = {}
        selection, expanded = self.selection, self.expanded
        for g in shown:
            gid = g.id
            if gid in expanded:  # a basket's row then its legs, a grid's then its layers
                rows[str(gid)] = Row(g, None, gid in selection, True)
                if g.grid is not None:
                    open_legs = {p.leg_id: p for p in g.legs}
                    for lg in g.grid.legs:
                        rows[f"{gid}:{lg.leg_id}"] = Row(g, open_legs.get(lg.leg_id), layer=lg)
                else:
                    for p in g.legs:
                        rows[f"{gid}:{p.leg_id}"] = Row(g, p)
            else:
                rows[str(gid)] = Row(g, None, gid in selection)
        self.rows, self.shown_groups = rows, len(shown)
        self.table.sync(rows, lambda row: grid_cells(row, self.now) if row.group.grid else row_cells(row, self.now))
        self._show_view()
        self._show_detail()

    def _show_view(self) -> None:
        _, label, _ = SORTS[self.sort_index]
        parts = [f"sort {label} {'↓' if self.sort_reversed else '↑'} (o, r)"]
        if self.filter_error:
            parts.append(f"filter: {self.filter_error}")
        elif self.filter_text:
            shown = f"{self.shown_groups} of {len(self.groups)} shown"
            parts.append(f"filter {self.filter_text!r}: {shown} (escape clears)")
        else:
            parts.append(f"{len(self.groups)} position{'s' if len(self.groups) != 1 else ''} (/ filters)")
        if self.selection:
            ids = " ".join(f"#{gid}" for gid in sorted(self.selection))
            parts.append(f"{len(self.selection)} selected: {ids} (x exits them)")
        self.query_one("#view", LiveStatic).show(" · ".join(parts))

    def _show_detail(self) -> None:
        detail = self.query_one("#detail", LiveStatic)
        row = self._highlighted_row
        if row is not None:
            g = row.group
            if row.layer is not None:
                text = layer_detail(row, self.now)
            elif g.grid is not None:
                text = grid_detail(g, self.now, row.expanded)
            elif row.leg is None and g.basket:
                text = group_detail(g, self.now, row.expanded)
            else:
                text = position_detail(row.leg or g.legs[0], self.now)
            orphans = self.shown.orphans if self.shown else ()
            why = next((o.why for o in orphans if o.strategy_id == g.strategy_id), "")
            if why:  # managed on its stored levels until the operator closes it
                text = f"{g.strategy_id} is {why} (S exits its positions) · {text}"
            detail.show(text)
        elif self.groups:
            detail.show("No position matches the filter: escape clears it.")
        elif self.shown is not None and self.shown.notes:
            detail.show(" · ".join(self.shown.notes))
        else:
            detail.show("No open position. Strategies enter on their own schedule (1 Schedule; n enters now).")

    def _rerender(self) -> None:
        if self.shown is not None:
            with self.app.batch_update():
                self._render_rows()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()  # enter on the table: the screen's enter key
        self.action_toggle_expand()

    # == what is highlighted =================================================================

    @property
    def _highlighted_row(self) -> Row | None:
        key = self.table.selected_key
        return self.rows.get(key) if key is not None else None

    @property
    def selected(self) -> PositionView | None:
        """The highlighted leg (a group's first open leg on the group's own row; none on a
        grid's unfilled layer or a grid with only resting layers)."""
        row = self._highlighted_row
        if row is None:
            return None
        if row.leg is not None or row.layer is not None:
            return row.leg
        return next(iter(row.group.legs), None)

    @property
    def highlighted_group(self) -> Group | None:
        row = self._highlighted_row
        return None if row is None else row.group

    def _require_group(self) -> Group | None:
        g = self.highlighted_group
        if g is None:
            self.notify("No position highlighted", severity="warning")
        return g

    # == actions =============================================================================

    def action_toggle_expand(self) -> None:
        g = self.highlighted_group
        if g is None or not g.expandable:
            return
        self.expanded ^= {g.id}
        self._rerender()
        self.table.move_cursor(row=self.table.get_row_index(str(g.id)), animate=False)

    def action_toggle_select(self) -> None:
        if (g := self._require_group()) is None:
            return
        if g.status == PositionStatus.EXITING:
            self.notify(f"#{g.id} is already exiting", severity="warning")
            return
        self.selection ^= {g.id}
        self._rerender()

    def action_cycle_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(SORTS)
        self._rerender()

    def action_reverse_sort(self) -> None:
        self.sort_reversed = not self.sort_reversed
        self._rerender()

    def action_filter(self) -> None:
        self.query_one("#filter-bar").display = True
        self.query_one("#filter", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._apply_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one("#filter-bar").display = False
        self.table.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        self.query_one("#filter-bar").display = False
        self.table.focus()
        if box.value:
            box.value = ""  # Input.Changed re-filters
        else:
            self._apply_filter("")

    def _apply_filter(self, text: str) -> None:
        self.filter_text = text.strip()
        try:
            self._filters, self.filter_error = parse_filter(self.filter_text), ""
        except FilterError as exc:
            self._filters, self.filter_error = [], str(exc)
        self._rerender()

    def action_exit_positions(self) -> None:
        if self.selection:
            commands.exit_positions(self.app, {gid: self.groups[gid].symbols for gid in sorted(self.selection)})
        elif (g := self._require_group()) is not None:
            if g.grid is not None:  # its resting layers are cancelled too
                commands.confirm_then(self.app, grid_exit_question(g), lambda: self.engine.exit_position(g.id),
                                      title="Exit grid")
            elif g.basket:
                commands.exit_positions(self.app, {g.id: g.symbols})
            else:
                commands.exit_position(self.app, g.legs[0])

    def action_exit_strategy(self) -> None:
        if (g := self._require_group()) is not None:
            commands.exit_strategy_id(self.app, g.strategy_id)

    def action_exit_all(self) -> None:
        commands.exit_all(self.app)

    def action_edit_levels(self) -> None:
        if (g := self._require_group()) is None:
            return
        row = self._highlighted_row
        if row.layer is not None and row.leg is None:
            self.notify(f"#{g.id} layer {layer_name(row.layer)} is {row.layer.state}: only a filled layer has "
                        "levels to edit", severity="warning")
            return
        if g.expandable and row.leg is None:
            kind, part = ("DCA grid", "filled layer") if g.grid else ("basket", "leg")
            self.notify(f"#{g.id} is a {kind}: open it (enter) and edit each {part}'s levels on its own row",
                        severity="warning")
            return
        commands.edit_levels(self.app, row.leg or g.legs[0])
