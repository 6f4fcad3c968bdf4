"""The Exits screen (4), the exit timeline: every armed trigger of each position with its
distance (the closest first), the portfolio P&L rules with theirs, the history of the
highlighted position's levels and exit, and `x` / `e` on the highlighted position.

The engine runs on a fake clock with the scripted feed of test_tui_entry: each symbol's
bid/ask stay where the test puts them, so every level, P&L and distance is known."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static

from screens.exits import ExitsScreen
from screens.widgets.exit_triggers import CLOSED_SHOWN_S, closed_key
from screens.widgets import ConfirmScreen, EditLevelsScreen, KeyedTable, LiveStatic
from services.clock import FakeClock
from services.config import TradingConfig
from services.engine import Engine
from tests.conftest import T0
from tests.test_tui import SIZE, text_of
from tests.test_tui_entry import BOOK, advance, make_engine
from tui_trader.app import TraderApp, make_app


def exits_config() -> TradingConfig:
    return TradingConfig.model_validate({
        "engine": {"max_open_positions": 10},
        "paper": {"slippage_bps": 0, "maker_fee_bps": 0, "taker_fee_bps": 0},
        "book": {"stop": 500, "daily_loss_limit": 800},
        "symbols": {sym: {"start_price": (bid + ask) / 2, "tick_interval_s": 1, "tick_size": 0.01}
                    for sym, (bid, ask) in BOOK.items()},
        "strategies": {
            # long 10 BTCUSDT filled at the ask 101: stop 98.98, target 104.03, a time exit
            "trend": {"symbols": ["BTCUSDT"], "side": "buy", "sizing": {"fixed_qty": 10}, "stop_loss": "2%",
                      "target": "3%", "time_exit_s": 600, "cooldown_s": 3600,
                      "pnl": {"stop": 50, "trail_activation": 10, "trail_distance": 5}},
            # short 2 ETHUSDT filled at the bid 49: stop 51.45, a trailing stop armed at entry
            "fade": {"symbols": ["ETHUSDT"], "side": "sell", "sizing": {"fixed_qty": 2}, "stop_loss": "5%",
                     "trail_distance": "1%", "cooldown_s": 3600},
            # a basket: ACME then XYZ, one position of two legs
            "pair": {"symbols": ["ACME", "XYZ"], "side": "buy", "basket": True, "sizing": {"fixed_qty": 10},
                     "stop_loss": "5%", "cooldown_s": 3600},
        },
    })


@pytest.fixture
def engine(tmp_path: Path, clock: FakeClock) -> Engine:
    return make_engine(tmp_path, clock, exits_config())


@pytest.fixture
def app(engine: Engine) -> TraderApp:
    return make_app(None, engine)


async def open_exits(pilot: Pilot) -> ExitsScreen:
    """Every position in (the basket's second leg needs a quote after the first), screen 4."""
    await advance(pilot, 3)
    await pilot.press("4")
    screen = pilot.app.screen
    assert isinstance(screen, ExitsScreen)
    return screen


def gid(engine: Engine, strategy: str) -> int:
    return next(g.id for g in engine.groups.values() if g.strategy_id == strategy)


def gid_closed(engine: Engine, strategy: str) -> int:
    return next(t.group_id for t in engine.snapshot().trades if t.strategy_id == strategy)


def row(table: KeyedTable, key: str) -> dict[str, str]:
    labels = [c.label.plain for c in table.ordered_columns]
    return dict(zip(labels, (c.plain for c in table.get_row(key))))


def rows_of(table: KeyedTable, group_id: int) -> list[dict[str, str]]:
    keys = sorted((k.value for k in table.rows if k.value.startswith(f"{group_id}:")), key=table.get_row_index)
    return [row(table, k) for k in keys]


def history(screen: ExitsScreen) -> str:
    return " ".join(text_of(screen.query_one("#history-text", LiveStatic)).split())


async def select(pilot: Pilot, screen: ExitsScreen, group_id: int) -> None:
    """Move the cursor with the keyboard to the position's first row."""
    table = screen.table
    target = table.get_row_index(f"{group_id}:0:0")
    await pilot.press(*(["down"] * (target - table.cursor_row) if target > table.cursor_row
                        else ["up"] * (table.cursor_row - target)))
    assert table.selected_key == f"{group_id}:0:0"


# == triggers ================================================================================


async def test_each_position_lists_its_triggers_closest_first_and_marks_the_closest(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_exits(pilot)
        table = screen.table
        trend = rows_of(table, gid(engine, "trend"))
        assert [r["Trigger"] for r in trend] == ["▸ stop loss", "  target", "  time exit"]
        assert trend[0] == {"#": str(gid(engine, "trend")), "Strategy": "trend", "Symbol": "BTCUSDT",
                                 "Side": "long", "Trigger": "▸ stop loss", "Level": "98.98", "Distance": "1.02",
                                 "Dist %": "1.02%"}
        assert (trend[1]["#"], trend[1]["Symbol"], trend[1]["Level"], trend[1]["Distance"]) == ("", "", "104.03", "4.03")
        assert trend[2]["Level"] == "00:10:00" and trend[2]["Distance"] == "9m57s left"

        fade = rows_of(table, gid(engine, "fade"))  # short: the trailing stop (1% over the trough 50) is closest
        assert [r["Trigger"] for r in fade] == ["▸ trailing stop", "  stop loss"]
        assert (fade[0]["Side"], fade[0]["Level"], fade[0]["Distance"]) == ("short", "50.50", "0.50")

        pair = rows_of(table, gid(engine, "pair"))  # one group, two legs: the group named once
        assert [(r["#"], r["Symbol"], r["Trigger"]) for r in pair] == [
            (str(gid(engine, "pair")), "ACME", "▸ stop loss"), ("", "XYZ", "▸ stop loss")]

        # the mark moves near the target: it becomes the closest, and the time left counts down
        engine.feed.book["BTCUSDT"] = (103.5, 104.5)
        await advance(pilot, 2)
        trend = rows_of(table, gid(engine, "trend"))
        assert [r["Trigger"] for r in trend] == ["▸ target", "  stop loss", "  time exit"]
        assert trend[0]["Distance"] == "0.03" and trend[2]["Distance"] == "9m55s left"


async def test_the_history_shows_the_planned_exit_and_what_happened_to_the_levels(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_exits(pilot)
        text = history(screen)  # the cursor starts on trend's position
        assert f"#{gid(engine, 'trend')} trend BTCUSDT" in str(screen.query_one("#history").border_title)
        assert "long 10 BTCUSDT @ 101.00, mark 100.00" in text
        assert "planned exit 00:10:00 UTC (in 9m57s)" in text
        assert "opened long 10 BTCUSDT @ 101.00" in text

        await select(pilot, screen, gid(engine, "fade"))
        text = history(screen)
        assert "trailing 1% armed: level 50.50, peak 50.00" in text
        assert "trailing stop armed at entry on ETHUSDT at 50.50" in text
        engine.feed.book["ETHUSDT"] = (47.5, 48.5)  # the trough goes down to 48: the trailing level follows
        await advance(pilot)
        text = history(screen)
        assert "trailing level 50.50 -> 48.48" in text
        assert "level 48.48, peak 48.00, last change 00:00:04" in text
        fade = rows_of(screen.table, gid(engine, "fade"))
        assert (fade[0]["Level"], fade[0]["Distance"], fade[0]["Dist %"]) == ("48.48", "0.48", "1.00%")


# == edits and exits from this screen ========================================================


async def test_e_moves_the_stop_and_the_screen_shows_the_new_level_and_old_to_new(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_exits(pilot)
        trend_id = gid(engine, "trend")
        await pilot.press("e")
        form = app.screen
        assert isinstance(form, EditLevelsScreen) and form.position.group_id == trend_id
        form.query_one("#stop-input", Input).value = "99.50"
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen
        assert engine.groups[trend_id].legs[0].stop == 99.50
        stop = next(r for r in rows_of(screen.table, trend_id) if r["Trigger"].endswith("stop loss"))
        assert (stop["Level"], stop["Distance"], stop["Dist %"]) == ("99.50", "0.50", "0.50%")
        assert "stop 98.98 -> 99.50" in history(screen)

        # an edit from elsewhere (the shell, the engine) shows too: the target, newest first
        assert engine.edit_levels(trend_id, target=103.0).ok
        await advance(pilot)
        target = next(r for r in rows_of(screen.table, trend_id) if r["Trigger"].endswith("target"))
        assert target["Level"] == "103.00"
        text = history(screen)
        assert text.index("target 104.03 -> 103.00") < text.index("stop 98.98 -> 99.50")

        # a level that goes or comes adds or removes its row
        def kinds() -> list[str]:
            return [r["Trigger"].lstrip("▸ ") for r in rows_of(screen.table, trend_id)]

        assert engine.edit_levels(trend_id, target=None).ok
        await advance(pilot)
        assert kinds() == ["stop loss", "time exit"]
        assert engine.edit_levels(trend_id, trail_distance="1%").ok  # armed at once, 1% under the mark
        await advance(pilot)
        assert kinds() == ["stop loss", "trailing stop", "time exit"]


async def test_x_exits_the_highlighted_position_after_confirmation_and_shows_its_exit(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_exits(pilot)
        fade_id = gid(engine, "fade")
        await select(pilot, screen, fade_id)
        await pilot.press("x")
        assert isinstance(app.screen, ConfirmScreen)
        assert f"Exit #{fade_id}" in text_of(app.screen.query_one("#question", Static))
        await pilot.press("n")
        assert app.screen is screen and fade_id in engine.groups

        await pilot.press("x", "y")  # a short exits at the ask, 51.00
        await pilot.pause()
        assert app.screen is screen
        assert fade_id not in engine.groups and gid(engine, "trend") in engine.groups  # only the highlighted one
        assert rows_of(screen.table, fade_id) == [{
            "#": str(fade_id), "Strategy": "fade", "Symbol": "ETHUSDT", "Side": "closed", "Trigger": "manual",
            "Level": "51.00", "Distance": "P&L -4.00", "Dist %": ""}]
        assert screen.table.selected_key == closed_key(fade_id)  # still on it
        text = history(screen)
        assert "closed 00:00:03 at 51.00 (manual) · short 2 ETHUSDT @ 49.00 · P&L -4.00" in text
        assert f"closed #{fade_id} ETHUSDT (manual) at 51.00" in text

        await pilot.press("x")  # a closed position cannot be exited again: said so, nothing opens
        assert app.screen is screen
        assert any("already closed" in n.message for n in app._notifications)


async def test_a_stop_hit_shows_its_reason_and_price_for_a_while(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_exits(pilot)
        trend_id = gid(engine, "trend")
        await pilot.press("down")  # on its second trigger, a row that goes when it closes
        assert screen.table.selected_key == f"{trend_id}:0:1"
        engine.feed.book["BTCUSDT"] = (98.0, 98.5)  # the mark 98.25 is through the stop 98.98
        await advance(pilot)
        assert screen.table.selected_key == closed_key(trend_id)  # the cursor stays on the position
        assert rows_of(screen.table, trend_id) == [{
            "#": str(trend_id), "Strategy": "trend", "Symbol": "BTCUSDT", "Side": "closed", "Trigger": "stop loss",
            "Level": "98.00", "Distance": "P&L -30.00", "Dist %": ""}]
        text = history(screen)
        assert f"exit #{trend_id} BTCUSDT: stop_loss at 98.25" in text
        assert "closed 00:00:04 at 98.00 (stop loss)" in text

        await advance(pilot, int(CLOSED_SHOWN_S) + 1)  # after a while it leaves the table
        assert rows_of(screen.table, trend_id) == []


async def test_open_positions_come_first_and_the_recently_closed_below_them_at_80x24(tmp_path, clock):
    data = exits_config().model_dump()
    fade = data["strategies"]["fade"]
    data["strategies"].update({f"quick{n}": fade for n in range(6)})  # more positions to close
    engine = make_engine(tmp_path, clock, TradingConfig.model_validate(data))
    app = make_app(None, engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await advance(pilot, 3)
        still_open = max(engine.groups)  # the newest: the closed ones have smaller ids
        closed = sorted(g for g in engine.groups if g != still_open)
        assert len(closed) == 8
        for group_id in closed:
            assert engine.exit_position(group_id).ok
        await advance(pilot)
        await pilot.press("4")
        app.render_now()
        await pilot.pause()
        table = app.screen.table
        order = [table.coordinate_to_cell_key((i, 0)).row_key.value for i in range(table.row_count)]
        assert order[0] == f"{still_open}:0:0" and table.cursor_row == 0
        live = len(order) - len(closed)
        assert order[live:] == [closed_key(g) for g in closed]  # then the closed ones
        assert table.scroll_y == 0 and table.scrollable_content_region.height > live  # header + live rows
        assert row(table, f"{still_open}:0:0")["Trigger"].startswith("▸ ")


async def test_a_position_whose_exit_is_pending_shows_it_instead_of_its_triggers(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_exits(pilot)
        trend_id = gid(engine, "trend")
        await engine.feed.stop()
        await advance(pilot, 10)  # stale: the exit waits for a fresh quote
        assert engine.exit_position(trend_id).ok
        await advance(pilot)
        assert [(r["Side"], r["Trigger"], r["Level"]) for r in rows_of(screen.table, trend_id)] == [
            ("long", "exiting: manual", "")]
        assert "EXITING (manual)" in history(screen)


# == portfolio rules =========================================================================


async def test_portfolio_rules_show_their_level_pnl_and_distance_and_why_entries_are_blocked(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_exits(pilot)
        rules = screen.query_one("#rules", KeyedTable)
        # book P&L: trend -10 (10 @ 101, mark 100), fade -2 (2 @ 49, mark 50), pair -2 (10 ACME, 10 XYZ)
        assert row(rules, "book:pnl_stop") == {"Scope": "book", "Rule": "P&L stop", "P&L level": "-500.00",
                                               "P&L": "-14.00", "Distance": "486.00", "State": "armed"}
        assert row(rules, "book:daily_loss_limit")["Distance"] == "786.00"
        assert row(rules, "book:daily_loss_limit")["Scope"] == ""  # the scope named once
        assert row(rules, "trend:pnl_stop") == {"Scope": "trend", "Rule": "P&L stop", "P&L level": "-50.00",
                                                     "P&L": "-10.00", "Distance": "40.00", "State": "armed"}
        assert row(rules, "trend:pnl_trailing")["State"] == "arms at P&L +10.00"
        assert row(rules, "trend:pnl_trailing")["P&L level"] == "—"

        engine.feed.book["BTCUSDT"] = (103.0, 105.0)  # trend +30: its P&L trailing stop arms 5 below
        await advance(pilot)
        trailing = row(rules, "trend:pnl_trailing")
        assert (trailing["P&L level"], trailing["P&L"], trailing["Distance"], trailing["State"]) == (
            "+25.00", "+30.00", "5.00", "armed, peak +30.00")

        engine.feed.book["BTCUSDT"] = (101.5, 102.5)  # +10: it fires, trend exits and is blocked
        await advance(pilot)
        assert row(rules, "trend:pnl_trailing")["State"].startswith("fired 00:00:05")
        note = " ".join(text_of(screen.query_one("#rules-note", LiveStatic)).split())
        assert note.startswith("Entries blocked:") and "trend" in note
        closed = rows_of(screen.table, gid_closed(engine, "trend"))
        assert closed[0]["Side"] == "closed" and closed[0]["Trigger"] == "P&L trailing stop"


# == snapshots ===============================================================================


async def _timeline(pilot: Pilot) -> None:
    app, engine = pilot.app, pilot.app.engine
    await advance(pilot, 3)
    engine.exit_position(gid(engine, "fade"))
    engine.edit_levels(gid(engine, "trend"), stop=99.5)
    engine.feed.book["BTCUSDT"] = (99.6, 100.6)
    await advance(pilot, 2)
    await pilot.press("4")
    app.render_now()
    app.clear_notifications()
    await pilot.pause()


def test_snapshot_exits(snap_compare, tmp_path):
    app = make_app(None, make_engine(tmp_path, FakeClock(T0), exits_config()))
    assert snap_compare(app, terminal_size=SIZE, run_before=_timeline)


def test_snapshot_exits_at_80x24(snap_compare, tmp_path):
    app = make_app(None, make_engine(tmp_path, FakeClock(T0), exits_config()))
    assert snap_compare(app, terminal_size=(80, 24), run_before=_timeline)
