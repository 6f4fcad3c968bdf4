"""P&L protection of a scope: the whole book, or one strategy (DESIGN §3 portfolio level and
daily loss limit). Pure bookkeeping with no engine in it, so the engine, its snapshots and
`tui-trader check-exits` (reading the stored row) all judge a scope the same way.

P&L = realized today + unrealized. The stop, target and trailing rules compare it from the
scope's `base` (0 for the session; the P&L at the end of a strategy's cooldown after one of
them fired, so that a strategy trading again is not judged on the loss that stopped it).
The daily loss limit always compares the whole day's P&L."""

from __future__ import annotations

from typing import Any

from .config import PnlRules
from .domain import Record
from .views import RuleView

BOOK = "book"

RULE_LABEL = {
    "pnl_stop": "P&L stop", "pnl_trailing": "P&L trailing stop", "pnl_target": "P&L target",
    "daily_loss_limit": "daily loss limit",
}


class PnlScope(Record):
    """The running P&L of a scope and the state of its rules; persisted as one `pnl_state` row."""

    __slots__ = ("scope", "rules", "cooldown_s", "day_start", "realized", "unrealized", "base", "armed",
                 "peak", "fired_rule", "fired_at", "fired_pnl", "limit_hit_at", "blocked_until", "updated_at")
    KIND = "pnl_state"

    def __init__(self, scope: str, rules: PnlRules | None, day_start: float, cooldown_s: float | None = None) -> None:
        self.id, self.saved = scope, False
        self.scope, self.rules, self.cooldown_s = scope, rules, cooldown_s
        self.realized = self.unrealized = 0.0
        self.updated_at = day_start
        self.new_day(day_start)

    def new_day(self, day_start: float) -> None:
        """Every rule starts over at the session start."""
        self.day_start = day_start
        self.base = 0.0
        self.armed = False
        self.peak: float | None = None
        self.fired_rule = ""
        self.fired_at: float | None = None
        self.fired_pnl: float | None = None
        self.limit_hit_at: float | None = None
        self.blocked_until: float | None = None

    @property
    def pnl(self) -> float:
        """The day's P&L: realized today + unrealized."""
        return self.realized + self.unrealized

    def blocked(self, now: float) -> bool:
        return self.blocked_until is not None and now < self.blocked_until

    # -- the rules ------------------------------------------------------------------------

    def check(self) -> tuple[str, float] | None:
        """The rule that acts now, as (kind, level in P&L), in DESIGN §3 precedence (stop,
        trailing, target), after the daily loss limit. Moves the trailing peak. A scope that
        has fired and is still blocked is not judged again (its positions are exiting)."""
        rules = self.rules
        if rules is None:
            return None
        day = self.realized + self.unrealized
        limit = rules.daily_loss_limit
        if limit is not None and self.limit_hit_at is None and day <= -limit:
            return "daily_loss_limit", -limit
        if self.fired_at is not None and self.blocked_until is not None:
            return None  # fired: judged again once the engine has released the block
        rel = day - self.base
        if rules.stop is not None and rel <= -rules.stop:
            return "pnl_stop", -rules.stop
        distance = rules.trail_distance
        if distance is not None:
            if not self.armed and rel >= rules.trail_activation:
                self.armed, self.peak = True, rel
            if self.armed:
                self.peak = max(self.peak, rel)
                if rel <= self.peak - distance:
                    return "pnl_trailing", self.peak - distance
        if rules.target is not None and rel >= rules.target:
            return "pnl_target", rules.target
        return None

    def fire(self, kind: str, now: float, until: float) -> None:
        """Record that a rule acted; new entries in scope are blocked until `until`."""
        if kind == "daily_loss_limit":
            self.limit_hit_at = now
        else:
            self.fired_rule, self.fired_at, self.fired_pnl = kind, now, self.pnl - self.base
        self.blocked_until = until if self.blocked_until is None else max(self.blocked_until, until)

    def release(self) -> None:
        """The block after a firing is over: the rules measure P&L from here on."""
        self.blocked_until = None
        self.base = self.pnl
        self.armed, self.peak = False, None

    # -- what it looks like ---------------------------------------------------------------

    def rule_views(self) -> tuple[RuleView, ...]:
        rules = self.rules
        if rules is None:
            return ()
        scope, day = self.scope, self.pnl
        rel = day - self.base
        fired = self.fired_at

        def fired_if(kind: str) -> float | None:
            return fired if self.fired_rule == kind else None

        out = []
        if rules.stop is not None:
            out.append(RuleView(scope, "pnl_stop", -rules.stop, rel, rel + rules.stop, True, fired_at=fired_if("pnl_stop")))
        if rules.trail_distance is not None:
            level = self.peak - rules.trail_distance if self.armed and self.peak is not None else None
            out.append(RuleView(scope, "pnl_trailing", level, rel, None if level is None else rel - level, self.armed,
                                arms_at=rules.trail_activation, peak=self.peak, fired_at=fired_if("pnl_trailing")))
        if rules.target is not None:
            out.append(RuleView(scope, "pnl_target", rules.target, rel, rules.target - rel, True,
                                fired_at=fired_if("pnl_target")))
        if rules.daily_loss_limit is not None:
            out.append(RuleView(scope, "daily_loss_limit", -rules.daily_loss_limit, day, day + rules.daily_loss_limit,
                                True, fired_at=self.limit_hit_at))
        return tuple(out)

    def block_reason(self, now: float) -> str:
        """Why entries in this scope are refused now, or ""."""
        if not self.blocked(now):
            return ""
        who = "the book" if self.scope == BOOK else self.scope
        if self.limit_hit_at is not None and self.rules is not None and self.rules.daily_loss_limit is not None:
            return (f"daily loss limit of {self.rules.daily_loss_limit:,.2f} reached by {who}: "
                    "no new entries until the next session")
        return f"{RULE_LABEL.get(self.fired_rule, self.fired_rule)} of {who} fired at P&L {self.fired_pnl or 0.0:+,.2f}"

    # -- persistence ----------------------------------------------------------------------

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in (
            "scope", "day_start", "realized", "unrealized", "base", "armed", "peak", "fired_rule", "fired_at",
            "fired_pnl", "limit_hit_at", "blocked_until", "updated_at")}

    def restore(self, row: dict[str, Any]) -> None:
        """Take the stored state of the same session (the caller checks day_start)."""
        self.saved = True
        for name in ("base", "peak", "fired_rule", "fired_at", "fired_pnl", "limit_hit_at", "blocked_until"):
            setattr(self, name, row[name])
        self.armed = bool(row["armed"])
        self.realized, self.unrealized, self.updated_at = row["realized"], row["unrealized"], row["updated_at"]
