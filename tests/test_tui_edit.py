"""The edit-levels modal beyond the basics in test_tui.py: the live preview, the trailing
activation and the time exit, and an edit that would exit at once asking first."""

from __future__ import annotations

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
from tui_trader.app import make_app


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
