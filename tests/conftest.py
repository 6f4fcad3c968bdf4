"""Shared fixtures: a demo-like configuration, a fake clock, and engines on a temp database."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from services.clock import FakeClock
from services.config import TradingConfig
from tui_trader import wiring
from tui_trader.wiring import build_engine
from services.market import Quote
from services.store import MemoryStore, SqlStore

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def config(**strategies) -> TradingConfig:
    """A small configuration; pass strategies as id=dict to replace the default one."""
    return TradingConfig.model_validate({
        "engine": {"max_open_positions": 10},
        "feed": {"seed": 7},
        "paper": {"slippage_bps": 0, "maker_fee_bps": 0, "taker_fee_bps": 0},
        "symbols": {
            "BTCUSDT": {"start_price": 100.0, "volatility": 2.0, "spread_bps": 2, "tick_interval_s": 1},
            "ETHUSDT": {"start_price": 50.0, "volatility": 2.0, "spread_bps": 2, "tick_interval_s": 1},
            "ACME": {"start_price": 20.0, "volatility": 1.0, "spread_bps": 10, "tick_interval_s": 1},
        },
        "strategies": strategies or {
            "trend": {"symbols": ["BTCUSDT"], "side": "buy", "sizing": {"fixed_qty": 1}, "stop_loss": "1%", "target": "2%"},
        },
    })


class Harness:
    """An engine driven by scripted quotes on a fake clock."""

    def __init__(self, cfg: TradingConfig, store=None, clock: FakeClock | None = None, client=None) -> None:
        self.clock = clock or FakeClock(T0)
        self.store = store if store is not None else MemoryStore()
        self.engine = build_engine(cfg, self.clock, self.store, client=client)
        self.engine.open()

    def quote(self, symbol: str, bid: float, ask: float | None = None, last: float = 0.0, dt: float = 1.0):
        """Advance the clock by dt and deliver one fresh quote (ask defaults to bid: mark = bid)."""
        self.clock.advance(dt)
        self.engine.on_quote(Quote(symbol, self.clock.now(), bid, bid if ask is None else ask, last))
        return self.engine

    def position(self, symbol: str | None = None):
        positions = [p for p in self.engine.snapshot().positions if symbol is None or p.symbol == symbol]
        assert len(positions) <= 1, positions
        return positions[0] if positions else None


PAPER_EVENTS = os.environ.get("TUI_TRADER_TEST_PAPER_EVENTS", "")
"""Run every engine the tests build with the paper client answering "immediate" or "async"
(make test-async), whatever its configuration says; empty: as configured."""


@pytest.fixture(autouse=True)
def paper_events(monkeypatch):
    if PAPER_EVENTS:
        monkeypatch.setattr(wiring, "events_mode", lambda config: PAPER_EVENTS)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tui_trader.db'}"


@pytest.fixture
def sql_store(db_url: str):
    store = SqlStore(db_url, flush_interval_s=0.05)
    yield store
    store.close()


# == test kinds: `make test-fast` leaves out the Pilot (TUI) tests and those that start a process ==

PROCESS_NAMES = frozenset({"subprocess", "Popen", "EngineProcess", "create_subprocess_exec"})
"""A test that reaches one of these names (itself, through a helper in the tests, or through a
fixture) starts a process."""
PILOT_NAMES = frozenset({"run_test"})
"""...or drives the TUI with Pilot."""


def _reaches(fn, names: frozenset, seen: set) -> bool:
    fn = getattr(fn, "__wrapped__", fn)  # a contextmanager's or fixture's own function
    code = getattr(fn, "__code__", None)
    if code is None or code in seen:
        return False
    seen.add(code)
    codes = [code] + [c for c in code.co_consts if hasattr(c, "co_names")]  # with nested functions
    if any(set(c.co_names) & names for c in codes):
        return True
    module = sys.modules.get(fn.__module__)
    for name in code.co_names:  # the tests' own helpers and classes it calls
        helper = getattr(module, name, None)
        for callee in (helper, getattr(helper, "__init__", None)):
            if getattr(callee, "__module__", "").startswith("tests") and _reaches(callee, names, seen):
                return True
    return False


def pytest_configure(config):
    config.addinivalue_line("markers", "tui: drives the TUI with Pilot (App.run_test)")
    config.addinivalue_line("markers", "process: starts another process (a real engine, the CLI, a lock holder)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        fns = [item.function, *(defs[-1].func for defs in item._fixtureinfo.name2fixturedefs.values())]
        if item.module.__name__.rpartition(".")[2].startswith("test_tui") or "snap_compare" in item.fixturenames:
            item.add_marker(pytest.mark.tui)
        for names, mark in ((PILOT_NAMES, pytest.mark.tui), (PROCESS_NAMES, pytest.mark.process)):
            if any(_reaches(fn, names, set()) for fn in fns):
                item.add_marker(mark)
