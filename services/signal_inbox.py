"""Signals from another process: `tui-trader signal` posts a row into the `signal_inbox`
table; the running engine (TUI or headless) polls it, checks the row against its settings
again (services/signal_message.py: they may have changed since it was posted), acts on it —
an entry through `Engine.enter_now`, an exit through `Engine.exit_signal`, as every signal
source does (signal_message.act_on) — and records the outcome on the row (the polling
itself: services/inbox.py).

The engine allocates Signal ids itself, so another process never inserts into `signals`:
post_signal() inserts an inbox row instead.

Started after the engine, the inbox handles everything pending at once (signals posted while
no engine ran, unless older than `signal_ttl_s`), then polls every `poll_interval_s`.

At most once: a row whose engine Signal (payload `inbox_id`) is already in the database —
the engine acted, then the process died before the row was marked — is marked from that
Signal instead of being acted on again. The SQL is the store's (services/store/inboxes.py)."""

from __future__ import annotations

import logging

from .domain import SignalStatus
from .inbox import Inbox
from .ports import EngineCommands
from .signal_message import SignalMessage, act_on, check_signal
from .store.inboxes import InboxStatus, SignalOutcome, pending_signals, post_row, read_row, record_signal_outcomes
from .store.sql import Database

log = logging.getLogger("tui_trader.signal_inbox")

SOURCE = "cli"
CLOCK_SKEW_S = 60.0
"""Signals are matched to inbox rows among those received at most this long before the row
was created (the poster's and the engine's clocks may differ a little)."""


# -- the poster's side (another process) ------------------------------------------------------


def post_signal(url: str, message: SignalMessage, now: float, source: str = SOURCE) -> int:
    """Record one pending signal (read and checked by services.signal_message) and return its
    inbox id. Raises StoreError if the database cannot be written."""
    return post_row(url, "signal", {
        "strategy_id": message.strategy_id, "symbol": message.symbol, "side": message.side, "price": message.price,
        "intent": message.intent, "timeframe": message.timeframe, "size": message.size,
        "source": source, "created_at": now, "status": InboxStatus.PENDING, "outcome": ""})


def post_rejected(url: str, strategy_id: str, problems: list[str], now: float, source: str = SOURCE) -> int:
    """Record a signal refused before any engine saw it (unreadable, or not for these
    settings) with its reasons, so that it is on record like the ones the engine rejects."""
    return post_row(url, "signal", {"strategy_id": strategy_id, "source": source, "created_at": now,
                                    "status": InboxStatus.REJECTED, "outcome": "; ".join(problems), "taken_at": now})


def _message_of(row: dict) -> SignalMessage:
    return SignalMessage(row["strategy_id"], row["intent"], row["symbol"], row["side"], row["price"],
                         row["timeframe"] or "", row["size"])


def read_inbox_row(db: Database, inbox_id: int) -> dict | None:
    return read_row(db, "signal", inbox_id)


# -- the engine's side ------------------------------------------------------------------------


class SignalInbox(Inbox):
    """Engine attachment: takes the signals other processes post (see the module doc)."""

    label = "signal inbox"
    unrecorded_at_stop = "the next start matches them to the engine's Signal rows"
    engine: EngineCommands  # bound before the first poll

    def __init__(self, url: str, poll_interval_s: float = 0.5, ttl_s: float = 300.0,
                 startup_grace_s: float | None = None) -> None:
        super().__init__(url, poll_interval_s, log)
        self.ttl_s = ttl_s
        self.startup_grace_s = startup_grace_s
        """After the start, a signal for a symbol with no fresh quote yet waits this long
        (engine clock) for the feed's first quotes; default: feed.max_quote_age_s."""
        self._bound_at = 0.0

    def bind(self, engine: EngineCommands) -> None:
        super().bind(engine)
        self._bound_at = engine.clock.now()
        if self.startup_grace_s is None:
            self.startup_grace_s = engine.config.feed.max_quote_age_s

    def _decide(self, row: dict, seen: dict[int, list[dict]]) -> SignalOutcome | None:
        """On the loop: what to do with one pending row (None: leave it pending for now)."""
        eng = self.engine
        if eng.state != "running":
            return None  # stopping: it stays pending for the next start
        signals = seen.get(row["id"])
        now = eng.clock.now()
        message = _message_of(row)
        iid, sid, symbol = row["id"], message.strategy_id, message.symbol
        if signals:  # the engine already acted on it (the row was not marked before a crash)
            done = any(s["status"] == SignalStatus.DONE for s in signals)
            outcome = "; ".join(s["outcome"] or f"engine signal #{s['id']} is {s['status']}" for s in signals)
            return SignalOutcome(iid, InboxStatus.TAKEN if done else InboxStatus.REJECTED, outcome, now,
                                 ",".join(str(s["id"]) for s in signals))
        age = now - row["created_at"]
        if age > self.ttl_s:
            eng.note("warning", "signal", f"signal #{iid} ({sid}) expired after {age:.0f} s unhandled",
                              strategy_id=sid, payload={"inbox_id": iid})
            return SignalOutcome(iid, InboxStatus.EXPIRED, f"expired after {age:.0f} s (signal_ttl_s is {self.ttl_s:g} s)", now)
        problems = check_signal(message, eng.config)
        if problems:
            problem = "; ".join(problems)
            eng.note("warning", "signal", f"signal #{iid} rejected: {problem}",
                              strategy_id=sid, payload={"inbox_id": iid})
            return SignalOutcome(iid, InboxStatus.REJECTED, problem, now)
        rt = eng.strategies[sid]
        symbols = [symbol] if symbol else list(rt.config.symbols)
        if now - self._bound_at < self.startup_grace_s and any(eng.book.fresh(s, now) is None for s in symbols):
            return None  # just started: wait for the feed's first quotes before deciding
        try:
            result = act_on(eng, message, row["source"] or SOURCE, {"inbox_id": iid, "posted_at": row["created_at"]})
        except Exception as exc:  # a bug in the engine: recorded on the row, never retried in a loop
            log.exception("signal #%d (%s): the engine failed to handle it", iid, sid)
            return SignalOutcome(iid, InboxStatus.REJECTED, f"internal error in the engine: {exc!r}; see the log file", now,
                                 strategy_id=sid, find_signals=True)
        log.info("signal #%d (%s %s%s): %s", iid, message.intent, sid, f" {symbol}" if symbol else "", result.message)
        return SignalOutcome(iid, InboxStatus.TAKEN if result.ok else InboxStatus.REJECTED, result.message, now, strategy_id=sid,
                             find_signals=True)

    # -- database (worker thread) ---------------------------------------------------------

    def _read_pending(self) -> tuple[list[dict], dict[int, list[dict]]]:
        """Pending rows (oldest first) and, for those the engine already acted on, its Signal rows."""
        return pending_signals(self._database(), CLOCK_SKEW_S)

    def _write(self, batch: list[SignalOutcome]) -> None:
        record_signal_outcomes(self._database(), batch, CLOCK_SKEW_S)
