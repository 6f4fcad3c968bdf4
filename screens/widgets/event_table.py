"""The Logs screen's event table: events oldest first, keyed by id, that tails new events
while `following` and stops the moment the operator moves up.

Following is decided here, synchronously, on the operator's own keys (up, page up, home,
the mouse wheel): a render that lands between the key and its RowHighlighted message must
not pull the cursor back down. Reaching the top row by those keys posts `ReachedTop`, so
the screen can page older events in from the database."""

from __future__ import annotations

from typing import Sequence

from textual import events
from textual.binding import Binding
from textual.geometry import Region
from textual.message import Message

from .keyed_table import KeyedTable


def _by_id(key: str, event) -> int:
    return event.id


class EventTable(KeyedTable):
    """Rows keyed by str(event id), shown in id order."""

    BINDINGS = [
        # DataTable's home scrolls to the first column; here it goes to the oldest event.
        Binding("home", "scroll_top", "Oldest", show=False),
    ]

    class ReachedTop(Message):
        """The operator moved to (or pressed up at) the first row: older events are wanted."""

    def __init__(self, columns: Sequence[tuple[str, str, int]], *, id: str | None = None) -> None:
        super().__init__(columns, sort_key=_by_id, id=id)
        self.following = True
        """The cursor stays on the newest row as events arrive."""
        self._newest = 0
        self._out_of_order = False

    def add_row(self, *cells, key=None, **kwargs):  # type: ignore[override]
        # New events arrive newest last, already in place: only older ones (history paged
        # in at the top) make the table re-sort, which costs O(n log n) in the rows held.
        if key is not None:
            event_id = int(key)
            if event_id < self._newest:
                self._out_of_order = True
            else:
                self._newest = event_id
        return super().add_row(*cells, key=key, **kwargs)

    def _sort(self) -> None:
        if self._out_of_order:
            self._out_of_order = False
            super()._sort()

    # Every row is one line high (KeyedTable draws them so): a row's place is its index.
    # DataTable sums the heights of every row above instead, on each cursor move and each
    # update (a few ms a render at 5,000 rows).

    def _get_row_region(self, row_index: int) -> Region:
        if not self.is_valid_row_index(row_index):
            return Region(0, 0, 0, 0)
        width = sum(column.get_render_width(self) for column in self.columns.values())
        y = row_index + (self.header_height if self.show_header else 0)
        return Region(0, y, max(self.size.width, width), 1)

    @property
    def _total_row_height(self) -> int:
        return self.row_count

    def move_to_newest(self) -> None:
        self.following = True
        if self.row_count:
            self.move_cursor(row=self.row_count - 1, animate=False)

    def _went_up(self) -> None:
        if self.cursor_row == 0:
            self.post_message(self.ReachedTop())

    def action_cursor_up(self) -> None:
        self.following = False
        super().action_cursor_up()
        self._went_up()

    def action_page_up(self) -> None:
        self.following = False
        super().action_page_up()
        self._went_up()

    def action_scroll_top(self) -> None:
        self.following = False
        super().action_scroll_top()
        self._went_up()

    def _on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.following = False
        super()._on_mouse_scroll_up(event)
