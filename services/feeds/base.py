"""The feed port lives in services.ports (Feed, FeedHealth, QuoteHandler); these names stay
importable from here for the feeds' existing importers."""

from ..ports import FeedHealth, QuoteHandler

__all__ = ["FeedHealth", "QuoteHandler"]
