"""A clean stop (issue 6): no entries once stopping, working orders cancelled or kept per
engine.orders_on_stop, every write flushed, a stop event; the forced stop of a second
interrupt; the headless engine stopped by SIGTERM with writes pending (nothing lost)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.clock import FakeClock
from services.config import TradingConfig
from services.engine import KEPT_AT_STOP, Engine
from tui_trader.wiring import build_engine
from services.market import Quote
from services.store import SqlStore
from tests.conftest import T0
from tui_trader import headless


LIMIT = {"order_type": "limit", "max_retries": 1, "retry_delay_s": 5}


def config(orders_on_stop: str = "cancel", **strategy) -> TradingConfig:
    """Strategy s: a manual long limit entry of 1 BTCUSDT, with these settings changed."""
    return TradingConfig.model_validate({
        "engine": {"orders_on_stop": orders_on_stop},
        "paper": {"slippage_bps": 0, "maker_fee_bps": 0, "taker_fee_bps": 0},
        "symbols": {"BTCUSDT": {"start_price": 100, "tick_size": 0.05}, "ETHUSDT": {"start_price": 50, "tick_size": 0.05}},
        "strategies": {"s": {"symbols": ["BTCUSDT"], "side": "buy", "entry": "manual", "sizing": {"fixed_qty": 1},
                             "execution": LIMIT, **strategy}},
    })


def rows(db_url: str, sql: str) -> list[tuple]:
    db = sqlite3.connect(f"file:{db_url[len('sqlite:///'):]}?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def engine_with_a_working_entry(db_url: str, orders_on_stop: str) -> Engine:
    eng = build_engine(config(orders_on_stop), FakeClock(T0), SqlStore(db_url))
    eng.open()
    eng.on_quote(Quote("BTCUSDT", eng.clock.now(), 99.0, 101.0))
    assert eng.enter_now("s").ok  # a limit at 100 rests
    return eng


async def test_a_stop_cancels_working_orders_by_default_and_gives_up_the_entry(db_url):
    eng = engine_with_a_working_entry(db_url, "cancel")
    await eng.stop()
    assert rows(db_url, "select status, reason from orders") == [("cancelled", "engine stopped")]
    assert rows(db_url, "select status, exit_reason from position_groups") == [("closed", "entry_failed")]
    last = json.loads(rows(db_url, "select payload from strategy_events order by id desc limit 1")[0][0])
    assert last == {"open_positions": 0, "orders_kept": 0, "orders_cancelled": 1}


async def test_a_stop_can_keep_working_orders_and_the_entry_goes_on_after_the_restart(db_url):
    eng = engine_with_a_working_entry(db_url, "keep")
    await eng.stop()
    assert rows(db_url, "select status, reason, limit_price from orders") == [("working", KEPT_AT_STOP, 100.0)]
    [(message,)] = rows(db_url, "select message from strategy_events order by id desc limit 1")
    assert message.endswith("; 1 working order(s) kept for the next start")

    again = build_engine(config("keep"), FakeClock(T0 + 60), SqlStore(db_url))
    again.open()
    try:
        assert [g.status for g in again.groups.values()] == ["entering"]  # not given up
        assert any("kept working at the stop" in e.message for e in again.events)
        again.on_quote(Quote("BTCUSDT", again.clock.now(), 99.0, 101.0))
        again.tick()  # placed again on this fresh quote, at the same limit
        assert [(o.limit_price, o.status) for o in again.snapshot().orders][-1] == (100.0, "working")
        again.on_quote(Quote("BTCUSDT", again.clock.now() + 1, 99.5, 100.0))  # the ask reaches the limit
        assert [p.entry for p in again.snapshot().positions] == [100.0]
    finally:
        again.store.close()


GRID = {"sizing": {"fixed_value": 200}, "execution": {"order_type": "market"},
        "dca": {"layers": [{"gap_pct": 0, "weight": 1, "tp_pct": 1}, {"gap_pct": 2, "weight": 1, "tp_pct": 1}]}}


@pytest.mark.parametrize("orders_on_stop, layer_order", [("cancel", "cancelled"), ("keep", "working")])
async def test_a_stop_keeps_a_grid_whose_first_layer_filled_and_its_layer_rests_again_at_the_next_start(
        db_url, orders_on_stop, layer_order):
    eng = build_engine(config(orders_on_stop, **GRID), FakeClock(T0), SqlStore(db_url))
    eng.open()
    eng.on_quote(Quote("BTCUSDT", eng.clock.now(), 100.0, 100.0))
    assert eng.enter_now("s").ok  # layer 1 fills at 100; layer 2 rests at 98
    eng.clock.advance(7)
    await eng.stop()
    assert rows(db_url, "select purpose, method, status from orders order by id") == [
        ("entry", "market", "filled"), ("entry", "dca_layer", layer_order)]  # nothing sold
    assert rows(db_url, "select status from position_groups") == [("open",)]
    assert [e.message for e in eng.events if e.level in ("error", "critical")] == []

    again = build_engine(config(orders_on_stop, **GRID), FakeClock(T0 + 60), SqlStore(db_url))
    again.open()
    try:
        [group] = again.groups.values()
        assert [(lg.status, lg.entry) for lg in group.legs] == [("open", 100.0), ("pending", 98.0)]
        again.on_quote(Quote("BTCUSDT", again.clock.now(), 99.0, 99.0))  # the first fresh quote: the layer rests again
        assert [(o.method, o.limit_price, o.status) for o in again.orders.values()] == [("dca_layer", 98.0, "working")]
        again.on_quote(Quote("BTCUSDT", again.clock.now(), 97.9, 97.9))
        assert [lg.status for lg in group.legs] == ["open", "open"]
    finally:
        again.store.close()


async def test_a_stop_keeps_a_basket_part_way_in_and_its_next_leg_is_entered_at_the_next_start(db_url):
    basket = {"symbols": ["BTCUSDT", "ETHUSDT"], "basket": True}
    eng = build_engine(config("cancel", **basket), FakeClock(T0), SqlStore(db_url))
    eng.open()
    eng.on_quote(Quote("ETHUSDT", eng.clock.now(), 49.0, 51.0))
    eng.on_quote(Quote("BTCUSDT", eng.clock.now(), 99.0, 101.0))
    assert eng.enter_now("s").ok  # a limit at 100 rests
    eng.on_quote(Quote("BTCUSDT", eng.clock.now(), 99.5, 100.0))  # BTC fills; ETH's limit at 50 rests
    await eng.stop()
    assert rows(db_url, "select symbol, purpose, status, reason from orders order by id") == [
        ("BTCUSDT", "entry", "filled", ""), ("ETHUSDT", "entry", "working", KEPT_AT_STOP)]  # not unwound
    assert [e.message for e in eng.events if e.level in ("error", "critical")] == []

    again = build_engine(config("cancel", **basket), FakeClock(T0 + 60), SqlStore(db_url))
    again.open()
    try:
        [group] = again.groups.values()
        assert group.status == "entering" and not group.pending_exit
        again.on_quote(Quote("ETHUSDT", again.clock.now(), 49.0, 51.0))
        again.tick()  # ETH's entry is placed again at its limit, and fills
        again.on_quote(Quote("ETHUSDT", again.clock.now(), 49.5, 50.0))
        assert group.status == "open" and [(lg.symbol, lg.entry) for lg in group.legs] == [
            ("BTCUSDT", 100.0), ("ETHUSDT", 50.0)]
    finally:
        again.store.close()


async def test_nothing_enters_once_the_engine_is_stopping(db_url):
    eng = build_engine(config(), FakeClock(T0), SqlStore(db_url))
    eng.open()
    eng.on_quote(Quote("BTCUSDT", eng.clock.now(), 99.0, 101.0))
    eng.state = "stopping"
    result = eng.enter_now("s")
    assert not result.ok and "stopping" in result.message
    assert eng.groups == {}
    eng.store.close()


def test_the_forced_stop_commits_what_was_decided_and_leaves_orders_as_they_are(db_url):
    eng = engine_with_a_working_entry(db_url, "cancel")
    eng.journal.event("info", "test", "decided, not committed yet")
    eng.stop_now()
    assert eng.state == "stopped"
    messages = [m for (m,) in rows(db_url, "select message from strategy_events order by id")]
    assert messages[-2] == "decided, not committed yet"
    assert messages[-1] == "engine stopped by force: 1 open position(s) stay open; 1 working order(s) left as they were"
    assert rows(db_url, "select status from orders")[0][0] in ("new", "working")  # not cancelled
    eng.store.close()


class FakeEngine:
    mode = "paper"

    def __init__(self) -> None:
        self.event_listeners: list = []
        self.calls: list[str] = []

    async def start(self) -> None:
        self.calls.append("start")

    async def stop(self) -> None:
        self.calls.append("stop")

    def stop_now(self) -> None:
        self.calls.append("stop_now")


async def test_one_interrupt_stops_cleanly_and_a_second_within_two_seconds_forces():
    eng, forced = FakeEngine(), []
    stopper = headless._Stopper(eng, lambda: forced.append(True))
    stopper("SIGINT")
    assert stopper.requested.is_set() and forced == [] and eng.calls == []
    stopper("SIGINT")  # at once: well within the window
    assert forced == [True] and eng.calls == ["stop_now"]

    late, forced = headless._Stopper(eng, lambda: forced.append(True)), []
    late("SIGTERM")
    late.last -= headless.FORCE_WINDOW_S + 1  # the second comes after the window: a clean stop still
    late("SIGTERM")
    assert forced == []


# == the real process =========================================================================

CONFIG = """
[feed]
seed = 7  # the same path at every run
[engine]
tick_interval_s = 0.1
[store]
flush_interval_s = 30   # marks stay pending in the write-behind until the stop flushes them
[symbols.BTCUSDT]
start_price = 100
tick_interval_s = 0.05
volatility = 0.5
[symbols.ETHUSDT]
start_price = 50
tick_interval_s = 0.05
volatility = 0.5
[strategies.a]
symbols = ["BTCUSDT"]
side = "buy"
sizing = { fixed_qty = 1 }
stop_loss = "20%"
trail_distance = "0.01%"
[strategies.b]
symbols = ["ETHUSDT"]
side = "sell"
sizing = { fixed_qty = 1 }
stop_loss = "20%"
"""


def test_sigterm_stops_the_headless_engine_with_nothing_lost(tmp_path: Path):
    cfg, db = tmp_path / "c.toml", tmp_path / "db.sqlite"
    cfg.write_text(CONFIG)
    env = {"TUI_TRADER_DATA_DIR": str(tmp_path), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    proc = subprocess.Popen([sys.executable, "-m", "tui_trader", "engine", "--config", str(cfg), "--db", str(db)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        seen = []
        deadline = time.monotonic() + 30
        while sum("entered" in line for line in seen) < 2:
            assert time.monotonic() < deadline, "no entries within 30 s: " + "".join(seen)
            seen.append(proc.stdout.readline())
        time.sleep(0.5)  # quotes keep moving the marks and the trailing level: writes are pending
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    printed = [line for line in "".join(seen).splitlines() + out.splitlines() if line[:4].isdigit()]
    url = f"sqlite:///{db}"
    stored = [m for (m,) in rows(url, "select message from strategy_events order by id")]
    assert len(printed) == len(stored)  # every event printed is in the database, in order
    assert all(line.endswith(message) for line, message in zip(printed, stored)), list(zip(printed, stored))
    assert stored[-1] == "engine stopped: 2 open position(s) stay open and are managed again at the next start"
    # marks are written behind every 30 s here: the short's mark moved from its entry only by the stop's flush
    legs = {sym: (mark, entry) for sym, mark, entry in rows(url, "select symbol, mark, avg_entry from legs")}
    assert set(legs) == {"BTCUSDT", "ETHUSDT"} and legs["ETHUSDT"][0] != legs["ETHUSDT"][1]
    assert rows(url, "select count(*) from orders where status in ('new', 'working')") == [(0,)]
    filled = rows(url, "select count(*) from orders where status = 'filled'")[0][0]
    assert rows(url, "select count(*) from fills")[0][0] == filled == 2


HOOKED = """
[feed]
seed = 7  # the same path at every run
[symbols.BTCUSDT]
start_price = 100
tick_interval_s = 0.05
[alerts]
on_alert = "sleep 60"
on_alert_timeout_s = 60
"""


def test_a_second_sigint_forces_the_exit_of_a_stop_held_up_by_the_alert_hook(tmp_path: Path):
    """Run 1 opens positions of strategies a and b; run 2 has neither: the orphan alerts at
    its start run a hook that hangs, so the clean stop waits for it; SIGINT twice quits at once."""
    db, env = tmp_path / "db.sqlite", {"TUI_TRADER_DATA_DIR": str(tmp_path), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    (tmp_path / "one.toml").write_text(CONFIG)
    (tmp_path / "two.toml").write_text(HOOKED)

    def engine(cfg: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "tui_trader", "engine", "--config", str(tmp_path / cfg),
                                 "--db", str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    def wait_for(proc: subprocess.Popen, *texts: str) -> None:
        seen, deadline = "", time.monotonic() + 30
        while not all(text in seen for text in texts):
            line = proc.stdout.readline()
            seen += line
            assert time.monotonic() < deadline and line, f"no {texts!r}: " + seen

    first = engine("one.toml")
    try:
        wait_for(first, "a: entered buy", "b: entered sell")
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0
        second = engine("two.toml")
        wait_for(second, "engine running")
        url = f"sqlite:///{db}"
        hooks = lambda: subprocess.run(["pgrep", "-f", "^sleep 60$"], capture_output=True, text=True).stdout.split()
        deadline = time.monotonic() + 30
        while len(hooks()) < 2:  # both orphan alerts' hooks run (one still starting could escape the kill)
            assert time.monotonic() < deadline, "the hook never started"
            time.sleep(0.05)
        second.send_signal(signal.SIGINT)
        time.sleep(0.3)  # the clean stop is under way, waiting for the hook
        second.send_signal(signal.SIGINT)
        out, err = second.communicate(timeout=30)
    finally:
        for proc in (first, locals().get("second")):
            if proc is not None:
                proc.kill()
    assert second.returncode == headless.FORCED_EXIT, err
    assert "SIGINT again: exiting now" in err and "Traceback" not in err
    [(message,)] = rows(url, "select message from strategy_events order by id desc limit 1")
    assert message.startswith("engine stopped by force: ")
    assert rows(url, "select count(*) from position_groups where status = 'open'") == [(2,)]  # kept
    deadline = time.monotonic() + 10
    while hooks():  # killed with the forced exit, not left behind
        assert time.monotonic() < deadline, "the hook's command outlived the engine"
        time.sleep(0.05)
