"""The Exits screen's triggers table: every armed trigger of every open leg with its level and
how far the mark still is from it, closest first (and marked), grouped by position; below
them the positions closed a moment ago with their exit reason, price and P&L, newest first
(they must never push the live rows off screen).

Rows are keyed (group, leg index, rank): rank 0 is always a leg's closest trigger, so the
rows only move when a leg gains or loses a trigger, and a refresh is a diff. A closed
position's row has a key of its own, (group, "closed"): a new row, which the table sorts
below the open ones (it sorts only when rows are added). It stays cheap with hundreds of
positions: on each snapshot only how many triggers each leg has is needed (it changes only
when one of its levels comes or goes); the triggers themselves are computed and sorted when
a row of that leg is drawn."""

from __future__ import annotations

import math
from typing import NamedTuple

from services.views import TRIGGER_LABEL, EngineSnapshot, PositionView, TradeView, TriggerKind, TriggerView, triggers_of

from ..format import DIM, LOSS, PROFIT, WARN, Cell, cell, duration, gap, hms, money, num, px, side_word, signed_style
from .exit_history import reason_label
from .keyed_table import KEY, NAME, KeyedTable

CLOSED_SHOWN_S = 120.0
"""A closed position stays in the table (with its exit) this long after it closed."""

KIND_STYLE = {TriggerKind.STOP_LOSS: LOSS, TriggerKind.TRAILING_STOP: WARN, TriggerKind.TARGET: PROFIT,
              TriggerKind.TRAIL_ARMS: DIM, TriggerKind.TIME: "cyan"}
KIND_RANK = {TriggerKind.STOP_LOSS: 0, TriggerKind.TRAILING_STOP: 0, TriggerKind.TARGET: 0, TriggerKind.TIME: 1,
             TriggerKind.TRAIL_ARMS: 2}
CLOSEST = "▸ "

COLUMNS = [
    ("id", "#>", NAME), ("strategy", "Strategy", NAME), ("symbol", "Symbol", NAME), ("side", "Side", 1),
    ("trigger", "Trigger", KEY), ("level", "Level>", 3), ("distance", "Distance>", KEY), ("distance_pct", "Dist %>", 2),
]
BLANK, BLANK_NUM = cell(""), num("")

LegRow = tuple[PositionView, int, int, float]
"""A row of an open leg: (position, the leg's index in its group, rank, snapshot time); a
plain tuple, as one is made for every trigger of every leg on each snapshot."""


class ClosedRow(NamedTuple):
    """A position closed a moment ago: its exit."""

    trade: TradeView


Row = LegRow | ClosedRow


def closeness(t: TriggerView) -> tuple:
    """Exits by how close the mark is to them (in % of the mark), then the time exit, then
    the price that arms a trailing stop (not an exit itself)."""
    far = t.distance_pct if t.distance_pct is not None else t.distance
    return KIND_RANK.get(t.kind, 3), math.inf if far is None else far


def _shape(p: PositionView) -> tuple:
    """Which triggers a leg has (what views.triggers_of reads to decide it), not how far they are."""
    return (p.exit_pending, p.stop is None, p.target is None, p.trail_active, p.trail_level is None,
            p.trail_arm_at is None, p.time_exit_at is None)


def closed_key(group_id: int) -> str:
    return f"{group_id}:closed"


def _row_order(key: str, row: Row) -> tuple:
    if isinstance(row, ClosedRow):
        return 1, -row.trade.exit_ts, row.trade.group_id, 0
    return 0, row[0].group_id, row[1], row[2]


def trigger_cells(t: TriggerView, closest: bool) -> tuple[Cell, ...]:
    bold = "bold" if closest else ""
    label = (CLOSEST if closest else "  ") + TRIGGER_LABEL.get(t.kind, t.kind)
    style = f"{bold} {KIND_STYLE.get(t.kind, '')}".strip()
    if t.kind == TriggerKind.TIME:
        left = t.distance is not None and t.distance > 0
        return (cell(label, style), num(hms(t.level)), num(f"{duration(t.distance)} left" if left else "due", bold),
                BLANK_NUM)
    reached = t.distance is not None and t.distance <= 0 and t.kind != TriggerKind.TRAIL_ARMS
    distance_style = "bold red" if reached else bold
    distance = "—" if t.distance is None else gap(t.distance, t.symbol)
    distance_pct = "—" if t.distance_pct is None else f"{t.distance_pct:.2f}%"
    return cell(label, style), num(px(t.level, t.symbol)), num(distance, distance_style), num(distance_pct, distance_style)


def closed_cells(t: TradeView) -> tuple[Cell, ...]:
    return (num(str(t.group_id)), cell(t.strategy_id), cell(t.symbol), cell("closed", "bold"),
            cell(reason_label(t.exit_reason)), num(px(t.exit_price, t.symbol)),
            num(f"P&L {money(t.pnl)}", signed_style(t.pnl, 0.005)), BLANK_NUM)


class ExitTriggers(KeyedTable):
    """`show(snap)` brings the table up to date; `exit_rows` maps each row key to its Row."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(COLUMNS, id=id, sort_key=_row_order)
        self.exit_rows: dict[str, Row] = {}
        self._leg_keys: dict[tuple[int, int], tuple[tuple, list[str]]] = {}
        """Per leg (group, index): its shape and its rows' keys, kept while the shape holds."""
        self._sorted: dict[int, list[TriggerView]] = {}
        """Triggers of the legs drawn since the last snapshot, closest first, by id(position)."""
        self._cells_of = self._row_cells  # one bound method: KeyedTable remakes every row for a new one

    def show(self, snap: EngineSnapshot) -> None:
        before = self.selected_key
        gone = self.exit_rows.get(before) if before is not None else None
        self.exit_rows = self._make_rows(snap)
        self.sync(self.exit_rows, self._cells_of)
        if gone is not None and not isinstance(gone, ClosedRow) and before not in self.exit_rows:
            # the cursor's trigger went: stay on its position (its first row, or its exit below)
            group = gone[0].group_id
            head = f"{group}:0:0" if f"{group}:0:0" in self.exit_rows else closed_key(group)
            if head in self.exit_rows:
                self.move_cursor(row=self.get_row_index(head), animate=False, scroll=False)

    @property
    def selected_row(self) -> Row | None:
        key = self.selected_key
        return self.exit_rows.get(key) if key is not None else None

    def _make_rows(self, snap: EngineSnapshot) -> dict[str, Row]:
        rows: dict[str, Row] = {}
        old_keys, leg_keys = self._leg_keys, {}
        self._sorted = {}
        now = snap.ts
        for g in snap.groups:
            group = g.id
            for index, p in enumerate(g.legs):
                shape = _shape(p)
                known = old_keys.get((group, index))
                if known is None or known[0] != shape:
                    n = 1 if p.exit_pending else max(1, len(triggers_of(p, now)))
                    known = (shape, [f"{group}:{index}:{rank}" for rank in range(n)])
                leg_keys[group, index] = known
                for rank, key in enumerate(known[1]):
                    rows[key] = (p, index, rank, now)
        self._leg_keys = leg_keys
        for t in snap.trades:
            if now - t.exit_ts <= CLOSED_SHOWN_S and (t.group_id, 0) not in leg_keys:
                rows[closed_key(t.group_id)] = ClosedRow(t)
        return rows

    def _triggers(self, p: PositionView, now: float) -> list[TriggerView]:
        got = self._sorted.get(id(p))
        if got is None:
            got = self._sorted[id(p)] = sorted(triggers_of(p, now), key=closeness)
        return got

    def _row_cells(self, row: Row) -> tuple[Cell, ...]:
        if isinstance(row, ClosedRow):
            return closed_cells(row.trade)
        p, index, rank, now = row
        heads_leg = rank == 0
        heads_group = heads_leg and index == 0
        who = (num(str(p.group_id)) if heads_group else BLANK_NUM, cell(p.strategy_id) if heads_group else BLANK,
               cell(p.symbol) if heads_leg else BLANK, cell(side_word(p.side)) if heads_leg else BLANK)
        if p.exit_pending:
            return (*who, cell(f"exiting: {reason_label(p.exit_pending)}", "bold yellow"),
                    BLANK_NUM, BLANK_NUM, BLANK_NUM)
        triggers = self._triggers(p, now)
        if rank >= len(triggers):
            return (*who, cell("no exit armed (x exits)", DIM) if not triggers else BLANK,
                    BLANK_NUM, BLANK_NUM, BLANK_NUM)
        t = triggers[rank]
        return (*who, *trigger_cells(t, closest=heads_leg and t.kind != TriggerKind.TRAIL_ARMS))
