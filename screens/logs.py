"""6 Logs: the engine's event stream (not the log file), coloured by level, newest at the
bottom; it follows new events unless the operator has scrolled up."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import RichLog

from services.views import EngineSnapshot, EventView

from .base import EngineScreen
from .format import DIM, LEVEL_STYLE, hms

MAX_LINES = 2000


def event_line(e: EventView) -> Table:
    """One event; a long message wraps under itself, not under the time."""
    style = LEVEL_STYLE.get(e.level, "")
    message = Text(e.message, style=style if e.level != "critical" else "bold red")
    if e.needs_ack:
        message.append("  [alert]", style="bold yellow")
    row = Table.grid(padding=(0, 1), expand=True)
    row.add_column(no_wrap=True)
    row.add_column(no_wrap=True, width=8)
    row.add_column(no_wrap=True, width=9)
    row.add_column(ratio=1)
    row.add_row(Text(hms(e.ts), style=DIM), Text(e.level.upper(), style=style or DIM), Text(e.category, style="cyan"),
                message)
    return row


class LogsScreen(EngineScreen):
    NAME = "Logs"
    CSS_PATH = "logs.tcss"

    BINDINGS = [
        Binding("end", "follow", "Follow", tooltip="Jump to the newest event and follow", id="logs.follow"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.last_event_id = 0

    def compose_body(self) -> ComposeResult:
        yield RichLog(id="events", wrap=True, markup=False, highlight=False, max_lines=MAX_LINES, auto_scroll=False)

    def render_snapshot(self, snap: EngineSnapshot) -> None:
        log = self.query_one("#events", RichLog)
        new = [e for e in snap.events if e.id > self.last_event_id]
        if not new:
            return
        follow = log.is_vertical_scroll_end or log.max_scroll_y == 0
        for e in new:
            log.write(event_line(e), expand=True, scroll_end=follow)
        self.last_event_id = new[-1].id

    def action_follow(self) -> None:
        self.query_one("#events", RichLog).scroll_end(animate=False)
