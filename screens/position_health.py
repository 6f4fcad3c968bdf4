"""The health of each open position as the Positions screen shows it: position groups (a
basket's legs, or a DCA grid's layers, under one row) with their aggregates, their table
cells, the detail of the highlighted one (every level and how far the mark is from it) and
the book's P&L line. A grid's own cells and detail are in grid_health."""

from __future__ import annotations

from typing import NamedTuple

from rich.text import Text

from services.views import (
    AccountView, EngineSnapshot, GridLegView, GridView, GroupView, LayerState, PortfolioView, PositionStatus, PositionView,
    TriggerKind, TriggerView, triggers_of,
)

from .format import (
    DIM, LOSS, PROFIT, STATUS_STYLE, WARN, Cell, cell, duration, gap, hms, money, num, pct, pnl_cell,
    pnl_pct_cell, px, qty, side_word, signed_style, sparkline,
)
from .widgets.exit_history import reason_label
from .widgets.keyed_table import KEY, NAME

COLUMNS = [
    ("sel", " ", NAME), ("id", "#>", NAME), ("strategy", "Strategy", NAME), ("symbol", "Symbol", NAME),
    ("side", "Side", 8), ("status", "Status", KEY), ("pnl", "P&L>", KEY), ("pnl_pct", "P&L %>", 10),
    ("mark", "Mark>", KEY), ("trend", "Trend", 5), ("next", "Next exit", 9), ("age", "Age>", 6), ("qty", "Qty>", 4),
    ("entry", "Entry>", 7), ("stop", "Stop>", 3), ("target", "Target>", 2), ("trail", "Trail>", 1),
]
"""What an operator scans first comes first; a narrower terminal drops the columns with the
lowest priority, which the detail line also shows."""

TREND_WIDTH = 8
"""Cells of the mark sparkline (the marks are sampled about once a second)."""

SELECTED_MARK = "●"
STATUS_RANK = {PositionStatus.OPEN: 0, PositionStatus.STALE: 1, PositionStatus.EXITING: 2}
"""A group shows the worst status of its legs."""

EXIT_TRIGGERS = {TriggerKind.STOP_LOSS: ("stop", LOSS), TriggerKind.TRAILING_STOP: ("trail", WARN),
                 TriggerKind.TARGET: ("target", PROFIT)}
"""The price triggers that exit a position: their short label and colour."""


class Group(NamedTuple):
    """A position group as the screen shows it: its open legs and their aggregates, and a DCA
    group's grid (whose open legs are its filled layers; it may have none while layers rest).
    (Tuples: every snapshot makes one per group, hundreds a few times a second.)"""

    id: int
    strategy_id: str
    legs: tuple[PositionView, ...]
    pnl: float
    pnl_pct: float
    fees: float
    status: str
    opened_at: float
    grid: GridView | None = None

    @property
    def basket(self) -> bool:
        return len(self.legs) > 1 and self.grid is None

    @property
    def expandable(self) -> bool:
        """A basket opens into its legs, a grid into its layers."""
        return self.basket or self.grid is not None

    @property
    def symbols(self) -> str:
        return self.grid.symbol if self.grid is not None else "+".join(p.symbol for p in self.legs)

    @property
    def side(self) -> str:
        sides = {side_word(p.side) for p in self.legs} if self.grid is None else {side_word(self.grid.side)}
        return sides.pop() if len(sides) == 1 else "mixed"

    @property
    def search_text(self) -> str:
        """What the filter looks in: strategy, symbols, sides (long/short and buy/sell), "grid"."""
        sides = {p.side for p in self.legs} | ({self.grid.side} if self.grid is not None else set())
        words = (self.strategy_id, self.symbols, *sides, *map(side_word, sides), "grid" if self.grid else "")
        return " ".join(words).lower()


def group_of(g: GroupView) -> Group:
    legs = g.legs
    if g.grid is not None:
        return grid_group(g.grid, legs)
    if len(legs) == 1:  # most groups: the leg's own figures
        p = legs[0]
        return Group(p.group_id, p.strategy_id, legs, p.pnl, p.pnl_pct, p.fees, p.status, p.opened_at)
    pnl = sum(p.pnl for p in legs)
    notional = sum(p.entry * p.qty for p in legs)
    return Group(legs[0].group_id, legs[0].strategy_id, legs, pnl, pnl / notional * 100.0 if notional else 0.0,
                 sum(p.fees for p in legs), max((p.status for p in legs), key=lambda s: STATUS_RANK.get(s, 0)),
                 min(p.opened_at for p in legs))


def grid_group(grid: GridView, legs: tuple[PositionView, ...]) -> Group:
    """A DCA group: P&L is what its filled layers made so far (realized) and make now (open);
    without an open layer it is "resting" on its unfilled layers' orders."""
    realized = sum(lg.realized for lg in grid.legs)
    pnl = realized + sum(p.pnl for p in legs)
    notional = sum(lg.price * lg.filled_qty for lg in grid.legs if lg.state != LayerState.CANCELLED)
    status = max((p.status for p in legs), key=lambda s: STATUS_RANK.get(s, 0)) if legs else "resting"
    return Group(grid.group_id, grid.strategy_id, legs, pnl, pnl / notional * 100.0 if notional else 0.0,
                 sum(p.fees for p in legs), status, grid.opened_at, grid)


def groups_of(snap: EngineSnapshot) -> dict[int, Group]:
    """The groups with an open leg, in the engine's order (by id), and every DCA group (one
    whose filled layers all took profit has no open leg but still rests orders)."""
    return {g.id: group_of(g) for g in snap.groups if g.legs or g.grid is not None}


# == cells ===================================================================================


class Row(NamedTuple):
    """A table row: a group's own row, or one leg of an expanded basket (`leg` set), or one
    layer of an expanded grid (`layer` set, and `leg` its open position while it is filled)."""

    group: Group
    leg: PositionView | None = None
    selected: bool = False
    expanded: bool = False
    layer: GridLegView | None = None


def legs_triggers(legs: tuple[PositionView, ...], now: float) -> list[TriggerView]:
    return [t for p in legs for t in triggers_of(p, now)]


def nearest_exit(triggers: list[TriggerView]) -> TriggerView | None:
    """The price trigger closest to the mark (in %) among stops, targets and armed trailing
    levels; without one, the earliest time exit."""
    prices = [t for t in triggers if t.kind in EXIT_TRIGGERS and t.distance_pct is not None]
    if prices:
        return min(prices, key=lambda t: t.distance_pct)
    times = [t for t in triggers if t.kind == TriggerKind.TIME and t.distance is not None]
    return min(times, key=lambda t: t.distance) if times else None


def next_exit_cell(triggers: list[TriggerView]) -> Cell:
    t = nearest_exit(triggers)
    if t is None:
        return cell("—", DIM)
    if t.kind == TriggerKind.TIME:
        return cell(f"time {duration(t.distance)}" if t.distance > 0 else "time due", "cyan")
    label, style = EXIT_TRIGGERS[t.kind]
    return cell(f"{label} {t.distance_pct:.2f}%", style)


def trail_cell(p: PositionView) -> Cell:
    if p.trail_active and p.trail_level is not None:
        return num(px(p.trail_level, p.symbol))
    if p.trail_distance is not None:
        return num("idle", DIM)
    return num("—", DIM)


def status_cell(status: str) -> Cell:
    return cell(status, STATUS_STYLE.get(status, ""))


def leg_cells(p: PositionView, now: float, status: Cell | None = None, size: Cell | None = None) -> tuple:
    """The cells of one leg from Side on (a grid's layer shows its own state and size)."""
    return (
        cell(side_word(p.side)), status or status_cell(p.status), pnl_cell(p.pnl), pnl_pct_cell(p.pnl_pct),
        num(px(p.mark, p.symbol)), cell(sparkline(p.marks, TREND_WIDTH), signed_style(p.pnl, 0.005)),
        next_exit_cell(triggers_of(p, now)), num(duration(now - p.opened_at)), size or num(qty(p.qty)),
        num(px(p.entry, p.symbol)), num(px(p.stop, p.symbol)), num(px(p.target, p.symbol)), trail_cell(p),
    )


def head_cells(row: Row) -> tuple:
    """A group row's first cells: selected or not, its id, its strategy."""
    return cell(SELECTED_MARK if row.selected else "", "bold cyan"), num(str(row.group.id)), cell(row.group.strategy_id)


def sub_head_cells(name: str) -> tuple:
    """A leg's or layer's first cells, under its group's row: what it is."""
    return cell(""), num(""), cell(""), cell(f"└ {name}")


def row_cells(row: Row, now: float) -> tuple:
    g = row.group
    if row.leg is not None:  # under its basket's row
        return *sub_head_cells(row.leg.symbol), *leg_cells(row.leg, now)
    head = head_cells(row)
    if not g.basket:
        return *head, cell(g.legs[0].symbol), *leg_cells(g.legs[0], now)
    blank = num("")
    return (
        *head, cell(f"{'▾' if row.expanded else '▸'} {len(g.legs)} legs"), cell(g.side), status_cell(g.status),
        pnl_cell(g.pnl), pnl_pct_cell(g.pnl_pct), blank, cell(""), next_exit_cell(legs_triggers(g.legs, now)),
        num(duration(now - g.opened_at)), blank, blank, blank, blank, blank,
    )


# == the detail line and the summary =========================================================


def away_text(t: TriggerView | None) -> str:
    """How far the mark is from a trigger: ", 0.93 (1.85%) away", or through it ("" without a mark)."""
    if t is None or t.distance is None or t.distance_pct is None:
        return ""
    return f", {gap(abs(t.distance), t.symbol)} ({abs(t.distance_pct):.2f}%) {'away' if t.distance > 0 else 'through'}"


def levels_text(p: PositionView, now: float) -> str:
    """Each exit level with how far the mark is from it, the trailing stop's state, the time exit."""
    triggers = {t.kind: t for t in triggers_of(p, now)}
    parts = []
    for kind, label, level in ((TriggerKind.STOP_LOSS, "stop", p.stop), (TriggerKind.TARGET, "target", p.target)):
        parts.append(f"no {label}" if level is None else f"{label} {px(level, p.symbol)}{away_text(triggers.get(kind))}")
    if p.trail_distance is None:
        parts.append("no trailing stop")
    elif p.trail_active:
        extreme = "peak" if p.side == "buy" else "trough"
        away = away_text(triggers.get(TriggerKind.TRAILING_STOP))
        parts.append(f"trail {p.trail_distance} armed: level {px(p.trail_level, p.symbol)}{away}, "
                     f"{extreme} {px(p.trail_peak, p.symbol)}, last move {hms(p.trail_updated_at)}")
    else:
        away = away_text(triggers.get(TriggerKind.TRAIL_ARMS))
        parts.append(f"trail {p.trail_distance} not armed: arms at {px(p.trail_arm_at, p.symbol)}{away}")
    if p.time_exit_at is not None:
        left = p.time_exit_at - now
        parts.append(f"time exit {hms(p.time_exit_at)} ({'in ' + duration(left) if left > 0 else 'due'})")
    return " · ".join(parts)


def state_text(status: str, legs: tuple[PositionView, ...]) -> str:
    """STALE and EXITING said in words, with the exit order that is working."""
    if status == PositionStatus.STALE:
        return "STALE: no fresh quote, so no exit rule can act until one comes"
    if status == PositionStatus.EXITING:
        order = next((p.exit_order for p in legs if p.exit_order), "")
        working = f"exit order {order}" if order else "exit order to be sent"
        return f"EXITING ({reason_label(legs[0].exit_pending)}): {working}"
    return status


def position_detail(p: PositionView, now: float) -> str:
    marks = sparkline(p.marks, 2 * TREND_WIDTH)
    return " · ".join((
        f"#{p.group_id} {p.strategy_id} {side_word(p.side)} {qty(p.qty)} {p.symbol}",
        f"entry {px(p.entry, p.symbol)} → mark {px(p.mark, p.symbol)}" + (f" {marks}" if marks else ""),
        f"P&L {money(p.pnl)} ({pct(p.pnl_pct)}), fees {p.fees:,.2f}",
        f"age {duration(now - p.opened_at)}",
        state_text(p.status, (p,)),
        levels_text(p, now),
    ))


def group_detail(g: Group, now: float, expanded: bool) -> str:
    legs = ", ".join(f"{side_word(p.side)} {qty(p.qty)} {p.symbol} {money(p.pnl)}" for p in g.legs)
    parts = [f"#{g.id} {g.strategy_id} basket: {legs}", f"P&L {money(g.pnl)} ({pct(g.pnl_pct)}), fees {g.fees:,.2f}",
             f"age {duration(now - g.opened_at)}", state_text(g.status, g.legs)]
    t = nearest_exit(legs_triggers(g.legs, now))
    if t is not None and t.kind in EXIT_TRIGGERS:
        parts.append(f"nearest exit: {t.symbol} {EXIT_TRIGGERS[t.kind][0]} {px(t.level, t.symbol)}{away_text(t)}, "
                     "which exits the whole basket")
    parts.append("enter hides the legs" if expanded else "enter shows the legs")
    return " · ".join(parts)


def _pnl_text(label: str, v: float) -> Text:
    return Text.assemble(label, (money(v), signed_style(v, 0.005)))


def book_summary(portfolio: tuple[PortfolioView, ...], account: AccountView | None = None) -> Text:
    """Two lines, each cut to the width: the paper account, then the book's P&L today and each
    strategy's day P&L."""
    text = Text(no_wrap=True, overflow="ellipsis")
    if account is not None:
        text.append_text(Text.assemble(
            "Account: equity ", (f"{account.equity:,.2f}", "bold"), f" · cash {account.cash:,.2f}",
            f" · free {account.funds_free:,.2f} · exposure {account.gross_exposure:,.2f}",
            f" (net {account.net_exposure:+,.2f})" if abs(account.net_exposure - account.gross_exposure) >= 0.005 else ""))
    if not portfolio:
        return text
    book = portfolio[0]
    text.append("\n" if account is not None else "")
    text.append_text(Text.assemble("Book today: ", _pnl_text("realized ", book.realized_today), " · ",
                                   _pnl_text("unrealized ", book.unrealized), " · ", _pnl_text("day ", book.day_pnl)))
    strategies = [s for s in portfolio[1:] if s.open_positions or abs(s.day_pnl) >= 0.005]
    if strategies:
        text.append(" │ ", DIM)
        for i, s in enumerate(strategies):
            text.append_text(_pnl_text(("" if i == 0 else " · ") + f"{s.scope} ", s.day_pnl))
    return text
