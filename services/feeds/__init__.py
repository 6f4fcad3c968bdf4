"""Market-data feeds: every feed pushes Quotes to one callback and reports its health."""
