"""Entry and exit signals (the operator's, the CLI's, a webhook's), the pool of open
positions and the queue of entry signals waiting for a slot (DESIGN §3 pool & queue). Every
signal is recorded with its outcome."""

from __future__ import annotations

from typing import Callable

from ..amounts import px as _px
from ..domain import ExitReason, GroupStatus, QueuedStatus, Signal, SignalStatus
from ..market import Quote, QuoteBook, mark_of
from ..signal_queue import QueuedSignal, SignalQueue
from ..timers import Timers
from ..views import CommandResult
from .desk import ENTRIES_STOPPED, Desk
from .entries import Entries
from .exits import Exits, combine
from .grid import Grid
from .journal import Journal
from .ledger import Ledger


class Signals:
    def __init__(self, journal: Journal, ledger: Ledger, desk: Desk, book: QuoteBook, timers: Timers,
                 entries: Entries, exits: Exits, grid: Grid, queue: SignalQueue, pool_size: int, gap_pct: float,
                 state: Callable[[], str], quote_seq: Callable[[], int]) -> None:
        self.journal, self.ledger, self.desk, self.book, self.timers = journal, ledger, desk, book, timers
        self.entries, self.exits, self.grid, self.queue = entries, exits, grid, queue
        self.pool_size, self.gap_pct, self.state, self.quote_seq = pool_size, gap_pct, state, quote_seq
        self.clock = journal.clock
        self.groups, self.strategies = ledger.groups, desk.strategies

    def enter_now(self, strategy_id: str, symbol: str | None = None, source: str = "tui",
                  price: float | None = None, payload: dict | None = None, timeframe: str = "",
                  size: float | None = None) -> CommandResult:
        """Enter now (the operator, or a signal from the CLI). Every call is recorded as a
        Signal with its outcome; `price` is the signal's price, kept on the Signal; `size` the
        quantity instead of the strategy's sizing. With the pool full the signal is queued
        (DESIGN §3 pool & queue) and entered when a slot frees. For a DCA strategy that holds
        the symbol already, the signal is a pyramid: a new grid on the same group, no slot."""
        rt = self.strategies.get(strategy_id)
        if rt is None:
            return CommandResult.error(f"unknown strategy {strategy_id!r}")
        if self.state() != "running":
            return CommandResult.error(f"the engine is {self.state()}; entries are not taken")
        if not rt.config.enabled:
            return CommandResult.error(f"{strategy_id} is disabled in the settings")
        if rt.paused:
            return CommandResult.error(f"{strategy_id} is paused; resume it first")
        if self.desk.entries.paused:
            return CommandResult.error(f"{ENTRIES_STOPPED}; resume them first (tui-trader resume --all)")
        if symbol is not None and symbol not in rt.slots:
            return CommandResult.error(f"{strategy_id} does not trade {symbol} (it trades {', '.join(rt.slots)})")
        now = self.clock.now()
        results = []
        for slot in (rt.slots[symbol],) if symbol else tuple(rt.slots.values()):
            pyramid = slot.group is not None and rt.config.dca is not None
            signal = Signal(self.journal.next_id("signal"), rt.id, slot.symbol, rt.config.side, "pyramid" if pyramid else "entry",
                            source, now, price, payload)
            self.journal.add(signal)
            q = self.book.fresh(slot.symbol, now)
            far = self._far_from_market(slot.symbol, price, q)
            if far:
                result = CommandResult.error(far)
            elif pyramid:
                result = self.grid.pyramid(slot.group, q, price, size, source) if q is not None else CommandResult.error(
                    f"{slot.symbol}: no fresh quote (older than {self.book.max_age_s:g}s); no pyramid on a stale price")
            elif slot.group is not None:
                result = CommandResult.error(f"{slot.symbol}: {strategy_id} already holds #{slot.group.id}")
            elif rt.block:
                result = CommandResult.error(f"{strategy_id} {slot.symbol}: entries are blocked: {rt.block}")
            elif len(self.groups) >= self.pool_size:
                result = self._queue_signal(signal, timeframe, size, now)
            elif q is None:
                result = CommandResult.error(f"{slot.symbol}: no fresh quote (older than {self.book.max_age_s:g}s); not entering on a stale price")
            else:
                result = self.entries.enter(slot, q, source, price, size=size)
            signal.status = (SignalStatus.QUEUED if signal.status == SignalStatus.QUEUED
                             else SignalStatus.DONE if result.ok else SignalStatus.REJECTED)
            signal.outcome = result.message
            self.journal.add(signal)
            results.append(result)
        self.journal.commit()
        return combine(results)

    def _far_from_market(self, symbol: str, price: float | None, q: Quote | None) -> str:
        """Why a signal's price is no level to trade at (another symbol's price, a misplaced
        decimal point): further than engine.signal_price_gap_pct from the mark ("" when not)."""
        if price is None or q is None:
            return ""
        mark = mark_of(q)
        gap = abs(price / mark - 1) * 100 if mark > 0 else 0.0
        limit = self.gap_pct
        if gap <= limit:
            return ""
        return (f"{symbol}: signal price {_px(price)} is {gap:.1f}% from the market ({_px(mark)}); more than "
                f"engine.signal_price_gap_pct ({limit:g}%): refused")

    def _queue_signal(self, signal: Signal, timeframe: str, size: float | None, now: float) -> CommandResult:
        """The pool is full: the signal waits for a slot, replacing a queued one of the same
        strategy, symbol and timeframe."""
        signal.status = SignalStatus.QUEUED
        queued = self.queue.find(signal.strategy_id, signal.symbol, timeframe)
        if queued is not None:
            self.queue.replace(queued, signal.id, signal.side, signal.price, size, now)
            what = f"replaced queued signal #{queued.id} (replacement {queued.replacements})"
        else:
            queued = QueuedSignal(self.journal.next_id("queued_signal"), signal.id, signal.strategy_id, signal.symbol,
                                  timeframe, signal.side, signal.price, now, self.queue.ttl_s)
            queued.size = size
            self.queue.add(queued)
            what = f"queued as #{queued.id}"
        self.timers.at(queued.expires_at, "queue")
        self.journal.add(queued)
        rank = next(i for i, (q, _) in enumerate(self.queue.ranked(self._mark_of), 1) if q is queued)
        tf = f" {timeframe}" if timeframe else ""
        message = (f"{signal.strategy_id} {signal.symbol}{tf}: pool full ({len(self.groups)}/{self.pool_size}); "
                   f"{what}, rank {rank} of {len(self.queue)}")
        self.journal.event("info", "queue", message, strategy_id=signal.strategy_id,
                    payload={"queued": queued.id, "signal": signal.id, "rank": rank, "replacements": queued.replacements})
        return CommandResult.success(message)

    def _mark_of(self, symbol: str) -> float | None:
        q = self.book.get(symbol)
        return mark_of(q) if q is not None else None

    def tick(self, now: float) -> None:
        """Expire old signals, then give free slots to the queue in rank order."""
        for queued in self.queue.expired(now):
            self._close_queued(queued, QueuedStatus.EXPIRED, f"no slot within queue_ttl_s ({self.queue.ttl_s:g} s)", now)
        if self.state() != "running" or self.desk.entries.paused:
            return
        for queued, _ in self.queue.ranked(self._mark_of):
            if len(self.groups) >= self.pool_size:
                break
            q = self.book.fresh(queued.symbol, now)
            rt = self.strategies.get(queued.strategy_id)
            slot = rt.slots.get(queued.symbol) if rt is not None else None
            if q is None or (slot is not None and slot.exit_seq == self.quote_seq()):
                continue  # no fresh price, or its slot exited on this quote: the next in line may go first
            self._enter_queued(queued, q, now, beyond_pool=False)

    def _enter_queued(self, queued: QueuedSignal, q: Quote, now: float, beyond_pool: bool) -> CommandResult:
        rt = self.strategies.get(queued.strategy_id)
        slot = rt.slots.get(queued.symbol) if rt is not None else None
        if slot is None:
            result = CommandResult.error(f"{queued.strategy_id} no longer trades {queued.symbol}")
        elif slot.group is not None:
            result = CommandResult.error(f"{queued.strategy_id} already holds #{slot.group.id} on {queued.symbol}")
        elif rt.paused or not rt.config.enabled:
            result = CommandResult.error(f"{queued.strategy_id} is {'paused' if rt.paused else 'disabled'}")
        elif far := self._far_from_market(queued.symbol, queued.price, q):  # the market moved while it waited
            result = CommandResult.error(far)
        else:
            result = self.entries.enter(slot, q, "queue", queued.price, beyond_pool=beyond_pool, size=queued.size)
        self._close_queued(queued, QueuedStatus.ENTERED if result.ok else QueuedStatus.REJECTED, result.message, now)
        return result

    def _close_queued(self, queued: QueuedSignal, status: QueuedStatus, outcome: str, now: float) -> None:
        self.queue.close(queued, status, outcome, now)
        self.journal.add(queued)
        level = "info" if status == QueuedStatus.ENTERED else "warning"
        self.journal.event(level, "queue", f"queued signal #{queued.id} {queued.strategy_id} {queued.symbol} {status}: {outcome}",
                    strategy_id=queued.strategy_id, payload={"queued": queued.id, "status": status})

    def exit_signal(self, strategy_id: str, symbol: str | None = None, source: str = "cli",
                    price: float | None = None, payload: dict | None = None, timeframe: str = "") -> CommandResult:
        """An exit intent: drop the strategy's queued entry signals on the symbol (all its
        symbols when none is given; one timeframe when given) and close its position there.
        Recorded as a Signal of kind exit with its outcome."""
        rt = self.strategies.get(strategy_id)
        symbols = (symbol,) if symbol else tuple(rt.slots) if rt is not None else ()
        if rt is None and not any(g.strategy_id == strategy_id for g in self.groups.values()):
            return CommandResult.error(f"unknown strategy {strategy_id!r}")
        now = self.clock.now()
        signal = Signal(self.journal.next_id("signal"), strategy_id, symbol, rt.config.side if rt else "", "exit", source, now,
                        price, payload)
        results = []
        for queued in list(self.queue.items.values()):
            if queued.strategy_id == strategy_id and queued.symbol in symbols and timeframe in ("", queued.timeframe):
                self._close_queued(queued, QueuedStatus.REMOVED, f"cancelled by an exit signal (#{signal.id})", now)
                results.append(CommandResult.success(f"queued entry #{queued.id} {queued.symbol} cancelled"))
        for group in [g for g in self.groups.values() if g.strategy_id == strategy_id and g.symbol in symbols]:
            if group.status == GroupStatus.ENTERING:
                self.entries.cancel(group, f"cancelled by an exit signal (#{signal.id})")
                results.append(CommandResult.success(f"entry #{group.id} {group.symbol} cancelled"))
            else:
                results.append(self.exits.exit_position(group.id, reason=ExitReason.SIGNAL))
        result = combine(results) if results else CommandResult.error(
            f"{strategy_id} has no position or queued entry on {', '.join(symbols) or 'any symbol'} to exit")
        signal.status, signal.outcome = (SignalStatus.DONE if result.ok else SignalStatus.REJECTED), result.message
        self.journal.add(signal)
        self.journal.commit()
        return result

    def promote_signal(self, queued_id: int) -> CommandResult:
        """The operator puts a queued signal first in line for the next free slot."""
        queued = self.queue.items.get(queued_id)
        if queued is None:
            return CommandResult.error(f"no queued signal #{queued_id}")
        if queued.pinned:
            return CommandResult.error(f"#{queued_id} is already promoted")
        queued.pinned = True
        self.journal.add(queued)
        self.journal.event("info", "queue", f"queued signal #{queued_id} {queued.strategy_id} {queued.symbol} promoted by the operator",
                    strategy_id=queued.strategy_id)
        self.journal.commit()
        return CommandResult.success(f"#{queued_id} {queued.symbol} is first in line for the next free slot")

    def remove_signal(self, queued_id: int) -> CommandResult:
        queued = self.queue.items.get(queued_id)
        if queued is None:
            return CommandResult.error(f"no queued signal #{queued_id}")
        self._close_queued(queued, QueuedStatus.REMOVED, "removed by the operator", self.clock.now())
        self.journal.commit()
        return CommandResult.success(f"removed queued signal #{queued_id} {queued.strategy_id} {queued.symbol}")

    def force_add(self, queued_id: int) -> CommandResult:
        """Enter a queued signal now, beyond the pool's size (the operator confirmed it)."""
        queued = self.queue.items.get(queued_id)
        if queued is None:
            return CommandResult.error(f"no queued signal #{queued_id}")
        now = self.clock.now()
        q = self.book.fresh(queued.symbol, now)
        if q is None:
            return CommandResult.error(f"{queued.symbol}: no fresh quote; not entering on a stale price")
        result = self._enter_queued(queued, q, now, beyond_pool=True)
        self.journal.commit()
        return result
