"""4 Exits: for each position the triggers that are armed and how far the price is from
each, its planned (time) exit, and the trailing stop's state."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical

from services.views import EngineSnapshot, PositionView, TriggerView

from .base import EngineScreen, set_subtitle
from .format import DIM, LOSS, PROFIT, WARN, cell, duration, hms, num, px, side_word
from .widgets.keyed_table import KeyedTable

KIND_ORDER = {"stop_loss": 0, "trailing_stop": 1, "target": 2, "trail_arms": 3, "time": 4}
KIND_LABEL = {
    "stop_loss": "stop loss", "trailing_stop": "trailing stop", "target": "target",
    "trail_arms": "trail arms at", "time": "time exit",
}
KIND_STYLE = {"stop_loss": LOSS, "trailing_stop": WARN, "target": PROFIT, "trail_arms": DIM, "time": "cyan"}

TRIGGER_COLUMNS = [
    ("id", "#>"), ("symbol", "Symbol"), ("kind", "Trigger"), ("level", "Level>"), ("distance", "Distance>"),
    ("distance_pct", "Dist %>"),
]
TRAIL_COLUMNS = [
    ("id", "#>"), ("symbol", "Symbol"), ("side", "Side"), ("trailing", "Trailing"),
    ("distance", "Dist>"), ("peak", "Peak>"), ("level", "Level>"), ("changed", "Last change"),
    ("planned", "Planned exit"),
]


def trigger_cells(t: TriggerView) -> tuple:
    if t.kind == "time":
        level = num(hms(t.level))
        distance = num(f"{duration(t.distance)} left" if t.distance is not None and t.distance > 0 else "due")
        distance_pct = num("")
    else:
        level = num(px(t.level))
        distance = num("—" if t.distance is None else f"{t.distance:,.2f}" if abs(t.distance) >= 1 else f"{t.distance:.4g}")
        distance_pct = num("—" if t.distance_pct is None else f"{t.distance_pct:.2f}%")
    return (num(str(t.group_id)), cell(t.symbol), cell(KIND_LABEL.get(t.kind, t.kind), KIND_STYLE.get(t.kind, "")),
            level, distance, distance_pct)


def _trigger_order(key: str, t: TriggerView) -> tuple:
    """Position by position, its triggers in a fixed order (stop first)."""
    return t.group_id, KIND_ORDER.get(t.kind, 9)


def trail_cells(p: PositionView) -> tuple:
    if p.trail_distance is None:
        state, style = "none", DIM
    elif p.trail_active:
        state, style = "armed", WARN
    else:
        state, style = f"arms +{p.trail_activation}", ""
    changed = hms(p.trail_updated_at) if p.trail_updated_at is not None else "—"
    planned = hms(p.time_exit_at) if p.time_exit_at is not None else "—"
    return (
        num(str(p.group_id)), cell(p.symbol), cell(side_word(p.side)), cell(state, style),
        num(p.trail_distance or "—"), num(px(p.trail_peak)), num(px(p.trail_level) if p.trail_active else "—"),
        cell(changed), cell(planned, "cyan" if p.time_exit_at is not None else ""),
    )


class ExitsScreen(EngineScreen):
    NAME = "Exits"
    CSS_PATH = "exits.tcss"

    def compose_body(self) -> ComposeResult:
        with Vertical(id="triggers-box") as box:
            box.border_title = "Armed triggers (distance: how far the mark still is from each)"
            yield KeyedTable(TRIGGER_COLUMNS, id="triggers", sort_key=_trigger_order)
        with Vertical(id="trailing-box") as box:
            box.border_title = "Trailing stop (last level change) and planned exit (time left above)"
            yield KeyedTable(TRAIL_COLUMNS, id="trailing")

    def render_snapshot(self, snap: EngineSnapshot) -> None:
        triggers = snap.triggers()
        self.query_one("#triggers", KeyedTable).sync(
            {f"{t.group_id}:{t.symbol}:{t.kind}": t for t in triggers}, trigger_cells)
        self.query_one("#trailing", KeyedTable).sync(
            {f"{p.group_id}:{p.leg_id}": p for p in snap.positions}, trail_cells)
        set_subtitle(self.query_one("#triggers-box"), f"{len(triggers)}")
        set_subtitle(self.query_one("#trailing-box"), f"{len(snap.positions)} position(s)")
