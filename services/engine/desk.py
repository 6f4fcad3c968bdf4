"""The strategies and their slots (one strategy on one symbol), which slots want an entry,
why an entry is held, the operator's switches (pause, resume, the book-wide entry switch),
quarantined symbols, and the positions left over from strategies the settings dropped."""

from __future__ import annotations

import re
from collections import deque
from typing import TYPE_CHECKING

from ..domain import Group, StrategyState
from ..portfolio import PnlScope
from ..views import CommandResult
from .journal import Journal, error_text

if TYPE_CHECKING:
    from ..config import StrategyConfig
    from .ledger import Ledger

_AMOUNTS = re.compile(r"\d[\d,.]*")
ALL_ENTRIES = "*"
"""The strategy_state row of the book-wide entry switch (Desk.stop_entries)."""
ENTRIES_STOPPED = "entries stopped for the whole book by the operator"
QUARANTINE_ERRORS, QUARANTINE_WINDOW_S = 3, 60.0  # a symbol failing this often this fast takes no new entries


class Slot:
    """One strategy on one symbol: holds at most one position group at a time."""

    __slots__ = ("strategy", "symbol", "symbols", "group", "ready_at", "exit_seq", "entered", "hold", "hold_kind",
                 "schedule", "last_entry_at")

    def __init__(self, strategy: "StrategyRuntime", symbol: str, symbols: tuple[str, ...] = ()) -> None:
        self.strategy, self.symbol = strategy, symbol
        self.symbols = symbols or (symbol,)  # a basket enters all of them, leg by leg
        cfg = strategy.config
        self.schedule = cfg.schedule if cfg.entry == "scheduled" else None  # entry windows, if any
        self.last_entry_at: float | None = None  # once per window
        self.group: Group | None = None
        self.ready_at = 0.0  # no re-entry before this time (cooldown)
        self.exit_seq = -1  # the quote that closed the last position: no entry on it
        self.entered = False  # entered since the day started (matters when reentry is off)
        self.hold = ""  # why an entry that is wanted is not happening
        self.hold_kind = ""  # that reason without its amounts: announced once per kind


class StrategyRuntime:
    __slots__ = ("id", "config", "state", "slots", "scope", "block")

    def __init__(self, sid: str, config: StrategyConfig, day_start: float) -> None:
        self.id, self.config = sid, config
        self.state = StrategyState(sid)
        pnl = config.pnl
        self.scope = PnlScope(sid, pnl, day_start, pnl.cooldown_s) if pnl is not None and pnl.any else None
        self.block = ""  # why its entries are refused by a P&L rule or a daily loss limit ("" when not)
        if config.basket:  # one position over all its symbols, keyed by the first
            self.slots = {config.symbols[0]: Slot(self, config.symbols[0], tuple(config.symbols))}
        else:
            self.slots = {sym: Slot(self, sym) for sym in config.symbols}

    @property
    def paused(self) -> bool:
        return self.state.paused

    def wants_entry(self, slot: Slot) -> bool:
        """Whether an immediate entry should be considered for this slot."""
        cfg = self.config
        if not cfg.enabled or self.paused or self.block or slot.group is not None:
            return False
        if cfg.entry == "scheduled":
            return True  # whether a window is open is checked on each quote
        return cfg.entry == "immediate" and (cfg.reentry or not slot.entered)


class Desk:
    def __init__(self, journal: Journal, ledger: Ledger, strategies: dict[str, StrategyConfig]) -> None:
        self.journal, self.ledger = journal, ledger
        self.strategies = {sid: StrategyRuntime(sid, cfg, 0.0) for sid, cfg in strategies.items()}
        self.entries = StrategyState(ALL_ENTRIES)  # paused: the operator stopped every entry of the book
        self.wanting: dict[str, list[Slot]] = {}  # symbol -> the slots an entry on its next quote is considered for
        self.quarantined: dict[str, str] = {}  # symbol -> why it takes no new entries (until the next start)
        self._symbol_errors: dict[str, deque[float]] = {}  # symbol -> when its latest quotes failed
        self.orphans: dict[str, list] = {}  # strategy id -> [why, decided] for positions of removed/disabled strategies
        self.notes: list[str] = []

    def slots(self):
        for rt in self.strategies.values():
            yield from rt.slots.values()

    def slot_of(self, group: Group) -> Slot | None:
        rt = self.strategies.get(group.strategy_id)
        slot = rt.slots.get(group.symbol) if rt is not None else None
        return slot if slot is not None and slot.group is group else None

    def refresh(self, slot: Slot) -> None:
        wanting = self.wanting.setdefault(slot.symbol, [])
        wants = not self.entries.paused and slot.strategy.wants_entry(slot)
        if wants and slot not in wanting:
            wanting.append(slot)
        elif not wants and slot in wanting:
            wanting.remove(slot)

    def hold(self, slot: Slot, reason: str, quiet: bool = False, message: str = "") -> CommandResult:
        """An entry that cannot go now: say why where the operator looks. The reason shown stays
        current; it is announced once per kind (amounts that move with the price do not count)."""
        if slot.hold != reason:
            slot.hold = reason
            kind = _AMOUNTS.sub("#", reason)
            if kind != slot.hold_kind:
                slot.hold_kind = kind
                if not quiet:
                    self.journal.event("warning", "entry", f"{slot.strategy.id}: entry on {slot.symbol} held: {reason}",
                                       strategy_id=slot.strategy.id, payload={"symbol": slot.symbol, "reason": reason})
            self.journal.changed()
        return CommandResult.error(message or f"{slot.strategy.id} {slot.symbol}: held: {reason}")

    def quarantine_check(self, symbol: str, exc: Exception, now: float) -> None:
        """A symbol failing QUARANTINE_ERRORS times within QUARANTINE_WINDOW_S is quarantined:
        no new entries on it until the next start, its open positions still managed as far as
        they can be."""
        if symbol in self.quarantined:
            return
        times = self._symbol_errors.setdefault(symbol, deque(maxlen=QUARANTINE_ERRORS))
        times.append(now)
        if len(times) < QUARANTINE_ERRORS or now - times[0] > QUARANTINE_WINDOW_S:
            return
        why = self.quarantined[symbol] = f"quarantined after {QUARANTINE_ERRORS} errors: {error_text(exc)}"
        self.journal.event("critical", "engine", f"{symbol} {why} (within {QUARANTINE_WINDOW_S:g} s): no new entries on it "
                           "until the engine restarts; its open positions are still managed; see the log file", symbol=symbol,
                           needs_ack=True, payload={"symbol": symbol, "errors": QUARANTINE_ERRORS, "error": error_text(exc)})
        for slot in self.slots():
            if symbol in slot.symbols:
                self.hold(slot, why, quiet=True)  # shown where its entries wait; the alert said it once

    # == the operator's switches ===============================================================

    def stop_entries(self, stopped: bool = True) -> CommandResult:
        """The book-wide switch: no entry of any strategy (signals, schedules, re-entries, the
        queue, pyramids) while stopped; open positions are still managed. Survives a restart."""
        word = "stopped" if stopped else "resumed"
        if self.entries.paused == stopped:
            return CommandResult.error(f"entries are already {word}")
        self.entries.paused = stopped
        for slot in self.slots():
            if slot.hold == ENTRIES_STOPPED:
                slot.hold = slot.hold_kind = ""
            self.refresh(slot)
        self.journal.add(self.entries)
        note = ": no strategy enters until they are resumed; open positions are still managed" if stopped else ""
        self.journal.event("warning" if stopped else "info", "lifecycle", f"entries {word} for the whole book by the operator{note}")
        self.journal.commit()
        self.journal.changed()
        return CommandResult.success(f"entries {word} for the whole book{note}")

    def set_paused(self, strategy_id: str, paused: bool) -> CommandResult:
        rt = self.strategies.get(strategy_id)
        if rt is None:
            return CommandResult.error(f"unknown strategy {strategy_id!r}")
        word = "paused" if paused else "resumed"
        if rt.paused == paused:
            return CommandResult.error(f"{strategy_id} is already {word}")
        rt.state.paused = paused
        for slot in rt.slots.values():
            self.refresh(slot)
        self.journal.add(rt.state)
        note = "; its open positions are still managed" if paused else ""
        self.journal.event("info", "lifecycle", f"{strategy_id} {word} by the operator{note}", strategy_id=strategy_id)
        self.journal.commit()
        self.journal.changed()
        return CommandResult.success(f"{strategy_id} {word}{note}")

    def keep_managing(self, strategy_id: str) -> CommandResult:
        """The operator's answer for the open positions of a strategy that was removed from (or
        disabled in) the settings: keep managing them on their stored levels."""
        orphan = self.orphans.get(strategy_id)
        if orphan is None:
            return CommandResult.error(f"{strategy_id} has no open position left over from the settings")
        orphan[1] = "keep"
        ids = ", ".join(f"#{g.id}" for g in self.ledger.groups.values() if g.strategy_id == strategy_id)
        self.journal.event("info", "lifecycle", f"{strategy_id} ({orphan[0]}): the operator keeps managing {ids} "
                           "on their stored levels", strategy_id=strategy_id)
        self.journal.commit()
        return CommandResult.success(f"{ids} of {strategy_id} stay open, managed on their stored levels")
