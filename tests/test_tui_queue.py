"""The Queue screen (5): the execution pool and the signals waiting for a slot, next first,
with their depth through the signal price, replacements, time in queue and rank reason;
`enter` promotes, `d` removes and `f` force-adds the highlighted signal.

A pool of one slot, held by `hold` on ACME; the other strategies are manual, so their
signals (engine.enter_now with a price and a timeframe) queue. The scripted feed of
test_tui_entry keeps the marks where the book puts them: BTCUSDT 100, ETHUSDT 50."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from screens.queue import QueueScreen
from screens.widgets import ConfirmScreen, KeyedTable, LiveStatic
from services.clock import FakeClock
from services.config import TradingConfig
from services.engine import Engine
from tests.conftest import T0
from tests.test_tui import SIZE, column, table_rows, text_of
from tests.test_tui_entry import BOOK, advance, make_engine
from tui_trader.app import TraderApp, make_app


def manual(symbol: str, side: str = "buy", qty: float = 1) -> dict:
    return {"symbols": [symbol], "side": side, "entry": "manual", "sizing": {"fixed_qty": qty}}


def queue_config() -> TradingConfig:
    return TradingConfig.model_validate({
        "engine": {"max_open_positions": 1, "queue_ttl_s": 900},
        "paper": {"slippage_bps": 0, "maker_fee_bps": 0, "taker_fee_bps": 0},
        "symbols": {sym: {"start_price": (bid + ask) / 2, "tick_interval_s": 1, "tick_size": 0.01}
                    for sym, (bid, ask) in BOOK.items()},
        "strategies": {
            "hold": manual("ACME", qty=10),
            "alpha": manual("BTCUSDT"),
            "beta": manual("ETHUSDT", qty=2),
            "gamma": manual("BTCUSDT", "sell"),
        },
    })


@pytest.fixture
def engine(tmp_path: Path, clock: FakeClock) -> Engine:
    return make_engine(tmp_path, clock, queue_config())


@pytest.fixture
def app(engine: Engine) -> TraderApp:
    return make_app(None, engine)


async def fill_the_pool(pilot: Pilot) -> None:
    await advance(pilot, 1)  # quotes for every symbol
    assert pilot.app.engine.enter_now("hold").ok
    assert [g.strategy_id for g in pilot.app.engine.groups.values()] == ["hold"]


async def queue_three(pilot: Pilot) -> QueueScreen:
    """alpha: a buy at 101, the price 1 % through it; beta: a buy at 50, right at it, queued a
    minute later and replaced once; gamma: a sell at 102, the price 2 % short of it. Screen 5."""
    engine = pilot.app.engine
    await fill_the_pool(pilot)
    assert engine.enter_now("alpha", price=101.0, timeframe="1h").ok
    await advance(pilot, 60)
    assert engine.enter_now("beta", price=50.0, timeframe="1h").ok
    await advance(pilot, 5)
    assert engine.enter_now("beta", price=50.0, timeframe="1h").ok  # a replacement
    assert engine.enter_now("gamma", price=102.0, timeframe="4h").ok
    await pilot.press("5")
    await advance(pilot, 1)
    screen = pilot.app.screen
    assert isinstance(screen, QueueScreen)
    return screen


def queued_id(engine: Engine, strategy: str) -> int:
    return next(v.id for v in engine.snapshot().queue if v.strategy_id == strategy)


def detail(screen: QueueScreen) -> str:
    return " ".join(text_of(screen.query_one("#detail", LiveStatic)).split())


def question(app: TraderApp) -> str:
    return " ".join(text_of(app.screen.query_one("#question", Static)).split())


# == what the screen shows ===================================================================


async def test_queued_signals_show_in_rank_order_with_depth_replacements_times_and_reason(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        screen = await queue_three(pilot)
        table = screen.table
        assert column(table, "Rank") == ["1", "2", "3"]
        assert column(table, "Strategy") == ["alpha", "beta", "gamma"]
        assert column(table, "TF") == ["1h", "1h", "4h"]
        assert column(table, "Side") == ["long", "long", "short"]
        assert column(table, "Signal") == ["101.00", "50.00", "102.00"]
        assert column(table, "Now") == ["100.00", "50.00", "100.00"]
        assert column(table, "Depth") == ["+0.99%", "+0.00%", "-1.96%"]
        assert column(table, "Repl.") == ["0", "1", "0"]
        assert column(table, "Queued") == ["1m06s", "6s", "1s"]
        assert column(table, "Expires") == ["in 13m54s", "in 14m59s", "in 14m59s"]
        assert column(table, "Why this rank")[0] == "+0.99% through its price"
        depth = table.get_row(str(queued_id(engine, "alpha")))[7]
        assert depth.style == "green"  # through the signal's price: coloured; short of it: not
        assert table.get_row(str(queued_id(engine, "gamma")))[7].style == ""

        pool = text_of(screen.query_one("#pool", LiveStatic))
        assert "1/1 slots used · 0 free  FULL · 3 signals waiting" in pool
        assert detail(screen) == (
            f"Signal #{queued_id(engine, 'alpha')} alpha BTCUSDT 1h long · rank 1 of 3: +0.99% through its price · "
            "signal 101.00 · now 100.00 · depth +0.99% · replaced 0 times · queued 1m06s ago · expires in 13m54s")

        await advance(pilot, 2)  # the times tick with the clock
        assert column(table, "Queued")[0] == "1m08s"
        await pilot.press("down")
        assert detail(screen).startswith(f"Signal #{queued_id(engine, 'beta')} beta ETHUSDT 1h long · rank 2 of 3")
        assert "replaced 1 time ·" in detail(screen)


async def test_an_empty_queue_says_what_it_is_for(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await fill_the_pool(pilot)
        await pilot.press("5")
        await advance(pilot, 1)
        screen = app.screen
        assert isinstance(screen, QueueScreen)
        assert not screen.table.display and not screen.query_one("#detail").display
        empty = " ".join(text_of(screen.query_one("#queue-empty", Static)).split())
        assert empty.startswith("No signal is queued. Signals that find the pool full wait here, ranked: "
                                "promoted by the operator first, then pyramids of open groups, then the deepest")
        assert "They expire after 15m00s (engine.queue_ttl_s)" in empty

        await pilot.press("d")  # nothing to act on: said so, nothing opens
        assert app.screen is screen
        assert any(n.message == "No queued signal highlighted" for n in app._notifications)

        engine.enter_now("alpha", price=100.0)  # a signal arrives: the table replaces the text
        await advance(pilot, 1)
        assert screen.table.display and not screen.query_one("#queue-empty").display
        assert column(screen.table, "Strategy") == ["alpha"]
        assert column(screen.table, "TF") == ["—"]
        assert screen.table.has_focus


# == operator actions ========================================================================


async def test_enter_promotes_the_highlighted_signal_to_the_front(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        screen = await queue_three(pilot)
        gamma = queued_id(engine, "gamma")
        await pilot.press("down", "down", "enter")
        await pilot.pause()
        assert column(screen.table, "Strategy") == ["gamma", "alpha", "beta"]
        assert column(screen.table, "Rank") == ["▲1", "2", "3"]
        assert column(screen.table, "Why this rank")[0] == "promoted by the operator"
        assert screen.table.selected_key == str(gamma)  # the cursor went with it
        assert any(f"#{gamma} BTCUSDT is first in line" in n.message for n in app._notifications)

        await pilot.press("enter")  # already promoted: refused with the reason
        assert any(f"#{gamma} is already promoted" in n.message for n in app._notifications)

        await pilot.press("f", "y")  # the promoted signal is the one that enters, not the deepest
        await pilot.pause()
        assert sorted(g.strategy_id for g in engine.groups.values()) == ["gamma", "hold"]


async def test_d_removes_the_highlighted_signal_after_confirmation(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        screen = await queue_three(pilot)
        beta = queued_id(engine, "beta")
        await pilot.press("down", "d")
        assert isinstance(app.screen, ConfirmScreen)
        assert question(app) == (f"Remove queued signal #{beta} beta ETHUSDT 1h long, signal 50.00 from the "
                                 "queue? It will not be entered.")
        await pilot.press("n")
        assert app.screen is screen
        assert column(screen.table, "Strategy") == ["alpha", "beta", "gamma"]

        await pilot.press("d", "y")
        await pilot.pause()
        assert app.screen is screen
        assert column(screen.table, "Strategy") == ["alpha", "gamma"]
        assert [v.strategy_id for v in engine.snapshot().queue] == ["alpha", "gamma"]
        assert any(f"removed queued signal #{beta}" in n.message for n in app._notifications)
        assert "2 signals waiting" in text_of(screen.query_one("#pool", LiveStatic))


async def test_f_force_adds_the_highlighted_signal_beyond_the_pool_after_confirmation(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        screen = await queue_three(pilot)
        alpha = queued_id(engine, "alpha")
        await pilot.press("f")
        assert isinstance(app.screen, ConfirmScreen)
        assert question(app) == (f"The pool is full (1/1 slots used). Enter #{alpha} alpha BTCUSDT 1h long, "
                                 "signal 101.00 now at market? This opens position 2 of a pool of 1.")
        await pilot.press("n")
        assert app.screen is screen and len(engine.groups) == 1

        await pilot.press("f", "y")
        await pilot.pause()
        assert app.screen is screen
        assert sorted(g.strategy_id for g in engine.groups.values()) == ["alpha", "hold"]
        assert column(screen.table, "Strategy") == ["beta", "gamma"]
        assert column(screen.table, "Rank") == ["1", "2"]
        assert "2/1 slots used · 0 free  FULL · 2 signals waiting" in text_of(screen.query_one("#pool", LiveStatic))


async def test_strategy_entries_on_hold_stay_listed_below_the_queue(tmp_path, clock):
    cfg = queue_config().model_dump()
    cfg["strategies"] = {"eager": {**manual("BTCUSDT"), "entry": "immediate"},  # takes the only slot
                         "late": {**manual("ACME"), "entry": "immediate"}}  # finds the pool full
    app = make_app(None, make_engine(tmp_path, clock, TradingConfig.model_validate(cfg)))
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, 2)
        await pilot.press("5")
        await advance(pilot, 1)
        screen = app.screen
        waiting = screen.query_one("#waiting", KeyedTable)
        assert waiting.display and not screen.query_one("#waiting-empty").display
        assert table_rows(waiting) == [["late", "ACME", "pool full (1/1)"]]
        assert waiting.size.height == 2  # its header and its row on screen
        assert not screen.table.display  # and no signal is queued


async def test_the_command_palette_offers_the_queue_actions_for_each_signal(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await queue_three(pilot)
        beta = queued_id(engine, "beta")
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        assert {f"Promote queued signal #{beta} beta ETHUSDT", f"Remove queued signal #{beta} beta ETHUSDT",
                f"Force-add queued signal #{beta} beta ETHUSDT"} <= commands.keys()
        commands[f"Promote queued signal #{beta} beta ETHUSDT"].callback()
        assert engine.snapshot().queue[0].id == beta
        commands[f"Force-add queued signal #{beta} beta ETHUSDT"].callback()
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)  # confirmed like the key
        await pilot.press("y")
        await pilot.pause()
        assert sorted(g.strategy_id for g in engine.groups.values()) == ["beta", "hold"]


# == snapshots ===============================================================================


async def _queued_and_promoted(pilot: Pilot) -> None:
    """Three queued signals of different depth, one replaced, the last one promoted."""
    await queue_three(pilot)
    pilot.app.engine.promote_signal(queued_id(pilot.app.engine, "gamma"))
    await advance(pilot, 1)
    pilot.app.clear_notifications()
    await pilot.pause()


def test_snapshot_queue(snap_compare, tmp_path):
    app = make_app(None, make_engine(tmp_path, FakeClock(T0), queue_config()))
    assert snap_compare(app, terminal_size=SIZE, run_before=_queued_and_promoted)


def test_snapshot_queue_at_80x24(snap_compare, tmp_path):
    app = make_app(None, make_engine(tmp_path, FakeClock(T0), queue_config()))
    assert snap_compare(app, terminal_size=(80, 24), run_before=_queued_and_promoted)
