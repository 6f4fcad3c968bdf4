"""Position plans (issue 14 point 5): a group's kind decides what an entry sends next, what a
fill means, what an exit cancels, how the trade reads, when the group is done and what it
holds; the snapshot shows each group with its legs, and a restart rebuilds the same plan."""

from __future__ import annotations

import pytest

from services.config import DcaConfig, DcaLayer
from services.domain import Group, Leg
from services.plans import BasketPlan, GridPlan, SinglePlan
from services.rules.precision import Rules
from services.store import SqlStore

from .conftest import Harness
from .engine_support import RecordingStore, make_config, strat

RULES = Rules(tick_size=0.01, lot_step=0.001)
DCA = DcaConfig(layers=[DcaLayer(gap_pct=0, weight=1, tp_pct=1), DcaLayer(gap_pct=2, weight=1, tp_pct=1.5)],
                tp_mode="hybrid", tp_pct=1.5, max_pyramids=2)


def group_of(plan, *legs: tuple[str, float, float]) -> Group:
    """A long group holding open legs (symbol, qty, entry)."""
    group = Group(1, 1, "s", legs[0][0] if legs else "BTCUSDT", "buy", 0.0, plan)
    for i, (symbol, qty, entry) in enumerate(legs):
        group.legs.append(Leg(i + 1, group, symbol, "buy", qty, entry, 0.0, 0.0))
    return group


def closed(leg: Leg, price: float) -> Leg:
    leg.status, leg.exit_price = "closed", price
    return leg


# -- the plans ----------------------------------------------------------------------------------


def test_a_basket_enters_its_legs_in_order_until_given_up():
    plan = BasketPlan([("ETHUSDT", 2.0), ("ACME", 5.0)])
    assert plan.to_enter and plan.next_leg() == ("ETHUSDT", 2.0)
    plan.give_up()
    assert not plan.to_enter and plan.next_leg() is None
    assert SinglePlan().next_leg() is None and not SinglePlan().to_enter


def test_a_single_or_basket_trade_reads_as_its_first_leg_and_a_grid_at_average_prices():
    legs = group_of(SinglePlan(), ("BTCUSDT", 1.0, 100.0), ("BTCUSDT", 3.0, 96.0)).legs
    out = [closed(legs[0], 102.0), closed(legs[1], 98.0)]
    assert SinglePlan().round_trip(out) == BasketPlan([]).round_trip(out) == (1.0, 100.0, 102.0)
    assert GridPlan("per_leg", 400.0, DCA).round_trip(out) == (4.0, 97.0, 99.0)


def test_the_first_grid_layer_takes_its_levels_and_places_the_others_from_its_fill():
    plan = GridPlan("hybrid", 400.0, DCA)
    group = group_of(plan, ("BTCUSDT", 2.0, 100.0))
    first = group.legs[0]
    (rest,) = plan.opened(group, first, RULES)
    assert (first.layer, first.weight, first.tp_pct, first.target) == (0, 1.0, 1.0, 101.0)
    assert (rest.index, rest.price, rest.qty) == (1, 98.0, 2.04)  # 200 / 98, floored to the lot step
    assert plan.agg_tp == 101.5  # hybrid: the aggregate over the average entry too
    assert plan.opened(group, first, RULES) == []  # a layer already placed places nothing more
    assert plan.completed(group, 5.0) and plan.filled_at == 5.0


def test_an_aggregate_grid_leaves_the_layers_without_a_take_profit_of_their_own():
    plan = GridPlan("aggregate", 400.0, DCA)
    group = group_of(plan, ("BTCUSDT", 2.0, 100.0))
    plan.opened(group, group.legs[0], RULES)
    assert group.legs[0].target is None and plan.agg_tp == 101.5
    assert plan.closes_alone("target") and not plan.closes_alone("stop_loss")
    assert not SinglePlan().closes_alone("target")


def test_a_grid_with_resting_layers_goes_on_unless_it_exits_and_an_exit_cancels_them():
    plan = GridPlan("per_leg", 400.0, DCA)
    group = group_of(plan, ("BTCUSDT", 1.0, 100.0), ("BTCUSDT", 1.0, 98.0))
    layer = group.legs[1]
    layer.status = "pending"
    closed(group.legs[0], 101.0)
    assert not plan.done(group) and plan.resting(group) == [layer]
    assert plan.held(group) == 98.0  # the resting order's funds
    group.pending_exit = "manual"
    assert plan.done(group)
    assert SinglePlan().done(group) and SinglePlan().resting(group) == []


def test_a_grid_is_full_once_every_layer_is_placed_and_filled_and_others_from_their_entry():
    plan = GridPlan("per_leg", 400.0, DCA)
    group = group_of(plan, ("BTCUSDT", 1.0, 100.0))
    group.legs[0].layer = 0
    plan.placed(10.0)
    plan.add_pyramid(11.0)
    assert plan.fullness(group) == {
        "pyramids": 1, "max_pyramids": 2, "layers_total": 1, "layers_submitted": 1, "layers_filled": 1,
        "dca_submitted_at": 10.0, "dca_filled_at": None, "fifth_pyramid_at": None}
    single = group_of(SinglePlan(), ("BTCUSDT", 1.0, 100.0))
    single.opened_at = 3.0
    assert SinglePlan().fullness(single) == {"dca_submitted_at": 3.0, "dca_filled_at": 3.0}


def test_a_grid_plan_keeps_its_columns_over_a_restart():
    plan = GridPlan("hybrid", 400.0, DCA)
    plan.agg_tp, plan.submitted_at, plan.filled_at = 101.5, 10.0, 20.0
    for when in range(5):
        plan.add_pyramid(30.0 + when)
    row = plan.columns()
    assert row == {"tp_mode": "hybrid", "agg_tp": 101.5, "capital": 400.0, "pyramids": 5, "dca_submitted_at": 10.0,
                   "dca_filled_at": 20.0, "fifth_pyramid_at": 34.0}
    assert GridPlan.from_row(row, DCA).columns() == row
    assert SinglePlan().columns()["tp_mode"] == "" and BasketPlan([]).columns() == SinglePlan().columns()


# -- the engine -----------------------------------------------------------------------------------


def kinds_config():
    dca = {"layers": [{"gap_pct": 0, "weight": 1, "tp_pct": 1}, {"gap_pct": 2, "weight": 1, "tp_pct": 1.5}]}
    return make_config({
        "one": strat(entry="manual", symbols=["ACME"]),
        "pair": strat(entry="manual", symbols=["BTCUSDT", "ETHUSDT"], basket=True),
        "grid": strat(entry="manual", symbols=["BTCUSDT"], sizing={"fixed_value": 400}, dca=dca),
    })


def enter_each(h: Harness) -> None:
    for symbol, price in (("ACME", 20.0), ("ETHUSDT", 50.0), ("BTCUSDT", 100.0)):
        h.quote(symbol, price)
    for strategy in ("one", "pair", "grid"):
        assert h.engine.enter_now(strategy).ok


def test_the_snapshot_shows_each_group_with_its_kind_its_legs_and_a_grids_layers():
    h = Harness(kinds_config(), store=RecordingStore())
    enter_each(h)
    snap = h.engine.snapshot()
    one, pair, grid = snap.groups
    assert [(g.strategy_id, g.kind, g.symbols, g.status) for g in snap.groups] == [
        ("one", "single", ("ACME",), "open"), ("pair", "basket", ("BTCUSDT", "ETHUSDT"), "open"),
        ("grid", "grid", ("BTCUSDT",), "open")]
    assert [p.symbol for p in pair.legs] == ["BTCUSDT", "ETHUSDT"] and snap.positions == one.legs + pair.legs + grid.legs
    assert one.grid is None and pair.grid is None
    assert [lg.state for lg in grid.grid.legs] == ["filled", "pending"] and snap.grids == (grid.grid,)
    assert pair.unrealized_pnl == pytest.approx(sum(p.pnl for p in pair.legs)) and pair.realized_pnl == 0.0
    assert snap.group(pair.id) is pair and snap.group(999) is None


def test_a_restart_rebuilds_each_groups_plan_from_its_stored_columns(db_url):
    store = SqlStore(db_url, flush_interval_s=0.05)
    h = Harness(kinds_config(), store=store)
    enter_each(h)
    before = {g.id: (type(g.plan), g.plan.columns()) for g in h.engine.groups.values()}
    store.close()
    store2 = SqlStore(db_url, flush_interval_s=0.05)
    h2 = Harness(h.engine.config, store=store2, clock=h.clock)
    try:
        assert {g.id: (type(g.plan), g.plan.columns()) for g in h2.engine.groups.values()} == before
        assert [kind for kind, _ in before.values()] == [SinglePlan, BasketPlan, GridPlan]
    finally:
        store2.close()
