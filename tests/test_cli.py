"""The headless engine and `tui-trader positions`, as separate processes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

CONFIG = """
[feed]
max_quote_age_s = 5
[symbols.BTCUSDT]
start_price = 100
volatility = 0.5
tick_interval_s = 0.05
[strategies.t]
symbols = ["BTCUSDT"]
side = "buy"
sizing = { fixed_qty = 2 }
stop_loss = "5%"
target = 50
trail_distance = "3%"
"""


def cli(tmp_path: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui_trader", *args], capture_output=True, text=True, timeout=60,
                          env={"TUI_TRADER_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}, **kw)


def test_positions_with_an_empty_database(tmp_path):
    (tmp_path / "c.toml").write_text(CONFIG)
    proc = cli(tmp_path, "positions", "--config", str(tmp_path / "c.toml"), "--db", str(tmp_path / "db.sqlite"))
    assert proc.returncode == 0 and proc.stdout.strip() == "no open positions"


def test_headless_engine_enters_stops_on_sigterm_and_positions_reads_the_book(tmp_path):
    cfg, db = tmp_path / "c.toml", tmp_path / "db.sqlite"
    cfg.write_text(CONFIG)
    proc = subprocess.Popen([sys.executable, "-m", "tui_trader", "engine", "--config", str(cfg), "--db", str(db)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={"TUI_TRADER_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "t: entered buy 2 BTCUSDT" in line:
                break
        else:
            raise AssertionError("no entry in 30 s: " + "".join(lines))
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "engine stopped; 1 open position(s) stay open" in out
    listed = cli(tmp_path, "positions", "--json", "--config", str(cfg), "--db", str(db))
    assert listed.returncode == 0, listed.stderr
    (pos,) = json.loads(listed.stdout)
    assert (pos["strategy_id"], pos["symbol"], pos["side"], pos["qty"], pos["status"]) == ("t", "BTCUSDT", "buy", 2.0, "open")
    assert pos["stop"] == pytest.approx(pos["avg_entry"] * 0.95) and pos["target"] == pytest.approx(pos["avg_entry"] + 50)
    assert pos["trail_active"] is True and pos["trail_distance"] == "3%"
    table = cli(tmp_path, "positions", "--config", str(cfg), "--db", str(db))
    assert "BTCUSDT" in table.stdout and "open" in table.stdout


def test_a_second_engine_on_the_same_database_is_refused(tmp_path):
    cfg, db = tmp_path / "c.toml", tmp_path / "db.sqlite"
    cfg.write_text(CONFIG)
    first = subprocess.Popen([sys.executable, "-m", "tui_trader", "engine", "--config", str(cfg), "--db", str(db)],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             env={"TUI_TRADER_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    try:
        assert "engine started" in first.stdout.readline()
        second = cli(tmp_path, "engine", "--config", str(cfg), "--db", str(db))
        assert second.returncode == 2
        assert "another tui-trader engine is running on" in second.stderr and "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)


def test_unknown_command_line_option_exits_2():
    proc = subprocess.run([sys.executable, "-m", "tui_trader", "--bogus"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "unrecognized arguments: --bogus" in proc.stderr
