"""A simulated trading day on a fake clock (New York, after the March DST change): scheduled
09:30 entries worked as limits (one fills after two re-prices, one falls back to market),
one held below min notional, one refused for funds, and the planned 15:55 exit; the
lifecycle and the Order rows at each step. Then: once per window across a restart."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from services.clock import FakeClock
from services.config import TradingConfig
from tui_trader.wiring import build_engine
from services.market import Quote
from services.store import SqlStore
from tests.engine_support import RecordingStore

NY = ZoneInfo("America/New_York")


def ny(hhmm: str, day: int = 10) -> float:
    """2026-03-<day> (a Tuesday for 10) at HH:MM New York time, as epoch seconds."""
    h, m = map(int, hhmm.split(":"))
    return datetime(2026, 3, day, h, m, tzinfo=NY).timestamp()


SCHEDULE = {"entry_times": ["09:30"], "weekdays": ["mon", "tue", "wed", "thu", "fri"],
            "timezone": "America/New_York", "entry_window_end": "10:00", "exit_time": "15:55"}


def day_config() -> TradingConfig:
    def scheduled(symbol: str, **kw) -> dict:
        base = {"symbols": [symbol], "side": "buy", "entry": "scheduled", "schedule": SCHEDULE,
                "sizing": {"fixed_qty": 1},
                "execution": {"order_type": "limit", "max_retries": 2, "retry_delay_s": 10}}
        base.update(kw)
        return base

    return TradingConfig.model_validate({
        "paper": {"slippage_bps": 0, "maker_fee_bps": 0, "taker_fee_bps": 0},
        "symbols": {
            "AAA": {"start_price": 100, "tick_size": 0.01, "min_notional": 10},
            "BBB": {"start_price": 50, "tick_size": 0.01},
            "CCC": {"start_price": 20, "tick_size": 0.01, "min_notional": 100},
            "DDD": {"start_price": 10, "tick_size": 0.01},
        },
        "strategies": {
            "reprice": scheduled("AAA"),
            "fallback": scheduled("BBB", execution={"order_type": "limit", "max_retries": 1, "retry_delay_s": 10}),
            "tiny": scheduled("CCC", sizing={"fixed_qty": 2}),  # 2 x 20 = 40 < 100
            "big": scheduled("DDD", sizing={"fixed_value": 5000}, allocation=1000),
        },
    })


class Day:
    def __init__(self, store=None, start: float = ny("09:00")) -> None:
        self.clock = FakeClock(start)
        self.store = store if store is not None else RecordingStore()
        self.engine = build_engine(day_config(), self.clock, self.store)
        self.engine.open()
        self.book = {"AAA": (99.0, 101.0), "BBB": (49.0, 51.0), "CCC": (19.9, 20.1), "DDD": (9.9, 10.1)}

    def run_until(self, t: float) -> None:
        """A quote on every symbol each second until t."""
        while self.clock.now() < t:
            self.clock.advance(1)
            for sym, (bid, ask) in self.book.items():
                self.engine.on_quote(Quote(sym, self.clock.now(), bid, ask))

    def status(self, sid: str):
        return next(s for s in self.engine.snapshot().strategies if s.id == sid)

    def orders(self, sid: str) -> list[tuple]:
        return [(o.method, o.retry_count, o.limit_price, o.status) for o in self.engine.snapshot().orders
                if o.strategy_id == sid]


def test_a_scheduled_trading_day():
    day = Day()
    day.run_until(ny("09:29"))
    for sid in ("reprice", "fallback", "tiny", "big"):
        s = day.status(sid)
        assert (s.status, s.next_entry_at) == ("waiting", ny("09:30")), sid
        assert s.reason == "next entry window Tue 09:30 America/New_York"
    assert day.engine.snapshot().orders == ()

    day.run_until(ny("09:30"))  # the window opens: limits at the mid
    assert day.status("reprice").status == "entering"
    assert day.orders("reprice") == [("limit", 0, 100.0, "working")]
    assert day.orders("fallback") == [("limit", 0, 50.0, "working")]
    tiny = day.status("tiny")
    assert (tiny.status, tiny.reason) == ("waiting", "CCC: order value 40.00 is below the minimum notional 100.00")
    big = day.status("big")
    assert big.reason == "insufficient funds: needs 5,000.00, big has 1,000.00 free of 1,000.00 allocated"
    assert day.orders("tiny") == day.orders("big") == []

    day.run_until(ny("09:30") + 10)  # first re-price: 1/3 of the way to the touch
    assert day.orders("reprice")[-1] == ("limit_retry", 1, 100.33, "working")
    assert day.orders("fallback")[-1] == ("limit_retry", 1, 50.5, "working")  # 1/2: it has one re-price
    day.run_until(ny("09:30") + 20)
    assert day.orders("reprice")[-1] == ("limit_retry", 2, 100.66, "working")
    assert day.orders("fallback")[-1] == ("market_fallback", 2, None, "filled")
    assert day.status("fallback").status == "live"
    day.book["AAA"] = (100.0, 100.6)  # the ask comes down through the second re-price
    day.run_until(ny("09:30") + 21)
    assert day.orders("reprice") == [("limit", 0, 100.0, "cancelled"), ("limit_retry", 1, 100.33, "cancelled"),
                                     ("limit_retry", 2, 100.66, "filled")]
    live = day.status("reprice")
    assert (live.status, live.planned_exit_at) == ("live", ny("15:55"))
    groups = {g["strategy_id"]: g for g in day.store.of("group")}  # the latest row of each
    assert (groups["reprice"]["entry_method"], groups["reprice"]["entry_attempts"]) == ("limit_retry", 3)
    assert (groups["fallback"]["entry_method"], groups["fallback"]["entry_attempts"]) == ("market_fallback", 3)

    day.run_until(ny("10:05"))  # the window has closed: the held entries do not go late
    assert day.orders("tiny") == day.orders("big") == []
    assert day.status("tiny").next_entry_at == ny("09:30", day=11)

    day.run_until(ny("15:55"))  # the planned exit
    trades = {t.strategy_id: t for t in day.engine.snapshot().trades}
    assert {sid: (t.exit_reason, t.exit_ts) for sid, t in trades.items()} == {
        "reprice": ("time", ny("15:55")), "fallback": ("time", ny("15:55"))}
    after = day.status("reprice")
    assert (after.status, after.next_entry_at) == ("waiting", ny("09:30", day=11))
    meta = next(r for r in reversed(day.store.of("run")) if r["strategy_id"] == "reprice")["session_metadata"]
    assert (meta["config_id"], meta["entry_method"], meta["scheduled_entry"], meta["attempts"], meta["filled_by"],
            meta["selected"], meta["reference_price"]) == (
        "reprice", "schedule", ny("09:30"), 3, "limit_retry", ["AAA"], 100.0)
    runs = [r for r in day.store.of("run") if r["strategy_id"] == "reprice"]
    assert [r["status"] for r in runs] == ["entering", "live", "exiting", "closed"]  # every lifecycle step, committed


def test_a_window_is_entered_once_even_across_a_restart(db_url):
    first = Day(SqlStore(db_url), start=ny("09:29"))
    first.run_until(ny("09:30") + 1)
    assert [(o.strategy_id, o.status) for o in first.engine.snapshot().orders] == [
        ("reprice", "working"), ("fallback", "working")]
    first.engine.store.close()  # the process stops with the limits working

    again = Day(SqlStore(db_url), start=ny("09:40"))  # still inside the 09:30-10:00 window
    again.run_until(ny("09:45"))
    assert again.engine.snapshot().positions == ()
    assert [o for o in again.engine.snapshot().orders if o.created_at >= ny("09:40")] == []  # not entered again
    assert [(o.strategy_id, o.status) for o in again.engine.snapshot().orders] == [
        ("reprice", "cancelled"), ("fallback", "cancelled")]  # the paper broker kept nothing: recorded
    assert again.status("reprice").next_entry_at == ny("09:30", day=11)
    again.engine.store.close()
