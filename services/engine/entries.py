"""Entries (DESIGN §3): sizing an entry on a quote, checking the funds, sending its order
(market, or a limit worked by re-prices toward the touch and a market fallback), a basket's
legs one after the other, opening the leg on its fill with its exit levels, and giving up an
entry that fails (a basket part-way in is unwound)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable

from ..amounts import entry_capital as _capital, px as _px, qty as _qty
from ..domain import ExitReason, Fill, Group, GroupStatus, Leg, LegStatus, Order, Run, RunStatus
from ..orders import OrderPurpose
from ..plans import BasketPlan, GridPlan, SinglePlan
from ..market import Quote, QuoteBook, fill_price_from_quotes, mark_of
from ..rules.exits import apply_entry_levels
from ..rules.precision import RulesSource, round_price
from ..rules.pricing import entry_qty, repriced
from ..rules.schedule import entry_due
from ..timers import Timers
from ..views import CommandResult, RiskPreview
from .desk import ENTRIES_STOPPED, Desk, Slot, StrategyRuntime
from .journal import Journal
from .ledger import Ledger
from .scopes import Scopes

if TYPE_CHECKING:
    from .execution import Execution
    from .exits import Exits
    from .grid import Grid


class Entries:
    def __init__(self, journal: Journal, ledger: Ledger, desk: Desk, scopes: Scopes, book: QuoteBook,
                 rules: RulesSource, timers: Timers, pool_size: int, state: Callable[[], str]) -> None:
        self.journal, self.ledger, self.desk, self.scopes = journal, ledger, desk, scopes
        self.book, self.rules, self.timers, self.pool_size, self.state = book, rules, timers, pool_size, state
        self.clock = journal.clock
        self.groups, self.runs, self.orders = ledger.groups, ledger.runs, ledger.orders
        self.strategies = desk.strategies
        self._giving_up: dict[int, str] = {}  # group id -> why its entry is being cancelled to give it up
        # wired by the core: the order gateway, and the exits and grids an entry hands over to
        self.execution: Execution
        self.exits: Exits
        self.grid: Grid

    def enter(self, slot: Slot, q: Quote, source: str, signal_price: float | None = None,
               beyond_pool: bool = False, size: float | None = None) -> CommandResult:
        if self.state() != "running":  # stopping: a quote or signal still in flight enters nothing
            return CommandResult.error(f"the engine is {self.state()}: no new entries")
        rt = slot.strategy
        cfg = rt.config
        if self.desk.entries.paused:
            return self.desk.hold(slot, ENTRIES_STOPPED, quiet=True)
        if self.desk.quarantined:
            why = next((self.desk.quarantined[s] for s in slot.symbols if s in self.desk.quarantined), "")
            if why:
                return self.desk.hold(slot, why, quiet=True)
        if rt.block:
            return self.desk.hold(slot, rt.block)
        if len(self.groups) >= self.pool_size and not beyond_pool:
            return self.desk.hold(slot, f"pool full ({len(self.groups)}/{self.pool_size})", quiet=True,
                              message=f"{rt.id} {slot.symbol}: no free slot in the pool ({self.pool_size} positions open)")
        side, buy = cfg.side, cfg.side == "buy"
        now = self.clock.now()
        legs = []
        for sym in slot.symbols:
            lq = q if sym == slot.symbol else self.book.fresh(sym, now)
            if lq is None:
                return self.desk.hold(slot, f"no fresh quote for {sym}", quiet=True)
            if (lq.ask if buy else lq.bid) <= 0:
                return self.desk.hold(slot, f"no {'ask' if buy else 'bid'} price for {sym}", quiet=True)
            plan = self.plan(rt, sym, lq, signal_price if sym == slot.symbol else None, size)
            if isinstance(plan, str):
                return self.desk.hold(slot, plan)
            legs.append((sym, *plan))
        notional = sum(qty * price for _, qty, price, _ in legs)
        dca = cfg.dca
        if dca is not None:  # the whole grid is reserved: its layers rest as orders once the first fills
            ref = legs[0][3]
            capital = _capital(cfg, size, ref)
            notional = sum(p.value for p in self.grid.plans(cfg, slot.symbol, ref, capital))
        ex = cfg.execution
        refusal = self.funds_refusal(rt, notional)
        if refusal:
            return self.desk.hold(slot, refusal)
        sym, qty, price, ref = legs[0]
        run = Run(self.journal.next_id("run"), rt.id, slot.symbol, now, {
            "config_id": rt.id, "entry_method": source, "attempts": 0, "order_type": ex.order_type,
            "selected": list(slot.symbols), "reference_price": ref, "mark": mark_of(q),
            "scheduled_entry": entry_due(slot.schedule, now, None) if slot.schedule is not None else None,
        })
        kind = (GridPlan(dca.tp_mode, capital, dca) if dca is not None else
                BasketPlan([(s, lq) for s, lq, _, _ in legs[1:]]) if cfg.basket else SinglePlan())
        group = Group(self.journal.next_id("group"), run.id, rt.id, slot.symbol, side, now, kind)
        self.ledger.reserve(group, notional)
        self.runs[run.id] = run
        self.groups[group.id] = group
        slot.group = group
        slot.entered = True
        slot.last_entry_at = now
        slot.hold = slot.hold_kind = ""
        self.desk.refresh(slot)
        self.journal.add(run, group)
        self._start_leg(group, sym, qty, price, ref, source)
        self.execution.settle()  # a venue that answers at once has answered: the reply says what happened
        if group.status == GroupStatus.OPEN:
            filled = ", ".join(f"{_qty(leg.qty)} {leg.symbol} at {_px(leg.entry)}" for leg in group.open_legs())
            resting = [leg for leg in group.legs if leg.status == LegStatus.PENDING]
            rest = f"; {len(resting)} DCA layer(s) resting at {', '.join(_px(leg.entry) for leg in resting)}" if resting else ""
            return CommandResult.success(f"entered {side} {filled} (#{group.id}){rest}")
        if group.status == GroupStatus.ENTERING:
            return CommandResult.success(f"entry #{group.id} for {group.entry_symbol}: limit {_px(group.entry_ref)} is working"
                                         if ex.order_type == "limit" else f"entry #{group.id} is working")
        return CommandResult.error(f"entry for {slot.symbol} failed: {run.reason}")

    def _start_leg(self, group: Group, symbol: str, qty: float, price: float, ref: float, source: str) -> None:
        """Send the entry of one leg (the only one, or the next of a basket)."""
        ex = self.strategies[group.strategy_id].config.execution
        group.entry_symbol, group.entry_ref = symbol, ref
        how = "at market" if ex.order_type == "market" else f"limit {_px(price)} (reference {_px(ref)})"
        self.journal.event("info", "entry", f"{group.strategy_id}: entering {group.side} {_qty(qty)} {symbol} {how} ({source})",
                    group, symbol=symbol, payload={"qty": qty, "reference": ref, "price": price, "source": source, "symbol": symbol})
        if ex.order_type == "market":
            self.send(group, qty, "market", "market", None, 0)
        else:
            self.send(group, qty, "limit", "limit", price, 0)

    def _next_leg(self, group: Group) -> None:
        """A basket leg filled: enter the next one on its current quote, or unwind if it cannot go."""
        rt = self.strategies.get(group.strategy_id)
        symbol, qty = group.plan.next_leg()
        q = self.book.fresh(symbol, self.clock.now())
        plan = self.plan(rt, symbol, q) if rt is not None and q is not None else f"no fresh quote for {symbol}"
        if isinstance(plan, str):
            self.failed(group, f"leg {symbol} could not be entered: {plan}")
            return
        _, price, ref = plan
        self._start_leg(group, symbol, qty, price, ref, "basket")

    def plan(self, rt: StrategyRuntime, symbol: str, q: Quote, signal_price: float | None = None,
              size: float | None = None):
        """(qty, price, reference) of an entry on this quote, or why there can be none. The
        price is the limit (on the tick) or, for a market entry, the touch. `size` (a signal's)
        replaces the strategy's sizing; a DCA grid enters its first layer here."""
        cfg, side = rt.config, rt.config.side
        rules = self.rules.rules(symbol)
        if rules is None:
            return f"no precision rules for {symbol} yet (tick size, lot step, min notional)"
        ex = cfg.execution
        if ex.order_type == "limit":
            ref = signal_price if signal_price is not None else fill_price_from_quotes(side, q.bid, q.ask, ex.bias)
            price = round_price(ref, side, rules.tick_size)
        else:  # market: slippage is measured against the mark, the size against the touch
            ref, price = mark_of(q), (q.ask if side == "buy" else q.bid)
        if cfg.dca is not None:
            plans = self.grid.plans(cfg, symbol, ref, _capital(cfg, size, ref))
            problem = self.grid.problem(symbol, plans)
            if problem:
                return f"{symbol}: DCA grid at {_px(ref)}: {problem}"
            raw = plans[0].qty
        elif size is not None:
            raw = size
        elif cfg.sizing.fixed_qty is not None:
            raw = cfg.sizing.fixed_qty
        else:
            raw = _capital(cfg, None, price) / price
        qty = entry_qty(symbol, raw, price, rules)
        return qty if isinstance(qty, str) else (qty, price, ref)

    def send(self, group: Group, qty: float, order_type: str, method: str, price: float | None,
                    attempt: int) -> None:
        now = self.clock.now()
        order = Order(self.journal.next_id("order"), group.id, None, group.strategy_id, group.entry_symbol, group.side, qty,
                      order_type, method, OrderPurpose.ENTRY, now, limit_price=price, reference_price=group.entry_ref,
                      retry_count=attempt)
        rt = self.strategies.get(group.strategy_id)
        group.entry_order_id = order.id
        group.entry_attempts = attempt + 1
        group.entry_deadline = now + rt.config.execution.retry_delay_s if order_type == "limit" and rt else None
        self.ledger.add_order(order)
        if group.entry_deadline is not None:
            self.timers.at(group.entry_deadline, "entry", group)
        if attempt:
            what = "market fallback" if method == "market_fallback" else f"re-price {attempt} to {_px(price)}"
            self.journal.event("warning" if method == "market_fallback" else "info", "entry",
                        f"{group.strategy_id}: entry #{group.id} {group.entry_symbol} not filled: {what}", group,
                        symbol=group.entry_symbol, payload={"attempt": attempt, "price": price, "reference": group.entry_ref, "method": method})
        self.journal.add(order, group)
        self.journal.commit()  # the order is durable before it is sent
        self.execution.submit(order)

    def rework(self, groups: Iterable[Group], now: float) -> None:
        """Re-price limit entries whose delay has passed, then fall back to market (DESIGN §3):
        attempt k of n re-prices sits k/(n+1) of the way from the reference to the touch. The
        rest of an entry that filled in part is not chased: the position keeps what filled."""
        for group in sorted(groups, key=by_id):
            if group.entry_deadline is None or now < group.entry_deadline:
                continue  # filled, failed, or re-priced since: its newer deadline has a timer of its own
            order = self.orders.get(group.entry_order_id) if group.entry_order_id is not None else None
            if order is None or self.execution.cancelling(order):
                continue  # filled (or gone) meanwhile, or its cancel is on its way
            if group.status == GroupStatus.OPEN:
                self.execution.cancel(order, "not filled in time: the position keeps what filled",
                                      lambda o, g=group: self.rest_ended(g, o))
                continue
            if self.book.fresh(group.entry_symbol, now) is None:
                self.timers.at(now, "entry", group)  # the order keeps resting until a fresh price comes
                continue
            rt = self.strategies.get(group.strategy_id)
            if rt is None:
                continue
            ex = rt.config.execution
            attempt = order.retry_count + 1
            then = ("re-priced" if attempt <= ex.max_retries else
                    "market fallback" if ex.market_fallback else "no market fallback: the entry failed")
            self.execution.cancel(order, f"not filled in time: {then}", lambda o, g=group: self._timed_out(g, o))

    def _timed_out(self, group: Group, order: Order) -> None:
        """An entry's limit is cancelled after its delay: re-price it, go at market, or give up."""
        if self.groups.get(group.id) is not group:
            return
        group.entry_order_id = group.entry_deadline = None
        if order.filled_qty > 0:  # a basket leg that filled in part before the cancel: it holds that
            self._leg_in(group)
            return
        rt = self.strategies.get(group.strategy_id)
        ex = rt.config.execution if rt is not None else None
        attempt = order.retry_count + 1
        q = self.book.get(group.entry_symbol)
        if ex is not None and attempt <= ex.max_retries and q is not None:
            touch = q.ask if group.side == "buy" else q.bid
            rules = self.rules.rules(group.entry_symbol)
            price = repriced(group.entry_ref, touch, attempt, ex.max_retries)
            self.send(group, order.qty, "limit", "limit_retry",
                      round_price(price, group.side, rules.tick_size if rules else None), attempt)
        elif ex is not None and ex.market_fallback:
            self.send(group, order.qty, "market", "market_fallback", None, attempt)
        else:
            retries = ex.max_retries if ex is not None else 0
            reason = f"not filled after {retries} re-price(s) and the market fallback is off"
            self.journal.event("error", "entry", f"{group.strategy_id}: entry #{group.id} {group.entry_symbol} failed: "
                               f"{reason}", group, symbol=group.entry_symbol, needs_ack=True)
            self.failed(group, reason)

    def rest_ended(self, group: Group, order: Order) -> None:
        """The rest of an entry that filled in part will not fill (cancelled, or ended by the
        venue): the position holds what filled."""
        if group.entry_order_id == order.id:
            group.entry_order_id = group.entry_deadline = None
        self.journal.event("info", "entry", f"{group.strategy_id}: entry #{group.id} {order.symbol}: "
                           f"{_qty(order.filled_qty)} of {_qty(order.qty)} filled; the rest is not ({order.reason})",
                           group, symbol=order.symbol, payload={"order_id": order.id, "filled": order.filled_qty})
        self.journal.add(group)
        if group.status == GroupStatus.ENTERING:
            self._leg_in(group)

    def give_up_rest(self, group: Group, why: str) -> None:
        """The group exits while the rest of its entry works: that rest is cancelled."""
        order = self.orders.get(group.entry_order_id) if group.entry_order_id is not None else None
        if order is not None and order.filled_qty > 0:
            self.execution.cancel(order, why, lambda o, g=group: self.rest_ended(g, o))

    def funds_refusal(self, rt: StrategyRuntime, notional: float) -> str:
        alloc = rt.config.allocation
        if alloc is not None:
            free = alloc - self.ledger.used_funds.get(rt.id, 0.0)
            if notional > free + 1e-9:
                return (f"insufficient funds: needs {notional:,.2f}, {rt.id} has {max(free, 0):,.2f} free "
                        f"of {alloc:,.2f} allocated")
        cash = self.ledger.free_cash()
        if notional > cash + 1e-9:
            return f"insufficient funds: needs {notional:,.2f}, the book has {max(cash, 0):,.2f} cash free"
        return ""

    def filled(self, order: Order, fill: Fill, done: bool) -> None:
        """A fill of an entry order (`done`: the order is filled in full). The first opens the
        leg with its exit levels; the next ones grow it."""
        group = self.groups.get(order.group_id)
        if group is None:
            return  # a late fill of an entry given up: the execution side has alerted
        rt = self.strategies.get(group.strategy_id)
        now = self.clock.now()
        qty, price, fee = fill.qty, fill.price, fill.fee
        leg = next((lg for lg in group.legs if lg.id == order.leg_id), None) if order.leg_id is not None else None
        if leg is not None and leg.status == LegStatus.OPEN:
            self._grow(group, leg, order, fill, done)
            return
        if leg is not None:  # a DCA layer's order filled: its pending leg opens
            leg.qty, leg.entry, leg.entry_fee, leg.opened_at = qty, price, fee, now
            leg.status = LegStatus.OPEN
            if done:
                leg.entry_order_id = None
        else:
            leg = Leg(self.journal.next_id("leg"), group, order.symbol, order.side, qty, price, fee, now,
                      rt.config.trigger_price if rt else "mark")
            # before anything below commits (a basket's next leg, a grid's layers) with the fill pending
            order.leg_id = fill.leg_id = leg.id
            group.legs.append(leg)
            group.status = GroupStatus.ENTERING if group.plan.to_enter else GroupStatus.OPEN
            if done:
                group.entry_order_id = group.entry_deadline = None
            group.entry_method = order.method
            group.entry_attempts = order.retry_count + 1
            run = self.runs.get(group.run_id)
            if run is not None:
                run.status = RunStatus.ENTERING if group.plan.to_enter else RunStatus.LIVE
                run.metadata = {**run.metadata, "attempts": group.entry_attempts, "filled_by": order.method,
                                "fill_price": price}
                self.journal.add(run)
        q = self.book.get(order.symbol)
        leg.mark = mark_of(q) if q is not None else price
        if rt is not None:
            apply_entry_levels(leg, rt.config, now)
            self.timers.wake(group, leg.time_exit_at)
        leg.scopes = self.scopes.of_leg(group.strategy_id)
        for scope in leg.scopes:
            scope.unrealized += leg.unrealized()
        self.ledger.leg_opened(leg)
        self.journal.add(leg, group)
        layer = f" (layer {leg.layer + 1}{f', pyramid {leg.pyramid}' if leg.pyramid else ''})" if leg.layer is not None else ""
        self.journal.event("info", "fill", f"{group.strategy_id}: entered {leg.side} {_qty(qty)} {leg.symbol} at {_px(price)}{layer}"
                    f"{_levels_text(leg)}", group, symbol=leg.symbol, payload={"price": price, "qty": qty, "fee": fee, "stop": leg.stop,
                                                            "target": leg.target, "trail_level": leg.trail_level,
                                                            "layer": leg.layer, "pyramid": leg.pyramid})
        if leg.trail_active:
            self.journal.event("info", "trailing", f"trailing stop armed at entry on {leg.symbol} at {_px(leg.trail_level)}",
                        group, symbol=leg.symbol, payload={"level": leg.trail_level, "peak": leg.trail_peak})
        if rt is not None:  # what the fill means to the group's plan: a grid's take-profits and resting layers
            self.grid.opened(group, leg, now)
        if not group.plan.to_enter:  # fully in: hold what the fills cost, not the estimate
            self.ledger.reserve(group, group.held())
        self._after_fill(group, done)

    def _grow(self, group: Group, leg: Leg, order: Order, fill: Fill, done: bool) -> None:
        """A further fill of the order that opened `leg`: the leg holds more at the average
        price; its exit levels stay those its first fill set."""
        qty, price = fill.qty, fill.price
        for scope in leg.scopes:
            scope.unrealized -= leg.unrealized()
        total = leg.qty + qty
        leg.entry = (leg.entry * leg.qty + price * qty) / total
        leg.qty, leg.entry_fee = total, leg.entry_fee + fill.fee
        for scope in leg.scopes:
            scope.unrealized += leg.unrealized()
        if done:
            if group.entry_order_id == order.id:
                group.entry_order_id = group.entry_deadline = None
            if leg.entry_order_id == order.id:
                leg.entry_order_id = None
        self.journal.add(leg, group)
        self.journal.event("info", "fill", f"{group.strategy_id}: #{group.id} {leg.symbol} {_qty(qty)} more at {_px(price)}; "
                           f"{_qty(total)} held at {_px(leg.entry)}", group, symbol=leg.symbol,
                           payload={"price": price, "qty": qty, "fee": fill.fee, "held": total, "avg_entry": leg.entry})
        self.grid.grew(group, done, self.clock.now())
        if not group.plan.to_enter:
            self.ledger.reserve(group, group.held())
        self._after_fill(group, done)

    def _after_fill(self, group: Group, done: bool) -> None:
        if group.pending_exit:  # filled while its group is exiting: out with the rest
            self.exits.send(group)
        elif done and group.id in self._giving_up:  # filled before the cancel landed: given up all the same
            self.failed(group, self._giving_up[group.id])
        elif done and group.plan.to_enter:
            self._next_leg(group)

    def _leg_in(self, group: Group) -> None:
        """The current leg's entry is over with part of it filled: on to the next leg or the exit."""
        if group.pending_exit:
            self.exits.send(group)
        elif group.plan.to_enter:
            self._next_leg(group)
        else:
            self.ledger.reserve(group, group.held())

    def rejected(self, order: Order, reason: str) -> None:
        """An entry order was rejected, or ended by the venue without being asked."""
        group = self.groups.get(order.group_id)
        layer = next((lg for lg in group.legs if lg.id == order.leg_id), None) if group and order.leg_id else None
        if layer is not None and layer.status == LegStatus.PENDING:
            self.grid.layer_rejected(group, layer, order, reason)
        elif group is not None and order.filled_qty > 0:  # what filled stays
            if layer is not None:
                layer.entry_order_id = None
                self.journal.add(layer)
                self.grid.check_filled(group, self.clock.now())  # as far as it will
            else:
                self.rest_ended(group, order)
        else:
            self.journal.event("warning", "order", f"{order.strategy_id}: entry order for {order.symbol} rejected: "
                               f"{reason}", group, symbol=order.symbol, payload={"order_id": order.id, "reason": reason})
            self.failed(group, f"entry rejected: {reason}")

    def failed(self, group: Group | None, reason: str) -> None:
        if group is None:
            return
        self._giving_up.pop(group.id, None)
        if any(leg.status == LegStatus.OPEN for leg in group.legs):  # a basket part-way in: get out of it
            group.plan.give_up()
            run = self.runs.get(group.run_id)
            if run is not None:
                run.reason = f"{reason}; the filled legs are unwound"
            self.journal.event("error", "entry", f"{group.strategy_id}: entry #{group.id} failed: {reason}; unwinding "
                        f"{', '.join(leg.symbol for leg in group.legs if leg.status == LegStatus.OPEN)}", group, needs_ack=True)
            self.exits.decide(group, ExitReason.UNWIND, None)
            return
        group.status = GroupStatus.CLOSED
        group.exit_reason = ExitReason.ENTRY_FAILED
        group.closed_at = self.clock.now()
        self.ledger.reserve(group, 0.0)
        self.groups.pop(group.id, None)
        run = self.runs.pop(group.run_id, None)
        if run is not None:
            run.status, run.reason, run.ended_at = RunStatus.ERROR, reason, group.closed_at
            self.journal.add(run)
        self.journal.add(group)
        rt = self.strategies.get(group.strategy_id)
        if rt is not None:
            slot = rt.slots.get(group.symbol)
            if slot is not None and slot.group is group:
                slot.group = None
                slot.hold = reason
                slot.ready_at = self.clock.now() + 1.0
                self.desk.refresh(slot)

    def cancel(self, group: Group, reason: str) -> None:
        """Stop an entry that is still working (its order cancelled; what filled is unwound, also
        when the order fills before the venue has the cancel)."""
        order = self.orders.get(group.entry_order_id) if group.entry_order_id is not None else None
        if order is not None:
            self._giving_up[group.id] = reason
            self.execution.cancel(order, reason, lambda o, g=group: self.failed(g, reason))
            return
        self.failed(group, reason)

    def risk_preview(self, strategy_id: str) -> tuple[RiskPreview, ...]:
        """What an entry would be now, per symbol: size, value, loss at the stop, reward at the
        target, at current prices (or why it cannot be sized)."""
        rt = self.strategies.get(strategy_id)
        if rt is None:
            return ()
        now, out = self.clock.now(), []
        for sym, slot in rt.slots.items():
            q = self.book.fresh(sym, now)
            plan = self.plan(rt, sym, q) if q is not None else f"no fresh quote for {sym}"
            if isinstance(plan, str):
                out.append(RiskPreview(sym, None, None, None, None, None, plan))
                continue
            qty, price, _ = plan
            cfg = rt.config
            loss = cfg.stop_loss.amount(price) * qty if cfg.stop_loss is not None else None
            reward = cfg.target.amount(price) * qty if cfg.target is not None else None
            out.append(RiskPreview(sym, qty, price, qty * price, loss, reward, self.funds_refusal(rt, qty * price)))
        return tuple(out)


def by_id(record) -> int:
    return record.id


def _levels_text(leg: Leg) -> str:
    parts = [f"{name} {_px(v)}" for name, v in (("stop", leg.stop), ("target", leg.target)) if v is not None]
    if leg.trail_distance is not None:
        parts.append(f"trail {leg.trail_distance}")
    return f" ({', '.join(parts)})" if parts else ""
