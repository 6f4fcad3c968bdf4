"""Quotes, marks, the reference price for limit entries and the stale rule (DESIGN §3
"Quote & mark" and "Reference price for a limit entry")."""

from __future__ import annotations

import pytest

from services.market import Quote, QuoteBook, fill_price_from_quotes, mark_of


# -- mark -------------------------------------------------------------------------------------


def test_mark_is_the_mid_when_both_sides_exist():
    q = Quote("BTCUSDT", 0.0, 99.0, 101.0, last=150.0)
    assert mark_of(q) == 100.0
    assert q.mark == 100.0  # the property and the function agree


def test_mark_is_last_when_the_bid_is_missing():
    assert mark_of(Quote("BTCUSDT", 0.0, 0.0, 101.0, last=100.5)) == 100.5


def test_mark_is_last_when_the_ask_is_missing():
    assert mark_of(Quote("BTCUSDT", 0.0, 99.0, 0.0, last=100.5)) == 100.5


def test_mark_falls_back_to_the_side_that_exists_without_a_last():
    assert mark_of(Quote("BTCUSDT", 0.0, 99.0, 0.0)) == 99.0
    assert mark_of(Quote("BTCUSDT", 0.0, 0.0, 101.0)) == 101.0


def test_mark_of_a_locked_market_is_that_price():
    assert mark_of(Quote("BTCUSDT", 0.0, 100.0, 100.0, last=90.0)) == 100.0


# -- fill_price_from_quotes ---------------------------------------------------------------------


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_reference_price_with_bias_zero_is_the_mid(side):
    assert fill_price_from_quotes(side, 100.0, 102.0, 0.0) == 101.0
    assert fill_price_from_quotes(side, 100.0, 102.0) == 101.0  # bias defaults to 0


def test_buy_bias_concedes_toward_the_ask():
    # ask - (0.5 - bias) * spread
    assert fill_price_from_quotes("buy", 100.0, 102.0, 0.25) == pytest.approx(101.5)
    assert fill_price_from_quotes("buy", 100.0, 102.0, 0.1) == pytest.approx(101.2)
    assert fill_price_from_quotes("buy", 100.0, 102.0, 0.5) == 102.0  # the touch itself


def test_sell_bias_concedes_toward_the_bid():
    # bid + (0.5 - bias) * spread
    assert fill_price_from_quotes("sell", 100.0, 102.0, 0.25) == pytest.approx(100.5)
    assert fill_price_from_quotes("sell", 100.0, 102.0, 0.1) == pytest.approx(100.8)
    assert fill_price_from_quotes("sell", 100.0, 102.0, 0.5) == 100.0


@pytest.mark.parametrize("side", ["buy", "sell"])
@pytest.mark.parametrize("bias", [0.0, 0.3, 0.5])
def test_reference_price_when_bid_equals_ask_is_that_price(side, bias):
    assert fill_price_from_quotes(side, 100.0, 100.0, bias) == 100.0


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_reference_price_uses_the_other_side_when_one_is_missing(side):
    assert fill_price_from_quotes(side, 0.0, 102.0, 0.2) == 102.0
    assert fill_price_from_quotes(side, 100.0, 0.0, 0.2) == 100.0


def test_reference_price_without_any_side_raises():
    with pytest.raises(ValueError, match="no price"):
        fill_price_from_quotes("buy", 0.0, 0.0)


@pytest.mark.parametrize("bias", [-0.01, 0.51, 1.0])
def test_bias_outside_zero_to_half_raises(bias):
    with pytest.raises(ValueError, match="bias"):
        fill_price_from_quotes("buy", 100.0, 102.0, bias)


# -- the stale rule --------------------------------------------------------------------------


def test_quote_book_returns_the_latest_quote_while_it_is_fresh():
    book = QuoteBook(max_age_s=5.0)
    assert book.fresh("BTCUSDT", 100.0) is None  # never quoted
    assert book.is_stale("BTCUSDT", 100.0)
    q1 = Quote("BTCUSDT", 100.0, 99.0, 101.0)
    q2 = Quote("BTCUSDT", 101.0, 98.0, 100.0)
    book.update(q1)
    book.update(q2)
    assert book.get("BTCUSDT") is q2
    assert book.fresh("BTCUSDT", 101.0) is q2


def test_a_quote_exactly_max_age_old_is_still_fresh_and_older_is_stale():
    book = QuoteBook(max_age_s=5.0)
    q = Quote("BTCUSDT", 100.0, 99.0, 101.0)
    book.update(q)
    assert book.fresh("BTCUSDT", 105.0) is q
    assert not book.is_stale("BTCUSDT", 105.0)
    assert book.fresh("BTCUSDT", 105.001) is None
    assert book.is_stale("BTCUSDT", 105.001)
    assert book.get("BTCUSDT") is q  # a stale quote is still the latest one known


def test_staleness_is_per_symbol():
    book = QuoteBook(max_age_s=2.0)
    book.update(Quote("BTCUSDT", 100.0, 99.0, 101.0))
    book.update(Quote("ETHUSDT", 103.0, 49.0, 51.0))
    assert book.is_stale("BTCUSDT", 104.0)
    assert not book.is_stale("ETHUSDT", 104.0)
