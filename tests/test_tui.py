"""The TUI over a real engine: paper broker, simulated feed on a fake clock, SQLite store.

Pilot tests drive it by keyboard and assert on the engine's state and on what the widgets
show; SVG snapshots pin each screen's look (deterministic: fixed seed, frozen fake clock)."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console
from textual.app import App
from textual.coordinate import Coordinate
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from screens.entry import EntryScreen
from screens.exits import ExitsScreen
from screens.format import DIM, cell, num
from screens.logs import LogsScreen
from screens.positions import PositionsScreen
from screens.queue import QueueScreen
from screens.schedule import ScheduleScreen
from screens.widgets import (
    ConfirmScreen, EditLevelsScreen, HelpScreen, KeyedTable, LiveStatic, StatusBar, StrategyDetailsScreen,
)
from screens.widgets.keyed_table import KEY
from services.clock import FakeClock
from services.config import TradingConfig
from services.engine import Engine
from tui_trader.wiring import build_engine
from services.store import SqlStore
from services.views import EventView
from tests.conftest import T0, config
from tui_trader.app import TraderApp, make_app

SIZE = (100, 30)

STRATEGIES = {
    "trend": {"symbols": ["BTCUSDT"], "side": "buy", "sizing": {"fixed_qty": 1}, "stop_loss": "1%", "target": "2%",
              "cooldown_s": 60},
    "fade": {"symbols": ["ETHUSDT"], "side": "sell", "sizing": {"fixed_value": 1000}, "stop_loss": "2%",
             "trail_distance": "0.5%", "time_exit_s": 600},
    "manual": {"symbols": ["ACME"], "side": "buy", "entry": "manual", "sizing": {"fixed_qty": 10}, "target": "5%"},
}


def make_engine(tmp_path: Path, clock: FakeClock, cfg: TradingConfig | None = None) -> Engine:
    return build_engine(cfg or config(**STRATEGIES), clock, SqlStore(f"sqlite:///{tmp_path}/t.db"))


@pytest.fixture
def engine(tmp_path: Path, clock: FakeClock) -> Engine:
    return make_engine(tmp_path, clock)


@pytest.fixture
def app(engine: Engine) -> TraderApp:
    return make_app(None, engine)


async def advance(pilot: Pilot, seconds: int = 3) -> None:
    """Move the fake clock a second at a time (the simulated feed emits on each), then render."""
    clock = pilot.app.engine.clock
    for _ in range(seconds):
        clock.advance(1)
        await pilot.pause()
    pilot.app.render_now()
    await pilot.pause()


def text_of(widget: Static) -> str:
    """What a Static shows, as plain text at its width."""
    console = Console(width=widget.size.width or 100, file=io.StringIO(), color_system=None)
    with console.capture() as capture:
        console.print(widget.content)
    return capture.get()


def status_text(app: TraderApp) -> str:
    return text_of(app.screen.query_one(StatusBar))


def table_rows(table: DataTable) -> list[list[str]]:
    return [[getattr(c, "plain", str(c)) for c in table.get_row_at(i)] for i in range(table.row_count)]


def column(table: DataTable, name: str) -> list[str]:
    labels = [c.label.plain for c in table.ordered_columns]
    i = labels.index(name)
    return [row[i] for row in table_rows(table)]


def open_groups(engine: Engine) -> dict[str, int]:
    return {g.strategy_id: g.id for g in engine.groups.values() if g.status == "open"}


# == screens =================================================================================


async def test_starts_on_schedule_and_every_number_key_shows_its_screen_with_engine_data(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot)
        assert isinstance(app.screen, ScheduleScreen)
        snap = engine.snapshot()
        assert {p.strategy_id for p in snap.positions} == {"trend", "fade"}

        strategies = app.screen.query_one("#strategies", DataTable)
        assert column(strategies, "Strategy") == ["trend", "fade", "manual"]
        assert column(strategies, "Status") == ["live", "live", "waiting"]
        assert column(strategies, "Next entry")[2] == "manual (n)"

        await pilot.press("2")
        assert isinstance(app.screen, EntryScreen)
        entries = app.screen.query_one("#entries", DataTable)
        assert column(entries, "Symbol") == ["BTCUSDT", "ETHUSDT"]
        assert column(entries, "Result") == ["filled", "filled"]
        assert column(entries, "Attempt") == ["market", "market"]
        fill = next(o for o in snap.orders if o.symbol == "BTCUSDT").avg_fill_price
        assert column(entries, "Price")[0] == f"{fill:,.2f}"
        assert app.screen.query_one("#exit-orders", DataTable).row_count == 0

        await pilot.press("3")
        assert isinstance(app.screen, PositionsScreen)
        positions = app.screen.query_one("#positions", DataTable)
        trend = next(p for p in snap.positions if p.strategy_id == "trend")
        row = table_rows(positions)[0]
        assert row[:6] == ["", str(trend.group_id), "trend", "BTCUSDT", "long", "OPEN"]
        assert column(positions, "Stop")[0] == f"{trend.stop:,.2f}"
        assert column(positions, "Mark")[0] == f"{trend.mark:,.2f}"
        assert column(positions, "Side")[1] == "short"

        await pilot.press("4")
        assert isinstance(app.screen, ExitsScreen)
        triggers = app.screen.query_one("#triggers", DataTable)
        assert len(table_rows(triggers)) == len(snap.triggers())
        kinds = [k.lstrip("▸ ") for k in column(triggers, "Trigger")]
        assert {"stop loss", "target", "trailing stop", "time exit"} <= set(kinds)  # fade's trail arms at entry
        assert "10m00s left" in column(triggers, "Distance")[-1] or "9m" in column(triggers, "Distance")[-1]

        await pilot.press("5")
        assert isinstance(app.screen, QueueScreen)
        assert "2/10 slots used" in text_of(app.screen.query_one("#pool", Static))
        assert "No signal is queued. Signals that find the pool full wait here" in text_of(
            app.screen.query_one("#queue-empty", Static))

        await pilot.press("6")
        assert isinstance(app.screen, LogsScreen)
        messages = "\n".join(column(app.screen.query_one("#events", DataTable), "Message"))
        assert "engine started" in messages and "trend: entered buy 1 BTCUSDT" in messages

        await pilot.press("1")
        assert isinstance(app.screen, ScheduleScreen)


async def test_status_bar_shows_mode_state_feed_clock_pnl_pool_and_alerts(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, 4)
        snap = engine.snapshot()
        text = status_text(app)
        for part in ("PAPER", "running", "feed ok", "00:00:04 UTC", f"day P&L {snap.day_pnl:+,.2f}",
                     "pool 2/10", "alerts 0"):
            assert part in text, (part, text)
        assert "DB DOWN" not in text

        engine.store.ok = False  # what the store reports while the database is failing
        app.render_now()
        assert "DB DOWN" in status_text(app)
        engine.store.ok = True


async def test_positions_show_stale_when_the_feed_stops(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot)
        await pilot.press("3")
        await engine.feed.stop()
        await advance(pilot, 10)  # older than feed.max_quote_age_s
        positions = app.screen.query_one("#positions", DataTable)
        assert set(column(positions, "Status")) == {"STALE"}
        assert "STALE BTCUSDT, ETHUSDT +1" in status_text(app)


async def test_a_hidden_screen_does_not_render_and_catches_up_when_shown(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot)
        await pilot.press("3")
        positions_screen = app.screen
        await pilot.press("1")
        await advance(pilot)
        assert positions_screen.shown is not app.latest_snapshot  # hidden: not rendered
        await pilot.press("3")
        await pilot.pause()
        # caught up: the latest state (a snapshot can be rebuilt meanwhile with the same content)
        assert positions_screen.shown.seq == app.latest_snapshot.seq


async def test_table_updates_keep_the_cursor_on_its_row(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot)
        await pilot.press("3", "down")
        table = app.screen.query_one("#positions", DataTable)
        assert table.cursor_row == 1
        before = column(table, "Mark")
        await advance(pilot, 5)
        assert column(table, "Mark") != before  # it did re-render
        assert table.cursor_row == 1
        assert app.screen.selected.strategy_id == "fade"


# == position commands =======================================================================


async def test_x_exits_the_selected_position_after_confirmation(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot)
        gid = open_groups(engine)["trend"]
        await pilot.press("3", "x")
        assert isinstance(app.screen, ConfirmScreen)
        assert f"Exit #{gid}" in text_of(app.screen.query_one("#question", Static))
        await pilot.press("n")  # no: nothing happens
        assert isinstance(app.screen, PositionsScreen)
        assert open_groups(engine)["trend"] == gid

        await pilot.press("x", "escape")  # escape: nothing happens
        assert open_groups(engine)["trend"] == gid

        await pilot.press("x", "y")
        await pilot.pause()
        assert isinstance(app.screen, PositionsScreen)
        group = engine.groups.get(gid)
        assert group is None or group.pending_exit == "manual"
        assert "trend" not in {p.strategy_id for p in engine.snapshot().positions if p.status == "OPEN"}
        assert any(f"#{gid}" in n.message for n in app._notifications)
        keys = [k.value for k in app.screen.query_one("#positions", DataTable).rows]
        assert str(gid) not in keys


async def test_shift_x_exits_all_positions_after_confirmation(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot)
        assert len(open_groups(engine)) == 2
        await pilot.press("3", "X")
        assert isinstance(app.screen, ConfirmScreen)
        assert "ALL 2 open position(s)" in text_of(app.screen.query_one("#question", Static))
        await pilot.press("y")  # not enough: the word must be typed
        assert isinstance(app.screen, ConfirmScreen)
        app.screen.query_one("#word", Input).value = "EXIT"
        await pilot.press("enter")
        await pilot.pause()
        assert open_groups(engine) == {}
        assert all(g.pending_exit for g in engine.groups.values())


async def _open_edit_form(pilot: Pilot) -> EditLevelsScreen:
    await advance(pilot)
    await pilot.press("3", "e")  # the cursor is on trend's BTCUSDT long
    screen = pilot.app.screen
    assert isinstance(screen, EditLevelsScreen)
    return screen


async def test_e_edits_the_stop_of_the_selected_position(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        form = await _open_edit_form(pilot)
        leg = engine.groups[open_groups(engine)["trend"]].legs[0]
        assert form.query_one("#stop-input", Input).value == f"{leg.stop:.2f}"  # prefilled
        assert form.query_one("#target-input", Input).value == f"{leg.target:.2f}"
        new_stop = round(leg.mark - 0.5, 2)
        form.query_one("#stop-input", Input).value = str(new_stop)
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, EditLevelsScreen)
        assert leg.stop == new_stop
        assert leg.target is not None  # untouched fields are not sent
        assert any("stop" in n.message and "->" in n.message for n in app._notifications)


async def test_an_empty_field_removes_the_level(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        form = await _open_edit_form(pilot)
        leg = engine.groups[open_groups(engine)["trend"]].legs[0]
        form.query_one("#target-input", Input).value = ""
        form.query_one("#trail-input", Input).value = "0.5%"
        await pilot.click("#save")
        await pilot.pause()
        assert not isinstance(app.screen, EditLevelsScreen)
        assert leg.target is None
        assert str(leg.trail_distance) == "0.5%"


async def test_a_stop_above_the_mark_of_a_long_is_refused_in_the_form(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        form = await _open_edit_form(pilot)
        leg = engine.groups[open_groups(engine)["trend"]].legs[0]
        before = leg.stop
        form.query_one("#stop-input", Input).value = f"{leg.mark + 5:.2f}"
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is form  # still open
        errors = form.errors()
        assert "wrong side" in errors["stop"] and "below" in errors["stop"]
        assert form.query_one("#stop-error", Static).display
        assert "wrong side" in text_of(form.query_one("#stop-error", Static))
        assert leg.stop == before

        await pilot.press("escape")
        assert isinstance(app.screen, PositionsScreen)
        assert leg.stop == before


async def test_a_non_number_is_refused_next_to_its_field(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        form = await _open_edit_form(pilot)
        leg = engine.groups[open_groups(engine)["trend"]].legs[0]
        before = (leg.stop, leg.target)
        form.query_one("#stop-input", Input).value = "abc"
        form.query_one("#trail-input", Input).value = "half"
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is form
        errors = form.errors()
        assert "not a number" in errors["stop"]
        assert "percentage" in errors["trail"]
        assert "target" not in errors
        assert (leg.stop, leg.target) == before
        assert leg.trail_distance is None


# == strategy commands =======================================================================


async def test_p_pauses_and_resumes_the_selected_strategy(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot)
        await pilot.press("down")  # fade
        await pilot.press("p")
        await pilot.pause()
        assert engine.strategies["fade"].paused
        table = app.screen.query_one("#strategies", DataTable)
        assert column(table, "Status")[1] == "paused"
        assert any("fade paused" in n.message for n in app._notifications)
        await pilot.press("p")
        await pilot.pause()
        assert not engine.strategies["fade"].paused
        assert column(table, "Status")[1] == "live"


async def test_n_enters_now_after_confirmation(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot)
        await pilot.press("down", "down", "n")  # manual
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await pilot.pause()
        assert "manual" in open_groups(engine)
        table = app.screen.query_one("#strategies", DataTable)
        assert column(table, "Status")[2] == "live"


# == app =====================================================================================


async def test_number_keys_do_not_switch_screens_under_a_modal(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot)
        await pilot.press("3", "X", "1")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, PositionsScreen)


async def test_help_lists_the_keys_of_the_screen_and_the_global_ones(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot)
        await pilot.press("3", "question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = text_of(app.screen.query_one(Static))
        for part in ("Exit all", "Edit stop / target", "Filter", "Positions", "Quit", "Command palette"):
            assert part in text, part
        await pilot.press("escape")
        assert isinstance(app.screen, PositionsScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)


async def test_the_command_palette_offers_the_operator_actions(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot)
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        for title in ("Screen: Positions (3)", "Exit all positions", "Pause trend", "Enter now: manual",
                      "Details: manual", "Exit strategy fade", "Help: keys"):
            assert title in commands, title
        assert any(t.startswith("Edit levels #") for t in commands)
        commands["Pause trend"].callback()
        assert engine.strategies["trend"].paused
        commands["Details: manual"].callback()
        await pilot.pause()
        assert isinstance(app.screen, StrategyDetailsScreen) and app.screen.strategy.id == "manual"
        await pilot.press("escape")
        commands["Screen: Logs (6)"].callback()
        await pilot.pause()
        assert isinstance(app.screen, LogsScreen)


async def test_new_fills_and_exits_are_flashed(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot)
        messages = [n.message for n in app._notifications]
        assert any("entered buy 1 BTCUSDT" in m for m in messages)
        assert not any("engine started" in m for m in messages)  # not flash-worthy


async def test_a_burst_of_events_flashes_a_few_most_important_first_and_summarises(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot)
        app.clear_notifications()
        app._flashed_at.clear()
        snap = engine.snapshot()
        base = max(e.id for e in snap.events)
        burst = [
            EventView(base + i, snap.ts, "info", "fill", f"fill {i}", "trend", "BTCUSDT", 100 + i, False)
            for i in range(1, 9)
        ] + [EventView(base + 9, snap.ts, "error", "order", "exit order rejected", "trend", "BTCUSDT", 1, True)]
        app.latest_snapshot = replace(snap, events=snap.events + tuple(burst))
        app._render()
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert len(messages) == 3
        assert messages[0] == "exit order rejected"  # errors first
        assert messages[-1] == "+7 more event(s): see 6 Logs"
        app._render()  # nothing new: nothing flashed again
        await pilot.pause()
        assert len(app._notifications) == 3


async def test_a_burst_of_snapshots_is_rendered_once(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot)
        screen = app.visible_engine_screen
        rendered = []
        show = screen.show
        screen.show = lambda snap: (rendered.append(snap), show(snap))
        for _ in range(50):
            app._on_engine_snapshot(engine.snapshot())
        await pilot.pause(0.4)
        assert 1 <= len(rendered) <= 2
        assert rendered[-1] is app.latest_snapshot


async def test_q_stops_the_engine_and_quits(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot)
        gid = open_groups(engine)["trend"]
        await pilot.press("q")
        await pilot.pause()
        assert engine.state == "stopped"
    assert app.return_code == 0
    # positions stay open: a new engine on the same database resumes them
    clock = FakeClock(engine.clock.now())
    again = build_engine(engine.config, clock, SqlStore(engine.store.url))
    again.open()
    assert gid in again.groups
    again.store.close()


async def test_an_engine_that_cannot_start_exits_with_code_2_and_the_reason(tmp_path, clock):
    cfg = TradingConfig.model_validate({**config(**STRATEGIES).model_dump(), "engine": {"mode": "live"}})
    app = make_app(None, make_engine(tmp_path, clock, cfg))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
    assert app.return_code == 2
    assert app.start_error is not None and "live trading is not available" in app.start_error


# == snapshots ===============================================================================


def _scenario(screen_key: str):
    async def run_before(pilot: Pilot) -> None:
        app, engine = pilot.app, pilot.app.engine
        # A snapshot every second: the marks behind the Positions sparklines are sampled when
        # snapshots are taken, so they are the same on every run.
        for _ in range(3):
            await advance(pilot, 1)
        engine.exit_position(open_groups(engine)["trend"])  # a closed trade, an exit order, a cooldown
        engine.pause("manual")
        for _ in range(4):
            await advance(pilot, 1)
        await pilot.press(screen_key)
        app.render_now()
        app.clear_notifications()
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("key", ["1", "2", "3", "4", "5", "6"])
def test_snapshot_screen(key, snap_compare, tmp_path):
    app = make_app(None, make_engine(tmp_path, FakeClock(T0)))
    assert snap_compare(app, terminal_size=SIZE, run_before=_scenario(key))


def test_snapshot_positions_at_80x24(snap_compare, tmp_path):
    app = make_app(None, make_engine(tmp_path, FakeClock(T0)))
    assert snap_compare(app, terminal_size=(80, 24), run_before=_scenario("3"))


# == the keyed table =========================================================================

KT_COLUMNS = [("id", "#>", KEY), ("name", "Name", KEY), ("price", "Price>", KEY), ("note", "Note", KEY)]


def kt_cells(v: tuple[int, float, str]) -> tuple:
    i, price, note = v
    return (num(str(i)), cell(f"row {i}", "bold" if i % 3 == 0 else ""),
            num(f"{price:,.2f}", "green" if price > 100 else "red" if price < 100 else ""), cell(note, DIM))


class KeyedTableApp(App):
    def __init__(self, **kwargs) -> None:
        super().__init__()
        self.kwargs = kwargs

    def compose(self):
        yield KeyedTable(KT_COLUMNS, **self.kwargs)


def kt_rows(n: int, price: float = 100.0, note: str = "") -> dict[str, tuple[int, float, str]]:
    return {f"k{i}": (i, price + i, note) for i in range(n)}


async def test_keyed_table_draws_its_rows_exactly_as_datatable_would():
    app = KeyedTableApp()
    async with app.run_test(size=(40, 10)) as pilot:  # narrower than the table: it scrolls sideways
        table = app.query_one(KeyedTable)
        table.sync({**kt_rows(30, 95.0, "a note long enough to scroll"), "k3": (3, 100.0, "")}, kt_cells)
        await pilot.pause()

        def lines() -> list:
            table._frame = None
            return [table.render_line(y) for y in range(table.size.height)]

        async def compare(what: str) -> None:
            await pilot.pause()
            fast = lines()
            table.fast_drawing = False
            try:
                slow = lines()
            finally:
                table.fast_drawing = True
            assert fast == slow, what
            assert any(strip.cell_length for strip in fast)

        await compare("cursor on the first row, focused")
        await pilot.press("down", "down", "down")
        await compare("cursor further down")
        table.hover_coordinate = Coordinate(5, 0)
        table._show_hover_cursor = True
        await compare("a hovered row")
        table.zebra_stripes = True
        await compare("zebra stripes")
        table.scroll_to(x=7, y=4, animate=False)
        await compare("scrolled both ways")
        table.cursor_foreground_priority = "renderable"
        table.blur()
        await compare("unfocused, the cells' own colours first")
        app.theme = "textual-light"
        await compare("another theme")


async def test_keyed_table_makes_cells_only_for_the_rows_on_screen_and_reads_are_current():
    made: list[int] = []

    def counting_cells(v):
        made.append(v[0])
        return kt_cells(v)

    app = KeyedTableApp()
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(KeyedTable)
        table.sync(kt_rows(300), counting_cells)
        await pilot.pause()
        made.clear()
        table.sync(kt_rows(300, 200.0), counting_cells)  # every row changed
        await pilot.pause()
        assert 0 < len(made) < 20  # the rows on screen
        assert table_rows(table)[299] == ["299", "row 299", "499.00", ""]  # the rest on demand
        assert len(table_rows(table)) == 300


async def test_keyed_table_columns_grow_to_their_widest_cell_and_never_shrink():
    app = KeyedTableApp()
    async with app.run_test(size=(80, 12)) as pilot:
        table = app.query_one(KeyedTable)
        width = {c.key.value: c for c in table.ordered_columns}
        table.sync(kt_rows(50), kt_cells)
        await pilot.pause()
        assert width["note"].width == len("Note")
        assert width["price"].width == len("149.00")
        rows = kt_rows(50)
        rows["k40"] = (40, 12_345.0, "a much longer note")  # off screen
        table.sync(rows, kt_cells)
        await pilot.pause()
        assert table.get_cell("k40", "note").plain == "a much longer note"
        assert width["note"].width == len("a much longer note")
        assert width["price"].width == len("12,345.00")
        table.sync(kt_rows(50), kt_cells)
        table.get_row_at(40)
        assert width["note"].width == len("a much longer note")  # no jitter as values change
        assert width["price"].width == len("12,345.00")


async def test_keyed_table_cursor_stays_on_its_row_when_rows_come_and_go():
    app = KeyedTableApp(sort_key=lambda key, v: v[0])
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(KeyedTable)
        rows = kt_rows(40)
        table.sync(rows, kt_cells)
        table.move_cursor(row=20)
        await pilot.pause()
        assert table.selected_key == "k20"
        for i in range(10):  # many rows above it go at once
            del rows[f"k{i}"]
        table.sync(dict(rows), kt_cells)
        await pilot.pause()
        assert table.selected_key == "k20" and table.cursor_row == 10
        del rows["k15"]  # one row
        rows["k5"] = (5, 1.0, "back, sorted into place")
        table.sync(dict(rows), kt_cells)
        await pilot.pause()
        assert table.selected_key == "k20" and table.cursor_row == 10
        assert [r[0] for r in table_rows(table)] == [str(i) for i in [5, *range(10, 15), *range(16, 40)]]
        assert table_rows(table)[0] == ["5", "row 5", "1.00", "back, sorted into place"]
        assert [k.value for k in table.rows] == [f"k{i}" for i in [*range(10, 15), *range(16, 40), 5]]


async def test_live_static_lays_out_again_only_when_its_height_changes():
    class StaticApp(App):
        CSS = "LiveStatic { height: auto; }"

        def compose(self):
            yield LiveStatic("short")

    app = StaticApp()
    async with app.run_test(size=(30, 10)) as pilot:
        static = app.query_one(LiveStatic)
        await pilot.pause()
        assert static.size.height == 1
        static.show("wrapped " * 9)  # 72 cells: three lines of 30
        await pilot.pause()
        assert static.size.height == 3
        static.show("WRAPPED " * 9)
        assert not static._layout_required  # as high as before: a repaint, no layout
        await pilot.pause()
        assert static.size.height == 3 and "WRAPPED" in str(static.content)
        static.show("short again")
        await pilot.pause()
        assert static.size.height == 1
