"""The database locked or refusing a row (issue 13): the event loop never waits on it. Another
process holds `BEGIN EXCLUSIVE` for a few seconds while positions trade on a fake clock: every
quote and tick returns at once, exits happen on their quote, the alert comes within 2 s, the
queue lands in order once the lock is gone; stops are bounded; a row the database refuses is
a bug alert, not an outage; the shell commands say the database is busy."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest

from services.clock import FakeClock
from tui_trader.wiring import build_engine
from services.ports import FeedHealth
from services.market import Quote
from services.store import SqlStore, sql
from tests.conftest import T0, Harness
from tests.engine_support import make_config, strat
from tui_trader import cli as shell

MAX_CALL_S = 0.2
"""The longest an engine call on the loop may take while the database is locked."""

LOCKER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


@contextmanager
def locked(db_url: str, hold_s: float):
    """Another process holds the database's write lock for hold_s seconds (or until the block ends)."""
    proc = subprocess.Popen([sys.executable, "-c", LOCKER, db_url[len("sqlite:///"):], str(hold_s)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def db_rows(db_url: str, sql_text: str) -> list[tuple]:
    db = sqlite3.connect(f"file:{db_url[len('sqlite:///'):]}?mode=ro", uri=True)
    try:
        return db.execute(sql_text).fetchall()
    finally:
        db.close()


class QuietFeed:
    """A feed that sends nothing: the test hands the engine its quotes."""

    def __init__(self, symbols) -> None:
        self.symbols = tuple(symbols)
        self.health = FeedHealth(name="quiet", connected=True)

    async def start(self, on_quote) -> None:
        pass

    async def stop(self) -> None:
        pass


class Desk:
    """A started engine (write-behind thread and all) on a fake clock, every engine call timed."""

    def __init__(self, db_url: str, strategies: dict) -> None:
        cfg = make_config(strategies, max_age=1000)
        self.store = SqlStore(db_url, flush_interval_s=0.1, retry_busy_s=0.5)
        self.engine = build_engine(cfg, FakeClock(T0), self.store, feed=QuietFeed(cfg.symbols))
        self.fills: list = []
        self.engine.fill_listeners.append(self.fills.append)
        self.slowest = 0.0

    def call(self, fn, *args):
        started = time.perf_counter()
        result = fn(*args)
        self.slowest = max(self.slowest, time.perf_counter() - started)
        return result

    def quote(self, symbol: str, px: float) -> None:
        self.call(self.engine.on_quote, Quote(symbol, self.engine.clock.now(), px, px))

    def alerts(self, level: str) -> list:
        return [e for e in self.engine.events if e.category == "store" and e.level == level]


async def loop_lag(lags: list[float]) -> None:
    """How late the loop wakes this task, the worst case in lags[0], until cancelled."""
    while True:
        started = time.perf_counter()
        await asyncio.sleep(0.01)
        lags[0] = max(lags[0], time.perf_counter() - started - 0.01)


async def test_a_locked_database_never_stalls_the_loop_and_the_queue_lands_in_order(db_url):
    desk = Desk(db_url, {
        "trail": strat(symbols=["BTCUSDT"], trail_activation="1%", trail_distance="0.5%", reentry=False),
        "timed": strat(symbols=["ETHUSDT"], time_exit_s=5, reentry=False),
        "stop": strat(symbols=["ACME"], stop_loss=0.5),
    })
    eng, clock = desk.engine, desk.engine.clock
    await eng.start()
    for sym, px in (("BTCUSDT", 100.0), ("ETHUSDT", 50.0), ("ACME", 20.0)):
        desk.quote(sym, px)
    assert len(eng.groups) == 3 and desk.store.pending_writes == 0  # committed as usual
    lags = [0.0]
    lag_task = asyncio.ensure_future(loop_lag(lags))
    btc = iter([101.0, 102.5, 102.5, 101.5])  # arms, peaks, then falls through its trailing level
    acme = iter([20.0, 19.4, 19.8, 19.8])  # the stop, then a new entry
    first_failed = alerted = None
    with locked(db_url, 3.5) as locker:
        for step in range(30):
            clock.advance(1)
            desk.quote("BTCUSDT", next(btc, 101.5))
            if step == 3:  # on its quote
                assert (eng.trades[-1].symbol, eng.trades[-1].exit_reason) == ("BTCUSDT", "trailing_stop")
            desk.quote("ETHUSDT", 50.0)
            desk.quote("ACME", next(acme, 19.8))
            if step == 1:
                assert (eng.trades[-1].symbol, eng.trades[-1].exit_reason) == ("ACME", "stop_loss")
            desk.call(eng.tick)
            if step == 4:  # five seconds after its entry, on the tick
                assert (eng.trades[-1].symbol, eng.trades[-1].exit_reason) == ("ETHUSDT", "time")
            if first_failed is None and desk.store.pending_writes:
                first_failed = time.monotonic()
            if alerted is None and desk.alerts("critical"):
                alerted = time.monotonic()
            await asyncio.sleep(0.07)
        assert locker.poll() is None  # all of it while the lock was held
        assert db_rows(db_url, "select count(*) from fills")[0][0] == 3  # the entries only
    assert desk.slowest < MAX_CALL_S and lags[0] < MAX_CALL_S, (desk.slowest, lags[0])
    assert first_failed is not None and alerted is not None and alerted - first_failed < 2.0
    [critical] = desk.alerts("critical")
    assert "trading continues, writes are queued in memory" in critical.message

    for _ in range(100):  # the lock is gone: the write-behind thread lands the queue
        if not desk.store.pending_writes and desk.store.ok:
            break
        await asyncio.sleep(0.05)
    assert desk.store.ok and desk.store.pending_writes == 0
    await asyncio.sleep(0.05)  # the recovery alert, raised on the write-behind thread, reaches the loop
    assert len(desk.alerts("warning")) == 1
    lag_task.cancel()
    await eng.stop()

    orders = sorted({o.id: o for o in eng.recent_orders}.values(), key=lambda o: o.id)
    assert [r for r in db_rows(db_url, "select id, status, side, qty, filled_qty from orders order by id")] == [
        (o.id, o.status, o.side, o.qty, o.filled_qty) for o in orders]
    assert [r for r in db_rows(db_url, "select id, order_id, price, qty from fills order by id")] == [
        (f.id, f.order_id, f.price, f.qty) for f in desk.fills]
    assert len(desk.fills) == 3 + 4  # three entries, three exits, one new entry
    assert db_rows(db_url, "select id, message from strategy_events order by id") == [
        (e.id, e.message) for e in eng.events]  # every event once, in order


async def test_a_forced_stop_during_the_lock_exits_at_once_and_logs_what_is_not_committed(db_url, caplog):
    desk = Desk(db_url, {"s": strat(stop_loss=1)})
    eng, clock = desk.engine, desk.engine.clock
    await eng.start()
    desk.quote("BTCUSDT", 100.0)
    with locked(db_url, 4.0):
        clock.advance(1)
        desk.quote("BTCUSDT", 98.0)  # the stop: queued
        await asyncio.sleep(0.7)  # the write-behind thread is retrying
        assert desk.store.pending_writes
        started = time.perf_counter()
        eng.stop_now()
        assert time.perf_counter() - started < MAX_CALL_S
    assert eng.state == "stopped"
    assert "closing with" in caplog.text and "not committed" in caplog.text
    assert "engine stopped by force" in caplog.text  # its row, in the log file
    desk.store._thread.join(timeout=5)


async def test_a_clean_stop_during_the_lock_waits_a_bounded_time_and_says_what_is_not_committed(
        db_url, caplog, monkeypatch):
    monkeypatch.setattr(sql, "DRAIN_S", 0.5)
    desk = Desk(db_url, {"s": strat(stop_loss=1)})
    eng, clock = desk.engine, desk.engine.clock
    await eng.start()
    desk.quote("BTCUSDT", 100.0)
    lags = [0.0]
    with locked(db_url, 4.0):
        clock.advance(1)
        desk.quote("BTCUSDT", 98.0)
        lag_task = asyncio.ensure_future(loop_lag(lags))
        await asyncio.sleep(0.3)  # the write-behind thread is retrying
        started = time.perf_counter()
        with caplog.at_level(logging.ERROR, logger="services.store.sql"):
            await eng.stop()
        took = time.perf_counter() - started
        await asyncio.sleep(0.02)  # the lag task sees how late it woke
        lag_task.cancel()
    assert took < 0.5 + 0.5 + 0.5 and lags[0] < MAX_CALL_S, (took, lags[0])  # drain + one attempt, loop free
    assert eng.state == "stopped"
    assert any(e.message.startswith("engine stopped:") for e in eng.events)  # kept in memory
    [summary] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("closing with")]
    assert "write(s) not committed" in summary
    assert any(r.getMessage().startswith("not committed: event") and "engine stopped:" in r.getMessage()
               for r in caplog.records)


async def test_a_lock_shorter_than_the_retry_wait_is_no_outage(db_url):
    desk = Desk(db_url, {"s": strat(stop_loss=1)})
    eng, clock = desk.engine, desk.engine.clock
    await eng.start()
    with locked(db_url, 0.2):
        clock.advance(1)
        desk.quote("BTCUSDT", 100.0)  # the entry: queued, the loop not held up
        assert desk.store.pending_writes
        for _ in range(40):
            if not desk.store.pending_writes:
                break
            await asyncio.sleep(0.05)
    assert desk.slowest < MAX_CALL_S
    assert desk.store.pending_writes == 0 and desk.store.ok and not desk.alerts("critical")
    assert db_rows(db_url, "select count(*) from fills")[0][0] == 1
    await eng.stop()


def test_a_row_the_database_refuses_is_a_bug_alert_and_the_other_writes_land(db_url, caplog):
    store = SqlStore(db_url)
    h = Harness(make_config({"a": strat(stop_loss=1), "b": strat(symbols=["ETHUSDT"])}), store=store)
    h.quote("BTCUSDT", 100.0)
    db = sqlite3.connect(db_url[len("sqlite:///"):])  # another connection takes the next order's id first
    cols = [c[1] for c in db.execute("pragma table_info(orders)")]
    copy = [{"id": "id + 1", "client_id": "'other'"}.get(c, c) for c in cols]
    db.execute(f"insert into orders ({', '.join(cols)}) select {', '.join(copy)} from orders")
    db.commit()
    db.close()
    h.quote("ETHUSDT", 50.0)  # b's entry: its order is refused, its fill, group, run and events are not
    h.quote("BTCUSDT", 98.0)  # a's stop: writes go on as before
    assert store.ok and store.pending_writes == 0
    [bug] = [e for e in h.engine.events if e.category == "store"]
    assert bug.level == "error" and bug.needs_ack
    assert bug.message.startswith("bug: the database refused order #2 (UNIQUE constraint failed: orders.id)")
    assert "the database refused a write, dropped (a bug): order #2 {" in caplog.text  # with its row
    assert db_rows(db_url, "select count(*) from fills")[0][0] == 3
    assert db_rows(db_url, "select symbol, status from position_groups order by id") == [
        ("BTCUSDT", "closed"), ("ETHUSDT", "open")]
    assert db_rows(db_url, "select id, message from strategy_events order by id") == [
        (e.id, e.message) for e in h.engine.events]
    assert db_rows(db_url, "select id, client_id, purpose, status from orders order by id") == [
        (1, "tt-1", "entry", "filled"), (2, "other", "entry", "filled"),  # the other connection's row as it was
        (3, "tt-3", "exit", "filled")]
    store.close()


CONFIG = """
[feed]
seed = 7  # the same path at every run
[symbols.BTCUSDT]
start_price = 100
[strategies.m]
symbols = ["BTCUSDT"]
side = "buy"
entry = "manual"
sizing = { fixed_qty = 1 }
"""


@pytest.mark.parametrize("argv", [
    ["signal", "--strategy", "m", "--symbol", "BTCUSDT", "--action", "buy", "--wait", "0"],
    ["pause", "--all", "--wait", "1"],
    ["exit", "--all", "--yes", "--wait", "1"],
])
def test_a_shell_command_on_a_locked_database_says_busy_and_exits_1(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.setenv("TUI_TRADER_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(shell, "setup_logging", lambda *a, **k: None)
    monkeypatch.setattr(sql, "BUSY_TIMEOUT_S", 0.2)
    cfg, db = tmp_path / "c.toml", tmp_path / "db.sqlite"
    cfg.write_text(CONFIG)
    url = f"sqlite:///{db}"
    h = Harness(make_config({"m": strat()}), store=SqlStore(url))  # an engine holds the database
    h.quote("BTCUSDT", 100.0)
    try:
        with locked(url, 3.0):
            assert shell.main([*argv, "--config", str(cfg), "--db", str(db)]) == 1
            assert shell.main(["positions", "--config", str(cfg), "--db", str(db)]) == 0  # reads go on
    finally:
        h.engine.store.close()
    err = capsys.readouterr().err
    assert "tui-trader: database busy, try again" in err, err


def test_a_full_disk_loses_nothing_raises_one_alert_and_lands_when_there_is_room(db_url, monkeypatch):
    """SQLite's "database or disk is full" on every write for a while: trading goes on in
    memory, one critical alert however many writes fail, and every write lands in order once
    there is room again."""
    from sqlalchemy.exc import OperationalError

    store = SqlStore(db_url)
    h = Harness(make_config({"s": strat(stop_loss=1)}), store=store)
    h.quote("BTCUSDT", 100.0)
    connection = store._connection

    def full():
        raise OperationalError("INSERT", {}, sqlite3.OperationalError("database or disk is full"))

    monkeypatch.setattr(store, "_connection", full)
    for px in (99.0, 98.0, 97.0, 96.0, 95.0, 94.0):  # stops and re-entries, each a failing write
        h.quote("BTCUSDT", px)
        store.flush()  # the write-behind thread's retries fail too
    snap = h.engine.snapshot()
    assert [t.exit_reason for t in snap.trades] == ["stop_loss"] * 3 and store.pending_writes > 0
    alerts = [e for e in snap.events if e.category == "store" and e.level == "critical"]
    assert len(alerts) == 1 and "disk is full" in alerts[0].message  # one alert, not one per write
    monkeypatch.setattr(store, "_connection", connection)  # room again
    store.flush()
    h.quote("BTCUSDT", 94.0)
    assert store.ok and store.pending_writes == 0
    orders = sorted(h.engine.snapshot().orders, key=lambda o: o.id)
    assert [tuple(r) for r in db_rows(db_url, "select id, status from orders order by id")] == [
        (o.id, o.status) for o in orders]
    assert len(db_rows(db_url, "select id from fills")) == len(orders)  # every order filled once
    store.close()
