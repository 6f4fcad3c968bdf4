"""Timed work is due-driven (issue 12, point 5): each piece is scheduled when its time is known,
checked against the current state when it falls due, and looked at again at the next tick
while it waits for a fresh quote; a tick with nothing due looks at no position."""

from __future__ import annotations

from functools import partial

from services.clock import FakeClock
from tui_trader.wiring import build_engine
from services.market import Quote
from services.replay import ReplayStore
from services.store import MemoryStore, SqlStore
from services.timers import Timers
from tests.conftest import T0, Harness
from tests.engine_support import RejectingClient, make_config, strat
from tests.test_queue import full_pool
from tests.test_shutdown import config as shutdown_config, engine_with_a_working_entry


def test_timers_give_what_is_due_by_kind_once_each_in_due_order():
    timers = Timers()
    for due, kind, key in ((3.0, "group", "b"), (1.0, "group", "a"), (2.0, "exit", "x"), (2.5, "group", "a"),
                           (9.0, "group", "c")):
        timers.at(due, kind, key)
    assert timers.pop_due(0.5) == {}
    assert {kind: list(keys) for kind, keys in timers.pop_due(3.0).items()} == {"group": ["a", "b"], "exit": ["x"]}
    assert timers.pop_due(8.9) == {}
    assert list(timers.pop_due(9.0)["group"]) == ["c"]


class Unwalkable(dict):
    """Positions that refuse to be walked."""

    def values(self):
        raise AssertionError("the tick walked every position")

    items = keys = __iter__ = values


def test_a_tick_with_nothing_due_looks_at_no_position():
    h = Harness(make_config({sym: strat(symbols=[sym], trail_distance="1%", time_exit_s=60)
                             for sym in ("BTCUSDT", "ETHUSDT", "ACME")}))
    for sym in ("BTCUSDT", "ETHUSDT", "ACME"):
        h.quote(sym, 10.0)  # a tick each: the marks were sampled at the last one, next a second later
    groups = h.engine.groups
    assert len(groups) == 3
    h.engine.groups = Unwalkable(groups)
    for _ in range(3):
        h.clock.advance(0.25)
        h.engine.tick()
    h.engine.groups = groups
    assert len(h.engine.snapshot().positions) == 3


def long_with_time_exit(**kw) -> tuple[Harness, int]:
    h = Harness(make_config({"s": strat(time_exit_s=60, reentry=False)}, **kw))
    h.quote("BTCUSDT", 100.0)
    return h, h.position().group_id


def test_a_time_exit_moved_earlier_fires_from_the_tick_at_its_new_time():
    h, gid = long_with_time_exit()
    assert h.engine.edit_levels(gid, time_exit_at=h.clock.now() + 2).ok
    h.clock.advance(1.9)
    h.engine.tick()
    assert h.position() is not None
    h.clock.advance(0.1)
    h.engine.tick()
    assert h.engine.trades[-1].exit_reason == "time"


def test_a_time_exit_moved_later_does_not_fire_at_the_old_time():
    h, gid = long_with_time_exit(max_age=100.0)
    assert h.engine.edit_levels(gid, time_exit_at=h.clock.now() + 90).ok
    h.clock.advance(60)
    h.engine.tick()
    assert h.position() is not None
    h.clock.advance(30)
    h.engine.tick()
    assert h.engine.trades[-1].exit_reason == "time"


def test_a_time_exit_stored_before_a_restart_fires_from_the_tick_after_it(db_url):
    cfg = make_config({"s": strat(time_exit_s=60, reentry=False)}, max_age=30.0)
    h = Harness(cfg, SqlStore(db_url))
    h.quote("BTCUSDT", 100.0)
    exit_at = h.position().time_exit_at
    h.engine.store.close()
    again = Harness(cfg, SqlStore(db_url), FakeClock(h.clock.now() + 10))
    try:
        again.quote("BTCUSDT", 100.0, dt=40)  # fresh, and its tick: not yet
        assert again.position() is not None
        again.clock.t = exit_at
        again.engine.tick()
        assert again.engine.trades[-1].exit_reason == "time"
    finally:
        again.engine.store.close()


def test_a_limit_exit_due_for_a_reprice_waits_for_a_fresh_quote():
    h = Harness(make_config({"s": strat(target="5%", exit_execution={"order_type": "limit", "max_retries": 1,
                                                                      "retry_delay_s": 2})}))
    h.quote("BTCUSDT", 100.0)
    h.quote("BTCUSDT", 105.0, 107.0)  # a limit sell at the mid, 106
    h.clock.advance(10)  # due for its re-price, but no quote for 10 s
    h.engine.tick()
    limits = [(o.limit_price, o.status) for o in h.engine.recent_orders if o.purpose == "exit"]
    assert limits == [(106.0, "working")]  # not re-priced blind
    h.quote("BTCUSDT", 105.0, 107.0, dt=0.25)  # fresh, and the tick it brings
    limits = [(o.limit_price, o.status) for o in h.engine.recent_orders if o.purpose == "exit"]
    assert limits == [(106.0, "cancelled"), (105.5, "working")]


def test_a_replaced_signal_expires_a_ttl_after_its_replacement():
    h = full_pool(ttl=60)
    h.engine.enter_now("a", price=100.0)
    h.quote("BTCUSDT", 100.0, dt=30)
    h.engine.enter_now("a", price=100.5)  # replaces it: 60 s from now
    h.quote("BTCUSDT", 100.0, dt=30)
    assert len(h.engine.snapshot().queue) == 1
    h.quote("BTCUSDT", 100.0, dt=30)
    assert not h.engine.snapshot().queue


def test_a_queued_signal_stored_before_a_restart_expires_at_its_ttl_with_the_pool_full(db_url):
    h = full_pool(SqlStore(db_url), ttl=60)
    h.engine.enter_now("a", price=100.0)
    h.engine.store.close()
    again = Harness(h.engine.config, SqlStore(db_url), FakeClock(h.clock.now() + 1))
    try:
        again.quote("ACME", 20.0, dt=0)
        assert len(again.engine.groups) == 1 and len(again.engine.snapshot().queue) == 1  # the pool is full
        again.quote("ACME", 20.0, dt=59)
        assert not again.engine.snapshot().queue
    finally:
        again.engine.store.close()


def test_a_symbol_first_quoted_after_the_others_went_stale_goes_stale_too():
    h = Harness(make_config({"s": strat(entry="manual")}, max_age=5.0))
    h.quote("BTCUSDT", 100.0)
    h.clock.advance(6)
    h.engine.tick()
    h.quote("ETHUSDT", 50.0)
    h.clock.advance(6)
    h.engine.tick()
    assert [e.message.split(":")[0] for e in h.engine.events if e.category == "feed"] == ["BTCUSDT", "ETHUSDT"]


async def test_an_entry_kept_at_the_stop_waits_for_a_fresh_quote_after_the_restart(db_url):
    await engine_with_a_working_entry(db_url, "keep").stop()
    again = build_engine(shutdown_config("keep"), FakeClock(T0 + 60), SqlStore(db_url))
    again.open()
    try:
        again.tick()  # no quote yet: nothing to place it on
        again.on_quote(Quote("BTCUSDT", again.clock.now(), 99.0, 101.0))
        again.tick()
        assert [(o.limit_price, o.status) for o in again.snapshot().orders][-1] == (100.0, "working")
    finally:
        again.store.close()


def rejecting(**kw) -> Harness:
    """A long on BTCUSDT at 100 with a 1 % stop, whose first exit order is rejected."""
    h = Harness(make_config({"s": strat(stop_loss="1%", reentry=False, **kw)}), client=partial(RejectingClient, n=1))
    h.quote("BTCUSDT", 100.0)
    h.quote("BTCUSDT", 98.0)  # the stop: its exit order is rejected, sent again a second later
    return h


def test_a_rejected_exit_is_sent_again_by_the_tick_without_a_new_quote():
    h = rejecting()
    h.clock.advance(1)
    h.engine.tick()
    assert h.engine.trades[-1].exit_reason == "stop_loss"


def test_an_exit_sent_again_as_a_limit_is_repriced_a_delay_after_it_was_sent_again():
    h = rejecting(exit_execution={"order_type": "limit", "max_retries": 1, "retry_delay_s": 2})
    h.quote("BTCUSDT", 97.0, 99.0)  # a second later: sent again, a limit at the mid
    h.clock.advance(1)  # two seconds after the rejected one was sent
    h.engine.tick()
    assert [(o.limit_price, o.status) for o in h.engine.recent_orders if o.purpose == "exit"][-1] == (98.0, "working")
    h.clock.advance(1)
    h.engine.tick()
    assert [(o.limit_price, o.status) for o in h.engine.recent_orders if o.purpose == "exit"][-1] == (97.5, "working")


def test_a_replay_keeps_no_history_of_marks():
    """Sparklines are for the screens: a run whose store keeps no marks (replay's) samples none."""
    for store, samples in ((MemoryStore(), 3), (ReplayStore(), 0)):
        h = Harness(make_config({"s": strat()}), store)
        for _ in range(3):
            h.quote("BTCUSDT", 100.0)  # a second apart: a sample each
        assert len(h.position().marks) == samples


def pnl_rules_run(store) -> Harness:
    """Strategy s long BTCUSDT and ETHUSDT with a P&L stop of 5 and a 30 s cooldown after it,
    under a book daily loss limit: the stop fires, then the strategy enters again."""
    cfg = make_config({"s": strat(symbols=["BTCUSDT", "ETHUSDT"], pnl={"stop": 5, "cooldown_s": 30})})
    cfg = cfg.model_copy(update={"book": type(cfg.book).model_validate({"daily_loss_limit": 1_000})})
    h = Harness(cfg, store)
    h.quote("BTCUSDT", 100.0)
    h.quote("ETHUSDT", 50.0)
    groups = h.engine.groups
    if isinstance(store, ReplayStore):  # where the tick would re-sum every position's P&L
        h.engine.groups = Unwalkable(groups)
    h.clock.advance(0.25)
    h.engine.tick()
    h.engine.groups = groups
    h.quote("BTCUSDT", 97.0)
    h.quote("ETHUSDT", 47.9)  # P&L -5.1: the stop fires, 30 s without entries
    h.quote("BTCUSDT", 98.0, dt=29)
    h.quote("BTCUSDT", 98.0, dt=1.5)  # its tick ends the block
    h.quote("BTCUSDT", 98.0)  # in again
    return h


def test_a_replays_p_and_l_rules_run_on_running_sums_and_act_as_the_engines():
    live, replay = pnl_rules_run(MemoryStore()), pnl_rules_run(ReplayStore())
    assert [t.exit_reason for t in replay.engine.trades] == ["strategy_pnl_stop"] * 2
    assert list(replay.engine.trades) == list(live.engine.trades)
    released = [(e.ts, e.message) for h in (live, replay) for e in h.engine.events if "allowed again" in e.message]
    assert len(released) == 2 and released[0] == released[1]
    assert [g.symbol for g in replay.engine.groups.values()] == ["BTCUSDT"]  # in again after the cooldown
