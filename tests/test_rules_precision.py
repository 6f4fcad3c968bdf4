"""Precision at its edges (DESIGN §3 Precision): a price or quantity already on the tick or step
stays exactly where it is, however many steps it counts, and the result is the plain decimal."""

from __future__ import annotations

import pytest

from services.rules.precision import floor_qty, round_price


@pytest.mark.parametrize("qty", [0.32904922, 0.49948518, 0.54451407, 0.61727883])
def test_a_quantity_on_a_one_satoshi_step_is_not_floored_a_step_down(qty):
    # tens of millions of steps: the quotient's float error is past 1e-9 of a step
    assert floor_qty(qty, 1e-8) == qty
    assert floor_qty(qty + 0.9e-8, 1e-8) == qty  # a real fraction of a step is still floored


@pytest.mark.parametrize("price", [0.27041614, 0.61727883])
def test_a_price_on_a_one_satoshi_tick_is_not_moved_a_tick(price):
    assert round_price(price, "buy", 1e-8) == price
    assert round_price(price, "sell", 1e-8) == price


def test_a_price_of_ten_million_on_a_cent_tick_is_the_plain_decimal():
    assert round_price(10_000_000.04, "buy", 0.01) == 10_000_000.04
    assert round_price(10_000_000.041, "sell", 0.01) == 10_000_000.05
    assert floor_qty(1_000_000.004, 0.001) == 1_000_000.004
