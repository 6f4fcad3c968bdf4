"""The order lifecycle end to end (issue 14): orders go to the paper client as requests and
come back as events, in each of its modes: answered inside the call, after the call returns,
and after a latency (delivered at the first tick after it). Quotes give sizes, so fills come
in parts: an exit keeps working its remainder, an entry opens with what filled and grows, a
fill that lands after a cancel request is honoured, and an event the order cannot take is
refused with an alert."""

from __future__ import annotations

import pytest

from services.market import Quote
from services.orders import ExecEvent, ExecKind
from services.rules.dca import tp_price
from services.store import SqlStore
from tests.conftest import Harness
from tests.engine_support import RecordingStore, make_config, strat

MODES = {"immediate": {}, "async": {"events": "async"}, "async 200 ms": {"events": "async", "latency_ms": 200}}


@pytest.fixture(autouse=True)
def paper_events():
    """Each scenario runs in the modes it names, whatever mode the test run forces on the rest."""


@pytest.fixture(params=list(MODES))
def mode(request) -> str:
    return request.param


class Scenario:
    """Strategy s (a manual long of BTCUSDT unless told otherwise) on the paper client in one
    of its modes, driven by quotes with sizes on a fake clock."""

    def __init__(self, mode: str, *, taker_bps: float = 0.0, maker_bps: float = 0.0, store=None, clock=None,
                 **strategy) -> None:
        paper = {"slippage_bps": 0, "maker_fee_bps": maker_bps, "taker_fee_bps": taker_bps, **MODES[mode]}
        config = make_config({"s": strat(entry="manual", **strategy)}, paper=paper)
        btc = config.symbols["BTCUSDT"].model_copy(update={"tick_size": 0.01, "lot_step": 0.001})
        self.config = config.model_copy(update={"symbols": {**config.symbols, "BTCUSDT": btc}})
        self.h = Harness(self.config, store if store is not None else RecordingStore(), clock)
        self.engine, self.clock, self.store = self.h.engine, self.h.clock, self.h.store
        self.mode, self.latency = mode, MODES[mode].get("latency_ms", 0) / 1000.0

    def quote(self, bid: float, ask: float | None = None, bid_size: float = 0.0, ask_size: float = 0.0, *,
              dt: float = 1.0, settle: int = 1) -> None:
        """A fresh quote dt after the last (ask defaults to bid; a size of 0 is unknown: fills
        in full), then `settle` rounds of the events it caused arrive."""
        self.clock.advance(dt)
        self.engine.on_quote(Quote("BTCUSDT", self.clock.now(), bid, bid if ask is None else ask, 0.0,
                                   bid_size, ask_size))
        self.settle(settle)

    def settle(self, rounds: int = 1) -> None:
        """The events in flight arrive: their latency passes and the engine ticks (once per
        round: an order sent on an event's arrival is answered a latency later)."""
        for _ in range(rounds if self.latency else 0):
            self.clock.advance(self.latency)
            self.engine.tick()

    def enter(self, price: float | None = None) -> None:
        assert self.engine.enter_now("s", price=price).ok
        self.settle()

    @property
    def group(self):
        [group] = self.engine.groups.values()
        return group

    def orders(self, purpose: str) -> list[tuple]:
        """(method, qty, filled, status) of each order of this purpose, oldest first."""
        return [(o.method, o.qty, o.filled_qty, o.status) for o in self.engine.recent_orders if o.purpose == purpose]

    def order(self, purpose: str):
        return [o for o in self.engine.recent_orders if o.purpose == purpose][-1]

    def trades(self) -> list[tuple]:
        return [(t.qty, t.exit_price, t.exit_reason, round(t.pnl, 6)) for t in self.engine.trades]

    def alerts(self) -> list[str]:
        return [e["message"] for e in self.store.events() if e["needs_ack"]]


# == 1. an exit that fills in part keeps working its remainder until it is done ==================

def test_a_partly_filled_exit_keeps_working_the_rest_and_completes(mode):
    s = Scenario(mode, taker_bps=10, sizing={"fixed_qty": 3}, target="5%")
    s.quote(100.0)
    s.enter()  # 3 at 100, fee 0.3
    s.quote(106.0, bid_size=1)  # the target: a market sell of 3, of which the bid takes 1
    [leg] = s.group.legs
    assert s.orders("exit") == [("market", 3, 1, "partially_filled")]
    assert leg.status == "open" and leg.qty == 2 and leg.exit_order_id == s.order("exit").id
    assert s.group.status == "exiting" and s.h.position().exit_pending == "target"
    part = (106 - 100) * 1 - 0.1 - 0.106  # the part's share of the entry fee, and its own
    assert s.trades() == [(1, 106.0, "target", round(part, 6))]
    assert s.group.realized_pnl == pytest.approx(part)

    s.quote(107.0, bid_size=1)  # the rest works on at the touch of the next quotes
    assert s.orders("exit") == [("market", 3, 2, "partially_filled")] and leg.qty == 1
    s.quote(104.0, bid_size=5)
    assert s.orders("exit") == [("market", 3, 3, "filled")]
    assert leg.status == "closed" and s.engine.groups == {}
    total = (106 + 107 + 104 - 3 * 100) - 0.3 - (0.106 + 0.107 + 0.104)  # the entry fee and each fill's, once
    assert sum(t[3] for t in s.trades()) == pytest.approx(total)
    assert [t[2] for t in s.trades()] == ["target"] * 3
    assert s.engine.realized_total == pytest.approx(total)
    assert sum(f["fee"] for f in s.store.of("fill")) == pytest.approx(0.3 + 0.106 + 0.107 + 0.104)
    assert s.alerts() == []


# == 2. a fill that lands after a cancel request is honoured ====================================

LIMIT = {"order_type": "limit", "max_retries": 1, "retry_delay_s": 2}


def test_a_limit_entry_that_fills_as_its_reprice_cancels_it_is_honoured(mode):
    s = Scenario(mode, execution=LIMIT, stop_loss="5%")
    s.quote(99.0, 101.0)
    s.enter()  # a limit buy rests at the mid, 100
    s.quote(99.0, 100.0, dt=2, settle=0)  # the ask reaches it as its re-price falls due
    order = s.order("entry")
    if s.latency:  # the fill is on its way while the re-price asks to cancel
        assert order.status == "working" and s.engine.execution.cancelling(order)
    s.settle()
    assert s.orders("entry") == [("limit", 1, 1, "filled")]  # not re-priced
    assert s.h.position().entry == 100.0 and s.h.position().stop == 95.0
    assert not s.engine.execution.cancelling(order)
    s.quote(94.0)  # managed like any other: its stop
    assert s.engine.groups == {} and s.trades() == [(1, 94.0, "stop_loss", -6.0)]
    assert s.alerts() == []


def test_a_limit_exit_that_fills_as_its_reprice_cancels_it_is_honoured(mode):
    s = Scenario(mode, target="5%", exit_execution=LIMIT)
    s.quote(100.0)
    s.enter()
    s.quote(105.0, 107.0)  # the target: a limit sell rests at the mid, 106
    assert s.orders("exit") == [("limit", 1, 0, "working")]
    s.quote(106.0, 108.0, dt=2, settle=0)  # the bid reaches it as its re-price falls due
    if s.latency:
        assert s.engine.execution.cancelling(s.order("exit"))
    s.settle()
    assert s.orders("exit") == [("limit", 1, 1, "filled")]
    assert s.engine.groups == {} and s.trades() == [(1, 106.0, "target", 6.0)]
    assert s.alerts() == []


def test_an_entry_an_exit_signal_cancels_that_fills_first_is_opened_then_closed(mode):
    s = Scenario(mode, execution=LIMIT, stop_loss="5%")
    s.quote(99.0, 101.0)
    s.enter()
    s.quote(99.0, 100.0, settle=0)  # the ask reaches the limit
    assert s.engine.exit_signal("s").ok
    s.settle(2)  # the entry's fill, then the exit's
    assert s.orders("entry") == [("limit", 1, 1, "filled")]
    assert [(method, status) for method, _, _, status in s.orders("exit")] == [("market", "filled")]
    assert s.engine.groups == {} and s.engine.realized_total == pytest.approx(-1.0)  # bought at 100, sold at the bid
    if s.latency:  # the fill was on its way when the signal cancelled the entry: it is unwound, with an alert
        assert s.trades() == [(1, 99.0, "unwind", -1.0)]
        assert s.alerts() == ["s: entry #1 failed: cancelled by an exit signal (#2); unwinding BTCUSDT"]
    else:  # the fill was in before the signal: it closes the open position
        assert s.trades() == [(1, 99.0, "signal", -1.0)]


# == 3. an entry that fills in part opens the position with what filled =========================

def test_a_partly_filled_entry_is_managed_at_once_grows_and_keeps_what_filled_at_its_deadline(mode):
    s = Scenario(mode, taker_bps=10, maker_bps=5, sizing={"fixed_qty": 3}, stop_loss="5%", execution=LIMIT)
    s.quote(99.0, 101.0, ask_size=1)
    s.enter(price=102.0)  # a signal's limit, marketable: 1 at the ask (taker), the rest rests at 102
    [leg] = s.group.legs
    assert (leg.status, leg.qty, leg.entry, leg.stop) == ("open", 1, 101.0, pytest.approx(95.95))
    assert s.orders("entry") == [("limit", 3, 1, "partially_filled")] and s.group.status == "open"
    assert s.h.position().qty == 1
    s.quote(99.0, 101.5, ask_size=1)  # the ask under the limit: 1 more at the limit (maker)
    assert (leg.qty, leg.entry, leg.stop) == (2, 101.5, pytest.approx(95.95))  # the levels stay the first fill's
    assert leg.entry_fee == pytest.approx(0.101 + 0.051)
    s.quote(99.0, 103.0)  # the deadline: the rest is cancelled, not chased
    assert s.orders("entry") == [("limit", 3, 2, "cancelled")]
    assert (leg.qty, leg.entry) == (2, 101.5) and s.group.entry_order_id is None
    assert s.engine.used_funds["s"] == pytest.approx(203.0)
    s.quote(95.0, 96.0)  # its stop, for what it holds
    assert s.orders("exit") == [("market", 2, 2, "filled")] and s.engine.groups == {}
    assert s.trades() == [(2, 95.0, "stop_loss", round(-13 - 0.152 - 0.19, 6))]
    assert s.alerts() == []


def test_a_stop_reached_while_the_entry_fills_sells_what_filled_and_cancels_the_rest(mode):
    s = Scenario(mode, sizing={"fixed_qty": 3}, stop_loss="5%", execution=LIMIT)
    s.quote(99.0, 101.0, ask_size=1)
    s.enter(price=102.0)
    s.quote(94.0, 96.0, ask_size=1, settle=2)  # the falling ask fills 1 more at the limit; then the stop
    assert s.orders("entry") == [("limit", 3, 2, "cancelled")]
    if mode == "immediate":
        assert s.orders("exit") == [("market", 2, 2, "filled")]
    else:  # the second part's fill lands after the exit went for the first: the rest goes after it
        assert s.orders("exit") == [("market", 1, 1, "filled"), ("market", 1, 1, "filled")]
    assert s.engine.groups == {} and s.engine.realized_total == pytest.approx((94 - 101) + (94 - 102))
    assert s.alerts() == []


def test_a_part_fill_that_lands_after_the_reprice_cancelled_the_entry_is_kept_and_not_chased(mode):
    s = Scenario(mode, sizing={"fixed_qty": 3}, stop_loss="5%", execution=LIMIT)
    s.quote(99.0, 101.0)
    s.enter()  # a limit buy of 3 rests at 100
    s.quote(99.0, 100.0, ask_size=1, dt=2, settle=2)  # 1 fills as the re-price falls due
    assert s.orders("entry") == [("limit", 3, 1, "cancelled")]  # no re-price for the rest
    assert (s.group.status, s.h.position().qty, s.h.position().stop) == ("open", 1, 95.0)
    assert s.engine.used_funds["s"] == pytest.approx(100.0)


# == 4. a limit exit re-priced after a partial fill goes for the rest only =======================

def test_a_partly_filled_limit_exit_is_repriced_for_the_rest_only(mode):
    s = Scenario(mode, sizing={"fixed_qty": 3}, target="5%", exit_execution=LIMIT)
    s.quote(100.0)
    s.enter()
    s.quote(105.0, 107.0)  # the target: a limit sell of 3 rests at the mid, 106
    s.quote(106.0, 108.0, bid_size=1)  # the bid reaches it for 1 (maker)
    assert s.orders("exit") == [("limit", 3, 1, "partially_filled")] and s.group.legs[0].qty == 2
    s.quote(105.0, 107.0, settle=2)  # its delay is over: cancelled, then re-priced halfway to the bid for the 2 left
    assert s.orders("exit") == [("limit", 3, 1, "cancelled"), ("limit_retry", 2, 0, "working")]
    assert s.order("exit").limit_price == 105.5
    s.quote(105.5, 107.0, bid_size=5)
    assert s.orders("exit")[-1] == ("limit_retry", 2, 2, "filled") and s.engine.groups == {}
    assert s.trades() == [(1, 106.0, "target", 6.0), (2, 105.5, "target", 11.0)]


def test_a_partly_filled_limit_exit_goes_at_market_for_the_rest_after_its_last_reprice(mode):
    s = Scenario(mode, sizing={"fixed_qty": 3}, target="5%", exit_execution={**LIMIT, "max_retries": 0})
    s.quote(100.0)
    s.enter()
    s.quote(105.0, 107.0)
    s.quote(106.0, 108.0, bid_size=1)
    s.quote(105.0, 107.0, bid_size=1, settle=2)  # no re-price left: the rest at market, the bid taking 1 of it
    assert s.orders("exit") == [("limit", 3, 1, "cancelled"), ("market_fallback", 2, 1, "partially_filled")]
    s.quote(104.0, 107.0)
    assert s.orders("exit")[-1] == ("market_fallback", 2, 2, "filled") and s.engine.groups == {}
    assert s.engine.realized_total == pytest.approx(6 + 5 + 4)


# == 5. a DCA layer that fills in part while its group exits ===================================

GRID = {"sizing": {"fixed_value": 200},
        "dca": {"layers": [{"gap_pct": 0, "weight": 1, "tp_pct": 1}, {"gap_pct": 2, "weight": 1, "tp_pct": 1}]}}


def test_a_layer_filled_in_part_when_its_group_exits_has_its_rest_cancelled_and_what_filled_sold(mode):
    s = Scenario(mode, **GRID)
    s.quote(100.0)
    s.enter()  # layer 1: 1 at 100; layer 2: a limit buy of 1.02 rests at 98
    first, second = s.group.legs
    s.quote(97.9, 98.0, ask_size=0.5)  # the ask reaches layer 2 for 0.5 of it
    assert (second.status, second.qty, second.entry) == ("open", 0.5, 98.0)
    layer = s.engine.orders[second.entry_order_id]
    assert (layer.filled_qty, layer.status) == (0.5, "partially_filled")
    assert s.engine.exit_signal("s").ok
    s.settle()
    assert (layer.status, layer.filled_qty) == ("cancelled", 0.5)
    assert s.orders("exit") == [("market", 1, 1, "filled"), ("market", 0.5, 0.5, "filled")]
    assert [(lg.status, lg.exit_price) for lg in (first, second)] == [("closed", 97.9), ("closed", 97.9)]
    assert s.engine.groups == {} and s.engine.used_funds["s"] == pytest.approx(0.0)
    assert s.engine.realized_total == pytest.approx((97.9 - 100) + (97.9 - 98) * 0.5)
    assert s.alerts() == []


def test_a_layer_fill_on_its_way_when_its_group_exits_is_sold_too(mode):
    s = Scenario(mode, **GRID)
    s.quote(100.0)
    s.enter()
    first, second = s.group.legs
    s.quote(97.9, 98.0, ask_size=0.5, settle=0)  # with a latency, the part fill is on its way...
    assert s.engine.exit_signal("s").ok  # ...when the exit cancels the layer
    s.settle(2)
    assert [(lg.status, lg.qty) for lg in (first, second)] == [("closed", 1), ("closed", 0.5)]
    assert sorted(o[1:] for o in s.orders("exit")) == [(0.5, 0.5, "filled"), (1, 1, "filled")]
    assert s.engine.groups == {} and s.engine.used_funds["s"] == pytest.approx(0.0)
    assert s.engine.realized_total == pytest.approx((97.9 - 100) + (97.9 - 98) * 0.5)


def test_a_layer_filling_in_parts_moves_the_aggregate_and_the_grid_has_filled_with_its_last_part(mode):
    s = Scenario(mode, **{**GRID, "dca": {**GRID["dca"], "tp_mode": "aggregate", "tp_pct": 1}})
    s.quote(100.0)
    s.enter()
    first, second = s.group.legs
    s.quote(97.9, 98.0, ask_size=0.5)
    assert second.status == "open" and s.group.plan.filled_at is None  # half of the last layer is still working
    assert s.group.plan.agg_tp == tp_price((100 + 98 * 0.5) / 1.5, 1, "buy", 0.01)
    s.quote(97.9, 98.0, ask_size=5)
    assert (second.qty, second.entry_order_id) == (1.02, None)
    assert s.group.plan.agg_tp == tp_price((100 + 98 * 1.02) / 2.02, 1, "buy", 0.01)  # the average of all that filled
    assert s.group.plan.filled_at == s.clock.now()
    assert [e["message"] for e in s.store.events("dca") if "every layer" in e["message"]] == [
        "s: every layer of #1 BTCUSDT has filled (average 98.99)"]


def test_a_layer_whose_rest_the_venue_ends_keeps_what_filled_and_the_grid_has_filled_as_far_as_it_will(mode):
    s = Scenario(mode, **GRID)
    s.quote(100.0)
    s.enter()
    first, second = s.group.legs
    s.quote(97.9, 98.0, ask_size=0.5)
    layer = s.engine.orders[second.entry_order_id]
    s.engine.client.cancel(layer.id)  # the venue ends the rest on its own
    s.quote(97.9, 98.5)
    assert (layer.status, layer.filled_qty) == ("cancelled", 0.5)
    assert (second.status, second.qty, second.entry_order_id) == ("open", 0.5, None)
    assert s.group.plan.filled_at is not None and s.group.status == "open"


# == 6. an event the order cannot take is refused, with an alert, and changes nothing ===========

def state(s: Scenario) -> tuple:
    """What a refused event must leave as it was."""
    return ([(o.id, o.status, o.filled_qty, o.avg_fill_price, o.fees) for o in s.engine.recent_orders],
            [(g.id, g.status, g.realized_pnl, [(lg.status, lg.qty, lg.entry, lg.exit_order_id) for lg in g.legs])
             for g in s.engine.groups.values()],
            s.trades(), s.engine.realized_total, len(s.store.of("fill")))


def test_an_overfill_or_a_fill_of_a_filled_order_is_refused_with_an_alert(mode):
    s = Scenario(mode, target="5%", exit_execution=LIMIT)
    s.quote(100.0)
    s.enter()
    s.quote(105.0, 107.0)  # a limit sell of 1 rests at 106
    exit_order, entry_order = s.order("exit"), s.order("entry")
    before = state(s)
    s.engine.execution.on_event(ExecEvent(exit_order.id, ExecKind.FILLED, s.clock.now(), 5.0, 106.0))
    s.engine.execution.on_event(ExecEvent(entry_order.id, ExecKind.PARTIALLY_FILLED, s.clock.now(), 1.0, 100.0))
    assert state(s) == before
    assert s.alerts() == [
        f"s: order {exit_order.client_id} (exit sell BTCUSDT): the venue's filled was refused: a fill of 5 would "
        "take the filled quantity to 5, above the order's 1",
        f"s: order {entry_order.client_id} (entry buy BTCUSDT): the venue's partially_filled was refused: "
        "partially_filled is not expected for an order that is filled"]
    s.quote(106.0, 108.0)  # the order works on: the bid reaches it
    assert s.orders("exit") == [("limit", 1, 1, "filled")] and s.trades() == [(1, 106.0, "target", 6.0)]


def test_an_event_for_an_order_the_engine_does_not_know_is_an_alert(mode):
    s = Scenario(mode)
    s.quote(100.0)
    s.enter()
    before = state(s)
    s.engine.execution.on_event(ExecEvent(99, ExecKind.FILLED, s.clock.now(), 1.0, 100.0))
    assert state(s) == before
    assert s.alerts() == ["the venue reported filled (1 at 100) for order 99, which the engine does not know: "
                          "nothing is booked; check the venue"]


# == 7. a stop with orders working, and the start after it ======================================

SLOW_LIMIT = {"order_type": "limit", "retry_delay_s": 60}  # not re-priced while the scenario runs


async def stopped_with_a_partly_filled_exit(mode: str, db_url: str) -> Scenario:
    """A long of 3 whose limit exit has filled 1 and is filling 1 more (with a latency, that
    fill is on its way) when the engine stops."""
    s = Scenario(mode, store=SqlStore(db_url), sizing={"fixed_qty": 3}, target="5%", exit_execution=SLOW_LIMIT)
    s.quote(100.0)
    s.enter()
    s.quote(105.0, 107.0)  # a limit sell of 3 rests at 106
    s.quote(106.0, 108.0, bid_size=1)
    s.quote(106.0, 108.0, bid_size=1, settle=0)
    await s.engine.stop()
    assert s.engine.state == "stopped"
    assert [e.message for e in s.engine.events if e.level in ("error", "critical")] == []
    return s


def restarted(s: Scenario, db_url: str) -> Scenario:
    return Scenario(s.mode, store=SqlStore(db_url), clock=s.clock, sizing={"fixed_qty": 3}, target="5%",
                    exit_execution=SLOW_LIMIT)


async def test_a_stop_with_a_partly_filled_exit_working_and_the_start_that_finishes_it(mode, db_url):
    s = await stopped_with_a_partly_filled_exit(mode, db_url)
    booked = s.order("exit").filled_qty
    assert booked == 2  # a fill on its way at the stop is booked before the last write
    again = restarted(s, db_url)
    try:
        [group] = again.engine.groups.values()
        [leg] = group.legs
        assert (group.status, group.pending_exit, leg.status) == ("exiting", "target", "open")
        assert leg.qty == 3 - booked and group.realized_pnl == pytest.approx(6.0 * booked)
        assert again.engine.orders == {}  # the paper venue keeps nothing over a restart
        again.quote(107.0)  # the exit goes again on the first fresh quote, for what is left
        assert [o[1:] for o in again.orders("exit")][-1] == (3 - booked, 3 - booked, "filled")
        assert again.engine.groups == {} and group.status == "closed"
        assert group.realized_pnl == pytest.approx(6.0 * booked + 7.0 * (3 - booked))
        assert [e.message for e in again.engine.events if e.level in ("error", "critical")] == []
    finally:
        again.store.close()


async def test_after_a_stop_and_a_start_no_order_is_left_unfinished(mode, db_url):
    s = await stopped_with_a_partly_filled_exit(mode, db_url)
    again = restarted(s, db_url)
    try:
        assert [(o.purpose, o.status) for o in again.engine.recent_orders] == [("entry", "filled"), ("exit", "cancelled")]
    finally:
        again.store.close()


async def test_a_fill_on_its_way_at_the_stop_is_booked(mode, db_url):
    s = await stopped_with_a_partly_filled_exit(mode, db_url)
    assert s.order("exit").filled_qty == 2


async def test_what_a_partial_exit_realized_before_a_stop_stays_in_the_paper_cash(db_url):
    s = await stopped_with_a_partly_filled_exit("immediate", db_url)
    assert s.engine.realized_total == pytest.approx(12.0)  # 2 sold at 106: the paper cash is the starting cash plus this
    again = restarted(s, db_url)
    try:
        assert again.engine.realized_total == pytest.approx(12.0)
    finally:
        again.store.close()


async def test_a_stop_with_an_entry_working_gives_it_up_and_the_next_start_agrees(mode, db_url):
    s = Scenario(mode, store=SqlStore(db_url), execution=SLOW_LIMIT)
    s.quote(99.0, 101.0)
    s.enter()  # a limit buy rests at 100
    await s.engine.stop()
    assert [e.message for e in s.engine.events if e.level in ("error", "critical")] == []
    again = Scenario(mode, store=SqlStore(db_url), clock=s.clock, execution=SLOW_LIMIT)
    try:
        assert again.engine.groups == {} and again.engine.orders == {}
        assert [(o.purpose, o.status) for o in again.engine.recent_orders] == [("entry", "cancelled")]
        again.quote(99.0, 100.0)  # nothing is left to fill
        assert again.engine.groups == {} and again.engine.realized_total == 0.0
    finally:
        again.store.close()
