"""DCA grids (DESIGN §3): the calculator, settings checks, resting layers, the three
take-profit modes, exit signals on a part-filled grid, pyramids, and a restart."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.config import DcaLayer, TradingConfig
from services.orders import ExecEvent, ExecKind
from services.rules.dca import grid, grid_problems, layer_problem, tp_price
from services.store import SqlStore

from .conftest import Harness
from .engine_support import RecordingStore, make_config, strat

LAYERS = [{"gap_pct": 0, "weight": 1, "tp_pct": 1}, {"gap_pct": 2, "weight": 1, "tp_pct": 1.5},
          {"gap_pct": 5, "weight": 2, "tp_pct": 2}]


def dca_strat(tp_mode: str = "per_leg", tp_pct: float | None = None, max_pyramids: int = 0, **kw) -> dict:
    dca = {"layers": LAYERS, "tp_mode": tp_mode, "max_pyramids": max_pyramids}
    if tp_pct is not None:
        dca["tp_pct"] = tp_pct
    return strat(entry="manual", sizing={"fixed_value": 400}, dca=dca, **kw)


def harness(store=None, max_open: int = 10, **strategies) -> Harness:
    cfg = make_config(strategies or {"grid": dca_strat()}, max_open=max_open)
    symbols = {**cfg.symbols, "BTCUSDT": cfg.symbols["BTCUSDT"].model_copy(update={"tick_size": 0.01, "lot_step": 0.001})}
    return Harness(cfg.model_copy(update={"symbols": symbols}), store=store if store is not None else RecordingStore())


def legs(h: Harness, group_id: int):
    return sorted(h.engine.groups[group_id].legs, key=lambda lg: (lg.pyramid, lg.layer))


def enter(h: Harness, price: float = 100.0, strategy: str = "grid"):
    h.quote("BTCUSDT", price)
    result = h.engine.enter_now(strategy, "BTCUSDT")
    assert result.ok, result.message
    return next(g for g in h.engine.groups.values() if g.strategy_id == strategy)


# -- the calculator -------------------------------------------------------------------------


def test_grid_prices_on_the_tick_and_sizes_on_the_step():
    layers = [DcaLayer(**layer) for layer in LAYERS]
    plans = grid(layers, "buy", 100.0, 400.0, 0.01, 0.001)
    assert [p.price for p in plans] == [100.0, 98.0, 95.0]
    # capital x weight / sum(weights) / price, floored to the step
    assert [p.qty for p in plans] == [1.0, 1.02, 2.105]
    short = grid(layers, "sell", 100.003, 400.0, 0.01, 0.001)
    assert [p.price for p in short] == [100.01, 102.01, 105.01]  # a sell rounds up: never worse than asked
    assert short[1].qty == 0.98  # 100 / 102.01 = 0.98029 floored


def test_a_layer_under_the_minimum_notional_is_named():
    layers = [DcaLayer(gap_pct=0, weight=10, tp_pct=1), DcaLayer(gap_pct=3, weight=0.1, tp_pct=1)]
    plans = grid(layers, "buy", 100.0, 101.0, 0.01, 0.001)
    assert layer_problem(plans[0], 5.0, 0.001) == ""
    assert "layers[1] (gap 3%): order value 0.97 is below the minimum notional 5.00" in layer_problem(plans[1], 5.0, 0.001)
    (index, why), = grid_problems(layers, "buy", 100.0, 101.0, 0.01, 1.0, 0.0, "X")
    assert index == 1 and why.startswith("layers[1] (gap 3%): its size rounds to zero at lot step 1")


def test_a_layer_worth_exactly_the_minimum_notional_can_be_placed():
    (plan,) = grid([DcaLayer(gap_pct=0, weight=1, tp_pct=1)], "buy", 100.0, 500.0, 0.01, 1.0)
    assert (plan.price, plan.qty, plan.value) == (100.0, 5.0, 500.0)
    assert layer_problem(plan, 500.0, 1.0) == ""  # not under the minimum: placed
    assert "below the minimum notional 500.01" in layer_problem(plan, 500.01, 1.0)


def test_a_layer_priced_below_one_is_sized_and_one_the_tick_takes_to_zero_rounds_to_nothing():
    layers = [DcaLayer(gap_pct=0, weight=1, tp_pct=1), DcaLayer(gap_pct=60, weight=1, tp_pct=1)]
    cheap = grid(layers, "buy", 0.5, 10.0, None, 0.01)
    assert [(p.price, p.qty) for p in cheap] == [(0.5, 10.0), (0.2, 25.0)]
    # a long's price rounds down to the tick: 0.4 on a tick of 1 is 0, no size can be bought there
    coarse = grid(layers, "buy", 1.0, 10.0, 1.0, 0.01)
    assert [(p.price, p.qty) for p in coarse] == [(1.0, 5.0), (0.0, 0.0)]
    assert "its size rounds to zero" in layer_problem(coarse[1], 0.0, 0.01)


def test_take_profit_prices_round_in_the_traders_favour():
    assert tp_price(98.0, 1.5, "buy", 0.01) == 99.47
    assert tp_price(100.0, 1.0, "sell", 0.01) == 99.0
    assert tp_price(99.999, 1.0, "buy", 0.01) == 101.0  # 100.99899 rounds up to the tick


# -- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize("change, message", [
    ({"sizing": {"fixed_value": 40}, "dca": {"layers": [{"gap_pct": 0, "weight": 3, "tp_pct": 1}, {"gap_pct": 2, "weight": 1, "tp_pct": 1}]}},
     "strategies.grid.dca.layers.1.weight\n  layers[1] (gap 2%): order value 10.00 is below the minimum notional 12.00"),
    ({"dca": {"layers": [{"gap_pct": 1, "weight": 1, "tp_pct": 1}]}}, "strategies.grid.dca.layers.0.gap_pct\n  must be 0"),
    ({"dca": {"layers": LAYERS[:1] + LAYERS[2:0:-1]}}, "strategies.grid.dca.layers.2.gap_pct\n  must be greater than layers.1's"),
    ({"dca": {"layers": LAYERS, "tp_mode": "aggregate"}}, 'tp_mode = "aggregate" needs tp_pct'),
    ({"sizing": {"fixed_qty": 1}}, "dca needs sizing.fixed_value or sizing.pct_allocation"),
    ({"target": "1%"}, "a DCA strategy takes profit with dca.tp_mode"),
])
def test_bad_grids_are_settings_errors_naming_the_layer(change, message):
    cfg = {**dca_strat(), **change}
    with pytest.raises(ValidationError) as err:
        TradingConfig.model_validate({"symbols": {"BTCUSDT": {"start_price": 100.0, "min_notional": 12}},
                                      "strategies": {"grid": cfg}})
    assert message in str(err.value)


# -- the engine -------------------------------------------------------------------------------


def test_the_first_layer_enters_and_the_others_rest_as_limit_orders_from_its_fill():
    h = harness()
    group = enter(h)
    first, second, third = legs(h, group.id)
    assert (first.status, first.layer, first.qty, first.entry) == ("open", 0, 1.0, 100.0)
    assert [(lg.status, lg.entry, lg.qty) for lg in (second, third)] == [("pending", 98.0, 1.02), ("pending", 95.0, 2.105)]
    orders = [h.engine.orders[lg.entry_order_id] for lg in (second, third)]
    assert [(o.order_type, o.limit_price, o.method) for o in orders] == [("limit", 98.0, "dca_layer"), ("limit", 95.0, "dca_layer")]
    assert group.plan.submitted_at == h.clock.now() and group.plan.filled_at is None
    assert h.engine.used_funds["grid"] == pytest.approx(100 + 98 * 1.02 + 95 * 2.105)  # the whole grid is reserved
    h.quote("BTCUSDT", 97.9)  # crosses layer 2's limit: it fills at its limit
    assert (second.status, second.entry, second.target) == ("open", 98.0, 99.47)
    assert third.status == "pending"
    h.quote("BTCUSDT", 94.9)
    assert third.status == "open" and group.plan.filled_at == h.clock.now()


def test_per_leg_take_profit_closes_each_layer_on_its_own():
    h = harness()
    group = enter(h)
    first, second, third = legs(h, group.id)
    assert first.target == 101.0
    h.quote("BTCUSDT", 97.9)
    h.quote("BTCUSDT", 99.5)  # layer 2's take-profit (99.47), not layer 1's (101)
    assert (second.status, second.exit_reason) == ("closed", "target")
    assert second.realized_pnl == pytest.approx((99.5 - 98.0) * 1.02)
    assert first.status == "open" and group.status == "open"
    h.quote("BTCUSDT", 101.0)
    assert first.status == "closed"
    assert group.id in h.engine.groups and third.status == "pending"  # a layer still rests: the grid goes on


def test_aggregate_take_profit_closes_the_whole_group_on_the_average():
    h = harness(grid=dca_strat("aggregate", tp_pct=1))
    group = enter(h)
    first, second, third = legs(h, group.id)
    assert first.target is None and group.plan.agg_tp == 101.0
    h.quote("BTCUSDT", 97.9)
    avg = (100 * 1 + 98 * 1.02) / 2.02
    assert group.avg_entry() == pytest.approx(avg)
    assert group.plan.agg_tp == tp_price(avg, 1, "buy", 0.01) == 99.98
    h.quote("BTCUSDT", 99.97)
    assert group.status == "open"
    h.quote("BTCUSDT", 99.98)
    assert group.status == "closed" and group.exit_reason == "aggregate_tp"
    assert (first.status, second.status, third.status) == ("closed", "closed", "cancelled")
    assert h.engine.used_funds["grid"] == pytest.approx(0.0)
    trade = h.engine.trades[-1]
    assert trade.qty == pytest.approx(2.02) and trade.entry_price == pytest.approx(avg)


def test_hybrid_a_layers_own_take_profit_first_then_the_aggregate_of_the_rest():
    h = harness(grid=dca_strat("hybrid", tp_pct=1.5))
    group = enter(h)
    first, second, _ = legs(h, group.id)
    h.quote("BTCUSDT", 97.9)
    assert group.plan.agg_tp == tp_price(group.avg_entry(), 1.5, "buy", 0.01)  # 100.5 over both layers
    h.quote("BTCUSDT", 99.5)  # layer 2's own TP (99.47) comes first
    assert second.status == "closed" and second.exit_reason == "target" and first.status == "open"
    assert group.plan.agg_tp == 101.5  # the aggregate now covers what is left: layer 1 at 100
    h.quote("BTCUSDT", 101.0)  # layer 1's own TP (101) before the aggregate (101.5)
    assert first.status == "closed" and first.exit_reason == "target"


def test_hybrid_the_aggregate_can_win():
    h = harness(grid=dca_strat("hybrid", tp_pct=0.3))
    group = enter(h)
    h.quote("BTCUSDT", 97.9)
    assert group.plan.agg_tp == 99.29  # below either layer's own take-profit (101, 99.47)
    h.quote("BTCUSDT", 99.3)
    assert group.status == "closed" and group.exit_reason == "aggregate_tp"
    assert [lg.exit_reason for lg in group.legs if lg.status == "closed"] == ["aggregate_tp", "aggregate_tp"]


def test_hybrid_a_deeper_layers_own_take_profit_comes_before_the_aggregate_on_the_same_quote():
    layers = [{"gap_pct": 0, "weight": 1, "tp_pct": 0.4}, {"gap_pct": 0.3, "weight": 1, "tp_pct": 0.4},
              {"gap_pct": 0.6, "weight": 2, "tp_pct": 0.5}]
    h = harness(grid=strat(entry="manual", sizing={"fixed_value": 10000},
                           dca={"layers": layers, "tp_mode": "hybrid", "tp_pct": 0.3}))
    group = enter(h)
    first, second, third = legs(h, group.id)
    h.quote("BTCUSDT", 99.3, 99.35)  # layers 2 (99.7) and 3 (99.4) fill
    assert (third.target, group.plan.agg_tp) == (99.9, 99.93)  # both reached by the next quote; layer 1 is first in the grid
    h.quote("BTCUSDT", 99.95)
    assert (third.status, third.exit_reason, third.exit_price) == ("closed", "target", 99.95)
    assert (first.status, second.status, group.status) == ("open", "open", "open")
    assert group.plan.agg_tp == 100.15  # the aggregate over layers 1 and 2: not reached


def test_an_exit_signal_cancels_unfilled_layers_and_closes_the_rest_at_market():
    h = harness(grid=dca_strat(exit_execution={"order_type": "limit", "max_retries": 2}))
    group = enter(h)
    first, second, third = legs(h, group.id)
    h.quote("BTCUSDT", 97.8, 97.9)  # the ask reaches layer 2's limit (98): it fills there
    assert second.status == "open"
    resting = h.engine.orders[third.entry_order_id]
    result = h.engine.exit_signal("grid", "BTCUSDT", source="cli")
    assert result.ok, result.message
    assert group.status == "closed" and group.exit_reason == "signal"
    assert third.status == "cancelled" and resting.status == "cancelled"
    exits = [o for o in h.engine.recent_orders if o.purpose == "exit"]
    assert [o.order_type for o in exits] == ["market", "market"]  # not the configured limit
    assert [lg.exit_price for lg in (first, second)] == [97.8, 97.8]  # a long exits at the bid


def test_pyramids_add_grids_without_a_slot_up_to_max_pyramids():
    h = harness(max_open=1, grid=dca_strat(max_pyramids=1), other=strat(entry="manual", symbols=["ETHUSDT"]))
    group = enter(h)
    h.quote("BTCUSDT", 99.0)
    result = h.engine.enter_now("grid", "BTCUSDT")
    assert result.ok and "pyramid 1 of 1" in result.message
    grid_legs = [lg for lg in group.legs if lg.pyramid == 1]
    assert [(lg.layer, lg.status) for lg in grid_legs] == [(0, "open"), (1, "pending"), (2, "pending")]
    assert grid_legs[0].entry == 99.0 and grid_legs[1].entry == pytest.approx(97.02)
    assert len(h.engine.groups) == 1 and group.plan.pyramids == 1
    assert h.engine.store.of("signal")[-1]["kind"] == "pyramid"
    refused = h.engine.enter_now("grid", "BTCUSDT")
    assert not refused.ok and "max_pyramids (1) reached" in refused.message
    h.quote("ETHUSDT", 50.0)
    queued = h.engine.enter_now("other", "ETHUSDT")  # the pool (1) is taken by the grid's group, not by its pyramid
    assert queued.ok and "queued" in queued.message


def test_the_fifth_pyramid_is_timed():
    h = harness(grid=dca_strat(max_pyramids=6))
    group = enter(h)
    for n in range(5):
        h.quote("BTCUSDT", 100.0)
        assert h.engine.enter_now("grid", "BTCUSDT").ok
    assert group.plan.pyramids == 5 and group.plan.fifth_pyramid_at == h.clock.now()


def test_pending_layers_are_placed_again_after_a_restart(db_url):
    store = SqlStore(db_url, flush_interval_s=0.05)
    h = harness(store=store)
    group = enter(h)
    store.close()
    store2 = SqlStore(db_url, flush_interval_s=0.05)
    h2 = Harness(h.engine.config, store=store2, clock=h.clock)
    g2 = h2.engine.groups[group.id]
    pending = [lg for lg in g2.legs if lg.status == "pending"]
    assert [lg.entry for lg in pending] == [98.0, 95.0]
    assert all(lg.entry_order_id is None for lg in pending)  # the paper broker kept no orders
    h2.quote("BTCUSDT", 99.0)  # the first fresh quote: the layers rest again, as they were
    assert [(h2.engine.orders[lg.entry_order_id].limit_price, h2.engine.orders[lg.entry_order_id].status)
            for lg in pending] == [(98.0, "working"), (95.0, "working")]
    h2.quote("BTCUSDT", 97.9)
    assert pending[0].status == "open" and pending[0].target == 99.47
    store2.close()


def test_the_snapshot_shows_every_layer_with_its_state():
    h = harness(grid=dca_strat("hybrid", tp_pct=1.5))
    group = enter(h)
    h.quote("BTCUSDT", 97.9)
    h.quote("BTCUSDT", 99.5)  # layer 2 takes its profit
    (view,) = h.engine.snapshot().grids
    assert (view.group_id, view.tp_mode, view.avg_entry, view.agg_tp) == (group.id, "hybrid", 100.0, 101.5)
    assert [(lg.layer, lg.price, lg.state, lg.tp_target) for lg in view.legs] == [
        (0, 100.0, "filled", 101.0), (1, 98.0, "tp-hit", 99.47), (2, 95.0, "pending", None)]
    assert view.legs[1].realized == pytest.approx(1.5 * 1.02)


def test_a_rejected_layer_is_cancelled_and_the_grid_goes_on():
    h = harness()
    client = h.engine.client
    submit = client.submit

    def reject_deep_layers(request):
        if request.limit_price == 95.0:
            client._deliver([ExecEvent(request.order_id, ExecKind.REJECTED, h.clock.now(), reason="venue says no")])
        else:
            submit(request)

    client.submit = reject_deep_layers
    group = enter(h)
    first, second, third = legs(h, group.id)
    assert (first.status, second.status, third.status) == ("open", "pending", "cancelled")
    assert third.exit_reason == "rejected: venue says no"
    assert h.engine.used_funds["grid"] == pytest.approx(100 + 98 * 1.02)  # the rejected layer holds nothing
    alert = [e for e in h.engine.events if "layer 3 order rejected" in e.message]
    assert alert and alert[0].needs_ack
    assert h.engine.snapshot().grids[0].legs[2].state == "cancelled"
