"""Exits (DESIGN §3): marking the open legs on each quote and moving their trailing stops,
the per-leg exit rules, deciding a group's exit and working its orders (market, or a limit
re-priced toward the touch, then market; never abandoned), closing legs and groups on their
fills, and the operator's exits and level edits."""

from __future__ import annotations

import copy
from collections import deque
from typing import TYPE_CHECKING, Callable, Iterable

from ..amounts import px as _px, qty as _qty
from ..domain import ExitReason, Group, GroupStatus, Leg, LegStatus, Order, RunStatus
from ..market import Quote, QuoteBook, fill_price_from_quotes, mark_of
from ..orders import OrderPurpose, OrderStatus
from ..rules.exits import close_pnl, exit_reason, reduce_pnl, trigger_px
from ..rules.levels import EDITABLE, KEEP, LEVEL_LABELS, edit_errors, fmt_level, level_value
from ..rules.precision import RulesSource, round_price
from ..rules.pricing import repriced
from ..timers import Timers
from ..views import CommandResult, TradeView
from .desk import Desk
from .journal import Journal
from .ledger import Ledger
from .scopes import Scopes

EXIT_RETRY_S = 1.0  # a rejected exit order is sent again on the first fresh quote after this
# Bound once for the per-quote loop of mark_and_check: looking a member up on its enum class
# (EnumType.__getattr__ on Python 3.11) costs several times the comparison itself.
LEG_OPEN, GROUP_OPEN = LegStatus.OPEN, GroupStatus.OPEN

if TYPE_CHECKING:
    from .entries import Entries
    from .execution import Execution
    from .grid import Grid


class Exits:
    def __init__(self, journal: Journal, ledger: Ledger, desk: Desk, scopes: Scopes, book: QuoteBook,
                 rules: RulesSource, timers: Timers, touch: Callable[[object], None] | None,
                 quote_seq: Callable[[], int]) -> None:
        self.journal, self.ledger, self.desk, self.scopes = journal, ledger, desk, scopes
        self.book, self.rules, self.timers = book, rules, timers
        self.touch = touch  # None: the store keeps no marks (replay's)
        self.quote_seq = quote_seq  # the quote being handled: an exit and an entry never happen on the same one
        self.clock = journal.clock
        self.groups, self.runs, self.orders = ledger.groups, ledger.runs, ledger.orders
        self.strategies = desk.strategies
        # wired by the core: the order gateway, the grids whose layers an exit cancels, the entry
        # whose rest it gives up
        self.execution: Execution
        self.grid: Grid
        self.entries: Entries

    def mark_and_check(self, legs: list[Leg], q: Quote, now: float) -> None:
        """Steps (3) and (4) for the legs on the quote's symbol: mark each leg, move its trailing
        peak and level, and decide its group's exit when a rule triggers. The hot path: one call
        per quote, not per leg, with the store's touch skipped when the store keeps no marks."""
        bid, ask = q.bid, q.ask
        mark = (bid + ask) * 0.5 if bid > 0 and ask > 0 else (q.last or bid or ask)
        touch = self.touch
        deferred = self.journal.deferred
        scoped = False
        aggregates: list[tuple[Leg, float]] = []  # DCA grids to check in step (5)
        for leg in legs[:]:  # a copy: an exit that fills at once removes its leg from the list
            if leg.status != LEG_OPEN:
                continue  # closed by an exit earlier on this same quote
            if leg.scopes:  # P&L rules watch this leg: keep their running P&L current
                delta = (mark - leg.mark) * leg.qty * leg.dir
                for scope in leg.scopes:
                    scope.unrealized += delta
                scoped = True
            leg.mark = mark
            leg.mark_ts = now
            if touch is not None:
                touch(leg)
            group = leg.group
            if group.pending_exit:
                if leg.exit_order_id is None and (group.resend_at is None or now >= group.resend_at):
                    self.send(group)  # its quote is fresh again, or its last exit order was rejected: send it
                continue
            d = leg.dir
            if leg.trail_distance is not None:
                if leg.trail_active:
                    # services.rules.exits.trail_step, inlined: the replay bench spends most of its
                    # time in this loop (tests/test_rules_exits.py holds the two to the same moves)
                    if (mark - leg.trail_peak) * d > 0:
                        leg.trail_peak = mark
                        level = leg.trail_level_from(mark)
                        if (level - leg.trail_level) * d > 0:
                            leg.trail_level = level
                            leg.trail_updated_at = now
                            leg.trail_moves.append((now, level))
                            deferred.append(leg)
                elif (mark - leg.entry) * d >= leg.trail_act_amount:
                    leg.arm_trail(mark, now)
                    self.journal.event("info", "trailing", f"trailing stop armed on {leg.symbol} at {_px(leg.trail_level)} (peak {_px(mark)})",
                                group, symbol=leg.symbol, payload={"level": leg.trail_level, "peak": mark})
                    self.journal.add(leg)
            trigger = leg.trigger
            if trigger == "mark":
                px = mark
            elif trigger == "bid_ask":
                px = bid if d > 0 else ask
            else:
                px = q.last or mark
            reason = exit_reason(leg, px, now)
            if reason is None:
                if group.plan.agg_tp is not None:
                    aggregates.append((leg, px))
            elif group.plan.closes_alone(reason):
                self.grid.exit_layer(group, leg, reason, px)  # a layer's own take-profit closes that layer only
            else:
                self.decide(group, reason, px, leg)
        # A grid's aggregate take-profit is a group rule: judged once every layer's own rules
        # have acted on this quote, over the layers still open (it follows their average).
        for leg, px in aggregates:
            group = leg.group
            agg = group.plan.agg_tp
            if group.status == GROUP_OPEN and agg is not None and (px - agg) * leg.dir >= 0:
                self.decide(group, ExitReason.AGGREGATE_TP, px, leg)
        if scoped:
            self.scopes.check(now)

    def decide(self, group: Group, reason: str, price: float | None, leg: Leg | None = None) -> None:
        """`price`: that of `leg` (the one whose rule triggered, or whose mark is shown)."""
        group.pending_exit = reason
        group.status = GroupStatus.EXITING
        run = self.runs.get(group.run_id)
        if run is not None:
            run.status = RunStatus.EXITING
            self.journal.add(run)
        self.journal.add(group)
        name = symbols_of(group)
        symbol = leg.symbol if leg is not None else None
        on = f" on {symbol}" if symbol is not None and symbol != name else ""
        at = f"{on} at {_px(price)}" if price is not None else ""
        self.journal.event("info" if reason != ExitReason.STOP_LOSS else "warning", "exit",
                    f"{group.strategy_id}: exit #{group.id} {name}: {reason}{at}", group, symbol=symbol,
                    payload={"reason": reason, "price": price, "symbol": symbol})
        self.grid.cancel_layers(group, f"the group exits ({reason})")
        self.entries.give_up_rest(group, f"the group exits ({reason})")
        self.send(group)
        if group.status != GroupStatus.CLOSED and not any(leg.status == LegStatus.OPEN for leg in group.legs):
            self.close_group(group, self.clock.now())  # only resting layers were left: nothing to sell
        if self.journal.pending:  # no leg had a fresh quote to send on: the decision is durable all the same
            self.journal.commit()

    def send(self, group: Group) -> None:
        """Send an exit order for each open leg that has none working and a fresh quote (an
        order without one is rejected): a basket leg whose quote is stale goes on its own next
        fresh quote."""
        group.resend_at = None
        now = self.clock.now()
        for leg in group.legs:
            if leg.status == LegStatus.OPEN and leg.exit_order_id is None and self.book.fresh(leg.symbol, now) is not None:
                self.send_order(group, leg, 0, None, now)

    def send_order(self, group: Group, leg: Leg, attempt: int, ref: float | None, now: float,
                         reason: str = "", qty: float | None = None) -> None:
        """Attempt `attempt` at closing one leg: market by default; with a limit exit, a limit at
        the reference price re-priced toward the touch (like entries), then market. An exit is
        never abandoned: with no fresh quote to price a limit from, it goes at market."""
        rt = self.strategies.get(group.strategy_id)
        ex = rt.config.exit_execution if rt is not None else None
        side = "sell" if leg.dir > 0 else "buy"
        q = self.book.fresh(leg.symbol, now)
        reason = reason or group.pending_exit
        # an exit signal and the risk engine close at market (DESIGN §3); other exits are worked as configured
        if (ex is not None and ex.order_type == "limit" and q is not None and attempt <= ex.max_retries
                and reason not in (ExitReason.SIGNAL, ExitReason.RISK_OFFSET)):
            if ref is None:
                ref = fill_price_from_quotes(side, q.bid, q.ask, ex.bias)
            rules = self.rules.rules(leg.symbol)
            price = round_price(repriced(ref, q.ask if side == "buy" else q.bid, attempt, ex.max_retries), side,
                                rules.tick_size if rules else None)
            order_type, method, limit = "limit", "limit_retry" if attempt else "limit", price
        else:
            q = q or self.book.get(leg.symbol)
            ref = ref if ref is not None else (mark_of(q) if q is not None else None)
            order_type, method, limit = "market", "market_fallback" if attempt else "market", None
        order = Order(self.journal.next_id("order"), group.id, leg.id, group.strategy_id, leg.symbol, side,
                      qty or leg.qty, order_type, method, OrderPurpose.EXIT, now, limit_price=limit, reference_price=ref,
                      retry_count=attempt)
        order.reason = reason
        leg.exit_order_id = order.id
        self.ledger.add_order(order)
        if order_type == "limit":
            self.timers.at(now + ex.retry_delay_s, "exit", leg)  # re-priced then if still working
        self.journal.add(order, group)
        self.journal.commit()  # the exit decision and its order are durable before it is sent
        self.execution.submit(order)

    def rework(self, legs: Iterable[Leg], now: float) -> None:
        """Re-price limit exits whose delay has passed; after the last re-price, market."""
        for leg in sorted(legs, key=_by_group_and_id):
            group = leg.group
            order = self.orders.get(leg.exit_order_id) if leg.exit_order_id is not None else None
            if order is None or order.order_type != "limit" or self.groups.get(group.id) is not group:
                continue  # filled or re-priced since: a newer limit has a timer of its own
            rt = self.strategies.get(group.strategy_id)
            if now < order.created_at + (rt.config.exit_execution.retry_delay_s if rt is not None else 0.0):
                continue
            if self.book.fresh(leg.symbol, now) is None:
                self.timers.at(now, "exit", leg)  # no fresh price to re-price from: again at the next tick
                continue
            if self.execution.cancelling(order):
                continue
            attempt = order.retry_count + 1
            last = rt is None or attempt > rt.config.exit_execution.max_retries
            self.execution.cancel(order, "not filled in time: " + ("market fallback" if last else "re-priced"),
                                  lambda o, leg=leg, attempt=attempt, reason=order.reason: self._reprice(leg, o, attempt, reason))

    def _reprice(self, leg: Leg, order: Order, attempt: int, reason: str) -> None:
        """A limit exit was cancelled after its delay: the rest goes again, re-priced or at market."""
        group = leg.group
        if leg.status != LegStatus.OPEN or leg.exit_order_id != order.id or self.groups.get(group.id) is not group:
            return
        leg.exit_order_id = None
        rest = order.qty - order.filled_qty
        self.send_order(group, leg, attempt, order.reference_price, self.clock.now(), reason,
                        rest if rest < leg.qty * (1 - 1e-9) else None)

    def filled(self, order: Order, qty: float, price: float, fee: float, done: bool) -> None:
        """A fill of an exit order (`done`: the order is filled in full). A part closes that
        much of the leg and the order works on for the rest; the leg closes with its last part."""
        group = self.groups.get(order.group_id)
        if group is None:
            return
        leg = next((lg for lg in group.legs if lg.id == order.leg_id), None)
        if leg is None or leg.status != LegStatus.OPEN:
            return
        now = self.clock.now()
        if qty < leg.qty * (1 - 1e-9):
            self._reduce_leg(group, leg, order, qty, price, fee, now)
            if done:
                leg.exit_order_id = None
                if group.pending_exit:  # the leg grew while its exit worked: the rest goes too
                    self.send(group)
            return
        leg.status = LegStatus.CLOSED
        leg.closed_at = now
        leg.exit_price, leg.exit_fee = price, fee
        leg.exit_reason = group.pending_exit or order.reason
        realized = close_pnl(leg)
        leg.realized_pnl += realized
        leg.exit_order_id = None
        self.ledger.realize(group, realized)
        for scope in leg.scopes:  # the leg's P&L moves from unrealized to realized
            scope.unrealized -= leg.unrealized()
            scope.realized += realized
        self.ledger.leg_closed(leg)
        self.journal.add(leg)
        if not group.pending_exit:  # closed on its own (a layer's own take-profit, a risk offset), not by the group's exit
            self.ledger.leg_trade(leg, leg.qty, price, leg.exit_reason, realized, now)
        if leg.scopes:
            self.scopes.check(now)  # a realized loss can reach a daily loss limit
        if group.plan.leg_closed(group, self.rules.rules(group.symbol)):
            self.ledger.reserve(group, group.held())
        if not group.plan.done(group):
            self.journal.add(group)  # legs still open, or layers still resting after their own take-profits
            return
        self.close_group(group, now)

    def rejected(self, order: Order, reason: str) -> None:
        """An exit order was rejected (or ended by the venue): sent again on the first fresh
        quote after EXIT_RETRY_S; one alert per exit, not one per retry."""
        group = self.groups.get(order.group_id)
        if group is None:
            return
        leg = next((lg for lg in group.legs if lg.id == order.leg_id), None)
        if leg is not None and leg.exit_order_id == order.id:
            leg.exit_order_id = None
        group.resend_at = self.clock.now() + EXIT_RETRY_S
        self.timers.wake(group, group.resend_at)
        rejected = sum(1 for o in self.ledger.recent_orders
                       if o.group_id == group.id and o.purpose == OrderPurpose.EXIT and o.status == OrderStatus.REJECTED)
        self.journal.event("warning", "order", f"{order.strategy_id}: exit order for #{group.id} {order.symbol} rejected "
                           f"({rejected} so far): {reason}; retrying on the next fresh quote", group, symbol=order.symbol,
                           payload={"order_id": order.id, "reason": reason, "rejections": rejected},
                           needs_ack=rejected == 1)

    def _reduce_leg(self, group: Group, leg: Leg, order: Order, qty: float, price: float, fee: float, now: float) -> None:
        """Part of a leg closed (the risk engine takes from a winner): the rest stays open with
        its share of the entry fee."""
        realized, fee_in = reduce_pnl(leg, qty, price, fee)
        for scope in leg.scopes:
            scope.unrealized -= (leg.mark - leg.entry) * qty * leg.dir - fee_in
            scope.realized += realized
        leg.qty -= qty
        leg.entry_fee -= fee_in
        leg.realized_pnl += realized
        self.ledger.realize(group, realized)
        self.ledger.reserve(group, group.held())
        self.journal.add(leg, group)
        self.ledger.leg_trade(leg, qty, price, order.reason, realized, now)
        self.journal.event("info", "exit", f"{group.strategy_id}: closed {_qty(qty)} of #{group.id} {leg.symbol} at {_px(price)} "
                    f"({order.reason}), {realized:+,.2f}; {_qty(leg.qty)} stays open", group, symbol=leg.symbol,
                    payload={"reason": order.reason, "qty": qty, "price": price, "pnl": realized, "leg_id": leg.id})
        if leg.scopes:
            self.scopes.check(now)

    def close_group(self, group: Group, now: float) -> None:
        group.status = GroupStatus.CLOSED
        group.closed_at = now
        exit_reason = group.pending_exit
        # (a grid whose layers all reached their own take-profit ends with the last one's reason)
        group.exit_reason = exit_reason or next(
            (lg.exit_reason for lg in reversed(group.legs) if lg.status == LegStatus.CLOSED), "")
        group.pending_exit = ""
        self.groups.pop(group.id, None)
        run = self.runs.pop(group.run_id, None)
        if run is not None:
            run.ended_at = now
            if group.exit_reason == ExitReason.UNWIND:  # the entry failed: the run ends in error, with its reason
                run.status = RunStatus.ERROR
            else:
                run.status, run.reason = RunStatus.CLOSED, group.exit_reason
            self.journal.add(run)
        self.journal.add(group)
        self.ledger.reserve(group, 0.0)
        # The trade of the legs the group's exit closed (a leg closed on its own before was a trade then).
        closed = [lg for lg in group.legs if lg.status == LegStatus.CLOSED and lg.exit_reason == exit_reason] if exit_reason else []
        name = symbols_of(group)
        exit_price, at = None, ""
        if closed:
            qty, entry, exit_price = group.plan.round_trip(closed)
            self.ledger.record_trade(TradeView(group.id, group.strategy_id, group.symbol, group.side, qty, group.opened_at,
                                         entry, now, exit_price, group.exit_reason, sum(map(close_pnl, closed))))
            at = f" at {_px(exit_price)}"
            if name != group.symbol:  # a basket: each leg at its own price
                at = ": " + ", ".join(f"{lg.symbol} at {_px(lg.exit_price)}" for lg in closed)
        self.journal.event("info", "exit", f"{group.strategy_id}: closed #{group.id} {name} ({group.exit_reason})"
                    f"{at}, P&L {group.realized_pnl:+,.2f}", group,
                    payload={"reason": group.exit_reason, "price": exit_price, "pnl": group.realized_pnl})
        rt = self.strategies.get(group.strategy_id)
        slot = rt.slots.get(group.symbol) if rt is not None else None
        if slot is not None and slot.group is group:
            slot.group = None
            slot.ready_at = now + rt.config.cooldown_s
            slot.exit_seq = self.quote_seq()  # an exit and an entry never happen on the same quote
            self.desk.refresh(slot)

    def exit_position(self, group_id: int, reason: ExitReason = ExitReason.MANUAL) -> CommandResult:
        group = self.groups.get(group_id)
        if group is None:
            return CommandResult.error(f"no open position #{group_id}")
        if group.status == GroupStatus.ENTERING:
            return CommandResult.error(f"#{group_id} is still entering; wait for its fill")
        if group.pending_exit:
            return CommandResult.error(f"#{group_id} is already exiting ({group.pending_exit})")
        legs = group.open_legs()
        self.decide(group, reason, legs[0].mark if legs else None, legs[0] if legs else None)
        self.execution.settle()  # a venue that answers at once has answered: the reply says what happened
        self.journal.changed()
        if group.status == GroupStatus.CLOSED:
            return CommandResult.success(f"closed #{group_id} {group.symbol}, P&L {group.realized_pnl:+,.2f}")
        if any(leg.exit_order_id is not None for leg in group.open_legs()):
            return CommandResult.success(f"exit of #{group_id} {group.symbol} sent: its order is working")
        return CommandResult.success(f"exit of #{group_id} {group.symbol} is pending: it is sent on the next fresh quote")

    def exit_strategy(self, strategy_id: str) -> CommandResult:
        if strategy_id not in self.strategies and not any(g.strategy_id == strategy_id for g in self.groups.values()):
            return CommandResult.error(f"unknown strategy {strategy_id!r}")
        if strategy_id in self.desk.orphans:
            self.desk.orphans[strategy_id][1] = "close"
        ids = [g.id for g in self.groups.values() if g.strategy_id == strategy_id and g.status == GroupStatus.OPEN]
        if not ids:
            return CommandResult.error(f"{strategy_id} has no open position to exit")
        return combine([self.exit_position(gid) for gid in ids])

    def exit_all(self) -> CommandResult:
        ids = [g.id for g in self.groups.values() if g.status == GroupStatus.OPEN]
        if not ids:
            return CommandResult.error("there is no open position to exit")
        return combine([self.exit_position(gid) for gid in ids])

    def exit_positions(self, group_ids) -> CommandResult:
        """Exit several positions (the operator's multi-selection): one answer for all."""
        ids = list(dict.fromkeys(group_ids))
        if not ids:
            return CommandResult.error("no position selected")
        return combine([self.exit_position(gid) for gid in ids])

    def edit_levels(self, group_id: int, *, leg_id: int | None = None, stop=KEEP, target=KEEP, trail_distance=KEEP,
                    trail_activation=KEEP, time_exit_at=KEEP, confirm: bool = False) -> CommandResult:
        """Move a position's stop, target (absolute prices), trailing distance or activation
        ("0.5%" or points) or time exit (epoch seconds). None removes a level. Validated against
        the current mark; an edit that would exit at once needs confirm=True (it then exits on
        this quote). Persisted and audited with old and new values before it takes effect. A
        basket's levels are its legs' own: `leg_id` says which."""
        group = self.groups.get(group_id)
        legs = [leg for leg in group.legs if leg.status == LegStatus.OPEN] if group is not None else []
        if not legs:
            return CommandResult.error(f"no open position #{group_id}")
        if group.pending_exit:
            return CommandResult.error(f"#{group_id} is exiting ({group.pending_exit}); its levels can no longer change")
        if leg_id is None and len(legs) > 1:
            return CommandResult.error(f"#{group_id} is {group.plan.which_leg(legs)}")
        leg = next((leg for leg in legs if leg.id == leg_id), None) if leg_id is not None else legs[0]
        if leg is None:
            return CommandResult.error(f"#{group_id} has no open leg {leg_id}")
        now = self.clock.now()
        probe = copy.copy(leg)  # the leg as the edit would leave it; applied only if it is valid
        probe.trail_moves = deque(leg.trail_moves, maxlen=8)
        errors = edit_errors(probe, now, stop=stop, target=target, trail_distance=trail_distance,
                             trail_activation=trail_activation, time_exit_at=time_exit_at)
        if errors:
            return CommandResult.error("; ".join(errors))
        changes = [f"{LEVEL_LABELS.get(k, k)} {fmt_level(k, getattr(leg, k))} -> {fmt_level(k, getattr(probe, k))}"
                   for k in EDITABLE if getattr(leg, k) != getattr(probe, k)]
        if not changes:
            return CommandResult.error("nothing changed")
        q = self.book.fresh(leg.symbol, now)
        px = trigger_px(probe, q) if q is not None else probe.mark
        reason = exit_reason(probe, px, now)
        if reason is not None and not confirm:
            return CommandResult(False, f"#{group_id} {leg.symbol}: this edit would exit at once ({reason} at {_px(px)}); "
                                 "confirm to apply it and exit now", needs_confirm=True)
        old = {k: level_value(getattr(leg, k)) for k in EDITABLE}
        for name in (*EDITABLE, "trail_act_amount", "trail_active", "trail_peak", "trail_updated_at", "trail_moves"):
            setattr(leg, name, getattr(probe, name))
        self.timers.wake(group, leg.time_exit_at)
        new = {k: level_value(getattr(leg, k)) for k in EDITABLE}
        self.journal.add(leg)
        self.journal.event("info", "levels", f"#{group_id} {leg.symbol} levels edited: {', '.join(changes)}", group,
                    payload={"old": old, "new": new})
        self.journal.commit()  # persisted before it takes effect
        self.journal.changed()
        text = f"#{group_id} {leg.symbol}: {', '.join(changes)}"
        if reason is not None and q is not None:
            self.decide(group, reason, px, leg)
            return CommandResult.success(f"{text}; exiting ({reason})")
        return CommandResult.success(text)


def symbols_of(group: Group) -> str:
    """A group's symbol; a basket's, joined: BTCUSDT+ETHUSDT."""
    return "+".join(dict.fromkeys(leg.symbol for leg in group.legs)) or group.symbol


def _by_group_and_id(leg: Leg) -> tuple[int, int]:
    return leg.group.id, leg.id


def combine(results: list[CommandResult]) -> CommandResult:
    if len(results) == 1:
        return results[0]
    ok = any(r.ok for r in results)
    return CommandResult(ok, "; ".join(r.message for r in results))
