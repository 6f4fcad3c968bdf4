"""P&L protection of a strategy and of the book (DESIGN §3 portfolio level, daily loss limit):
stop, target and trailing on the P&L curve, acting within the quote that crosses them,
blocking entries with the reason, a cooldown, sessions in a timezone, and a restart."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from services.clock import FakeClock
from services.config import PnlRules
from services.portfolio import PnlScope
from tui_trader.wiring import build_engine
from services.store import SqlStore
from tests.conftest import T0, Harness
from tests.engine_support import RecordingStore, make_config, strat

BOTH = ["BTCUSDT", "ETHUSDT"]


def two_legs(side: str = "buy", pnl: dict | None = None, book: dict | None = None, **kw) -> Harness:
    """Strategy s holds 1 BTCUSDT at 100 and 1 ETHUSDT at 50 (no fees, no slippage)."""
    cfg = make_config({"s": strat(symbols=BOTH, side=side, pnl=pnl, **kw)})
    if book is not None:
        cfg = cfg.model_copy(update={"book": type(cfg.book).model_validate(book)})
    h = Harness(cfg, RecordingStore())
    h.quote("BTCUSDT", 100.0)
    h.quote("ETHUSDT", 50.0)
    assert len(h.engine.groups) == 2
    return h


def rule(h: Harness, scope: str, kind: str):
    [view] = [p for p in h.engine.snapshot().portfolio if p.scope == scope]
    return next(r for r in view.rules if r.kind == kind)


def reasons(h: Harness) -> list[str]:
    return sorted(t.exit_reason for t in h.engine.trades)


@pytest.mark.parametrize("side, btc, eth", [("buy", 97.0, 47.9), ("sell", 103.0, 52.1)])
def test_strategy_pnl_stop_exits_every_position_on_the_quote_that_crosses_it(side, btc, eth):
    h = two_legs(side, pnl={"stop": 5})
    h.quote("BTCUSDT", btc)  # -3
    assert not h.engine.trades
    assert rule(h, "s", "pnl_stop").distance == pytest.approx(2.0)
    h.quote("ETHUSDT", eth)  # -2.1: P&L -5.1 <= -5
    assert reasons(h) == ["strategy_pnl_stop", "strategy_pnl_stop"]
    assert not h.engine.groups
    [fired] = h.store.events("risk")
    assert fired["message"] == ("P&L stop of s reached: P&L -5.10 against -5.00; exiting 2 position(s); "
                                "no new entries until the next session")
    assert fired["needs_ack"] and fired["payload"]["rule"] == "pnl_stop"
    h.quote("BTCUSDT", 100.0, dt=10)  # immediate re-entry is blocked for the session
    assert not h.engine.groups
    view = next(s for s in h.engine.snapshot().strategies if s.id == "s")
    assert view.status == "cooldown" and view.reason.startswith("P&L stop of s fired at P&L -5.10")


@pytest.mark.parametrize("side, btc", [("buy", 106.0), ("sell", 94.0)])
def test_strategy_pnl_target(side, btc):
    h = two_legs(side, pnl={"target": 6})
    h.quote("BTCUSDT", btc - (1 if side == "buy" else -1) * 0.5)
    assert not h.engine.trades
    h.quote("BTCUSDT", btc)
    assert reasons(h) == ["strategy_pnl_target"] * 2


@pytest.mark.parametrize("side, sign", [("buy", 1), ("sell", -1)])
def test_strategy_pnl_trailing_arms_at_its_activation_and_follows_the_peak(side, sign):
    h = two_legs(side, pnl={"trail_activation": 3, "trail_distance": 2})
    h.quote("BTCUSDT", 100 + sign * 2.0)  # +2: not armed
    r = rule(h, "s", "pnl_trailing")
    assert (r.armed, r.level, r.arms_at) == (False, None, 3.0)
    h.quote("BTCUSDT", 100 + sign * 4.0)  # +4: armed, peak 4, level 2
    r = rule(h, "s", "pnl_trailing")
    assert (r.armed, r.peak, r.level, r.distance) == (True, 4.0, 2.0, pytest.approx(2.0))
    h.quote("BTCUSDT", 100 + sign * 6.0)  # peak 6, level 4
    h.quote("BTCUSDT", 100 + sign * 4.5)  # +4.5 > 4: holds
    assert not h.engine.trades
    h.quote("BTCUSDT", 100 + sign * 3.9)  # +3.9 <= 4
    assert reasons(h) == ["strategy_pnl_trailing"] * 2


def test_a_leg_rule_and_a_strategy_rule_on_the_same_quote_record_the_leg_reason():
    h = two_legs(pnl={"stop": 3}, stop_loss="2%")
    h.quote("BTCUSDT", 97.0)  # BTC's own stop (98) and the strategy's P&L stop (-3) on one quote
    assert sorted((t.symbol, t.exit_reason) for t in h.engine.trades) == [
        ("BTCUSDT", "stop_loss"), ("ETHUSDT", "strategy_pnl_stop")]


def test_after_the_cooldown_entries_resume_and_the_rules_measure_from_there():
    h = two_legs(pnl={"stop": 5, "cooldown_s": 60})
    h.quote("BTCUSDT", 94.0)  # -6: fired
    assert len(h.engine.trades) == 2
    h.quote("BTCUSDT", 94.0, dt=30)
    assert not h.engine.groups  # cooling down
    h.quote("BTCUSDT", 94.0, dt=31)  # the block ends on the tick; entry from the next quote
    h.quote("BTCUSDT", 94.0, dt=1)
    h.quote("ETHUSDT", 50.0)
    assert len(h.engine.groups) == 2
    r = rule(h, "s", "pnl_stop")
    assert r.pnl == pytest.approx(0.0) and r.distance == pytest.approx(5.0)  # not -6 again
    assert h.store.events("risk")[-1]["message"] == "s: new entries allowed again; P&L rules measure from -6.00"
    h.quote("BTCUSDT", 90.0)  # -4 from the new base: holds
    assert len(h.engine.groups) == 2
    h.quote("BTCUSDT", 88.9)  # -5.1 from the base
    assert reasons(h).count("strategy_pnl_stop") == 4


def test_book_pnl_stop_exits_every_strategy_and_blocks_the_book_until_the_next_session():
    cfg = make_config({"a": strat(), "b": strat(symbols=["ETHUSDT"], side="sell")})
    cfg = cfg.model_copy(update={"book": type(cfg.book).model_validate({"stop": 4})})
    h = Harness(cfg, RecordingStore())
    h.quote("BTCUSDT", 100.0)
    h.quote("ETHUSDT", 50.0)
    h.quote("BTCUSDT", 98.0)  # a: -2
    assert not h.engine.trades
    h.quote("ETHUSDT", 52.0)  # b: -2: the book at -4
    assert reasons(h) == ["book_pnl_stop", "book_pnl_stop"]
    [fired] = h.store.events("risk")
    assert fired["level"] == "critical" and "P&L stop of the book reached: P&L -4.00" in fired["message"]
    book = h.engine.snapshot().portfolio[0]
    assert book.scope == "book" and book.blocked.startswith("P&L stop of the book fired")
    r = h.engine.enter_now("a")
    assert not r.ok and "entries are blocked: P&L stop of the book" in r.message
    h.clock.set(T0 + 86_400 + 1)  # the next UTC session
    h.engine.tick()
    h.quote("BTCUSDT", 100.0)
    assert len(h.engine.groups) == 1


def new_york(day: int, hh: int, mm: int) -> float:
    return datetime(2026, 3, day, hh, mm, tzinfo=ZoneInfo("America/New_York")).timestamp()


def test_daily_loss_limit_blocks_entries_with_the_reason_until_the_session_starts_in_its_timezone():
    cfg = make_config({"s": strat(stop_loss="3%", cooldown_s=1)})
    cfg = cfg.model_copy(update={"book": type(cfg.book).model_validate(
        {"daily_loss_limit": 5, "session_start": "09:30", "timezone": "America/New_York"})})
    clock = FakeClock(new_york(9, 15, 0))  # a Monday afternoon in New York
    h = Harness(cfg, RecordingStore(), clock)
    assert h.engine.snapshot().session_start == new_york(9, 9, 30)
    h.quote("BTCUSDT", 100.0)
    h.quote("BTCUSDT", 96.0)  # stop: -4 realized
    h.quote("BTCUSDT", 100.0, dt=2)  # re-entry
    assert len(h.engine.groups) == 1
    h.quote("BTCUSDT", 99.0)  # day P&L -5: the limit; no flatten by default
    [fired] = h.store.events("risk")
    assert fired["message"].startswith("daily loss limit of the book reached: P&L -5.00 against -5.00; no new entries")
    assert len(h.engine.groups) == 1  # the open position stays, its own exits still work
    h.quote("BTCUSDT", 96.0)  # stop
    h.quote("BTCUSDT", 100.0, dt=5)
    assert not h.engine.groups
    r = h.engine.enter_now("s")
    assert not r.ok and "daily loss limit of 5.00 reached by the book" in r.message
    assert h.store.of("signal")[-1]["status"] == "rejected"
    h.clock.set(new_york(10, 9, 29))  # 09:29 the next morning: still yesterday's session
    h.engine.tick()
    h.quote("BTCUSDT", 100.0)
    assert not h.engine.groups
    h.clock.set(new_york(10, 9, 30))
    h.engine.tick()
    h.quote("BTCUSDT", 100.0)
    assert len(h.engine.groups) == 1
    assert h.engine.snapshot().session_start == new_york(10, 9, 30)
    assert h.engine.snapshot().portfolio[0].rules[0].pnl == 0.0


def test_daily_loss_limit_of_a_strategy_can_flatten_it():
    h = two_legs(pnl={"daily_loss_limit": 3, "flatten_on_daily_limit": True})
    h.quote("BTCUSDT", 97.0)
    assert reasons(h) == ["daily_loss_limit", "daily_loss_limit"]


def test_a_fired_rule_and_its_block_survive_a_restart_in_the_same_session(db_url):
    cfg = make_config({"s": strat(symbols=BOTH, pnl={"stop": 5, "trail_activation": 1, "trail_distance": 50})})
    h = Harness(cfg, SqlStore(db_url))
    h.quote("BTCUSDT", 100.0)
    h.quote("ETHUSDT", 50.0)
    h.quote("BTCUSDT", 102.0)  # the P&L trail arms at +2
    h.engine.tick()
    h.quote("BTCUSDT", 94.0)  # -6: the P&L stop
    assert len(h.engine.trades) == 2
    h.engine.store.close()
    again = build_engine(cfg, FakeClock(h.clock.now() + 5), SqlStore(db_url))
    again.open()
    try:
        view = next(s for s in again.snapshot().strategies if s.id == "s")
        assert view.status == "cooldown" and "P&L stop of s fired at P&L -6.00" in view.reason
        r = again.enter_now("s")
        assert not r.ok and "entries are blocked" in r.message
        [stop] = [r for r in again.snapshot().portfolio[1].rules if r.kind == "pnl_stop"]
        assert stop.fired_at is not None and stop.pnl == pytest.approx(-6.0)
    finally:
        again.store.close()


def test_the_pnl_trailing_stop_fires_on_reaching_its_level_not_only_past_it():
    """DESIGN §3 portfolio level: trailing on the P&L curve exits at P&L <= peak - distance."""
    from services.config import PnlRules
    from services.portfolio import PnlScope

    scope = PnlScope("s", PnlRules(trail_activation=10, trail_distance=4), T0)
    for pnl, acts in ((12.0, None), (9.0, None), (8.0, ("pnl_trailing", 8.0))):  # peak 12: level 8
        scope.unrealized = pnl
        assert scope.check() == acts, pnl


# -- one scope's rules, without an engine ----------------------------------------------------------


def scope_at(pnl: float, **rules) -> PnlScope:
    scope = PnlScope("s", PnlRules(**rules), T0)
    scope.unrealized = pnl
    return scope


def test_a_block_ends_at_its_until_instant():
    scope = scope_at(-5.0, stop=5)
    assert scope.check() == ("pnl_stop", -5.0)
    scope.fire("pnl_stop", T0, T0 + 60)
    assert scope.blocked(T0 + 59.9) and scope.block_reason(T0 + 59.9) == "P&L stop of s fired at P&L -5.00"
    assert not scope.blocked(T0 + 60) and scope.block_reason(T0 + 60) == ""  # entries from the cooldown's end


def test_a_later_firing_never_shortens_a_block():
    scope = scope_at(-3.0, stop=5, daily_loss_limit=3)
    assert scope.check() == ("daily_loss_limit", -3.0)
    scope.fire("daily_loss_limit", T0, T0 + 86400)  # until the next session
    scope.unrealized = -5.0
    assert scope.check() == ("pnl_stop", -5.0)
    scope.fire("pnl_stop", T0 + 10, T0 + 70)  # its cooldown ends sooner
    assert scope.blocked_until == T0 + 86400


def test_the_pnl_trailing_stop_arms_exactly_at_its_activation():
    scope = scope_at(10.0, trail_activation=10, trail_distance=4)
    assert scope.check() is None
    (view,) = scope.rule_views()
    assert (view.armed, view.peak, view.level, view.distance) == (True, 10.0, 6.0, 4.0)


def test_after_a_release_the_rules_measure_from_there_and_the_trailing_stop_arms_again():
    scope = scope_at(12.0, stop=5, trail_activation=10, trail_distance=4)
    scope.check()
    scope.unrealized = 8.0
    assert scope.check() == ("pnl_trailing", 8.0)
    scope.fire("pnl_trailing", T0, T0 + 60)
    scope.release()  # the cooldown is over: base 8
    scope.unrealized = 17.9  # +9.9 from the base: not armed again yet
    assert scope.check() is None
    trailing = next(v for v in scope.rule_views() if v.kind == "pnl_trailing")
    assert (trailing.armed, trailing.peak, trailing.level, trailing.pnl) == (False, None, None, pytest.approx(9.9))
    scope.unrealized = 3.0  # -5 from the base
    assert scope.check() == ("pnl_stop", -5.0)
    scope.fire("pnl_stop", T0 + 100, T0 + 160)
    assert scope.fired_pnl == -5.0
    assert scope.block_reason(T0 + 100) == "P&L stop of s fired at P&L -5.00"


def test_each_rule_view_shows_its_level_and_how_far_the_pnl_is_from_it():
    scope = scope_at(-1.0, stop=5, target=10, daily_loss_limit=8)
    scope.realized = -1.0
    views = {v.kind: (v.level, v.pnl, v.distance, v.armed) for v in scope.rule_views()}
    assert views == {"pnl_stop": (-5.0, -2.0, 3.0, True), "pnl_target": (10.0, -2.0, 12.0, True),
                     "daily_loss_limit": (-8.0, -2.0, 6.0, True)}


def test_a_scope_read_back_from_the_store_is_updated_there_not_inserted_again():
    scope = scope_at(-1.0, stop=5)
    again = scope_at(0.0, stop=5)
    assert not again.saved
    again.restore(scope.row())
    assert again.saved and again.unrealized == -1.0
