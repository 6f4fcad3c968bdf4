"""A strategy in full: what an entry would be and risk right now (per symbol: size, price,
value, loss at the stop, reward at the target), and its whole configuration as the settings
hold it (nested tables such as the schedule, its times and timezone included).

The status line and the risk preview are refreshed every second while the modal is open
(prices move); escape or enter closes it."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from pydantic import BaseModel
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from services.views import RiskPreview, StrategyView

from ..format import (
    DIM,
    LOSS,
    PROFIT,
    STATUS_STYLE,
    WARN,
    clock_time,
    px,
    qty,
    side_word,
)
from .dialog import Dialog
from .live_static import LiveStatic

LIST_SHOWN = 8
"""A longer list (e.g. the entry times of `every_minutes = 2`) shows its first few and its length."""


def value_text(value: Any) -> Text:
    """A configuration value as it would be written in settings.toml, readably."""
    if value is None:
        return Text("—", style=DIM)
    if isinstance(value, bool):
        return Text("true" if value else "false")
    if isinstance(value, float):
        return Text(f"{value:g}" if abs(value) < 1e15 else repr(value))
    if isinstance(value, dict):  # a TOML inline table, e.g. a DCA layer
        return Text("{ " + ", ".join(f"{k} = {value_text(v).plain}" for k, v in value.items()) + " }")
    if isinstance(value, (list, tuple)):
        items = [value_text(v).plain for v in value]
        if not items:
            return Text("none", style=DIM)
        if len(items) > LIST_SHOWN:
            return Text(", ".join(items[:LIST_SHOWN - 2]) + ", … ", no_wrap=False).append(
                f"({len(items)} in all, to {items[-1]})", style=DIM)
        # tables one a line: wrapped into a narrow column, one would run into the next
        return Text((",\n" if any(isinstance(v, dict) for v in value) else ", ").join(items))
    return Text(str(value))


def config_table(config: BaseModel | dict | None) -> RenderableType:
    """The settings of a strategy as they are in effect (defaults included): its plain values
    on the left, each nested table (schedule, sizing, execution) under its name on the right,
    so the schedule's times and timezone are in view without scrolling."""
    if config is None:
        return Text("This strategy is not in the settings any more.", style=DIM)
    data = config.model_dump(mode="json") if isinstance(config, BaseModel) else dict(config)
    plain = {k: v for k, v in data.items() if not isinstance(v, dict)}
    nested = {k: v for k, v in data.items() if isinstance(v, dict)}
    left = _grid()
    _add_rows(left, plain, 0)
    if not nested:
        return left
    right = _grid()
    _add_rows(right, nested, 0)
    both = Table.grid(padding=(0, 3), expand=True)
    both.add_column()
    both.add_column(ratio=1)
    both.add_row(left, right)
    return both


def _grid() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(ratio=1, overflow="fold")
    return table


def _add_rows(table: Table, data: dict, depth: int) -> None:
    indent = "  " * depth
    for key, value in data.items():
        if not isinstance(value, dict):
            table.add_row(f"{indent}{key}", value_text(value))
    for key, value in data.items():
        if isinstance(value, dict):
            table.add_row(Text(f"{indent}[{key}]", style="bold underline"), "")
            _add_rows(table, value, depth + 1)


def risk_table(rows: Sequence[RiskPreview]) -> RenderableType:
    """What an entry would be now on each symbol, a total when there are several, and under
    them each symbol's note (why it would not go) across the whole width: in a column beside
    the numbers a note has a few characters a line at 80 columns."""
    if not rows:
        return Text("No symbol to preview.", style=DIM)
    table = Table(box=None, padding=(0, 1), header_style="bold", expand=True, show_edge=False)
    for name in ("Symbol", "Qty", "Price", "Notional", "Loss at stop", "Reward at target"):
        table.add_column(name, justify="left" if name == "Symbol" else "right", no_wrap=True)
    table.add_column("Note", ratio=1, no_wrap=True)
    notes = []
    for r in rows:
        table.add_row(
            r.symbol, qty(r.qty), px(r.price), _amount(r.notional),
            Text(_amount(r.loss_at_stop, "-"), style=LOSS if r.loss_at_stop else DIM),
            Text(_amount(r.reward_at_target, "+"), style=PROFIT if r.reward_at_target else DIM),
            Text("see below", style=WARN) if r.note else Text("ok", style=DIM),
        )
        if r.note:
            notes.append(f"{r.symbol}: {r.note}")
    if len(rows) > 1:
        sized = [r for r in rows if r.notional is not None]
        table.add_row(
            Text("Total", style="bold"), "", "", _amount(sum(r.notional or 0 for r in sized)),
            Text(_amount(sum(r.loss_at_stop or 0 for r in sized), "-"), style=LOSS),
            Text(_amount(sum(r.reward_at_target or 0 for r in sized), "+"), style=PROFIT), "",
        )
    return Group(table, Text("\n".join(notes), style=WARN)) if notes else table


def _amount(v: float | None, sign: str = "") -> str:
    if v is None:
        return "—"
    return f"{sign}{v:,.2f}"


def header_text(s: StrategyView, timezone: str | None = None) -> Text:
    """Status and why, what it trades, and when it next enters and plans to exit (clock
    times in the schedule's timezone: they stay true while the modal is open)."""
    text = Text.assemble((s.id, "bold"), " · ", (s.status, STATUS_STYLE.get(s.status, "")))
    if s.reason:
        text.append(f" ({s.reason})", style=DIM)
    text.append(f"\n{s.entry} entry · {side_word(s.side)} {', '.join(s.symbols)} · exits: {s.exits}")
    times = []
    if s.next_entry_at is not None:
        times.append(f"next entry {clock_time(s.next_entry_at, timezone)}")
    if s.planned_exit_at is not None:
        times.append(f"planned exit {clock_time(s.planned_exit_at, timezone)}")
    if s.allocation is not None:
        times.append(f"funds {s.used_funds:,.2f} used of {s.allocation:,.2f}")
    if times:
        text.append("\n" + " · ".join(times))
    return text


class StrategyDetailsScreen(Dialog[None]):
    DEFAULT_CSS = """
    StrategyDetailsScreen > VerticalScroll {
        width: 96;
    }
    StrategyDetailsScreen .section {
        margin-top: 1;
        text-style: bold;
        color: $accent;
    }
    StrategyDetailsScreen #hint {
        color: $text-muted;
        margin-top: 1;
    }
    """

    BINDINGS = [
        Binding("escape,enter", "dismiss", "Close", id="details.close"),
    ]

    REFRESH = 1.0
    """Seconds between refreshes of the risk preview."""

    def __init__(self, strategy: StrategyView, config: BaseModel | None,
                 preview: Callable[[], Sequence[RiskPreview]]) -> None:
        super().__init__()
        self.strategy = strategy
        self.config = config
        self.preview = preview
        self._shown_rows: tuple[RiskPreview, ...] = ()
        self._timezone: str | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="details") as scroll:
            scroll.border_title = f"Strategy {self.strategy.id}"
            scroll.border_subtitle = "esc / enter close"
            schedule = getattr(self.config, "schedule", None)
            self._timezone = schedule.timezone if schedule is not None else None
            yield LiveStatic(header_text(self.strategy, self._timezone), id="header")
            yield Static("Risk preview (an entry now, at current prices)", classes="section")
            self._shown_rows = tuple(self._preview())
            yield LiveStatic(risk_table(self._shown_rows), id="risk")
            yield Static("Configuration", classes="section")
            yield Static(Group(config_table(self.config)), id="config")

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()
        self.set_interval(self.REFRESH, self._refresh_preview)

    def _preview(self) -> Sequence[RiskPreview]:
        try:
            return self.preview()
        except Exception as exc:  # a preview that fails is shown, not raised
            return (RiskPreview("—", None, None, None, None, None, f"no preview: {exc}"),)

    def _refresh_preview(self) -> None:
        """Each second: the strategy's status from the app's newest snapshot, and the preview."""
        snap = getattr(self.app, "latest_snapshot", None)
        current = next((s for s in snap.strategies if s.id == self.strategy.id), None) if snap else None
        if current is not None and current != self.strategy:
            self.strategy = current
            self.query_one("#header", LiveStatic).show(header_text(current, self._timezone))
        rows = tuple(self._preview())
        if rows != self._shown_rows:
            self._shown_rows = rows
            self.query_one("#risk", LiveStatic).show(risk_table(rows))
