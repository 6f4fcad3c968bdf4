"""Recovery at start (DESIGN §4): the positions, orders, queue, switches and P&L scopes the
previous run left are taken over. The paper broker keeps no orders across processes: a kept
entry, resting DCA layers and an exit are placed again on the next fresh quote; other
working orders are marked cancelled."""

from __future__ import annotations

from ..config import StrategyConfig
from ..domain import Group, GroupStatus, Leg, LegStatus, Order, Run
from ..orders import OrderPurpose, OrderStatus
from ..plans import BasketPlan, GridPlan, PositionPlan, SinglePlan
from ..rules.distance import parse_distance
from ..signal_queue import QueuedSignal, SignalQueue
from ..store.loaded import LoadedState
from ..timers import Timers
from ..views import TradeView
from .desk import ALL_ENTRIES, Desk
from .entries import Entries
from .grid import Grid
from .journal import Journal
from .ledger import Ledger
from .scopes import Scopes

KEPT_AT_STOP = "kept working at the engine stop"
"""Order.reason of an order engine.orders_on_stop = "keep" left working."""


class Recovery:
    def __init__(self, journal: Journal, ledger: Ledger, desk: Desk, scopes: Scopes, queue: SignalQueue,
                 timers: Timers, entries: Entries, grid: Grid) -> None:
        self.journal, self.ledger, self.desk, self.scopes = journal, ledger, desk, scopes
        self.queue, self.timers, self.entries, self.grid = queue, timers, entries, grid
        self.clock = journal.clock
        self.groups, self.runs, self.strategies = ledger.groups, ledger.runs, desk.strategies

    def restore(self, st: LoadedState, mode: str) -> int:
        """Take over what the previous run left (DESIGN §4 restart); returns how many open
        positions were resumed."""
        self.journal.ids.update(st.max_ids)
        for row in st.strategy_state:
            if row["strategy_id"] == ALL_ENTRIES:
                self.desk.entries.paused, self.desk.entries.saved = bool(row["paused"]), True
            rt = self.strategies.get(row["strategy_id"])
            if rt is not None:
                rt.state.paused = bool(row["paused"])
                rt.state.saved = True
        for row in st.runs:
            run = Run(row["id"], row["strategy_id"], row["symbol"], row["started_at"], row["session_metadata"] or {})
            run.status, run.reason, run.saved = row["status"], row["reason"], True
            self.runs[run.id] = run
        legs_by_group: dict[int, list[dict]] = {}
        for row in st.legs:
            legs_by_group.setdefault(row["group_id"], []).append(row)
        for row in st.groups:
            lrows = legs_by_group.get(row["id"], [])
            rt = self.strategies.get(row["strategy_id"])
            group = Group(row["id"], row["run_id"], row["strategy_id"], row["symbol"], row["side"], row["opened_at"],
                          _plan_from_row(row, lrows, rt.config if rt is not None else None))
            group.status, group.saved = row["status"], True
            group.realized_pnl, group.entry_method, group.entry_attempts = row["realized_pnl"], row["entry_method"], row["entry_attempts"]
            group.pending_exit, group.risk_hold = row["pending_exit"], row["risk_hold"]
            for lrow in lrows:
                leg = _leg_from_row(lrow, group)
                group.legs.append(leg)
                if leg.status == LegStatus.OPEN:
                    self.ledger.leg_opened(leg)
            self.groups[group.id] = group
            self.ledger.reserve(group, group.held())
        self.ledger.realized_total = st.realized_total
        cancelled: dict[int, Order] = {}
        for row in st.working_orders:
            order = cancelled[row["id"]] = order_from_row(row)
            group = self.groups.get(order.group_id)
            if (row["reason"] == KEPT_AT_STOP and order.purpose == OrderPurpose.ENTRY and group is not None
                    and group.status == GroupStatus.ENTERING):
                # the paper broker keeps no orders across processes: the same order is placed again
                self.ledger.order_final(order, OrderStatus.CANCELLED, "placed again after the restart")
                group.entry_symbol, group.entry_ref = order.symbol, order.reference_price
                group.resume_entry = (order.qty - order.filled_qty, order.order_type, order.method, order.limit_price,
                                      order.retry_count)
                self.journal.event("info", "recovery", f"entry #{group.id} {order.symbol} was kept working at the stop: its order "
                            "is placed again on the next fresh quote", group, payload={"order_id": order.id})
                continue
            self.ledger.order_final(order, OrderStatus.CANCELLED, "not working after a restart (the paper broker keeps no orders)")
            self.journal.event("warning", "recovery", f"order {order.client_id} ({order.purpose} {order.side} {order.symbol}) was "
                        f"{row['status']} when the engine stopped; marked cancelled", payload={"order_id": order.id})
        for group in list(self.groups.values()):
            if group.resume_entry is None and (
                    group.status == GroupStatus.ENTERING
                    or not any(leg.status in (LegStatus.OPEN, LegStatus.PENDING) for leg in group.legs)):
                self.journal.event("warning", "recovery", f"entry #{group.id} {group.symbol} had not filled when the engine stopped; "
                            "it is abandoned", group)
                self.entries.failed(group, "the engine stopped before the entry filled")
            elif group.pending_exit:
                group.status = GroupStatus.EXITING
                group.resend_at = 0.0
                self.journal.event("warning", "recovery", f"resuming the exit of #{group.id} {group.symbol} ({group.pending_exit}); "
                            "it is sent on the next fresh quote", group)
                self.grid.cancel_layers(group, "the group was exiting when the engine stopped")
            for leg in group.legs:
                if leg.status == LegStatus.PENDING:
                    leg.entry_order_id = None  # the paper broker kept no orders: placed again on a fresh quote
        for group in self.groups.values():
            self.timers.wake(group, self.clock.now())  # an entry or layers to place again, an exit to send again
            for leg in group.legs:
                leg.scopes = self.scopes.of_leg(group.strategy_id)
                if leg.status == LegStatus.OPEN:
                    self.timers.wake(group, leg.time_exit_at)
            rt = self.strategies.get(group.strategy_id)
            slot = rt.slots.get(group.symbol) if rt is not None else None
            if rt is None or not rt.config.enabled:
                why = "removed from the settings" if rt is None else "disabled in the settings"
                self.desk.orphans.setdefault(group.strategy_id, [why, ""])
            if slot is None:
                continue
            slot.group = group
        for sid, (why, _) in self.desk.orphans.items():
            ids = ", ".join(f"#{g.id} {g.symbol}" for g in self.groups.values() if g.strategy_id == sid)
            self.desk.notes.append(f"{sid} is {why} but holds {ids}: still managed on the stored levels until you close them "
                              f"(S on 3 Positions, or tui-trader exit --strategy {sid})")
            self.journal.event("warning", "recovery", self.desk.notes[-1], strategy_id=sid, needs_ack=True,
                        payload={"strategy": sid, "why": why, "positions": [g.id for g in self.groups.values()
                                                                             if g.strategy_id == sid]})
        for rt in self.strategies.values():
            for sym, slot in rt.slots.items():
                last = st.last_exit.get((rt.id, sym))
                if last is not None:
                    slot.ready_at = last + rt.config.cooldown_s
                slot.entered = (rt.id, sym) in st.entered_today or slot.group is not None
                slot.last_entry_at = st.last_entry.get((rt.id, sym))
                self.desk.refresh(slot)
        self.ledger.realized_today.update(st.realized_today)
        for row in st.queued_signals:
            self.queue.add(QueuedSignal.from_row(row))
            self.timers.at(row["expires_at"], "queue")
        self.scopes.restore(st.pnl_state)
        self.scopes.tick(self.clock.now())
        self.scopes.apply_blocks(self.clock.now())
        self.journal.restore(st.recent_events, st.unread_alerts)
        for row in st.recent_orders:  # loaded before the cancels above: show the cancelled state
            self.ledger.recent_orders.append(cancelled.get(row["id"]) or order_from_row(row))
        for row in st.recent_trades:
            self.ledger.trades.append(TradeView(row["id"], row["strategy_id"], row["symbol"], row["side"], row.get("qty") or 0.0,
                                         row["opened_at"], row.get("avg_entry") or 0.0, row["closed_at"] or 0.0,
                                         row.get("exit_price") or 0.0, row["exit_reason"], row["realized_pnl"]))
        open_count = len(self.groups)
        self.journal.event("info", "engine", f"engine started ({mode}); resumed {open_count} open position(s)"
                    + (": managed again on their stored levels" if open_count else ""), payload={"open_positions": open_count})
        return open_count


def _plan_from_row(row: dict, legs: list[dict], cfg: StrategyConfig | None) -> PositionPlan:
    """The group's plan from its stored columns: a grid has a take-profit mode; a basket is
    its strategy's kind, or holds more than one symbol (what it had still to enter is not
    kept: an entry is not resumed past the leg that was working)."""
    if row["tp_mode"]:
        return GridPlan.from_row(row, cfg.dca if cfg is not None else None)
    if (cfg is not None and cfg.basket) or len({lrow["symbol"] for lrow in legs}) > 1:
        return BasketPlan([])
    return SinglePlan()


def _leg_from_row(row: dict, group: Group) -> Leg:
    leg = Leg(row["id"], group, row["symbol"], row["side"], row["qty"], row["avg_entry"], row["entry_fee"],
              row["opened_at"], row["trigger"])
    leg.saved = True
    leg.mark, leg.mark_ts = row["mark"], row["mark_ts"]
    leg.stop, leg.target = row["stop"], row["target"]
    leg.trail_activation = parse_distance(row["trail_activation"]) if row["trail_activation"] is not None else None
    leg.trail_distance = parse_distance(row["trail_distance"]) if row["trail_distance"] is not None else None
    leg.trail_act_amount = row["trail_act_amount"]
    leg.trail_active = bool(row["trail_active"])
    leg.trail_peak, leg.trail_level, leg.trail_updated_at = row["trail_peak"], row["trail_level"], row["trail_updated_at"]
    leg.time_exit_at = row["time_exit_at"]
    leg.status, leg.exit_reason = row["status"], row["exit_reason"] or ""
    leg.closed_at, leg.exit_price, leg.realized_pnl = row["closed_at"], row["exit_price"], row["realized_pnl"] or 0.0
    leg.exit_fee = row["exit_fee"]
    leg.layer, leg.pyramid, leg.weight, leg.tp_pct = row["layer"], row["pyramid"] or 0, row["weight"], row["tp_pct"]
    return leg


def order_from_row(row: dict) -> Order:
    order = Order(row["id"], row["group_id"], row["leg_id"], row["strategy_id"], row["symbol"], row["side"], row["qty"],
                  row["order_type"], row["method"], row["purpose"], row["created_at"], row["limit_price"],
                  row["reference_price"], row["retry_count"])
    order.saved = True
    order.client_id, order.status, order.reason = row["client_id"], row["status"], row["reason"]
    order.updated_at, order.filled_qty, order.avg_fill_price = row["updated_at"], row["filled_qty"], row["avg_fill_price"]
    return order
