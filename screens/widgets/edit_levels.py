"""Edit a position's stop, target and trailing distance.

The form is prefilled with the current levels. An empty field removes that level; a field
left as it was is not sent. Input is checked here first (a number, a distance like "0.5%")
and then by the engine (e.g. a stop on the wrong side of the mark); any refusal is shown
next to its field and the form stays open. On success it closes with the engine's answer."""

from __future__ import annotations

import math
from typing import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static

from services.config import parse_distance
from services.views import CommandResult, PositionView

from ..format import px, qty, side_word
from .dialog import Dialog

FIELDS = ("stop", "target", "trail")


def _price_text(v: float | None) -> str:
    if v is None:
        return ""
    return f"{v:.2f}" if abs(v) >= 1 else f"{v:.6g}"


def parse_price(raw: str) -> float | None:
    """'' -> None (remove the level); otherwise a positive number, or ValueError."""
    text = raw.strip().replace(",", "")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"not a number: {raw.strip()!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError("must be a positive price")
    return value


def parse_trail(raw: str) -> str | float | None:
    """'' -> None (no trailing stop); "0.5%" (of the peak) or points; ValueError otherwise."""
    text = raw.strip()
    if not text:
        return None
    distance = parse_distance(text)  # raises ValueError with the grammar in its message
    if distance.value <= 0:
        raise ValueError("must be above 0")
    if distance.unit == "pct" and distance.value >= 1:
        raise ValueError("must be below 100%")
    return text if distance.unit == "pct" else distance.value


def _field_of(message: str) -> str:
    """Which field an engine error is about (by its first word)."""
    head = message.strip().lower()
    if head.startswith("stop"):
        return "stop"
    if head.startswith("target"):
        return "target"
    if head.startswith("trail") or "percentage" in head:
        return "trail"
    return "form"


class EditLevelsScreen(Dialog[CommandResult | None]):
    """apply(**changes) performs the edit (the engine's edit_levels for this position) and
    returns its CommandResult; the modal dismisses with it on success, None on cancel."""

    DEFAULT_CSS = """
    EditLevelsScreen > Vertical {
        width: 70;
    }
    EditLevelsScreen #summary {
        margin-bottom: 1;
    }
    EditLevelsScreen .row {
        height: auto;
    }
    EditLevelsScreen .row Label {
        width: 10;
        padding: 1 1 0 0;
    }
    EditLevelsScreen .row Input {
        width: 1fr;
    }
    EditLevelsScreen .error {
        color: $error;
        text-style: bold;
        padding-left: 10;
        height: auto;
    }
    EditLevelsScreen #hint {
        color: $text-muted;
        padding-left: 10;
    }
    EditLevelsScreen #buttons {
        height: auto;
        align: right middle;
    }
    EditLevelsScreen Button {
        margin-left: 2;
    }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="edit.cancel"),
        Binding("ctrl+s", "save", "Save", id="edit.save"),
    ]

    def __init__(self, position: PositionView, apply: Callable[..., CommandResult]) -> None:
        super().__init__()
        self.position = position
        self.apply = apply
        self.initial = {
            "stop": _price_text(position.stop),
            "target": _price_text(position.target),
            "trail": position.trail_distance or "",
        }

    def compose(self) -> ComposeResult:
        p = self.position
        with Vertical() as box:
            box.border_title = f"Edit levels · #{p.group_id} {p.symbol}"
            yield Static(
                f"{side_word(p.side)} {qty(p.qty)} {p.symbol} @ {px(p.entry)} · mark {px(p.mark)}",
                id="summary", markup=False,
            )
            for name, label, placeholder in (
                ("stop", "Stop", "price; empty = no stop"),
                ("target", "Target", "price; empty = no target"),
                ("trail", "Trailing", '"0.5%" of the peak or points; empty = none'),
            ):
                with Horizontal(classes="row"):
                    yield Label(label)
                    yield Input(self.initial[name], placeholder=placeholder, id=f"{name}-input")
                yield Static("", id=f"{name}-error", classes="error", markup=False)
            yield Static("Empty removes a level · enter saves · esc cancels", id="hint")
            yield Static("", id="form-error", classes="error", markup=False)
            with Horizontal(id="buttons"):
                yield Button("Save", id="save", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        for error in self.query(".error"):
            error.display = False
        self.query_one("#stop-input", Input).focus()

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

    def action_save(self) -> None:
        values = {f: self.query_one(f"#{f}-input", Input).value for f in FIELDS}
        changes: dict[str, object] = {}
        bad = False
        for field in FIELDS:
            self._set_error(field, "")
            try:
                parsed = parse_trail(values[field]) if field == "trail" else parse_price(values[field])
            except ValueError as exc:
                self._set_error(field, f"✗ {exc}")
                bad = True
                continue
            if values[field].strip() != self.initial[field]:
                changes["trail_distance" if field == "trail" else field] = parsed
        self._set_error("form", "")
        if bad:
            return
        if not changes:
            self._set_error("form", "✗ nothing changed")
            return
        result = self.apply(**changes)
        if result.ok:
            self.dismiss(result)
            return
        for part in result.message.split("; "):
            field = _field_of(part)
            current = str(self.query_one(f"#{field}-error", Static).content)
            self._set_error(field, f"{current}\n✗ {part}" if current else f"✗ {part}")
