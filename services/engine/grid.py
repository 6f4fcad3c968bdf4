"""DCA grids and pyramids (DESIGN §3), the engine side: placing the layers a group's plan asks
for as resting limit orders (measured from the first layer's fill), cancelling them when the
group exits, placing them again after a restart, closing a layer on its own take-profit, and
a further entry signal's pyramid. What a layer's fill means is services.plans.GridPlan's, the
grid arithmetic services.rules.dca's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..amounts import entry_capital as _capital, px as _px
from ..config import StrategyConfig
from ..domain import Group, GroupStatus, Leg, LegStatus, Order
from ..market import Quote, mark_of
from ..orders import OrderPurpose
from ..plans import GridPlan, layers_at, layers_problem
from ..rules.dca import LayerPlan
from ..rules.precision import RulesSource
from ..views import CommandResult
from .desk import Desk
from .journal import Journal
from .ledger import Ledger

if TYPE_CHECKING:
    from .entries import Entries
    from .execution import Execution
    from .exits import Exits


class Grid:
    def __init__(self, journal: Journal, ledger: Ledger, desk: Desk, rules: RulesSource) -> None:
        self.journal, self.ledger, self.desk, self.rules = journal, ledger, desk, rules
        self.clock = journal.clock
        self.orders, self.strategies = ledger.orders, desk.strategies
        # wired by the core
        self.execution: Execution
        self.entries: Entries
        self.exits: Exits

    def plans(self, cfg: StrategyConfig, symbol: str, p0: float, capital: float) -> list[LayerPlan]:
        return layers_at(cfg.dca, cfg.side, p0, capital, self.rules.rules(symbol))

    def problem(self, symbol: str, plans: list[LayerPlan]) -> str:
        """Why the first of these layers that cannot be placed on `symbol` cannot ("" when all can)."""
        return layers_problem(plans, self.rules.rules(symbol))

    def opened(self, group: Group, leg: Leg, now: float) -> None:
        """A leg of `group` filled: its plan says what that means (a grid layer's own take-profit
        and the aggregate one) and which layers to place from it as resting orders (for the first
        layer of the first grid, the others from P0 = this fill)."""
        layers = group.plan.opened(group, leg, self.rules.rules(leg.symbol))
        if layers:
            self._place_layers(group, layers, 0, leg.entry, now)
        self.check_filled(group, now)

    def grew(self, group: Group, done: bool, now: float) -> None:
        """More of a leg's order filled: its plan follows the new average (a grid's aggregate
        take-profit), and with the rest of the order (`done`) every layer may have filled."""
        group.plan.grew(group, self.rules.rules(group.symbol))
        if done:
            self.check_filled(group, now)

    def check_filled(self, group: Group, now: float) -> None:
        """Whether every layer has now filled in full (the plan notes when)."""
        if group.plan.completed(group, now):
            self.journal.event("info", "dca", f"{group.strategy_id}: every layer of #{group.id} {group.symbol} has filled "
                        f"(average {_px(group.avg_entry())})", group)

    def _place_layers(self, group: Group, plans: list[LayerPlan], pyramid: int, p0: float, now: float,
                      first_at_market: bool = False) -> None:
        """Each layer becomes a pending leg with its resting limit order (a pyramid's first layer
        goes at market); all are committed before any is sent."""
        rt = self.strategies.get(group.strategy_id)
        orders = []
        for layer in plans:
            if self.problem(group.symbol, [layer]):
                continue  # P0 moved since the entry was checked: this layer cannot be placed (said below)
            leg = Leg(self.journal.next_id("leg"), group, group.symbol, group.side, layer.qty, layer.price, 0.0, now,
                      rt.config.trigger_price if rt else "mark")
            leg.status, leg.layer, leg.pyramid = LegStatus.PENDING, layer.index, pyramid
            leg.weight, leg.tp_pct = layer.weight, layer.tp_pct
            market = first_at_market and layer is plans[0]
            order = Order(self.journal.next_id("order"), group.id, leg.id, group.strategy_id, group.symbol, group.side, layer.qty,
                          "market" if market else "limit", "dca_layer", OrderPurpose.ENTRY, now,
                          limit_price=None if market else layer.price, reference_price=p0)
            leg.entry_order_id = order.id
            group.legs.append(leg)
            self.ledger.add_order(order)
            orders.append(order)
            self.journal.add(leg, order)
        skipped = len(plans) - len(orders)
        group.plan.placed(now)
        self.ledger.reserve(group, group.held())
        self.journal.add(group)
        what = f"pyramid {pyramid}" if pyramid else "DCA grid"
        self.journal.event("info", "dca", f"{group.strategy_id}: #{group.id} {group.symbol} {what}: {len(orders)} layer order(s) "
                    f"placed from {_px(p0)}" + (f"; {skipped} skipped (under the minimum notional at this price)" if skipped else ""),
                    group, payload={"p0": p0, "pyramid": pyramid, "orders": [o.id for o in orders],
                                    "prices": [o.limit_price for o in orders]})
        self.journal.commit()  # the layers and their orders are durable before they are sent
        for order in orders:
            if order.id in self.orders:
                self.execution.submit(order)

    def replace_layers(self, group: Group, now: float) -> None:
        """After a restart: the paper broker kept no orders, so each pending layer's resting
        order is placed again, as it was (on the symbol's first fresh quote)."""
        orders = []
        for leg in group.legs:
            if leg.status != LegStatus.PENDING or leg.entry_order_id is not None:
                continue
            order = Order(self.journal.next_id("order"), group.id, leg.id, group.strategy_id, leg.symbol, leg.side, leg.qty,
                          "limit", "dca_layer", OrderPurpose.ENTRY, now, limit_price=leg.entry)
            leg.entry_order_id = order.id
            self.ledger.add_order(order)
            orders.append(order)
            self.journal.add(leg, order)
        if orders:
            self.journal.event("warning", "recovery", f"#{group.id} {group.symbol}: {len(orders)} resting DCA layer order(s) placed "
                        "again after the restart", group, payload={"orders": [o.id for o in orders]})
            self.journal.commit()
            for order in orders:
                self.execution.submit(order)

    def pyramid(self, group: Group, q: Quote, signal_price: float | None, size: float | None,
                 source: str) -> CommandResult:
        """A further entry signal for an open DCA group adds a new grid from the current price
        (its first layer at market, the others resting), up to max_pyramids; no pool slot."""
        rt = self.strategies[group.strategy_id]
        dca, plan = rt.config.dca, group.plan
        if not isinstance(plan, GridPlan):  # its strategy became a grid after it opened
            return CommandResult.error(f"#{group.id} {group.symbol} is not a DCA grid; no pyramid")
        if group.status != GroupStatus.OPEN or group.pending_exit:
            return CommandResult.error(f"#{group.id} is {group.pending_exit and 'exiting' or group.status}; no pyramid")
        if plan.pyramids >= dca.max_pyramids:
            return CommandResult.error(f"#{group.id} {group.symbol}: max_pyramids ({dca.max_pyramids}) reached")
        if rt.block:
            return CommandResult.error(f"{rt.id} {group.symbol}: entries are blocked: {rt.block}")
        if group.symbol in self.desk.quarantined:
            return CommandResult.error(f"{rt.id} {group.symbol}: no pyramid: {self.desk.quarantined[group.symbol]}")
        p0 = signal_price if signal_price is not None else mark_of(q)
        capital = _capital(rt.config, size, p0) if size is not None else plan.capital
        plans = self.plans(rt.config, group.symbol, p0, capital)
        problem = self.problem(group.symbol, plans)
        if problem:
            return CommandResult.error(f"{group.symbol}: pyramid grid at {_px(p0)}: {problem}")
        refusal = self.entries.funds_refusal(rt, sum(p.value for p in plans))
        if refusal:
            return CommandResult.error(f"{rt.id} {group.symbol}: no pyramid: {refusal}")
        now = self.clock.now()
        pyramid = plan.add_pyramid(now)
        self._place_layers(group, plans, pyramid, p0, now, first_at_market=True)
        return CommandResult.success(f"pyramid {pyramid} of {dca.max_pyramids} on #{group.id} {group.symbol} "
                                     f"({source}): {len(plans)} layer(s) from {_px(p0)}")

    def cancel_layers(self, group: Group, why: str) -> None:
        """Cancel the resting orders of a grid's unfilled layers, and the rest of a layer that
        filled in part (what filled stays open; a layer that fills before its cancel is
        confirmed stays open too): what the group's plan says rests."""
        for leg in group.plan.resting(group):
            order = self.orders.get(leg.entry_order_id) if leg.entry_order_id is not None else None
            if leg.status == LegStatus.PENDING and order is None:
                self._layer_cancelled(group, leg, why)
            elif order is not None and leg.status in (LegStatus.PENDING, LegStatus.OPEN):
                self.execution.cancel(order, why, lambda o, leg=leg: self._layer_cancelled(group, leg, why))
        self.ledger.reserve(group, group.held())

    def _layer_cancelled(self, group: Group, leg: Leg, why: str) -> None:
        leg.entry_order_id = None
        if leg.status == LegStatus.PENDING:
            leg.status, leg.exit_reason, leg.closed_at = LegStatus.CANCELLED, why, self.clock.now()
        self.journal.add(leg)
        if self.ledger.groups.get(group.id) is group:
            self.ledger.reserve(group, group.held())

    def exit_layer(self, group: Group, leg: Leg, reason: str, price: float) -> None:
        """One layer of a grid reached its own take-profit: it alone is closed, the group goes on."""
        if leg.exit_order_id is not None:
            return  # its exit is working already
        self.journal.event("info", "exit", f"{group.strategy_id}: take-profit of #{group.id} {leg.symbol} layer {(leg.layer or 0) + 1}"
                    f"{f' (pyramid {leg.pyramid})' if leg.pyramid else ''} at {_px(price)}", group,
                    payload={"reason": reason, "price": price, "leg_id": leg.id})
        self.exits.send_order(group, leg, 0, None, self.clock.now(), reason)
        group.plan.rearm(group, self.rules.rules(group.symbol))

    def layer_rejected(self, group: Group, layer: Leg, order: Order, reason: str) -> None:
        """One layer of a grid could not be placed: the grid goes on without it."""
        layer.status, layer.entry_order_id, layer.exit_reason = LegStatus.CANCELLED, None, f"rejected: {reason}"
        self.ledger.reserve(group, group.held())
        self.journal.add(layer)
        self.journal.event("warning", "order", f"{order.strategy_id}: #{group.id} {order.symbol} layer {layer.layer + 1} "
                           f"order rejected: {reason}; the grid goes on without it", group, needs_ack=True,
                           payload={"order_id": order.id, "reason": reason, "leg_id": layer.id})
        if not group.pending_exit and group.plan.done(group):
            self.exits.close_group(group, self.clock.now())


def unplaced_layers(group: Group) -> bool:
    """DCA layers whose resting order is to be placed again (the paper broker kept none over a restart)."""
    return not group.pending_exit and any(
        lg.status == LegStatus.PENDING and lg.entry_order_id is None for lg in group.plan.resting(group))
