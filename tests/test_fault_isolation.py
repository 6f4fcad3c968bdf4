"""Fault isolation (issue 13): an exception in one quote, one symbol or one component is caught
where it happens, logged with its traceback, alerted once however often it repeats, and the
feed and the engine go on; a symbol that keeps failing takes no new entries; the stop event
is recorded whatever the feed's stop does."""

from __future__ import annotations

import asyncio
import logging

from services.clock import FakeClock
from services.engine import Engine
from tui_trader.wiring import build_engine
from services.ports import FeedHealth
from services.adapters.simulated.feed import SimulatedFeed
from services.market import Quote

from .conftest import T0, Harness
from .engine_support import RecordingStore, make_config, strat


def alerts(engine: Engine, level: str | None = None) -> list:
    return [e for e in engine.events if e.needs_ack and e.category == "engine" and level in (None, e.level)]


def failing_for(engine: Engine, symbol: str) -> dict:
    """Make the work of `symbol`'s quotes raise while switch["on"] (the execution client's quote handling)."""
    switch = {"on": True}
    client_on_quote = engine.client.on_quote

    def on_quote(q: Quote) -> None:
        if switch["on"] and q.symbol == symbol:
            raise RuntimeError(f"boom on {q.symbol}")
        client_on_quote(q)

    engine.client.on_quote = on_quote
    return switch


def test_a_failing_symbol_is_alerted_once_quarantined_and_the_others_trade_on(caplog):
    cfg = make_config({
        "btc": strat(target="1%"),  # enters, takes its profit, enters again
        "eth": strat(symbols=["ETHUSDT"], stop_loss="1%"),
    })
    h = Harness(cfg, store=RecordingStore())
    h.quote("BTCUSDT", 100.0)
    h.quote("ETHUSDT", 50.0)
    eth = h.engine.groups[next(g.id for g in h.engine.groups.values() if g.strategy_id == "eth")]
    switch = failing_for(h.engine, "ETHUSDT")
    with caplog.at_level(logging.ERROR, logger="tui_trader.engine"):
        h.quote("ETHUSDT", 50.1)  # raises: caught, alerted
        (alert,) = alerts(h.engine)
        assert alert.level == "error" and alert.symbol == "ETHUSDT"
        assert alert.message.startswith("internal error in the quote path on ETHUSDT: RuntimeError: boom on ETHUSDT")
        h.quote("BTCUSDT", 101.0)  # BTCUSDT trades on: its target is reached
        assert h.engine.trades[-1].strategy_id == "btc" and h.engine.trades[-1].exit_reason == "target"
        h.quote("ETHUSDT", 50.2)
        assert "ETHUSDT" not in h.engine.quarantined and len(alerts(h.engine)) == 1  # the same failure: one alert
        h.quote("ETHUSDT", 50.3)  # the third within a minute: quarantined
    assert h.engine.quarantined == {"ETHUSDT": "quarantined after 3 errors: RuntimeError: boom on ETHUSDT"}
    (critical,) = alerts(h.engine, "critical")
    assert critical.symbol == "ETHUSDT" and "no new entries on it" in critical.message
    assert len(alerts(h.engine, "error")) == 1
    failures = [r for r in caplog.records if r.exc_info and r.name == "tui_trader.engine"]
    assert failures and "boom on ETHUSDT" in str(failures[0].exc_info[1])  # the traceback is in the log

    switch["on"] = False  # whatever failed no longer does: its position is still managed...
    h.quote("ETHUSDT", 49.0)  # ...through its stop
    assert eth.status == "closed" and eth.exit_reason == "stop_loss"
    h.quote("ETHUSDT", 49.0)  # ...but it takes no new entry
    assert not any(g.strategy_id == "eth" for g in h.engine.groups.values())
    why = "quarantined after 3 errors: RuntimeError: boom on ETHUSDT"
    assert [(w.symbol, w.reason) for w in h.engine.snapshot().waiting if w.strategy_id == "eth"] == [("ETHUSDT", why)]
    assert h.engine.enter_now("eth").message == f"eth ETHUSDT: held: {why}"
    h.quote("BTCUSDT", 101.0)
    assert any(g.strategy_id == "btc" for g in h.engine.groups.values())  # BTCUSDT still enters


def test_failures_spread_out_are_alerted_each_minute_and_not_quarantined():
    h = Harness(make_config({"eth": strat(symbols=["ETHUSDT"], entry="manual")}), store=RecordingStore())
    failing_for(h.engine, "ETHUSDT")
    for _ in range(4):
        h.quote("ETHUSDT", 50.0, dt=31)  # a failure every 31 s: never 3 within a minute
    assert h.engine.quarantined == {}
    assert [a.message.split("; ")[0] for a in alerts(h.engine)] == [
        "internal error in the quote path on ETHUSDT: RuntimeError: boom on ETHUSDT",
        "internal error in the quote path on ETHUSDT: RuntimeError: boom on ETHUSDT (1 more time(s) since the last alert)",
    ]


def test_a_failing_tick_in_the_quote_path_is_caught_and_alerted_once(monkeypatch):
    h = Harness(make_config({"s": strat(target="1%")}), store=RecordingStore())

    def broken(now: float) -> None:
        raise ValueError("bad tick")

    monkeypatch.setattr(h.engine.feed_watch, "tick", broken)
    for px in (100.0, 100.5, 101.0):
        h.quote("BTCUSDT", px)  # the tick runs with each of these quotes, and fails
    assert h.engine.trades[-1].exit_reason == "target"  # the quotes' own work went on
    (alert,) = alerts(h.engine)
    assert alert.message.startswith("internal error in the engine tick: ValueError: bad tick")
    assert h.engine.quarantined == {}  # not the symbol's fault


async def test_the_simulated_feed_survives_a_raising_handler():
    clock = FakeClock(T0)
    cfg = make_config({"s": strat()})
    feed = SimulatedFeed(cfg.symbols, clock, seed=1)
    got: list[str] = []
    errors: list[tuple[str, str]] = []

    def handler(q: Quote) -> None:
        if q.symbol == "BTCUSDT":
            raise RuntimeError("handler bug")
        got.append(q.symbol)

    feed.on_error = lambda sym, exc: errors.append((sym, str(exc)))
    await feed.start(handler)
    for _ in range(3):
        await asyncio.sleep(0)
        clock.advance(1.0)
        await asyncio.sleep(0)
    assert not feed._task.done()  # still running
    assert got.count("ETHUSDT") >= 3 and got.count("ACME") >= 3  # the others keep coming
    assert len(errors) >= 3 and set(errors) == {("BTCUSDT", "handler bug")}
    await feed.stop()


async def test_the_engine_reports_a_failed_delivery_through_the_feed():
    h = Harness(make_config({"s": strat(entry="manual")}), store=RecordingStore())
    assert h.engine.feed.on_error is not None
    h.engine.feed.on_error("ETHUSDT", KeyError("x"))
    (alert,) = alerts(h.engine)
    assert alert.message.startswith("internal error in the feed's quote delivery on ETHUSDT: KeyError: 'x'")


class BrokenFeed:
    """A feed whose stop raises (as a feed task that died of an error re-raises it)."""

    def __init__(self, symbols) -> None:
        self.symbols = tuple(symbols)
        self.health = FeedHealth(name="broken")

    async def start(self, on_quote) -> None:
        self.health.connected = True

    async def stop(self) -> None:
        raise RuntimeError("feed died")


class BrokenComponent:
    def __init__(self) -> None:
        self.stopped = False

    async def start(self, engine) -> None:
        raise OSError("cannot start")

    async def stop(self) -> None:
        self.stopped = True
        raise OSError("cannot stop")


async def test_the_stop_event_is_recorded_even_when_the_feeds_stop_raises():
    cfg = make_config({"s": strat(entry="manual")})
    store = RecordingStore()
    engine = build_engine(cfg, FakeClock(T0), store, feed=BrokenFeed(cfg.symbols))
    await engine.start()
    await engine.stop()  # does not raise
    assert engine.state == "stopped"
    messages = [e["message"] for e in store.events("engine")]
    assert any(m.startswith("engine stopped:") for m in messages)
    assert [m.split(";")[0] for m in messages if m.startswith("internal error")] == [
        "internal error in stopping the feed: RuntimeError: feed died"]


async def test_a_component_that_fails_to_start_or_stop_leaves_the_engine_running_and_stopping():
    cfg = make_config({"s": strat(entry="manual")})
    store = RecordingStore()
    engine = build_engine(cfg, FakeClock(T0), store)
    component = BrokenComponent()
    engine.attachments.append(component)
    await engine.start()
    assert engine.state == "running"
    await engine.stop()
    assert engine.state == "stopped" and component.stopped
    messages = [e["message"] for e in store.events("engine")]
    assert any(m.startswith("engine stopped:") for m in messages)
    assert [m.split(";")[0] for m in messages if m.startswith("internal error")] == [
        "internal error in starting BrokenComponent: OSError: cannot start",
        "internal error in stopping BrokenComponent: OSError: cannot stop",
    ]


def test_a_quarantined_symbol_takes_no_pyramid():
    layers = {"layers": [{"gap_pct": 0, "weight": 1, "tp_pct": 5}], "max_pyramids": 3}
    h = Harness(make_config({"g": strat(entry="manual", sizing={"fixed_value": 100}, dca=layers)}), store=RecordingStore())
    h.quote("BTCUSDT", 100.0)
    assert h.engine.enter_now("g").ok
    failing_for(h.engine, "BTCUSDT")
    for _ in range(3):
        h.quote("BTCUSDT", 100.0)
    del h.engine.client.on_quote  # the client's own again
    h.quote("BTCUSDT", 100.0)
    result = h.engine.enter_now("g")
    assert not result.ok and result.message == "g BTCUSDT: no pyramid: quarantined after 3 errors: RuntimeError: boom on BTCUSDT"


async def test_a_failing_snapshot_subscriber_does_not_keep_the_engine_from_stopping():
    store = RecordingStore()
    engine = build_engine(make_config({"s": strat(entry="manual")}), FakeClock(T0), store)
    await engine.start()

    def broken(snap) -> None:
        raise RuntimeError("screen bug")

    engine.subscribe(broken)
    await engine.stop()
    assert engine.state == "stopped"
    messages = [e["message"] for e in store.events("engine")]
    assert any(m.startswith("engine stopped:") for m in messages)
    assert any(m.startswith("internal error in publishing a snapshot: RuntimeError: screen bug") for m in messages)
