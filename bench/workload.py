"""The benchmark workloads (DESIGN §8): seeded, deterministic quote data and the configs that
trade it. Generated data lives under bench/data/ (gitignored) and is rebuilt when missing."""

from __future__ import annotations

import csv
import math
import os
import random
from pathlib import Path

from services.config import TradingConfig
from services.market import Quote

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
N_QUOTES = 1_000_000
N_SYMBOLS = 100
SIGMA = 0.0003  # log-return standard deviation per quote of a symbol (3 bp)
SPREAD_BPS = 1.0
SEED = 20_260_101
FORMAT_VERSION = 1  # bump when a generator changes: the files are then rebuilt

SYMBOLS = tuple(f"S{i:03d}" for i in range(N_SYMBOLS))

SPACINGS = {"10ms": 0.010, "1ms": 0.001}
"""Seconds between two quotes of the file. 10 ms is DESIGN §8's workload: each second quotes
every symbol once, in a shuffled order (~10,000 s of market). 1 ms packs the same number of
quotes ten times denser, each to a symbol drawn at random (~17 minutes). Each symbol gets
~10,000 quotes of 3 bp either way, so both trade alike: only the density differs."""


def quotes_csv(spacing: str = "10ms", n: int = N_QUOTES) -> Path:
    """The replay file (ts,symbol,bid,ask), generated on first use."""
    path = DATA / f"quotes_{n}_{N_SYMBOLS}sym_{spacing}_v{FORMAT_VERSION}_seed{SEED}.csv"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(("ts", "symbol", "bid", "ask"))
            w.writerows(_rows(n, spacing))
        os.replace(tmp, path)
    return path


def _rows(n: int, spacing: str):
    """A geometric random walk per symbol, one step per quote of that symbol."""
    rng = random.Random(SEED)
    price = [rng.uniform(10.0, 1_000.0) for _ in SYMBOLS]
    half = SPREAD_BPS / 20_000.0
    gauss, randrange, exp = rng.gauss, rng.randrange, math.exp
    dt = SPACINGS[spacing]
    order = list(range(N_SYMBOLS))
    for i in range(n):
        if spacing == "1ms":
            k = randrange(N_SYMBOLS)
        else:
            if i % N_SYMBOLS == 0:
                rng.shuffle(order)
            k = order[i % N_SYMBOLS]
        p = price[k] = price[k] * exp(gauss(0.0, SIGMA))
        yield (f"{T0 + i * dt:.3f}", SYMBOLS[k], f"{p * (1 - half):.6f}", f"{p * (1 + half):.6f}")


def load_quotes(path: Path) -> list[Quote]:
    """The file as a list of Quote, parsed by the product's own reader."""
    from services.replay import read_quotes

    return list(read_quotes(str(path)))


def trailing_config(positions: int, *, max_open: int | None = None) -> TradingConfig:
    """Every traded symbol long with a 0.5 % trailing stop armed at entry, re-entering after each
    exit with no cooldown. positions = 10 (10 symbols of the 100), 100 (all of them), or
    1,000 (10 strategies on all 100 symbols)."""
    if positions <= N_SYMBOLS:
        strategies = {"trail": SYMBOLS[:positions]}
    else:
        per = positions // N_SYMBOLS
        assert per * N_SYMBOLS == positions, positions
        strategies = {f"trail{j}": SYMBOLS for j in range(per)}
    return TradingConfig.model_validate({
        "engine": {"max_open_positions": max_open or max(positions, 10)},
        "feed": {"max_quote_age_s": 5.0},
        # The workload measures trailing stops and re-entries, not the funds check: cash enough
        # for every position at once.
        "paper": {"starting_cash": 1_000_000_000.0},
        "symbols": {s: {"start_price": 100.0} for s in SYMBOLS},
        "strategies": {
            sid: {"symbols": list(syms), "side": "buy", "sizing": {"fixed_value": 1_000.0},
                  "trail_distance": "0.5%", "trail_activation": 0, "reentry": True, "cooldown_s": 0}
            for sid, syms in strategies.items()
        },
    })
