"""The headless engine and `tui-trader positions`, as separate processes."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_signal_inbox import CONFIG as SIGNAL_CONFIG
from tests.test_signal_inbox import cli as signal_cli
from tests.test_signal_inbox import inbox_rows

CONFIG = """
[feed]
seed = 7  # the same path at every run
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
    sqlite3.connect(tmp_path / "db.sqlite").close()
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
    assert "engine stopped: 1 open position(s) stay open" in out
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


# -- tui-trader signal: what it records, and bad input ------------------------------------------


@pytest.fixture
def signal_dir(tmp_path):
    (tmp_path / "c.toml").write_text(SIGNAL_CONFIG)
    return tmp_path


def recorded(workdir: Path) -> list[dict]:
    return inbox_rows(f"sqlite:///{workdir / 'db.sqlite'}")


def test_signal_json_on_stdin_is_recorded_with_its_intent_timeframe_and_size(signal_dir):
    alert = {"strategy": "m", "ticker": "BINANCE:BTCUSDT", "action": "buy", "price": 101.5, "interval": "15",
             "contracts": 0.5, "market_position": "long", "comment": "breakout"}
    proc = signal_cli(signal_dir, "signal", "--json", "-", "--wait", "0", input=json.dumps(alert))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == ('recorded signal #1: entry m buy BTCUSDT, timeframe 15, price 101.5, '
                                           'size 0.5, comment "breakout"')
    (row,) = recorded(signal_dir)
    assert {k: row[k] for k in ("strategy_id", "symbol", "side", "intent", "price", "timeframe", "size", "status")} == {
        "strategy_id": "m", "symbol": "BTCUSDT", "side": "buy", "intent": "entry", "price": 101.5, "timeframe": "15",
        "size": 0.5, "status": "pending"}


def test_signal_json_from_a_file(signal_dir):
    (signal_dir / "alert.json").write_text('{"strategy": "s", "action": "flat"}')
    proc = signal_cli(signal_dir, "signal", "--json", str(signal_dir / "alert.json"), "--wait", "0")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("recorded signal #1: exit s (every symbol it trades)\n")
    assert recorded(signal_dir)[0]["intent"] == "exit"


@pytest.mark.parametrize("args, intent, side, timeframe, size", [
    (["--action", "LONG", "--timeframe", "1h", "--size", "2"], "entry", "buy", "1h", 2.0),
    (["--side", "buy"], "entry", "buy", "", None),  # --side: the older name of --action
    (["--action", "sell", "--size", "2"], "exit", "sell", "", None),  # a sell closes the long strategy m
    (["--action", "close", "--timeframe", "15"], "exit", None, "15", None),
])
def test_signal_options_timeframe_size_and_action(signal_dir, args, intent, side, timeframe, size):
    proc = signal_cli(signal_dir, "signal", "--strategy", "m", "--symbol", "BTCUSDT", *args, "--wait", "0")
    assert proc.returncode == 0, proc.stderr
    (row,) = recorded(signal_dir)
    assert (row["intent"], row["side"], row["timeframe"], row["size"]) == (intent, side, timeframe, size)


@pytest.mark.parametrize("args, stdin, lines", [
    (["--strategy", "x"], None, ["signal rejected (recorded as #1):", "strategy: unknown strategy 'x' (known: m, s)"]),
    (["--strategy", "m", "--symbol", "ETHUSDT", "--price", "0", "--size", "lots", "--timeframe", "soon"], None, [
        "signal rejected (recorded as #1):",
        'size: must be a positive number, got "lots"',
        "symbol: strategy m does not trade ETHUSDT (it trades BTCUSDT)",
        "price: must be a positive number, got 0",
        'timeframe: must be a chart interval like "15", "1h" or "1D", got "soon"']),
    (["--strategy", "m", "--symbol", "DOGE"], None,
     ["signal rejected (recorded as #1):", "symbol: unknown symbol 'DOGE' (known: BTCUSDT, ETHUSDT)"]),
    (["--json", "-"], '{"strategy": "m", "price": "cheap", "qyt": 1}', [
        "signal rejected (recorded as #1) (JSON on stdin):",
        'price: must be a positive number, got "cheap"',
        ("qyt: unknown field; did you mean qty? the fields are strategy or strategy_id, symbol or ticker, action or "
         "side, market_position, price or close, timeframe or interval, size or qty or contracts, comment or note")]),
    (["--json", "-"], '{"strategy": "m", "price": {{close}}}', [
        "signal rejected (recorded as #1) (JSON on stdin):",
        ("JSON: not valid JSON (Expecting property name enclosed in double quotes: line 1 column 29 (char 28)); "
         "it still holds TradingView placeholders like {{close}}: fill them in (TradingView does when the alert fires)")]),
    (["--json", "-"], "[1]", [
        "signal rejected (recorded as #1) (JSON on stdin):",
        ('JSON: must be an object like {"strategy": "trend", "symbol": "BTCUSDT", "action": "buy", "price": 101.5, '
         '"timeframe": "15"}, got [1]')]),
])
def test_a_bad_signal_exits_2_one_line_per_problem_and_is_recorded_as_rejected(signal_dir, args, stdin, lines):
    proc = signal_cli(signal_dir, "signal", *args, input=stdin)
    assert proc.returncode == 2, proc
    assert proc.stderr.splitlines() == [f"tui-trader: {lines[0]}", *(f"  {line}" for line in lines[1:])]
    (row,) = recorded(signal_dir)
    assert row["status"] == "rejected" and row["outcome"] == "; ".join(lines[1:])
    try:  # the strategy as far as it can be read from what was sent
        data = json.loads(stdin) if stdin else {"strategy": args[args.index("--strategy") + 1]}
    except ValueError:
        data = {}
    assert row["strategy_id"] == (data.get("strategy", "") if isinstance(data, dict) else "")


@pytest.mark.parametrize("args, stdin, lines", [
    (["--json", "-", "--strategy", "m"], "{}",
     ["give the signal either as --json or as --strategy/--symbol/--action/..., not both"]),
    (["--json", "missing.json"], None, ["--json missing.json: cannot be read (No such file or directory)"]),
    ([], None, ["signal: --strategy is required (or --json FILE|-)"]),
    (["--strategy", "m", "--wait", "-1"], None, ["signal not recorded:", "--wait: must be 0 or more seconds, got -1"]),
    (["--strategy", "x", "--wait", "-1"], None,
     ["signal not recorded:", "strategy: unknown strategy 'x' (known: m, s)", "--wait: must be 0 or more seconds, got -1"]),
])
def test_a_misused_command_exits_2_and_records_nothing(signal_dir, args, stdin, lines):
    proc = signal_cli(signal_dir, "signal", *args, input=stdin)
    assert proc.returncode == 2, proc
    assert proc.stderr.splitlines() == [f"tui-trader: {lines[0]}", *(f"  {line}" for line in lines[1:])]
    assert recorded(signal_dir) == []


def test_signal_action_outside_the_choices_is_refused_by_the_parser(signal_dir):
    proc = signal_cli(signal_dir, "signal", "--strategy", "m", "--action", "hold")
    assert proc.returncode == 2 and "invalid choice: 'hold'" in proc.stderr


def signal_bytes(workdir: Path, *args: str | bytes, stdin: bytes = b"") -> tuple[int, list[str]]:
    """`tui-trader signal` with raw bytes in and out (arguments and stdin need not be UTF-8); the
    exit code and the lines on stderr."""
    cfg, db = workdir / "c.toml", workdir / "db.sqlite"
    proc = subprocess.run([sys.executable, "-m", "tui_trader", "signal", *args, "--config", str(cfg), "--db", str(db)],
                          input=stdin, capture_output=True, timeout=30,
                          env={"TUI_TRADER_DATA_DIR": str(workdir), "PATH": "/usr/bin:/bin"})
    return proc.returncode, proc.stderr.decode("utf-8", "backslashreplace").splitlines()


@pytest.mark.parametrize("stdin, problem", [
    pytest.param(b'{"strategy": "m", "comment": "\xff"}',
                 "the body: not UTF-8 text (byte 0xff at position 30)", id="invalid UTF-8 on stdin"),
    pytest.param(b'{"strategy": "m", "price": ' + b"[" * 5000 + b"]" * 5000 + b"}",
                 "JSON: nested more than 32 levels deep; a signal is a flat object like {", id="deep nesting"),
    pytest.param(b'{"strategy": "m", "price": 1' + b"0" * 5000 + b"}",
                 "price: must be less than 1,000,000,000,000, got inf", id="an integer of 5,000 digits"),
    pytest.param(b'{"strategy": "m", "\\ud800": "\\ud800"}',
                 '"\\ud800": unknown field; the fields are ', id="a lone surrogate as a key"),
    pytest.param(b'{"strategy": "m", "strategy": "s"}',
                 "strategy: given more than once; give each field once", id="a duplicate key"),
    pytest.param(b'{"strategy": "m", "comment": "' + b"x" * 5_000_000 + b'"}',
                 "the body: larger than 64 KiB; a signal is a small JSON object like {", id="5 MB"),
])
def test_hostile_signal_json_exits_2_with_the_problem_named_and_no_traceback(signal_dir, stdin, problem):
    code, lines = signal_bytes(signal_dir, "--json", "-", "--wait", "0", stdin=stdin)
    assert code == 2, lines
    assert lines[0] == "tui-trader: signal rejected (recorded as #1) (JSON on stdin):"
    assert len(lines) == 2, lines
    assert lines[1].startswith(f"  {problem}"), lines
    (row,) = recorded(signal_dir)
    assert row["status"] == "rejected" and row["outcome"] == lines[1].strip()


@pytest.mark.parametrize("wait", ["inf", "nan", "3601"])
def test_signal_wait_is_bounded_instead_of_waiting_forever(signal_dir, wait):
    code, lines = signal_bytes(signal_dir, "--strategy", "m", "--wait", wait)
    assert code == 2 and lines[-1].startswith("tui-trader signal: error: argument --wait: "), lines
    assert not any("Traceback" in line for line in lines)
    assert recorded(signal_dir) == []


def test_a_signal_argument_that_is_not_utf8_is_refused_before_anything_is_recorded(signal_dir):
    code, lines = signal_bytes(signal_dir, "--strategy", b"\xff", "--wait", "0")
    assert (code, lines) == (2, ["tui-trader: --strategy b'\\xff': not valid UTF-8 text"])
    assert recorded(signal_dir) == []


# -- --db, and bad input anywhere on the command line -------------------------------------------


@pytest.fixture
def in_process(tmp_path, monkeypatch):
    """main() in this process, its data directory in tmp_path and no log file."""
    from tui_trader import cli as shell

    monkeypatch.setenv("TUI_TRADER_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(shell, "setup_logging", lambda *a, **k: None)
    (tmp_path / "c.toml").write_text(SIGNAL_CONFIG)
    return lambda *args: shell.main([*args, "--config", str(tmp_path / "c.toml")])


@pytest.mark.parametrize("db, problem", [
    ("{tmp}", "--db {tmp}: a directory, not a database file"),
    ("{tmp}/quotes.csv", "--db {tmp}/quotes.csv: not a SQLite database"),
    ("foo://", "--db foo://: unknown kind of database 'foo'; expected a SQLite file path or a SQLAlchemy URL "
               "(sqlite:///PATH, postgresql+psycopg://USER@HOST/DB)"),
    ("postgresql://trader:secret@db.example/book",
     "--db postgresql://trader:***@db.example/book: the driver for postgresql is not installed (No module named "
     "'psycopg')"),
    ("", "--db is empty: give a SQLite file path or a database URL"),
])
def test_a_db_that_cannot_be_a_database_is_bad_input_naming_db(in_process, tmp_path, capsys, db, problem):
    if "postgresql" in db and importlib.util.find_spec("psycopg") is not None:
        pytest.skip("the PostgreSQL driver is installed here")
    (tmp_path / "quotes.csv").write_text("ts,symbol,bid,ask\n1,BTCUSDT,100,100\n")
    for command in (["positions"], ["logs"], ["check-exits"]):
        assert in_process(*command, "--db", db.format(tmp=tmp_path)) == 2
        assert capsys.readouterr().err == f"tui-trader: {problem.format(tmp=tmp_path)}\n"


def test_store_url_from_the_environment_is_named_as_such(in_process, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TUI_TRADER_STORE__URL", f"sqlite:///{tmp_path}")
    assert in_process("positions") == 2
    assert capsys.readouterr().err == f"tui-trader: store.url sqlite:///{tmp_path}: a directory, not a database file\n"


@pytest.mark.parametrize("command", [["positions"], ["check-exits"], ["logs"], ["levels", "1", "--stop", "90"],
                                     ["exit", "1"]])
def test_a_read_command_creates_no_database_and_no_directory(in_process, tmp_path, capsys, command):
    missing = tmp_path / "no" / "dir" / "x.db"
    assert in_process(*command, "--db", str(missing)) == 1
    assert capsys.readouterr().err.startswith(f"tui-trader: no database at {missing}: nothing was recorded there yet")
    assert not (tmp_path / "no").exists()


def test_a_signal_for_a_directory_that_does_not_exist_creates_none(in_process, tmp_path, capsys):
    missing = tmp_path / "no" / "dir" / "x.db"
    assert in_process("signal", "--strategy", "m", "--db", str(missing)) == 2
    assert capsys.readouterr().err.startswith(f"tui-trader: cannot record the signal in sqlite:///{missing}: ")
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("wait", ["inf", "nan", "1e308"])
def test_a_wait_of_forever_is_refused_by_the_parser(tmp_path, wait):
    (tmp_path / "c.toml").write_text(SIGNAL_CONFIG)
    proc = subprocess.run([sys.executable, "-m", "tui_trader", "signal", "--strategy", "m", "--wait", wait, "--config",
                           str(tmp_path / "c.toml")], capture_output=True, text=True, timeout=20,
                          env={"TUI_TRADER_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2
    assert f"argument --wait: expected a number of seconds up to 3600, got '{wait}'" in proc.stderr


def test_an_argument_that_is_not_utf8_is_bad_input_naming_it(tmp_path):
    (tmp_path / "c.toml").write_text(CONFIG)
    proc = subprocess.run([sys.executable, "-m", "tui_trader", "logs", "--grep", b"caf\xe9", "--config",
                           str(tmp_path / "c.toml"), "--db", str(tmp_path / "db.sqlite")],
                          capture_output=True, text=True, timeout=60,
                          env={"TUI_TRADER_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"})
    assert proc.returncode == 2 and proc.stderr == "tui-trader: --grep b'caf\\xe9': not valid UTF-8 text\n"


# -- one engine per database, however its path is spelled ---------------------------------------


def engine_process(tmp_path: Path, *args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tui_trader", "engine", "--config", str(tmp_path / "c.toml"), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={"TUI_TRADER_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", **env})


def test_a_second_engine_through_a_symlink_or_a_hard_link_is_refused(tmp_path):
    (tmp_path / "c.toml").write_text(CONFIG)
    db = tmp_path / "db.sqlite"
    first = engine_process(tmp_path, "--db", str(db))
    try:
        assert "engine started" in first.stdout.readline()
        (tmp_path / "symlink.sqlite").symlink_to(db)
        os.link(db, tmp_path / "hardlink.sqlite")
        for args, env in (([], {"TUI_TRADER_STORE__URL": f"sqlite:///{tmp_path / 'symlink.sqlite'}"}),
                          (["--db", str(tmp_path / "hardlink.sqlite")], {})):
            second = engine_process(tmp_path, *args, **env)
            try:
                out, _ = second.communicate(timeout=20)
            finally:
                second.kill()
            assert second.returncode == 2, out
            assert "another tui-trader engine is running on" in out and "Traceback" not in out
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)


def test_an_engine_whose_reader_went_away_still_stops_on_sigterm_and_records_it(tmp_path):
    """`tui-trader engine 2>&1 | head -1`: every later line meets a closed pipe."""
    (tmp_path / "c.toml").write_text(CONFIG)
    db = tmp_path / "db.sqlite"
    proc = engine_process(tmp_path, "--db", str(db))
    try:
        assert "engine started" in proc.stdout.readline()
        proc.stdout.close()
        time.sleep(2)  # the entry's events are printed into the closed pipe
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
    with sqlite3.connect(db) as conn:
        (last,) = conn.execute("select message from strategy_events order by id desc limit 1").fetchone()
    assert last.startswith("engine stopped: 1 open position(s) stay open")
