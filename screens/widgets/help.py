"""The key reference (? or F1): the global keys and those of the screen it was opened from."""

from __future__ import annotations

from typing import Iterable

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from .dialog import Dialog

KEY_NAMES = {"question_mark": "?", "escape": "esc", "full_stop": ".", "slash": "/", "space": "space"}


def key_label(keys: str) -> str:
    out = []
    for key in keys.split(","):
        key = key.strip()
        key = KEY_NAMES.get(key, key)
        out.append(key.replace("ctrl+", "^"))
    return " / ".join(out)


class HelpScreen(Dialog[None]):
    DEFAULT_CSS = """
    HelpScreen > VerticalScroll {
        width: 90;
    }
    """

    BINDINGS = [
        Binding("escape,q,question_mark,f1", "dismiss", "Close", id="help.close"),
    ]

    def __init__(self, sections: Iterable[tuple[str, Iterable[Binding]]], where: str = "") -> None:
        super().__init__()
        self.sections = [(title, list(bindings)) for title, bindings in sections]
        self.where = where
        """Which settings file, data directory and log file are in use."""

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(justify="right", style="bold", no_wrap=True)
        table.add_column()
        for title, bindings in self.sections:
            if not bindings:
                continue
            table.add_row("", Text(title, style="bold underline"))
            for binding in bindings:
                what = Text(binding.description, style="bold")
                if binding.tooltip:
                    what.append(f"  {binding.tooltip}", style="dim")
                table.add_row(key_label(binding.key), what)
            table.add_row("", "")
        if self.where:
            table.add_row("", Text(self.where, style="dim"))
        table.add_row("", Text("esc / ? closes this help", style="dim"))
        with VerticalScroll() as scroll:
            scroll.border_title = "Keys"
            yield Static(table)
