"""7 Risk: the loss-offsetting risk engine (DESIGN §3). Every losing position, biggest loss
first, with what stands between it and the engine closing it (loss, pyramids, the post-full
timer, age, the operator's block or skip) and the projected plan: which winners' parts close
to pay for it, and what each is expected to realize. `r` runs the highlighted plan now
(confirmed), `s` skips it once, `b` blocks it; s and b toggle."""

from __future__ import annotations

import math

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from services.config import RiskEngineConfig
from services.views import EngineSnapshot, RiskView

from . import commands
from .base import EngineScreen, set_title
from .format import DIM, LOSS, PROFIT, WARN, cell, duration, money, num, pct, qty, side_word
from .widgets.keyed_table import KEY, NAME
from .widgets.live_static import LiveStatic
from .widgets.ordered_table import OrderedTable

COLUMNS = [
    ("group", "#>", NAME), ("strategy", "Strategy", NAME), ("symbol", "Symbol", NAME), ("loss_pct", "Loss %>", KEY),
    ("loss", "Loss>", KEY), ("state", "State", KEY), ("timer", "Timer>", 7), ("pyramids", "Pyr.>", 5),
    ("age", "Age>", 4), ("winners", "Winners>", 6), ("covered", "Covered/req.>", 8),
]

TIMER_START = {
    "after_5_pyramids": "after the 5th pyramid",
    "after_all_dca_submitted": "after all DCA layers are placed",
    "after_all_dca_filled": "after all DCA layers filled",
}

STATE_STYLE = {"ELIGIBLE": "bold yellow", "BLOCKED": "bold magenta", "SKIPPED": "bold cyan", "waiting": DIM}

OFF_TEXT = """\
The risk engine is OFF. When on, it closes a stuck losing position together with part of the \
winners, so that their realized profit pays for its loss; this screen then shows every losing \
position, why it is (not yet) eligible and the plan, and r / s / b run, skip or block it.

To turn it on, add a [risk_engine] section to the settings and restart:

  [risk_engine]
  loss_threshold_pct = 2      # a candidate from this loss, % of its cost
  timer_start = "after_all_dca_filled"  # or "after_all_dca_submitted",
                                        # or "after_5_pyramids"
  timer_s = 300               # eligible this long after the timer starts
  max_winners_to_combine = 3  # winners partly closed to pay for one loser
  # optional: require_max_pyramids = true, min_age_s = 600, and
  # enabled = false to only show the plans (r runs them)"""

EMPTY_TEXT = ("No losing position. Losing positions show here, biggest loss first, with the checks "
              "that make them eligible and the winners that would pay for them.")


def state_of(v: RiskView) -> str:
    if v.hold:
        return v.hold.upper()
    return "ELIGIBLE" if v.eligible else "waiting"


def checks_of(v: RiskView) -> dict[str, bool]:
    return {name: passed for name, passed, _ in v.checks}


def winners_of(v: RiskView) -> int:
    return len({step.group_id for step in v.steps})


def timer_cell(remaining: float | None):
    if remaining is None:
        return num("—", DIM)  # not started
    if remaining <= 0:
        return num("due", "bold")
    return num(duration(math.ceil(remaining - 1e-6)), WARN)


def loser_cells(v: RiskView, min_age: bool) -> tuple:
    """min_age: a minimum age is configured, so the age says whether it passes."""
    ok = checks_of(v)
    state = state_of(v)
    age = duration(v.age_s) + ((" ✓" if ok["age"] else " ✗") if min_age else "")
    return (
        num(str(v.group_id)), cell(v.strategy_id), cell(v.symbol),
        num(pct(-v.loss_pct), f"bold {LOSS}" if ok["loss"] else LOSS), num(money(v.pnl), LOSS),
        cell(state, STATE_STYLE[state]), timer_cell(v.timer_remaining),
        num(f"{v.pyramids}/{v.max_pyramids}", "" if ok["pyramids"] else WARN),
        num(age, "" if ok["age"] else WARN), num(str(winners_of(v)), "" if v.steps else DIM),
        num(f"{v.covered:,.2f}/{v.required:,.2f}", PROFIT if v.covers else WARN),
    )


def mode_text(mode: str, cfg: RiskEngineConfig) -> Text:
    """The engine's mode and the rules that make a loser eligible."""
    text = Text("Risk engine ")
    if mode == "auto":
        text.append("AUTO", style="bold green")
        text.append(": a plan runs by itself once eligible and covered")
    else:
        text.append("MANUAL", style="bold yellow")
        text.append(": plans are shown, r runs them (enabled = false)")
    rules = [f"loss ≥ {cfg.loss_threshold_pct:.2f}%"]
    if cfg.require_max_pyramids:
        rules.append("all pyramids used")
    rules.append(f"{duration(cfg.timer_s)} {TIMER_START[cfg.timer_start]}")
    if cfg.min_age_s is not None:
        rules.append(f"open ≥ {duration(cfg.min_age_s)}")
    text.append(f"\nEligible at {', '.join(rules)} · up to {cfg.max_winners_to_combine} winner"
                f"{'s' if cfg.max_winners_to_combine != 1 else ''} pay for one loser", style=DIM)
    return text


def plan_text(v: RiskView) -> Text:
    """The highlighted loser in full: every check, then its plan step by step."""
    state = state_of(v)
    failing = [name for name, passed, _ in v.checks if not passed and name not in ("blocked", "skipped")]
    text = Text(f"#{v.group_id} {v.strategy_id} {v.symbol} {side_word(v.side)} · loss {money(v.pnl)} "
                f"({pct(-v.loss_pct)}) · ", style="bold")
    text.append(state, style=STATE_STYLE[state])
    if state == "waiting":
        text.append(f" for: {', '.join(failing)}", style=DIM)
    for _, passed, what in v.checks:
        text.append("\n  ")
        text.append("✓ " if passed else "✗ ", style=PROFIT if passed else f"bold {LOSS}")
        text.append(what, style="" if passed else WARN)
    text.append("\nPlan, in order:", style="bold")
    for n, step in enumerate(v.steps, 1):
        leg = f" leg {step.leg_id}" if step.leg_id is not None else ""
        text.append(f"\n  {n}. close {qty(step.qty)} {step.symbol} of #{step.group_id}{leg} → expected ")
        text.append(money(step.expected_realized), style=PROFIT if step.expected_realized > 0 else "")
    text.append(f"\n  {len(v.steps) + 1}. {'then ' if v.steps else ''}close all of #{v.group_id} {v.symbol} → expected ")
    text.append(money(-v.required), style=LOSS)
    text.append(" (its loss and exit fee)", style=DIM)
    text.append(f"\nCovered {money(v.covered)} of {v.required:,.2f} required", style="bold")
    if v.covers:
        text.append(": the winners pay for the loss", style=PROFIT)
    else:
        text.append(f" · shortfall {v.required - v.covered:,.2f}", style=f"bold {WARN}")
        text.append(f"\n{v.plan}", style=WARN)
    for note in v.notes:
        text.append(f"\nNote: {note}", style=DIM)
    return text


class RiskScreen(EngineScreen):
    NAME = "Risk"
    CSS_PATH = "risk.tcss"
    VERTICAL_BREAKPOINTS = [(0, "-short"), (28, "-tall")]  # 80x24: fewer losers, more plan

    BINDINGS = [
        Binding("r", "run", "Run plan",
                tooltip="Run the highlighted loser's plan now: close the winners' parts, then it (confirm)",
                id="risk.run"),
        Binding("s", "skip", "Skip once",
                tooltip="Leave the highlighted loser until it stops being eligible (s again: undo)", id="risk.skip"),
        Binding("b", "block", "Block",
                tooltip="The risk engine never closes the highlighted loser (b again: unblock)", id="risk.block"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, RiskView] = {}
        self.mode = "off"

    def compose_body(self) -> ComposeResult:
        yield LiveStatic("", id="mode")
        yield Static(OFF_TEXT, id="off", markup=False)
        with Vertical(id="losers-box"):
            yield OrderedTable(COLUMNS, id="losers")
            yield Static(EMPTY_TEXT, id="losers-empty", markup=False)
        with VerticalScroll(id="plan-box"):
            yield LiveStatic("", id="plan")

    @property
    def table(self) -> OrderedTable:
        return self.query_one("#losers", OrderedTable)

    def render_snapshot(self, snap: EngineSnapshot) -> None:
        if self.mode != snap.risk_engine:
            self.mode = snap.risk_engine
            self.refresh_bindings()
        on = self.mode != "off"
        for widget_id, shown in (("#mode", on), ("#losers-box", on), ("#off", not on)):
            widget = self.query_one(widget_id)
            if widget.display != shown:
                widget.display = shown
        if not on:
            self.query_one("#plan-box").display = False
            return
        cfg = self.engine.config.risk_engine
        self.query_one("#mode", LiveStatic).show(mode_text(self.mode, cfg))
        # the biggest loss in money first, as the title says (the engine lists them by loss %)
        self.rows = {str(v.group_id): v for v in sorted(snap.risk, key=lambda v: (v.pnl, v.group_id))}
        table = self.table
        min_age = cfg.min_age_s is not None
        table.sync(self.rows, lambda v: loser_cells(v, min_age))
        if table.display != bool(self.rows):
            table.display = bool(self.rows)
            self.query_one("#losers-empty").display = not self.rows
            if self.rows:
                table.focus()  # losers arrived: the keys act on them
        eligible = sum(v.eligible for v in snap.risk)
        set_title(self.query_one("#losers-box"),
                  f"Losing positions, biggest loss first · {len(self.rows)} losing, {eligible} eligible")
        # As tall as its rows and its horizontal scrollbar when the columns are wider than the
        # screen (the CSS caps it), so the plan gets the rest of the screen.
        height = len(self.rows) + 1 + (table.virtual_size.width > table.size.width)
        if table.styles.height is None or table.styles.height.value != height:
            table.styles.height = height
        self._show_plan()

    def _show_plan(self) -> None:
        box = self.query_one("#plan-box")
        v = self.selected
        if v is not None:
            self.query_one("#plan", LiveStatic).show(plan_text(v))
            set_title(box, f"Checks and plan of #{v.group_id} {v.strategy_id} {v.symbol}")
        if box.display != (v is not None):
            box.display = v is not None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table is self.table:
            self._show_plan()

    @property
    def selected(self) -> RiskView | None:
        key = self.table.selected_key
        return self.rows.get(key) if key is not None else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # With the risk engine off there is nothing to run, skip or block: no such keys.
        return self.mode != "off" or action not in ("run", "skip", "block")

    def _require(self) -> RiskView | None:
        v = self.selected
        if v is None:
            self.notify("No losing position highlighted", severity="warning")
        return v

    def action_run(self) -> None:
        if (v := self._require()) is not None:
            commands.risk_run(self.app, v)

    def action_skip(self) -> None:
        if (v := self._require()) is not None:
            commands.risk_skip(self.app, v)

    def action_block(self) -> None:
        if (v := self._require()) is not None:
            commands.risk_block(self.app, v)
