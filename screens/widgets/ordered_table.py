"""A KeyedTable that shows its rows in the order it is given them: for a screen that sorts by
something that changes with every snapshot (P&L), or by a key the operator picks."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from .keyed_table import KeyedTable


class OrderedTable(KeyedTable):
    """`sync(rows, cells)` as KeyedTable's, the rows shown in the order of `rows`. A re-order
    keeps the cursor on its row (by key), as rows coming and going do."""

    def __init__(self, columns: Sequence[tuple[str, str, int]], *, id: str | None = None) -> None:
        super().__init__(columns, sort_key=lambda key, value: self._rank[key], id=id)
        self._rank: dict[str, int] = {}
        self._order: list[str] = []
        """The keys in the order the table shows them."""

    def sync(self, rows: Mapping[str, Any], cells: Callable[[Any], Sequence[Any]] | None = None) -> None:
        order = list(rows)
        if order == self._order:  # the same rows in the same order: only their cells may change
            super().sync(rows, cells)
            return
        self._rank = {key: i for i, key in enumerate(order)}
        super().sync(rows, cells)  # re-sorts by the rank only when rows were added
        self._order = order
        get_key = self._row_locations.get_key
        if all(get_key(i).value == key for i, key in enumerate(order)):
            return
        selected = self.selected_key
        self._sort()
        if selected is not None:
            self.move_cursor(row=self.get_row_index(selected), animate=False, scroll=False)
