"""Replay: the engine, headless, over recorded quotes, as fast as it can. The fake clock
follows the quote timestamps; the store keeps nothing (a simulation, DESIGN §8). Timed
signals (services/replay_signals.py) are handed to the engine as the clock reaches them."""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import chain
from typing import TYPE_CHECKING, Callable, Collection, Iterable, Iterator, Sequence

from .clock import FakeClock
from .config import TradingConfig
from .adapters.paper.execution import PaperExecution
from .domain import Fill, QueuedStatus, SignalStatus
from .engine import Engine
from .market import Quote, QuoteBook
from .ports import FeedHealth
from .rules.bounds import MAX_NUMBER
from .rules.precision import SettingsRules
from .rules.schedule import ScheduleConfig, next_entry, window_at
from .signal_message import act_on
from .signal_queue import QueuedSignal
from .store import MemoryStore
from .views import TradeView

if TYPE_CHECKING:
    from .replay_signals import TimedSignal

REQUIRED = ("ts", "symbol", "bid", "ask")
OPTIONAL = ("last", "bid_size", "ask_size")


MAX_TS = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc).timestamp()
"""The latest time a clock can show as a date. (A price or size above bounds.MAX_NUMBER is a
broken row too, not a market.)"""


class BadRow(ValueError):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line, self.reason = line, reason


class BadFile(ValueError):
    """The file as a whole cannot be read (not UTF-8 text): no row of it can be skipped."""


def parse_ts(raw: str) -> float:
    """Epoch seconds, or ISO-8601 (a time without an offset is UTC), from 1970 to 9999."""
    try:
        ts = float(raw)
    except ValueError:
        text = raw.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"ts {raw!r} is neither epoch seconds nor ISO-8601") from None
        ts = (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()
    if not 0.0 <= ts <= MAX_TS:  # nan too
        raise ValueError(f"ts {raw!r} is not a time from 1970 to 9999")
    return ts


def read_quotes(path: str, skip_bad: bool = False, bad_rows: list[BadRow] | None = None) -> Iterator[Quote]:
    """Quotes from a CSV with header ts,symbol,bid,ask[,last,bid_size,ask_size]. A bad row
    raises BadRow, or with skip_bad is appended to bad_rows and skipped; a file that is not
    UTF-8 text raises BadFile."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise BadRow(1, "the file is empty; expected a header ts,symbol,bid,ask")
            header = [h.strip() for h in header]
            missing = [c for c in REQUIRED if c not in header]
            unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
            if missing or unknown:
                parts = ([f"missing column(s) {', '.join(missing)}"] if missing else []) + (
                    [f"unknown column(s) {', '.join(unknown)}"] if unknown else [])
                raise BadRow(1, "; ".join(parts) + f"; expected ts,symbol,bid,ask and optionally {','.join(OPTIONAL)}")
            i_ts, i_sym, i_bid, i_ask = (header.index(c) for c in REQUIRED)
            opt = [header.index(c) if c in header else None for c in OPTIONAL]
            has_opt = any(j is not None for j in opt)
            no_extra = [0.0] * len(OPTIONAL)
            width = len(header)
            last_ts = float("-inf")
            symbols: dict[str, str] = {}  # one str object per symbol, however many quotes hold it
            new_quote = tuple.__new__  # Quote(...) without its Python-level __new__: same tuple, 3x cheaper
            max_ts, max_price = MAX_TS, MAX_NUMBER  # locals: cheaper than globals in the loop
            rows = enumerate(reader, start=2)
            while True:
                try:
                    for line, row in rows:
                        try:
                            if len(row) != width:
                                if not row:
                                    continue
                                raise ValueError(f"{len(row)} fields, the header has {width}")
                            raw_ts = row[i_ts]
                            try:
                                ts = float(raw_ts)  # epoch seconds: the common case, parsed once
                                if not 0.0 <= ts <= max_ts:
                                    raise ValueError
                            except ValueError:
                                ts = parse_ts(raw_ts)  # raises with the reason
                            try:
                                raw_bid, raw_ask = row[i_bid], row[i_ask]
                                bid = float(raw_bid) if raw_bid else 0.0
                                ask = float(raw_ask) if raw_ask else 0.0
                                if not (0.0 <= bid <= max_price and 0.0 <= ask <= max_price):  # NaN too
                                    raise ValueError
                            except ValueError:
                                bid, ask = _price(row[i_bid], "bid"), _price(row[i_ask], "ask")  # raises with the reason
                            extra = [(_price(row[j], OPTIONAL[k]) if j is not None and row[j] != "" else 0.0)
                                     for k, j in enumerate(opt)] if has_opt else no_extra
                            if bid <= 0 and ask <= 0:
                                raise ValueError("no price: bid and ask are both empty or zero")
                            if bid > 0 and ask > 0 and bid > ask:
                                raise ValueError(f"bid {bid} is above ask {ask}")
                            if ts < last_ts:
                                raise ValueError(f"ts goes backwards ({row[i_ts]} after an earlier, later quote)")
                            symbol = row[i_sym].strip()
                            if not symbol:
                                raise ValueError("empty symbol")
                            symbol = symbols.setdefault(symbol, symbol)
                        except ValueError as exc:
                            _bad(BadRow(line, str(exc)), skip_bad, bad_rows)
                            continue
                        last_ts = ts
                        yield new_quote(Quote, (symbol, ts, bid, ask, *extra))
                    return
                except csv.Error as exc:  # e.g. a field over the csv module's limit: the row is bad
                    _bad(BadRow(reader.line_num, str(exc)), skip_bad, bad_rows)
                    rows = enumerate(reader, start=reader.line_num + 1)
    except UnicodeDecodeError:
        raise BadFile(not_utf8(path)) from None


def _bad(bad: BadRow, skip_bad: bool, bad_rows: list[BadRow] | None) -> None:
    if not skip_bad:
        raise bad
    if bad_rows is not None:
        bad_rows.append(bad)


def not_utf8(path: str) -> str:
    """Where a file stops being UTF-8 text (only called once decoding it failed)."""
    with open(path, "rb") as fh:
        for line, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return f"not UTF-8 text (line {line} has the byte {raw[exc.start]:#04x}); save it as UTF-8"
    return "not UTF-8 text"


def _price(raw: str, name: str) -> float:
    if raw == "":
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} {raw!r} is not a number") from None
    if value < 0 or value != value:
        raise ValueError(f"{name} {raw!r} is negative or not a number")
    if value > MAX_NUMBER:  # inf too
        raise ValueError(f"{name} {raw!r} is too large (above {MAX_NUMBER:g})")
    return value


class ReplayStore(MemoryStore):
    """Keeps nothing, and tells the engine it needs no marks: no write-behind call per leg per quote."""

    needs_marks = False


class ReplayFeed:
    """The replay's stand-in feed: quotes are pushed by the replay loop, not by the feed. The
    loop delivers every quote of the recording, whatever its symbol, so subscribe and
    unsubscribe have nothing to change."""

    def __init__(self, symbols: Iterable[str]) -> None:
        self.symbols = tuple(symbols)
        self.health = FeedHealth(name="replay", connected=True)
        self.on_error = None  # the replay loop delivers, inside the engine's own guard

    async def start(self, on_quote) -> None:
        pass

    async def stop(self) -> None:
        pass

    def subscribe(self, symbols: Iterable[str]) -> None:
        pass

    def unsubscribe(self, symbols: Iterable[str]) -> None:
        pass

    def continue_from(self, prices: dict[str, float]) -> None:
        pass  # the recording's prices are the market


@dataclass
class ReplayResult:
    quotes: int = 0
    elapsed_s: float = 0.0
    trades: list[TradeView] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    open: list[dict] = field(default_factory=list)
    skipped: list[BadRow] = field(default_factory=list)
    signals: list[dict] = field(default_factory=list)
    """Each signal of the signals file with its outcome (see _Deliveries)."""
    skipped_signals: list[BadRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """Strategies that can never act in this replay, each with why."""

    def summary(self) -> dict:
        """P&L at the end. The drawdown is the largest fall of realized P&L from its running
        peak (starting at 0), trade by trade in the order they closed; a win is a trade with
        a P&L above 0."""
        realized = peak = drawdown = 0.0
        for t in self.trades:
            realized += t.pnl
            peak = max(peak, realized)
            drawdown = max(drawdown, peak - realized)
        wins = sum(t.pnl > 0 for t in self.trades)
        return {"trades": len(self.trades), "wins": wins,
                "win_rate": wins / len(self.trades) if self.trades else None, "realized_pnl": realized,
                "max_drawdown": drawdown, "open": len(self.open),
                "unrealized_pnl": sum((p["unrealized_pnl"] for p in self.open), 0.0)}

    def to_json(self) -> dict:
        out = {
            "quotes": self.quotes,
            "elapsed_s": round(self.elapsed_s, 6),
            "summary": self.summary(),
            "trades": [
                {"strategy": t.strategy_id, "symbol": t.symbol, "side": t.side, "qty": t.qty,
                 "entry_ts": t.entry_ts, "entry_price": t.entry_price, "exit_ts": t.exit_ts,
                 "exit_price": t.exit_price, "exit_reason": t.exit_reason, "pnl": t.pnl}
                for t in self.trades
            ],
            "fills": [
                {"order_id": f.order_id, "symbol": f.symbol, "side": f.side, "qty": f.qty, "price": f.price,
                 "fee": f.fee, "liquidity": f.liquidity, "ts": f.ts}
                for f in self.fills
            ],
            "open": self.open,
            "signals": self.signals,
            "warnings": self.warnings,
        }
        for count, listed, rows in (("skipped", "skipped_rows", self.skipped),
                                    ("skipped_signals", "skipped_signal_rows", self.skipped_signals)):
            if rows:
                out[count] = len(rows)
                out[listed] = [{"line": b.line, "reason": b.reason} for b in rows[:100]]
        return out


def run_replay(config: TradingConfig, quotes: Iterable[Quote], *,
               on_progress: Callable[[int], None] | None = None, progress_every: int = 50_000,
               skipped: list[BadRow] | None = None, signals: Sequence[TimedSignal] = ()) -> ReplayResult:
    """Run the engine over these quotes, with these signals (in time order). A BadRow from
    the reader propagates to the caller."""
    result = ReplayResult(skipped=skipped if skipped is not None else [])
    deliveries = _Deliveries(signals)
    it = iter(quotes)
    first = next(it, None)
    started = time.perf_counter()
    if first is None:
        result.signals = deliveries.results()
        result.warnings = idle_strategies(config, deliveries.strategies, (), 0.0, 0.0)
        return result
    clock = FakeClock(min(first.ts, deliveries.next_at))  # a signal before the first quote finds no price
    book, rules = QuoteBook(config.feed.max_quote_age_s), SettingsRules(config.symbols)
    client = PaperExecution(config.paper, book, clock, rules)  # answers at once: a replay is deterministic
    engine = Engine(config, clock, ReplayStore(), feed=ReplayFeed(config.symbols), client=client, book=book, rules=rules)
    engine.trade_listeners.append(result.trades.append)
    engine.fill_listeners.append(result.fills.append)
    engine.open()
    deliveries.engine, deliveries.clock = engine, clock
    next_signal = deliveries.next_at
    on_quote = engine.on_quote
    n = 0
    if on_progress is None:
        for n, q in enumerate(chain((first,), it), start=1):
            if q.ts >= next_signal:
                next_signal = deliveries.until(q.ts)
            clock.t = q.ts  # replay owns this clock: nobody sleeps on it
            on_quote(q)
    else:
        for n, q in enumerate(chain((first,), it), start=1):
            if q.ts >= next_signal:
                next_signal = deliveries.until(q.ts)
            clock.t = q.ts
            on_quote(q)
            if n % progress_every == 0:
                on_progress(n)
    result.quotes = n
    result.elapsed_s = time.perf_counter() - started
    result.open = [
        {"strategy": p.strategy_id, "symbol": p.symbol, "side": p.side, "qty": p.qty, "entry_ts": p.opened_at,
         "entry_price": p.entry, "mark": p.mark, "unrealized_pnl": p.pnl}
        for p in engine.snapshot().positions
    ]
    result.signals = deliveries.results()
    result.warnings = idle_strategies(config, deliveries.strategies, engine.book.quotes, first.ts, clock.t)
    return result


class _Deliveries:
    """The signals, handed to the engine as the replay clock reaches each one (before the
    first quote at or after its time), and followed to their outcomes: a queued signal until
    it enters, expires, is removed by an exit signal or is replaced by a newer one."""

    def __init__(self, signals: Sequence[TimedSignal]) -> None:
        self.signals = signals
        self.strategies = {s.message.strategy_id for s in signals}
        self.engine: Engine | None = None
        self.clock: FakeClock | None = None
        self._done = 0
        self._outcomes: list[dict] = []
        self._following: dict[int, tuple[QueuedSignal, dict]] = {}  # queued id -> its record and outcome entry

    @property
    def next_at(self) -> float:
        return self.signals[self._done].ts if self._done < len(self.signals) else math.inf

    def until(self, ts: float) -> float:
        """Deliver every signal due by `ts`; return when the next one is due."""
        while self._done < len(self.signals) and self.signals[self._done].ts <= ts:
            self._deliver(self.signals[self._done])
            self._done += 1
        return self.next_at

    def _deliver(self, s: TimedSignal) -> None:
        engine = self.engine
        self.clock.t = s.ts
        before = {q.id: q.signal_id for q in engine.queue.items.values()}
        result = act_on(engine, s.message, "replay", {"line": s.line})
        out = _outcome(s, SignalStatus.DONE if result.ok else SignalStatus.REJECTED, result.message)
        # A queued signal's answer only says it is queued: what becomes of it is followed on the
        # queue records it made (or took over from an older signal of its strategy, symbol and
        # timeframe).
        for q in engine.queue.items.values():
            if before.get(q.id) != q.signal_id:
                older = self._following.pop(q.id, None)
                if older is not None:
                    older[1].update(status="replaced", ts=s.ts, outcome=f"replaced by the signal on line {s.line}")
                entry = {"symbol": q.symbol, "status": QueuedStatus.QUEUED, "ts": None, "outcome": "still queued at the end"}
                out.setdefault("queue", []).append(entry)
                self._following[q.id] = (q, entry)
        self._outcomes.append(out)

    def results(self) -> list[dict]:
        """Every signal's outcome at the end of the run; a queued one's status is what became
        of it in the queue (entered, expired, removed, rejected, replaced, or still queued)."""
        for q, entry in self._following.values():
            if q.status != QueuedStatus.QUEUED:
                entry.update(status=q.status, ts=q.updated_at, outcome=q.outcome)
        for out in self._outcomes:
            if "queue" in out:  # a signal for every symbol may queue on several
                out["status"] = "/".join(dict.fromkeys(e["status"] for e in out["queue"]))
        return self._outcomes + [_outcome(s, "not_reached", "not delivered: the quotes end before it")
                                 for s in self.signals[self._done:]]


def _outcome(s: TimedSignal, status: str, outcome: str) -> dict:
    m = s.message
    return {"line": s.line, "ts": s.ts, "strategy": m.strategy_id, "symbol": m.symbol, "intent": m.intent,
            "status": status, "outcome": outcome}


def idle_strategies(config: TradingConfig, signalled: Collection[str], quoted: Collection[str],
                    first_ts: float, last_ts: float) -> list[str]:
    """A line for each strategy that can never act in a replay whose quotes (for the symbols
    `quoted`) run from first_ts to last_ts and whose signals are for the strategies `signalled`."""
    lines = []
    for sid, cfg in config.strategies.items():
        missing = [sym for sym in cfg.symbols if sym not in quoted]
        if not cfg.enabled:
            why = "it is disabled in the settings"
        elif len(missing) == len(cfg.symbols) or (cfg.basket and missing):
            why = f"the quotes file has no quotes for {', '.join(missing)}"
        elif sid in signalled:
            continue
        elif cfg.entry == "manual":
            why = 'its entry is "manual" and no signal is for it'
        elif cfg.entry == "scheduled" and not _window_within(cfg.schedule, first_ts, last_ts):
            why = f"none of its schedule's entry windows is open between {_iso(first_ts)} and {_iso(last_ts)}"
        else:
            continue
        lines.append(f"strategy {sid} can never act in this replay: {why}")
    return lines


def _window_within(schedule: ScheduleConfig, first_ts: float, last_ts: float) -> bool:
    start = next_entry(schedule, first_ts)
    return window_at(schedule, first_ts) is not None or (start is not None and start <= last_ts)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat().replace("+00:00", "Z")
