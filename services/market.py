"""Quotes, the quote book and the staleness rule, and the reference price for limit entries."""

from __future__ import annotations

from typing import NamedTuple


class Quote(NamedTuple):
    """One top-of-book update. A NamedTuple: immutable and cheap on the replay hot path."""

    symbol: str
    ts: float
    bid: float
    ask: float
    last: float = 0.0
    bid_size: float = 0.0
    ask_size: float = 0.0

    @property
    def mark(self) -> float:
        return mark_of(self)


def mark_of(q: Quote) -> float:
    """The mid when both sides exist, else last (or whichever side exists)."""
    bid, ask = q.bid, q.ask
    if bid > 0 and ask > 0:
        return (bid + ask) * 0.5
    return q.last or bid or ask


def fill_price_from_quotes(side: str, bid: float, ask: float, bias: float = 0.0) -> float:
    """Reference price for a limit order. bias = 0 is the mid; a positive bias concedes
    toward the touch: a sell at bid + (0.5 - bias) * spread, a buy at ask - (0.5 - bias) * spread.
    A missing side (<= 0) falls back to the other side."""
    if not 0.0 <= bias <= 0.5:
        raise ValueError(f"bias must be within [0, 0.5], got {bias}")
    if bid <= 0 and ask <= 0:
        raise ValueError("no price on either side")
    if bid <= 0:
        return ask
    if ask <= 0:
        return bid
    spread = ask - bid
    if side == "sell":
        return bid + (0.5 - bias) * spread
    return ask - (0.5 - bias) * spread


class QuoteBook:
    """Latest quote per symbol and the stale rule."""

    def __init__(self, max_age_s: float) -> None:
        self.max_age_s = max_age_s
        self.quotes: dict[str, Quote] = {}

    def update(self, q: Quote) -> None:
        self.quotes[q.symbol] = q

    def get(self, symbol: str) -> Quote | None:
        return self.quotes.get(symbol)

    def fresh(self, symbol: str, now: float) -> Quote | None:
        """The latest quote if it is not stale, else None."""
        q = self.quotes.get(symbol)
        if q is None or now - q.ts > self.max_age_s:
            return None
        return q

    def is_stale(self, symbol: str, now: float) -> bool:
        return self.fresh(symbol, now) is None
