"""P&L protection of a scope: the whole book, or one strategy (DESIGN §3 portfolio level and
daily loss limit). The scope's running P&L, the state of its rules and its row; the rules
themselves are judged by services.rules.pnl_scopes. Bookkeeping with no engine in it, so the
engine, its snapshots and `tui-trader check-exits` (reading the stored row) all judge a scope
the same way."""

from __future__ import annotations

from typing import Any

from .config import PnlRules
from .domain import Record
from .rules.pnl_scopes import ScopeState, block_reason, judge, rule_views
from .views import RuleView


class PnlScope(Record):
    """The running P&L of a scope and the state of its rules; persisted as one `pnl_state` row."""

    __slots__ = ("scope", "rules", "cooldown_s", "day_start", "realized", "unrealized", "base", "armed",
                 "peak", "fired_rule", "fired_at", "fired_pnl", "limit_hit_at", "blocked_until", "updated_at")
    KIND = "pnl_state"

    def __init__(self, scope: str, rules: PnlRules, day_start: float, cooldown_s: float | None = None) -> None:
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

    # -- the rules (services.rules.pnl_scopes judges them) ----------------------------------

    def state(self) -> ScopeState:
        return ScopeState(self.scope, self.rules, self.pnl, self.base, self.armed, self.peak, self.fired_rule,
                          self.fired_at, self.fired_pnl, self.limit_hit_at, self.blocked_until)

    def check(self) -> tuple[str, float] | None:
        """The rule that acts now, as (kind, level in P&L); moves the trailing peak."""
        hit, self.armed, self.peak = judge(self.state())
        return hit

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
        return rule_views(self.state())

    def block_reason(self, now: float) -> str:
        """Why entries in this scope are refused now, or ""."""
        return block_reason(self.state()) if self.blocked(now) else ""

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
