"""The execution pool's queue (DESIGN §3 pool & queue): signals that find no slot wait, are
ranked (promoted, pyramid, deepest loss %, replacements, first in), replaced by newer ones of
the same strategy/symbol/timeframe, expire, survive a restart, and take slots as they free."""

from __future__ import annotations

from services.clock import FakeClock
from tui_trader.wiring import build_engine
from services.signal_queue import QueuedSignal, SignalQueue
from services.market import Quote
from services.store import SqlStore
from tests.conftest import T0, Harness
from tests.engine_support import RecordingStore, make_config, strat


def manual(symbol: str, side: str = "buy") -> dict:
    return strat(symbols=[symbol], side=side, entry="manual")


def full_pool(store=None, ttl: float | None = None) -> Harness:
    """One slot, held by `hold` on ACME (stop at 19.8); a, b and s wait for signals."""
    cfg = make_config({"hold": strat(symbols=["ACME"], stop_loss="1%", reentry=False),
                       "a": manual("BTCUSDT"), "b": manual("ETHUSDT"), "s": manual("BTCUSDT", "sell")}, max_open=1)
    if ttl is not None:
        cfg = cfg.model_copy(update={"engine": cfg.engine.model_copy(update={"queue_ttl_s": ttl})})
    h = Harness(cfg, store if store is not None else RecordingStore())
    h.quote("ACME", 20.0)
    h.quote("BTCUSDT", 100.0)
    h.quote("ETHUSDT", 50.0)
    assert [g.strategy_id for g in h.engine.groups.values()] == ["hold"]
    return h


def queue(h: Harness) -> list[tuple]:
    return [(q.strategy_id, q.symbol, q.rank, q.rank_reason) for q in h.engine.snapshot().queue]


def test_a_signal_that_finds_no_slot_waits_and_takes_the_next_free_one():
    h = full_pool()
    r = h.engine.enter_now("a", price=100.0, timeframe="1h")
    assert r.ok and r.message == "a BTCUSDT 1h: pool full (1/1); queued as #1, rank 1 of 1"
    assert h.store.of("signal")[-1]["status"] == "queued"
    h.quote("ACME", 19.7)  # hold's stop: the slot frees and goes to a
    assert [g.strategy_id for g in h.engine.groups.values()] == ["a"]
    assert h.store.of("queued_signal")[-1]["status"] == "entered"


def test_the_deepest_through_its_price_goes_first():
    h = full_pool()
    h.engine.enter_now("a", price=101.0)  # BTCUSDT at 100: 0.99 % through a buy at 101
    h.engine.enter_now("b", price=50.5)  # ETHUSDT at 50: 0.99 % ... through a buy at 50.5
    h.engine.enter_now("s", price=101.0)  # a sell at 101 with the price at 100: -0.99 %, not through
    [a, b, s] = h.engine.snapshot().queue[0], h.engine.snapshot().queue[1], h.engine.snapshot().queue[2]
    assert (a.strategy_id, b.strategy_id, s.strategy_id) == ("a", "b", "s")
    assert round(a.depth_pct, 2) == 0.99 and round(s.depth_pct, 2) == -0.99
    h.quote("ETHUSDT", 49.0)  # b is now 2.97 % through
    assert [x[0] for x in queue(h)] == ["b", "a", "s"]
    assert queue(h)[0][3] == "+2.97% through its price"
    h.quote("ACME", 19.7)
    assert [g.strategy_id for g in h.engine.groups.values()] == ["b"]


def test_a_newer_signal_replaces_the_queued_one_and_counts_as_a_tie_breaker():
    h = full_pool()
    h.engine.enter_now("a", price=100.0, timeframe="15m")
    h.engine.enter_now("b", price=50.0, timeframe="15m")  # same depth (0 %): first in first
    assert [x[0] for x in queue(h)] == ["a", "b"]
    r = h.engine.enter_now("b", price=50.0, timeframe="15m")
    assert r.message == "b ETHUSDT 15m: pool full (1/1); replaced queued signal #2 (replacement 1), rank 1 of 2"
    assert queue(h) == [("b", "ETHUSDT", 1, "more replacements (1)"), ("a", "BTCUSDT", 2, "fewer replacements (0)")]
    assert len(h.engine.snapshot().queue) == 2  # replaced, not added
    h.engine.enter_now("b", price=50.0, timeframe="1h")  # another timeframe: its own place
    assert len(h.engine.snapshot().queue) == 3


def test_ties_go_to_the_first_in():
    h = full_pool()
    h.engine.enter_now("b", price=50.0)
    h.engine.enter_now("a", price=100.0)
    assert [x[3] for x in queue(h)] == ["first in", "later in"]
    assert [x[0] for x in queue(h)] == ["b", "a"]


def test_ranking_order_of_every_criterion():
    sq = SignalQueue(60.0)
    marks = {"X": 100.0}

    def add(i: int, price: float, **flags) -> QueuedSignal:
        q = QueuedSignal(i, i, f"s{i}", "X", "", "buy", price, T0 + i, 60.0, pyramid=flags.get("pyramid", False))
        q.pinned = flags.get("pinned", False)
        q.replacements = flags.get("replacements", 0)
        sq.add(q)
        return q

    add(1, 100.0)  # 0 %, first in
    add(2, 100.0, replacements=2)  # 0 %, replaced twice
    add(3, 102.0)  # 1.96 % through
    add(4, 99.0, pyramid=True)  # a pyramid, not through
    add(5, 90.0, pinned=True)  # promoted
    assert [q.id for q, _ in sq.ranked(marks.get)] == [5, 4, 3, 2, 1]
    reasons = [v.rank_reason for v in sq.views(marks.get)]
    assert reasons == ["promoted by the operator", "pyramid of an open group", "+1.96% through its price",
                       "more replacements (2)", "fewer replacements (0)"]


def test_queued_signals_expire_after_the_ttl():
    h = full_pool(ttl=60)
    h.engine.enter_now("a", price=100.0)
    h.quote("BTCUSDT", 100.0, dt=59)
    assert len(h.engine.snapshot().queue) == 1
    h.quote("BTCUSDT", 100.0, dt=1)
    assert not h.engine.snapshot().queue
    last = h.store.of("queued_signal")[-1]
    assert (last["status"], last["outcome"]) == ("expired", "no slot within queue_ttl_s (60 s)")
    h.quote("ACME", 19.7)
    assert not h.engine.groups  # nothing left to take the slot


def test_the_operator_promotes_removes_and_force_adds():
    h = full_pool()
    h.engine.enter_now("a", price=101.0)  # the deepest
    h.engine.enter_now("b", price=50.0)
    h.engine.enter_now("s", price=100.0)
    ids = {v.strategy_id: v.id for v in h.engine.snapshot().queue}
    assert h.engine.promote_signal(ids["b"]).ok
    assert [x[0] for x in queue(h)] == ["b", "a", "s"]
    assert not h.engine.promote_signal(ids["b"]).ok  # already
    assert h.engine.remove_signal(ids["s"]).ok
    assert [x[0] for x in queue(h)] == ["b", "a"]
    r = h.engine.force_add(ids["a"])  # beyond the pool
    assert r.ok and sorted(g.strategy_id for g in h.engine.groups.values()) == ["a", "hold"]
    assert h.engine.snapshot().pool_used == 2
    assert not h.engine.force_add(999).ok and not h.engine.remove_signal(999).ok


def test_the_queue_survives_a_restart(db_url):
    h = full_pool(SqlStore(db_url))
    h.engine.enter_now("a", price=101.0, timeframe="1h")
    h.engine.enter_now("b", price=50.0)
    h.engine.enter_now("b", price=50.2)  # a replacement
    before = [(v.strategy_id, v.timeframe, v.price, v.replacements, v.rank) for v in h.engine.snapshot().queue]
    h.engine.store.close()
    again = build_engine(h.engine.config, FakeClock(h.clock.now() + 1), SqlStore(db_url))
    again.open()
    try:
        for symbol, px in (("ACME", 20.0), ("BTCUSDT", 100.0), ("ETHUSDT", 50.0)):
            again.on_quote(Quote(symbol, again.clock.now(), px, px, 0.0))
        after = [(v.strategy_id, v.timeframe, v.price, v.replacements, v.rank) for v in again.snapshot().queue]
        assert after == before == [("a", "1h", 101.0, 0, 1), ("b", "", 50.2, 1, 2)]
        r = again.enter_now("s", price=100.0)
        assert "queued as #3" in r.message  # ids carry on
    finally:
        again.store.close()


def test_an_exit_signal_cancels_queued_entries_and_closes_the_position():
    h = full_pool()
    h.engine.enter_now("a", price=100.0, timeframe="1h")
    r = h.engine.exit_signal("a", "BTCUSDT")
    assert r.ok and r.message == "queued entry #1 BTCUSDT cancelled"
    assert not h.engine.snapshot().queue
    assert h.store.of("signal")[-1]["kind"] == "exit" and h.store.of("signal")[-1]["status"] == "done"
    r = h.engine.exit_signal("hold")
    assert r.ok and h.engine.trades[-1].exit_reason == "signal"
    r = h.engine.exit_signal("a")
    assert not r.ok and r.message == "a has no position or queued entry on BTCUSDT to exit"
    assert h.store.of("signal")[-1]["status"] == "rejected"
    assert not h.engine.exit_signal("nobody").ok


def test_first_in_means_queued_first_whatever_the_ids():
    """Rule 4 of DESIGN §3's queue priority is by the time a signal was queued: a restored queue
    or a replaced signal can have ids in another order."""
    sq = SignalQueue(60.0)
    sq.add(QueuedSignal(1, 1, "late", "X", "", "buy", 100.0, T0 + 5, 60.0))
    sq.add(QueuedSignal(2, 2, "early", "X", "", "buy", 100.0, T0 + 1, 60.0))
    assert [q.strategy_id for q, _ in sq.ranked({"X": 100.0}.get)] == ["early", "late"]


def test_without_a_current_or_a_signal_price_there_is_no_depth():
    buy = QueuedSignal(1, 1, "a", "X", "", "buy", 100.0, T0, 60.0)
    sell = QueuedSignal(2, 2, "s", "X", "", "sell", 100.0, T0, 60.0)
    assert (buy.standing(98.0).depth, sell.standing(98.0).depth) == (2.0, -2.0)  # in the trade's favour
    assert buy.standing(None).depth is None
    market = QueuedSignal(3, 3, "m", "X", "", "buy", None, T0, 60.0).standing(98.0)
    assert (market.depth, market.priced) == (None, False)


def test_behind_a_promoted_signal_the_reason_is_its_own_depth_not_a_tie():
    sq = SignalQueue(60.0)
    ahead = QueuedSignal(1, 1, "a", "X", "", "buy", 100.0, T0, 60.0)
    ahead.pinned = True
    sq.add(ahead)
    sq.add(QueuedSignal(2, 2, "b", "X", "", "buy", 100.0, T0 + 1, 60.0))
    assert [v.rank_reason for v in sq.views({"X": 100.0}.get)] == ["promoted by the operator", "+0.00% through its price"]


def test_a_signal_read_back_from_the_store_is_updated_there_not_inserted_again():
    q = QueuedSignal(1, 1, "a", "X", "1h", "buy", 100.0, T0, 60.0)
    assert not q.saved
    assert QueuedSignal.from_row(q.row()).saved
