"""Durability (DESIGN §4) on the SQL store: a restart resumes exactly where the engine was
(levels, trailing state, cooldowns, no duplicated rows, no re-entry of a held slot), marks
are written behind at most once per flush, one database has one engine, and a database
outage queues every write and flushes it, nothing lost, when the database is back."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import astuple, replace

import pytest
from sqlalchemy import create_engine, event

from services.clock import FakeClock
from services.engine import Engine
from tui_trader.wiring import build_engine
from services.market import Quote
from services.store import MemoryStore, SqlStore, StoreLockedError, read_open_positions
from services.store.read_models import read_pnl_state
from services.store.sql import NoDatabaseError, engine_running
from services.store.tables import LegRow
from tests.conftest import T0, Harness
from tests.engine_support import make_config, strat

TABLES = ("strategy_runs", "position_groups", "legs", "orders", "fills", "signals", "strategy_events")


def counts(db_url: str) -> dict[str, int]:
    db = sqlite3.connect(f"file:{db_url[len('sqlite:///'):]}?mode=ro", uri=True)
    try:
        return {t: db.execute(f"select count(*) from {t}").fetchone()[0] for t in TABLES}
    finally:
        db.close()


def db_rows(db_url: str, sql: str, *args) -> list[sqlite3.Row]:
    db = sqlite3.connect(f"file:{db_url[len('sqlite:///'):]}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


# -- restart-resume ---------------------------------------------------------------------------


def book_config():
    return make_config({
        "trail": strat(symbols=["BTCUSDT"], stop_loss="3%", target="10%", trail_activation="1%", trail_distance="0.5%"),
        "short": strat(symbols=["ETHUSDT"], side="sell", stop_loss=2, target=5, trail_distance=1),
        "cool": strat(symbols=["ACME"], stop_loss=0.5, cooldown_s=30),
    })


PHASE_1 = [  # (symbol, bid, ask, dt)
    ("BTCUSDT", 99.9, 100.1, 1), ("ETHUSDT", 50.0, 50.0, 1), ("ACME", 20.0, 20.0, 1),
    ("BTCUSDT", 101.0, 101.0, 1),  # trail arms: peak 101
    ("BTCUSDT", 102.4, 102.6, 1),  # peak 102.5
    ("ETHUSDT", 48.9, 49.1, 1),  # short trough 49, level 50
    ("ACME", 19.4, 19.4, 1),  # ACME stop: exit, 30 s cooldown
    ("BTCUSDT", 102.0, 102.0, 1),
]
PHASE_2 = [
    ("ACME", 19.6, 19.6, 1),  # still cooling down: no re-entry
    ("BTCUSDT", 103.0, 103.0, 1),  # peak 103 -> level 102.485
    ("ETHUSDT", 48.5, 48.5, 1),  # trough 48.5 -> level 49.5
    ("BTCUSDT", 102.4, 102.4, 1),  # trailing exit
    ("BTCUSDT", 102.0, 102.0, 1),  # re-entry on the next quote
    ("ACME", 19.8, 19.8, 30),  # the cooldown has passed
    ("ETHUSDT", 49.6, 49.6, 1),  # short trailing exit
    ("ETHUSDT", 49.0, 49.0, 1),
]


def play(eng: Engine, clock: FakeClock, script) -> None:
    for sym, bid, ask, dt in script:
        clock.advance(dt)
        eng.on_quote(Quote(sym, clock.now(), bid, ask))


def without_status(p) -> tuple:
    # everything but OPEN/STALE/EXITING and the in-memory histories (trailing moves since the
    # start, mark samples for the sparkline)
    return astuple(replace(p, status="", trail_moves=(), marks=()))


def comparable(eng: Engine):
    snap = eng.snapshot()
    positions = sorted(without_status(p) for p in snap.positions)
    trades = sorted(astuple(t) for t in snap.trades)
    return positions, trades, dict(eng.realized_today)


async def test_a_restart_is_invisible_to_the_positions_levels_and_trades(db_url):
    # the reference: one engine that never stops
    ref_clock = FakeClock(T0)
    ref = build_engine(book_config(), ref_clock, MemoryStore())
    ref.open()
    play(ref, ref_clock, PHASE_1)
    ref_mid = comparable(ref)
    play(ref, ref_clock, PHASE_2)

    clock = FakeClock(T0)
    first = build_engine(book_config(), clock, SqlStore(db_url))
    first.open()
    play(first, clock, PHASE_1)
    assert comparable(first) == ref_mid
    before = {p.group_id: p for p in first.snapshot().positions}
    assert sorted((p.strategy_id, p.trail_active) for p in before.values()) == [("short", True), ("trail", True)]
    await first.stop()
    rows_at_stop = counts(db_url)

    second = build_engine(book_config(), FakeClock(clock.now()), SqlStore(db_url))
    second.open()
    try:
        after = {p.group_id: p for p in second.snapshot().positions}
        assert after.keys() == before.keys()
        for gid, p in after.items():
            assert p.status == "STALE"  # no quote yet after the restart
            # entry, qty, fees, mark, stop, target, trail state and history, time exit, opened_at
            assert without_status(p) == without_status(before[gid]), gid
        btc = next(p for p in after.values() if p.symbol == "BTCUSDT")
        assert (btc.trail_peak, btc.trail_level, btc.trail_updated_at) == (102.5, pytest.approx(101.9875), T0 + 5)
        opened = counts(db_url)
        assert {t: opened[t] for t in TABLES if t != "strategy_events"} == {
            t: rows_at_stop[t] for t in TABLES if t != "strategy_events"}
        assert opened["strategy_events"] == rows_at_stop["strategy_events"] + 1  # "engine started"
        assert second.snapshot().trades == first.snapshot().trades
        assert second.realized_today == first.realized_today

        play(second, second.clock, PHASE_2[:3])  # no re-entry of held or cooling slots
        assert counts(db_url)["orders"] == rows_at_stop["orders"]
        play(second, second.clock, PHASE_2[3:])
        assert comparable(second) == comparable(ref)
    finally:
        await second.stop()
    # no duplicated rows: one fill per filled order, one entry order per group
    assert db_rows(db_url, "select order_id, count(*) c from fills group by order_id having c > 1") == []
    filled = {r[0] for r in db_rows(db_url, "select id from orders where status = 'filled'")}
    assert {r[0] for r in db_rows(db_url, "select order_id from fills")} == filled
    assert len(filled) == counts(db_url)["fills"] == 6 + 3  # 6 entries, 3 exits
    assert db_rows(db_url, "select group_id from orders where purpose = 'entry' group by group_id having count(*) > 1") == []


def test_a_restarted_engine_does_not_re_enter_a_slot_that_holds_a_position(db_url):
    h = Harness(make_config({"s": strat(stop_loss="50%")}), store=SqlStore(db_url))
    h.quote("BTCUSDT", 100.0)
    h.engine.store.close()
    eng = build_engine(make_config({"s": strat(stop_loss="50%")}), FakeClock(h.clock.now()), SqlStore(db_url))
    eng.open()
    try:
        for i in range(3):
            eng.clock.advance(1)
            eng.on_quote(Quote("BTCUSDT", eng.clock.now(), 101.0 + i, 101.0 + i))
        assert len(eng.groups) == 1
        assert eng.snapshot().waiting == ()
        assert counts(db_url)["orders"] == 1
        assert eng.snapshot().positions[0].mark == 103.0
    finally:
        eng.store.close()


def test_a_pending_exit_is_resumed_after_a_restart(db_url):
    h = Harness(make_config({"s": strat(reentry=False)}), store=SqlStore(db_url))
    h.quote("BTCUSDT", 100.0)
    gid = h.position().group_id
    h.clock.advance(10)
    assert "pending" in h.engine.exit_position(gid).message  # rejected: stale quote
    h.engine.store.close()
    eng = build_engine(make_config({"s": strat(reentry=False)}), FakeClock(h.clock.now()), SqlStore(db_url))
    eng.open()
    try:
        assert eng.groups[gid].status == "exiting"
        assert any(e.category == "recovery" and "resuming the exit" in e.message for e in eng.events)
        eng.clock.advance(1)
        eng.on_quote(Quote("BTCUSDT", eng.clock.now(), 101.0, 101.5))
        assert eng.groups == {}
        [row] = db_rows(db_url, "select status, exit_reason, realized_pnl from position_groups")
        assert tuple(row) == ("closed", "manual", 1.0)
    finally:
        eng.store.close()


def test_the_cooldown_and_entered_today_survive_a_restart(db_url):
    cfg = make_config({"c": strat(stop_loss=1, cooldown_s=60), "once": strat(symbols=["ETHUSDT"], stop_loss=1, reentry=False)})
    h = Harness(cfg, store=SqlStore(db_url))
    h.quote("BTCUSDT", 100.0)
    h.quote("ETHUSDT", 50.0)
    h.quote("BTCUSDT", 99.0)  # exit at T0 + 3
    h.quote("ETHUSDT", 49.0)
    h.engine.store.close()
    eng = build_engine(cfg, FakeClock(T0 + 10), SqlStore(db_url))
    eng.open()
    try:
        eng.on_quote(Quote("BTCUSDT", T0 + 10, 99.0, 99.0))
        eng.on_quote(Quote("ETHUSDT", T0 + 10, 49.0, 49.0))
        assert eng.groups == {}
        eng.clock.set(T0 + 63)
        eng.on_quote(Quote("ETHUSDT", T0 + 63, 49.0, 49.0))
        assert eng.groups == {}  # reentry=false: it entered today already
        eng.on_quote(Quote("BTCUSDT", T0 + 63, 99.0, 99.0))  # exactly at the end of the cooldown
        assert [g.strategy_id for g in eng.groups.values()] == ["c"]
    finally:
        eng.store.close()


def test_an_entry_that_never_filled_is_abandoned_at_restart_with_a_recovery_event(db_url):
    cfg = make_config({"s": strat()})
    h = Harness(cfg, store=SqlStore(db_url))
    h.engine.client.submit = lambda request: None  # the process dies between commit and send
    h.quote("BTCUSDT", 100.0)
    [order] = db_rows(db_url, "select id, status from orders")
    assert order["status"] == "new"
    h.engine.store.close()
    eng = build_engine(cfg, FakeClock(h.clock.now() + 1), SqlStore(db_url))
    eng.open()
    try:
        recovery = [e for e in eng.events if e.category == "recovery"]
        assert len(recovery) == 2  # the working order, and the abandoned entry
        assert eng.groups == {}
        assert [tuple(r) for r in db_rows(db_url, "select status from orders")] == [("cancelled",)]
        assert [o.status for o in eng.snapshot().orders] == ["cancelled"]  # the UI shows what the database says
        assert [tuple(r) for r in db_rows(db_url, "select status, exit_reason from position_groups")] == [
            ("closed", "entry_failed")]
        eng.on_quote(Quote("BTCUSDT", eng.clock.now(), 100.0, 100.0))
        assert len(eng.groups) == 1  # the slot is free again
    finally:
        eng.store.close()


# -- write-behind -----------------------------------------------------------------------------


def test_marks_are_written_behind_once_per_flush(db_url):
    store = SqlStore(db_url)
    h = Harness(make_config({"s": strat(stop_loss="50%")}), store=store)
    h.quote("BTCUSDT", 100.0)
    updates: list[int] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def _count(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if statement.lstrip().upper().startswith("UPDATE LEGS"):
            updates.append(len(parameters) if executemany else 1)

    for px in (100.5, 101.0, 101.5, 102.0):
        h.quote("BTCUSDT", px)
    [leg] = db_rows(db_url, "select mark, mark_ts from legs")
    assert tuple(leg) == (100.0, T0 + 1)  # not written on the hot path
    assert updates == []
    store.flush()
    [leg] = db_rows(db_url, "select mark, mark_ts, unrealized_pnl from legs")
    assert tuple(leg) == (102.0, T0 + 5, 2.0)
    assert sum(updates) == 1  # four quotes, one row written
    store.flush()
    assert sum(updates) == 1  # nothing dirty: nothing written
    h.quote("BTCUSDT", 99.0)
    store.flush()
    assert sum(updates) == 2
    assert db_rows(db_url, "select mark from legs")[0][0] == 99.0
    store.close()


def test_close_flushes_the_marks(db_url):
    store = SqlStore(db_url)
    h = Harness(make_config({"s": strat()}), store=store)
    h.quote("BTCUSDT", 100.0)
    h.quote("BTCUSDT", 104.0)
    store.close()
    assert db_rows(db_url, "select mark from legs")[0][0] == 104.0


# -- one engine per database ------------------------------------------------------------------


def test_an_engine_cannot_open_a_database_another_engine_holds(db_url):
    first = Harness(make_config({"s": strat()}), store=SqlStore(db_url))
    second = build_engine(make_config({"s": strat()}), FakeClock(T0), SqlStore(db_url))
    with pytest.raises(StoreLockedError, match="another tui-trader engine is running"):
        second.open()
    first.engine.store.close()
    third = build_engine(make_config({"s": strat()}), FakeClock(T0), SqlStore(db_url))
    third.open()  # free once the first has closed
    third.store.close()


def test_one_engine_per_database_through_a_symlink_or_a_hard_link(tmp_path):
    db = tmp_path / "db.sqlite"
    first = SqlStore(f"sqlite:///{db}")
    first.open()
    (tmp_path / "symlink.sqlite").symlink_to(db)
    os.link(db, tmp_path / "hardlink.sqlite")
    for other in ("symlink.sqlite", "hardlink.sqlite"):
        with pytest.raises(StoreLockedError, match="another tui-trader engine is running"):
            SqlStore(f"sqlite:///{tmp_path / other}").open()
    assert engine_running(f"sqlite:///{tmp_path / 'symlink.sqlite'}") is True
    first.close()
    assert engine_running(f"sqlite:///{tmp_path / 'symlink.sqlite'}") is False
    again = SqlStore(f"sqlite:///{tmp_path / 'hardlink.sqlite'}")
    again.open()  # free once the first has closed
    again.close()


def test_a_read_creates_no_database_and_no_directory(tmp_path):
    url = f"sqlite:///{tmp_path / 'no' / 'dir' / 'x.db'}"
    for read in (read_open_positions, read_pnl_state):
        with pytest.raises(NoDatabaseError, match=f"no database at {tmp_path / 'no' / 'dir' / 'x.db'}"):
            read(url)
    assert not (tmp_path / "no").exists()


# -- database outage --------------------------------------------------------------------------


def broken_engine(tmp_path):
    return create_engine(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'x.db'}")


def test_db_outage_keeps_trading_raises_an_alert_queues_and_flushes_everything(db_url, tmp_path):
    store = SqlStore(db_url)
    h = Harness(make_config({"s": strat(stop_loss=1)}), store=store)
    eng = h.engine
    h.quote("BTCUSDT", 100.0)
    before = counts(db_url)
    good = store.engine
    store.engine = broken_engine(tmp_path)

    h.quote("BTCUSDT", 99.0)  # stop: exit (in memory)
    h.quote("BTCUSDT", 98.0)  # re-entry (in memory)
    h.quote("BTCUSDT", 97.0)  # stop again
    snap = eng.snapshot()
    assert [t.exit_reason for t in snap.trades] == ["stop_loss", "stop_loss"]
    assert snap.db_ok is False and store.ok is False
    assert store.pending_writes > 0
    alerts = [e for e in snap.events if e.category == "store" and e.level == "critical"]
    assert len(alerts) == 1 and alerts[0].needs_ack
    assert "trading continues, writes are queued" in alerts[0].message
    assert counts(db_url) == before  # nothing reached the database

    h.quote("BTCUSDT", 97.0)  # trades on during the outage
    assert len(eng.groups) == 1

    store.engine = good
    store.flush()
    assert store.ok and store.pending_writes == 0
    h.quote("BTCUSDT", 97.0)  # the "database is back" event joins the next write
    after = counts(db_url)
    snap = eng.snapshot()
    assert after["orders"] == len(snap.orders) == 5  # 3 entries, 2 exits
    assert after["fills"] == 5
    assert after["position_groups"] == after["legs"] == after["strategy_runs"] == 3
    assert after["strategy_events"] == len(snap.events)  # every event the engine raised, once
    assert [tuple(r) for r in db_rows(db_url, "select id, message from strategy_events order by id")] == [
        (e.id, e.message) for e in snap.events]
    assert [tuple(r) for r in db_rows(db_url, "select status, exit_reason, realized_pnl from position_groups order by id")] == [
        ("closed", "stop_loss", -1.0), ("closed", "stop_loss", -1.0), ("open", "", 0.0)]
    assert [tuple(r) for r in db_rows(db_url, "select status from orders order by id")] == [("filled",)] * 5
    assert db_rows(db_url, "select count(*) from strategy_events where category = 'store' and needs_ack = 1")[0][0] == 2
    assert eng.snapshot().db_ok is True


def test_db_outage_during_a_mark_flush_recovers_on_a_later_flush(db_url, tmp_path):
    failures, recoveries = [], []
    store = SqlStore(db_url)
    h = Harness(make_config({"s": strat()}), store=store)
    store.on_failure, store.on_recovery = failures.append, recoveries.append
    h.quote("BTCUSDT", 100.0)
    good = store.engine
    store.engine = broken_engine(tmp_path)
    h.quote("BTCUSDT", 101.0)  # marks only: nothing critical to write
    store.flush()
    assert store.ok is False and len(failures) == 1
    store.flush()  # still down: one alert, not one per attempt
    assert len(failures) == 1
    store.engine = good
    store.flush()  # the database is back: the write-behind alone must notice
    assert store.ok is True
    assert len(recoveries) == 1
    assert db_rows(db_url, "select mark from legs")[0][0] == 101.0
    store.close()


def test_db_outage_of_a_level_edit_is_queued_and_lands_later(db_url, tmp_path):
    store = SqlStore(db_url)
    h = Harness(make_config({"s": strat(stop_loss=1)}), store=store)
    h.quote("BTCUSDT", 100.0)
    gid = h.position().group_id
    good = store.engine
    store.engine = broken_engine(tmp_path)
    assert h.engine.edit_levels(gid, stop=99.5).ok  # accepted in memory, queued for the database
    assert h.position().stop == 99.5
    assert db_rows(db_url, "select stop from legs")[0][0] == 99.0
    store.engine = good
    h.quote("BTCUSDT", 100.0)  # the next write carries the queue
    assert store.ok
    assert db_rows(db_url, "select stop from legs")[0][0] == 99.5
    assert db_rows(db_url, "select count(*) from strategy_events where category = 'levels'")[0][0] == 1
    store.close()


def test_sql_tables_have_the_trailing_state_columns():
    cols = set(LegRow.__table__.c.keys())
    assert {"trail_active", "trail_peak", "trail_level", "trail_updated_at"} <= cols
