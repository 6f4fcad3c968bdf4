"""Edit a position's stop, target, trailing distance and activation, and time exit.

The form is prefilled with the current levels. An empty field removes that level; a field
left as it was is not sent. Input is checked here first (a number, a distance like "0.5%",
a time) and then by the engine (e.g. a stop on the wrong side of the mark); any refusal is
shown next to its field and the form stays open. A preview under the fields shows, as you
type, how far each new level is from the mark and the P&L at the stop and the target. The
mark, the P&L and the preview follow the app's newest snapshot while the form is open; once
the position is exiting or closed the form says so and saves nothing. An edit the engine
says would exit at once is applied only after a confirmation. On success the form closes
with the engine's answer."""

from __future__ import annotations

import time
from typing import Callable, Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static

from services.level_input import parse_activation, parse_price, parse_time_exit, parse_trail
from services.rules.distance import parse_distance
from services.views import CommandResult, EngineSnapshot, PositionView, TradeView

from ..format import countdown, gap, hms, money, px, qty, side_word
from .confirm import ConfirmScreen
from .dialog import Dialog
from .live_static import LiveStatic

FIELDS = ("stop", "target", "trail", "activation", "time")
ARG = {"stop": "stop", "target": "target", "trail": "trail_distance", "activation": "trail_activation",
       "time": "time_exit_at"}


def _price_text(v: float | None) -> str:
    if v is None:
        return ""
    return f"{v:.2f}" if abs(v) >= 1 else f"{v:.6g}"


def _time_text(ts: float | None) -> str:
    return hms(ts) if ts is not None else ""


def summary(p: PositionView) -> str:
    return f"{side_word(p.side)} {qty(p.qty)} {p.symbol} @ {px(p.entry, p.symbol)} · mark {px(p.mark, p.symbol)} · P&L {money(p.pnl)}"


def not_editable(p: PositionView, current: PositionView | None, trades: Sequence[TradeView]) -> str:
    """Why the position's levels can no longer be edited ("" while they can): it is exiting,
    or it is no longer among the open positions (`current` is None)."""
    if current is not None:
        state = f"is exiting ({current.exit_pending})" if current.exit_pending else ""
    else:
        trade = next((t for t in reversed(trades) if t.group_id == p.group_id and t.symbol == p.symbol), None)
        state = f"closed ({trade.exit_reason} at {px(trade.exit_price, p.symbol)}, P&L {money(trade.pnl)})" if trade else "closed"
    return f"position #{p.group_id} {state} — levels can no longer be edited" if state else ""


def _field_of(message: str) -> str:
    """Which field an engine error is about (by its first words)."""
    head = message.strip().lower()
    for prefix, field in (("stop", "stop"), ("target", "target"), ("trailing activation", "activation"),
                          ("time exit", "time"), ("trail", "trail")):
        if head.startswith(prefix):
            return field
    return "trail" if "percentage" in head else "form"


def preview(p: PositionView, values: dict[str, str], now: float) -> str:
    """How far each level typed so far sits from the mark, and the P&L if it is hit."""
    d = 1 if p.side == "buy" else -1
    lines = []
    for name, label in (("stop", "stop"), ("target", "target")):
        try:
            level = parse_price(values[name])
        except ValueError:
            continue
        if level is None:
            if getattr(p, name) is not None:
                lines.append(f"{label} removed")
            continue
        away = (p.mark - level) * d if name == "stop" else (level - p.mark) * d
        at = (level - p.entry) * p.qty * d - p.fees
        share = f" ({abs(away) / p.mark * 100:.2f}%)" if p.mark else ""
        lines.append(f"{label} {px(level, p.symbol)}: {gap(abs(away), p.symbol)}{share} "
                     f"{'away' if away > 0 else 'THROUGH the mark'} · P&L there {money(at)}")
    try:
        trail = parse_trail(values["trail"])
    except ValueError:
        trail = ""
    if trail is None:
        if p.trail_distance is not None:
            lines.append("trailing stop removed")
    elif trail != "" and p.trail_active and p.trail_peak is not None:
        distance = parse_distance(trail)
        level = p.trail_peak * (1 - distance.value * d) if distance.unit == "pct" else p.trail_peak - distance.value * d
        if p.trail_level is not None:
            level = max(level, p.trail_level) if d > 0 else min(level, p.trail_level)
        lines.append(f"trailing level {px(level, p.symbol)}: {gap((p.mark - level) * d, p.symbol)} from the mark · "
                     f"P&L there {money((level - p.entry) * p.qty * d - p.fees)}")
    try:
        # The position's own time exit as shown is that instant (passed, or days ahead), not
        # the next time the clock shows it.
        shown = values["time"].strip() == _time_text(p.time_exit_at)
        at = p.time_exit_at if shown else parse_time_exit(values["time"], now)
    except ValueError:
        at = None
    if at is not None:
        lines.append(f"time exit {hms(at)} UTC, {countdown(at, now, due='due now')}")
    return "\n".join(lines)


class EditLevelsScreen(Dialog[CommandResult | None]):
    """apply(**changes) performs the edit (the engine's edit_levels for this position) and
    returns its CommandResult; the modal dismisses with it on success, None on cancel.
    `now` is the engine's clock (time exits are typed relative to it)."""

    DEFAULT_CSS = """
    EditLevelsScreen > Vertical {
        width: 76;
        height: auto;
    }
    EditLevelsScreen #summary {
        margin-bottom: 1;
    }
    EditLevelsScreen #state {
        color: $warning;
        text-style: bold;
        margin-bottom: 1;
    }
    EditLevelsScreen .row {
        height: auto;
    }
    EditLevelsScreen .row Label {
        width: 12;
    }
    EditLevelsScreen .row Input {
        width: 1fr;
        height: 1;
        border: none;
        padding: 0 1;
        background: $boost;
    }
    EditLevelsScreen .row Input:focus {
        background: $primary 30%;
    }
    EditLevelsScreen .error {
        color: $error;
        text-style: bold;
        padding-left: 12;
        height: auto;
    }
    EditLevelsScreen #preview {
        color: $text-muted;
        height: auto;
        margin: 1 0;
    }
    EditLevelsScreen #hint {
        color: $text-muted;
    }
    EditLevelsScreen #buttons {
        height: auto;
        align: right middle;
    }
    EditLevelsScreen #buttons Button {
        margin-left: 2;
        height: 1;
        border: none;
        min-width: 10;
    }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="edit.cancel"),
        Binding("ctrl+s", "save", "Save", id="edit.save"),
        # Priority: the app moves the focus as it reads Tab. Otherwise Tab is handled only once
        # it has bubbled back up from the field, and keys typed right after it (a fast typist,
        # a paste) have already been sent to the field it leaves.
        Binding("tab", "app.focus_next", "Next field", show=False, priority=True, id="edit.next"),
        Binding("shift+tab", "app.focus_previous", "Previous field", show=False, priority=True,
                id="edit.previous"),
    ]

    REFRESH = 0.2
    """Seconds between looks at the app's newest snapshot (as often as the app renders at most)."""

    def __init__(self, position: PositionView, apply: Callable[..., CommandResult],
                 now: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.position = position
        self.apply = apply
        self.now = now
        self.locked = ""
        """Why the levels can no longer be edited (exiting or closed); "" while they can."""
        self._shown: EngineSnapshot | None = None
        self.initial = {
            "stop": _price_text(position.stop),
            "target": _price_text(position.target),
            "trail": position.trail_distance or "",
            "activation": position.trail_activation or "",
            "time": _time_text(position.time_exit_at),
        }

    def compose(self) -> ComposeResult:
        p = self.position
        with Vertical() as box:
            box.border_title = f"Edit levels · #{p.group_id} {p.symbol}"
            yield LiveStatic(summary(p), id="summary", markup=False)
            yield LiveStatic("", id="state", markup=False)
            for name, label, placeholder in (
                ("stop", "Stop", "price; empty = no stop"),
                ("target", "Target", "price; empty = no target"),
                ("trail", "Trailing", '"0.5%" of the peak or points; empty = none'),
                ("activation", "Arms at", "armed" if p.trail_active else '"0.2%" profit or points; 0 = now'),
                ("time", "Time exit", "HH:MM UTC or +5m; empty = none"),
            ):
                with Horizontal(classes="row"):
                    yield Label(label)
                    yield Input(self.initial[name], placeholder=placeholder, id=f"{name}-input",
                                disabled=name == "activation" and p.trail_active)
                yield Static("", id=f"{name}-error", classes="error", markup=False)
            yield LiveStatic("", id="preview", markup=False)
            yield Static("Empty removes a level · enter saves · esc cancels", id="hint")
            yield Static("", id="form-error", classes="error", markup=False)
            with Horizontal(id="buttons"):
                yield Button("Save", id="save", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        for hidden in self.query(".error, #state"):
            hidden.display = False
        self._show_preview()
        self.query_one("#stop-input", Input).focus()
        self.catch_up()
        self.set_interval(self.REFRESH, self.catch_up)

    def catch_up(self) -> None:
        """Show the app's newest snapshot if it is not on show yet."""
        snap = getattr(self.app, "latest_snapshot", None)
        if snap is not None and snap is not self._shown:
            with self.app.batch_update():
                self.show(snap)

    def show(self, snap: EngineSnapshot) -> None:
        """The position as `snap` has it: its mark and P&L, the preview against that mark, and
        whether it is exiting or closed."""
        self._shown = snap
        p = self.position
        current = next((q for q in snap.positions if q.group_id == p.group_id and q.leg_id == p.leg_id), None)
        self.locked = not_editable(p, current, snap.trades)
        if current is not None:
            self.position = current
            self.query_one("#summary", LiveStatic).show(summary(current))
            self._show_preview()
        state = self.query_one("#state", LiveStatic)
        state.show(self.locked)
        state.display = bool(self.locked)

    def _values(self) -> dict[str, str]:
        return {f: self.query_one(f"#{f}-input", Input).value for f in FIELDS}

    def _show_preview(self) -> None:
        self.query_one("#preview", LiveStatic).show(preview(self.position, self._values(), self.now()))

    def _set_error(self, field: str, message: str) -> None:
        error = self.query_one(f"#{field}-error", Static)
        error.update(message)
        error.display = bool(message)

    def errors(self) -> dict[str, str]:
        """The errors shown now, by field (for tests and for the operator's eyes)."""
        out = {}
        for field in (*FIELDS, "form"):
            text = str(self.query_one(f"#{field}-error", Static).content)
            if text:
                out[field] = text
        return out

    def on_input_changed(self, event: Input.Changed) -> None:
        field = (event.input.id or "").removesuffix("-input")
        if field in FIELDS:
            self._set_error(field, "")
            self._set_error("form", "")
            self._show_preview()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _parse(self, field: str, raw: str) -> object:
        if field == "trail":
            return parse_trail(raw)
        if field == "activation":
            return parse_activation(raw)
        if field == "time":
            return parse_time_exit(raw, self.now())
        return parse_price(raw)

    def action_save(self) -> None:
        if self.locked:  # the engine would refuse it: say why here
            self._set_error("form", f"✗ not saved: {self.locked}")
            return
        values = self._values()
        changes: dict[str, object] = {}
        bad = False
        for field in FIELDS:
            self._set_error(field, "")
            if values[field].strip() == self.initial[field]:
                continue  # untouched: not sent
            try:
                changes[ARG[field]] = self._parse(field, values[field])
            except ValueError as exc:
                self._set_error(field, f"✗ {exc}")
                bad = True
        self._set_error("form", "")
        if bad:
            return
        if not changes:
            self._set_error("form", "✗ nothing changed")
            return
        self._submit(changes, self.apply(**changes))

    def _submit(self, changes: dict[str, object], result: CommandResult) -> None:
        if result.ok:
            self.dismiss(result)
        elif result.needs_confirm:
            def answered(yes: bool | None) -> None:
                if yes:
                    self._submit(changes, self.apply(**changes, confirm=True))

            self.app.push_screen(ConfirmScreen(result.message, "Exit now?"), answered)
        else:
            for part in result.message.split("; "):
                field = _field_of(part)
                current = str(self.query_one(f"#{field}-error", Static).content)
                self._set_error(field, f"{current}\n✗ {part}" if current else f"✗ {part}")
