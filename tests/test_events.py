"""Events and alerts in the engine (issue 6): acknowledging (persisted across a restart),
the history beyond memory, the filter in Python and in SQL agreeing, exports, retention,
and the feed's health as events."""

from __future__ import annotations

import asyncio
import csv
import json

import pytest

from services.clock import FakeClock
from services.engine import Engine
from tui_trader.wiring import build_engine
from services.engine.journal import RECENT_EVENTS
from services.event_log import EventQuery, event_from_row
from services.market import Quote
from services.store import SqlStore
from tests.conftest import T0, Harness, config
from tests.engine_support import make_config, strat

VARIED = [  # level, category, strategy, symbol-ish message, alert
    ("info", "entry", "trend", "trend: entering buy 1 BTCUSDT", False),
    ("warning", "order", "trend", "trend: exit order for #3 BTCUSDT rejected", True),
    ("error", "entry", "grid", "grid: entry #4 ETHUSDT failed: 100% of it", True),
    ("critical", "store", None, "database write failed (disk I/O error)", True),
    ("info", "fill", "grid", "grid: entered sell 2 ETHUSDT at 50.00", False),
    ("debug", "feed", None, "feed heartbeat", False),
]


def raise_varied(engine: Engine, clock: FakeClock) -> None:
    for level, category, strategy, message, alert in VARIED:
        clock.advance(1)
        engine.note(level, category, message, strategy_id=strategy, payload={"n": message[:5]}, needs_ack=alert)


def sql_harness(db_url: str) -> Harness:
    return Harness(config(), store=SqlStore(db_url))


def reopen(h: Harness, db_url: str) -> Engine:
    h.engine.store.close()
    eng = build_engine(h.engine.config, FakeClock(h.clock.now() + 1), SqlStore(db_url))
    eng.open()
    return eng


def test_an_alert_is_unread_until_acknowledged_and_stays_acknowledged_after_a_restart(db_url):
    h = sql_harness(db_url)
    raise_varied(h.engine, h.clock)
    snap = h.engine.snapshot()
    assert snap.unread_alerts == 3
    assert [a.message for a in snap.alerts] == [m for *_, m, alert in reversed(VARIED) if alert]  # newest first
    first, second, third = (a.id for a in reversed(snap.alerts))

    result = h.engine.ack_alerts([second])
    assert result.ok and result.message == f"alert #{second} acknowledged"
    snap = h.engine.snapshot()
    assert snap.unread_alerts == 2 and second not in {a.id for a in snap.alerts}
    acked = next(e for e in snap.events if e.id == second)
    assert acked.acked_at == h.clock.now() and not acked.unread and acked.needs_ack
    assert snap.events[-1].category == "operator" and "acknowledged" in snap.events[-1].message
    assert not h.engine.ack_alerts([second]).ok  # already read

    again = reopen(h, db_url)
    try:
        snap = again.snapshot()
        assert snap.unread_alerts == 2 and {a.id for a in snap.alerts} == {first, third}
        assert next(e for e in snap.events if e.id == second).acked_at is not None
        assert again.ack_alerts(None).message == "2 alerts acknowledged"
        assert again.snapshot().unread_alerts == 0 and again.snapshot().alerts == ()
        assert not again.ack_alerts(None).ok
    finally:
        again.store.close()
    third_run = build_engine(h.engine.config, FakeClock(h.clock.now() + 2), SqlStore(db_url))
    third_run.open()
    assert third_run.snapshot().unread_alerts == 0
    third_run.store.close()


@pytest.mark.parametrize("query", [
    EventQuery(), EventQuery(min_level="warning"), EventQuery(min_level="critical"), EventQuery(category="entry"),
    EventQuery(strategy="grid"), EventQuery(text="ETHUSDT"), EventQuery(text="100%"), EventQuery(text="DISK"),
    EventQuery(min_level="warning", strategy="trend"), EventQuery(unread_only=True), EventQuery(since=T0 + 3),
    EventQuery(text="_"),
])
async def test_the_filter_in_sql_keeps_exactly_what_the_filter_in_memory_keeps(db_url, query):
    h = sql_harness(db_url)
    raise_varied(h.engine, h.clock)
    h.engine.ack_alerts([h.engine.snapshot().alerts[-1].id])
    in_memory = [e.id for e in reversed(h.engine.events) if query.matches(e)]
    from_db = [e.id for e in h.engine.store.read_events(query, limit=1000)]
    assert from_db == in_memory
    page = await h.engine.find_events(query)
    assert [e.id for e in page.events] == in_memory and page.error == ""
    h.engine.store.close()


async def test_find_events_pages_back_beyond_memory_down_to_the_first_event(db_url):
    h = sql_harness(db_url)
    for i in range(RECENT_EVENTS + 700):
        h.clock.advance(1)
        h.engine.note("warning" if i % 10 == 0 else "info", "test", f"event {i}")
    assert len(h.engine.events) == RECENT_EVENTS
    seen, before = [], None
    while True:
        page = await h.engine.find_events(EventQuery(), before_id=before, limit=250)
        seen += page.events
        if len(page.events) < 250:
            break
        before = page.events[-1].id
    messages = [e.message for e in seen if e.category == "test"]
    assert messages == [f"event {i}" for i in reversed(range(RECENT_EVENTS + 700))]
    assert [e.id for e in seen] == sorted((e.id for e in seen), reverse=True)
    warnings = await h.engine.find_events(EventQuery(min_level="warning", text="event 1"), limit=1000)
    assert [e.message for e in warnings.events] == [
        f"event {i}" for i in reversed(range(RECENT_EVENTS + 700)) if i % 10 == 0 and f"event {i}".startswith("event 1")]
    h.engine.store.close()


async def test_find_events_includes_events_not_written_yet_and_says_when_the_database_cannot_be_read(db_url):
    h = sql_harness(db_url)
    h.engine.note("info", "test", "written")
    h.engine.journal.event("warning", "test", "not committed yet")  # raised, its write still pending
    page = await h.engine.find_events(EventQuery(category="test"))
    assert [e.message for e in page.events] == ["not committed yet", "written"]

    def broken(*args, **kwargs):
        raise OSError("unable to open database file")

    h.engine.store.read_events = broken
    page = await h.engine.find_events(EventQuery(category="test"))
    assert [e.message for e in page.events] == ["not committed yet", "written"]
    assert "cannot be read (unable to open database file)" in page.error
    h.engine.store.close()


async def test_export_writes_exactly_the_filtered_events_as_csv_or_json_lines(db_url, tmp_path):
    h = sql_harness(db_url)
    for i in range(RECENT_EVENTS + 50):  # beyond memory: the export reads the database
        h.clock.advance(1)
        h.engine.note("info", "noise", f"noise {i}")
    raise_varied(h.engine, h.clock)
    query = EventQuery(min_level="warning")
    result = await h.engine.export_events(query, tmp_path / "out" / "warnings.csv")
    assert result.ok and result.message.startswith("3 event(s) written to ")
    with open(tmp_path / "out" / "warnings.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["level"], r["category"], r["strategy"], r["message"], r["alert"]) for r in rows] == [
        (lv, cat, sid or "", msg, "yes") for lv, cat, sid, msg, alert in VARIED if alert]
    assert json.loads(rows[0]["payload"]) == {"n": "trend"}
    assert rows[0]["time"].startswith("2026-01-01T00:")

    everything = await h.engine.export_events(EventQuery(), tmp_path / "all.jsonl")
    lines = (tmp_path / "all.jsonl").read_text().splitlines()
    assert everything.ok and len(lines) == len(h.engine.store.read_events(EventQuery(), limit=10_000))
    first, last = json.loads(lines[0]), json.loads(lines[-1])
    assert first["message"] == "engine started (paper); resumed 0 open position(s)"
    assert last["message"] == VARIED[-1][3] and last["level"] == "debug" and last["payload"] == {"n": "feed "}
    ids = [json.loads(line)["id"] for line in lines]
    assert ids == sorted(ids)

    existing = await h.engine.export_events(query, tmp_path / "all.jsonl")
    assert not existing.ok and "already exists" in existing.message
    assert len((tmp_path / "all.jsonl").read_text().splitlines()) == len(lines)  # untouched
    wrong = await h.engine.export_events(query, tmp_path / "events.txt")
    assert not wrong.ok and ".csv or .jsonl" in wrong.message and not (tmp_path / "events.txt").exists()
    blocked = tmp_path / "file"
    blocked.write_text("")
    unwritable = await h.engine.export_events(query, blocked / "x.csv")
    assert not unwritable.ok and "cannot write" in unwritable.message
    h.engine.store.close()


async def test_retention_deletes_old_and_excess_events_but_keeps_unread_alerts(db_url):
    cfg = config().model_copy(update={"logs": config().logs.model_copy(update={"retention_days": 2, "max_rows": 1000})})
    h = Harness(cfg, store=SqlStore(db_url))
    h.engine.note("error", "old", "an old alert nobody read", needs_ack=True)
    h.engine.note("warning", "old", "an old alert that was read", needs_ack=True)
    h.engine.ack_alerts([h.engine.snapshot().alerts[0].id])
    for i in range(300):
        h.engine.note("info", "old", f"old {i}")
    h.clock.advance(3 * 86400)  # three days later
    for i in range(1500):
        h.engine.note("info", "new", f"new {i}")
    # 1,804 rows: "engine started", 2 alerts, the acknowledgement, 300 old, 1,500 new
    deleted = await h.engine.enforce_retention()
    assert deleted == 303 + 500  # older than 2 days but the unread alert; then the oldest beyond 1,000 rows
    rows = h.engine.store.read_events(EventQuery(), limit=10_000)
    kept = [e.message for e in reversed(rows)]
    assert kept[0] == "an old alert nobody read"
    assert [m for m in kept[1:-1]] == [f"new {i}" for i in range(500, 1500)]
    assert kept[-1] == "retention: 803 event(s) older than 2 day(s) or beyond 1000 rows deleted"
    assert h.engine.snapshot().unread_alerts == 1
    assert await h.engine.enforce_retention() == 1  # its own event pushed "new 500" beyond 1,000 rows
    h.engine.store.close()


def test_the_feed_going_stale_and_coming_back_are_events():
    h = Harness(make_config({"s": strat(entry="manual")}, max_age=5.0))
    h.quote("BTCUSDT", 100.0)
    h.quote("ETHUSDT", 50.0)
    h.engine.tick()
    assert [e for e in h.engine.events if e.category == "feed"] == []  # ACME never quoted: not called stale
    h.clock.advance(5.5)
    h.quote("ETHUSDT", 50.0, dt=0)
    h.engine.tick()
    [stale] = [e for e in h.engine.events if e.category == "feed"]
    assert stale.level == "warning" and stale.message.startswith("BTCUSDT: no fresh quote for 5 s")
    h.engine.tick()  # no repeat while it stays stale
    assert len([e for e in h.engine.events if e.category == "feed"]) == 1
    h.quote("BTCUSDT", 100.0)
    h.engine.tick()
    back = [e for e in h.engine.events if e.category == "feed"][-1]
    assert back.level == "info" and back.message == "BTCUSDT: fresh quotes again"


def test_the_feed_going_down_is_an_alert_and_its_return_an_event():
    h = Harness(make_config({"s": strat(entry="manual")}, max_age=5.0))
    h.engine.feed.health.connected = True
    h.engine.feed.health.last_event_at = h.clock.now()
    h.engine.tick()
    h.clock.advance(6)
    h.engine.tick()
    down = [e for e in h.engine.events if e.category == "feed"]
    assert [(e.level, e.needs_ack) for e in down] == [("error", True)] and "is down" in down[0].message
    h.engine.feed.health.last_event_at = h.clock.now()
    h.engine.on_quote(Quote("BTCUSDT", h.clock.now(), 100.0, 100.0))
    h.engine.tick()
    assert [e for e in h.engine.events if e.category == "feed"][-1].message.endswith("is back")


def test_event_rows_read_back_as_the_views_the_engine_raised(db_url):
    h = sql_harness(db_url)
    raise_varied(h.engine, h.clock)
    stored = {e.id: e for e in h.engine.store.read_events(EventQuery(), limit=100)}
    assert [stored[view.id] for view in h.engine.events] == list(h.engine.events)
    assert event_from_row({"id": 1, "ts": 0.0, "level": "info", "category": "c", "message": "m", "strategy_id": None,
                           "symbol": None, "group_id": None, "needs_ack": 0, "acked_at": None, "payload": None}).payload == {}
    h.engine.store.close()


async def test_the_engine_enforces_retention_by_itself_a_minute_after_start_then_hourly(db_url):
    cfg = config().model_copy(update={"logs": config().logs.model_copy(update={"retention_days": 1})})
    h = Harness(cfg, store=SqlStore(db_url))
    h.engine.journal.loop = asyncio.get_running_loop()  # as start() sets it
    for i in range(10):
        h.engine.note("info", "old", f"old {i}")
    h.clock.advance(2 * 86400)
    h.engine.tick()  # the first check comes a minute after the start, in a task: it ran now
    assert h.engine.history.retention_task is not None
    await h.engine.history.retention_task
    assert not [e for e in h.engine.store.read_events(EventQuery(category="old"), limit=100)]
    h.engine.note("info", "old", "one more")
    h.clock.advance(2 * 86400 - 3600 + 60)
    h.engine.tick()
    assert h.engine.history.retention_task is not None  # an hour after the last one
    await h.engine.history.retention_task
    h.engine.note("info", "old", "recent")
    h.clock.advance(60)
    h.engine.tick()
    assert h.engine.history.retention_task is None  # not again within the hour
    h.engine.store.close()
