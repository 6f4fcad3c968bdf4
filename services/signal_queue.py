"""The queue of entry signals that found no free slot in the execution pool (DESIGN §3 pool
& queue). Pure bookkeeping: the engine adds to it, asks it for the next signal when a slot
frees, and persists its records.

Order when a slot frees: (0) a signal the operator promoted, (1) a pyramid continuation of
an active group, (2) the deepest loss %: how far the current price is through the signal's
price in the trade's favour (a buy signal at 100 with the price now at 98 is 2 % deep), (3)
the highest replacement count, (4) first in. A newer signal for the same strategy, symbol
and timeframe replaces the queued one (its price and time) and increments its count; it
keeps its place in the FIFO order. Queued signals expire after `queue_ttl_s`."""

from __future__ import annotations

from typing import Any, Callable

from .domain import Record
from .views import QueuedSignalView


class QueuedSignal(Record):
    __slots__ = ("signal_id", "strategy_id", "symbol", "timeframe", "side", "price", "queued_at", "updated_at",
                 "expires_at", "replacements", "pinned", "pyramid", "status", "outcome", "size")
    KIND = "queued_signal"

    def __init__(self, id: int, signal_id: int, strategy_id: str, symbol: str, timeframe: str, side: str,
                 price: float | None, now: float, ttl_s: float, pyramid: bool = False) -> None:
        self.id, self.saved = id, False
        self.signal_id, self.strategy_id, self.symbol, self.timeframe = signal_id, strategy_id, symbol, timeframe
        self.side, self.price, self.pyramid = side, price, pyramid
        self.queued_at = self.updated_at = now
        self.expires_at = now + ttl_s
        self.replacements = 0
        self.pinned = False  # promoted by the operator: first in line
        self.status = "queued"  # -> entered | rejected | expired | removed
        self.outcome = ""
        self.size: float | None = None  # the signal's quantity, instead of the strategy's sizing

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in (
            "id", "signal_id", "strategy_id", "symbol", "timeframe", "side", "price", "queued_at", "updated_at",
            "expires_at", "replacements", "pinned", "pyramid", "status", "outcome", "size")}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> QueuedSignal:
        q = cls(row["id"], row["signal_id"], row["strategy_id"], row["symbol"], row["timeframe"], row["side"],
                row["price"], row["queued_at"], 0.0, bool(row["pyramid"]))
        q.saved = True
        for name in ("updated_at", "expires_at", "replacements", "status", "outcome", "size"):
            setattr(q, name, row[name])
        q.pinned = bool(row["pinned"])
        return q

    def depth_pct(self, mark: float | None) -> float | None:
        """How far `mark` is through the signal's price in the trade's favour, in %."""
        if mark is None or not self.price:
            return None
        d = 1 if self.side == "buy" else -1
        return (self.price - mark) * d / self.price * 100.0


def _rank_key(q: QueuedSignal, depth: float | None) -> tuple:
    return (not q.pinned, not q.pyramid, -(depth if depth is not None else float("-inf")), -q.replacements,
            q.queued_at, q.id)


def _rank_reason(q: QueuedSignal, depth: float | None, other: QueuedSignal | None, other_depth: float | None,
                 last: bool) -> str:
    """What places this signal ahead of the next one (`other`); for the last one, what keeps
    it behind the one ahead when they tie on depth."""
    if q.pinned:
        return "promoted by the operator"
    if q.pyramid:
        return "pyramid of an open group"
    tied = other is not None and not (other.pinned or other.pyramid) and depth == other_depth
    if not tied:
        if depth is None:
            return "no current price to compare" if q.price else "no signal price to compare"
        return f"{depth:+.2f}% through its price"
    if q.replacements != other.replacements:
        return f"{'fewer' if last else 'more'} replacements ({q.replacements})"
    return "later in" if last else "first in"


class SignalQueue:
    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self.items: dict[int, QueuedSignal] = {}  # queued only

    def __len__(self) -> int:
        return len(self.items)

    def find(self, strategy_id: str, symbol: str, timeframe: str) -> QueuedSignal | None:
        return next((q for q in self.items.values()
                     if (q.strategy_id, q.symbol, q.timeframe) == (strategy_id, symbol, timeframe)), None)

    def add(self, q: QueuedSignal) -> None:
        self.items[q.id] = q

    def replace(self, q: QueuedSignal, signal_id: int, side: str, price: float | None, size: float | None,
                now: float) -> None:
        """A newer signal for the same strategy, symbol and timeframe takes this one's place."""
        q.signal_id, q.side, q.price, q.size = signal_id, side, price, size
        q.replacements += 1
        q.updated_at = now
        q.expires_at = now + self.ttl_s

    def close(self, q: QueuedSignal, status: str, outcome: str, now: float) -> None:
        q.status, q.outcome, q.updated_at = status, outcome, now
        self.items.pop(q.id, None)

    def expired(self, now: float) -> list[QueuedSignal]:
        return [q for q in self.items.values() if now >= q.expires_at]

    def ranked(self, mark: Callable[[str], float | None]) -> list[tuple[QueuedSignal, float | None]]:
        """Every queued signal with its depth %, next first."""
        with_depth = [(q, q.depth_pct(mark(q.symbol))) for q in self.items.values()]
        return sorted(with_depth, key=lambda item: _rank_key(*item))

    def views(self, mark: Callable[[str], float | None]) -> tuple[QueuedSignalView, ...]:
        ranked = self.ranked(mark)
        out = []
        for i, (q, depth) in enumerate(ranked):
            last = i == len(ranked) - 1
            other, other_depth = ranked[i - 1] if last and i else ranked[i + 1] if not last else (None, None)
            out.append(QueuedSignalView(
                q.id, q.strategy_id, q.symbol, q.timeframe, q.side, q.price, mark(q.symbol), depth, q.replacements,
                q.queued_at, q.expires_at, i + 1, _rank_reason(q, depth, other, other_depth, last), q.pinned, q.pyramid))
        return tuple(out)
