"""The loss-offsetting risk engine (DESIGN §3): a stuck loser is closed together with part
of the book's winners, so that their realized profit pays for its loss. The checks and the
plan are services.rules.risk_plan's; this side feeds it the book, runs plans (on its own when
eligible and covered, or when the operator says) and keeps the operator's skip / block on
the group."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..amounts import qty as _qty
from ..config import RiskEngineConfig
from ..domain import ExitReason, GroupStatus, RiskHold
from ..market import QuoteBook
from ..rules import risk_plan
from ..rules.precision import RulesSource
from ..views import CommandResult, RiskView
from .journal import Journal
from .ledger import Ledger

if TYPE_CHECKING:
    from ..domain import Group
    from .exits import Exits


class Risk:
    def __init__(self, journal: Journal, ledger: Ledger, book: QuoteBook, rules: RulesSource,
                 config: RiskEngineConfig | None, taker_fee_bps: float) -> None:
        self.journal, self.book, self.rules = journal, book, rules
        self.config = config  # None: the risk engine is off
        self.clock = journal.clock
        self.groups = ledger.groups
        self._fee = taker_fee_bps / 10_000.0
        self.exits: Exits  # wired by the core: how positions are closed

    def _risk_positions(self) -> dict[int, risk_plan.Position]:
        """Every open group that is not exiting, as the risk engine sees it."""
        out = {}
        for group in self.groups.values():
            legs = group.open_legs()
            if group.status != GroupStatus.OPEN or group.pending_exit or not legs:
                continue
            out[group.id] = risk_plan.Position(
                group.id, group.strategy_id, group.symbol, group.side,
                tuple(risk_plan.Leg(lg.id, lg.qty, lg.entry, lg.entry_fee, lg.symbol, lg.mark, self._lot_step(lg.symbol))
                      for lg in legs), legs[0].mark,  # a basket's legs each on its own symbol
                group.opened_at, self._lot_step(group.symbol), **group.plan.fullness(group),
                blocked=group.risk_hold == RiskHold.BLOCKED, skipped=group.risk_hold == RiskHold.SKIPPED)
        return out

    def _lot_step(self, symbol: str) -> float | None:
        rules = self.rules.rules(symbol)
        return rules.lot_step if rules else None

    def tick(self, now: float) -> None:
        """Run the offset plan of the first eligible loser that its winners cover (one a
        check: the next sees the book after it). A skip lasts until the loser stops being eligible."""
        cfg = self.config
        threshold = cfg.loss_threshold_pct / 100.0
        if not any(g.unrealized() <= -threshold * g.cost() < 0 or g.risk_hold == RiskHold.SKIPPED for g in self.groups.values()):
            return  # nothing near a decision: the usual case, kept cheap
        positions = self._risk_positions()
        for gid, p in sorted(positions.items(), key=lambda item: -item[1].loss_pct):
            if p.loss_pct <= 0:
                continue
            checks = risk_plan.eligibility(p, cfg, now).checks
            group = self.groups[gid]
            if group.risk_hold == RiskHold.SKIPPED and not all(c.passed for c in checks if c.name != "skipped"):
                group.risk_hold = ""  # it stopped being eligible: the skip is used up
                self.journal.add(group)
                continue
            if not cfg.enabled or not all(c.passed for c in checks):
                continue
            plan = risk_plan.offset_plan(p, positions.values(), cfg, self._fee)
            if plan.covers and not self._stale_in(plan, now):
                self._run_offset(group, plan, "eligible")
                return

    def _stale_in(self, plan: risk_plan.Plan, now: float) -> str:
        """A symbol of the plan without a fresh quote ("" when all are fresh): no plan runs on a stale price."""
        loser = self.groups[plan.loser.group_id].open_legs()  # every leg of a basket
        return next((sym for sym in (*(lg.symbol for lg in loser), *(st.symbol for st in plan.steps))
                     if self.book.fresh(sym, now) is None), "")

    def _run_offset(self, loser: Group, plan: risk_plan.Plan, why: str) -> None:
        """Close the planned quantities of the winners, then the loser, each order audited."""
        now = self.clock.now()
        self.journal.event("warning", "risk", f"risk engine ({why}) on #{loser.id} {loser.symbol}: {risk_plan.summary(plan)}",
                    loser, needs_ack=True, payload=_plan_payload(plan))
        for step in plan.steps:
            group = self.groups.get(step.group_id)
            leg = next((lg for lg in group.open_legs() if lg.id == step.leg_id), None) if group is not None else None
            if leg is None or leg.exit_order_id is not None or group.pending_exit:
                self.journal.event("warning", "risk", f"risk offset for #{loser.id}: #{step.group_id} leg {step.leg_id} is no "
                            "longer open as planned; skipped", loser, payload={"step": step.leg_id})
                continue
            self.journal.event("info", "risk", f"risk offset for #{loser.id}: closing {_qty(step.qty)} {step.symbol} of "
                        f"#{group.id} (expected {step.expected_realized:+,.2f})", group, symbol=step.symbol,
                        payload={"loser": loser.id, "leg_id": leg.id, "qty": step.qty, "expected": step.expected_realized})
            self.exits.send_order(group, leg, 0, None, now, ExitReason.RISK_OFFSET, step.qty if step.qty < leg.qty else None)
        if loser.id in self.groups and not loser.pending_exit:
            legs = loser.open_legs()
            self.exits.decide(loser, ExitReason.RISK_OFFSET, legs[0].mark if legs else None)
        self.journal.commit()

    def risk_run(self, group_id: int) -> CommandResult:
        """The operator runs a loser's offset plan now, whatever its eligibility says."""
        if self.config is None:
            return CommandResult.error("the risk engine is off: add a [risk_engine] section to the settings")
        positions = self._risk_positions()
        p = positions.get(group_id)
        if p is None:
            return CommandResult.error(f"#{group_id} is not an open position the risk engine can close")
        if p.unrealized >= 0:
            return CommandResult.error(f"#{group_id} is not losing ({p.unrealized:+,.2f}); nothing to offset")
        plan = risk_plan.offset_plan(p, positions.values(), self.config, self._fee)
        stale = self._stale_in(plan, self.clock.now())
        if stale:
            return CommandResult.error(f"no fresh quote for {stale}; the plan does not run on a stale price")
        self._run_offset(self.groups[group_id], plan, "run by the operator")
        return CommandResult.success(f"#{group_id}: {risk_plan.summary(plan)}")

    def risk_skip(self, group_id: int) -> CommandResult:
        """Skip once: an eligible loser is not run while it stays eligible; it counts again once
        it has stopped being so. (To keep one out before it is eligible, block it.)"""
        group = self.groups.get(group_id)
        if group is not None and not group.risk_hold and self.config is not None:
            p = self._risk_positions().get(group_id)
            el = risk_plan.eligibility(p, self.config, self.clock.now()) if p is not None else None
            if el is None or not all(c.passed for c in el.checks if c.name not in ("skipped", "blocked")):
                return CommandResult.error(f"#{group_id} is not eligible now, so there is no run to skip; "
                                           "b blocks it instead")
        return self._risk_hold(group_id, RiskHold.SKIPPED, "skipped once: the risk engine leaves it until it stops being eligible",
                               "the skip is withdrawn")

    def risk_block(self, group_id: int) -> CommandResult:
        return self._risk_hold(group_id, RiskHold.BLOCKED, "blocked: the risk engine never closes it (b again unblocks)",
                               "unblocked: the risk engine may close it again")

    def _risk_hold(self, group_id: int, hold: RiskHold, set_text: str, cleared_text: str) -> CommandResult:
        group = self.groups.get(group_id)
        if group is None:
            return CommandResult.error(f"no open position #{group_id}")
        if group.risk_hold and group.risk_hold != hold:
            return CommandResult.error(f"#{group_id} is {group.risk_hold}; undo that first")
        group.risk_hold = "" if group.risk_hold == hold else hold
        text = f"#{group_id} {group.symbol}: {set_text if group.risk_hold else cleared_text}"
        self.journal.add(group)
        self.journal.event("info", "operator", f"{text} (by the operator)", group, payload={"risk_hold": group.risk_hold})
        self.journal.commit()
        return CommandResult.success(text)

    def views(self, now: float) -> tuple[RiskView, ...]:
        """Every losing position with its eligibility and its projected plan, biggest loss first."""
        cfg = self.config
        if cfg is None:
            return ()
        positions = self._risk_positions()
        views = []
        for gid, p in sorted(positions.items(), key=lambda item: (-item[1].loss_pct, item[0])):
            if p.unrealized >= 0:
                continue
            el = risk_plan.eligibility(p, cfg, now)
            plan = risk_plan.offset_plan(p, positions.values(), cfg, self._fee)
            views.append(RiskView(
                gid, p.strategy_id, p.symbol, p.side, p.loss_pct, p.unrealized, el.timer_remaining, p.pyramids,
                p.max_pyramids, now - p.opened_at, tuple((c.name, c.passed, c.text) for c in el.checks), el.eligible,
                self.groups[gid].risk_hold, risk_plan.summary(plan),
                plan.steps,
                plan.required, plan.covered, plan.covers, plan.notes))
        return tuple(views)


def _plan_payload(plan: risk_plan.Plan) -> dict:
    return {"loser": plan.loser.group_id, "required": plan.required, "covered": plan.covered,
            "steps": [{"group": st.group_id, "leg": st.leg_id, "qty": st.qty, "expected": st.expected_realized}
                      for st in plan.steps], "notes": list(plan.notes)}
