"""Entries and the operator commands (DESIGN §3 evaluation order, pool; §2 commands):
immediate entry, re-entry and cooldown, reentry=false, the pool and its visible reason,
manual entry, enter_now / exit_* / pause / resume / edit_levels results and errors, and an
exit rejected on a stale quote that is retried on the next fresh one."""

from __future__ import annotations

import json
import sqlite3

import pytest

from services.clock import FakeClock
from tui_trader.wiring import build_engine
from services.market import Quote
from services.store import SqlStore
from tests.conftest import T0, Harness
from tests.engine_support import RecordingStore, make_config, strat


def stale_quote(h: Harness, symbol: str, bid: float, ask: float | None = None, age: float = 6.0) -> None:
    h.clock.advance(1)
    h.engine.on_quote(Quote(symbol, h.clock.now() - age, bid, bid if ask is None else ask))


def strategy_view(h: Harness, sid: str):
    return next(s for s in h.engine.snapshot().strategies if s.id == sid)


# -- immediate entries ------------------------------------------------------------------------


def test_immediate_strategy_enters_on_the_first_fresh_quote_at_the_ask():
    store = RecordingStore()
    h = Harness(make_config({"s": strat(stop_loss="1%")}), store=store)
    stale_quote(h, "BTCUSDT", 100.0)
    assert h.position() is None  # a stale price never triggers an entry
    assert h.engine.snapshot().waiting[0].reason == "waiting for a fresh quote"
    h.quote("BTCUSDT", 99.0, 101.0)
    p = h.position()
    assert (p.strategy_id, p.symbol, p.side, p.qty, p.entry, p.mark) == ("s", "BTCUSDT", "buy", 1.0, 101.0, 100.0)
    assert p.opened_at == T0 + 2
    [order] = h.engine.snapshot().orders
    assert (order.side, order.order_type, order.purpose, order.status, order.avg_fill_price) == (
        "buy", "market", "entry", "filled", 101.0)
    assert order.reference_price == 100.0
    [fill] = store.of("fill")
    assert (fill["price"], fill["qty"], fill["liquidity"]) == (101.0, 1.0, "taker")
    [run] = [r for r in store.of("run") if r["status"] == "live"]
    assert run["session_metadata"]["entry_method"] == "immediate"
    assert strategy_view(h, "s").status == "live"


def test_a_short_strategy_enters_at_the_bid():
    h = Harness(make_config({"s": strat(side="sell")}))
    h.quote("BTCUSDT", 99.0, 101.0)
    assert (h.position().side, h.position().entry) == ("sell", 99.0)


def test_fixed_value_sizing_divides_by_the_touch():
    h = Harness(make_config({"s": strat(sizing={"fixed_value": 1000})}))
    h.quote("BTCUSDT", 99.0, 125.0)
    assert h.position().qty == 8.0


def test_one_position_per_strategy_and_symbol():
    h = Harness(make_config({"s": strat(symbols=["BTCUSDT", "ETHUSDT"])}))
    for _ in range(3):
        h.quote("BTCUSDT", 100.0)
        h.quote("ETHUSDT", 50.0)
    snap = h.engine.snapshot()
    assert sorted(p.symbol for p in snap.positions) == ["BTCUSDT", "ETHUSDT"]
    assert len(snap.orders) == 2


# -- re-entry and cooldown --------------------------------------------------------------------


def test_exit_and_reentry_never_happen_on_the_same_quote():
    h = Harness(make_config({"s": strat(stop_loss=1)}))
    h.quote("BTCUSDT", 100.0)
    first = h.position().group_id
    h.quote("BTCUSDT", 99.0)  # stop: exits on this quote
    assert h.position() is None
    assert len(h.engine.snapshot().trades) == 1
    h.quote("BTCUSDT", 98.5)  # cooldown 0: re-enters on the next quote, at its price
    p = h.position()
    assert p.group_id != first
    assert p.entry == 98.5
    assert p.stop == 97.5


def test_reentry_waits_until_the_cooldown_has_passed():
    h = Harness(make_config({"s": strat(stop_loss=1, cooldown_s=10)}))
    h.quote("BTCUSDT", 100.0)
    h.quote("BTCUSDT", 99.0)  # exit at T0 + 2
    exit_at = T0 + 2
    h.quote("BTCUSDT", 99.0, dt=4)
    assert h.position() is None
    view = strategy_view(h, "s")
    assert (view.status, view.next_entry_at) == ("cooldown", exit_at + 10)
    [waiting] = h.engine.snapshot().waiting
    assert (waiting.strategy_id, waiting.symbol, waiting.reason) == ("s", "BTCUSDT", "cooldown, 6s left")
    h.quote("BTCUSDT", 99.0, dt=5.9)  # 9.9 s after the exit
    assert h.position() is None
    h.quote("BTCUSDT", 99.2, dt=0.1)  # exactly at the cooldown's end
    assert h.position() is not None
    assert h.position().opened_at == exit_at + 10


def test_reentry_false_enters_once():
    h = Harness(make_config({"s": strat(stop_loss=1, reentry=False)}))
    h.quote("BTCUSDT", 100.0)
    h.quote("BTCUSDT", 99.0)
    for px in (99.0, 100.0, 101.0):
        h.quote("BTCUSDT", px, dt=60)
    snap = h.engine.snapshot()
    assert snap.positions == ()
    assert len(snap.trades) == 1
    assert snap.waiting == ()
    view = strategy_view(h, "s")
    assert view.status == "closed"
    assert "re-entry is off" in view.reason


# -- pool -------------------------------------------------------------------------------------


def test_pool_blocks_entries_with_a_visible_reason_and_frees_on_exit():
    h = Harness(make_config({
        "a": strat(symbols=["BTCUSDT"], stop_loss=1),
        "b": strat(symbols=["ETHUSDT"]),
    }, max_open=1))
    h.quote("BTCUSDT", 100.0)
    h.quote("ETHUSDT", 50.0)
    snap = h.engine.snapshot()
    assert [p.strategy_id for p in snap.positions] == ["a"]
    assert (snap.pool_used, snap.pool_total) == (1, 1)
    [waiting] = snap.waiting
    assert (waiting.strategy_id, waiting.symbol, waiting.reason) == ("b", "ETHUSDT", "pool full (1/1)")
    assert strategy_view(h, "b").reason == "pool full (1/1)"
    result = h.engine.enter_now("b")  # a signal that finds the pool full waits in the queue
    assert result.ok and result.message == "b ETHUSDT: pool full (1/1); queued as #1, rank 1 of 1"
    h.quote("BTCUSDT", 99.0)  # a exits: the slot frees and goes to b's queued signal at once
    snap = h.engine.snapshot()
    assert [p.strategy_id for p in snap.positions] == ["b"] and not snap.queue
    h.quote("BTCUSDT", 99.0)
    snap = h.engine.snapshot()
    assert [p.strategy_id for p in snap.positions] == ["b"]
    assert [(w.strategy_id, w.reason) for w in snap.waiting] == [("a", "pool full (1/1)")]


# -- manual entry -----------------------------------------------------------------------------


def test_manual_strategy_only_enters_on_enter_now():
    store = RecordingStore()
    h = Harness(make_config({"m": strat(entry="manual", target=5)}), store=store)
    for px in (100.0, 101.0, 102.0):
        h.quote("BTCUSDT", px)
    assert h.position() is None
    assert h.engine.snapshot().waiting == ()
    assert strategy_view(h, "m").status == "waiting"
    result = h.engine.enter_now("m")
    assert result.ok, result.message
    assert "entered buy 1 BTCUSDT at 102.00" in result.message
    p = h.position()
    assert (p.entry, p.target) == (102.0, 107.0)
    [signal] = [r for r in store.of("signal") if r["status"] != "received"]
    assert (signal["strategy_id"], signal["kind"], signal["source"], signal["status"]) == ("m", "entry", "tui", "done")
    [run] = [r for r in store.of("run") if r["status"] == "live"]
    assert run["session_metadata"]["entry_method"] == "tui"
    h.quote("BTCUSDT", 107.0)  # target; a manual strategy does not re-enter by itself
    h.quote("BTCUSDT", 107.0)
    assert h.position() is None
    assert len(h.engine.snapshot().trades) == 1


def test_enter_now_errors():
    h = Harness(make_config({
        "m": strat(entry="manual", symbols=["BTCUSDT", "ETHUSDT"]),
        "p": strat(entry="manual", symbols=["ACME"]),
    }))
    eng = h.engine
    r = eng.enter_now("nope")
    assert not r.ok and r.message == "unknown strategy 'nope'"
    r = eng.enter_now("m", "ACME")
    assert not r.ok and "does not trade ACME" in r.message
    r = eng.enter_now("m", "BTCUSDT")  # never quoted
    assert not r.ok and "no fresh quote" in r.message
    stale_quote(h, "BTCUSDT", 100.0)
    r = eng.enter_now("m", "BTCUSDT")
    assert not r.ok and "no fresh quote (older than 5s)" in r.message
    assert h.position() is None
    assert eng.pause("p").ok
    h.quote("ACME", 20.0)
    r = eng.enter_now("p")
    assert not r.ok and r.message == "p is paused; resume it first"
    h.quote("BTCUSDT", 100.0)
    assert eng.enter_now("m", "BTCUSDT").ok
    r = eng.enter_now("m", "BTCUSDT")
    assert not r.ok and "already holds #" in r.message
    assert len(eng.snapshot().positions) == 1


def test_enter_now_is_refused_when_the_engine_is_not_running():
    h = Harness(make_config({"m": strat(entry="manual")}))
    h.quote("BTCUSDT", 100.0)
    h.engine.state = "stopping"
    r = h.engine.enter_now("m")
    assert not r.ok and "entries are not taken" in r.message


# -- exits by the operator --------------------------------------------------------------------


def test_exit_position_closes_at_market_and_reports_pnl():
    h = Harness(make_config({"s": strat(reentry=False)}))
    h.quote("BTCUSDT", 100.0)
    gid = h.position().group_id
    h.quote("BTCUSDT", 101.0, 101.5)
    r = h.engine.exit_position(gid)
    assert r.ok and r.message == f"closed #{gid} BTCUSDT, P&L +1.00"
    [t] = h.engine.snapshot().trades
    assert (t.exit_reason, t.exit_price) == ("manual", 101.0)
    r = h.engine.exit_position(gid)
    assert not r.ok and r.message == f"no open position #{gid}"
    r = h.engine.exit_position(999)
    assert not r.ok and r.message == "no open position #999"


def test_exit_strategy_and_exit_all():
    h = Harness(make_config({
        "a": strat(symbols=["BTCUSDT", "ETHUSDT"], reentry=False),
        "b": strat(symbols=["ACME"], side="sell", reentry=False),
    }))
    h.quote("BTCUSDT", 100.0)
    h.quote("ETHUSDT", 50.0)
    h.quote("ACME", 20.0)
    eng = h.engine
    r = eng.exit_strategy("zzz")
    assert not r.ok and r.message == "unknown strategy 'zzz'"
    r = eng.exit_strategy("a")
    assert r.ok
    assert r.message.count("closed #") == 2
    assert [p.strategy_id for p in eng.snapshot().positions] == ["b"]
    r = eng.exit_strategy("a")
    assert not r.ok and r.message == "a has no open position to exit"
    r = eng.exit_all()
    assert r.ok and "closed #" in r.message
    assert eng.snapshot().positions == ()
    assert sorted(t.exit_reason for t in eng.snapshot().trades) == ["manual"] * 3
    r = eng.exit_all()
    assert not r.ok and r.message == "there is no open position to exit"


def test_an_exit_on_a_stale_quote_stays_pending_and_is_sent_on_the_next_fresh_quote():
    h = Harness(make_config({"s": strat()}))
    h.quote("BTCUSDT", 100.0)
    gid = h.position().group_id
    h.clock.advance(6)  # the quote is now stale
    r = h.engine.exit_position(gid)
    assert r.ok and "is pending" in r.message
    p = h.position()
    assert (p.status, p.exit_pending) == ("EXITING", "manual")
    assert [o for o in h.engine.snapshot().orders if o.purpose == "exit"] == []  # it would only be rejected
    assert not [e for e in h.engine.snapshot().events if e.needs_ack and e.category == "order"]
    r = h.engine.exit_position(gid)
    assert not r.ok and r.message == f"#{gid} is already exiting (manual)"
    assert h.engine.exit_all().ok is False  # nothing "open" left to exit
    stale_quote(h, "BTCUSDT", 80.0)  # still stale: not sent
    assert [o for o in h.engine.snapshot().orders if o.purpose == "exit"] == []
    h.quote("BTCUSDT", 97.0, 98.0)
    assert h.position() is None  # no re-entry on the quote that exited
    [t] = h.engine.snapshot().trades
    assert (t.exit_reason, t.exit_price) == ("manual", 97.0)
    exits = [o for o in h.engine.snapshot().orders if o.purpose == "exit"]
    assert [o.status for o in exits] == ["filled"]
    h.quote("BTCUSDT", 97.0, 98.0)
    assert h.position() is not None


def test_a_rule_exit_rejected_for_a_missing_bid_is_retried():
    h = Harness(make_config({"s": strat(stop_loss=1, reentry=False)}))
    h.quote("BTCUSDT", 100.0)
    h.quote("BTCUSDT", 0.0, 99.0, last=98.0)  # the mark (last) hits the stop, but there is no bid
    p = h.position()
    assert (p.status, p.exit_pending) == ("EXITING", "stop_loss")
    h.quote("BTCUSDT", 98.5, 99.0)
    [t] = h.engine.snapshot().trades
    assert (t.exit_reason, t.exit_price) == ("stop_loss", 98.5)


# -- pause / resume ---------------------------------------------------------------------------


def test_pause_stops_entries_but_keeps_managing_open_positions_and_resume_re_enables():
    h = Harness(make_config({"s": strat(symbols=["BTCUSDT", "ETHUSDT"], stop_loss=1)}))
    h.quote("BTCUSDT", 100.0)
    r = h.engine.pause("s")
    assert r.ok and r.message == "s paused; its open positions are still managed"
    assert strategy_view(h, "s").status == "paused"
    h.quote("ETHUSDT", 50.0)  # no entry while paused
    assert [p.symbol for p in h.engine.snapshot().positions] == ["BTCUSDT"]
    h.quote("BTCUSDT", 99.0)  # the stop still acts
    assert h.position() is None
    assert h.engine.snapshot().trades[0].exit_reason == "stop_loss"
    h.quote("BTCUSDT", 99.0)
    assert h.position() is None
    r = h.engine.pause("s")
    assert not r.ok and r.message == "s is already paused"
    r = h.engine.resume("s")
    assert r.ok and r.message == "s resumed"
    h.quote("ETHUSDT", 50.0)
    h.quote("BTCUSDT", 99.0)
    assert sorted(p.symbol for p in h.engine.snapshot().positions) == ["BTCUSDT", "ETHUSDT"]
    assert not h.engine.resume("s").ok
    r = h.engine.pause("ghost")
    assert not r.ok and r.message == "unknown strategy 'ghost'"


def test_pause_survives_a_restart(db_url):
    h = Harness(make_config({"s": strat()}), store=SqlStore(db_url))
    assert h.engine.pause("s").ok
    h.engine.store.close()
    eng = build_engine(make_config({"s": strat()}), FakeClock(T0 + 100), SqlStore(db_url))
    eng.open()
    try:
        assert eng.strategies["s"].paused
        eng.on_quote(Quote("BTCUSDT", T0 + 100, 100.0, 100.0))
        assert eng.groups == {}
    finally:
        eng.store.close()


# -- edit_levels ------------------------------------------------------------------------------


def long_with_levels(store=None) -> tuple[Harness, int]:
    h = Harness(make_config({"s": strat(stop_loss="1%", target="10%", trail_distance="1%", reentry=False)}), store=store)
    h.quote("BTCUSDT", 100.0)  # stop 99, target 110, trail armed at 99
    return h, h.position().group_id


def test_edit_refuses_a_stop_or_target_on_the_wrong_side_of_the_mark():
    h, gid = long_with_levels()
    r = h.engine.edit_levels(gid, stop=100.5)
    assert not r.ok
    assert r.message == "stop 100.50 is on the wrong side: a long's stop must be below the mark 100.00"
    r = h.engine.edit_levels(gid, target=99.5)
    assert not r.ok and "target 99.50 is on the wrong side" in r.message and "the mark 100.00" in r.message
    r = h.engine.edit_levels(gid, stop=-1.0)
    assert not r.ok and "positive" in r.message
    p = h.position()
    assert (p.stop, p.target) == (99.0, 110.0)  # nothing changed


def test_edit_refuses_wrong_side_levels_of_a_short():
    h = Harness(make_config({"s": strat(side="sell", stop_loss="1%")}))
    h.quote("BTCUSDT", 100.0)
    gid = h.position().group_id
    r = h.engine.edit_levels(gid, stop=99.0)
    assert not r.ok and "a short's stop must be above the mark 100.00" in r.message
    r = h.engine.edit_levels(gid, target=101.0)
    assert not r.ok and "a short's target must be below the mark 100.00" in r.message
    assert h.engine.edit_levels(gid, stop=100.5, target=95.0).ok
    assert (h.position().stop, h.position().target) == (100.5, 95.0)


def test_edit_moves_stop_and_target_and_the_new_levels_act():
    h, gid = long_with_levels()
    r = h.engine.edit_levels(gid, stop=99.8, target=None, trail_distance=None)
    assert r.ok and "stop 99.00 -> 99.80" in r.message and "target 110.00 -> none" in r.message
    assert "trailing distance 1% -> none" in r.message
    h.quote("BTCUSDT", 111.0)  # the old target would have exited
    h.quote("BTCUSDT", 100.0)  # the removed trail would have exited
    assert h.position() is not None
    r = h.engine.edit_levels(gid, target=105.5)
    assert r.ok
    h.quote("BTCUSDT", 105.5)
    assert h.engine.snapshot().trades[0].exit_reason == "target"


def test_edit_trailing_distance_tightening_moves_the_level_widening_never_loosens():
    h, gid = long_with_levels()
    h.quote("BTCUSDT", 105.0)  # peak 105, level 103.95
    assert h.position().trail_level == pytest.approx(103.95)
    h.clock.advance(1)
    r = h.engine.edit_levels(gid, trail_distance="0.5%")
    assert r.ok
    p = h.position()
    assert p.trail_distance == "0.5%"
    assert p.trail_level == pytest.approx(104.475)
    assert p.trail_updated_at == h.clock.now()
    tightened_at = h.clock.now()
    h.clock.advance(1)
    r = h.engine.edit_levels(gid, trail_distance="2%")
    assert r.ok and "trailing distance 0.5% -> 2%" in r.message
    p = h.position()
    assert p.trail_distance == "2%"
    assert p.trail_level == pytest.approx(104.475)  # 105 * 0.98 = 102.9 would loosen it: kept
    assert p.trail_updated_at == tightened_at
    h.quote("BTCUSDT", 108.0)  # a new peak moves the level with the new distance only when tighter
    assert h.position().trail_level == pytest.approx(108 * 0.98)


def test_a_trailing_distance_that_would_trigger_at_once_needs_confirmation_then_exits():
    h, gid = long_with_levels()
    h.quote("BTCUSDT", 105.0)
    h.quote("BTCUSDT", 104.6)  # peak 105, level 103.95
    r = h.engine.edit_levels(gid, trail_distance="0.2%")  # 104.79 is above the mark
    assert not r.ok and r.needs_confirm
    assert r.message == f"#{gid} BTCUSDT: this edit would exit at once (trailing_stop at 104.60); confirm to apply it and exit now"
    assert h.position().trail_level == pytest.approx(103.95)  # nothing applied
    r = h.engine.edit_levels(gid, trail_distance="150%")
    assert not r.ok and "below 100%" in r.message
    r = h.engine.edit_levels(gid, trail_distance="abc")
    assert not r.ok and "expected a percentage" in r.message
    r = h.engine.edit_levels(gid, trail_distance="0.2%", confirm=True)
    assert r.ok and r.message.endswith("exiting (trailing_stop)")
    assert h.position() is None  # filled at once by the paper broker
    assert h.engine.trades[-1].exit_reason == "trailing_stop"


def test_edit_errors_for_unknown_or_exiting_positions_and_no_change():
    h, gid = long_with_levels()
    r = h.engine.edit_levels(12345, stop=1.0)
    assert not r.ok and r.message == "no open position #12345"
    r = h.engine.edit_levels(gid, stop=99.0)
    assert not r.ok and r.message == "nothing changed"
    h.clock.advance(10)
    h.engine.exit_position(gid)  # rejected (stale): pending
    r = h.engine.edit_levels(gid, stop=98.0)
    assert not r.ok and "is exiting (manual)" in r.message


def test_an_accepted_edit_is_committed_before_it_returns_and_audited(db_url):
    store = SqlStore(db_url)
    h, gid = long_with_levels(store)
    h.quote("BTCUSDT", 104.0)  # peak 104, level 102.96
    h.clock.advance(1)
    r = h.engine.edit_levels(gid, stop=100.0, trail_distance="0.5%")
    assert r.ok
    db = sqlite3.connect(f"file:{db_url[len('sqlite:///'):]}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    leg = db.execute("select * from legs where group_id = ?", (gid,)).fetchone()
    assert leg["stop"] == 100.0
    assert leg["trail_distance"] == "0.5%"
    assert leg["trail_level"] == pytest.approx(104 * 0.995)
    assert leg["trail_updated_at"] == h.clock.now()
    ev = db.execute("select * from strategy_events where category = 'levels'").fetchone()
    payload = json.loads(ev["payload"])
    assert payload["old"] == {"stop": 99.0, "target": 110.0, "trail_distance": "1%", "trail_activation": "0",
                              "trail_level": pytest.approx(102.96), "time_exit_at": None}
    assert payload["new"] == {"stop": 100.0, "target": 110.0, "trail_distance": "0.5%", "trail_activation": "0",
                              "trail_level": pytest.approx(103.48), "time_exit_at": None}
    assert ev["group_id"] == gid and ev["ts"] == h.clock.now()
    db.close()
    store.close()
    # a new engine on the same database manages the edited levels
    eng = build_engine(make_config({"s": strat(stop_loss="1%", target="10%", trail_distance="1%", reentry=False)}),
                 FakeClock(T0 + 50), SqlStore(db_url))
    eng.open()
    try:
        [leg] = eng.groups[gid].legs
        assert (leg.stop, leg.target, str(leg.trail_distance)) == (100.0, 110.0, "0.5%")
        assert leg.trail_level == pytest.approx(103.48)
        eng.on_quote(Quote("BTCUSDT", T0 + 50, 103.4, 103.4))  # under the edited trail level
        assert eng.groups == {}
        assert eng.trades[-1].exit_reason == "trailing_stop"
    finally:
        eng.store.close()


def test_a_trail_added_by_edit_to_a_losing_position_arms_at_once_from_the_mark():
    h = Harness(make_config({"s": strat(stop_loss="5%")}))
    h.quote("BTCUSDT", 100.0)
    h.quote("BTCUSDT", 98.0)  # under water
    (p,) = h.engine.snapshot().positions
    assert h.engine.edit_levels(p.group_id, trail_distance="1%").ok
    p = h.position()
    assert p.trail_active and p.trail_peak == 98.0 and p.trail_level == pytest.approx(97.02)
    h.quote("BTCUSDT", 97.0)
    assert h.engine.snapshot().trades[-1].exit_reason == "trailing_stop"


def test_a_snapshots_seq_moves_with_every_quote_taken():
    """Screens and the publisher tell a newer snapshot by its seq: a quote that changes nothing
    but the book still makes one."""
    from tests.conftest import Harness, config

    h = Harness(config(trend={"symbols": ["BTCUSDT"], "side": "buy", "entry": "manual", "sizing": {"fixed_qty": 1}}))
    before = h.engine.snapshot().seq
    h.quote("BTCUSDT", 100.0)
    after = h.engine.snapshot().seq
    assert after > before and after == h.engine.version
