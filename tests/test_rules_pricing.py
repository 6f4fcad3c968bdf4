"""Re-prices and entry sizes (DESIGN §3 Entry retries, Precision, Sizing): each re-price moves
1 / (max_retries + 1) of the way from the reference price toward the touch, and an entry is
its size floored to the lot step, refused with the reason when that is nothing or worth less
than the minimum notional."""

from __future__ import annotations

import pytest

from services.rules.precision import Rules
from services.rules.pricing import entry_qty, repriced


@pytest.mark.parametrize(("ref", "touch", "prices"), [
    (100.0, 110.0, [100.0, 102.5, 105.0, 107.5]),  # a buy moves up toward the ask
    (100.0, 90.0, [100.0, 97.5, 95.0, 92.5]),  # a sell down toward the bid
])
def test_each_reprice_moves_one_step_of_the_way_to_the_touch(ref, touch, prices):
    assert [repriced(ref, touch, attempt, retries=3) for attempt in range(4)] == prices


def test_a_single_retry_goes_halfway():
    assert repriced(100.0, 101.0, 1, retries=1) == 100.5


def test_an_entry_is_its_size_floored_to_the_lot_step():
    assert entry_qty("X", 2.379, 10.0, Rules(0.01, 0.01, 5.0)) == 2.37
    assert entry_qty("X", 2.379, 10.0, Rules(0.01, None, 5.0)) == 2.379


def test_an_entry_worth_exactly_the_minimum_notional_is_made():
    assert entry_qty("X", 0.5, 10.0, Rules(0.01, 0.1, 5.0)) == 0.5


def test_an_entry_under_the_minimum_notional_or_rounding_to_nothing_says_why():
    assert entry_qty("X", 0.49, 10.0, Rules(0.01, 0.01, 5.0)) == (
        "X: order value 4.90 is below the minimum notional 5.00")
    assert entry_qty("X", 0.09, 10.0, Rules(0.01, 0.1, 0.0)) == "X: the size 0.09 rounds to zero at lot step 0.1"
