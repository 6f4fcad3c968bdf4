"""Amounts as the screens show them."""

from screens.format import money, pct, signed_px


def test_an_amount_that_rounds_to_zero_has_no_minus_sign():
    assert [money(v) for v in (-0.001, -0.0, 0.0, -1.234, 1234.5)] == ["+0.00", "+0.00", "+0.00", "-1.23", "+1,234.50"]
    assert [pct(v) for v in (-0.004, -0.005001, None)] == ["+0.00%", "-0.01%", "—"]
    assert [signed_px(v) for v in (-0.0, 0.0, -0.001, 0.66)] == ["+0.00", "+0.00", "-0.001", "+0.66"]


def test_prices_and_distances_at_the_symbols_tick():
    from screens.format import gap, px, set_ticks, tick_decimals

    assert [tick_decimals(t) for t in (0.01, 0.25, 0.5, 1.0, 0.00001, 10.0)] == [2, 2, 1, 0, 5, 0]
    set_ticks({"BTCUSDT": 0.1, "DOGE": 0.00001})
    try:
        assert px(65000.15, "BTCUSDT") == "65,000.1" or px(65000.15, "BTCUSDT") == "65,000.2"
        assert (px(0.123456, "DOGE"), gap(0.2291, "BTCUSDT"), gap(0.0000731, "DOGE")) == ("0.12346", "0.2", "0.00007")
        assert px(3.14159, "UNKNOWN") == "3.14" and px(3.14159) == "3.14"  # no tick known: 2 decimals
    finally:
        set_ticks({})
