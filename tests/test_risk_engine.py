"""The risk engine in the engine (DESIGN §3): an eligible loser is closed with part of the
winners, every order audited; the operator's run now, skip once and block. The plan's
arithmetic is pinned in test_risk_plan.py."""

from __future__ import annotations

import pytest

from services.config import RiskEngineConfig
from services.store import SqlStore

from .conftest import Harness
from .engine_support import RecordingStore, make_config, strat

RISK = {"loss_threshold_pct": 2, "timer_s": 60, "timer_start": "after_all_dca_filled", "max_winners_to_combine": 2}
ONE_LAYER = {"layers": [{"gap_pct": 0, "weight": 1, "tp_pct": 50}]}


def harness(store=None, **risk) -> Harness:
    cfg = make_config({
        "grid": strat(entry="manual", sizing={"fixed_value": 1000}, dca=ONE_LAYER),  # 10 BTCUSDT at 100
        "w1": strat(entry="manual", symbols=["ETHUSDT"], sizing={"fixed_qty": 4}),
        "w2": strat(entry="manual", symbols=["ACME"], sizing={"fixed_qty": 10}),
    })
    cfg = cfg.model_copy(update={"risk_engine": RiskEngineConfig(**{**RISK, **risk})})
    h = Harness(cfg, store=store if store is not None else RecordingStore())
    for sym, px in (("BTCUSDT", 100.0), ("ETHUSDT", 50.0), ("ACME", 20.0)):
        h.quote(sym, px, dt=0)
    for sid in ("grid", "w1", "w2"):
        assert h.engine.enter_now(sid).ok
    return h


def ids(h: Harness) -> dict[str, int]:
    return {g.strategy_id: g.id for g in h.engine.groups.values()}


def stuck(h: Harness, dt: float = 1.0, btc: float = 97.0, eth: float = 55.0) -> None:
    """dt later, fresh quotes: BTCUSDT down 3% (a -30 loser); ETHUSDT +5 on 4 (+20), ACME +2 on 10 (+20)."""
    h.quote("ETHUSDT", eth, dt=dt - 0.5)
    h.quote("ACME", 22.0, dt=0)
    h.quote("BTCUSDT", btc, dt=0.5)  # the engine's tick comes after all three


def test_an_eligible_loser_is_closed_with_part_of_the_winners():
    h = harness()
    g = ids(h)
    stuck(h)
    (view,) = h.engine.snapshot().risk
    assert (view.group_id, view.loss_pct, view.pnl) == (g["grid"], pytest.approx(3.0), pytest.approx(-30.0))
    assert not view.eligible and view.timer_remaining == pytest.approx(59.0)
    assert [(name, ok) for name, ok, _ in view.checks][:3] == [("loss", True), ("pyramids", True), ("timer", False)]
    # the plan is shown before it runs: ETH (+20, biggest, first by id) whole, then 2 of 10 ACME (+2 each)... covers 30
    assert [(s.group_id, s.qty) for s in view.steps] == [(g["w1"], 4.0), (g["w2"], 5.0)]
    assert view.covers and view.required == pytest.approx(30.0)
    assert g["grid"] in h.engine.groups
    stuck(h, dt=30.0)
    assert g["grid"] in h.engine.groups
    stuck(h, dt=29.0)  # the timer has run out, on fresh prices
    assert g["grid"] not in h.engine.groups  # run: the loser is closed...
    assert g["w1"] not in h.engine.groups  # ...the first winner whole...
    acme = h.engine.groups[g["w2"]].open_legs()[0]
    assert acme.qty == pytest.approx(5.0)  # ...and half of the second, the rest stays open
    assert h.engine.realized_today == pytest.approx({"grid": -30.0, "w1": 20.0, "w2": 10.0})
    audit = [e.message for e in h.engine.events if e.category == "risk"]
    assert any("risk engine (eligible)" in m for m in audit)
    assert sum("risk offset for" in m for m in audit) == 2
    exits = [o for o in h.engine.recent_orders if o.purpose == "exit"]
    assert [(o.group_id, o.qty, o.reason) for o in exits] == [
        (g["w1"], 4.0, "risk_offset"), (g["w2"], 5.0, "risk_offset"), (g["grid"], 10.0, "risk_offset")]


def test_not_covered_it_waits_and_says_so():
    h = harness(max_winners_to_combine=1)
    stuck(h)
    stuck(h, dt=61.0)
    (view,) = h.engine.snapshot().risk
    assert view.eligible and not view.covers
    assert view.plan.startswith("not covered: winners give +20.00 of 30.00 needed (max_winners_to_combine 1)")
    assert ids(h)["grid"] in h.engine.groups


def test_skip_once_holds_it_until_it_stops_being_eligible():
    h = harness(timer_s=0, max_winners_to_combine=1)
    g = ids(h)
    assert "not eligible now" in h.engine.risk_skip(g["grid"]).message  # nothing to skip yet
    stuck(h)  # eligible, but one winner (+20) does not cover 30: it waits
    assert h.engine.risk_skip(g["grid"]).ok
    stuck(h, dt=2.0, eth=60.0)  # now ETHUSDT alone (+40) would cover it: skipped
    assert g["grid"] in h.engine.groups
    stuck(h, dt=2.0, btc=99.5)  # loss 0.5%: no longer eligible, the skip is used up
    assert h.engine.groups[g["grid"]].risk_hold == ""
    stuck(h, dt=2.0, eth=60.0)
    assert g["grid"] not in h.engine.groups


def test_a_blocked_group_is_never_run_until_unblocked():
    h = harness(timer_s=0)
    g = ids(h)
    assert "blocked" in h.engine.risk_block(g["grid"]).message
    stuck(h)
    stuck(h, dt=5.0)
    (view,) = h.engine.snapshot().risk
    assert view.hold == "blocked" and not view.eligible and g["grid"] in h.engine.groups
    assert not h.engine.risk_skip(g["grid"]).ok  # blocked: undo that first
    assert "unblocked" in h.engine.risk_block(g["grid"]).message
    stuck(h, dt=2.0)
    assert g["grid"] not in h.engine.groups


def test_a_plan_never_runs_on_a_stale_price():
    h = harness(timer_s=30)
    g = ids(h)
    stuck(h)
    h.quote("BTCUSDT", 97.0, dt=40.0)  # eligible, but the ETHUSDT and ACME quotes are 40 s old
    assert g["grid"] in h.engine.groups
    assert "no fresh quote for ETHUSDT" in h.engine.risk_run(g["grid"]).message


def test_run_now_runs_before_the_timer():
    h = harness(timer_s=3600)
    g = ids(h)
    stuck(h)
    result = h.engine.risk_run(g["grid"])
    assert result.ok and "covered +30.00" in result.message
    assert g["grid"] not in h.engine.groups and g["w1"] not in h.engine.groups
    assert not h.engine.risk_run(g["w2"]).ok  # a winner: nothing to offset


def test_the_timer_starts_when_every_layer_has_filled():
    h = harness()
    h.engine.exit_all()
    cfg = make_config({"grid": strat(entry="manual", sizing={"fixed_value": 1000}, dca={"layers": [
        {"gap_pct": 0, "weight": 1, "tp_pct": 50}, {"gap_pct": 3, "weight": 1, "tp_pct": 50}]})})
    h = Harness(cfg.model_copy(update={"risk_engine": RiskEngineConfig(**RISK)}), store=RecordingStore())
    h.quote("BTCUSDT", 100.0)
    h.engine.enter_now("grid")
    h.quote("BTCUSDT", 98.5, dt=100)
    (view,) = h.engine.snapshot().risk
    assert view.timer_remaining is None and "timer not started" in dict((n, t) for n, _, t in view.checks)["timer"]
    h.quote("BTCUSDT", 96.0, dt=1)  # the second layer (97) fills: the timer starts
    (view,) = h.engine.snapshot().risk
    assert view.timer_remaining == pytest.approx(60.0)


def test_the_operators_hold_survives_a_restart(db_url):
    store = SqlStore(db_url, flush_interval_s=0.05)
    h = harness(store=store)
    g = ids(h)
    h.engine.risk_block(g["grid"])
    store.close()
    h2 = Harness(h.engine.config, store=SqlStore(db_url, flush_interval_s=0.05), clock=h.clock)
    assert h2.engine.groups[g["grid"]].risk_hold == "blocked"
    h2.store.close()


def test_with_no_risk_engine_configured_nothing_is_shown_or_run():
    h = Harness(make_config({"a": strat(entry="manual")}), store=RecordingStore())
    h.quote("BTCUSDT", 100.0)
    h.engine.enter_now("a")
    snap = h.engine.snapshot()
    assert snap.risk == () and snap.risk_engine == "off"
    assert "risk engine is off" in h.engine.risk_run(next(iter(h.engine.groups))).message


def test_a_partly_closed_leg_keeps_its_share_of_the_entry_fee():
    cfg = make_config({"w": strat(entry="manual", symbols=["ACME"], sizing={"fixed_qty": 10})},
                      paper={"slippage_bps": 0, "maker_fee_bps": 0, "taker_fee_bps": 10})
    h = Harness(cfg.model_copy(update={"risk_engine": RiskEngineConfig(**RISK)}), store=RecordingStore())
    h.quote("ACME", 20.0)
    h.engine.enter_now("w")
    (group,) = h.engine.groups.values()
    leg = group.open_legs()[0]
    assert leg.entry_fee == pytest.approx(0.2)  # 10 x 20 x 10 bps
    h.quote("ACME", 22.0)
    h.engine.exits.send_order(group, leg, 0, None, h.clock.now(), "risk_offset", 4.0)
    h.engine.execution.settle()  # an async client's answer
    assert leg.qty == pytest.approx(6.0) and leg.entry_fee == pytest.approx(0.12)
    # 4 x (22 - 20) less 40% of the entry fee and the exit fee (4 x 22 x 10 bps)
    assert group.realized_pnl == pytest.approx(8.0 - 0.08 - 0.088)
    assert h.engine.used_funds["w"] == pytest.approx(6 * 20.0)
    assert group.id in h.engine.groups and group.status == "open"
