"""Strategy removal protection in the TUI: at start the operator is told about open positions
of strategies removed from (or disabled in) the settings, and chooses per strategy."""

from __future__ import annotations

from pathlib import Path

from services.clock import FakeClock
from services.engine import Engine
from tui_trader.wiring import build_engine
from services.market import Quote
from services.store import SqlStore
from screens.widgets.orphans import OrphansScreen
from tests.conftest import T0, config
from tests.test_tui import SIZE
from tui_trader.app import make_app

BEFORE = {
    "gone": {"symbols": ["BTCUSDT"], "side": "buy", "sizing": {"fixed_qty": 1}, "stop_loss": "5%"},
    "off": {"symbols": ["ETHUSDT"], "side": "buy", "sizing": {"fixed_qty": 1}},
}
AFTER = {"off": {**BEFORE["off"], "enabled": False}}


def leave_positions(db: str) -> None:
    clock = FakeClock(T0)
    engine = build_engine(config(**BEFORE), clock, SqlStore(db))
    engine.open()
    for symbol, px in (("BTCUSDT", 100.0), ("ETHUSDT", 50.0)):
        clock.advance(1)
        engine.on_quote(Quote(symbol, clock.now(), px, px, 0.0))
    assert len(engine.groups) == 2
    engine.store.close()


def restarted_without_them(tmp_path: Path) -> Engine:
    db = f"sqlite:///{tmp_path}/t.db"
    leave_positions(db)
    return build_engine(config(**AFTER), FakeClock(T0 + 10), SqlStore(db))


async def test_the_operator_keeps_one_strategy_and_closes_the_other(tmp_path: Path):
    engine = restarted_without_them(tmp_path)
    app = make_app(None, engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, OrphansScreen) and screen.orphan.strategy_id == "gone"
        assert "removed from the settings, but it still holds #1 BTCUSDT" in screen.query_one("#question").content
        await pilot.press("k")
        await pilot.pause()
        assert isinstance(app.screen, OrphansScreen) and app.screen.orphan.strategy_id == "off"
        await pilot.press("c")
        await pilot.pause()
        assert not isinstance(app.screen, OrphansScreen)
        orphans = {o.strategy_id: o.decided for o in engine.snapshot().orphans}
        assert orphans.get("gone") == "keep"
        assert all(g.strategy_id == "gone" or g.pending_exit for g in engine.groups.values())


async def test_escape_leaves_them_managed_asks_about_the_next_and_then_no_more(tmp_path: Path):
    engine = restarted_without_them(tmp_path)
    app = make_app(None, engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, OrphansScreen)
        await pilot.press("escape")  # later for "gone": on to "off"
        await pilot.pause()
        assert isinstance(app.screen, OrphansScreen) and app.screen.orphan.strategy_id == "off"
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, OrphansScreen)
        assert len(engine.groups) == 2 and not any(g.pending_exit for g in engine.groups.values())


async def test_the_status_bar_says_when_the_book_blocks_entries(tmp_path: Path):
    from tests.test_tui import status_text

    cfg = config(trend={"symbols": ["BTCUSDT"], "side": "buy", "sizing": {"fixed_qty": 1}})
    cfg = cfg.model_copy(update={"book": type(cfg.book).model_validate({"daily_loss_limit": 1})})
    engine = build_engine(cfg, FakeClock(T0), SqlStore(f"sqlite:///{tmp_path}/t.db"))
    app = make_app(None, engine)
    async with app.run_test(size=SIZE) as pilot:
        engine.on_quote(Quote("BTCUSDT", engine.clock.now(), 100.0, 100.0, 0.0))
        assert "ENTRIES BLOCKED" not in status_text(app)
        engine.on_quote(Quote("BTCUSDT", engine.clock.now(), 98.0, 98.0, 0.0))  # day P&L -2 <= -1
        app.render_now()
        await pilot.pause()
        assert "ENTRIES BLOCKED" in status_text(app)
        assert any("daily loss limit of the book reached" in n.message for n in app._notifications)
