"""The edit-levels modal beyond the basics in test_tui.py: the live preview, the trailing
activation and the time exit, an edit that would exit at once asking first, keys typed
right after Tab, and the form following the engine while open (the mark, the position
exiting or closing)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from textual import events
from textual.pilot import Pilot
from textual.widgets import Input, Static

from screens.widgets import ConfirmScreen, EditLevelsScreen
from services.level_input import parse_time_exit
from services.clock import FakeClock
from tests.conftest import T0
from tests.test_tui import SIZE, advance, make_engine, open_groups, text_of
from tests.test_tui_positions import book, group_ids, highlight, positions_config, second, trade
from tests.test_tui_positions import make_engine as scripted_engine
from tui_trader.app import make_app

LIMIT_EXIT = {"exit_execution": {"order_type": "limit", "max_retries": 1, "retry_delay_s": 5}}
"""trend's exits rest as a limit at the mid: its position stays EXITING until the price comes."""


@pytest.fixture
def app(tmp_path: Path, clock: FakeClock):
    return make_app(None, make_engine(tmp_path, clock))


async def open_form(pilot: Pilot) -> EditLevelsScreen:
    await advance(pilot)
    await pilot.press("3", "e")  # the cursor is on trend's BTCUSDT long
    assert isinstance(pilot.app.screen, EditLevelsScreen)
    return pilot.app.screen


async def test_the_preview_follows_what_is_typed(app):
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot)
        p = form.position
        form.query_one("#stop-input", Input).value = f"{p.mark - 2:.2f}"
        await pilot.pause()
        shown = text_of(form.query_one("#preview", Static))
        loss = (round(p.mark - 2, 2) - p.entry) * p.qty - p.fees
        assert f"stop {p.mark - 2:,.2f}: 2.00 (" in shown and "away" in shown
        assert f"P&L there {loss:+,.2f}" in shown
        form.query_one("#time-input", Input).value = "+5m"
        await pilot.pause()
        assert "in 5m00s" in text_of(form.query_one("#preview", Static))


async def test_a_time_exit_typed_relative_to_now_is_set_on_the_engine_clock(app):
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot)
        engine = app.engine
        gid = open_groups(engine)["trend"]
        form.query_one("#time-input", Input).value = "+90s"
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, EditLevelsScreen)
        assert engine.groups[gid].legs[0].time_exit_at == engine.clock.now() + 90


async def test_a_bad_time_is_refused_next_to_its_field(app):
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot)
        form.query_one("#time-input", Input).value = "soon"
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is form
        assert "not a time" in form.errors()["time"]


async def test_an_edit_that_would_exit_at_once_asks_then_exits(app):
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot)
        engine = app.engine
        gid = open_groups(engine)["trend"]
        form.query_one("#time-input", Input).value = "+0s"  # due now: the time exit would act at once
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen) and "would exit at once (time" in app.screen.question
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is form and gid in engine.groups  # nothing applied
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert not isinstance(app.screen, (EditLevelsScreen, ConfirmScreen))
        assert engine.trades[-1].group_id == gid and engine.trades[-1].exit_reason == "time"


async def type_at_once(pilot: Pilot, *keys: str) -> None:
    """Keys as a fast typist or a paste sends them: all read before the first is handled.
    (Pilot.press waits for the app to go idle after each key, which hides ordering bugs.)"""
    for key in keys:
        event = events.Key(key, "\t" if key == "tab" else key)
        event.set_sender(pilot.app)
        pilot.app._driver.send_message(event)
    await pilot.pause()


async def test_keys_typed_right_after_tab_go_to_the_next_field(app):
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot)
        stop, target = form.query_one("#stop-input", Input), form.query_one("#target-input", Input)
        before = stop.value
        await type_at_once(pilot, "tab", "1", "2", "3")
        assert app.focused is target
        assert target.value == "123"  # the prefilled target was selected on focus: typing replaces it
        assert stop.value == before


# == live while open ========================================================================


async def edit_trend(pilot: Pilot) -> EditLevelsScreen:
    """The form opened on trend's position in the scripted book of test_tui_positions (long 1
    BTCUSDT from 100.01, fees 0.05; after trade() the mark is 99.50)."""
    await highlight(pilot, "trend")
    await pilot.press("e")
    assert isinstance(pilot.app.screen, EditLevelsScreen)
    return pilot.app.screen


async def until(pilot: Pilot, shown, text: str) -> str:
    """What `shown()` says once it contains `text` (the form looks at the newest snapshot a
    few times a second), or after a few seconds without it."""
    for _ in range(40):
        if text in shown():
            break
        await pilot.pause(0.1)
    return shown()


def line(form: EditLevelsScreen, widget_id: str) -> str:
    return " ".join(text_of(form.query_one(f"#{widget_id}", Static)).split())


async def test_the_mark_pnl_and_distances_follow_the_quotes_while_the_form_is_open(tmp_path, clock):
    app = make_app(None, scripted_engine(tmp_path, clock))
    async with app.run_test(size=SIZE) as pilot:
        await trade(pilot)
        form = await edit_trend(pilot)
        assert "mark 99.50 · P&L -0.56" in line(form, "summary")
        form.query_one("#stop-input", Input).value = "99.00"
        await pilot.pause()
        assert "stop 99.00: 0.50 (0.50%) away" in line(form, "preview")
        app.engine.feed.book = book(101.0, 50.0)
        await second(pilot)
        assert "mark 101.00 · P&L +0.94" in await until(pilot, lambda: line(form, "summary"), "mark 101.00")
        assert "stop 99.00: 2.00 (1.98%) away" in line(form, "preview")


async def test_the_form_says_when_its_position_exits_then_closes_and_saves_nothing(tmp_path, clock):
    engine = scripted_engine(tmp_path, clock, positions_config(trend=LIMIT_EXIT))
    app = make_app(None, engine)
    async with app.run_test(size=SIZE) as pilot:
        await trade(pilot)
        form = await edit_trend(pilot)
        gid = group_ids(engine)["trend"]
        assert not form.query_one("#state", Static).display
        assert engine.exit_position(gid).ok
        await second(pilot)  # the exit rests as a limit at 99.50
        exiting = f"position #{gid} is exiting (manual) — levels can no longer be edited"
        assert exiting in await until(pilot, lambda: line(form, "state"), "exiting")
        form.query_one("#stop-input", Input).value = "99.00"
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is form and form.errors()["form"] == f"✗ not saved: {exiting}"
        assert engine.groups[gid].legs[0].stop != 99.0
        engine.feed.book = book(100.0, 50.0)  # the bid reaches the limit
        await second(pilot)
        assert gid not in engine.groups
        closed = await until(pilot, lambda: line(form, "state"), "closed")
        assert closed == f"position #{gid} closed (manual at 99.50, P&L -0.56) — levels can no longer be edited"


async def test_a_time_exit_that_has_passed_reads_due_not_a_day_ahead(tmp_path, clock):
    engine = scripted_engine(tmp_path, clock, positions_config(trend=LIMIT_EXIT))
    app = make_app(None, engine)
    async with app.run_test(size=SIZE) as pilot:
        await trade(pilot)
        gid = group_ids(engine)["trend"]
        assert engine.edit_levels(gid, time_exit_at=engine.clock.now() + 1).ok
        await second(pilot)
        await second(pilot)  # the time exit fired a second ago; its limit rests
        assert engine.groups[gid].pending_exit == "time"
        form = await edit_trend(pilot)
        assert line(form, "state") == f"position #{gid} is exiting (time) — levels can no longer be edited"
        at = engine.groups[gid].legs[0].time_exit_at
        assert f"time exit {time.strftime('%H:%M:%S', time.gmtime(at))} UTC, due now" in line(form, "preview")
        assert "23h" not in line(form, "preview")


def test_time_exit_grammar():
    assert parse_time_exit("", T0) is None
    assert parse_time_exit("+1h", T0) == T0 + 3600
    assert parse_time_exit("01:30", T0) == T0 + 5400  # T0 is midnight UTC
    assert parse_time_exit("00:00", T0 + 10) == T0 + 86_400  # the next midnight
    with pytest.raises(ValueError, match="not a time"):
        parse_time_exit("25:00", T0)


def test_snapshot_edit_levels_at_80x24(snap_compare, tmp_path, clock):
    async def run_before(pilot: Pilot) -> None:
        form = await open_form(pilot)
        form.query_one("#stop-input", Input).value = "not a price"
        await pilot.press("enter")
        form.query_one("#target-input", Input).value = f"{form.position.mark + 3:.2f}"
        await pilot.pause()

    assert snap_compare(make_app(None, make_engine(tmp_path, clock)), terminal_size=(80, 24), run_before=run_before)


def test_snapshot_edit_levels_of_an_exiting_position_at_80x24(snap_compare, tmp_path, clock):
    async def run_before(pilot: Pilot) -> None:
        engine = pilot.app.engine
        await trade(pilot)
        pilot.app.clear_notifications()  # the entries' flashes would cover the form
        form = await edit_trend(pilot)
        assert engine.exit_position(group_ids(engine)["trend"]).ok
        await second(pilot)
        await until(pilot, lambda: line(form, "state"), "exiting")
        await pilot.press("enter")  # refused here
        pilot.app.clear_notifications()
        await pilot.pause()

    engine = scripted_engine(tmp_path, clock, positions_config(trend=LIMIT_EXIT))
    assert snap_compare(make_app(None, engine), terminal_size=(80, 24), run_before=run_before)
