"""The categories of the engine's events: the one list the engine raises events in and the
Logs screen, `tui-trader logs` and the alert flashes filter by. A category is stored as its
text (strategy_events.category), so a StrEnum member compares equal to the stored string.

tests/test_event_categories.py fails on a category raised anywhere in services/ that is not
listed here."""

from __future__ import annotations

from enum import StrEnum


class EventCategory(StrEnum):
    ALERTS = "alerts"
    """The on_alert command hook: a command that failed, timed out or was skipped."""
    DCA = "dca"
    """A DCA grid or pyramid: its layer orders placed, every layer filled."""
    ENGINE = "engine"
    """The engine itself: stopped (cleanly or by force), a new trading session, an internal error
    caught, a symbol quarantined."""
    ENTRY = "entry"
    """An entry under way: started, held, not filled, failed."""
    EXIT = "exit"
    """An exit triggered, and a position (or part of it) closed."""
    FEED = "feed"
    """Market data: the feed down or back, symbols whose quotes went stale or are fresh again."""
    FILL = "fill"
    """An entry filled: the position is open, with its levels."""
    LEVELS = "levels"
    """A position's stop, target, trailing stop or time exit edited."""
    LIFECYCLE = "lifecycle"
    """Entries paused or resumed (a strategy's or the whole book's); positions of a strategy no
    longer in the settings kept."""
    OPERATOR = "operator"
    """What the operator did that has no category of its own: alerts acknowledged, risk holds."""
    ORDER = "order"
    """An order the broker rejected."""
    QUEUE = "queue"
    """The entry queue: a signal queued while the pool is full, closed (entered, rejected,
    expired), promoted by the operator."""
    RECOVERY = "recovery"
    """A restart: positions and orders taken back from the database, and what was done with them."""
    RISK = "risk"
    """The P&L rules and the risk engine: a rule reached, entries allowed again, a risk plan."""
    SIGNAL = "signal"
    """A signal from another process (the signal inbox) rejected or expired."""
    STORE = "store"
    """The database: event retention (old events deleted, or deleting them failed)."""
    TRAILING = "trailing"
    """A trailing stop armed (at entry, or when the profit reaches its activation)."""


CATEGORIES: tuple[str, ...] = tuple(c.value for c in EventCategory)
"""Every category's text, in the order above (alphabetical)."""
