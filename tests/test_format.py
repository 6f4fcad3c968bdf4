"""Amounts as the screens show them."""

from screens.format import money, pct, signed_px


def test_an_amount_that_rounds_to_zero_has_no_minus_sign():
    assert [money(v) for v in (-0.001, -0.0, 0.0, -1.234, 1234.5)] == ["+0.00", "+0.00", "+0.00", "-1.23", "+1,234.50"]
    assert [pct(v) for v in (-0.004, -0.005001, None)] == ["+0.00%", "-0.01%", "—"]
    assert [signed_px(v) for v in (-0.0, 0.0, -0.001, 0.66)] == ["+0.00", "+0.00", "-0.001", "+0.66"]
