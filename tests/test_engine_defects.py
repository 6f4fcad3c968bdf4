"""Defects of issue 12 that have no test file of their own: realized P&L of a position that
stays open is a trade when it is realized."""

from __future__ import annotations

import pytest

from .test_risk_engine import harness, ids, stuck


def test_every_close_of_a_risk_offset_is_a_trade_the_part_of_a_winner_too():
    h = harness()
    g = ids(h)
    stuck(h)
    stuck(h, dt=60.0)  # eligible: the loser (-30) is closed with ETH whole (+20) and 5 of 10 ACME (+10)
    assert g["w2"] in h.engine.groups  # the rest of ACME stays open
    assert sorted((t.group_id, t.qty, t.exit_reason, round(t.pnl, 6)) for t in h.engine.trades) == [
        (g["grid"], 10.0, "risk_offset", -30.0), (g["w1"], 4.0, "risk_offset", 20.0), (g["w2"], 5.0, "risk_offset", 10.0)]
    assert sum(t.pnl for t in h.engine.trades) == pytest.approx(sum(h.engine.realized_today.values()))
