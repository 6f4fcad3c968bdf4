"""2 Entry: the entry orders and every attempt (limit, re-prices, market fallback), and the
exit orders below them, with fill price and slippage against the reference price."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical

from services.views import EngineSnapshot, OrderView

from .base import EngineScreen, set_subtitle
from .format import DIM, LOSS, PROFIT, STATUS_STYLE, cell, hms, num, px, qty
from .widgets.keyed_table import KeyedTable

COLUMNS = [
    ("time", "Time"), ("group", "#>"), ("strategy", "Strategy"), ("symbol", "Symbol"), ("side", "Side"),
    ("qty", "Qty>"), ("type", "Type"), ("method", "Method"), ("attempt", "Try>"), ("ref", "Ref>"),
    ("limit", "Limit>"), ("fill", "Fill>"), ("slip", "Slip>"), ("status", "Status"), ("reason", "Reason"),
]


def slippage_bps(o: OrderView) -> float | None:
    """Fill against the reference price, in basis points; positive = worse for us."""
    if o.avg_fill_price is None or not o.reference_price:
        return None
    adverse = (o.avg_fill_price - o.reference_price) * (1 if o.side == "buy" else -1)
    return adverse / o.reference_price * 10_000.0


def order_cells(o: OrderView) -> tuple:
    slip = slippage_bps(o)
    slip_cell = num("—", DIM) if slip is None else num(
        f"{slip:+.1f}bp", LOSS if slip > 0.05 else PROFIT if slip < -0.05 else "")
    return (
        cell(hms(o.created_at)), num(str(o.group_id)), cell(o.strategy_id), cell(o.symbol), cell(o.side),
        num(qty(o.qty)), cell(o.order_type), cell(o.method), num(str(o.retry_count + 1)),
        num(px(o.reference_price)), num(px(o.limit_price)), num(px(o.avg_fill_price)), slip_cell,
        cell(o.status, STATUS_STYLE.get(o.status, "")), cell(o.reason, DIM),
    )


class EntryScreen(EngineScreen):
    NAME = "Entry"
    CSS_PATH = "entry.tcss"

    def compose_body(self) -> ComposeResult:
        with Vertical(id="entries-box") as box:
            box.border_title = "Entry orders"
            yield KeyedTable(COLUMNS, id="entries", follow=True)
        with Vertical(id="exits-box") as box:
            box.border_title = "Exit orders"
            yield KeyedTable(COLUMNS, id="exit-orders", follow=True)

    def render_snapshot(self, snap: EngineSnapshot) -> None:
        entries = {str(o.id): o for o in snap.orders if o.purpose == "entry"}
        exits = {str(o.id): o for o in snap.orders if o.purpose != "entry"}
        self.query_one("#entries", KeyedTable).sync(entries, order_cells)
        self.query_one("#exit-orders", KeyedTable).sync(exits, order_cells)
        set_subtitle(self.query_one("#entries-box"), f"{len(entries)}")
        set_subtitle(self.query_one("#exits-box"), f"{len(exits)}")
