"""Helpers shared by the engine scenario tests (configuration builder, a store that records
what the engine committed)."""

from __future__ import annotations

from typing import Any

from services.adapters.paper.execution import PaperExecution
from services.config import TradingConfig
from services.orders import ExecEvent, ExecKind, OrderRequest
from services.store import MemoryStore


def make_config(strategies: dict[str, dict], *, max_open: int = 10, max_age: float = 5.0,
                paper: dict | None = None, tick: float = 0.25) -> TradingConfig:
    """Like conftest.config(), with the engine/feed/paper knobs the scenarios need."""
    return TradingConfig.model_validate({
        "engine": {"max_open_positions": max_open, "tick_interval_s": tick},
        "feed": {"max_quote_age_s": max_age},
        "paper": paper or {"slippage_bps": 0, "maker_fee_bps": 0, "taker_fee_bps": 0},
        "symbols": {
            "BTCUSDT": {"start_price": 100.0, "tick_interval_s": 1},
            "ETHUSDT": {"start_price": 50.0, "tick_interval_s": 1},
            "ACME": {"start_price": 20.0, "tick_interval_s": 1},
        },
        "strategies": strategies,
    })


def strat(**kw: Any) -> dict:
    """A long, fixed-qty-1 immediate strategy on BTCUSDT unless told otherwise."""
    base: dict[str, Any] = {"symbols": ["BTCUSDT"], "side": "buy", "sizing": {"fixed_qty": 1}}
    base.update(kw)
    return base


class RecordingStore(MemoryStore):
    """A MemoryStore that keeps, for every committed write, (kind, row as it was committed)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, dict]] = []

    def write(self, records) -> None:
        records = list(records)
        for rec in records:
            self.rows.append((rec.KIND, rec.row()))
        super().write(records)

    def of(self, kind: str) -> list[dict]:
        return [row for k, row in self.rows if k == kind]

    def events(self, category: str | None = None) -> list[dict]:
        return [r for r in self.of("event") if category is None or r["category"] == category]


class RejectingClient(PaperExecution):
    """The paper client, rejecting the first `n` orders `which` picks (sells: a long's exits)
    with a venue's reason."""

    def __init__(self, *args, n: int = 2, which=lambda request: request.side == "sell",
                 reason: str = "insufficient margin") -> None:
        super().__init__(*args)
        self.left, self.which, self.reason = n, which, reason

    def submit(self, request: OrderRequest) -> None:
        if self.left and self.which(request):
            self.left -= 1
            self._deliver([ExecEvent(request.order_id, ExecKind.REJECTED, self.clock.now(), reason=self.reason)])
            return
        super().submit(request)
