"""Every table fits an 80x24 terminal (issue 12): columns as wide as their content, the
lowest priorities dropped while a table is too wide (back when the terminal grows), widths
that do not jitter between refreshes, the naming columns fixed when a table still scrolls
sideways, and z to maximize the focused table."""

from __future__ import annotations

from textual.app import App
from textual.widgets import DataTable, Footer

from screens.format import cell, num
from screens.position_health import COLUMNS as POSITION_COLUMNS
from screens.schedule import COLUMNS as SCHEDULE_COLUMNS
from screens.widgets import HelpScreen, KeyedTable
from screens.widgets.keyed_table import KEY, NAME
from services.clock import FakeClock
from tests import test_tui_entry, test_tui_logs, test_tui_positions
from tests.conftest import T0
from tests.test_tui import column
from tui_trader.app import TraderApp, make_app


def screen_lines(app: App) -> list[str]:
    return [strip.text for strip in app.screen._compositor.render_strips()]


def shown_columns(table: DataTable) -> list[tuple[str, int, int]]:
    """(label, first, last cell + 1) of each column on screen, from the table's left edge."""
    spans, x = [], 0
    for column in table.ordered_columns:
        width = column.get_render_width(table)
        if width:
            spans.append((column.label.plain, x, x + width))
        x += width
    return spans


def dropped(table: DataTable) -> set[str]:
    return {c.label.plain for c in table.ordered_columns if not c.get_render_width(table)}


def cut_cells(app: App, table: DataTable) -> list[tuple[str, str, str]]:
    """The cells on screen that do not show their whole value: (column, shown, value)."""
    lines = screen_lines(app)
    region = table.content_region
    top = region.y + 1  # under the header
    cut = []
    for y in range(top, min(region.bottom, top + table.row_count)):
        row = table.get_row_at(y - top + round(table.scroll_y))
        for (label, first, last), value in zip(shown_columns(table), (row[i] for i, c in enumerate(
                table.ordered_columns) if c.get_render_width(table))):
            shown = lines[y][region.x + first:region.x + last].strip()
            if shown != value.plain.strip():
                cut.append((label, shown, value.plain))
    return cut


def lowest_priorities(columns: list[tuple[str, str, int]], n: int) -> set[str]:
    """The labels of the n droppable columns of lowest priority."""
    droppable = sorted((priority, -i, label.rstrip(">")) for i, (_, label, priority) in enumerate(columns)
                       if priority < KEY)
    return {label for _, _, label in droppable[:n]}


# == the screens at 80x24 ====================================================================


async def test_at_80x24_positions_shows_every_cell_whole_and_drops_the_lowest_priorities(tmp_path):
    app = make_app(None, test_tui_positions.make_engine(tmp_path, FakeClock(T0)))
    async with app.run_test(size=(80, 24)) as pilot:
        await test_tui_positions.trade(pilot)
        table = test_tui_positions.table(app)
        assert table.row_count == 4
        assert shown_columns(table)[-1][2] <= table.scrollable_content_region.width  # nothing past the edge
        assert not table.show_horizontal_scrollbar
        assert cut_cells(app, table) == []
        gone = dropped(table)
        assert gone and gone == lowest_priorities(POSITION_COLUMNS, len(gone))
        assert {"#", "Strategy", "Symbol", "Status", "P&L", "Mark"}.isdisjoint(gone)


async def test_at_80x24_the_schedule_shows_every_cell_whole_and_drops_the_lowest_priorities(tmp_path):
    app = make_app(None, test_tui_entry.make_engine(tmp_path, FakeClock(T0)))
    async with app.run_test(size=(80, 24)) as pilot:
        await test_tui_entry.reprice_and_fill(pilot)
        table = app.screen.query_one("#strategies", DataTable)
        assert table.row_count == 5
        assert shown_columns(table)[-1][2] <= table.scrollable_content_region.width
        assert cut_cells(app, table) == []
        gone = dropped(table)
        assert gone and gone == lowest_priorities(SCHEDULE_COLUMNS, len(gone))
        assert {"Strategy", "Status", "Realized", "Unreal."}.isdisjoint(gone)


async def test_a_dropped_column_comes_back_when_the_terminal_grows(tmp_path):
    app = make_app(None, test_tui_positions.make_engine(tmp_path, FakeClock(T0)))
    async with app.run_test(size=(80, 24)) as pilot:
        await test_tui_positions.trade(pilot)
        table = test_tui_positions.table(app)
        at_80 = dropped(table)
        assert at_80
        await pilot.resize_terminal(200, 24)
        await pilot.pause()
        assert dropped(table) == set()
        assert cut_cells(app, table) == []
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert dropped(table) == at_80


async def test_column_widths_stay_put_as_the_values_change(tmp_path):
    app = make_app(None, test_tui_positions.make_engine(tmp_path, FakeClock(T0)))
    async with app.run_test(size=(120, 24)) as pilot:
        await test_tui_positions.trade(pilot)
        table = test_tui_positions.table(app)
        feed = app.engine.feed
        feed.book = test_tui_positions.book(100.5, 50.5)  # the marks 100.50 and 50.50
        await test_tui_positions.second(pilot)
        widths = [c.width for c in table.ordered_columns]
        feed.book = test_tui_positions.book(99.5, 49.5)  # 99.50: narrower
        await test_tui_positions.second(pilot)
        assert column(table, "Mark")[0] == "99.50"
        assert [c.width for c in table.ordered_columns] == widths


async def test_the_logs_events_fill_the_width_without_a_horizontal_scrollbar(tmp_path):
    app = make_app(None, test_tui_logs.make_engine(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await test_tui_logs.advance(pilot, 1)
        test_tui_logs.raise_notes(app.engine, test_tui_logs.long_alerts(1))
        await test_tui_logs.advance(pilot, 1)
        await pilot.press("6")
        await test_tui_logs.settle(pilot)
        table = app.screen.table
        assert not table.show_horizontal_scrollbar  # it would cover a row
        assert shown_columns(table)[-1][2] == table.scrollable_content_region.width
        newest = screen_lines(app)[table.content_region.y + table.row_count]
        assert "alert 0: alpha order rejected" in newest and newest.rstrip().endswith("…")


# == the keyed table =========================================================================

COLUMNS = [("id", "#>", NAME), ("name", "Name", NAME), ("price", "Price>", KEY), ("qty", "Qty>", 2),
           ("note", "Note", 1), ("venue", "Venue", 3)]


def cells(v: tuple[int, float, str]) -> tuple:
    i, price, note = v
    return (num(str(i)), cell(f"row {i}", "bold"), num(f"{price:,.2f}", "green"), num(str(i * 10)),
            cell(note), cell("XNAS"))


def rows(n: int, price: float = 100.0, note: str = "a long note about the row") -> dict:
    return {f"k{i}": (i, price + i, note) for i in range(n)}


class TableApp(App):
    def compose(self):
        yield KeyedTable(COLUMNS)


async def test_the_lowest_priority_drops_first_and_the_naming_columns_stay_fixed_when_it_still_scrolls():
    app = TableApp()
    async with app.run_test(size=(40, 8)) as pilot:
        table = app.query_one(KeyedTable)
        table.sync(rows(20), cells)
        await pilot.pause()
        assert dropped(table) == {"Note"}  # 1 of 3 droppable is enough
        assert table.fixed_columns == 0 and not table.show_horizontal_scrollbar
        await pilot.resize_terminal(33, 8)  # the rest would fit 33 columns, not 33 less the vertical scrollbar
        await pilot.pause()
        assert table.show_vertical_scrollbar and not table.show_horizontal_scrollbar
        assert dropped(table) == {"Note", "Qty"}
        await pilot.resize_terminal(18, 8)
        await pilot.pause()
        assert dropped(table) == {"Note", "Qty", "Venue"}
        assert table.fixed_columns == 2  # #, Name and Price are still too wide: #, Name stay
        top = table.content_region.y + 1
        before = screen_lines(app)[top]
        table.scroll_to(x=5, animate=False)
        await pilot.pause()
        after = screen_lines(app)[top]
        fixed = shown_columns(table)[1][2]
        assert before[:fixed] == after[:fixed] == "  0  row 0  " and before[fixed:] != after[fixed:]


async def test_a_dropped_column_is_drawn_as_datatable_draws_it():
    app = TableApp()
    async with app.run_test(size=(40, 8)) as pilot:
        table = app.query_one(KeyedTable)
        table.sync(rows(20), cells)
        table.move_cursor(row=2)
        await pilot.pause()
        assert dropped(table) == {"Note"}

        def lines() -> list:
            table._frame = None
            return [table.render_line(y) for y in range(table.size.height)]

        fast = lines()
        table.fast_drawing = False
        assert fast == lines()


async def test_widths_only_grow_so_a_refresh_does_not_move_the_columns():
    app = TableApp()
    async with app.run_test(size=(100, 8)) as pilot:
        table = app.query_one(KeyedTable)
        table.sync(rows(5, 10_000.0), cells)
        await pilot.pause()
        widths = [c.width for c in table.ordered_columns]
        table.sync(rows(5, 1.0, "short"), cells)  # every value narrower
        await pilot.pause()
        assert table.get_cell("k1", "price").plain == "2.00"
        assert [c.width for c in table.ordered_columns] == widths
        table.sync(rows(5, 1.0, "a note longer than any before it"), cells)
        await pilot.pause()
        assert table.ordered_columns[4].width == len("a note longer than any before it")


# == maximize ================================================================================


async def test_z_maximizes_the_focused_table_and_z_or_escape_restores_it(tmp_path):
    app = make_app(None, test_tui_positions.make_engine(tmp_path, FakeClock(T0)))
    async with app.run_test(size=(80, 24)) as pilot:
        await test_tui_positions.trade(pilot)
        screen, table = app.screen, test_tui_positions.table(app)
        height = table.size.height
        await pilot.press("z")
        await pilot.pause()
        assert screen.maximized is table
        assert table.size.height > height and table.size.width == 80
        assert "Positions" in screen_lines(app)[0]  # the status bar stays
        assert "/ Filter" in screen_lines(app)[-1]  # the screen's own keys keep their place in the footer
        await pilot.press("z")
        await pilot.pause()
        assert screen.maximized is None and table.size.height == height
        await pilot.press("z")
        await pilot.press("escape")
        await pilot.pause()
        assert screen.maximized is None


async def test_the_zoom_key_is_free_on_every_screen_and_listed_in_the_footer_and_help(tmp_path):
    app: TraderApp = make_app(None, test_tui_positions.make_engine(tmp_path, FakeClock(T0)))
    async with app.run_test(size=(120, 30)) as pilot:
        await test_tui_positions.trade(pilot)
        for key in "1234567":
            await pilot.press(key)
            await pilot.pause()
            bindings = app.screen.active_bindings
            assert bindings["z"].binding.action == "toggle_maximize", key
            assert bindings["z"].binding.show
        await pilot.press("3")
        await pilot.pause()
        footer = screen_lines(app)[app.screen.query_one(Footer).region.y]
        assert "z Zoom" in footer
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        assert any("z  Zoom" in line for line in screen_lines(app))
        await pilot.press("escape", "7")  # the risk engine is off: no table to zoom
        await pilot.press("z")
        await pilot.pause()
        assert app.screen.maximized is None
        assert any("Nothing to zoom" in n.message for n in app._notifications)
