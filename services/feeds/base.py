"""The feed interface. A WebSocket feed with a REST-polling fallback implements the same
four members: start(on_quote), stop(), symbols, health."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from ..market import Quote

QuoteHandler = Callable[[Quote], None]


@dataclass(slots=True)
class FeedHealth:
    """Updated by the feed; read by the engine for the status bar and the stale rule."""

    name: str
    connected: bool = False
    last_event_at: float | None = None
    error: str = ""

    def is_healthy(self, now: float, max_age_s: float) -> bool:
        return self.connected and self.last_event_at is not None and now - self.last_event_at <= max_age_s


class Feed(Protocol):
    health: FeedHealth
    symbols: tuple[str, ...]

    async def start(self, on_quote: QuoteHandler) -> None:
        """Begin delivering quotes to on_quote on the running loop; returns once started."""

    async def stop(self) -> None:
        """Stop delivering quotes and release connections."""
