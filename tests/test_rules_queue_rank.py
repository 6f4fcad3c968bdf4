"""The queue's ranking on its own (DESIGN §3 pool & queue): promoted, then pyramids, then the
deepest loss %, the most replacements, first in (and the id when all of that ties), each
criterion deciding only on a tie of the ones before it; a signal's depth through its price;
and the reason shown for each place."""

from __future__ import annotations

import pytest

from services.rules.queue_rank import Standing, depth_pct, rank_key, rank_reason, rank_reasons
from tests.conftest import T0


def signal(id: int, depth: float | None = 0.0, *, pinned: bool = False, pyramid: bool = False, replacements: int = 0,
           queued_at: float = T0, priced: bool = True) -> Standing:
    return Standing(id, pinned, pyramid, depth, replacements, queued_at, priced)


def order(*signals: Standing) -> list[int]:
    return [s.id for s in sorted(signals, key=rank_key)]


# -- depth -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("side", "mark", "depth"), [
    ("buy", 98.0, 2.0), ("sell", 98.0, -2.0),  # a buy at 100 with the price at 98 is 2 % through it
    ("buy", 102.5, -2.5), ("sell", 102.5, 2.5), ("buy", 100.0, 0.0),
])
def test_depth_is_how_far_the_price_is_through_the_signals_in_the_trades_favour(side, mark, depth):
    assert depth_pct(side, 100.0, mark) == pytest.approx(depth)


def test_depth_is_a_percent_of_the_signal_price():
    assert depth_pct("buy", 50.0, 49.0) == pytest.approx(2.0)


@pytest.mark.parametrize(("price", "mark"), [(100.0, None), (None, 98.0), (0.0, 98.0)])
def test_without_a_current_or_a_signal_price_there_is_no_depth(price, mark):
    assert depth_pct("buy", price, mark) is None


# -- order -------------------------------------------------------------------------------------------


def test_a_promoted_signal_goes_first_whatever_the_rest():
    assert order(signal(1, 5.0, pyramid=True, replacements=3), signal(2, -5.0, pinned=True, queued_at=T0 + 9)) == [2, 1]


def test_a_pyramid_goes_before_a_deeper_signal():
    assert order(signal(1, 5.0, replacements=3), signal(2, -5.0, pyramid=True, queued_at=T0 + 9)) == [2, 1]


def test_the_deepest_goes_first_and_one_with_no_depth_last():
    assert order(signal(1, None), signal(2, -3.0, replacements=3), signal(3, 1.0, queued_at=T0 + 9)) == [3, 2, 1]


def test_on_equal_depth_the_most_replaced_goes_first():
    assert order(signal(1, 1.0, replacements=1), signal(2, 1.0, replacements=2, queued_at=T0 + 9)) == [2, 1]


def test_on_equal_replacements_the_first_in_goes_first():
    assert order(signal(1, 1.0, queued_at=T0 + 5), signal(2, 1.0, queued_at=T0 + 1)) == [2, 1]


def test_on_an_equal_time_the_lower_id_goes_first():
    assert order(signal(2), signal(1)) == [1, 2]


# -- reasons -----------------------------------------------------------------------------------------


def test_promoted_and_pyramid_say_so_whatever_comes_next():
    assert rank_reason(signal(1, pinned=True, pyramid=True), signal(2), False) == "promoted by the operator"
    assert rank_reason(signal(1, pyramid=True), signal(2), False) == "pyramid of an open group"


@pytest.mark.parametrize("other", [
    None, signal(2, 1.0, pinned=True), signal(2, 1.0, pyramid=True), signal(2, 0.5),
])
def test_a_signal_not_tied_on_depth_shows_its_depth(other):
    """No other, one ahead by promotion or as a pyramid (not a tie even on the same depth), or another depth."""
    assert rank_reason(signal(1, 1.0, replacements=1), other, False) == "+1.00% through its price"


def test_with_no_depth_the_reason_says_which_price_is_missing():
    assert rank_reason(signal(1, None), signal(2, 0.0), True) == "no current price to compare"
    assert rank_reason(signal(1, None, priced=False), signal(2, 0.0), True) == "no signal price to compare"


def test_a_tie_on_depth_is_settled_by_replacements_then_time():
    ahead, behind = signal(1, 1.0, replacements=2), signal(2, 1.0, replacements=1)
    assert (rank_reason(ahead, behind, False), rank_reason(behind, ahead, True)) == (
        "more replacements (2)", "fewer replacements (1)")
    ahead, behind = signal(1, 1.0), signal(2, 1.0, queued_at=T0 + 1)
    assert (rank_reason(ahead, behind, False), rank_reason(behind, ahead, True)) == ("first in", "later in")


def test_each_place_is_explained_against_the_next_and_the_last_against_the_one_ahead():
    ranked = [signal(1, 2.0), signal(2, 1.0, replacements=1), signal(3, 1.0), signal(4, 1.0, queued_at=T0 + 1)]
    assert rank_reasons(ranked) == ["+2.00% through its price", "more replacements (1)", "first in", "later in"]
    assert rank_reasons(ranked[:3])[-1] == "fewer replacements (0)"  # the last, against #2 ahead of it
    assert rank_reasons(ranked[:2])[-1] == "+1.00% through its price"  # #1 ahead is deeper: no tie


def test_a_queue_of_one_shows_its_own_depth():
    assert rank_reasons([signal(1, 1.0)]) == ["+1.00% through its price"]
    assert rank_reasons([]) == []
