"""`tui-trader logs`: the engine's events read from its database by the shell.

A real engine on a fake clock records varied events in a temp SQLite database (and keeps
holding it, as a running engine does); `main()` reads them. The --follow test runs the
command as a subprocess while this process's engine records more."""

from __future__ import annotations

import json
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy.exc import OperationalError

from services.event_log import event_dict
from services.store import SqlStore
from tests.conftest import T0, Harness
from tui_trader import cli as shell
from tui_trader import cli_logs
from tui_trader.cli_logs import event_line, parse_since
from tui_trader.settings import load_settings

CONFIG = """
[paper]
slippage_bps = 0
maker_fee_bps = 0
taker_fee_bps = 0
[symbols.BTCUSDT]
start_price = 100
[strategies.trend]
symbols = ["BTCUSDT"]
side = "buy"
entry = "manual"
sizing = { fixed_qty = 1 }
stop_loss = "1%"
"""

HOUR = T0 + 3600


class Book:
    """The engine and its database. Events, in order (ids 1..10):
    1 engine started, 2-5 #1 entered and stopped out on BTCUSDT (5 is a warning) at T0 + 1..2;
    an hour later: 6 a debug heartbeat of `fade`, 7 an error alert (acknowledged, which
    records 10), 8 a critical alert left unread, 9 an info about the database."""

    def __init__(self, tmp_path: Path) -> None:
        self.cfg, self.db = tmp_path / "c.toml", tmp_path / "db.sqlite"
        self.cfg.write_text(CONFIG)
        self.store = SqlStore(f"sqlite:///{self.db}", flush_interval_s=0.05)
        self.h = Harness(load_settings(self.cfg), store=self.store)
        self.engine = self.h.engine

    def record_the_day(self) -> None:
        h, eng = self.h, self.engine
        h.quote("BTCUSDT", 100.0)
        assert eng.enter_now("trend").ok
        h.quote("BTCUSDT", 98.0)  # the stop
        h.clock.advance(3600)
        eng.note("debug", "signal", "heartbeat from the webhook", strategy_id="fade")
        eng.note("error", "feed", "feed sim is down", needs_ack=True)
        eng.note("critical", "store", "Database write failed", needs_ack=True)
        eng.note("info", "store", "database is back")
        assert eng.ack_alerts([7]).ok

    def views(self) -> dict:
        return {e.id: e for e in self.engine.events}

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def book(tmp_path, monkeypatch):
    monkeypatch.setenv("TUI_TRADER_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(shell, "setup_logging", lambda *a, **k: None)
    b = Book(tmp_path)
    b.record_the_day()
    yield b
    b.close()


def logs(book: Book, *args: str) -> int:
    return shell.main(["logs", "--config", str(book.cfg), "--db", str(book.db), *args])


def printed(capsys) -> list[str]:
    return capsys.readouterr().out.splitlines()


def last_column(line: str) -> str:
    """The marker and message of a text line (after the padded columns)."""
    return line.rstrip("\n").split("  ")[-1].lstrip()


def json_ids(capsys) -> list[int]:
    return [json.loads(line)["id"] for line in printed(capsys)]


def pin_now(monkeypatch, now: float, sleep=time.sleep) -> None:
    monkeypatch.setattr(cli_logs, "time", SimpleNamespace(time=lambda: now, sleep=sleep))


# -- what is printed -------------------------------------------------------------------------


def test_the_last_events_oldest_first_one_aligned_line_each(book, capsys):
    assert logs(book) == 0
    assert printed(capsys) == [
        "2026-01-01 00:00:00 INFO     engine                           engine started (paper); resumed 0 open position(s)",
        "2026-01-01 00:00:01 INFO     entry      trend BTCUSDT #1      trend: entering buy 1 BTCUSDT at market (tui)",
        "2026-01-01 00:00:01 INFO     fill       trend BTCUSDT #1      trend: entered buy 1 BTCUSDT at 100.00 (stop 99.00)",
        "2026-01-01 00:00:02 WARNING  exit       trend BTCUSDT #1      trend: exit #1 BTCUSDT: stop_loss at 98.00",
        ("2026-01-01 00:00:02 INFO     exit       trend BTCUSDT #1      trend: closed #1 BTCUSDT (stop_loss) at 98.00, "
         "P&L -2.00"),
        "2026-01-01 01:00:02 DEBUG    signal     fade                  heartbeat from the webhook",
        "2026-01-01 01:00:02 ERROR    feed                             [acked] feed sim is down",
        "2026-01-01 01:00:02 CRITICAL store                            [alert] Database write failed",
        "2026-01-01 01:00:02 INFO     store                            database is back",
        "2026-01-01 01:00:02 INFO     operator                         alert #7 acknowledged by the operator",
    ]


def test_limit_keeps_the_newest_events(book, capsys):
    assert logs(book, "--limit", "3", "--json") == 0
    assert json_ids(capsys) == [8, 9, 10]


def test_without_since_at_most_50_are_printed_with_since_every_match(book, capsys, monkeypatch):
    for i in range(60):
        book.engine.note("info", "signal", f"signal {i}")
    assert logs(book, "--json") == 0
    assert json_ids(capsys) == list(range(21, 71))
    monkeypatch.setattr(cli_logs, "BATCH", 7)  # read in several batches
    assert logs(book, "--json", "--since", "2026-01-01") == 0
    assert json_ids(capsys) == list(range(1, 71))
    assert logs(book, "--json", "--since", "2026-01-01", "--limit", "2") == 0
    assert json_ids(capsys) == [69, 70]


@pytest.mark.parametrize("args, ids", [
    (["--level", "warning"], [4, 7, 8]),
    (["--level", "ERROR"], [7, 8]),
    (["--level", "debug"], list(range(1, 11))),
    (["--category", "exit"], [4, 5]),
    (["--strategy", "fade"], [6]),
    (["--symbol", "BTCUSDT"], [2, 3, 4, 5]),
    (["--grep", "DATABASE"], [8, 9]),  # any case, in the message
    (["--grep", "btc"], [2, 3, 4, 5]),  # the symbol (and the messages)
    (["--grep", "operat"], [10]),  # the category
    (["--alerts"], [8]),  # unread only: #7 was acknowledged
    (["--level", "info", "--category", "store", "--grep", "back"], [9]),
])
def test_filters(book, capsys, args, ids):
    assert logs(book, "--json", *args) == 0
    assert json_ids(capsys) == ids


def test_json_lines_are_the_events_as_exported(book, capsys):
    assert logs(book, "--json") == 0
    rows = [json.loads(line) for line in printed(capsys)]
    views = book.views()
    assert rows == [json.loads(json.dumps(event_dict(views[r["id"]]))) for r in rows]
    acked, unread = rows[6], rows[7]
    assert (acked["alert"], acked["acked_at"]) == (True, "2026-01-01T01:00:02.000+00:00")
    assert (unread["alert"], unread["acked_at"], unread["level"]) == (True, None, "critical")
    assert rows[3]["payload"] == {"reason": "stop_loss", "price": 98.0, "symbol": "BTCUSDT"} and rows[3]["position"] == 1


def test_since_a_duration_back_from_now(book, capsys, monkeypatch):
    pin_now(monkeypatch, HOUR + 2 + 90)
    assert logs(book, "--json", "--since", "90s") == 0
    assert json_ids(capsys) == [6, 7, 8, 9, 10]
    assert logs(book, "--json", "--since", "2h") == 0
    assert json_ids(capsys) == list(range(1, 11))


def test_since_a_time_today_with_other_filters(book, capsys, monkeypatch):
    pin_now(monkeypatch, HOUR + 7200)
    assert logs(book, "--json", "--since", "00:00:02", "--level", "warning") == 0
    assert json_ids(capsys) == [4, 7, 8]


def test_level_colours_only_on_a_terminal(book, capsys, monkeypatch):
    views = book.views()
    assert event_line(views[4], color=True).startswith("2026-01-01 00:00:02 \033[33mWARNING\033[0m  exit ")
    assert "\033[31mERROR\033[0m    feed " in event_line(views[7], color=True)
    assert "\033[1;31mCRITICAL\033[0m store " in event_line(views[8], color=True)
    assert "\033[" not in event_line(views[9], color=True)  # info stays plain
    assert "\033[" not in event_line(views[4])
    assert logs(book) == 0
    assert "\033[" not in capsys.readouterr().out  # piped
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert logs(book) == 0
    assert "\033[33mWARNING" in capsys.readouterr().out
    monkeypatch.setenv("NO_COLOR", "1")  # https://no-color.org
    assert logs(book) == 0
    assert "\033[" not in capsys.readouterr().out


def test_no_match_prints_nothing_and_says_so_on_stderr_in_text_mode(book, capsys):
    assert logs(book, "--strategy", "nobody") == 0
    out = capsys.readouterr()
    assert out.out == "" and out.err == "no matching events (strategy nobody)\n"
    assert logs(book, "--strategy", "nobody", "--json") == 0
    assert capsys.readouterr() == ("", "")


# -- --since forms ---------------------------------------------------------------------------

NOW = datetime(2026, 11, 21, 10, 30, tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize("raw, expected", [
    ("90s", NOW - 90),
    ("15m", NOW - 900),
    ("2h", NOW - 7200),
    ("3d", NOW - 3 * 86400),
    ("1.5H", NOW - 5400),
    (" 0s ", NOW),
    ("2026-11-21", datetime(2026, 11, 21, tzinfo=timezone.utc).timestamp()),
    ("2026-11-21T03:00", datetime(2026, 11, 21, 3, tzinfo=timezone.utc).timestamp()),
    ("2026-11-21 03:00:30", datetime(2026, 11, 21, 3, 0, 30, tzinfo=timezone.utc).timestamp()),
    ("2026-11-21T03:00+01:00", datetime(2026, 11, 21, 2, tzinfo=timezone.utc).timestamp()),
    ("2026-11-21T03:00Z", datetime(2026, 11, 21, 3, tzinfo=timezone.utc).timestamp()),
    ("03:00", datetime(2026, 11, 21, 3, tzinfo=timezone.utc).timestamp()),
    ("3:05:09", datetime(2026, 11, 21, 3, 5, 9, tzinfo=timezone.utc).timestamp()),
    ("23:00", datetime(2026, 11, 21, 23, tzinfo=timezone.utc).timestamp()),  # today, even if still to come
])
def test_since_forms(raw, expected):
    assert parse_since(raw, NOW) == expected


@pytest.mark.parametrize("raw", ["yesterday", "3w", "-2h", "h", "25:00", "03:60", "2026-13-01", "", "15"])
def test_a_bad_since_names_the_value_and_the_accepted_forms(raw):
    with pytest.raises(ValueError) as err:
        parse_since(raw, NOW)
    assert str(err.value) == f"--since {raw!r}: expected {cli_logs.SINCE_FORMS}"


# -- bad input and no database ---------------------------------------------------------------


@pytest.mark.parametrize("args, lines", [
    (["--since", "yesterday"], [f"tui-trader: --since 'yesterday': expected {cli_logs.SINCE_FORMS}"]),
    (["--level", "loud"], ["tui-trader: --level 'loud': expected one of debug, info, warning, error, critical"]),
    *((["--limit", n], [f"tui-trader: --limit {n!r}: expected a whole number from 1 to 1,000,000,000"])
      for n in ("0", "1e30", "1" + "0" * 30)),
    (["--grep", "caf\udce9", "--strategy", "\udcff"], ["tui-trader: --grep b'caf\\xe9': not valid UTF-8 text",
                                                       "  --strategy b'\\xff': not valid UTF-8 text"]),
    (["--level", "loud", "--since", "soon"],
     ["tui-trader: --level 'loud': expected one of debug, info, warning, error, critical",
      f"  --since 'soon': expected {cli_logs.SINCE_FORMS}"]),
])
def test_bad_input_exits_2_one_line_per_problem(book, capsys, args, lines):
    assert logs(book, *args) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err.splitlines() == lines


def test_no_database_exits_1_and_creates_none(book, capsys, tmp_path):
    missing = tmp_path / "elsewhere" / "none.sqlite"
    assert shell.main(["logs", "--config", str(book.cfg), "--db", str(missing)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"tui-trader: no database at {missing}: nothing was recorded there yet")
    assert not missing.exists() and not missing.parent.exists()


def test_a_file_that_is_no_database_is_bad_input(book, capsys, tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("not a database\n" * 100)
    assert shell.main(["logs", "--config", str(book.cfg), "--db", str(junk)]) == 2
    assert capsys.readouterr().err == f"tui-trader: --db {junk}: not a SQLite database\n"


def test_an_in_memory_database_has_no_events_to_read(book, capsys):
    assert shell.main(["logs", "--config", str(book.cfg), "--db", "sqlite://"]) == 1
    assert "is an in-memory database" in capsys.readouterr().err


# -- --follow ----------------------------------------------------------------------------------


class Polls:
    """Stands in for the follow loop's sleep: each poll runs the next step (the engine
    recording more, the database failing), and the last one is the operator's ctrl+c."""

    def __init__(self, *steps) -> None:
        self.steps = list(steps)

    def __call__(self, _seconds: float) -> None:
        if not self.steps:
            raise KeyboardInterrupt
        self.steps.pop(0)()


def test_follow_prints_new_matching_events_and_ctrl_c_exits_0(book, capsys, monkeypatch):
    eng = book.engine
    pin_now(monkeypatch, HOUR, Polls(
        lambda: eng.note("warning", "signal", "first new one"),
        lambda: (eng.note("info", "signal", "filtered out"), eng.note("error", "feed", "second new one")),
        lambda: None,
    ))
    assert logs(book, "--follow", "--level", "warning", "--limit", "1") == 0
    lines = printed(capsys)
    assert [last_column(line) for line in lines] == ["[alert] Database write failed", "first new one",
                                                        "second new one"]


def test_follow_retries_a_database_that_cannot_be_read_for_a_while(book, capsys, monkeypatch):
    from services.store import events

    real = events.read_events
    failing = []

    def read_events(*args, **kwargs):
        if failing:
            failing.pop()
            raise OperationalError("select", {}, sqlite3.OperationalError("database is locked"))
        return real(*args, **kwargs)

    monkeypatch.setattr(events, "read_events", read_events)
    eng = book.engine
    pin_now(monkeypatch, HOUR, Polls(
        lambda: failing.extend([1, 1]),
        lambda: None,
        lambda: eng.note("info", "signal", "after the outage"),
    ))
    assert logs(book, "--follow", "--json", "--limit", "1") == 0
    out = capsys.readouterr()
    assert [json.loads(line)["message"] for line in out.out.splitlines()] == [
        "alert #7 acknowledged by the operator", "after the outage"]
    assert out.err.splitlines() == [  # once per outage
        "tui-trader: cannot read the database ((sqlite3.OperationalError) database is locked); retrying",
        "tui-trader: the database can be read again",
    ]


def test_follow_as_a_process_prints_each_event_as_recorded_and_sigint_exits_0(book, tmp_path):
    """A real process, piped (as into grep): each line arrives when it is recorded."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui_trader", "logs", "--follow", "--level", "warning", "--config", str(book.cfg),
         "--db", str(book.db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={"TUI_TRADER_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True)
    reader.start()

    def next_line() -> str:
        try:
            return lines.get(timeout=30)
        except queue.Empty:
            proc.kill()
            raise AssertionError("no line from `tui-trader logs --follow` in 30 s: " + proc.stderr.read()) from None

    try:
        assert [last_column(next_line()) for _ in range(3)] == [
            "trend: exit #1 BTCUSDT: stop_loss at 98.00", "[acked] feed sim is down", "[alert] Database write failed"]
        book.engine.note("info", "signal", "not shown: below the level")
        book.engine.note("error", "signal", "recorded while following", strategy_id="trend")
        assert next_line().endswith("ERROR    signal     trend                 recorded while following\n")
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=5)
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and lines.empty()
