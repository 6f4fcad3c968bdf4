"""A DataTable keyed by domain ids and updated as a diff: it never clears, so the operator's
cursor and scroll position survive every refresh."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from rich.text import Text
from textual.widgets import DataTable


class KeyedTable(DataTable):
    """`sync(rows)` makes the table show exactly `rows` ({row key: cells}) by removing the
    rows that went away, adding the new ones and updating only the cells that changed.

    sort_key: called with a row's cells; when rows are added the table is re-sorted with it.
    follow: when new rows arrive and the cursor is on the last row (or the table was empty),
    the cursor moves to the newest row, so the table tails its data like a log."""

    def __init__(
        self,
        columns: Sequence[tuple[str, str]],
        *,
        sort_key: Callable[[tuple[Any, ...]], Any] | None = None,
        follow: bool = False,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(cursor_type="row", id=id, classes=classes)
        self._column_keys = [key for key, _ in columns]
        self._cells: dict[str, tuple[Any, ...]] = {}
        self._sort_key = sort_key
        self._follow = follow
        for key, label in columns:
            right = label.endswith(">")
            label = label.rstrip(">")
            self.add_column(Text(label, justify="right") if right else label, key=key)

    @property
    def selected_key(self) -> str | None:
        """The key of the row under the cursor, or None when the table is empty."""
        if not self.row_count:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:  # the cursor is outside the rows for a moment
            return None

    def sync(self, rows: Mapping[str, Sequence[Any]]) -> None:
        was_on_last = self.row_count == 0 or self.cursor_row >= self.row_count - 1
        for key in [k for k in self._cells if k not in rows]:
            self.remove_row(key)
            del self._cells[key]
        added = False
        for key, cells in rows.items():
            cells = tuple(cells)
            old = self._cells.get(key)
            if old is None:
                self.add_row(*cells, key=key)
                added = True
            elif old != cells:
                for column, before, after in zip(self._column_keys, old, cells):
                    if before != after:
                        self.update_cell(key, column, after, update_width=True)
            self._cells[key] = cells
        if added:
            if self._sort_key is not None:
                self.sort(key=self._sort_key)
            if self._follow and was_on_last:
                self.move_cursor(row=self.row_count - 1, animate=False)
