"""A crash with an exit order filled in part: the restart takes the order up as working (it is
not final), marks it cancelled, and sends the rest of the exit again."""

from __future__ import annotations

import pytest

from services.clock import FakeClock
from services.market import Quote
from services.store import SqlStore
from tests.conftest import Harness
from tests.engine_support import make_config, strat
from tests.test_store import db_rows
from tui_trader.wiring import build_engine


def test_an_exit_filled_in_part_before_a_crash_is_finished_after_the_restart(db_url):
    cfg = make_config({"s": strat(stop_loss="1%", reentry=False, sizing={"fixed_qty": 3})})
    h = Harness(cfg, store=SqlStore(db_url))
    h.quote("BTCUSDT", 100.0)
    h.clock.advance(1)
    h.engine.on_quote(Quote("BTCUSDT", h.clock.now(), 98.0, 98.0, 0.0, 1.0, 1.0))  # the stop: 1 of 3 sells
    (group,) = h.engine.groups.values()
    (leg,) = group.open_legs()
    assert leg.qty == pytest.approx(2.0) and leg.exit_order_id is not None
    h.engine.store.close()  # the process dies here: the exit order is partly filled and working
    [order] = db_rows(db_url, "select status, filled_qty from orders where purpose = 'exit'")
    assert (order["status"], order["filled_qty"]) == ("partially_filled", 1.0)

    again = build_engine(cfg, FakeClock(h.clock.now() + 1), SqlStore(db_url))
    again.open()
    try:
        again.clock.advance(1)
        again.on_quote(Quote("BTCUSDT", again.clock.now(), 98.0, 98.0))  # sizes unknown: the rest fills
        assert again.groups == {}
        statuses = [tuple(r) for r in db_rows(db_url, "select status, qty, filled_qty from orders where purpose = 'exit'")]
        assert statuses == [("cancelled", 3.0, 1.0), ("filled", 2.0, 2.0)]
        [closed] = db_rows(db_url, "select status, exit_reason, realized_pnl from position_groups")
        assert tuple(closed) == ("closed", "stop_loss", pytest.approx(-6.0))  # 3 sold at 98: 1 before the crash, 2 after
    finally:
        again.store.close()
