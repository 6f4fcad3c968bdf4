"""A real TUI process whose terminal goes away (a dropped SSH session) stops its engine
cleanly: positions stay open, the stop is recorded, the process exits."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import sqlite3
import struct
import sys
import termios
import time

CONFIG = """
[feed]
seed = 7  # the same path at every run
[symbols.BTCUSDT]
start_price = 100
tick_interval_s = 0.1
[strategies.t]
symbols = ["BTCUSDT"]
side = "buy"
sizing = { fixed_qty = 1 }
stop_loss = "20%"
"""


def events(db: str) -> list[str]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return [m for (m,) in conn.execute("select message from strategy_events order by id")]
    except sqlite3.Error:
        return []


def test_closing_the_terminal_stops_the_engine_and_exits(tmp_path):
    cfg, db = tmp_path / "c.toml", str(tmp_path / "db.sqlite")
    cfg.write_text(CONFIG)
    pid, fd = pty.fork()
    if pid == 0:  # the child: the TUI on the pty
        os.environ.update(TUI_TRADER_DATA_DIR=str(tmp_path), TERM="xterm-256color")
        os.execv(sys.executable, [sys.executable, "-m", "tui_trader", "--config", str(cfg), "--db", db])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    try:
        deadline = time.monotonic() + 30
        while not any("entered buy 1 BTCUSDT" in m for m in events(db)):
            assert time.monotonic() < deadline, "the TUI did not enter within 30 s"
            if select.select([fd], [], [], 0.1)[0]:
                os.read(fd, 65536)  # drain the screen so the app never blocks on output
        os.close(fd)  # the terminal goes away
        deadline = time.monotonic() + 20
        while os.waitpid(pid, os.WNOHANG)[0] == 0:
            assert time.monotonic() < deadline, "the TUI kept running without its terminal"
            time.sleep(0.05)
    finally:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    assert events(db)[-1] == "engine stopped: 1 open position(s) stay open and are managed again at the next start"
