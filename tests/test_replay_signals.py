"""`replay --signals`: timed TradingView-style signals fed into a replay (entries, pyramids,
exits, the queue, sizes, refusals), bad signal rows, the never-acting warning and the P&L
summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from services.config import TradingConfig
from services.market import Quote
from services.replay import BadRow, idle_strategies, run_replay
from services.replay_signals import TimedSignal, read_signals
from services.signal_message import read_signal
from tests.conftest import T0, config

GRID = {"symbols": ["BTCUSDT"], "side": "buy", "entry": "manual", "sizing": {"fixed_value": 200},
        "dca": {"max_pyramids": 1, "layers": [{"gap_pct": 0, "weight": 1, "tp_pct": 50},
                                              {"gap_pct": 10, "weight": 1, "tp_pct": 50}]}}
MANUAL = {"symbols": ["ETHUSDT"], "side": "buy", "entry": "manual", "sizing": {"fixed_qty": 1}}


def with_engine(cfg: TradingConfig, **engine) -> TradingConfig:
    return cfg.model_copy(update={"engine": cfg.engine.model_copy(update=engine)})


def quotes(prices: dict[str, list[float]]) -> list[Quote]:
    """One quote a second per symbol from T0 (bid = ask: fills and marks at that price)."""
    n = len(next(iter(prices.values())))
    return [Quote(sym, T0 + i, px[i], px[i]) for i in range(n) for sym, px in prices.items()]


def timed(cfg: TradingConfig, rows: list[tuple[float, str, str]]) -> list[TimedSignal]:
    """Signals (ts, strategy, action) as if read from lines 2, 3, ... of a signals file."""
    return [TimedSignal(line, ts, read_signal({"strategy": sid, "action": action}, cfg))
            for line, (ts, sid, action) in enumerate(rows, start=2)]


def signals_file(tmp_path: Path, text: str, name: str = "signals.csv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def by_line(result) -> dict[int, dict]:
    return {s["line"]: s for s in result.signals}


def test_signals_drive_a_pyramid_an_exit_and_the_queue(tmp_path):
    # Pool of 1. The grid enters, b's signal (size 3) finds the pool full and waits; a second
    # grid signal is a pyramid (no slot), a third is refused (max_pyramids); the grid's exit
    # signal frees the slot and b enters from the queue on the next quote.
    cfg = with_engine(config(grid=GRID, b=MANUAL), max_open_positions=1)
    path = signals_file(tmp_path, f"""ts,strategy,symbol,action,price,size
{T0 + 1},grid,BTCUSDT,buy,,
{T0 + 2},b,ETHUSDT,buy,,3
{T0 + 3},grid,BTCUSDT,buy,,
{T0 + 4},grid,BTCUSDT,buy,,
{T0 + 5},grid,BTCUSDT,sell,,
{T0 + 99},b,ETHUSDT,exit,,
""")
    result = run_replay(cfg, quotes({"BTCUSDT": [100, 100, 100, 100, 110, 110, 110],
                                     "ETHUSDT": [50, 50, 50, 50, 50, 50, 51]}),
                        signals=read_signals(path, cfg))
    s = by_line(result)
    assert s[2]["status"] == "done" and "entered buy 1 BTCUSDT at 100.00" in s[2]["outcome"]
    assert s[4]["status"] == "done" and s[4]["outcome"].startswith("pyramid 1 of 1 on #1 BTCUSDT")
    assert s[5]["status"] == "rejected" and "max_pyramids (1) reached" in s[5]["outcome"]
    assert s[6]["status"] == "done" and s[6]["intent"] == "exit"  # a sell for a long strategy is its exit
    assert s[3]["status"] == "entered" and "pool full (1/1)" in s[3]["outcome"]
    assert s[3]["queue"] == [{"symbol": "ETHUSDT", "status": "entered", "ts": T0 + 5,
                              "outcome": "entered buy 3 ETHUSDT at 50.00 (#2)"}]
    assert s[7]["status"] == "not_reached"  # after the last quote
    # the grid's first layer (1 at 100) and its pyramid's (1 at 100), both closed at 110
    assert [(t.strategy_id, t.qty, t.entry_price, t.exit_price, t.exit_reason) for t in result.trades] == [
        ("grid", 2.0, 100.0, 110.0, "signal")]
    assert [(o["strategy"], o["qty"], o["entry_ts"], o["unrealized_pnl"]) for o in result.open] == [
        ("b", 3.0, T0 + 5, 3.0)]


def test_a_signal_acts_before_the_first_quote_at_or_after_its_time():
    cfg = config(b=MANUAL)
    signals = timed(cfg, [(T0 - 5, "b", "buy"), (T0 + 1, "b", "buy"), (T0 + 3, "b", "exit"), (T0 + 3, "b", "buy")])
    result = run_replay(cfg, quotes({"ETHUSDT": [50, 51, 52, 53]}), signals=signals)
    # before the first quote there is no price; the entry at T0+1 fills on the quote of T0 (50),
    # the exit at T0+3 on the quote of T0+2 (52), and the entry at the same ts comes after it
    # (file order) and enters again at 52
    assert [(s["status"], s["outcome"][:16]) for s in result.signals] == [
        ("rejected", "ETHUSDT: no fres"), ("done", "entered buy 1 ET"), ("done", "closed #1 ETHUSD"),
        ("done", "entered buy 1 ET")]
    assert [(t.entry_price, t.exit_price, t.exit_ts) for t in result.trades] == [(50.0, 52.0, T0 + 3)]
    assert [(o["entry_price"], o["entry_ts"]) for o in result.open] == [(52.0, T0 + 3)]


def test_a_queued_signal_expires_after_queue_ttl():
    cfg = with_engine(config(a=MANUAL, b={**MANUAL, "symbols": ["ACME"]}), max_open_positions=1, queue_ttl_s=2)
    signals = timed(cfg, [(T0 + 1, "a", "buy"), (T0 + 1, "b", "buy")])
    result = run_replay(cfg, quotes({"ETHUSDT": [50] * 6, "ACME": [20] * 6}), signals=signals)
    queued = result.signals[1]
    assert queued["status"] == "expired" and queued["queue"][0]["ts"] == T0 + 3
    assert "queue_ttl_s (2 s)" in queued["queue"][0]["outcome"]


def test_a_newer_signal_replaces_the_queued_one():
    cfg = with_engine(config(a=MANUAL, b={**MANUAL, "symbols": ["ACME"]}), max_open_positions=1)
    signals = timed(cfg, [(T0 + 1, "a", "buy"), (T0 + 1, "b", "buy"), (T0 + 2, "b", "buy")])
    result = run_replay(cfg, quotes({"ETHUSDT": [50] * 4, "ACME": [20] * 4}), signals=signals)
    assert [s["status"] for s in result.signals] == ["done", "replaced", "queued"]
    assert result.signals[1]["queue"][0]["outcome"] == "replaced by the signal on line 4"
    assert result.signals[2]["queue"][0]["outcome"] == "still queued at the end"


def test_json_lines_take_the_tradingview_body_and_are_told_by_their_content(tmp_path):
    cfg = config(grid=GRID)
    path = signals_file(tmp_path, "\n".join([
        '{"ts": "2026-01-01T00:00:03Z", "strategy": "grid", "ticker": "BINANCE:BTCUSDT", "action": "sell"}',
        "",
        f'{{"ts": {T0 + 1}, "strategy": "grid", "ticker": "BTCUSDT", "action": "buy", "contracts": 4, '
        '"interval": 15}',
    ]), name="alerts.log")
    signals = read_signals(path, cfg)
    assert [(s.line, s.ts, s.message.intent, s.message.size, s.message.timeframe) for s in signals] == [
        (3, T0 + 1, "entry", 4.0, "15"), (1, T0 + 3, "exit", None, "")]  # in time order
    result = run_replay(cfg, quotes({"BTCUSDT": [100, 100, 100, 100]}), signals=signals)
    # size 4 at 100 is the grid's capital 400: its first layer (weight 1 of 2) buys 2
    assert [(t.qty, t.entry_price, t.exit_reason) for t in result.trades] == [(2.0, 100.0, "signal")]


@pytest.mark.parametrize("name, text, line, reason", [
    ("s.csv", f"ts,strategy,symbol,action,price\n{T0},b,ETHUSDT,buy,abc\n", 2,
     'price: must be a positive number, got "abc"'),
    ("s.csv", "ts,strategy,symbol,action\nyesterday,b,ETHUSDT,buy\n", 2, "ts 'yesterday' is neither epoch seconds nor ISO-8601"),
    ("s.csv", f"ts,strategy,symbol,action\n{T0},b,ETHUSDT\n", 2, "3 fields, the header has 4"),
    ("s.csv", f"ts,strategy,symbol,action\n{T0},nope,ETHUSDT,buy\n", 2, "strategy: unknown strategy 'nope'"),
    ("s.csv", f"ts,strategy,symbol,action\n{T0},b,BTCUSDT,buy\n", 2, "symbol: strategy b does not trade BTCUSDT"),
    ("s.csv", f"ts,strategy,action,volume\n{T0},b,buy,1\n", 1, "missing column(s) symbol; unknown column(s) volume"),
    ("s.jsonl", f'{{"ts": {T0}, "strategy": "b"}}\n{{"strategy": "b"}}\n', 2, "ts: missing"),
    ("s.jsonl", f'{{"ts": {T0}, "strategy": "b", "prcie": 1}}\n', 1, "prcie: unknown field; did you mean price?"),
    ("s.jsonl", '{"ts": 1, "strategy": "b",\n', 1, "not valid JSON"),
])
def test_a_bad_signal_row_is_named_by_its_line_and_problem(tmp_path, name, text, line, reason):
    path = signals_file(tmp_path, text, name)
    with pytest.raises(BadRow) as info:
        read_signals(path, config(b=MANUAL))
    assert info.value.line == line and reason in info.value.reason


def test_skip_bad_skips_bad_signal_rows_and_keeps_them(tmp_path):
    path = signals_file(tmp_path, f"ts,strategy,symbol,action,size\n{T0},b,ETHUSDT,buy,-1\n{T0},b,ETHUSDT,buy,2\n")
    bad: list[BadRow] = []
    signals = read_signals(path, config(b=MANUAL), skip_bad=True, bad_rows=bad)
    assert [s.line for s in signals] == [3]
    assert [(b.line, b.reason) for b in bad] == [(2, "size: must be a positive number, got -1")]


def test_the_pnl_summary_on_a_hand_checked_run():
    # b (qty 1) trades +2 (100 -> 102), -3 (101 -> 98), +1 (98 -> 99), then holds from 99 with
    # the last mark at 100.5: realized 0, 2 of 3 won, the realized curve 2, -1, 0 falls 3 from
    # its peak, unrealized +1.5.
    cfg = config(b=MANUAL)
    prices = [100, 102, 101, 98, 98, 99, 99, 100.5]
    actions = ["buy", "exit", "buy", "exit", "buy", "exit", "buy"]
    signals = timed(cfg, [(T0 + i + 0.5, "b", a) for i, a in enumerate(actions)])
    result = run_replay(cfg, quotes({"ETHUSDT": prices}), signals=signals)
    assert [t.pnl for t in result.trades] == [2.0, -3.0, 1.0]
    assert result.to_json()["summary"] == {"trades": 3, "wins": 2, "win_rate": pytest.approx(2 / 3),
                                           "realized_pnl": 0.0, "max_drawdown": 3.0, "open": 1,
                                           "unrealized_pnl": 1.5}


def test_strategies_that_can_never_act_are_named():
    cfg = config(
        quiet={**MANUAL},  # manual, no signal for it
        told={**MANUAL},  # manual, with a signal
        nowhere={**MANUAL, "symbols": ["ACME"], "entry": "immediate"},  # no quotes for its symbol
        later={**MANUAL, "entry": "scheduled",  # its only window opens at 09:00, after the quotes
               "schedule": {"entry_times": ["09:00"], "entry_window_end": "10:00"}},
        early={**MANUAL, "entry": "scheduled", "schedule": {"entry_times": ["00:00"], "entry_window_end": "01:00"}},
        off={**MANUAL, "entry": "immediate", "enabled": False},
        running={**MANUAL, "entry": "immediate"},
    )
    lines = idle_strategies(cfg, {"told"}, {"ETHUSDT"}, T0 + 60, T0 + 3600)
    assert lines == [
        'strategy quiet can never act in this replay: its entry is "manual" and no signal is for it',
        "strategy nowhere can never act in this replay: the quotes file has no quotes for ACME",
        "strategy later can never act in this replay: none of its schedule's entry windows is open between "
        "2026-01-01T00:01:00Z and 2026-01-01T01:00:00Z",
        "strategy off can never act in this replay: it is disabled in the settings",
    ]


CONFIG = """
[engine]
max_open_positions = 1
[symbols.ETHUSDT]
start_price = 50
[paper]
slippage_bps = 0
taker_fee_bps = 0
[strategies.b]
symbols = ["ETHUSDT"]
side = "buy"
entry = "manual"
sizing = { fixed_qty = 1 }
[strategies.quiet]
symbols = ["ETHUSDT"]
side = "buy"
entry = "manual"
sizing = { fixed_qty = 1 }
"""
QUOTES = "ts,symbol,bid,ask\n" + "".join(f"{T0 + i},ETHUSDT,{px},{px}\n" for i, px in enumerate((50, 52, 49, 49)))


def replay(tmp_path: Path, signals: str, *extra: str) -> subprocess.CompletedProcess:
    (tmp_path / "cfg.toml").write_text(CONFIG)
    (tmp_path / "q.csv").write_text(QUOTES)
    (tmp_path / "s.csv").write_text(signals)
    return subprocess.run(
        [sys.executable, "-m", "tui_trader", "replay", str(tmp_path / "q.csv"), "--signals", str(tmp_path / "s.csv"),
         "--config", str(tmp_path / "cfg.toml"), "--out", str(tmp_path / "out.json"), *extra],
        capture_output=True, text=True, timeout=60, env={"TUI_TRADER_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )


SIGNALS = f"""ts,strategy,symbol,action
{T0 + 0.5},b,ETHUSDT,buy
{T0 + 1.5},b,ETHUSDT,sell
{T0 + 2.5},b,ETHUSDT,buy
{T0 + 2.5},b,ETHUSDT,buy
"""


def test_the_command_prints_the_summary_and_the_warnings_and_writes_the_outcomes(tmp_path):
    proc = replay(tmp_path, SIGNALS)
    assert proc.returncode == 0, proc.stderr
    assert ("P&L: 1 trade(s), win rate 100%, realized +2.00, max drawdown 0.00 (realized, trade by trade), "
            "unrealized +0.00 on 1 open position(s)") in proc.stdout
    assert "signals: 4 (3 done, 1 rejected)" in proc.stdout
    assert ('tui-trader: warning: strategy quiet can never act in this replay: its entry is "manual" and no '
            "signal is for it") in proc.stderr
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["summary"]["realized_pnl"] == 2.0 and out["warnings"] and len(out["signals"]) == 4
    assert out["signals"][3]["status"] == "rejected" and "already holds" in out["signals"][3]["outcome"]


def test_a_bad_signal_row_stops_the_command_unless_skipped(tmp_path):
    bad = SIGNALS.replace(f"{T0 + 1.5},b,ETHUSDT,sell", f"{T0 + 1.5},b,ETHUSDT,hold")
    proc = replay(tmp_path, bad)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "s.csv: line 3: action: must be one of buy, sell, long, short, exit, close, flat" in proc.stderr
    assert not (tmp_path / "out.json").exists()
    proc = replay(tmp_path, bad, "--skip-bad")
    assert proc.returncode == 0, proc.stderr
    assert "1 bad signal row(s) skipped" in proc.stdout
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["skipped_signals"] == 1 and out["skipped_signal_rows"][0]["line"] == 3
