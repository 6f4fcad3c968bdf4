"""5 Queue: the execution pool, the entries waiting for a slot or a quote and why. The
signal priority queue (promote / remove / force-add) is a later issue; this screen says so
instead of showing anything made up."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from services.views import EngineSnapshot

from .base import EngineScreen, set_subtitle
from .format import DIM, WARN, cell
from .widgets.keyed_table import KeyedTable
from .widgets.live_static import LiveStatic

COLUMNS = [("strategy", "Strategy"), ("symbol", "Symbol"), ("reason", "Waiting because")]
BAR_WIDTH = 20


def pool_text(used: int, total: int) -> Text:
    filled = min(BAR_WIDTH, round(BAR_WIDTH * used / total)) if total else 0
    full = used >= total
    text = Text("Pool  ")
    text.append("█" * filled, style=WARN if full else "green")
    text.append("░" * (BAR_WIDTH - filled), style=DIM)
    text.append(f"  {used}/{total} slots used · {max(total - used, 0)} free", style="bold" if full else "")
    if full:
        text.append("  FULL", style="bold yellow")
    return text


class QueueScreen(EngineScreen):
    NAME = "Queue"
    CSS_PATH = "queue.tcss"

    def compose_body(self) -> ComposeResult:
        yield LiveStatic("", id="pool")
        with Vertical(id="waiting-box") as box:
            box.border_title = "Entries waiting for a slot or a quote"
            yield KeyedTable(COLUMNS, id="waiting")
            yield Static("Nothing is waiting.", id="waiting-empty")
        yield Static(
            "Signal priority queue: not built yet. It arrives with a later issue "
            "(promote / remove / force-add of queued signals will live here).",
            id="signal-queue",
        )

    def render_snapshot(self, snap: EngineSnapshot) -> None:
        self.query_one("#pool", LiveStatic).show(pool_text(snap.pool_used, snap.pool_total))
        self.query_one("#waiting", KeyedTable).sync(
            {f"{w.strategy_id}:{w.symbol}": w for w in snap.waiting},
            lambda w: (cell(w.strategy_id), cell(w.symbol), cell(w.reason)))
        self.query_one("#waiting-empty").display = not snap.waiting
        set_subtitle(self.query_one("#waiting-box"), f"{len(snap.waiting)}")
