"""The feed's health as events: the feed going down and coming back, symbols going stale and
fresh again (a symbol that never had a quote is not called stale)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..market import QuoteBook
from .journal import Journal

if TYPE_CHECKING:
    from ..ports import Feed


class FeedWatch:
    def __init__(self, journal: Journal, feed: Feed, book: QuoteBook) -> None:
        self.journal, self.feed, self.book = journal, feed, book
        self._stale_symbols: frozenset[str] = frozenset()
        self._quoted = 0  # symbols in the book at the last look at their staleness
        self._oldest_fresh = float("inf")  # the oldest fresh quote's ts then: nothing goes stale before it does
        self._feed_down = False

    def tick(self, now: float) -> None:
        """The symbols are looked at only when one can have changed: a symbol is new, a stale
        one is fresh again, or the oldest fresh quote (quotes only get newer) has gone stale."""
        health, event = self.feed.health, self.journal.event
        down = health.last_event_at is not None and not health.is_healthy(now, self.book.max_age_s)
        if down != self._feed_down:
            self._feed_down = down
            if down:
                why = f": {health.error}" if health.error else ""
                event("error", "feed", f"feed {health.name} is down (no data for {self.book.max_age_s:g} s){why}; "
                      "no entries or exits until it is back", needs_ack=True, payload={"feed": health.name})
            else:
                event("info", "feed", f"feed {health.name} is back", payload={"feed": health.name})
        quotes, max_age = self.book.quotes, self.book.max_age_s
        if (now - self._oldest_fresh <= max_age and len(quotes) == self._quoted and not (
                self._stale_symbols and any(now - quotes[sym].ts <= max_age for sym in self._stale_symbols))):
            return
        stale = frozenset(sym for sym, q in quotes.items() if now - q.ts > max_age)
        self._quoted = len(quotes)
        self._oldest_fresh = min((q.ts for sym, q in quotes.items() if sym not in stale), default=float("inf"))
        if stale != self._stale_symbols:
            went, back = sorted(stale - self._stale_symbols), sorted(self._stale_symbols - stale)
            self._stale_symbols = stale
            if went and not down:
                event("warning", "feed", f"{', '.join(went)}: no fresh quote for {self.book.max_age_s:g} s; "
                      "stale prices trigger no entry or exit", payload={"stale": went})
            if back:
                event("info", "feed", f"{', '.join(back)}: fresh quotes again", payload={"fresh": back})
