"""The simulated market continues where it was left at a restart (DESIGN §4), and its path is
new at every run unless feed.seed is set."""

from __future__ import annotations

import pytest

from services.clock import FakeClock
from services.config import TradingConfig
from services.engine import Engine
from tui_trader.wiring import build_engine
from services.adapters.simulated.feed import SimulatedFeed
from services.market import mark_of
from services.store.sql import SqlStore
from tests.conftest import T0, config


def walk(engine: Engine, clock: FakeClock, seconds: int) -> None:
    for _ in range(seconds):
        clock.advance(1.0)
        for q in engine.feed.step():
            engine.on_quote(q)
        engine.tick()


def unseeded() -> TradingConfig:
    cfg = config()
    return cfg.model_copy(update={"feed": cfg.feed.model_copy(update={"seed": None})})


async def test_a_restart_continues_from_the_last_stored_prices_not_the_start_price(tmp_path):
    url = f"sqlite:///{tmp_path}/t.db"
    clock = FakeClock(T0)
    first = build_engine(config(), clock, SqlStore(url))
    first.open()
    walk(first, clock, 600)  # volatility 2.0: ten minutes take the price well away from 100
    left = {sym: mark_of(q) for sym, q in first.book.quotes.items()}
    assert abs(left["BTCUSDT"] - 100.0) > 0.5
    await first.stop()

    clock.advance(5.0)
    again = build_engine(config(), clock, SqlStore(url))
    again.open()
    first_quotes = {q.symbol: mark_of(q) for q in again.feed.step()}
    for sym, price in left.items():
        assert first_quotes[sym] == pytest.approx(price, rel=0.005), sym  # one tick away, not back at the start
    again.store.close()


def test_the_path_differs_between_runs_unless_seeded():
    cfg = unseeded()

    def first_prices(c: TradingConfig) -> list[float]:
        feed = SimulatedFeed(c.symbols, FakeClock(T0), c.feed.seed)
        return [q.last for _ in range(5) for q in [feed.next_quote("BTCUSDT")]]

    assert first_prices(cfg) != first_prices(cfg)
    assert first_prices(config()) == first_prices(config())  # tests and the demo's snapshots set the seed


def test_an_unknown_or_bad_stored_price_is_ignored():
    cfg = config()
    feed = SimulatedFeed(cfg.symbols, FakeClock(T0), 7)
    feed.continue_from({"NOPE": 5.0, "BTCUSDT": float("nan"), "ETHUSDT": 61.5, "ACME": 0.0})
    assert feed._price == {"BTCUSDT": 100.0, "ETHUSDT": 61.5, "ACME": 20.0}
