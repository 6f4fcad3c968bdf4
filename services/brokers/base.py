"""The broker interface. A broker reports fills and rejections through callbacks; the paper
broker calls them synchronously, a live one from its network task."""

from __future__ import annotations

from typing import Callable, Protocol

from ..domain import Order

FillHandler = Callable[[Order, float, float, float, str], None]  # order, qty, price, fee, liquidity
RejectHandler = Callable[[Order, str], None]  # order, reason


class Broker(Protocol):
    name: str

    def bind(self, on_fill: FillHandler, on_reject: RejectHandler) -> None:
        """Where fills and rejections are reported."""

    def submit(self, order: Order) -> None:
        """Send an order. The result arrives through the callbacks."""

    def cancel(self, order: Order) -> bool:
        """Cancel a working order; False when it is no longer working."""
