"""The order lifecycle (services.orders): every transition, fills accumulating, a fill after a
cancel request or after the end, and the events that are refused."""

from __future__ import annotations

import itertools
import math

import pytest

from services.orders import (FINAL, AppliedFill, ExecEvent, ExecKind, OrderPurpose, OrderState, OrderStatus, advance,
                             request_cancel)

S, K = OrderStatus, ExecKind
FILLS = (K.PARTIALLY_FILLED, K.FILLED)


def state(status: OrderStatus = S.NEW, qty: float = 2.0, filled: float = 0.0, **kw) -> OrderState:
    return OrderState(status, qty, filled, 100.0 if filled else None, **kw)


def ev(kind: ExecKind, qty: float = 0.0, price: float = 0.0, fee: float = 0.0) -> ExecEvent:
    return ExecEvent(7, kind, 1.0, qty, price, fee)


def part(kind: ExecKind = K.PARTIALLY_FILLED, qty: float = 1.0, price: float = 100.0, fee: float = 0.0) -> ExecEvent:
    return ev(kind, qty, price, fee)


# (status before, filled before, event, status after). A fill takes 1 of an order of 2.
ALLOWED = [
    (S.NEW, 0, K.ACCEPTED, S.WORKING),
    (S.NEW, 0, K.PARTIALLY_FILLED, S.PARTIALLY_FILLED),
    (S.NEW, 0, K.FILLED, S.PARTIALLY_FILLED),  # the quantities decide, not the event's name
    (S.NEW, 0, K.CANCEL_REQUESTED, S.CANCEL_REQUESTED),
    (S.NEW, 0, K.CANCELLED, S.CANCELLED),
    (S.NEW, 0, K.REJECTED, S.REJECTED),
    (S.NEW, 0, K.EXPIRED, S.EXPIRED),
    (S.WORKING, 0, K.PARTIALLY_FILLED, S.PARTIALLY_FILLED),
    (S.WORKING, 0, K.FILLED, S.PARTIALLY_FILLED),
    (S.WORKING, 0, K.CANCEL_REQUESTED, S.CANCEL_REQUESTED),
    (S.WORKING, 0, K.CANCELLED, S.CANCELLED),
    (S.WORKING, 0, K.EXPIRED, S.EXPIRED),
    (S.PARTIALLY_FILLED, 0.5, K.PARTIALLY_FILLED, S.PARTIALLY_FILLED),
    (S.PARTIALLY_FILLED, 1.0, K.FILLED, S.FILLED),
    (S.PARTIALLY_FILLED, 1.0, K.CANCEL_REQUESTED, S.CANCEL_REQUESTED),
    (S.PARTIALLY_FILLED, 1.0, K.CANCELLED, S.CANCELLED),
    (S.PARTIALLY_FILLED, 1.0, K.EXPIRED, S.EXPIRED),
    (S.CANCEL_REQUESTED, 0, K.PARTIALLY_FILLED, S.PARTIALLY_FILLED),
    (S.CANCEL_REQUESTED, 1.0, K.FILLED, S.FILLED),
    (S.CANCEL_REQUESTED, 0, K.CANCELLED, S.CANCELLED),
    (S.CANCEL_REQUESTED, 0, K.EXPIRED, S.EXPIRED),
    (S.CANCELLED, 0.5, K.PARTIALLY_FILLED, S.CANCELLED),  # late: kept, the order stays ended
    (S.CANCELLED, 0, K.FILLED, S.CANCELLED),
    (S.EXPIRED, 0, K.PARTIALLY_FILLED, S.EXPIRED),
    (S.EXPIRED, 1.0, K.FILLED, S.EXPIRED),
]


@pytest.mark.parametrize("before, filled, kind, after", ALLOWED)
def test_every_allowed_transition_leads_where_the_lifecycle_says(before, filled, kind, after):
    old = state(before, filled=filled)
    step = advance(old, part(kind) if kind in FILLS else ev(kind))
    assert step.problem == ""
    assert step.state.status is after
    assert step.final == (after in FINAL and before not in FINAL)
    assert step.late == (before in FINAL)
    if kind in FILLS:
        assert step.fill == AppliedFill(1.0, 100.0, 0.0)
        assert step.state.filled_qty == filled + 1.0
    else:
        assert step.fill is None
        assert step.state.filled_qty == filled


REFUSED = sorted(set(itertools.product(S, K)) - {(b, k) for b, _, k, _ in ALLOWED})


@pytest.mark.parametrize("before, kind", REFUSED)
def test_every_other_event_is_refused_and_changes_nothing(before, kind):
    old = state(before, filled=1.0 if before in (S.PARTIALLY_FILLED, S.FILLED) else 0.0)
    step = advance(old, part(kind) if kind in FILLS else ev(kind))
    assert step.problem
    assert step.state == old and step.fill is None and not step.final and not step.late


def test_the_refused_set_holds_the_events_of_a_filled_or_rejected_order_and_a_second_acceptance():
    assert {(S.FILLED, k) for k in K} | {(S.REJECTED, k) for k in K} <= set(REFUSED)
    assert (S.WORKING, K.ACCEPTED) in REFUSED and (S.WORKING, K.REJECTED) in REFUSED
    assert (S.CANCELLED, K.CANCELLED) in REFUSED and (S.CANCEL_REQUESTED, K.ACCEPTED) in REFUSED


def test_partial_fills_accumulate_quantity_average_price_and_fees_until_filled():
    s = state(S.WORKING, qty=4.0)
    steps = []
    for qty, price, fee in ((1.0, 100.0, 0.1), (2.0, 103.0, 0.2), (1.0, 101.0, 0.05)):
        steps.append(advance(s, part(qty=qty, price=price, fee=fee)))
        s = steps[-1].state
    assert [st.state.status for st in steps] == [S.PARTIALLY_FILLED, S.PARTIALLY_FILLED, S.FILLED]
    assert [st.final for st in steps] == [False, False, True]
    assert [st.state.remaining for st in steps] == [3.0, 1.0, 0.0]
    assert s.filled_qty == 4.0
    assert s.avg_price == pytest.approx((100.0 + 206.0 + 101.0) / 4.0)
    assert s.fees == pytest.approx(0.35)


def test_a_fill_event_that_completes_the_order_fills_it_whatever_its_name():
    step = advance(state(S.WORKING), part(K.PARTIALLY_FILLED, qty=2.0))
    assert step.state.status is S.FILLED and step.final


def test_an_order_is_filled_within_the_relative_tolerance_and_not_beyond():
    s = advance(advance(state(S.WORKING, qty=0.3), part(qty=0.1)).state, part(qty=0.2)).state
    assert s.status is S.FILLED and s.filled_qty != 0.3  # 0.30000000000000004
    under = advance(state(S.WORKING, qty=0.3), part(qty=0.7 - 0.4)).state  # 0.29999999999999993
    assert under.status is S.FILLED and under.remaining == 0.0
    assert advance(state(S.WORKING, qty=1.0), part(qty=1.0 - 1e-9)).state.status is S.FILLED  # at the bound
    short = advance(state(S.WORKING, qty=1.0), part(qty=1.0 - 1e-6)).state
    assert short.status is S.PARTIALLY_FILLED and short.remaining == pytest.approx(1e-6)


def test_an_overfill_is_refused():
    old = state(S.PARTIALLY_FILLED, filled=1.5)
    step = advance(old, part(K.FILLED, qty=1.0))
    assert "above the order's 2" in step.problem
    assert step.state == old and step.fill is None
    assert advance(state(S.WORKING, qty=1.0), part(qty=1.0 + 1e-6)).problem


@pytest.mark.parametrize("qty, price, fee", [(0.0, 100.0, 0.0), (-1.0, 100.0, 0.0), (math.nan, 100.0, 0.0),
                                             (1.0, 0.0, 0.0), (1.0, math.inf, 0.0), (1.0, 100.0, math.nan)])
def test_a_fill_without_a_positive_quantity_and_price_and_a_finite_fee_is_refused(qty, price, fee):
    old = state(S.WORKING)
    step = advance(old, part(qty=qty, price=price, fee=fee))
    assert step.problem and step.state == old


def test_a_negative_fee_a_maker_rebate_is_kept():
    assert advance(state(S.WORKING), part(fee=-0.02)).state.fees == -0.02


def test_a_fill_after_a_cancel_request_is_honoured_and_the_cancel_then_keeps_the_filled_quantity():
    asked = request_cancel(state(S.WORKING))
    assert asked.problem == "" and asked.state.cancel_requested and asked.state.status is S.WORKING
    acked = advance(asked.state, ev(K.CANCEL_REQUESTED))
    assert acked.state.status is S.CANCEL_REQUESTED and not acked.final
    filled = advance(acked.state, part(qty=0.5, price=99.0, fee=0.01))
    assert filled.state.status is S.PARTIALLY_FILLED and filled.state.cancel_requested and not filled.late
    done = advance(filled.state, ev(K.CANCELLED))
    assert done.final and done.state.status is S.CANCELLED
    assert (done.state.filled_qty, done.state.avg_price, done.state.fees) == (0.5, 99.0, 0.01)


def test_a_fill_racing_a_cancel_request_fills_the_order():
    s = advance(request_cancel(state(S.WORKING)).state, part(K.FILLED, qty=2.0)).state
    assert s.status is S.FILLED and s.cancel_requested
    assert advance(s, ev(K.CANCELLED)).problem  # the venue cannot cancel it any more


def test_the_venue_acknowledging_a_cancel_request_notes_it_on_the_order():
    assert advance(state(S.WORKING), ev(K.CANCEL_REQUESTED)).state.cancel_requested


@pytest.mark.parametrize("ended", [S.CANCELLED, S.EXPIRED])
def test_a_fill_after_the_order_ended_is_kept_and_flagged_late(ended):
    old = state(ended, filled=0.5)
    step = advance(old, part(K.FILLED, qty=1.5, price=104.0, fee=0.3))
    assert step.late and not step.final and step.problem == ""
    assert step.fill == AppliedFill(1.5, 104.0, 0.3)
    assert step.state.status is ended
    assert step.state.filled_qty == 2.0 and step.state.avg_price == pytest.approx((50.0 + 156.0) / 2.0)
    assert step.state.fees == 0.3
    assert advance(step.state, part(qty=0.1)).problem  # and never beyond the order's quantity


def test_a_cancel_request_on_an_ended_order_is_refused():
    for ended in FINAL:
        old = state(ended)
        step = request_cancel(old)
        assert step.problem == f"the order is already {ended}" and step.state == old


def test_statuses_keep_the_strings_stored_today():
    assert [S(v) for v in ("new", "working", "filled", "cancelled", "rejected")] == [
        S.NEW, S.WORKING, S.FILLED, S.CANCELLED, S.REJECTED]
    assert S.PARTIALLY_FILLED == "partially_filled" and OrderPurpose("exit") is OrderPurpose.EXIT
    assert FINAL == {S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED}
