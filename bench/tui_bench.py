"""The TUI, headless (App.run_test), under load: 50 simulated symbols at 40 quotes/s each
(2,000 quotes/s), 10 strategies holding a position on every symbol (500 open positions),
a real SqlStore on a temp database. Measures start -> first frame, event-loop lag (a task
sleeping 10 ms records its overshoot) and frames rendered per second."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from services.clock import RealClock
from services.config import TradingConfig
from tui_trader.wiring import build_engine
from services.store import SqlStore

N_SYMBOLS = 50
N_STRATEGIES = 10
TICK_S = 0.025  # per symbol: 50 / 0.025 = 2,000 quotes/s
POSITIONS = N_SYMBOLS * N_STRATEGIES


def load_config() -> TradingConfig:
    symbols = [f"L{i:02d}" for i in range(N_SYMBOLS)]
    return TradingConfig.model_validate({
        "engine": {"max_open_positions": 1_000},
        "feed": {"seed": 11, "max_quote_age_s": 5.0},
        "paper": {"slippage_bps": 1, "maker_fee_bps": 1, "taker_fee_bps": 4, "starting_cash": 1_000_000_000.0},
        "symbols": {s: {"start_price": 50.0 + 10 * i, "volatility": 1.0, "spread_bps": 2, "tick_interval_s": TICK_S}
                    for i, s in enumerate(symbols)},
        "strategies": {  # wide exits: the positions stay open, every quote still marks and checks them
            f"w{j}": {"symbols": symbols, "side": "buy" if j % 2 == 0 else "sell", "sizing": {"fixed_value": 1_000.0},
                      "stop_loss": "30%", "target": "30%", "trail_distance": "20%"}
            for j in range(N_STRATEGIES)
        },
    })


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100.0 * len(s)))]


class _LagProbe:
    """Sleeps 10 ms in a loop and records how late it wakes up."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        sleep, now = asyncio.sleep, time.perf_counter
        while True:
            t = now()
            await sleep(0.010)
            self.samples.append(now() - t - 0.010)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    def summary(self) -> dict:
        ms = [s * 1000.0 for s in self.samples]
        if not ms:
            return {"n": 0}
        return {"n": len(ms), "p50_ms": round(_pct(ms, 50), 2), "p99_ms": round(_pct(ms, 99), 2),
                "max_ms": round(max(ms), 2), "mean_ms": round(statistics.fmean(ms), 2)}


async def _measure(spawned_at: float, seconds: float) -> dict:
    imported = time.time()
    try:
        from tui_trader.app import make_app
    except ImportError as exc:
        return {"pending": f"tui_trader.app.make_app is not available yet ({exc})"}
    app_imported = time.time()
    cfg = load_config()
    with tempfile.TemporaryDirectory(prefix="tt-bench-") as tmp:
        store = SqlStore(f"sqlite:///{Path(tmp) / 'tui.db'}", flush_interval_s=1.0)
        engine = build_engine(cfg, RealClock(), store)
        frames: list[float] = []
        t_start = time.perf_counter()
        app = make_app(None, engine)
        display = getattr(app, "_display", None)
        if display is not None:
            def counting_display(screen, renderable):  # every frame the compositor produced
                if renderable is not None:
                    frames.append(time.perf_counter())
                display(screen, renderable)

            app._display = counting_display  # instance attribute: shadows Textual's method
        started_at: list[float] = []
        engine_start = engine.start

        async def timed_start():  # the app starts the engine on mount
            await engine_start()
            started_at.append(time.perf_counter())

        engine.start = timed_start
        out: dict = {"spawn_to_imports_s": round(imported - spawned_at, 3),
                     "app_module_import_s": round(app_imported - imported, 3)}
        async with app.run_test(size=(100, 30)) as pilot:
            out["run_test_ready_s"] = round(time.perf_counter() - t_start, 3)
            deadline = time.perf_counter() + 5.0
            while not frames and time.perf_counter() < deadline:
                await asyncio.sleep(0.005)
            if frames:
                out["first_frame_s"] = round(frames[0] - t_start, 3)
                out["spawn_to_first_frame_s"] = round(time.time() - (time.perf_counter() - frames[0]) - spawned_at, 3)
            if started_at:
                out["engine_started_s"] = round(started_at[0] - t_start, 3)
                later = [f for f in frames if f >= started_at[0]]
                if later:
                    out["first_frame_with_engine_running_s"] = round(later[0] - t_start, 3)
            started_by_app = engine.state == "running"
            if not started_by_app:
                await asyncio.sleep(0.5)
                started_by_app = engine.state == "running"
            if not started_by_app:
                await engine.start()
            out["engine_started_by_app"] = started_by_app
            t_warm = time.perf_counter()
            while sum(1 for g in engine.groups.values() if g.status == "open") < POSITIONS:
                if time.perf_counter() - t_warm > 30:
                    break
                await asyncio.sleep(0.05)
            out["seconds_to_all_positions_open"] = round(time.perf_counter() - t_warm, 2)
            out["open_positions"] = sum(1 for g in engine.groups.values() if g.status == "open")

            windows = {}
            screens = [("default", None), ("positions", "3"), ("exits", "4"), ("logs", "6")]
            for name, key in screens:
                if key is not None:
                    await pilot.press(key)
                    await asyncio.sleep(0.3)
                probe = _LagProbe()
                quotes0, frames0, t0 = engine.quotes_seen, len(frames), time.perf_counter()
                probe.start()
                await asyncio.sleep(seconds / len(screens))
                await probe.stop()
                dt = time.perf_counter() - t0
                windows[name] = {
                    "screen": type(app.screen).__name__,
                    "seconds": round(dt, 2),
                    "quotes_per_s": round((engine.quotes_seen - quotes0) / dt),
                    "frames_per_s": round((len(frames) - frames0) / dt, 1) if display is not None else None,
                    "loop_lag": probe.summary(),
                }
            out["windows"] = windows
            lag_all = [w["loop_lag"] for w in windows.values()]
            out["loop_lag_p99_ms_worst"] = max(x.get("p99_ms", 0.0) for x in lag_all)
            out["loop_lag_p50_ms_worst"] = max(x.get("p50_ms", 0.0) for x in lag_all)
            out["open_positions_at_end"] = sum(1 for g in engine.groups.values() if g.status == "open")
            out["db_ok"] = store.ok
        if engine.state != "stopped":
            await engine.stop()
    return out


def child_tui(spawned_at: float, seconds: float = 20.0) -> dict:
    return asyncio.run(_measure(spawned_at, seconds))


def section(run_child, quick: bool = False) -> dict:
    return run_child("tui_load", spawned_at=time.time(), seconds=8.0 if quick else 20.0)
