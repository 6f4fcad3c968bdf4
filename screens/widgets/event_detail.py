"""One event in full: every field, the whole message and its payload as indented JSON
(scrollable; escape or enter closes)."""

from __future__ import annotations

import json
from typing import Any, Mapping

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from services.views import EventView

from ..format import DIM, LEVEL_STYLE, WARN, utc_datetime
from .dialog import Dialog


def alert_state(e: EventView) -> Text:
    if not e.needs_ack:
        return Text("no", style=DIM)
    if e.acked_at is None:
        return Text("UNREAD (a acknowledges it)", style=f"bold {WARN}")
    return Text(f"acknowledged {utc_datetime(e.acked_at)}")


def fields_table(e: EventView) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(ratio=1, overflow="fold")
    none = Text("—", style=DIM)
    table.add_row("Time", utc_datetime(e.ts))  # one zone, said once
    table.add_row("Level", Text(e.level.upper(), style=LEVEL_STYLE.get(e.level, "")))
    table.add_row("Category", e.category)
    table.add_row("Strategy", e.strategy_id or none)
    table.add_row("Symbol", e.symbol or none)
    table.add_row("Position", f"#{e.group_id}" if e.group_id is not None else none)
    table.add_row("Alert", alert_state(e))
    table.add_row("Message", Text(e.message))
    return table


def payload_text(payload: Mapping[str, Any]) -> Text:
    if not payload:
        return Text("no payload", style=DIM)
    return Text(json.dumps(dict(payload), indent=2, sort_keys=True, ensure_ascii=False, default=str))


class EventDetailScreen(Dialog[None]):
    DEFAULT_CSS = """
    EventDetailScreen > VerticalScroll {
        width: 96;
    }
    EventDetailScreen .section {
        margin-top: 1;
        text-style: bold;
        color: $accent;
    }
    """

    BINDINGS = [
        Binding("escape,enter", "dismiss", "Close", id="event.close"),
    ]

    def __init__(self, event: EventView) -> None:
        super().__init__()
        self.detail = event

    def compose(self) -> ComposeResult:
        e = self.detail
        with VerticalScroll() as scroll:
            scroll.border_title = f"Event #{e.id} · {e.category}"
            scroll.border_subtitle = "esc / enter close"
            yield Static(fields_table(e), id="fields")
            yield Static("Payload", classes="section")
            yield Static(payload_text(e.payload), id="payload")

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()
