"""Quitting the TUI (issue 6): q and ctrl+c stop the engine cleanly and the status bar says
positions stay open; a second ctrl+c within two seconds forces the exit without losing a
committed write; critical alerts ring the bell (as configured) and flash on their own."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import warnings

import pytest

from screens.positions import PositionsScreen

from services.clock import FakeClock
from services.config import TradingConfig
from tests.conftest import config
from tests.test_tui import SIZE, STRATEGIES, advance, make_engine, open_groups, status_text
from tui_trader.app import make_app
from tui_trader.headless import FORCED_EXIT


def messages(engine) -> list[str]:
    path = engine.store.url[len("sqlite:///"):]
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return [m for (m,) in db.execute("select message from strategy_events order by id")]


def with_bell(bell: str) -> TradingConfig:
    return config(**STRATEGIES).model_copy(update={"alerts": config().alerts.model_copy(update={"bell": bell})})


async def test_ctrl_c_stops_the_engine_says_positions_stay_open_and_exits_0(tmp_path, clock):
    engine = make_engine(tmp_path, clock)
    app = make_app(None, engine)
    release = asyncio.Event()
    stop_feed = engine.feed.stop

    async def slow_feed_stop() -> None:  # the stop takes a moment: the status bar shows it
        await release.wait()
        await stop_feed()

    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot)
        assert open_groups(engine)
        engine.feed.stop = slow_feed_stop
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert engine.state == "stopping"
        app.render_now()
        await pilot.pause()
        bar = status_text(app)
        assert f"STOPPING: {len(engine.groups)} position(s) stay open" in bar
        release.set()
        await pilot.pause(0.2)
    assert engine.state == "stopped" and app.return_code == 0
    assert messages(engine)[-1].startswith(f"engine stopped: {len(engine.groups)} open position(s) stay open")


async def test_a_second_ctrl_c_within_two_seconds_forces_the_exit_keeping_committed_writes(tmp_path, clock):
    engine = make_engine(tmp_path, clock)
    app = make_app(None, engine)

    async def hung_feed_stop() -> None:  # a stop that never finishes by itself
        await asyncio.Event().wait()

    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot)
        held = sorted(open_groups(engine).values())
        engine.feed.stop = hung_feed_stop
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert engine.state == "stopping"
        await pilot.press("ctrl+c")
        await pilot.pause()
    assert app.return_code == FORCED_EXIT and engine.state == "stopped"
    assert messages(engine)[-1].startswith(f"engine stopped by force: {len(held)} open position(s) stay open")
    engine.store.close()  # what the process exit does
    again = make_engine(tmp_path, FakeClock(clock.now()))
    again.open()
    assert sorted(again.groups) == held  # resumed at the next start
    again.store.close()


async def test_two_ctrl_c_at_once_leave_no_coroutine_unawaited(tmp_path, clock):
    """The second ctrl+c can come before the stop's worker has run: nothing may be left that
    prints "coroutine ... was never awaited" into the operator's terminal."""
    engine = make_engine(tmp_path, clock)
    app = make_app(None, engine)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with app.run_test(size=SIZE) as pilot:
            await advance(pilot)
            await app.action_interrupt()
            await app.action_interrupt()  # no pause: the stop's worker has not started yet
        gc.collect()
    assert app.return_code == FORCED_EXIT
    assert [str(w.message) for w in caught if "never awaited" in str(w.message)] == []
    engine.store.close()


async def test_q_twice_does_not_force_the_exit(tmp_path, clock):
    engine = make_engine(tmp_path, clock)
    app = make_app(None, engine)
    release = asyncio.Event()
    stop_feed = engine.feed.stop

    async def slow_feed_stop() -> None:
        await release.wait()
        await stop_feed()

    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot)
        engine.feed.stop = slow_feed_stop
        await pilot.press("q", "q")
        await pilot.pause()
        assert engine.state == "stopping"
        release.set()
        await pilot.pause(0.2)
    assert app.return_code == 0
    assert messages(engine)[-1].startswith("engine stopped: ")


@pytest.mark.parametrize("bell, level, rings", [
    ("critical", "critical", True), ("critical", "error", False), ("all", "error", True), ("off", "critical", False),
])
async def test_alerts_ring_the_bell_as_configured_and_critical_ones_flash_on_their_own(tmp_path, clock, bell, level, rings):
    engine = make_engine(tmp_path, clock, with_bell(bell))
    app = make_app(None, engine)
    bells = []
    app.bell = lambda: bells.append(True)
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot)
        engine.note("info", "test", "not an alert")
        app.render_now()
        assert bells == []
        engine.note(level, "store", "database write failed (disk full)", needs_ack=True)
        app.render_now()
        await pilot.pause()
        assert bells == ([True] if rings else [])
        flashed = [n for n in app._notifications if "disk full" in n.message]
        if level == "critical":
            assert [(n.title, n.severity, n.timeout) for n in flashed] == [("CRITICAL", "error", 30.0)]
        else:
            assert [n.severity for n in flashed] == ["error"]  # the usual flash of an error


async def test_a_bug_in_the_ui_shows_one_line_keeps_the_traceback_in_the_log_and_stops_the_engine(
        tmp_path, clock, caplog, monkeypatch):
    engine = make_engine(tmp_path, clock)
    app = make_app(None, engine)
    printed = []
    monkeypatch.setattr(app, "_print_error_renderables", lambda: printed.extend(app._exit_renderables))

    def broken(screen, snap) -> None:
        raise ZeroDivisionError("division by zero in a screen")

    with pytest.raises(ZeroDivisionError):
        async with app.run_test(size=SIZE) as pilot:
            await advance(pilot)
            monkeypatch.setattr(PositionsScreen, "render_snapshot", broken)
            await pilot.press("3")
            await pilot.pause()
    assert [str(r) for r in printed] == [  # what is printed once the terminal is restored
        f"tui-trader: internal error: division by zero in a screen (details in {app.log_path})"]
    [record] = [r for r in caplog.records if r.message == "internal error in the TUI"]
    assert record.exc_info[0] is ZeroDivisionError  # the traceback goes to the log file
    assert app.return_code == 1 and engine.state == "stopped"
    assert messages(engine)[-1].startswith("engine stopped: ")
