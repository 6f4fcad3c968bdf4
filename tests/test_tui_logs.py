"""The Logs screen (6): filters and search narrow the events to exactly the matching ones,
the table follows the newest event until the operator moves up, older events page in from
the database down to the first, alerts are acknowledged one or all (persisted across a
restart), enter shows an event's payload, and ctrl+e exports what the filter matches.

The engine runs on a fake clock with a SQLite store; its strategies are manual, so the only
events are the ones a test raises (through engine.note or an entry) and the engine start."""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Select, Static

from screens import logs
from screens.logs import LogsScreen
from screens.widgets.event_detail import EventDetailScreen
from screens.widgets.export_dialog import ExportDialog
from services.clock import FakeClock
from services.engine import Engine
from tui_trader.wiring import build_engine
from services.event_log import EventQuery
from services.store import SqlStore
from tests.conftest import T0, config
from tests.test_tui import SIZE, advance, column, status_text, text_of
from tui_trader.app import TraderApp, make_app

STRATEGIES = {
    "alpha": {"symbols": ["BTCUSDT"], "side": "buy", "entry": "manual", "sizing": {"fixed_qty": 1}},
    "beta": {"symbols": ["ETHUSDT"], "side": "sell", "entry": "manual", "sizing": {"fixed_qty": 1}},
}

NOTES = [  # level, category, message, strategy, alert
    ("info", "operator", "shift handover: all quiet", None, False),
    ("warning", "feed", "ACME quotes arrive late", None, False),
    ("error", "order", "alpha order rejected by the broker", "alpha", False),
    ("info", "risk", "beta risk check passed", "beta", False),
    ("warning", "risk", "beta drawdown near its limit", "beta", True),
    ("critical", "store", "database write failed (disk full)", None, True),
]


def make_engine(tmp_path: Path, clock: FakeClock | None = None) -> Engine:
    return build_engine(config(**STRATEGIES), clock or FakeClock(T0), SqlStore(f"sqlite:///{tmp_path}/t.db"))


@pytest.fixture
def app(tmp_path: Path) -> TraderApp:
    app = make_app(None, make_engine(tmp_path))
    app.export_dir = tmp_path / "exports"
    return app


def raise_notes(engine: Engine, notes=NOTES) -> None:
    for level, category, message, strategy, alert in notes:
        engine.note(level, category, message, strategy_id=strategy, needs_ack=alert,
                    payload={"note": message[:10]})


async def settle(pilot: Pilot) -> None:
    """Render, then let every page the screen asked for arrive."""
    pilot.app.render_now()
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def open_logs(pilot: Pilot, entry: bool = True) -> LogsScreen:
    """The notes (and alpha's entry: events with a symbol and a position), then screen 6."""
    await advance(pilot, 1)  # quotes for every symbol
    engine = pilot.app.engine
    raise_notes(engine)
    if entry:
        assert engine.enter_now("alpha").ok
    await advance(pilot, 1)
    await pilot.press("6")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, LogsScreen)
    return screen


async def open_history(pilot: Pilot, count: int, level=lambda n: "info") -> LogsScreen:
    """`count` events ("history 0000", ...) committed to the database, then screen 6."""
    await advance(pilot, 1)
    for n in range(count):
        pilot.app.engine.note(level(n), "operator", f"history {n:04d}")
    await pilot.press("6")
    await settle(pilot)
    return pilot.app.screen


def messages(screen: LogsScreen) -> list[str]:
    return column(screen.table, "Message")


def expected(engine: Engine, query: EventQuery = EventQuery()) -> list[str]:
    return [e.message for e in engine.events if query.matches(e)]


def state(screen: LogsScreen) -> str:
    return str(screen.query_one("#events-box").border_subtitle)


def highlighted(screen: LogsScreen) -> int:
    return int(screen.table.selected_key)


def notified(app: TraderApp, text: str) -> bool:
    return any(text in n.message for n in app._notifications)


async def choose(pilot: Pilot, key: str, typed: str) -> None:
    """Open a filter by its key, type to find the option, pick it."""
    await pilot.press(key, *typed, "enter")
    await settle(pilot)


# == filters and search ======================================================================


async def test_each_filter_narrows_the_table_to_exactly_the_matching_events_and_r_resets(app):
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_logs(pilot)
        engine = app.engine
        everything = expected(engine)
        assert "engine started" in everything[0] and len(everything) >= len(NOTES) + 2
        assert messages(screen) == everything

        await choose(pilot, "l", "warn")
        assert screen.query_one("#level", Select).value == "warning"
        warning_up = EventQuery(min_level="warning")
        assert messages(screen) == expected(engine, warning_up) == [
            "ACME quotes arrive late", "alpha order rejected by the broker", "beta drawdown near its limit",
            "database write failed (disk full)"]
        assert app.focused is screen.table  # picked: back to the events
        assert state(screen).endswith("matching level ≥ warning")

        await choose(pilot, "c", "risk")  # the filters combine
        assert messages(screen) == ["beta drawdown near its limit"]

        await pilot.press("r")
        await settle(pilot)
        assert messages(screen) == everything
        assert [screen.query_one(f"#{name}", Select).value for name in ("level", "category", "strategy", "symbol")] \
            == ["", "", "", ""]
        assert state(screen).endswith("no filter")

        await choose(pilot, "s", "beta")
        assert messages(screen) == expected(engine, EventQuery(strategy="beta")) == [
            "beta risk check passed", "beta drawdown near its limit"]

        await pilot.press("r")
        await choose(pilot, "y", "BTC")  # alpha's entry and fill are the events with a symbol
        by_symbol = expected(engine, EventQuery(symbol="BTCUSDT"))
        assert len(by_symbol) >= 2 and messages(screen) == by_symbol
        assert all("BTCUSDT" in m for m in messages(screen))


async def test_the_filters_offer_the_known_and_the_seen_values(app):
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_logs(pilot, entry=False)
        app.engine.note("info", "custom", "a category only a component raises")
        await settle(pilot)

        def options(name: str) -> list[str]:
            return [str(prompt) for prompt, _ in screen.query_one(f"#{name}", Select)._options]

        assert options("level") == ["all levels", "≥ info", "≥ warning", "≥ error", "critical"]
        categories = options("category")
        assert categories[0] == "all categories" and {"fill", "entry", "custom", "operator"} <= set(categories)
        assert options("strategy") == ["all strategies", "alpha", "beta"]
        assert options("symbol") == ["all symbols", "ACME", "BTCUSDT", "ETHUSDT"]


async def test_search_filters_as_you_type_and_escape_or_enter_return_to_the_table(app):
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_logs(pilot)
        engine = app.engine
        search = screen.query_one("#search", Input)
        await pilot.press("slash")
        assert app.focused is search
        await pilot.press(*"BETA")
        await pilot.pause(logs.SEARCH_DELAY_S * 2)  # typing paused: the search applies
        await settle(pilot)
        assert app.focused is search  # still typing
        assert messages(screen) == expected(engine, EventQuery(text="beta")) == [
            "beta risk check passed", "beta drawdown near its limit"]
        assert state(screen).endswith('matching "BETA"')

        await pilot.press("escape")
        assert app.focused is screen.table
        assert search.value == "BETA"  # the search stays

        await pilot.press("slash", *" drawdown", "enter")  # enter applies at once
        await settle(pilot)
        assert app.focused is screen.table
        assert messages(screen) == ["beta drawdown near its limit"]

        await pilot.press("r")
        await settle(pilot)
        assert search.value == "" and messages(screen) == expected(engine)


async def test_events_raised_after_a_filter_are_added_when_they_match(app):
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_logs(pilot)
        await choose(pilot, "l", "error")
        before = messages(screen)
        app.engine.note("info", "operator", "not an error: filtered out")
        app.engine.note("error", "order", "beta order rejected")
        await settle(pilot)
        assert messages(screen) == before + ["beta order rejected"]
        assert screen.table.cursor_row == screen.table.row_count - 1  # following


# == following =================================================================================


async def test_the_table_follows_new_events_until_the_operator_moves_up_and_end_follows_again(app):
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_logs(pilot)
        engine, table = app.engine, screen.table
        engine.note("info", "operator", "newest one")
        await settle(pilot)
        assert highlighted(screen) == engine.events[-1].id
        assert state(screen).startswith("following · ")

        await pilot.press("up", "up")
        reading = highlighted(screen)
        row = table.cursor_row
        assert state(screen).startswith("paused: end to follow · ")
        for n in range(3):
            engine.note("info", "operator", f"while paused {n}")
        await settle(pilot)
        assert messages(screen)[-3:] == ["while paused 0", "while paused 1", "while paused 2"]
        assert highlighted(screen) == reading and table.cursor_row == row  # the operator stays put

        await pilot.press("end")
        await settle(pilot)
        assert highlighted(screen) == engine.events[-1].id
        assert state(screen).startswith("following · ")
        engine.note("info", "operator", "after end")
        await settle(pilot)
        assert messages(screen)[-1] == "after end" and highlighted(screen) == engine.events[-1].id

        await pilot.press("up", "down")  # back on the newest row by hand: following again
        assert state(screen).startswith("following · ")


# == history beyond memory ===================================================================


async def test_moving_to_the_top_pages_older_events_in_from_the_database_down_to_the_first(app):
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_history(pilot, 1200)
        engine, table = app.engine, screen.table
        in_memory = list(engine.events)
        assert table.row_count == len(in_memory) == 500  # the snapshot: what the engine holds
        total = in_memory[-1].id

        gate = asyncio.Event()
        find_events = engine.find_events

        async def held(*args, **kwargs):  # the database answers when the test says
            await gate.wait()
            return await find_events(*args, **kwargs)

        engine.find_events = held
        await pilot.press("home")
        oldest = int(table.selected_key)
        assert oldest == in_memory[0].id and table.cursor_row == 0
        assert "loading older events…" in state(screen)
        assert state(screen).startswith("paused: end to follow")
        gate.set()
        await settle(pilot)
        assert table.row_count == 1000
        assert int(table.selected_key) == oldest  # the cursor stays on its event...
        assert table.scroll_y == table.cursor_row  # ...at the top of the view, where it was
        assert "beginning of history" not in state(screen)

        gate.clear()
        while table.cursor_row:  # page up to the top: the rest, fewer than a page
            await pilot.press("pageup")
        assert "loading older events…" in state(screen)
        gate.set()
        await settle(pilot)
        assert table.row_count == total
        assert int(table.selected_key) == total - 999  # the top row when it was asked for
        assert [int(k) for k in screen.rows] == list(range(1, total + 1))
        assert "beginning of history" in state(screen)

        await pilot.press("home")  # the very first event; nothing older to ask for
        await settle(pilot)
        assert int(table.selected_key) == 1 and table.row_count == total
        assert messages(screen)[0].startswith("engine started")

        await pilot.press("end")
        await settle(pilot)
        assert int(table.selected_key) == total


async def test_paging_beyond_the_rows_held_drops_the_newest_and_end_loads_them_again(app, monkeypatch):
    monkeypatch.setattr(logs, "MAX_ROWS", 800)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_history(pilot, 1200)
        engine = app.engine
        total = engine.events[-1].id
        await pilot.press("home")
        await settle(pilot)
        assert [int(k) for k in screen.rows] == list(range(total - 999, total - 199))  # the oldest 800
        assert state(screen).startswith("newer events not loaded: end loads them · 800 events")

        engine.note("info", "operator", "newest while reading history")
        await settle(pilot)
        assert len(screen.rows) == 800  # the newest are not held: nothing to append to

        await pilot.press("end")
        await settle(pilot)
        assert len(screen.rows) == 500 and messages(screen)[-1] == "newest while reading history"
        assert highlighted(screen) == engine.events[-1].id
        assert state(screen).startswith("following · 500 events")


async def test_following_beyond_the_rows_held_drops_the_oldest(app, monkeypatch):
    monkeypatch.setattr(logs, "MAX_ROWS", 520)
    monkeypatch.setattr(logs, "DROP", 100)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_history(pilot, 600)
        engine = app.engine
        for n in range(30):
            engine.note("info", "operator", f"new {n}")
        await settle(pilot)
        newest = [e.id for e in engine.events]
        assert [int(k) for k in screen.rows] == newest[-420:]  # 530 held: 110 dropped, to 100 under the cap
        assert highlighted(screen) == newest[-1] and state(screen).startswith("following · 420 events")


async def test_a_filter_finds_its_events_in_the_database_and_pages_back_with_it(app):
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_history(pilot, 1200, lambda n: "warning" if n % 2 == 0 else "info")
        await choose(pilot, "l", "warn")
        warnings = [f"history {n:04d}" for n in range(0, 1200, 2)]
        assert messages(screen) == warnings[-500:]  # most of them only in the database
        assert "beginning of history" not in state(screen)
        await pilot.press("home")
        await settle(pilot)
        assert messages(screen) == warnings
        assert "beginning of history" in state(screen)


# == alerts ====================================================================================


async def test_a_acknowledges_the_highlighted_alert_and_A_all_and_they_stay_read_after_a_restart(tmp_path):
    app = make_app(None, make_engine(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_logs(pilot, entry=False)
        engine = app.engine
        strip, box = screen.strip, screen.query_one("#alerts-box")
        alerts = [e for e in engine.events if e.needs_ack]
        assert box.display and box.border_title == "Unread alerts 2 · a acknowledge · A all"
        assert column(strip, "Message") == ["database write failed (disk full)", "beta drawdown near its limit"]
        assert "alerts 2" in status_text(app)
        marks = dict(zip(messages(screen), column(screen.table, "")))
        assert marks["beta drawdown near its limit"] == logs.UNREAD and marks["shift handover: all quiet"] == ""

        await pilot.press("tab")  # from the events to the strip (the first in line)
        assert app.focused is strip
        await pilot.press("down", "a")  # the strip's highlighted alert: the older one
        await settle(pilot)
        assert column(strip, "Message") == ["database write failed (disk full)"]
        assert box.border_title.startswith("Unread alerts 1 ·")
        assert "alerts 1" in status_text(app)
        marks = dict(zip(messages(screen), column(screen.table, "")))
        assert marks["beta drawdown near its limit"] == logs.READ
        assert marks["database write failed (disk full)"] == logs.UNREAD
        assert notified(app, f"alert #{alerts[0].id} acknowledged")

        await pilot.press("A")
        await settle(pilot)
        assert not box.display and "alerts 0" in status_text(app)
        assert set(column(screen.table, "")) == {"", logs.READ}
        assert app.focused is screen.table  # the strip went away with its focus

        await pilot.press("a")  # nothing left to acknowledge: said so
        assert notified(app, "No unread alert to acknowledge")

    reopened = make_engine(tmp_path, FakeClock(T0 + 60))
    reopened.open()
    try:
        assert reopened.unread_alerts == 0 and reopened.snapshot().alerts == ()
        stored = reopened.store.read_events(EventQuery(), limit=1000)
        assert {e.id: e.acked_at is not None for e in stored if e.needs_ack} == {e.id: True for e in alerts}
    finally:
        reopened.store.close()


async def test_a_on_an_unread_alert_in_the_table_acknowledges_that_one_else_the_newest(app):
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_logs(pilot, entry=False)
        engine = app.engine
        drawdown, disk = [e.id for e in engine.events if e.needs_ack]
        rows = messages(screen)
        await pilot.press(*["up"] * (len(rows) - 1 - rows.index("beta drawdown near its limit")))
        assert highlighted(screen) == drawdown
        await pilot.press("a")
        await settle(pilot)
        assert [e.id for e in engine.snapshot().alerts] == [disk]

        await pilot.press("end", "a")  # the newest event is not an alert: the newest unread one
        await settle(pilot)
        assert engine.unread_alerts == 0


# == details and export =====================================================================


async def test_enter_shows_the_event_in_full_with_its_payload(app):
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_logs(pilot, entry=False)
        app.engine.note("error", "order", "alpha order rejected: insufficient margin", strategy_id="alpha",
                        payload={"order": 7, "reason": {"code": "margin", "needed": 1250.5}})
        await settle(pilot)
        await pilot.press("enter")
        detail = app.screen
        assert isinstance(detail, EventDetailScreen)
        payload = str(detail.query_one("#payload", Static).content)
        assert payload == json.dumps({"order": 7, "reason": {"code": "margin", "needed": 1250.5}}, indent=2,
                                     sort_keys=True)
        fields = [" ".join(line.split()) for line in text_of(detail.query_one("#fields", Static)).splitlines()]
        assert fields[:8] == ["Time 2026-01-01 00:00:02.000 UTC", "Level ERROR", "Category order",
                              "Strategy alpha", "Symbol —", "Position —", "Alert no",
                              "Message alpha order rejected: insufficient margin"]
        await pilot.press("escape")
        assert app.screen is screen


async def test_ctrl_e_exports_exactly_the_filtered_events_to_the_default_path(app):
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_logs(pilot)
        await choose(pilot, "l", "warn")
        await pilot.press("ctrl+e")
        dialog = app.screen
        assert isinstance(dialog, ExportDialog)
        path = app.export_dir / "events-20260101-000002.csv"  # the engine clock, UTC
        assert dialog.query_one("#path", Input).value == str(path)
        assert str(dialog.query_one("#what", Static).content) == \
            "Export every event in the history matching level ≥ warning."
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is screen
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        wanted = [e for e in app.engine.events if EventQuery(min_level="warning").matches(e)]
        assert [int(r["id"]) for r in rows] == [e.id for e in wanted]
        assert [r["message"] for r in rows] == messages(screen)
        assert [r["alert"] for r in rows] == ["yes" if e.needs_ack else "" for e in wanted]
        assert notified(app, f"{len(wanted)} event(s) written to {path}")


async def test_an_export_the_engine_refuses_keeps_the_dialog_open_with_its_reason(app):
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_logs(pilot, entry=False)
        await pilot.press("ctrl+e", "enter")
        await settle(pilot)
        written = app.export_dir / "events-20260101-000002.csv"
        assert written.exists()

        await pilot.press("ctrl+e", "enter")  # the same second: the same default name
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ExportDialog)
        assert dialog.error == f"✗ {written} already exists: choose another name"
        box = dialog.query_one("#path", Input)
        assert box.value == str(written) and app.focused is box

        box.value = str(app.export_dir / "events.txt")
        await pilot.press("enter")
        await settle(pilot)
        assert dialog.error == "✗ events.txt: end the file name with .csv or .jsonl"

        box.value = "events.jsonl"  # a bare name goes to the exports folder
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is screen
        lines = (app.export_dir / "events.jsonl").read_text().splitlines()
        assert [json.loads(line)["message"] for line in lines] == expected(app.engine)

        await pilot.press("ctrl+e", "escape")
        assert app.screen is screen


# == how it looks ============================================================================


async def _alerts_of_each_level(pilot: Pilot) -> None:
    await open_logs(pilot)
    await pilot.press("tab", "a", "shift+tab")  # one alert read, one unread; back on the events
    pilot.app.clear_notifications()
    await settle(pilot)


def test_snapshot_logs(snap_compare, tmp_path):
    app = make_app(None, make_engine(tmp_path))
    assert snap_compare(app, terminal_size=SIZE, run_before=_alerts_of_each_level)


async def _three_long_alerts(pilot: Pilot) -> None:
    await advance(pilot, 1)
    raise_notes(pilot.app.engine, long_alerts(3))
    await advance(pilot, 1)
    await pilot.press("6")
    pilot.app.clear_notifications()
    await settle(pilot)


def test_snapshot_logs_at_80x24_shows_three_long_alerts_in_the_strip(snap_compare, tmp_path):
    app = make_app(None, make_engine(tmp_path))
    assert snap_compare(app, terminal_size=(80, 24), run_before=_three_long_alerts)


async def test_at_80x24_the_strip_the_filters_and_the_search_fit(app):
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_logs(pilot)
        strip = screen.query_one("#alerts-box")
        assert strip.display and strip.region.height >= 3  # its title and both alerts
        for name in ("level", "category", "strategy", "symbol", "search"):
            region = screen.query_one(f"#{name}").region
            assert region.width >= 10 and region.right <= 80 and region.height == 1, (name, region)
        assert screen.table.region.height >= 8  # the header and at least 7 events
        await pilot.press("slash", *"quiet", "enter")
        await settle(pilot)
        assert messages(screen) == ["shift handover: all quiet"]


def long_alerts(count: int) -> list[tuple]:
    """Alerts wider than the strip at 120 columns: they must not make it scroll sideways."""
    return [("error", "order", f"alert {n}: alpha order rejected by the broker: insufficient margin "
             "(needed 1,250.50, available 980.00) for 10 BTCUSDT", "alpha", True) for n in range(count)]


def screen_lines(app: TraderApp) -> list[str]:
    return [strip.text for strip in app.screen._compositor.render_strips()]


@pytest.mark.parametrize("size, count, shown", [((80, 24), 1, 1), ((80, 24), 3, 3), ((80, 24), 5, 3),
                                                ((120, 40), 1, 1), ((120, 40), 4, 4)])
async def test_the_strip_shows_every_unread_alert_up_to_its_size(app, size, count, shown):
    async with app.run_test(size=size) as pilot:
        await advance(pilot, 1)
        raise_notes(app.engine, long_alerts(count))
        await advance(pilot, 1)
        await pilot.press("6")
        await settle(pilot)
        strip = pilot.app.screen.strip
        assert not strip.show_horizontal_scrollbar  # it would cover the last row
        assert strip.scrollable_content_region.height == shown
        top = strip.scrollable_content_region.y
        on_screen = screen_lines(app)[top:top + shown]
        assert [line.split("alert ")[1][:1] for line in on_screen] == [str(n) for n in range(count)][::-1][:shown]
        assert strip.show_vertical_scrollbar == (count > shown)  # the rest scroll


async def test_the_palette_acknowledges_every_alert_and_opens_the_export_from_any_screen(app):
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, 1)
        app.engine.note("error", "order", "an order was rejected", needs_ack=True)
        app.engine.note("warning", "feed", "ACME quotes arrive late", needs_ack=True)
        app.render_now()
        palette = {c.title: c for c in app.get_system_commands(app.screen)}
        palette["Acknowledge all alerts (2 unread)"].callback()
        await pilot.pause()
        assert app.engine.snapshot().unread_alerts == 0
        assert "Acknowledge all alerts (" not in " ".join(c.title for c in app.get_system_commands(app.screen))
        await pilot.press("3")
        palette["Export events"].callback()
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, ExportDialog)
        assert isinstance(app.screen_stack[-2], LogsScreen)
