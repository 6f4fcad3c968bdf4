"""The queue of entry signals that found no free slot in the execution pool (DESIGN §3 pool
& queue). Pure bookkeeping: the engine adds to it, asks it for the next signal when a slot
frees (in the order of services.rules.queue_rank), and persists its records.

A newer signal for the same strategy, symbol and timeframe replaces the queued one (its price
and time) and increments its count; it keeps its place in the FIFO order. Queued signals
expire after `queue_ttl_s`."""

from __future__ import annotations

from typing import Any, Callable

from .domain import QueuedStatus, Record
from .rules.queue_rank import Standing, depth_pct, rank_key, rank_reasons
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
        self.status = QueuedStatus.QUEUED
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

    def standing(self, mark: float | None) -> Standing:
        """The signal as the ranking sees it, with the symbol's current price."""
        return Standing(self.id, self.pinned, self.pyramid, depth_pct(self.side, self.price, mark), self.replacements,
                        self.queued_at, bool(self.price))


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

    def close(self, q: QueuedSignal, status: QueuedStatus, outcome: str, now: float) -> None:
        q.status, q.outcome, q.updated_at = status, outcome, now
        self.items.pop(q.id, None)

    def expired(self, now: float) -> list[QueuedSignal]:
        return [q for q in self.items.values() if now >= q.expires_at]

    def ranked(self, mark: Callable[[str], float | None]) -> list[tuple[QueuedSignal, Standing]]:
        """Every queued signal with its standing (its depth %), next first."""
        standings = [(q, q.standing(mark(q.symbol))) for q in self.items.values()]
        return sorted(standings, key=lambda item: rank_key(item[1]))

    def views(self, mark: Callable[[str], float | None]) -> tuple[QueuedSignalView, ...]:
        ranked = self.ranked(mark)
        reasons = rank_reasons([s for _, s in ranked])
        return tuple(QueuedSignalView(
            q.id, q.strategy_id, q.symbol, q.timeframe, q.side, q.price, mark(q.symbol), s.depth, q.replacements,
            q.queued_at, q.expires_at, i, reason, q.pinned, q.pyramid)
            for i, ((q, s), reason) in enumerate(zip(ranked, reasons), 1))
