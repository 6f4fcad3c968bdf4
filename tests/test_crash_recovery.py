"""kill -9 of a real headless engine (DESIGN §4): a restart loses no fill and duplicates
none, resumes the same open positions with the same levels and trailing state, leaves no
order working, and logs a recovery event for everything it found half done."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from services.clock import FakeClock
from services.config import TradingConfig
from tui_trader.wiring import build_engine
from services.store import SqlStore, StoreLockedError

ROOT = Path(__file__).resolve().parent.parent
TRAIL = 0.2  # trailing distance of the riding strategies: wide, so they never exit

CONFIG = """
[engine]
max_open_positions = 10
tick_interval_s = 0.1

[store]
url = "sqlite:///{db}"
flush_interval_s = 0.2

[feed]
seed = 11
max_quote_age_s = 5

[paper]
slippage_bps = 1
maker_fee_bps = 1
taker_fee_bps = 4

[symbols.BTCUSDT]
start_price = 100.0
volatility = 5.0
spread_bps = 2
tick_interval_s = 0.02

[symbols.ETHUSDT]
start_price = 50.0
volatility = 5.0
spread_bps = 2
tick_interval_s = 0.02

[symbols.ACME]
start_price = 20.0
volatility = 5.0
spread_bps = 2
tick_interval_s = 0.02

# rides with a trailing stop armed at entry; stop/target far away, no time exit
[strategies.ride_long]
symbols = ["BTCUSDT"]
side = "buy"
sizing = {{ fixed_qty = 1 }}
stop_loss = "50%"
target = "50%"
trail_activation = 0
trail_distance = "20%"

[strategies.ride_short]
symbols = ["ETHUSDT"]
side = "sell"
sizing = {{ fixed_qty = 2 }}
stop_loss = "50%"
target = "50%"
trail_distance = "20%"

# churns: enters and exits every few ticks, so the kill lands amid orders and fills
[strategies.churn]
symbols = ["ACME"]
side = "buy"
sizing = {{ fixed_qty = 3 }}
stop_loss = "0.01%"
target = "0.01%"
"""


def ro(db_path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    db.row_factory = sqlite3.Row
    return db


def read_state(db_path: Path) -> dict:
    db = ro(db_path)
    try:
        return {
            "open_legs": {r["id"]: dict(r) for r in db.execute(
                "select l.* from legs l join position_groups g on g.id = l.group_id "
                "where l.status = 'open' and g.status in ('open', 'exiting')")},
            "groups": {r["id"]: dict(r) for r in db.execute("select * from position_groups where status != 'closed'")},
            "orders": {r["id"]: dict(r) for r in db.execute("select * from orders")},
            "fills": [dict(r) for r in db.execute("select * from fills")],
        }
    finally:
        db.close()


def ready(db_path: Path) -> bool:
    """Both riders hold a position whose trailing level has moved since entry, and the churn
    strategy has closed a few round trips."""
    if not db_path.exists():
        return False
    try:
        db = ro(db_path)
        try:
            moved = {r[0] for r in db.execute(
                "select strategy_id from legs where status = 'open' and trail_active = 1 "
                "and trail_updated_at > opened_at")}
            churned = db.execute("select count(*) from position_groups where strategy_id = 'churn' "
                                 "and status = 'closed'").fetchone()[0]
        finally:
            db.close()
    except sqlite3.OperationalError:  # tables not created yet
        return False
    return {"ride_long", "ride_short"} <= moved and churned >= 3


@pytest.fixture
def headless_engine(tmp_path):
    db_path = tmp_path / "db.sqlite"
    cfg_path = tmp_path / "settings.toml"
    cfg_path.write_text(CONFIG.format(db=db_path))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUI_TRADER_")}
    env["TUI_TRADER_DATA_DIR"] = str(tmp_path / "data")
    out_path = tmp_path / "engine.out"
    with open(out_path, "wb") as out:  # a file, not a pipe: a full pipe would block the engine
        proc = subprocess.Popen(
            [sys.executable, "-m", "tui_trader", "engine", "--config", str(cfg_path)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    proc.output = lambda: out_path.read_text(errors="replace")[-4000:]
    try:
        yield proc, db_path, cfg_path
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def test_kill_9_loses_no_fill_duplicates_none_and_resumes_the_trailing_state(headless_engine):
    proc, db_path, cfg_path = headless_engine
    deadline = time.monotonic() + 25
    while not ready(db_path):
        if proc.poll() is not None:
            pytest.fail(f"the engine exited early ({proc.returncode}):\n{proc.output()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no trailing move within 25 s:\n{proc.output()}")
        time.sleep(0.1)
    cfg = TradingConfig.model_validate(tomllib.loads(cfg_path.read_text()))
    with pytest.raises(StoreLockedError):  # one engine per database, across processes too
        build_engine(cfg, FakeClock(time.time()), SqlStore(cfg.store.url)).open()
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL

    at_kill = read_state(db_path)
    riders = {leg["strategy_id"]: leg for leg in at_kill["open_legs"].values() if leg["strategy_id"] != "churn"}
    assert riders.keys() == {"ride_long", "ride_short"}
    for leg in riders.values():
        d = 1 if leg["side"] == "buy" else -1
        assert leg["trail_active"] == 1
        assert leg["trail_updated_at"] > leg["opened_at"]  # the level moved at least once
        assert leg["trail_level"] == pytest.approx(leg["trail_peak"] * (1 - d * TRAIL))  # level and peak agree
        assert (leg["trail_peak"] - leg["avg_entry"]) * d > -leg["avg_entry"] * 0.01  # sane peak
    half_done_orders = {oid for oid, o in at_kill["orders"].items() if o["status"] in ("new", "working")}
    half_done_entries = {gid for gid, g in at_kill["groups"].items() if g["status"] == "entering"}

    engine = build_engine(cfg, FakeClock(time.time()), SqlStore(cfg.store.url))
    engine.open()  # no quote is delivered
    try:
        # the same open positions, with the same levels and trailing state
        resumed = {leg.id: leg for g in engine.groups.values() for leg in g.legs if leg.status == "open"}
        assert resumed.keys() == at_kill["open_legs"].keys()
        for lid, row in at_kill["open_legs"].items():
            leg = resumed[lid]
            assert (leg.group.id, leg.symbol, leg.side, leg.qty, leg.entry) == (
                row["group_id"], row["symbol"], row["side"], row["qty"], row["avg_entry"])
            assert (leg.stop, leg.target) == (row["stop"], row["target"])
            assert (leg.trail_active, leg.trail_peak, leg.trail_level, leg.trail_updated_at) == (
                bool(row["trail_active"]), row["trail_peak"], row["trail_level"], row["trail_updated_at"])
        for strategy_id, row in riders.items():
            slot = engine.strategies[strategy_id].slots[row["symbol"]]
            assert slot.group is not None and slot.group.id == row["group_id"]  # the slot is held: no re-entry
        # one position per (strategy, symbol) at most
        held = [(g.strategy_id, g.symbol) for g in engine.groups.values()]
        assert len(held) == len(set(held))

        after = read_state(db_path)
        # every fill exactly once, and only for orders that are filled
        fill_orders = [f["order_id"] for f in after["fills"]]
        assert len(fill_orders) == len(set(fill_orders)), "a fill was duplicated"
        filled = {oid for oid, o in after["orders"].items() if o["status"] == "filled"}
        assert set(fill_orders) == filled
        assert after["fills"] == at_kill["fills"]  # the restart wrote no fill of its own
        for f in after["fills"]:
            o = after["orders"][f["order_id"]]
            assert (f["qty"], f["price"], f["side"]) == (o["filled_qty"], o["avg_fill_price"], o["side"])
        # each open leg has exactly its one entry fill and no exit fill
        for lid, row in at_kill["open_legs"].items():
            legs_fills = [f for f in after["fills"] if f["leg_id"] == lid]
            assert [f["side"] for f in legs_fills] == [row["side"]]
        # no order left working
        assert [oid for oid, o in after["orders"].items() if o["status"] in ("new", "working")] == []
        assert engine.orders == {}
        # a recovery event for every discrepancy found
        recovery = [e for e in engine.events if e.category == "recovery"]
        for oid in half_done_orders:
            client_id = at_kill["orders"][oid]["client_id"]
            assert any(f"order {client_id} " in e.message for e in recovery), client_id
            assert after["orders"][oid]["status"] == "cancelled"
        for gid in half_done_entries:
            assert any(f"entry #{gid} " in e.message for e in recovery), gid
        for gid, g in at_kill["groups"].items():
            if g["pending_exit"]:
                assert engine.groups[gid].status == "exiting"
                assert any(f"resuming the exit of #{gid} " in e.message for e in recovery), gid
        assert len(recovery) == len(half_done_orders) + len(half_done_entries) + sum(
            1 for g in at_kill["groups"].values() if g["pending_exit"] and g["status"] != "entering")
    finally:
        engine.store.close()
