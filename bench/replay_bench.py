"""Replay throughput (engine only and end to end from the CSV), the bare-loop baseline it is
compared with, the share of it spent in Engine.tick, and the replay's peak RSS (measured in a
child process); for the DESIGN §8 file (a quote every 10 ms) and the same number of quotes ten
times denser (1 ms): the cost per quote must not depend on the density."""

from __future__ import annotations

import gc
import resource
import time
from collections import Counter
from contextlib import contextmanager

from services.engine import Engine
from services.market import Quote
from services.replay import ReplayResult, read_quotes, run_replay

from workload import N_SYMBOLS, SPACINGS, quotes_csv, trailing_config

POSITIONS = (10, 100, 1_000)


@contextmanager
def tick_time():
    """Engine.tick wrapped to add up its calls and seconds (two clock reads a call: noise)."""
    spent = {"calls": 0, "s": 0.0}
    tick, clock = Engine.tick, time.perf_counter

    def timed(self):
        started = clock()
        try:
            tick(self)
        finally:
            spent["s"] += clock() - started
            spent["calls"] += 1

    Engine.tick = timed
    try:
        yield spent
    finally:
        Engine.tick = tick


def _timed_replay(positions: int, quotes) -> dict:
    """run_replay (the path of the `replay` command) with its figures and its check."""
    with tick_time() as spent:
        started = time.perf_counter()
        result = run_replay(trailing_config(positions), quotes)
        elapsed = time.perf_counter() - started
    return {
        "positions": positions,
        "quotes": result.quotes,
        "elapsed_s": round(elapsed, 3),
        "quotes_per_s": round(result.quotes / elapsed),
        "ticks": spent["calls"],
        "tick_share": round(spent["s"] / elapsed, 4),
        "check": check_trades(result, positions),
    }


def baseline_loop(quotes: list[Quote], distance: float = 0.005) -> tuple[float, int]:
    """The DESIGN §8 yardstick: a bare Python loop that only tracks a trailing level per
    symbol (every symbol long, re-armed at the exit price). Returns (seconds, exits)."""
    keep = 1.0 - distance
    peak: dict[str, float] = {}
    level: dict[str, float] = {}
    exits = 0
    started = time.perf_counter()
    for q in quotes:
        sym = q.symbol
        mark = (q.bid + q.ask) * 0.5
        p = peak.get(sym)
        if p is None:
            peak[sym], level[sym] = mark, mark * keep
        elif mark > p:
            peak[sym] = mark
            lv = mark * keep
            if lv > level[sym]:
                level[sym] = lv
        elif mark <= level[sym]:
            exits += 1
            peak[sym], level[sym] = mark, mark * keep
    return time.perf_counter() - started, exits


def peak_rss_mb() -> float:
    """This process's peak resident set. VmHWM belongs to the current address space, so unlike
    ru_maxrss it does not inherit the parent's peak through fork + exec (Python 3.11 forks)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def check_trades(result: ReplayResult, positions: int) -> dict:
    """Evidence that the replay traded: exits by the trailing stop, re-entries after them, and
    every slot holding a position at the end. These positions are single legs, closed whole: a
    trade is one position's round trip (a DCA layer's close would be a trade of its own)."""
    reasons = Counter(t.exit_reason for t in result.trades)
    entries = len(result.trades) + len(result.open)
    out = {
        "trades": len(result.trades),
        "exit_reasons": dict(reasons),
        "entries": entries,
        "re_entries": entries - positions,
        "open_at_end": len(result.open),
        "fills": len(result.fills),
        "realized_pnl": round(sum(t.pnl for t in result.trades), 2),
    }
    problems = []
    if not reasons.get("trailing_stop"):
        problems.append("no exit by trailing_stop")
    if set(reasons) - {"trailing_stop"}:
        problems.append(f"unexpected exit reasons {dict(reasons)}")
    if out["re_entries"] <= 0:
        problems.append("no re-entry after an exit")
    if len(result.open) != positions:
        problems.append(f"{len(result.open)} positions open at the end, expected {positions}")
    if len(result.fills) != entries + len(result.trades):
        problems.append(f"{len(result.fills)} fills for {entries} entries and {len(result.trades)} exits")
    out["ok"] = not problems
    out["problems"] = problems
    return out


def engine_only(quotes: list[Quote], positions: int, repeats: int = 1) -> dict:
    """run_replay over the pre-parsed quotes: the best of `repeats` runs."""
    runs = []
    for _ in range(repeats):
        gc.collect()
        runs.append(_timed_replay(positions, quotes))
    return min(runs, key=lambda r: r["elapsed_s"])


def child_end_to_end(spacing: str, positions: int) -> dict:
    """In a fresh process: read_quotes + run_replay straight from the CSV (streamed, as the
    `replay` command does), and the process's peak RSS."""
    path = quotes_csv(spacing)
    rss_before = peak_rss_mb()
    out = _timed_replay(positions, read_quotes(str(path)))
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    out["rss_after_imports_mb"] = round(rss_before, 1)
    return out


def child_engine_only_rss(positions: int) -> dict:
    """In a fresh process: the whole file parsed into a list first, then replayed. Peak RSS
    here is mostly the list of a million quotes, not the engine."""
    path = quotes_csv()
    quotes = list(read_quotes(str(path)))
    rss_loaded = peak_rss_mb()
    result = run_replay(trailing_config(positions), quotes)
    rss = peak_rss_mb()
    return {"positions": positions, "quotes": result.quotes, "peak_rss_mb": round(rss, 1),
            "rss_with_quote_list_mb": round(rss_loaded, 1)}


def workload(spacing: str, run_child, quick: bool) -> dict:
    """One file: parsing alone, the baseline loop, the engine over the parsed list for each
    number of positions, then end to end in fresh processes."""
    path = quotes_csv(spacing)
    started = time.perf_counter()
    quotes = list(read_quotes(str(path)))
    parse_s = time.perf_counter() - started
    n = len(quotes)
    assert len({q.symbol for q in quotes}) == N_SYMBOLS
    gc.collect()
    gc.freeze()  # the list of a million quotes is the benchmark's, not the engine's: keep it out of GC passes

    base_s, base_exits = min(baseline_loop(quotes) for _ in range(3))
    baseline = {"elapsed_s": round(base_s, 3), "quotes_per_s": round(n / base_s), "exits": base_exits}
    runs = {}
    for positions in POSITIONS:
        runs[positions] = engine_only(quotes, positions, repeats=1 if quick or positions == 1_000 else 2)
        runs[positions]["vs_baseline"] = round(runs[positions]["quotes_per_s"] / baseline["quotes_per_s"], 4)
    market_s = quotes[-1].ts - quotes[0].ts
    del quotes
    gc.unfreeze()
    gc.collect()

    e2e = {p: run_child("replay_e2e", spacing=spacing, positions=p) for p in ((100,) if quick else (100, 1_000))}
    for r in e2e.values():
        r["vs_baseline"] = round(r["quotes_per_s"] / baseline["quotes_per_s"], 4)
    return {
        "file": path.name,
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "spacing_s": SPACINGS[spacing],
        "market_s": round(market_s),
        "parse_only": {"elapsed_s": round(parse_s, 3), "quotes_per_s": round(n / parse_s)},
        "baseline_loop": baseline,
        "engine_only": {str(k): v for k, v in runs.items()},
        "end_to_end": {str(k): v for k, v in e2e.items()},
    }


def section(run_child, quick: bool = False) -> dict:
    """Everything for the replay figures; run in its own process by run.py."""
    return {"workloads": {spacing: workload(spacing, run_child, quick) for spacing in SPACINGS},
            "engine_only_with_list_rss": run_child("replay_list_rss", positions=100)}
