"""A DataTable keyed by domain ids and updated as a diff: it never clears, so the operator's
cursor and scroll position survive every refresh.

Built to stay cheap with thousands of rows refreshed several times a second:

- Lazy rows. `sync` takes the rows' domain values (views) and a function that makes a row's
  cells; it only diffs the keys (rows added, rows gone). A row's cells are made when the row
  is on screen (or asked for through the DataTable API), so a refresh costs the rows you can
  see, not the whole book.
- Cells are `Cell` tuples (text, style, alignment), compared as tuples; only a cell that
  changed is written to the table, and DataTable stores and renders it as it is.
- Column widths are ours: a column is as wide as its label or the widest cell it has held,
  so a changed cell costs O(1) instead of DataTable re-measuring the whole column, and
  widths never jitter as values change (they only grow). Each column has a priority: when
  the table is wider than the widget the lowest priorities are dropped (they take no width
  and come back when the widget grows), so a figure is never cut at the edge.
- Drawing: DataTable discards every rendered cell and line on any update. We keep our own
  caches keyed by what a line or cell shows and where, and draw a one-line cell straight to
  segments (exactly what Rich would produce) instead of going through Rich's layout.
- Rows that go away together are removed in one pass (DataTable.remove_row re-indexes every
  row each time), and re-sorting happens only when rows are added.

This leans on DataTable internals (`_data`, `_row_locations`, `_update_count`, its render
hooks); tests/test_tui.py pins the drawing against DataTable's own."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual._segment_tools import line_crop
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import CellKey, Column, ColumnKey, RowKey

from ..format import Cell

CELL_CACHE_SIZE = 10_000
"""Rendered cells kept (a screenful is a few hundred); the cache is dropped when full."""

LINE_CACHE_SIZE = 1_000
"""Rendered lines kept (a screenful is a few dozen); the cache is dropped when full."""

BULK_REMOVE = 8
"""Removing more rows than this at once goes through one re-index instead of remove_row each."""

# A column's priority, the third item of its declaration: an int, the lowest dropped first
# when the table is too wide; or one of these, never dropped.
KEY = 1000
"""A row's key figure (status, P&L, mark)."""
NAME = 1001
"""What names the row (#, strategy, symbol). The leading NAME columns stay in place when the
table is still too wide without its droppable columns and scrolls sideways."""
FILL = 1002
"""The free text (a message): as wide as the other columns leave, at least its label; a longer
text is cut with an ellipsis."""


def _as_value(value: Any) -> Any:
    """What the DataTable stores for a cell: a Cell as it is (a Rich renderable), a str as a
    Cell (DataTable would read it as markup), anything else as it is."""
    if isinstance(value, str):
        return Cell(value)
    return value


def _width(value: Any) -> int:
    if isinstance(value, Cell):
        return cell_len(value.text)
    if isinstance(value, str):
        return cell_len(value)
    if isinstance(value, Text):
        return value.cell_len
    return cell_len(str(value))


class _Column(Column):
    """A DataTable column that can be dropped: it then takes no width at all."""

    shown = True

    def get_render_width(self, data_table: DataTable[Any]) -> int:
        return super().get_render_width(data_table) if self.shown else 0


class _Frame(NamedTuple):
    """What every line of one frame is drawn with (read once per frame, not per cell)."""

    base_style: Style
    widths: tuple[int, ...]
    padding: int
    show_cursor: bool
    show_hover_cursor: bool
    pseudo_classes: Any
    zebra: bool
    css_foreground: bool
    css_background: bool
    header_height: int


class KeyedTable(DataTable):
    """`sync(rows, cells)` makes the table show exactly `rows` ({row key: value}) by removing
    the rows that went away, adding the new ones and updating the cells that changed.
    `cells(value)` makes a row's cells (Cell tuples, one per column); without it the values
    are the cells. Change rows only through `sync`.

    columns: (key, label, priority); a label ending in ">" is right-aligned; the priority an
    int (the lowest dropped first when the table is too wide), KEY, NAME or FILL.

    sort_key: called with (row key, value); when rows are added the table is re-sorted by it.
    follow: when new rows arrive and the cursor is on the last row (or the table was empty),
    the cursor moves to the newest row, so the table tails its data like a log. Otherwise
    the cursor stays on its row (by key) when rows above it come or go."""

    fast_drawing = True
    """Draw rows ourselves (False: DataTable draws them; the tests compare the two)."""

    def __init__(
        self,
        columns: Sequence[tuple[str, str, int]],
        *,
        sort_key: Callable[[str, Any], Any] | None = None,
        follow: bool = False,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(cursor_type="row", id=id, classes=classes)
        self._sort_key = sort_key
        self._follow = follow
        self._make_cells: Callable[[Any], Sequence[Any]] = tuple
        self._values: dict[str, Any] = {}
        """The newest value of every row."""
        self._cells: dict[str, tuple[Any, ...]] = {}
        """The cells the table holds for every row (made from an older value if pending)."""
        self._pending: set[str] = set()
        """Rows whose cells are still to be made from their newest value."""
        self._column_key_objects: list[ColumnKey] = []
        self._label_widths: list[int] = []
        self._widths: list[int] = []
        """Each column's content width: its label's or its widest cell's so far."""
        self._cell_cache: dict[tuple, list[list[Segment]]] = {}
        self._strip_cache: dict[tuple, Strip] = {}
        self._meta_styles: dict[tuple[int, int], Style] = {}
        self._frame: _Frame | None = None
        self._drawing = False
        self._layout_state: tuple | None = None
        """What _layout last decided: which columns show, their widths, the fixed columns."""
        priorities = [priority for _, _, priority in columns]
        self._drop_order = sorted((i for i, p in enumerate(priorities) if p < KEY), key=lambda i: (priorities[i], -i))
        """The droppable columns, the first to drop first (of equal priorities the rightmost)."""
        self._leading_names = next((i for i, p in enumerate(priorities) if p != NAME), len(priorities))
        self._fill = next((i for i, p in enumerate(priorities) if p == FILL), None)
        for key, label, _ in columns:
            right = label.endswith(">")
            label = label.rstrip(">")
            text = Text(label, justify="right") if right else Text(label)
            self._label_widths.append(text.cell_len)
            self._widths.append(text.cell_len)
            # A fixed width (which we keep up to date ourselves): DataTable never measures.
            column_key = self.add_column(text, key=key, width=text.cell_len)
            self.columns[column_key] = _Column(column_key, text, text.cell_len)  # DataTable's, droppable
            self._column_key_objects.append(column_key)

    @property
    def selected_key(self) -> str | None:
        """The key of the row under the cursor, or None when the table is empty."""
        if not self.row_count:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:  # the cursor is outside the rows for a moment
            return None

    # == the diff ===========================================================================

    def sync(self, rows: Mapping[str, Any], cells: Callable[[Any], Sequence[Any]] | None = None) -> None:
        make = cells or tuple
        if make is not self._make_cells:  # e.g. cells that depend on the snapshot's time
            self._make_cells = make
            self._pending.update(self._cells)
        was_on_last = self.row_count == 0 or self.cursor_row >= self.row_count - 1
        selected = self.selected_key
        values, pending = self._values, self._pending

        gone = [k for k in self._cells if k not in rows]
        if gone:
            for key in gone:
                del self._cells[key]
                del values[key]
                pending.discard(key)
            self._remove_rows(gone)

        added = grew = False
        widths = self._widths
        for key, value in rows.items():
            if key in self._cells:
                if values[key] is not value:
                    values[key] = value
                    pending.add(key)
            else:
                row = tuple(make(value))
                self.add_row(*map(_as_value, row), key=key)
                self._cells[key] = row
                values[key] = value
                for i, cell in enumerate(row):
                    w = _width(cell)
                    if w > widths[i]:
                        widths[i] = w
                        grew = True
                added = True
        if grew:
            self._layout()
        if added and self._sort_key is not None:
            self._sort()

        if self._follow and added and was_on_last:
            self.move_cursor(row=self.row_count - 1, animate=False)
        elif selected is not None and selected in self._cells and (gone or added):
            index = self.get_row_index(selected)
            if index != self.cursor_row:
                self.move_cursor(row=index, animate=False, scroll=False)
        if pending:
            self.refresh()  # the rows on screen get their new cells when they are drawn

    def _flush(self, keys: Iterable[str]) -> bool:
        """Make the cells of the pending rows among `keys` and write the ones that changed.
        True if the table's content changed."""
        pending, make, data = self._pending, self._make_cells, self._data
        column_keys, widths = self._column_key_objects, self._widths
        changed = grew = False
        for key in keys:
            if key not in pending:
                continue
            pending.discard(key)
            new = tuple(make(self._values[key]))
            old = self._cells[key]
            if new == old:
                continue
            row = data[key]
            for i, (before, after) in enumerate(zip(old, new)):
                if before != after:
                    row[column_keys[i]] = _as_value(after)
                    w = _width(after)
                    if w > widths[i]:
                        widths[i] = w
                        grew = True
            self._cells[key] = new
            changed = True
        if changed:
            self._update_count += 1  # what update_cell does; DataTable's caches are keyed by it
        if grew:
            self._layout()
        return changed

    def _flush_all(self) -> None:
        if self._pending and not self._drawing and self._flush(list(self._pending)):
            self.refresh()

    def _flush_visible(self) -> None:
        """Bring the rows on screen up to date (called as the table is drawn)."""
        first = max(0, int(self.scroll_offset.y))
        last = min(self.row_count, first + self.size.height)
        get_key = self._row_locations.get_key
        self._flush([get_key(i).value for i in range(first, last)])

    def _layout(self) -> None:
        """Show the columns the widget's width holds, each as wide as its content: while the
        table is too wide the lowest priorities drop; the FILL column takes the width left."""
        pad = 2 * self.cell_padding
        need = [w + pad for w in self._widths]
        fill = self._fill
        if fill is not None:
            need[fill] = self._label_widths[fill] + pad
        total = sum(need)
        width = self.scrollable_content_region.width or total  # not laid out yet: all of them
        shown = [True] * len(need)
        for i in self._drop_order:
            if total <= width:
                break
            shown[i] = False
            total -= need[i]
        widths = list(self._widths)
        if fill is not None:
            widths[fill] = self._label_widths[fill] + max(0, width - total)
        state = (shown, widths, self._leading_names if total > width else 0)
        if state == self._layout_state:
            return
        self._layout_state = state
        for column, show, w in zip(self.ordered_columns, shown, widths):
            column.shown, column.width = show, w
        self.fixed_columns = state[2]
        self._require_update_dimensions = True  # the virtual size, on idle
        self._update_count += 1
        self.refresh()
        self.check_idle()

    def _sort(self) -> None:
        """What DataTable.sort does, by (row key, value) instead of by the cells."""
        sort_key, values = self._sort_key, self._values
        order = sorted(self.rows, key=lambda row_key: sort_key(row_key.value, values[row_key.value]))
        self._row_locations = type(self._row_locations)({row_key: i for i, row_key in enumerate(order)})
        self._update_count += 1
        self.refresh()

    def _remove_rows(self, keys: list[str]) -> None:
        if len(keys) <= BULK_REMOVE:
            for key in keys:
                self.remove_row(key)
            return
        # What DataTable.remove_row does, once for all of them.
        gone = set(keys)
        locations = self._row_locations
        order = sorted(self.rows, key=locations.get)
        self._row_locations = type(locations)({k: i for i, k in enumerate(k for k in order if k not in gone)})
        for key in keys:
            for column_key in self._data.get(key, ()):
                self._updated_cells.discard(CellKey(RowKey(key), column_key))
            self._new_rows.discard(key)
            del self.rows[key]
            del self._data[key]
        self._require_update_dimensions = True
        self.cursor_coordinate = self.cursor_coordinate
        self.hover_coordinate = self.hover_coordinate
        self._update_count += 1
        self.refresh(layout=True)
        self.check_idle()

    # == reading: the DataTable API sees every row up to date ====================================

    def get_row_at(self, row_index: int) -> list[Any]:
        self._flush_all()
        return super().get_row_at(row_index)

    def get_row(self, row_key: RowKey | str) -> list[Any]:
        self._flush_all()
        return super().get_row(row_key)

    def get_cell(self, row_key: RowKey | str, column_key: ColumnKey | str) -> Any:
        self._flush_all()
        return super().get_cell(row_key, column_key)

    def get_cell_at(self, coordinate) -> Any:
        self._flush_all()
        return super().get_cell_at(coordinate)

    def get_column(self, column_key: ColumnKey | str) -> Iterable[Any]:
        self._flush_all()
        return super().get_column(column_key)

    def sort(self, *columns, key=None, reverse=False):
        self._flush_all()
        return super().sort(*columns, key=key, reverse=reverse)

    # == measuring and drawing ================================================================

    def _on_resize(self, event: events.Resize) -> None:  # DataTable's own _on_resize runs too
        self._layout()  # also when a vertical scrollbar comes or goes

    def _update_dimensions(self, new_rows) -> None:
        # Our columns have fixed widths that we keep right, and our rows are one line high:
        # there is nothing to measure in the new rows, only the virtual size to set.
        super()._update_dimensions(())

    def notify_style_update(self) -> None:
        self._cell_cache.clear()
        self._strip_cache.clear()
        self._frame = None
        super().notify_style_update()

    def render_lines(self, crop: Region) -> list[Strip]:
        if self._pending:
            self._flush_visible()
        self._frame = None  # read afresh for this frame (after DataTable sets its pseudo-classes)
        self._drawing = True
        try:
            return super().render_lines(crop)
        finally:
            self._drawing = False

    def _get_frame(self) -> _Frame | None:
        """The frame's drawing state, or None when our fast drawing does not apply (then
        DataTable draws)."""
        if self._frame is None:
            if (not self.fast_drawing or self.cursor_type != "row" or self.fixed_rows or self.fixed_columns
                    or self._should_render_row_labels):
                return None
            self._frame = _Frame(
                self.rich_style,
                tuple(column.get_render_width(self) for column in self.ordered_columns),
                self.cell_padding,
                self.show_cursor,
                self._show_hover_cursor,
                self._pseudo_class_state,
                self.zebra_stripes,
                self.cursor_foreground_priority == "css",
                self.cursor_background_priority == "css",
                self.header_height if self.show_header else 0,
            )
        return self._frame

    def render_line(self, y: int) -> Strip:
        frame = self._get_frame()
        if frame is None:
            return super().render_line(y)
        scroll_x, scroll_y = self.scroll_offset
        if y >= frame.header_height:
            y += scroll_y
        return self._render_line(y, scroll_x, scroll_x + self.size.width, frame.base_style)

    def _get_offsets(self, y: int) -> tuple[RowKey, int]:
        # Every row of ours is one line high: the row under line y is found by index, not
        # through DataTable's list of every line (rebuilt on each update).
        frame = self._get_frame()
        if frame is None or not self._cells:
            return super()._get_offsets(y)
        if y < frame.header_height:
            return self._header_row_key, y
        index = y - frame.header_height
        if index >= self.row_count:
            raise LookupError(f"Y coord {y!r} is greater than total height")
        return self._row_locations.get_key(index), 0

    def _render_line(self, y: int, x1: int, x2: int, base_style: Style) -> Strip:
        frame = self._get_frame()
        if frame is None:
            return super()._render_line(y, x1, x2, base_style)
        width = self.size.width
        try:
            row_key, line_no = self._get_offsets(y)
        except LookupError:
            return Strip.blank(width, base_style)
        row_index = self._row_locations.get(row_key)
        cells = self._cells.get(row_key.value) if row_index is not None else None
        if cells is None or line_no:  # the header, or not a row of ours
            return super()._render_line(y, x1, x2, base_style)
        cursor = self.cursor_coordinate.row == row_index
        hover = self.hover_coordinate.row == row_index
        key = (cells, row_index, cursor, hover, x1, x2, width, base_style, frame)
        try:
            strip = self._strip_cache.get(key)
        except TypeError:  # a cell that is not hashable: DataTable draws it
            return super()._render_line(y, x1, x2, base_style)
        if strip is None:
            strip = self._draw_row(row_index, cursor, hover, x1, x2, width, base_style, frame)
            if len(self._strip_cache) >= LINE_CACHE_SIZE:
                self._strip_cache.clear()
            self._strip_cache[key] = strip
        return strip

    def _draw_row(self, row_index: int, cursor: bool, hover: bool, x1: int, x2: int, width: int,
                  base_style: Style, frame: _Frame) -> Strip:
        """A row's line as DataTable._render_line_in_row + _render_line draw it."""
        if frame.zebra:
            row_style = self.get_component_styles(
                "datatable--odd-row" if row_index % 2 else "datatable--even-row").rich_style
        else:
            row_style = base_style
        segments: list[Segment] = []
        render_cell = self._render_cell
        for column_index, column_width in enumerate(frame.widths):
            if column_width:
                segments.extend(render_cell(row_index, column_index, row_style, column_width, cursor, hover)[0])
        extend_style, _ = self._get_styles_to_render_cell(
            False, False, False, hover, cursor, frame.show_cursor, frame.show_hover_cursor, False, False)
        extend_style = row_style + extend_style
        extend_style += Style.from_meta({"row": row_index, "column": 0, "out_of_bounds": True})
        table_width = sum(frame.widths)
        if x1 == 0 and table_width <= width:
            # The whole row fits: no crop, and the segments are already as simplify() leaves
            # them (a cell's segments differ in style from each other and from their neighbours').
            if table_width < width:
                segments.append(Segment(" " * (width - table_width), extend_style))
            return Strip(segments, width)
        segments.append(Segment(" " * max(0, width - table_width), extend_style))
        # Cropping a canonical line leaves it canonical: no simplify() needed.
        return Strip(line_crop(segments, x1, x2, width)).adjust_cell_length(width, base_style)

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ):
        if not width:  # a dropped column
            return [[]]
        frame = self._get_frame()
        if frame is None or column_index < 0:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        if row_index < 0:
            content: Any = ("header", self.ordered_columns[column_index].label.plain)
        else:
            row_key = self._row_locations.get_key(row_index)
            content = _plain_cell(self._data[row_key].get(self._column_key_objects[column_index]))
            if content is None:
                return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        key = (content, row_index, column_index, base_style, width, cursor, hover, frame)
        cache = self._cell_cache
        lines = cache.get(key)
        if lines is None:
            if row_index < 0 or width - 2 * frame.padding < 1:
                lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
            else:
                lines = self._draw_cell(content, row_index, column_index, base_style, width, cursor, hover, frame)
            if len(cache) >= CELL_CACHE_SIZE:
                cache.clear()
            cache[key] = lines
        return lines

    def _draw_cell(self, content: tuple[str, Any, bool], row_index: int, column_index: int,
                   base_style: Style, width: int, cursor: bool, hover: bool, frame: _Frame) -> list[list[Segment]]:
        """One line of styled text in a padded cell, exactly as DataTable draws it through
        Rich (Styled(Padding(text))), without the trip through Rich's layout."""
        plain, span_style, right = content
        component_style, post_style = self._get_styles_to_render_cell(
            False, False, False, hover, cursor, frame.show_cursor, frame.show_hover_cursor,
            frame.css_foreground, frame.css_background,
        )
        meta = self._meta_styles.get((row_index, column_index))
        if meta is None:
            if len(self._meta_styles) >= CELL_CACHE_SIZE:
                self._meta_styles.clear()
            meta = self._meta_styles[row_index, column_index] = Style.from_meta({"row": row_index, "column": column_index})
        pre = base_style + meta + component_style
        blank = pre + post_style if post_style else pre
        pad = frame.padding
        inner = width - 2 * pad
        if right:
            plain = plain.rstrip()
        size = cell_len(plain)
        if size > inner:  # overflow="ellipsis"
            plain = set_cell_size(plain, inner - 1) + "…"
            size = inner
        gap = " " * (inner - size)
        left_space = " " * pad + (gap if right else "")
        right_space = ("" if right else gap) + " " * pad
        text_style = blank
        if plain and span_style is not None:
            text_style = pre + self.app.console.get_style(span_style)
            if post_style:
                text_style = text_style + post_style
        if not plain or text_style == blank:  # one style: one segment, as simplify() would merge them
            return [[Segment(left_space + plain + right_space, blank)]]
        line: list[Segment] = []
        if left_space:
            line.append(Segment(left_space, blank))
        line.append(Segment(plain, text_style))
        if right_space:
            line.append(Segment(right_space, blank))
        return [line]


def _plain_cell(value: Any) -> tuple[str, Any, bool] | None:
    """(text, style or None, right-aligned) for a one-line Cell, or a Text made the way
    Cell.to_text makes them; None for anything else (drawn by DataTable itself)."""
    if isinstance(value, Cell):
        text = value.text
        if "\n" in text or "\t" in text:
            return None
        return text, (value.style or None) if text else None, value.right
    if not isinstance(value, Text) or value.style or not value.no_wrap or value.overflow != "ellipsis":
        return None
    if value.justify not in ("left", "right"):
        return None
    plain = value.plain
    if "\n" in plain or "\t" in plain:
        return None
    spans = value.spans
    if not spans:
        return plain, None, value.justify == "right"
    if len(spans) == 1 and spans[0].start == 0 and spans[0].end >= len(plain):
        return plain, spans[0].style, value.justify == "right"
    return None
