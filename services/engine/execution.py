"""The engine's side of the order lifecycle (services.orders): orders go to the execution
client as requests, its events come back here, are applied to the engine's own Order through
the state machine, and are handed to the component that owns the order's purpose. A cancel
is a request too: what follows it (a re-price, a market fallback, giving an entry up) runs
when the venue confirms it, and a fill that arrives first is honoured."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

from ..domain import Fill, Order
from ..orders import ExecEvent, ExecKind, OrderPurpose, OrderRequest, OrderState, OrderStatus, advance
from .journal import Journal
from .ledger import Ledger

if TYPE_CHECKING:
    from ..ports import ExecutionClient
    from .entries import Entries
    from .exits import Exits

log = logging.getLogger("tui_trader.engine")

Then = Callable[[Order], None]
"""What to do once a cancel is confirmed (the order is final then, with whatever filled before)."""


class Execution:
    def __init__(self, journal: Journal, ledger: Ledger, client: ExecutionClient) -> None:
        self.journal, self.ledger, self.client = journal, ledger, client
        self.clock = journal.clock
        self.fill_listeners: list[Callable[[Fill], None]] = []
        self._cancels: dict[int, tuple[str, Then | None]] = {}  # order id -> (why, then) of a cancel asked for
        client.bind(self.on_event)
        # Deliver what the client has answered so far, if it answers after the call (wired by the
        # core; nothing to do for a client that answers inside the call or from the network).
        self.settle: Callable[[], None] = lambda: None
        # wired by the core: who acts on an order's fills and its end
        self.entries: Entries
        self.exits: Exits

    def submit(self, order: Order) -> None:
        """Send an order that is recorded and committed: the venue answers with events."""
        self.client.submit(OrderRequest(order.id, order.client_id, order.symbol, order.side, order.qty,
                                        order.order_type, order.limit_price))

    def cancel(self, order: Order, why: str, then: Then | None = None) -> None:
        """Ask the venue to cancel a working order; `then` runs once it confirms. If the order
        fills completely first, the fill stands and `then` never runs. Asked again before the
        venue answers, the latest follow-up is the one that runs (e.g. an exit signal giving up
        an entry whose re-price was on its way)."""
        asked = order.id in self._cancels
        self._cancels[order.id] = (why, then)
        if not asked:
            self.client.cancel(order.id)

    def cancelling(self, order: Order) -> bool:
        return order.id in self._cancels

    def on_event(self, event: ExecEvent) -> None:
        order = self.ledger.orders.get(event.order_id)
        if order is None:
            order = next((o for o in reversed(self.ledger.recent_orders) if o.id == event.order_id), None)
            if order is None:
                log.warning("an event for an order the engine does not know: %s", event)
                if event.kind in (ExecKind.PARTIALLY_FILLED, ExecKind.FILLED):  # money moved: the operator must know
                    self.journal.event("error", "order", f"the venue reported {event.kind} ({event.qty:g} at "
                                       f"{event.price:g}) for order {event.order_id}, which the engine does not know: "
                                       "nothing is booked; check the venue", needs_ack=True,
                                       payload={"order_id": event.order_id, "event": event.kind})
                    self.journal.commit()
                return
        state = OrderState(order.status, order.qty, order.filled_qty, order.avg_fill_price, order.fees,
                           order.id in self._cancels)
        step = advance(state, event)
        if step.problem:
            self.journal.event("error", "order", f"{order.strategy_id}: order {order.client_id} ({order.purpose} "
                               f"{order.side} {order.symbol}): the venue's {event.kind} was refused: {step.problem}",
                               symbol=order.symbol, needs_ack=True, payload={"order_id": order.id, "event": event.kind})
            self.journal.commit()
            return
        new = step.state
        order.filled_qty, order.avg_fill_price, order.fees = new.filled_qty, new.avg_price, new.fees
        order.updated_at = event.ts
        kind = event.kind
        if step.fill is not None:
            self._filled(order, step.fill.qty, step.fill.price, step.fill.fee, event.liquidity, new.status, step.late)
        elif kind in (ExecKind.CANCELLED, ExecKind.EXPIRED):
            self._ended(order, new.status, event.reason)
        elif kind is ExecKind.REJECTED:
            self._cancels.pop(order.id, None)
            self.ledger.order_final(order, OrderStatus.REJECTED, event.reason)
            (self.entries if order.purpose == OrderPurpose.ENTRY else self.exits).rejected(order, event.reason)
        else:  # accepted, or the venue's acknowledgement of a cancel request
            order.status = new.status
            self.journal.add(order)
        self.journal.commit()  # what the venue did is durable before anything else sees it

    def _filled(self, order: Order, qty: float, price: float, fee: float, liquidity: str, status: OrderStatus,
                late: bool) -> None:
        fill = Fill(self.journal.next_id("fill"), order.id, order.leg_id, order.symbol, order.side, qty, price, fee,
                    liquidity, self.clock.now())
        self.journal.add(fill)
        if late:  # the order had ended: money moved all the same
            self.journal.event("critical", "order", f"{order.strategy_id}: order {order.client_id} ({order.purpose} "
                               f"{order.side} {order.symbol}) filled {qty:g} at {price:g} after it had {order.status}; "
                               "the fill is booked", symbol=order.symbol, needs_ack=True, payload={"order_id": order.id})
        elif status is OrderStatus.FILLED:
            self._cancels.pop(order.id, None)
            self.ledger.order_final(order, OrderStatus.FILLED, order.reason)
        else:
            order.status = status
            self.journal.add(order)
        done = status is OrderStatus.FILLED
        if order.purpose == OrderPurpose.ENTRY:
            self.entries.filled(order, fill, done)
        else:
            self.exits.filled(order, qty, price, fee, done)
        for listener in self.fill_listeners:
            listener(fill)

    def _ended(self, order: Order, status: OrderStatus, reason: str) -> None:
        """Cancelled (as asked, or by the venue) or expired: the part that filled stays filled."""
        asked = self._cancels.pop(order.id, None)
        if asked is None:  # the venue ended it on its own: like a rejection of what is left
            self.ledger.order_final(order, status, reason or f"{status} by the venue")
            (self.entries if order.purpose == OrderPurpose.ENTRY else self.exits).rejected(order, order.reason)
            return
        why, then = asked
        self.ledger.order_final(order, status, why)
        if then is not None:
            then(order)
