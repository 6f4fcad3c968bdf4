"""Asked at start when a strategy that was removed from (or disabled in) the settings still
holds open positions: keep managing them on their stored levels, or close them now."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from services.views import OrphanView

from .dialog import Dialog


class OrphansScreen(Dialog[str | None]):
    """Dismisses with "keep", "close", or None (decide later: they stay managed meanwhile)."""

    DEFAULT_CSS = """
    OrphansScreen > Vertical {
        width: 72;
        border: thick $warning;
        padding: 1 2;
    }
    OrphansScreen #question {
        margin-bottom: 1;
    }
    OrphansScreen Horizontal {
        height: auto;
        align: right middle;
    }
    OrphansScreen Button {
        margin-left: 2;
    }
    """

    BINDINGS = [
        Binding("k", "answer('keep')", "Keep managing", id="orphans.keep"),
        Binding("c", "answer('close')", "Close them", id="orphans.close"),
        Binding("escape", "answer(None)", "Later", id="orphans.later"),
    ]

    def __init__(self, orphan: OrphanView, positions: str) -> None:
        super().__init__()
        self.orphan = orphan
        self.positions = positions

    def compose(self) -> ComposeResult:
        o = self.orphan
        with Vertical() as box:
            box.border_title = f"{o.strategy_id}: open positions without a strategy"
            yield Static(
                f"{o.strategy_id} is {o.why}, but it still holds {self.positions}.\n\n"
                "k  keep managing them on their stored stop, target and trailing levels\n"
                "c  close them now at market\n"
                "esc  decide later (they stay managed; S on 3 Positions closes them)",
                id="question", markup=False,
            )
            with Horizontal():
                yield Button("Keep (k)", id="keep", variant="primary")
                yield Button("Close (c)", id="close", variant="error")

    def on_mount(self) -> None:
        self.query_one("#keep", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id)

    def action_answer(self, answer: str | None) -> None:
        self.dismiss(answer)
