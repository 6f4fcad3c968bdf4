"""P&L scope rules (DESIGN §3 portfolio level and daily loss limit): which rule acts on a
scope's P&L and at what level, where each rule stands, and why the scope's entries are refused.
A scope is the whole book or one strategy; its state and its row live in services.portfolio.

P&L = realized today + unrealized. The stop, target and trailing rules compare it from the
scope's `base` (0 for the session; the P&L at the end of a strategy's cooldown after one of
them fired, so that a strategy trading again is not judged on the loss that stopped it).
The daily loss limit always compares the whole day's P&L."""

from __future__ import annotations

from typing import NamedTuple, Protocol

from ..views import RuleView

BOOK = "book"

RULE_LABEL = {
    "pnl_stop": "P&L stop", "pnl_trailing": "P&L trailing stop", "pnl_target": "P&L target",
    "daily_loss_limit": "daily loss limit",
}


class Rules(Protocol):
    """A scope's P&L rules, as services.config.PnlRules gives them (the rules import no settings)."""

    @property
    def stop(self) -> float | None: ...
    @property
    def target(self) -> float | None: ...
    @property
    def trail_activation(self) -> float: ...
    @property
    def trail_distance(self) -> float | None: ...
    @property
    def daily_loss_limit(self) -> float | None: ...


class ScopeState(NamedTuple):
    """A scope's P&L and the state of its rules. A NamedTuple: one is built on every quote that
    moves a leg a scope watches."""

    scope: str  # BOOK or a strategy id
    rules: Rules
    day: float  # the day's P&L: realized today + unrealized
    base: float  # what the stop, target and trailing rules measure from
    armed: bool  # the trailing stop
    peak: float | None  # its highest P&L (from the base) since it armed
    fired_rule: str  # the stop, target or trailing rule that last fired this session, or ""
    fired_at: float | None
    fired_pnl: float | None  # the P&L (from the base) it fired at
    limit_hit_at: float | None  # when the daily loss limit acted this session
    blocked_until: float | None  # entries are refused until then


class Judgement(NamedTuple):
    hit: tuple[str, float] | None  # the rule that acts now and its level in P&L, or None
    armed: bool  # the trailing stop after this P&L
    peak: float | None


def judge(s: ScopeState) -> Judgement:
    """The rule that acts now, in DESIGN §3 precedence (stop, trailing, target) after the daily
    loss limit, and where the trailing stop stands after this P&L. A scope that has fired and is
    still blocked is not judged again (its positions are exiting)."""
    rules, day, armed, peak = s.rules, s.day, s.armed, s.peak
    limit = rules.daily_loss_limit
    if limit is not None and s.limit_hit_at is None and day <= -limit:
        return Judgement(("daily_loss_limit", -limit), armed, peak)
    if s.fired_at is not None and s.blocked_until is not None:
        return Judgement(None, armed, peak)  # fired: judged again once the engine has released the block
    rel = day - s.base
    if rules.stop is not None and rel <= -rules.stop:
        return Judgement(("pnl_stop", -rules.stop), armed, peak)
    distance = rules.trail_distance
    if distance is not None:
        if not armed and rel >= rules.trail_activation:
            armed, peak = True, rel
        if armed:
            peak = max(peak, rel)
            if rel <= peak - distance:
                return Judgement(("pnl_trailing", peak - distance), armed, peak)
    if rules.target is not None and rel >= rules.target:
        return Judgement(("pnl_target", rules.target), armed, peak)
    return Judgement(None, armed, peak)


def rule_views(s: ScopeState) -> tuple[RuleView, ...]:
    """Each rule's level, the P&L it compares and how far that is from the level (> 0: not reached)."""
    rules, scope, day = s.rules, s.scope, s.day
    rel = day - s.base

    def fired_if(kind: str) -> float | None:
        return s.fired_at if s.fired_rule == kind else None

    out = []
    if rules.stop is not None:
        out.append(RuleView(scope, "pnl_stop", -rules.stop, rel, rel + rules.stop, True, fired_at=fired_if("pnl_stop")))
    if rules.trail_distance is not None:
        level = None if s.peak is None else s.peak - rules.trail_distance  # a peak from the moment it arms
        out.append(RuleView(scope, "pnl_trailing", level, rel, None if level is None else rel - level, s.armed,
                            arms_at=rules.trail_activation, peak=s.peak, fired_at=fired_if("pnl_trailing")))
    if rules.target is not None:
        out.append(RuleView(scope, "pnl_target", rules.target, rel, rules.target - rel, True,
                            fired_at=fired_if("pnl_target")))
    if rules.daily_loss_limit is not None:
        out.append(RuleView(scope, "daily_loss_limit", -rules.daily_loss_limit, day, day + rules.daily_loss_limit,
                            True, fired_at=s.limit_hit_at))
    return tuple(out)


def block_reason(s: ScopeState) -> str:
    """Why entries in a blocked scope are refused: the daily loss limit, or the rule that fired."""
    who = "the book" if s.scope == BOOK else s.scope
    limit = s.rules.daily_loss_limit
    if s.limit_hit_at is not None and limit is not None:
        return f"daily loss limit of {limit:,.2f} reached by {who}: no new entries until the next session"
    return f"{RULE_LABEL.get(s.fired_rule, s.fired_rule)} of {who} fired at P&L {s.fired_pnl or 0.0:+,.2f}"
