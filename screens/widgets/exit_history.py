"""The Exits screen's history panel: for the highlighted position, what will take it out now
and the timeline of what happened to its levels (edits, trailing arming and moves) and its
exit (decided, closed with reason and price), newest first."""

from __future__ import annotations

from typing import NamedTuple

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll

from services.rules.pnl_scopes import RULE_LABEL
from services.views import TRIGGER_LABEL, EngineSnapshot, PositionView, TradeView

from ..format import DIM, LOSS, WARN, countdown, hms, money, px, qty, side_word
from .live_static import LiveStatic

HISTORY_CATEGORIES = {"levels": "cyan", "trailing": WARN, "exit": "bold"}
"""Event categories that belong to a position's exit history, with their style."""

MAX_LINES = 50
"""Timeline lines kept (newest first); the Logs screen has every event."""


class Line(NamedTuple):
    ts: float
    text: str
    style: str = ""


"""A position's triggers (services.views.TriggerView.kind), which are also its exit reasons."""


def reason_label(reason: str) -> str:
    """An exit reason in words; a P&L rule's with its scope when that is the book (a
    strategy's rule is the position's own strategy's)."""
    scope, _, rule = reason.partition("_")
    if scope in ("book", "strategy") and rule in RULE_LABEL:
        return RULE_LABEL[rule] if scope == "strategy" else f"book {RULE_LABEL[rule]}"
    return TRIGGER_LABEL.get(reason) or RULE_LABEL.get(reason) or reason.replace("_", " ") or "exit"


def position_summary(p: PositionView, now: float) -> str:
    """What will take an open position out: its planned exit, its trailing stop, its exit order."""
    parts = [f"{side_word(p.side)} {qty(p.qty)} {p.symbol} @ {px(p.entry, p.symbol)}, mark {px(p.mark, p.symbol)}"]
    if p.exit_pending:
        parts.append(f"EXITING ({reason_label(p.exit_pending)})" + (f": {p.exit_order}" if p.exit_order else ""))
    if p.time_exit_at is not None:
        parts.append(f"planned exit {hms(p.time_exit_at)} UTC ({countdown(p.time_exit_at, now)})")
    else:
        parts.append("no planned exit")
    if p.trail_distance is not None:
        if p.trail_active:
            changed = f", last change {hms(p.trail_updated_at)}" if p.trail_updated_at is not None else ""
            parts.append(f"trailing {p.trail_distance} armed: level {px(p.trail_level, p.symbol)}, "
                         f"peak {px(p.trail_peak, p.symbol)}{changed}")
        else:
            parts.append(f"trailing {p.trail_distance} arms at {px(p.trail_arm_at, p.symbol)}")
    return " · ".join(parts)


def trade_summary(t: TradeView) -> str:
    return (f"closed {hms(t.exit_ts)} at {px(t.exit_price, t.symbol)} ({reason_label(t.exit_reason)}) · "
            f"{side_word(t.side)} {qty(t.qty)} {t.symbol} @ {px(t.entry_price, t.symbol)} · P&L {money(t.pnl)}")


def timeline(snap: EngineSnapshot, group_id: int, position: PositionView | None, trade: TradeView | None) -> list[Line]:
    """The position's exit history, newest first: its level edits, trailing arming, exit
    events (from the engine's recent events), its trailing-level moves and its opening."""
    lines = []  # oldest first: same-time lines keep this order through the sort
    if position is not None:
        lines.append(Line(position.opened_at, f"opened {side_word(position.side)} {qty(position.qty)} "
                                              f"{position.symbol} @ {px(position.entry, position.symbol)}", DIM))
    elif trade is not None:
        lines.append(Line(trade.entry_ts, f"opened {side_word(trade.side)} {qty(trade.qty)} "
                                          f"{trade.symbol} @ {px(trade.entry_price, trade.symbol)}", DIM))
    lines += (
        Line(e.ts, e.message, LOSS if e.level in ("error", "critical") else WARN if e.level == "warning"
             else HISTORY_CATEGORIES[e.category])
        for e in snap.events if e.group_id == group_id and e.category in HISTORY_CATEGORIES
    )
    if position is not None:
        before = None
        for ts, level in position.trail_moves:
            move = (f"{px(before, position.symbol)} -> {px(level, position.symbol)}" if before is not None
                    else px(level, position.symbol))
            lines.append(Line(ts, f"trailing level {move}", WARN))
            before = level
    lines.sort(key=lambda line: line.ts)
    return lines[::-1][:MAX_LINES]


class ExitHistory(VerticalScroll):
    """A summary line, then the timeline; scrolls when focused (tab)."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self._content: tuple | None = None

    def compose(self) -> ComposeResult:
        yield LiveStatic("", id="history-text")

    def show(self, summary: str, lines: list[Line]) -> None:
        content = (summary, tuple(lines))
        if content == self._content:
            return
        self._content = content
        text = Text(summary, style="bold")
        for line in lines:
            text.append("\n")
            text.append(hms(line.ts), DIM)
            text.append("  ")
            text.append(line.text, line.style)
        self.query_one("#history-text", LiveStatic).show(text)

    def show_note(self, note: str) -> None:
        self.show(note, [])
