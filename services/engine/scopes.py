"""The trading session and the P&L scopes (DESIGN §3 portfolio level, daily loss limit): the
book's and each strategy's P&L rules, judged after the legs of a quote are marked, blocking
entries in scope and flattening it when one fires."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..amounts import local_time
from ..domain import ExitReason, Group, GroupStatus
from ..portfolio import PnlScope
from ..rules.pnl_scopes import BOOK, RULE_LABEL
from ..rules.schedule import session_bounds
from .desk import Desk
from .journal import Journal
from .ledger import Ledger

if TYPE_CHECKING:
    from ..config import BookConfig


class Scopes:
    def __init__(self, journal: Journal, ledger: Ledger, desk: Desk, book: BookConfig,
                 touch: Callable[[object], None] | None) -> None:
        self.journal, self.ledger, self.desk, self.config = journal, ledger, desk, book
        self.touch = touch  # None: the store keeps no marks (replay's), nor scope rows
        self.day_start = self.day_end = 0.0
        self.book = PnlScope(BOOK, book, 0.0)
        # The scopes whose rules are judged on each quote of their legs (none: no cost at all).
        self.rule_scopes = [rt.scope for rt in desk.strategies.values() if rt.scope is not None]
        if book.any:
            self.rule_scopes.insert(0, self.book)
        # how a firing flattens its scope (the entries' and the exits' own work, wired by the core)
        self.cancel_entry: Callable[[Group, str], None] = lambda group, why: None
        self.decide_exit: Callable[[Group, str], None] = lambda group, reason: None

    def all(self) -> list[PnlScope]:
        return [self.book, *(rt.scope for rt in self.desk.strategies.values() if rt.scope is not None)]

    def new_session(self, now: float) -> None:
        """Start the trading day that contains `now` (book.session_start in book.timezone)."""
        self.day_start, self.day_end = session_bounds(now, self.config.session_start, self.config.timezone)
        self.ledger.realized_today.clear()
        for scope in self.all():
            scope.realized = 0.0
            scope.new_day(self.day_start)
            self.journal.add(scope)

    def of_leg(self, strategy_id: str) -> tuple[PnlScope, ...]:
        """The scopes whose rules watch a leg of this strategy."""
        rt = self.desk.strategies.get(strategy_id)
        return tuple(sc for sc in (rt.scope if rt is not None else None, self.book)
                     if sc is not None and sc in self.rule_scopes)

    def check(self, now: float) -> None:
        """Step (5): after the legs of a quote are marked, judge the P&L rules that watch them."""
        for scope in self.rule_scopes:
            hit = scope.check()
            if hit is not None:
                self._fired(scope, hit[0], hit[1], now)

    def _fired(self, scope: PnlScope, kind: str, level: float, now: float) -> None:
        """A P&L rule or a daily loss limit acted: block new entries in scope, exit its positions
        (a daily loss limit only when it is set to flatten), and say which rule at what value."""
        book = scope.scope == BOOK
        rules = scope.rules
        if kind == "daily_loss_limit" or book or scope.cooldown_s is None:
            until = self.day_end
        else:
            until = now + scope.cooldown_s
        pnl = scope.pnl if kind == "daily_loss_limit" else scope.pnl - scope.base
        scope.fire(kind, now, until)
        self.journal.add(scope)
        flatten = kind != "daily_loss_limit" or rules.flatten_on_daily_limit
        groups = [g for g in self.ledger.groups.values() if book or g.strategy_id == scope.scope]
        who = "the book" if book else scope.scope
        then = f"exiting {len(groups)} position(s); " if flatten and groups else ""
        until_text = "the next session" if until >= self.day_end else local_time(until, self.config.timezone)
        self.journal.event("critical" if book else "warning", "risk",
                           f"{RULE_LABEL[kind]} of {who} reached: P&L {pnl:+,.2f} against {level:+,.2f}; "
                           f"{then}no new entries until {until_text}",
                           strategy_id=None if book else scope.scope, needs_ack=True,
                           payload={"scope": scope.scope, "rule": kind, "level": level, "pnl": pnl, "until": until})
        self.apply_blocks(now)
        if flatten:
            reason = ExitReason(kind if kind == "daily_loss_limit" else f"{'book' if book else 'strategy'}_{kind}")
            for group in groups:
                if group.status == GroupStatus.ENTERING:
                    self.cancel_entry(group, f"{RULE_LABEL[kind]} of {who} reached")
                elif not group.pending_exit and group.status == GroupStatus.OPEN:
                    self.decide_exit(group, reason)
        self.journal.commit()

    def tick(self, now: float) -> None:
        """Bring every scope's P&L back to the exact sums (the quote path adds deltas) and write
        the scopes behind, then end the blocks whose time has come. A store that keeps no marks
        (replay's) keeps no scope rows either: its rules go on with the running sums, and the
        tick does not walk every position. Rules are judged on fresh quotes and fills only (a
        stale price never triggers an exit), not here."""
        if not self.rule_scopes and not self.book.blocked_until:
            return
        realized_today = self.ledger.realized_today
        if self.touch is not None:
            unrealized: dict[str, float] = {}
            for group in self.ledger.groups.values():
                unrealized[group.strategy_id] = unrealized.get(group.strategy_id, 0.0) + group.unrealized()
            for scope in self.all():
                if scope.scope == BOOK:
                    scope.realized, scope.unrealized = sum(realized_today.values()), sum(unrealized.values())
                else:
                    scope.realized = realized_today.get(scope.scope, 0.0)
                    scope.unrealized = unrealized.get(scope.scope, 0.0)
        released = False
        for scope in self.all():
            scope.updated_at = now
            if scope.blocked_until is not None and now >= scope.blocked_until:
                scope.release()
                self.journal.add(scope)
                released = True
                self.journal.event("info", "risk", f"{'the book' if scope.scope == BOOK else scope.scope}: new entries "
                                   f"allowed again; P&L rules measure from {scope.base:+,.2f}",
                                   strategy_id=None if scope.scope == BOOK else scope.scope)
            elif scope.saved and self.touch is not None:
                self.touch(scope)
        if released:
            self.apply_blocks(now)

    def apply_blocks(self, now: float) -> None:
        """Give each strategy the reason its entries are refused (the book's first), if any."""
        book = self.book.block_reason(now)
        for rt in self.desk.strategies.values():
            block = book or (rt.scope.block_reason(now) if rt.scope is not None else "")
            if block != rt.block:
                rt.block = block
                for slot in rt.slots.values():
                    self.desk.refresh(slot)
                self.journal.changed()

    def restore(self, rows: list[dict]) -> None:
        stored = {row["scope"]: row for row in rows}
        for scope in self.all():
            row = stored.get(scope.scope)
            if row is not None:
                scope.saved = True
                if row["day_start"] == self.day_start:
                    scope.restore(row)  # the same session: its rules' state (a firing, a P&L peak) carries on
