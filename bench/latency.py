"""Quote -> exit decision inside the engine (MemoryStore), and quote -> committed exit order
with a real SqlStore on a temp SQLite file. Both on the 100-position replay workload."""

from __future__ import annotations

import itertools
from array import array
import tempfile
import time
from pathlib import Path

from services.clock import FakeClock
from services.domain import Order
from services.engine import Engine
from tui_trader.wiring import build_engine
from services.replay import ReplayFeed, read_quotes
from services.store import MemoryStore, SqlStore

from workload import quotes_csv, trailing_config


def percentiles(samples_ns) -> dict:
    s = sorted(samples_ns)
    if not s:
        return {"n": 0}

    def pct(p: float) -> float:
        return round(s[min(len(s) - 1, int(p / 100.0 * len(s)))] / 1_000.0, 1)

    return {"n": len(s), "p50_us": pct(50), "p90_us": pct(90), "p99_us": pct(99), "max_us": round(s[-1] / 1_000.0, 1)}


def _engine(store, first_ts: float, positions: int = 100) -> tuple[Engine, FakeClock]:
    cfg = trailing_config(positions)
    clock = FakeClock(first_ts)
    engine = build_engine(cfg, clock, store, feed=ReplayFeed(cfg.symbols))
    engine.open()
    return engine, clock


def exit_decision(max_quotes: int = 1_000_000) -> dict:
    """Time every on_quote call; keep those that decided an exit. `decision` is the time from
    the call's start to the exit decision (Exits.decide entered); `on_quote` is the whole call,
    which with the paper broker also fills the exit and closes the position."""
    quotes = read_quotes(str(quotes_csv()))
    first = next(quotes)
    engine, clock = _engine(MemoryStore(), first.ts)
    decided: list[int] = []
    decide = engine.exits.decide

    def timed_decide(group, reason, price, *rest):
        decided.append(time.perf_counter_ns())
        decide(group, reason, price, *rest)

    engine.exits.decide = timed_decide  # instance attribute: shadows the method for this engine only
    to_decision, whole_call, quiet = [], [], array("q")
    on_quote, now_ns = engine.on_quote, time.perf_counter_ns
    for i, q in enumerate(itertools.chain((first,), quotes)):
        if i >= max_quotes:
            break
        clock.t = q.ts
        n = len(decided)
        t0 = now_ns()
        on_quote(q)
        t1 = now_ns()
        if len(decided) > n:
            to_decision.append(decided[n] - t0)
            whole_call.append(t1 - t0)
        else:
            quiet.append(t1 - t0)
    if not to_decision:  # e.g. the engine caught an error in the timing shim: say so, not "-"
        raise RuntimeError("the latency workload decided no exit; see the log for the engine's alerts")
    return {"decision": percentiles(to_decision), "on_quote_with_exit": percentiles(whole_call),
            "on_quote_without_exit": percentiles(quiet)}  # entries, level commits and ticks included


def committed_exit(max_exits: int = 600, max_seconds: float = 20.0) -> dict:
    """With a SqlStore (WAL, write-behind marks running): from the start of on_quote to the
    return of the store.write whose commit carries the exit Order row."""
    with tempfile.TemporaryDirectory(prefix="tt-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'latency.db'}"
        store = SqlStore(url, flush_interval_s=1.0)
        quotes = read_quotes(str(quotes_csv()))
        first = next(quotes)
        engine, clock = _engine(store, first.ts)
        store.start()
        committed: list[int] = []
        write = store.write
        commits = [0]

        def timed_write(records):
            records = list(records)
            write(records)
            commits[0] += 1
            if any(isinstance(r, Order) and r.purpose == "exit" and r.status == "new" for r in records):
                committed.append(time.perf_counter_ns())

        store.write = timed_write  # instance attribute: the engine calls self.store.write
        samples, quiet = [], array("q")
        on_quote, now_ns = engine.on_quote, time.perf_counter_ns
        started = time.perf_counter()
        n_quotes = 0
        for i, q in enumerate(itertools.chain((first,), quotes)):
            clock.t = q.ts
            n = len(committed)
            t0 = now_ns()
            on_quote(q)
            t1 = now_ns()
            n_quotes += 1
            if len(committed) > n:
                samples.append(committed[n] - t0)
            else:
                quiet.append(t1 - t0)
            if len(samples) >= max_exits or time.perf_counter() - started > max_seconds:
                break
        elapsed = time.perf_counter() - started
        store.close()
        return {"committed_exit_order": percentiles(samples), "on_quote_without_exit": percentiles(quiet),
                "quotes": n_quotes, "commits": commits[0], "elapsed_s": round(elapsed, 2),
                "quotes_per_s": round(n_quotes / elapsed)}


def section(run_child, quick: bool = False) -> dict:
    return {"memory_store": exit_decision(300_000 if quick else 1_000_000),
            "sql_store": committed_exit(max_exits=200 if quick else 600, max_seconds=8 if quick else 20)}
