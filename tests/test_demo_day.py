"""The demo's settings (settings.toml) keep it trading through a whole day: its strategies pay
spread and fees on a random market, and the book's daily loss limit is sized so that they
don't block the book for the rest of the day within minutes (issue 12)."""

from __future__ import annotations

from services.clock import FakeClock
from tui_trader.wiring import build_engine
from services.adapters.simulated.feed import SimulatedFeed
from services.store import MemoryStore
from tests.conftest import T0
from tui_trader.locations import PROJECT_SETTINGS
from tui_trader.settings import load_settings


def test_the_demo_trades_all_day_without_hitting_the_daily_loss_limit():
    settings = load_settings(PROJECT_SETTINGS)
    clock = FakeClock(T0)
    engine = build_engine(settings, clock, MemoryStore(), feed=SimulatedFeed(settings.symbols, clock, seed=3))
    engine.open()
    step = 0.5  # the demo's fastest symbols quote every half second
    for _ in range(int((24 * 3600 - 60) / step)):  # up to a minute before the session starts over
        clock.advance(step)
        for q in engine.feed.step():
            engine.on_quote(q)
        engine.tick()
        assert not engine.book_scope.blocked(clock.now()), f"blocked after {(clock.now() - T0) / 3600:.1f} h"
    realized = engine.realized_today
    assert set(realized) >= {"trend", "fade", "breakout"}  # all of them traded
    assert sum(realized.values()) > -settings.book.daily_loss_limit * 0.8
