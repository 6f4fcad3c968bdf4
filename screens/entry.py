"""2 Entry: current and recent entries as timelines. Each entry (position group) lists its
attempts in order: the limit, each re-price, the market fallback, with time, price (the
limit, or the fill), reference, result and reason. The attempt that filled says how the
entry was filled ("limit", "limit after 2 re-prices", "market fallback") and the slippage
against the reference price, in price and basis points (positive: worse for us). Re-priced
attempts are in the warning colour, a market fallback in the error colour. The selected
entry is told in full below, with the instrument's precision. Exit orders below that."""

from __future__ import annotations

from typing import Any, NamedTuple

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable

from services.orders import FINAL, OrderPurpose, OrderStatus
from services.views import EngineSnapshot, OrderView

from .base import EngineScreen, set_subtitle
from .format import DIM, LOSS, PROFIT, STATUS_STYLE, WARN, cell, hms, num, px, qty, side_word, signed_px
from .widgets.keyed_table import KEY, NAME, KeyedTable
from .widgets.live_static import LiveStatic

COLUMNS = [
    ("time", "Time", NAME), ("group", "#>", NAME), ("strategy", "Strategy", NAME), ("symbol", "Symbol", NAME),
    ("attempt", "Attempt", 9), ("price", "Price>", KEY), ("result", "Result", KEY), ("slip", "Slip>", 8),
    ("bp", "bp>", 7), ("ref", "Ref>", 6), ("side", "Side", 5), ("qty", "Qty>", 4), ("reason", "Reason", 3),
]

EXIT_COLUMNS = [
    ("time", "Time", NAME), ("group", "#>", NAME), ("strategy", "Strategy", NAME), ("symbol", "Symbol", NAME),
    ("side", "Side", 6), ("qty", "Qty>", 5), ("type", "Type", 3), ("method", "Method", 2), ("attempt", "Try>", 1),
    ("ref", "Ref>", 4), ("limit", "Limit>", 7), ("fill", "Fill>", KEY), ("slip", "Slip>", 8),
    ("status", "Status", KEY), ("reason", "Reason", 0),
]

FALLBACK_METHODS = ("market_fallback",)


def slippage(o: OrderView) -> float | None:
    """Fill minus reference, signed against the trader: positive = paid more (a buy) or
    received less (a sell) than the reference price."""
    if o.avg_fill_price is None or not o.reference_price:
        return None
    return (o.avg_fill_price - o.reference_price) * (1 if o.side == "buy" else -1)


def slippage_bps(o: OrderView) -> float | None:
    """Fill against the reference price, in basis points; positive = worse for us."""
    adverse = slippage(o)
    return None if adverse is None else adverse / o.reference_price * 10_000.0


def attempt_word(o: OrderView) -> str:
    """What this attempt was: "limit", "re-price 2", "market fallback", "market"."""
    if o.method == "limit_retry":
        return f"re-price {o.retry_count}"
    if o.method == "market_fallback":
        return "market fallback"
    return o.order_type if o.method in ("limit", "market") else o.method


def filled_by(o: OrderView) -> str:
    """How an entry was filled, worded for the operator."""
    if o.method == "limit_retry":
        n = o.retry_count
        return f"limit after {n} re-price{'s' if n != 1 else ''}"
    if o.method == "market_fallback":
        return "market fallback"
    return o.method


class Attempt(NamedTuple):
    """One row of the timeline: an entry order, whether it opens its entry's rows (and its
    leg's: a basket enters its symbols one after the other), and whether it is the last
    attempt of a leg that failed."""

    order: OrderView
    first: bool
    leg_first: bool = True
    failed: bool = False


def attempt_reason(o: OrderView) -> str:
    """Why an attempt did not fill (the engine says what came next: a re-price, the market
    fallback, or the end of the entry)."""
    return o.reason if o.status in (OrderStatus.CANCELLED, OrderStatus.REJECTED) else ""


class Styles(NamedTuple):
    reprice: str
    fallback: str


def attempt_style(o: OrderView, styles: Styles) -> str:
    if o.method in FALLBACK_METHODS:
        return styles.fallback
    if o.retry_count >= 1:
        return styles.reprice
    return ""


def attempt_cells(a: Attempt, styles: Styles) -> tuple:
    o = a.order
    style = attempt_style(o, styles)
    filled = o.status == OrderStatus.FILLED
    word = filled_by(o) if filled else attempt_word(o)
    price = o.avg_fill_price if filled and o.avg_fill_price is not None else o.limit_price
    adverse, bps = slippage(o), slippage_bps(o)
    if bps is None:
        slip_cell, bp_cell = num("", DIM), num("", DIM)
    else:
        slip_style = LOSS if bps > 0.05 else PROFIT if bps < -0.05 else ""
        slip_cell, bp_cell = num(signed_px(adverse), slip_style), num(f"{bps:+.1f}bp", slip_style)
    lead, leg = a.first, a.leg_first
    result = o.status if o.status != OrderStatus.NEW else "sent"
    return (
        cell(hms(o.created_at)), num(str(o.group_id), "" if lead else DIM),
        cell(o.strategy_id if lead else ""), cell(o.symbol if leg else ""),
        cell(word if leg else f"↳ {word}", style),
        num(px(price, o.symbol) if price is not None else "market", style if price is not None else DIM),
        cell(result, STATUS_STYLE.get(o.status, "")), slip_cell, bp_cell,
        num(px(o.reference_price, o.symbol), "" if leg else DIM), cell(side_word(o.side) if leg else ""),
        num(qty(o.qty) if leg else ""), cell(attempt_reason(o), LOSS if a.failed else DIM),
    )


def exit_cells(o: OrderView) -> tuple:
    bps = slippage_bps(o)
    slip_cell = num("—", DIM) if bps is None else num(
        f"{bps:+.1f}bp", LOSS if bps > 0.05 else PROFIT if bps < -0.05 else "")
    return (
        cell(hms(o.created_at)), num(str(o.group_id)), cell(o.strategy_id), cell(o.symbol), cell(o.side),
        num(qty(o.qty)), cell(o.order_type), cell(o.method), num(str(o.retry_count + 1)),
        num(px(o.reference_price, o.symbol)), num(px(o.limit_price, o.symbol)), num(px(o.avg_fill_price, o.symbol)),
        slip_cell,
        cell(o.status, STATUS_STYLE.get(o.status, "")), cell(o.reason, DIM),
    )


def legs_of(attempts: list[OrderView]) -> dict[str, list[OrderView]]:
    """An entry's attempts leg by leg (by symbol, in the order the legs were entered)."""
    legs: dict[str, list[OrderView]] = {}
    for o in attempts:
        legs.setdefault(o.symbol, []).append(o)
    return legs


def leg_state(attempts: list[OrderView]) -> str:
    """filled / working / failed / rejected for one leg's attempts (in order)."""
    if any(o.status == OrderStatus.FILLED for o in attempts):
        return "filled"
    last = attempts[-1]
    if last.status not in FINAL:  # new, working, partly filled, cancel requested
        return "working"
    return "rejected" if last.status == OrderStatus.REJECTED else "failed"


def entry_state(attempts: list[OrderView], legs_expected: int = 1) -> str:
    """working / filled / failed / rejected for an entry; "incomplete" for a basket that
    stopped with legs not entered (it is unwound: see the Logs)."""
    states = [leg_state(leg) for leg in legs_of(attempts).values()]
    if "working" in states:
        return "working"
    if "rejected" in states:
        return "rejected"
    if "failed" in states:
        return "failed"
    return "filled" if len(states) >= legs_expected else "incomplete"


def leg_detail(attempts: list[OrderView], symbol_config: Any = None) -> list[str]:
    """One leg in full: its instrument, reference, every attempt's price and the outcome
    with slippage."""
    first, last = attempts[0], attempts[-1]
    parts = [f"{side_word(first.side)} {qty(first.qty)} {first.symbol}"]
    if symbol_config is not None:
        tick = getattr(symbol_config, "tick_size", None)
        lot = getattr(symbol_config, "lot_step", None)
        min_notional = getattr(symbol_config, "min_notional", 0.0) or 0.0
        parts.append(f"{first.symbol}: tick {_step(tick)}, lot {_step(lot)}, min notional {min_notional:,.2f}")
    parts.append(f"reference {px(first.reference_price, first.symbol)}")
    prices = " → ".join(px(o.limit_price, o.symbol) if o.limit_price is not None else "market" for o in attempts)
    parts.append(f"{len(attempts)} attempt{'s' if len(attempts) != 1 else ''}: {prices}")
    state = leg_state(attempts)
    if state == "filled":
        filled = next(o for o in attempts if o.status == OrderStatus.FILLED)
        outcome = f"filled at {px(filled.avg_fill_price, filled.symbol)} by {filled_by(filled)}"
        bps = slippage_bps(filled)
        if bps is not None:
            outcome += f", slippage {signed_px(slippage(filled))} ({bps:+.1f}bp)"
        if filled.avg_fill_price is not None:
            outcome += f", value {filled.avg_fill_price * filled.qty:,.2f}"
        parts.append(outcome)
    elif state == "working":
        at = f" at {px(last.limit_price, last.symbol)}" if last.limit_price is not None else ""
        parts.append(f"working: {attempt_word(last)}{at} since {hms(last.created_at)}")
    else:
        parts.append(f"{state}: {attempt_reason(last) or 'no fill'}")
    return parts


def entry_detail(attempts: list[OrderView], symbols: Any = None, legs_expected: int = 1) -> str:
    """The selected entry in full, leg by leg (`symbols`: the instruments' settings by symbol)."""
    first = attempts[0]
    legs = legs_of(attempts)
    symbols = symbols or {}
    if len(legs) == 1 and legs_expected <= 1:
        return f"#{first.group_id} {first.strategy_id}: " + " · ".join(leg_detail(attempts, symbols.get(first.symbol)))
    state = entry_state(attempts, legs_expected)
    head = (f"#{first.group_id} {first.strategy_id}: basket, {state}, "
            f"{sum(leg_state(a) == 'filled' for a in legs.values())} of {max(legs_expected, len(legs))} legs in")
    return " | ".join([head] + [f"leg {i}: " + " · ".join(leg_detail(a, symbols.get(sym)))
                                for i, (sym, a) in enumerate(legs.items(), 1)])


def _step(v: float | None) -> str:
    """A tick size or lot step as written: 0.00001, not 1e-05."""
    return "none" if v is None else f"{v:.10f}".rstrip("0").rstrip(".")


def _attempt_order(key: str, a: Attempt) -> tuple[int, int]:
    """Entry by entry (oldest first), each entry's attempts in the order they were sent."""
    return a.order.group_id, a.order.id


class EntryScreen(EngineScreen):
    NAME = "Entry"
    CSS_PATH = "entry.tcss"

    def __init__(self) -> None:
        super().__init__()
        self.groups: dict[int, list[OrderView]] = {}
        self.attempts: dict[str, Attempt] = {}
        self._attempt_styles_theme: Any = None
        self._attempt_styles = Styles(WARN, f"bold {LOSS}")

    def compose_body(self) -> ComposeResult:
        with Vertical(id="entries-box") as box:
            box.border_title = "Entries: every attempt"
            yield KeyedTable(COLUMNS, id="entries", follow=True, sort_key=_attempt_order)
            yield LiveStatic("", id="entry-detail", markup=False)
        with Vertical(id="exits-box") as box:
            box.border_title = "Exit orders"
            yield KeyedTable(EXIT_COLUMNS, id="exit-orders", follow=True)

    def render_snapshot(self, snap: EngineSnapshot) -> None:
        entries = sorted((o for o in snap.orders if o.purpose == OrderPurpose.ENTRY), key=lambda o: (o.group_id, o.id))
        groups: dict[int, list[OrderView]] = {}
        for o in entries:
            groups.setdefault(o.group_id, []).append(o)
        self.groups = groups
        attempts: dict[str, Attempt] = {}
        working = 0
        for group in groups.values():
            states = []
            for leg in legs_of(group).values():
                state = leg_state(leg)
                states.append(state)
                for o in leg:
                    attempts[str(o.id)] = Attempt(o, o is group[0], o is leg[0],
                                                  state in ("failed", "rejected") and o is leg[-1])
            working += "working" in states
        self.attempts = attempts
        styles = self._styles()
        self.query_one("#entries", KeyedTable).sync(attempts, lambda a: attempt_cells(a, styles))
        exits = {str(o.id): o for o in snap.orders if o.purpose != OrderPurpose.ENTRY}
        self.query_one("#exit-orders", KeyedTable).sync(exits, exit_cells)
        n = len(groups)
        set_subtitle(self.query_one("#entries-box"), f"{n} entr{'y' if n == 1 else 'ies'} · {working} working")
        set_subtitle(self.query_one("#exits-box"), f"{len(exits)}")
        self._show_detail()

    def _styles(self) -> Styles:
        """Re-prices in the theme's warning colour, a market fallback in its error colour."""
        theme = self.app.current_theme
        if self._attempt_styles_theme is not theme:
            self._attempt_styles_theme = theme
            self._attempt_styles = Styles(theme.warning or WARN, f"bold {theme.error or LOSS}")
        return self._attempt_styles

    @property
    def selected(self) -> list[OrderView] | None:
        """The attempts of the entry under the cursor."""
        key = self.query_one("#entries", KeyedTable).selected_key
        a = self.attempts.get(key) if key is not None else None
        return self.groups.get(a.order.group_id) if a is not None else None

    def _show_detail(self) -> None:
        attempts = self.selected
        if attempts is None:
            text = "No entry yet: entries and each of their attempts appear here as they are sent."
        else:
            config = self.engine.config
            strategy = config.strategies.get(attempts[0].strategy_id)
            legs = len(strategy.symbols) if getattr(strategy, "basket", False) else 1
            text = entry_detail(attempts, config.symbols, legs)
        self.query_one("#entry-detail", LiveStatic).show(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "entries":
            self._show_detail()
