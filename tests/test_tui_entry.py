"""Scheduled entries in the TUI: the Schedule screen's countdowns and strategy details (the
configuration and the risk preview), the Entry screen's attempt timelines (re-prices, the
market fallback, slippage), and flashes for held and failed entries.

The engine runs on a fake clock with a scripted feed: each symbol's bid/ask stay where the
test puts them and are quoted every second of the fake clock, so limits rest, re-price and
fill exactly when the test says."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from screens.entry import EntryScreen
from screens.schedule import ScheduleScreen
from screens.widgets import LiveStatic, StrategyDetailsScreen
from services.clock import FakeClock
from services.config import TradingConfig
from services.engine import Engine
from tui_trader.wiring import build_engine
from services.adapters.simulated.feed import SimulatedFeed
from services.market import Quote
from services.store import SqlStore
from tests.conftest import T0
from tests.test_tui import SIZE, column, text_of
from tui_trader.app import TraderApp, make_app

BOOK = {"BTCUSDT": (99.0, 101.0), "ETHUSDT": (49.0, 51.0), "ACME": (19.9, 20.1), "XYZ": (9.9, 10.1)}

WINDOW = {"entry_times": ["00:00"], "entry_window_end": "00:30", "timezone": "UTC", "exit_after_s": 600}


def scheduled(symbol: str, **kw) -> dict:
    base = {"symbols": [symbol], "side": "buy", "entry": "scheduled", "schedule": WINDOW,
            "sizing": {"fixed_qty": 1}, "stop_loss": "1%", "target": "2%",
            "execution": {"order_type": "limit", "max_retries": 2, "retry_delay_s": 4}}
    base.update(kw)
    return base


def scheduled_config() -> TradingConfig:
    return TradingConfig.model_validate({
        "engine": {"max_open_positions": 10},
        "paper": {"slippage_bps": 0, "maker_fee_bps": 0, "taker_fee_bps": 0},
        "symbols": {sym: {"start_price": (bid + ask) / 2, "tick_interval_s": 1, "tick_size": 0.01,
                          "lot_step": 0.01 if sym == "ETHUSDT" else None, "min_notional": 5}
                    for sym, (bid, ask) in BOOK.items()},
        "strategies": {
            # limit at the mid, re-priced twice toward the touch; the test then lets it fill
            "breakout": scheduled("BTCUSDT", allocation=1000),
            # one re-price, then the market fallback
            "fallback": scheduled("ETHUSDT", sizing={"fixed_qty": 2},
                                  execution={"order_type": "limit", "max_retries": 1, "retry_delay_s": 4}),
            # no re-price and no fallback: the entry fails
            "strict": scheduled("XYZ", sizing={"fixed_qty": 10},
                                execution={"order_type": "limit", "max_retries": 0, "retry_delay_s": 4,
                                           "market_fallback": False}),
            # more than its allocation: held
            "big": scheduled("ACME", sizing={"fixed_value": 5000}, allocation=1000),
            # its window opens at 01:05 Paris time (00:05 UTC): a countdown
            "later": scheduled("ACME", side="sell", sizing={"fixed_qty": 5}, allocation=500,
                               schedule={"entry_times": ["01:05"], "entry_window_end": "01:30",
                                         "timezone": "Europe/Paris", "exit_time": "02:00"}),
        },
    })


class ScriptedFeed(SimulatedFeed):
    """The simulated feed's timing (a quote per symbol per tick of the fake clock) with the
    prices the test sets in `book`."""

    def __init__(self, cfg: TradingConfig, clock: FakeClock) -> None:
        super().__init__(cfg.symbols, clock, cfg.feed.seed)
        self.book = dict(BOOK)

    def next_quote(self, symbol: str) -> Quote:
        bid, ask = self.book[symbol]
        q = Quote(symbol, self.clock.now(), bid, ask, round((bid + ask) / 2, 8))
        self.health.last_event_at = q.ts
        return q


def make_engine(tmp_path: Path, clock: FakeClock, cfg: TradingConfig | None = None) -> Engine:
    cfg = cfg or scheduled_config()
    return build_engine(cfg, clock, SqlStore(f"sqlite:///{tmp_path}/t.db"), feed=ScriptedFeed(cfg, clock))


@pytest.fixture
def engine(tmp_path: Path, clock: FakeClock) -> Engine:
    return make_engine(tmp_path, clock)


@pytest.fixture
def app(engine: Engine) -> TraderApp:
    return make_app(None, engine)


async def advance(pilot: Pilot, seconds: int = 1) -> None:
    """Move the fake clock a second at a time (the feed quotes and the engine ticks on
    each), then render."""
    clock = pilot.app.engine.clock
    for _ in range(seconds):
        clock.advance(1)
        await pilot.pause()
    pilot.app.render_now()
    await pilot.pause()


async def reprice_and_fill(pilot: Pilot) -> None:
    """breakout: limit 100.00, re-price 1 at 100.33, re-price 2 at 100.66, then the ask comes
    down to 100.60 and it fills at its limit. fallback: limit 50.00, re-price 50.50, market
    fallback at the ask 51.00. strict: fails at its first deadline."""
    await advance(pilot, 8)
    pilot.app.engine.feed.book["BTCUSDT"] = (100.0, 100.6)
    await advance(pilot, 1)


def row_of(table: DataTable, key: str) -> dict[str, object]:
    labels = [c.label.plain for c in table.ordered_columns]
    return dict(zip(labels, table.get_row(key)))


# == Schedule ================================================================================


async def test_the_schedule_counts_down_to_the_next_entry_as_the_clock_moves(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.render_now()
        await pilot.pause()
        table = app.screen.query_one("#strategies", DataTable)
        assert column(table, "Strategy") == ["breakout", "fallback", "strict", "big", "later"]
        later = column(table, "Strategy").index("later")
        assert column(table, "Next entry")[later] == "in 5m00s"
        assert column(table, "Used/alloc.")[later] == "— / 500"
        assert column(table, "Next entry")[column(table, "Strategy").index("big")] == "now"  # due, but held

        await advance(pilot, 3)
        assert column(table, "Next entry")[later] == "in 4m57s"
        await advance(pilot, 60)
        assert column(table, "Next entry")[later] == "in 3m57s"

        # the heartbeat alone (no new snapshot published) keeps the countdown moving
        engine.clock.advance(2)
        app._last_snapshot_at = 0.0
        app._heartbeat()
        await pilot.pause()
        assert column(table, "Next entry")[later] == "in 3m55s"

        # breakout is in: its planned exit counts down, its funds are used
        breakout = column(table, "Strategy").index("breakout")
        assert column(table, "Status")[breakout] == "live"
        assert column(table, "Planned exit")[breakout].startswith("in 9m")
        assert column(table, "Used/alloc.")[breakout] == "101 / 1,000"  # filled by the fallback
        assert column(table, "Stop / target")[breakout] == "SL 1%, TP 2%"

        await pilot.press(*["down"] * later)
        detail = " ".join(text_of(app.screen.query_one("#detail", LiveStatic)).split())
        assert "next entry 01:05:00 CET (in 3m55s)" in detail


async def test_enter_opens_the_strategy_details_with_its_configuration_and_risk_preview(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, 1)
        table = app.screen.query_one("#strategies", DataTable)
        await pilot.press(*["down"] * column(table, "Strategy").index("later"))
        await pilot.press("enter")
        assert isinstance(app.screen, StrategyDetailsScreen)
        details = app.screen
        config = text_of(details.query_one("#config", Static))
        for part in ("entry_times", "01:05", "entry_window_end", "01:30", "timezone", "Europe/Paris",
                     "exit_time", "02:00", "weekdays", "mon, tue, wed, thu, fri, sat, sun", "order_type", "limit",
                     "max_retries", "stop_loss", "1%", "allocation", "500"):
            assert part in config, part
        assert "schedule" in config and "execution" in config and "sizing" in config

        risk = text_of(details.query_one("#risk", Static))
        header = risk.splitlines()[0]
        for name in ("Symbol", "Qty", "Price", "Notional", "Loss at stop", "Reward at target", "Note"):
            assert name in header, name
        acme = next(line for line in risk.splitlines() if line.strip().startswith("ACME"))
        assert acme.split()[:6] == ["ACME", "5", "20.00", "100.00", "-1.00", "+2.00"]
        assert acme.split()[6] == "ok"

        await pilot.press("escape")
        assert isinstance(app.screen, ScheduleScreen)

        await pilot.press("up", "enter")  # big: the preview says why it would not go
        assert isinstance(app.screen, StrategyDetailsScreen)
        risk = text_of(app.screen.query_one("#risk", Static))
        assert "insufficient funds" in risk
        await pilot.press("enter")
        assert isinstance(app.screen, ScheduleScreen)


async def test_enter_now_confirms_with_how_the_entry_is_worked(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, 1)
        table = app.screen.query_one("#strategies", DataTable)
        await pilot.press(*["down"] * column(table, "Strategy").index("later"), "n")
        question = text_of(app.screen.query_one("#question", Static))
        assert "Enter later now: short ACME with a limit (2 re-prices, then at market)?" in " ".join(question.split())
        await pilot.press("n")


# == Entry ===================================================================================


async def test_the_entry_screen_shows_each_attempt_how_the_entry_filled_and_the_slippage(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, 1)
        await pilot.press("2")
        assert isinstance(app.screen, EntryScreen)
        table = app.screen.query_one("#entries", DataTable)
        assert column(table, "Attempt") == ["limit", "limit", "limit"]
        assert column(table, "Result") == ["working", "working", "working"]
        assert "3 entries · 3 working" in app.screen.query_one("#entries-box").border_subtitle

        await reprice_and_fill(pilot)
        orders = {(o.strategy_id, o.retry_count): o for o in engine.snapshot().orders}
        assert column(table, "Strategy") == ["breakout", "", "", "fallback", "", "", "strict"]
        assert column(table, "Attempt") == [
            "limit", "↳ re-price 1", "↳ limit after 2 re-prices",
            "limit", "↳ re-price 1", "↳ market fallback",
            "limit",
        ]
        assert column(table, "Price") == ["100.00", "100.33", "100.66", "50.00", "50.50", "51.00", "10.00"]
        assert column(table, "Result") == ["cancelled", "cancelled", "filled", "cancelled", "cancelled", "filled",
                                           "cancelled"]
        assert column(table, "Slip") == ["", "", "+0.66", "", "", "+1.00", ""]
        assert column(table, "bp") == ["", "", "+66.0bp", "", "", "+200.0bp", ""]
        assert column(table, "Ref") == ["100.00"] * 3 + ["50.00"] * 3 + ["10.00"]
        assert column(table, "Reason")[:2] == ["not filled in time: re-priced"] * 2
        assert column(table, "Reason")[6] == "not filled in time: no market fallback: the entry failed"

        # re-prices in the warning colour, the fallback in the error colour
        theme = app.current_theme
        reprice = row_of(table, str(orders["breakout", 2].id))["Attempt"]
        fallback = row_of(table, str(orders["fallback", 2].id))["Attempt"]
        first = row_of(table, str(orders["breakout", 0].id))["Attempt"]
        assert (reprice.text, reprice.style) == ("↳ limit after 2 re-prices", theme.warning)
        assert (fallback.text, fallback.style) == ("↳ market fallback", f"bold {theme.error}")
        assert first.style == ""

        # the selected entry in full: the instrument, every attempt, the outcome
        table.move_cursor(row=2)
        await pilot.pause()
        detail = text_of(app.screen.query_one("#entry-detail", LiveStatic))
        detail = " ".join(detail.split())
        assert "#1 breakout: long 1 BTCUSDT" in detail
        assert "BTCUSDT: tick 0.01, lot none, min notional 5.00" in detail
        assert "3 attempts: 100.00 → 100.33 → 100.66" in detail
        assert "filled at 100.66 by limit after 2 re-prices, slippage +0.66 (+66.0bp)" in detail
        table.move_cursor(row=6)
        await pilot.pause()
        detail = " ".join(text_of(app.screen.query_one("#entry-detail", LiveStatic)).split())
        assert "#3 strict: long 10 XYZ" in detail and "1 attempt: 10.00" in detail
        assert "failed: not filled in time: no market fallback: the entry failed" in detail


async def test_a_basket_entry_shows_its_legs_one_after_the_other(tmp_path, clock):
    base = scheduled_config().model_dump()
    base["strategies"] = {"pair": {"symbols": ["BTCUSDT", "ETHUSDT"], "side": "buy", "entry": "manual", "basket": True,
                                   "sizing": {"fixed_qty": 1},
                                   "execution": {"order_type": "limit", "max_retries": 1, "retry_delay_s": 4}}}
    engine = make_engine(tmp_path, clock, TradingConfig.model_validate(base))
    app = make_app(None, engine)
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, 1)
        assert engine.enter_now("pair").ok
        engine.feed.book["BTCUSDT"] = (99.0, 100.0)  # the first leg's limit at 100.00 fills
        await advance(pilot, 1)
        await pilot.press("2")
        table = app.screen.query_one("#entries", DataTable)
        assert column(table, "Strategy") == ["pair", ""]
        assert column(table, "Symbol") == ["BTCUSDT", "ETHUSDT"]  # each leg opens its rows
        assert column(table, "Attempt") == ["limit", "limit"]
        assert column(table, "Result") == ["filled", "working"]
        await advance(pilot, 4)
        assert column(table, "Symbol") == ["BTCUSDT", "ETHUSDT", ""]
        assert column(table, "Attempt") == ["limit", "limit", "↳ re-price 1"]
        detail = " ".join(text_of(app.screen.query_one("#entry-detail", LiveStatic)).split())
        assert detail.startswith("#1 pair: basket, working, 1 of 2 legs in | leg 1: long 1 BTCUSDT")
        assert "leg 2: long 1 ETHUSDT · ETHUSDT: tick 0.01, lot 0.01, min notional 5.00" in detail
        assert "working: re-price 1 at 50.50" in detail
        assert "1 entry · 1 working" in app.screen.query_one("#entries-box").border_subtitle


# == flashes =================================================================================


async def test_a_held_entry_and_a_failed_entry_are_flashed(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.render_now()
        await pilot.pause()
        held = [n for n in app._notifications if "big: entry on ACME held: insufficient funds" in n.message]
        assert [n.severity for n in held] == ["warning"]

        # the failure comes while this window's flashes are used up: it waits, it is not lost
        assert len(app._flashed_at) == 3
        await advance(pilot, 4)
        failed = "strict: entry #3 XYZ failed: not filled after 0 re-price(s) and the market fallback is off"
        assert any(e.message == failed for e in engine.snapshot().events)
        assert not any(n.message == failed for n in app._notifications)
        app._flashed_at = [t - app.NOTIFICATION_TIMEOUT for t in app._flashed_at]  # the window passes
        app.render_now()
        await pilot.pause()
        assert [n.severity for n in app._notifications if n.message == failed] == ["error"]


async def test_an_entry_fill_is_flashed(app, engine):
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, 8)
        app._flashed_at.clear()
        app.render_now()  # what waited for a free flash goes now
        app._flashed_at.clear()
        app.clear_notifications()
        engine.feed.book["BTCUSDT"] = (100.0, 100.6)
        await advance(pilot, 1)
        messages = [n.message for n in app._notifications]
        assert any(m.startswith("breakout: entered buy 1 BTCUSDT at 100.66") for m in messages), messages


# == snapshots ===============================================================================


def _details_of(strategy: str):
    async def run_before(pilot: Pilot) -> None:
        app = pilot.app
        await advance(pilot, 1)
        table = app.screen.query_one("#strategies", DataTable)
        await pilot.press(*["down"] * column(table, "Strategy").index(strategy), "enter")
        app.clear_notifications()
        await pilot.pause()

    return run_before


def test_snapshot_strategy_details(snap_compare, tmp_path):
    app = make_app(None, make_engine(tmp_path, FakeClock(T0)))
    assert snap_compare(app, terminal_size=SIZE, run_before=_details_of("later"))


def test_snapshot_strategy_details_at_80x24(snap_compare, tmp_path):
    app = make_app(None, make_engine(tmp_path, FakeClock(T0)))
    assert snap_compare(app, terminal_size=(80, 24), run_before=_details_of("breakout"))


async def _entries_repriced(pilot: Pilot) -> None:
    app = pilot.app
    await reprice_and_fill(pilot)
    await pilot.press("2")
    app.screen.query_one("#entries", DataTable).move_cursor(row=2)
    app.render_now()
    app.clear_notifications()
    await pilot.pause()


def test_snapshot_entry_with_reprices_and_a_fallback(snap_compare, tmp_path):
    app = make_app(None, make_engine(tmp_path, FakeClock(T0)))
    assert snap_compare(app, terminal_size=SIZE, run_before=_entries_repriced)


def test_snapshot_schedule_with_countdowns_at_80x24(snap_compare, tmp_path):
    async def run_before(pilot: Pilot) -> None:
        await reprice_and_fill(pilot)
        pilot.app.clear_notifications()
        await pilot.pause()

    app = make_app(None, make_engine(tmp_path, FakeClock(T0)))
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
