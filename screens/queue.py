"""5 Queue: the execution pool and the signals waiting for a slot in it (DESIGN §3 pool &
queue), next first, each with how deep the price is through its signal price, how often it
was replaced, how long it has waited and why it has its rank. `enter` promotes the
highlighted signal, `d` removes it and `f` enters it now beyond the pool (both confirmed).
Below, the strategies' own entries that are on hold, and why."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from services.views import EngineSnapshot, QueuedSignalView

from . import commands
from .base import EngineScreen, set_subtitle
from .format import DIM, PROFIT, WARN, cell, countdown, duration, num, pct, px, side_word
from .widgets.keyed_table import FILL, KEY, NAME, KeyedTable
from .widgets.live_static import LiveStatic
from .widgets.ordered_table import OrderedTable

QUEUE_COLUMNS = [
    ("rank", "Rank>", NAME), ("strategy", "Strategy", NAME), ("symbol", "Symbol", NAME), ("timeframe", "TF", 4),
    ("side", "Side", 6), ("signal", "Signal>", 7), ("mark", "Now>", KEY), ("depth", "Depth>", KEY),
    ("reason", "Why this rank", 3), ("replaced", "Repl.>", 2), ("age", "Queued>", 5), ("expires", "Expires", 8),
]
WAITING_COLUMNS = [("strategy", "Strategy", NAME), ("symbol", "Symbol", NAME), ("reason", "Waiting because", FILL)]
BAR_WIDTH = 20
PROMOTED = "▲"
"""Marks a signal the operator promoted, next to its rank."""
EXPIRY_WARNING_S = 60.0
"""A signal this close to expiring shows its expiry in the warning colour."""


def pool_text(used: int, total: int, queued: int) -> Text:
    filled = min(BAR_WIDTH, round(BAR_WIDTH * used / total)) if total else 0
    full = used >= total
    text = Text("Pool  ")
    text.append("█" * filled, style=WARN if full else "green")
    text.append("░" * (BAR_WIDTH - filled), style=DIM)
    text.append(f"  {used}/{total} slots used · {max(total - used, 0)} free", style="bold" if full else "")
    if full:
        text.append("  FULL", style="bold yellow")
    if queued:
        text.append(f" · {queued} signal{'s' if queued != 1 else ''} waiting", style="bold")
    return text


def depth_cell(depth: float | None):
    """Through the signal's price in the trade's favour (green), or short of it."""
    if depth is None:
        return num("—", DIM)
    return num(pct(depth), PROFIT if depth > 0.005 else "")


def queued_cells(v: QueuedSignalView, now: float) -> tuple:
    left = v.expires_at - now
    return (
        num(f"{PROMOTED}{v.rank}" if v.pinned else str(v.rank), "bold cyan" if v.pinned else "bold"),
        cell(v.strategy_id), cell(v.symbol), cell(v.timeframe or "—", "" if v.timeframe else DIM),
        cell(side_word(v.side)), num(px(v.price, v.symbol)), num(px(v.mark, v.symbol)), depth_cell(v.depth_pct),
        cell(v.rank_reason, "bold cyan" if v.pinned else DIM),
        num(str(v.replacements), "" if v.replacements else DIM), num(duration(now - v.queued_at)),
        cell(countdown(v.expires_at, now), WARN if left <= EXPIRY_WARNING_S else ""),
    )


def queued_detail(v: QueuedSignalView, now: float, queued: int) -> str:
    """The highlighted signal in full (what the table may have scrolled out of sight)."""
    tf = f" {v.timeframe}" if v.timeframe else ""
    times = "time" if v.replacements == 1 else "times"
    return (f"Signal #{v.id} {v.strategy_id} {v.symbol}{tf} {side_word(v.side)} · rank {v.rank} of {queued}: "
            f"{v.rank_reason} · signal {px(v.price, v.symbol)} · now {px(v.mark, v.symbol)} · "
            f"depth {pct(v.depth_pct)} · "
            f"replaced {v.replacements} {times} · queued {duration(now - v.queued_at)} ago · "
            f"expires {countdown(v.expires_at, now)}")


def empty_text(ttl_s: float) -> str:
    return ("No signal is queued. Signals that find the pool full wait here, ranked: promoted by the "
            "operator first, then pyramids of open groups, then the deepest through their signal price, "
            "then the most often replaced (a newer signal for the same strategy, symbol and timeframe "
            f"replaces the queued one), then first in. They expire after {duration(ttl_s)} "
            "(engine.queue_ttl_s). Here enter promotes, d removes, f enters beyond the pool.")


class QueueScreen(EngineScreen):
    NAME = "Queue"
    CSS_PATH = "queue.tcss"
    VERTICAL_BREAKPOINTS = [(0, "-short"), (28, "-tall")]  # 80x24: fewer waiting entries shown

    BINDINGS = [
        # priority: enter promotes rather than selecting the table's row (which does nothing here)
        Binding("enter", "promote", "Promote", priority=True,
                tooltip="Put the highlighted signal first in line for the next free slot", id="queue.promote"),
        Binding("d", "remove", "Remove", tooltip="Remove the highlighted signal from the queue (confirm)",
                id="queue.remove"),
        Binding("f", "force_add", "Force-add",
                tooltip="Enter the highlighted signal now, beyond the pool's size (confirm)", id="queue.force_add"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, QueuedSignalView] = {}
        self.now = 0.0

    def compose_body(self) -> ComposeResult:
        yield LiveStatic("", id="pool")
        with Vertical(id="queue-box") as box:
            box.border_title = "Signal queue: the next to get a slot first"
            yield OrderedTable(QUEUE_COLUMNS, id="queue")
            yield Static(empty_text(self.engine.config.engine.queue_ttl_s), id="queue-empty", markup=False)
        yield LiveStatic("", id="detail", markup=False)
        with Vertical(id="waiting-box") as box:
            box.border_title = "Strategy entries on hold, and why"
            yield KeyedTable(WAITING_COLUMNS, id="waiting")
            yield Static("Nothing is on hold.", id="waiting-empty")

    @property
    def table(self) -> OrderedTable:
        return self.query_one("#queue", OrderedTable)

    def render_snapshot(self, snap: EngineSnapshot) -> None:
        # Time in queue and expiry count against the snapshot's time: the app renders at least
        # once a second, so they tick.
        self.now = snap.ts
        self.query_one("#pool", LiveStatic).show(pool_text(snap.pool_used, snap.pool_total, len(snap.queue)))
        self.rows = {str(v.id): v for v in snap.queue}
        table = self.table
        table.sync(self.rows, lambda v: queued_cells(v, snap.ts))
        if table.display != bool(self.rows):
            table.display = bool(self.rows)
            self.query_one("#queue-empty").display = not self.rows
            if self.rows:
                table.focus()  # signals arrived: the keys act on them
        set_subtitle(self.query_one("#queue-box"), f"{len(self.rows)}")
        self._show_detail()
        self._show_waiting(snap)

    def _show_waiting(self, snap: EngineSnapshot) -> None:
        waiting = self.query_one("#waiting", KeyedTable)
        waiting.sync({f"{w.strategy_id}:{w.symbol}": w for w in snap.waiting},
                     lambda w: (cell(w.strategy_id), cell(w.symbol), cell(w.reason)))
        if waiting.display != bool(snap.waiting):
            waiting.display = bool(snap.waiting)
            self.query_one("#waiting-empty").display = not snap.waiting
        # As tall as its rows (the CSS caps it): a DataTable's auto height would only follow
        # its rows on a later layout.
        height = len(snap.waiting) + 1
        if waiting.styles.height is None or waiting.styles.height.value != height:
            waiting.styles.height = height
        set_subtitle(self.query_one("#waiting-box"), f"{len(snap.waiting)}")

    def _show_detail(self) -> None:
        detail = self.query_one("#detail", LiveStatic)
        v = self.selected
        if v is not None:
            detail.show(queued_detail(v, self.now, len(self.rows)))
        if detail.display != (v is not None):
            detail.display = v is not None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table is self.table:
            self._show_detail()

    @property
    def selected(self) -> QueuedSignalView | None:
        key = self.table.selected_key
        return self.rows.get(key) if key is not None else None

    def _require(self) -> QueuedSignalView | None:
        v = self.selected
        if v is None:
            self.notify("No queued signal highlighted", severity="warning")
        return v

    def action_promote(self) -> None:
        if (v := self._require()) is not None:
            commands.promote_signal(self.app, v)

    def action_remove(self) -> None:
        if (v := self._require()) is not None:
            commands.remove_signal(self.app, v)

    def action_force_add(self) -> None:
        if (v := self._require()) is not None:
            commands.force_add_signal(self.app, v)
