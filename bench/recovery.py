"""Recovery: restart on a database holding 10,000 open legs -> a managed book (Engine.open()).

The database is built once (bench/data/, gitignored): an engine with a MemoryStore opens
10,000 positions (100 strategies x 100 symbols), every record it would have committed is
captured, and the rows are bulk-inserted through the store's own tables. Each trial copies
that file and times, in a fresh process, Engine construction + open(), the first snapshot,
and the first quote on every symbol (all 10,000 legs marked and checked)."""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

from services.clock import FakeClock
from services.config import TradingConfig
from services.engine import Engine
from tui_trader.wiring import build_engine
from services.market import Quote
from services.store import MemoryStore, SqlStore

from workload import DATA, SYMBOLS, T0

N_STRATEGIES = 100
LEGS = N_STRATEGIES * len(SYMBOLS)
DB_VERSION = 3
BUILD_END = T0 + 10.0


def recovery_config() -> TradingConfig:
    return TradingConfig.model_validate({
        "engine": {"max_open_positions": LEGS},
        "paper": {"starting_cash": 1e9},  # 10,000 positions of 1,000 each must not hit the funds check
        "symbols": {s: {"start_price": 100.0} for s in SYMBOLS},
        "strategies": {
            f"s{j:03d}": {"symbols": list(SYMBOLS), "side": "buy" if j % 2 == 0 else "sell",
                          "sizing": {"fixed_value": 1_000.0}, "stop_loss": "20%", "target": "50%",
                          "trail_distance": "5%", "trail_activation": "1%"}
            for j in range(N_STRATEGIES)
        },
    })


def _quote(i: int, sym: str, ts: float, step: int) -> Quote:
    px = 10.0 + i + 0.01 * step
    return Quote(sym, ts, round(px * 0.9999, 6), round(px * 1.0001, 6))


class _CaptureStore(MemoryStore):
    """Keeps the latest version of every record the engine commits or marks."""

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[tuple[str, object], object] = {}

    def write(self, records) -> None:
        for rec in records:
            rec.saved = True
            self.records[(rec.KIND, rec.id)] = rec

    def touch(self, record) -> None:
        self.records[(record.KIND, record.id)] = record


def _db_path() -> Path:
    return DATA / f"recovery_{LEGS}legs_v{DB_VERSION}.db"


def recovery_db() -> Path:
    path = _db_path()
    if path.exists():
        return path
    from sqlalchemy import text

    from services.store import schema
    from services.store.sql import make_engine
    from services.store.tables import TABLES

    DATA.mkdir(parents=True, exist_ok=True)
    store = _CaptureStore()
    clock = FakeClock(T0)
    engine = build_engine(recovery_config(), clock, store)
    engine.open()
    for step in range(3):  # entries on the first quote of each symbol, then two marks
        clock.t = T0 + step
        for i, sym in enumerate(SYMBOLS):
            engine.on_quote(_quote(i, sym, clock.t, step))
    open_legs = sum(len(g.legs) for g in engine.groups.values())
    assert open_legs == LEGS, open_legs
    rows: dict[str, list[dict]] = {}
    for (kind, _), rec in store.records.items():
        rows.setdefault(kind, []).append(rec.row())
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    db = make_engine(f"sqlite:///{tmp}")
    schema.upgrade(db)  # as an engine leaves it: at the newest revision
    with db.begin() as conn:
        for kind, batch in rows.items():
            conn.execute(TABLES[kind].insert(), batch)
    with db.connect() as conn:
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        conn.execute(text("PRAGMA journal_mode=DELETE"))
    db.dispose()
    for suffix in ("-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    tmp.replace(path)
    return path


def child_restart(db_path: str) -> dict:
    """In a fresh process (imports already done): restart on a copy of the 10k-leg database."""
    cfg = recovery_config()
    with tempfile.TemporaryDirectory(prefix="tt-bench-") as tmp:
        db = Path(tmp) / "recovery.db"
        shutil.copy(db_path, db)
        clock = FakeClock(BUILD_END + 60.0)
        t0 = time.perf_counter()
        store = SqlStore(f"sqlite:///{db}")
        engine = build_engine(cfg, clock, store)
        engine.open()
        t1 = time.perf_counter()
        snap = engine.snapshot()
        t2 = time.perf_counter()
        for i, sym in enumerate(SYMBOLS):
            engine.on_quote(_quote(i, sym, clock.t, 3))
        t3 = time.perf_counter()
        legs = sum(len(g.legs) for g in engine.groups.values())
        store.close()
    return {"open_s": round(t1 - t0, 3), "first_snapshot_s": round(t2 - t1, 3),
            "first_quote_per_symbol_s": round(t3 - t2, 3), "legs_resumed": legs,
            "positions_in_snapshot": len(snap.positions)}


def section(run_child, quick: bool = False) -> dict:
    started = time.perf_counter()
    built = not _db_path().exists()
    path = recovery_db()
    build_s = time.perf_counter() - started
    trials = [run_child("recovery_restart", db=str(path)) for _ in range(2 if quick else 3)]
    for t in trials:
        if t["legs_resumed"] != LEGS:
            raise RuntimeError(f"restart resumed {t['legs_resumed']} legs, expected {LEGS}")
    return {
        "legs": LEGS,
        "db_mb": round(path.stat().st_size / 1e6, 1),
        "db_built_now_s": round(build_s, 2) if built else None,
        "trials": trials,
        "open_s_median": statistics.median(t["open_s"] for t in trials),
        "first_snapshot_s_median": statistics.median(t["first_snapshot_s"] for t in trials),
        "first_quote_per_symbol_s_median": statistics.median(t["first_quote_per_symbol_s"] for t in trials),
    }
