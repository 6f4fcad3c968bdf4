"""DCA grids and pyramids (DESIGN §3): the layers of a grid rest as limit orders measured
from the first layer's fill, take profit per layer, on the average or both, and are placed
again after a restart; a further entry signal adds a pyramid. The grid arithmetic is
services.rules.dca's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..amounts import entry_capital as _capital, px as _px
from ..config import StrategyConfig
from ..domain import Group, Leg, Order
from ..market import Quote, mark_of
from ..rules.dca import LayerPlan, grid, layer_problem, tp_price
from ..rules.precision import RulesSource
from ..views import CommandResult, GridLegView, GridView
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
        rules = self.rules.rules(symbol)
        return grid(cfg.dca.layers, cfg.side, p0, capital, rules.tick_size if rules else None,
                    rules.lot_step if rules else None)

    def problem(self, symbol: str, plans: list[LayerPlan]) -> str:
        """Why the first of these layers that cannot be placed on `symbol` cannot ("" when all can)."""
        rules = self.rules.rules(symbol)
        min_notional, step = (rules.min_notional, rules.lot_step) if rules else (0.0, None)
        return next((p for plan in plans if (p := layer_problem(plan, min_notional, step))), "")

    def layer_filled(self, group: Group, leg: Leg, cfg: StrategyConfig, now: float) -> None:
        """A layer of a grid filled: its own take-profit, the group's aggregate one, and, for
        the first layer of the first grid, the other layers placed as resting orders from P0 =
        this fill."""
        rules = self.rules.rules(leg.symbol)
        tick = rules.tick_size if rules else None
        if leg.layer is None:  # the first layer, entered like any entry
            plans = self.plans(cfg, leg.symbol, leg.entry, group.capital)
            first = plans[0]
            leg.layer, leg.weight, leg.tp_pct = 0, first.weight, first.tp_pct
            self._place_layers(group, plans[1:], 0, leg.entry, now)
        leg.target = tp_price(leg.entry, leg.tp_pct, group.side, tick) if group.tp_mode != "aggregate" else None
        self.rearm_aggregate(group, cfg)
        self.check_filled(group, now)

    def layer_grew(self, group: Group, cfg: StrategyConfig | None, done: bool, now: float) -> None:
        """More of a layer's order filled: the aggregate take-profit follows the new average,
        and with the rest of the order (`done`) the grid may have filled."""
        self.rearm_aggregate(group, cfg)
        if done:
            self.check_filled(group, now)

    def check_filled(self, group: Group, now: float) -> None:
        """Whether every layer has now filled in full: none resting, none with the rest of its
        order still working."""
        if group.entry_order_id is None and not any(lg.status == "pending" or lg.entry_order_id is not None
                                                    for lg in group.legs):
            group.dca_filled_at = now
            self.journal.event("info", "dca", f"{group.strategy_id}: every layer of #{group.id} {group.symbol} has filled "
                        f"(average {_px(group.avg_entry())})", group)

    def rearm_aggregate(self, group: Group, cfg: StrategyConfig | None) -> None:
        """The aggregate take-profit follows the average entry of the open layers (a layer whose
        own take-profit is working has left it)."""
        if group.tp_mode in ("aggregate", "hybrid") and cfg is not None and cfg.dca is not None:
            legs = [lg for lg in group.open_legs() if lg.exit_order_id is None]
            qty = sum(lg.qty for lg in legs)
            avg = sum(lg.entry * lg.qty for lg in legs) / qty if qty else None
            rules = self.rules.rules(group.symbol)
            group.agg_tp = tp_price(avg, cfg.dca.tp_pct, group.side, rules.tick_size if rules else None) if avg else None

    def _place_layers(self, group: Group, plans: list[LayerPlan], pyramid: int, p0: float, now: float,
                      first_at_market: bool = False) -> None:
        """Each layer becomes a pending leg with its resting limit order (a pyramid's first layer
        goes at market); all are committed before any is sent."""
        rt = self.strategies.get(group.strategy_id)
        orders = []
        for plan in plans:
            if self.problem(group.symbol, [plan]):
                continue  # P0 moved since the entry was checked: this layer cannot be placed (said below)
            leg = Leg(self.journal.next_id("leg"), group, group.symbol, group.side, plan.qty, plan.price, 0.0, now,
                      rt.config.trigger_price if rt else "mark")
            leg.status, leg.layer, leg.pyramid, leg.weight, leg.tp_pct = "pending", plan.index, pyramid, plan.weight, plan.tp_pct
            market = first_at_market and plan is plans[0]
            order = Order(self.journal.next_id("order"), group.id, leg.id, group.strategy_id, group.symbol, group.side, plan.qty,
                          "market" if market else "limit", "dca_layer", "entry", now,
                          limit_price=None if market else plan.price, reference_price=p0)
            leg.entry_order_id = order.id
            group.legs.append(leg)
            self.ledger.add_order(order)
            orders.append(order)
            self.journal.add(leg, order)
        skipped = len(plans) - len(orders)
        group.dca_submitted_at, group.dca_filled_at = now, None
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
            if leg.status != "pending" or leg.entry_order_id is not None:
                continue
            order = Order(self.journal.next_id("order"), group.id, leg.id, group.strategy_id, leg.symbol, leg.side, leg.qty,
                          "limit", "dca_layer", "entry", now, limit_price=leg.entry)
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
        dca = rt.config.dca
        if group.status != "open" or group.pending_exit:
            return CommandResult.error(f"#{group.id} is {group.pending_exit and 'exiting' or group.status}; no pyramid")
        if group.pyramids >= dca.max_pyramids:
            return CommandResult.error(f"#{group.id} {group.symbol}: max_pyramids ({dca.max_pyramids}) reached")
        if rt.block:
            return CommandResult.error(f"{rt.id} {group.symbol}: entries are blocked: {rt.block}")
        if group.symbol in self.desk.quarantined:
            return CommandResult.error(f"{rt.id} {group.symbol}: no pyramid: {self.desk.quarantined[group.symbol]}")
        p0 = signal_price if signal_price is not None else mark_of(q)
        capital = _capital(rt.config, size, p0) if size is not None else group.capital
        plans = self.plans(rt.config, group.symbol, p0, capital)
        problem = self.problem(group.symbol, plans)
        if problem:
            return CommandResult.error(f"{group.symbol}: pyramid grid at {_px(p0)}: {problem}")
        refusal = self.entries.funds_refusal(rt, sum(p.value for p in plans))
        if refusal:
            return CommandResult.error(f"{rt.id} {group.symbol}: no pyramid: {refusal}")
        now = self.clock.now()
        group.pyramids += 1
        if group.pyramids == 5:
            group.fifth_pyramid_at = now
        self._place_layers(group, plans, group.pyramids, p0, now, first_at_market=True)
        return CommandResult.success(f"pyramid {group.pyramids} of {dca.max_pyramids} on #{group.id} {group.symbol} "
                                     f"({source}): {len(plans)} layer(s) from {_px(p0)}")

    def cancel_layers(self, group: Group, why: str) -> None:
        """Cancel the resting orders of a grid's unfilled layers, and the rest of a layer that
        filled in part (what filled stays open; a layer that fills before its cancel is
        confirmed stays open too)."""
        for leg in group.legs:
            order = self.orders.get(leg.entry_order_id) if leg.entry_order_id is not None else None
            if leg.status == "pending" and order is None:
                self._layer_cancelled(group, leg, why)
            elif order is not None and leg.status in ("pending", "open"):
                self.execution.cancel(order, why, lambda o, leg=leg: self._layer_cancelled(group, leg, why))
        self.ledger.reserve(group, group.held())

    def _layer_cancelled(self, group: Group, leg: Leg, why: str) -> None:
        leg.entry_order_id = None
        if leg.status == "pending":
            leg.status, leg.exit_reason, leg.closed_at = "cancelled", why, self.clock.now()
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
        rt = self.strategies.get(group.strategy_id)
        self.rearm_aggregate(group, rt.config if rt is not None else None)

    def layer_rejected(self, group: Group, layer: Leg, order: Order, reason: str) -> None:
        """One layer of a grid could not be placed: the grid goes on without it."""
        layer.status, layer.entry_order_id, layer.exit_reason = "cancelled", None, f"rejected: {reason}"
        self.ledger.reserve(group, group.held())
        self.journal.add(layer)
        self.journal.event("warning", "order", f"{order.strategy_id}: #{group.id} {order.symbol} layer {layer.layer + 1} "
                           f"order rejected: {reason}; the grid goes on without it", group, needs_ack=True,
                           payload={"order_id": order.id, "reason": reason, "leg_id": layer.id})
        if not any(lg.status in ("open", "pending") for lg in group.legs) and not group.pending_exit:
            self.exits.close_group(group, self.clock.now())

    def view(self, group: Group) -> GridView:
        rt = self.strategies.get(group.strategy_id)
        dca = rt.config.dca if rt is not None else None
        legs = sorted((lg for lg in group.legs if lg.layer is not None), key=lambda lg: (lg.pyramid, lg.layer))
        return GridView(group.id, group.strategy_id, group.symbol, group.side, group.tp_mode, group.avg_entry(),
                        group.agg_tp, group.pyramids, dca.max_pyramids if dca is not None else group.pyramids,
                        tuple(GridLegView(lg.id, lg.pyramid, lg.layer, lg.entry, lg.weight, lg.target, lg.qty,
                                          lg.qty if lg.status in ("open", "closed") else 0.0, _layer_state(lg),
                                          lg.realized_pnl) for lg in legs), group.opened_at)


def _layer_state(leg: Leg) -> str:
    if leg.status == "open":
        return "filled"
    if leg.status == "closed":
        return "tp-hit" if leg.exit_reason == "target" else "closed"
    return leg.status  # pending | cancelled


def unplaced_layers(group: Group) -> bool:
    """DCA layers whose resting order is to be placed again (the paper broker kept none over a restart)."""
    return bool(group.tp_mode) and not group.pending_exit and any(
        lg.status == "pending" and lg.entry_order_id is None for lg in group.legs)
