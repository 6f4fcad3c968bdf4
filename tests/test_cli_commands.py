"""Operator commands from the shell: `tui-trader levels`, `exit` and `check-exits`.

The engine's side (services/command_inbox.py) runs on a fake clock against a temp SQLite
database; the shell's side runs `main()` in a worker thread while the test's loop polls the
inbox, so both sides meet in the database as they do across processes. One test runs the
real thing: a headless engine subprocess and the commands as separate processes."""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy.exc import OperationalError

from services import command_inbox
from services.command_inbox import CommandInbox, post_command
from services.store import SqlStore
from tests.conftest import T0, Harness
from tests.test_signal_inbox import CONFIG as PROCESS_CONFIG
from tests.test_signal_inbox import EngineProcess, cli
from tui_trader import cli as shell
from tui_trader.settings import load_settings

CONFIG = """
[engine]
max_open_positions = 10
[feed]
seed = 7  # the same path at every run
max_quote_age_s = 5
[paper]
slippage_bps = 0
maker_fee_bps = 0
taker_fee_bps = 0
[book]
stop = 500
daily_loss_limit = 800
[symbols.BTCUSDT]
start_price = 100
[symbols.ETHUSDT]
start_price = 50
[strategies.m]
symbols = ["BTCUSDT"]
side = "buy"
entry = "manual"
sizing = { fixed_qty = 2 }
[strategies.m.pnl]
target = 150
trail_activation = 100
trail_distance = 40
[strategies.s]
symbols = ["ETHUSDT"]
side = "sell"
entry = "manual"
sizing = { fixed_qty = 3 }
"""


def rows(db: Path, table: str = "command_inbox") -> list[dict]:
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        if not conn.execute("select 1 from sqlite_master where name = ?", (table,)).fetchone():
            return []
        return [dict(r) for r in conn.execute(f"select * from {table} order by id")]
    finally:
        conn.close()


class Workbench:
    """An engine on a fake clock and a temp database (it holds the engine lock, as a running
    engine does), its command inbox, and the shell pointed at the same settings and database."""

    def __init__(self, tmp_path: Path) -> None:
        self.cfg, self.db = tmp_path / "c.toml", tmp_path / "db.sqlite"
        self.cfg.write_text(CONFIG)
        self.url = f"sqlite:///{self.db}"
        self.store = SqlStore(self.url, flush_interval_s=0.05)
        self.h = Harness(load_settings(self.cfg), store=self.store)
        self.engine = self.h.engine
        self.inbox = CommandInbox(self.url)
        self.inbox.bind(self.engine)

    def post(self, kind: str, wait_s: float = 5.0, age: float = 0.0, **args) -> int:
        return post_command(self.url, kind, args, self.h.clock.now() - age, wait_s)

    def open_both(self) -> None:
        """#1: m long 2 BTCUSDT at 100; #2: s short 3 ETHUSDT at 50."""
        self.h.quote("BTCUSDT", 100.0)
        self.h.quote("ETHUSDT", 50.0, dt=0)
        assert self.engine.enter_now("m").ok and self.engine.enter_now("s").ok

    async def shell(self, *argv: str, engine: bool = True) -> int:
        """`tui-trader ARGV` in a worker thread while this loop polls the inbox (unless `engine`
        is False: an engine that holds the lock but never answers)."""
        task = asyncio.ensure_future(asyncio.to_thread(
            shell.main, [*argv, "--config", str(self.cfg), "--db", str(self.db)]))
        for _ in range(3000):  # a timeout, not a pace: the loop ends when the command does
            if task.done():
                break
            if engine:
                await self.inbox.poll_once()
            await asyncio.sleep(0.005)
        return await task

    def stop_engine(self) -> None:
        """The engine process is gone: its lock is free, its positions stay in the database."""
        self.store.close()
        self.store.engine = None

    def close(self) -> None:
        if self.inbox._db is not None:
            self.inbox._db.dispose()
        if self.store.engine is not None:
            self.store.close()


@pytest.fixture
def w(tmp_path, monkeypatch):
    monkeypatch.setenv("TUI_TRADER_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(shell, "setup_logging", lambda *a, **k: None)
    bench = Workbench(tmp_path)
    # the shell's wall clock is the engine's fake clock (deadlines, "+SECONDS", the session)
    monkeypatch.setattr(shell, "time", SimpleNamespace(time=bench.h.clock.now, monotonic=time.monotonic,
                                                       sleep=time.sleep))
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal
    yield bench
    bench.close()


# -- the engine's side: the inbox -------------------------------------------------------------


async def test_each_command_runs_once_and_records_the_engine_message(w):
    w.open_both()
    edit = w.post("levels", group_id=1, stop=95.0, target=120.0)
    assert await w.inbox.poll_once() == 1
    (row,) = rows(w.db)
    assert (row["id"], row["kind"], row["status"], row["taken_at"]) == (edit, "levels", "done", w.h.clock.now())
    assert row["outcome"].startswith("#1 BTCUSDT: stop ") and "-> 95.00, target " in row["outcome"]
    assert (w.h.position("BTCUSDT").stop, w.h.position("BTCUSDT").target) == (95.0, 120.0)
    assert await w.inbox.poll_once() == 0  # run once
    assert len([e for e in w.engine.events if e.category == "levels"]) == 1
    w.post("exit", group_id=1)
    assert await w.inbox.poll_once() == 1
    assert rows(w.db)[1]["status"] == "done" and rows(w.db)[1]["outcome"].startswith("closed #1 BTCUSDT, P&L ")
    assert w.h.position("BTCUSDT") is None and w.h.position("ETHUSDT") is not None


async def test_refused_edits_are_recorded_with_the_engine_reason(w):
    w.open_both()
    w.post("levels", group_id=1, target=90.0)
    w.post("levels", group_id=7, stop=90.0)
    assert await w.inbox.poll_once() == 2
    wrong_side, unknown = rows(w.db)
    assert (wrong_side["status"], wrong_side["needs_confirm"]) == ("refused", 0)
    assert "target 90.00 is on the wrong side" in wrong_side["outcome"]
    assert (unknown["status"], unknown["outcome"]) == ("refused", "no open position #7")
    assert w.h.position("BTCUSDT").target is None


async def test_an_edit_that_would_exit_at_once_is_refused_until_confirmed(w):
    w.open_both()
    assert w.engine.edit_levels(1, trail_distance=5.0).ok  # armed at 100, level 95
    w.h.quote("BTCUSDT", 110.0)  # peak 110, level 105
    w.h.quote("BTCUSDT", 106.0)
    w.post("levels", group_id=1, trail_distance=2.0)  # level 108 > mark 106
    assert await w.inbox.poll_once() == 1
    row = rows(w.db)[0]
    assert (row["status"], row["needs_confirm"]) == ("refused", 1) and "would exit at once" in row["outcome"]
    assert w.h.position("BTCUSDT").trail_level == 105.0
    w.post("levels", group_id=1, trail_distance=2.0, confirm=True)
    assert await w.inbox.poll_once() == 1
    row = rows(w.db)[1]
    assert row["status"] == "done" and "exiting (trailing_stop)" in row["outcome"]


async def test_exit_of_a_strategy_and_of_everything(w):
    w.open_both()
    w.post("exit", strategy="s")
    w.post("exit", strategy="s")
    assert await w.inbox.poll_once() == 2
    first, again = rows(w.db)
    assert first["status"] == "done" and first["outcome"].startswith("closed #2 ETHUSDT")
    assert (again["status"], again["outcome"]) == ("refused", "s has no open position to exit")
    w.post("exit", all=True)
    assert await w.inbox.poll_once() == 1
    assert rows(w.db)[2]["status"] == "done" and w.engine.snapshot().positions == ()


async def test_a_command_whose_outcome_cannot_be_recorded_is_not_run_again(w, monkeypatch, caplog):
    w.open_both()
    w.post("levels", group_id=1, stop=97.0)
    real_write = w.inbox._write

    def broken(batch):
        raise OperationalError("update", {}, Exception("disk I/O error"))

    monkeypatch.setattr(w.inbox, "_write", broken)
    assert await w.inbox.poll_once() == 1  # ran; the outcome is not recorded yet
    assert "command inbox: database write failed" in caplog.text
    assert rows(w.db)[0]["status"] == "pending" and rows(w.db)[0]["taken_at"] is not None
    w.engine.edit_levels(1, stop=96.0)  # the operator moves it again meanwhile
    assert await w.inbox.poll_once() == 0
    monkeypatch.setattr(w.inbox, "_write", real_write)
    assert await w.inbox.poll_once() == 0  # records the outcome, does not run it again
    assert rows(w.db)[0]["status"] == "done" and w.h.position("BTCUSDT").stop == 96.0


async def test_a_command_past_its_posters_deadline_is_cancelled_not_run(w):
    w.open_both()
    w.post("exit", group_id=1, wait_s=2.0, age=8.0)  # its poster stopped waiting 6 s ago
    w.post("exit", group_id=2, wait_s=2.0, age=6.0)  # 4 s ago: within the clock-skew allowance
    assert await w.inbox.poll_once() == 2
    late, in_time = rows(w.db)
    assert (late["status"], late["taken_at"]) == ("cancelled", None)
    assert late["outcome"] == "not run: no engine took it before its poster stopped waiting"
    assert in_time["status"] == "done"
    assert [p.group_id for p in w.engine.snapshot().positions] == [1]


async def test_a_command_taken_by_an_engine_that_stopped_is_not_run_again(w):
    w.open_both()
    w.post("exit", group_id=1)
    conn = sqlite3.connect(w.db)
    with conn:
        conn.execute("update command_inbox set taken_at = ?", (w.h.clock.now(),))  # another engine's claim
    conn.close()
    assert await w.inbox.poll_once() == 1
    row = rows(w.db)[0]
    assert row["status"] == "refused" and row["outcome"].startswith("interrupted: an engine took it and stopped")
    assert w.h.position("BTCUSDT") is not None


async def test_a_stopping_engine_takes_no_command(w):
    w.open_both()
    w.post("exit", group_id=1)
    w.engine.state = "stopping"
    assert await w.inbox.poll_once() == 0
    assert (rows(w.db)[0]["status"], rows(w.db)[0]["taken_at"]) == ("pending", None)


async def test_a_malformed_command_is_refused_without_acting(w):
    w.open_both()
    w.post("levels", group_id=1, stop=90.0, leverage=5)
    w.post("flatten")
    assert await w.inbox.poll_once() == 2
    assert [(r["status"], r["outcome"]) for r in rows(w.db)] == [
        ("refused", "malformed command: levels {'group_id': 1, 'stop': 90.0, 'leverage': 5}"),
        ("refused", "malformed command: flatten {}"),
    ]
    assert w.h.position("BTCUSDT").stop is None


async def test_as_an_attachment_it_answers_until_stopped(w):
    w.open_both()
    w.inbox.poll_interval_s = 0.02
    await w.inbox.start(w.engine)
    try:
        w.post("levels", group_id=2, stop=52.0)
        for _ in range(500):
            await asyncio.sleep(0.01)
            if rows(w.db)[0]["status"] != "pending":
                break
        assert rows(w.db)[0]["status"] == "done"
    finally:
        await w.inbox.stop()
    w.post("levels", group_id=2, stop=53.0)
    await asyncio.sleep(0.1)
    assert rows(w.db)[1]["status"] == "pending" and w.h.position("ETHUSDT").stop == 52.0


# -- the shell's side -------------------------------------------------------------------------


async def test_levels_from_the_shell(w, capsys):
    w.open_both()
    now = w.h.clock.now()
    code = await w.shell("levels", "#2", "--stop", "55", "--target", "40.5", "--trail", "0.5%", "--time-exit", "+600")
    out = capsys.readouterr()
    assert code == 0, out.err
    assert out.out.startswith("#2 ETHUSDT: stop ") and "-> 55.00, target " in out.out and "-> 40.50" in out.out
    p = w.h.position("ETHUSDT")
    assert (p.stop, p.target, p.trail_distance, p.time_exit_at) == (55.0, 40.5, "0.5%", now + 600)
    assert json.loads(rows(w.db)[0]["args"]) == {
        "group_id": 2, "stop": 55.0, "target": 40.5, "trail_distance": "0.5%", "time_exit_at": now + 600}
    leg = rows(w.db, "legs")[1]
    assert (leg["stop"], leg["target"], leg["trail_distance"]) == (55.0, 40.5, "0.5%")  # persisted
    code = await w.shell("levels", "2", "--stop", "none", "--time-exit", "none")
    assert code == 0 and (w.h.position("ETHUSDT").stop, w.h.position("ETHUSDT").time_exit_at) == (None, None)


async def test_ctrl_c_while_waiting_cancels_the_command(w, capsys, monkeypatch):
    w.open_both()

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(shell, "_wait_for_answer", interrupted)
    assert await w.shell("exit", "--all", "--yes", engine=False) == 130
    assert "interrupted; the command was cancelled, nothing was changed" in capsys.readouterr().err
    assert rows(w.db)[0]["status"] == "cancelled"
    await w.inbox.poll_once()  # an engine coming up later does not run it
    assert len(w.engine.groups) == 2


async def test_leg_says_which_leg_of_a_basket(w, capsys):
    w.open_both()
    leg = next(leg for leg in w.engine.groups[2].legs)
    assert await w.shell("levels", "2", "--leg", str(leg.id), "--stop", "51") == 0
    assert json.loads(rows(w.db)[0]["args"]) == {"group_id": 2, "leg_id": leg.id, "stop": 51.0}
    assert leg.stop == 51.0
    assert await w.shell("levels", "2", "--leg", "99", "--stop", "52") == 1
    assert "#2 has no open leg 99" in capsys.readouterr().err


async def test_a_time_of_day_is_the_next_one_in_the_books_timezone(w):
    w.open_both()  # the fake clock is just after 2026-01-01 00:00 UTC
    assert await w.shell("levels", "1", "--time-exit", "00:00") == 0
    assert w.h.position("BTCUSDT").time_exit_at == 1_767_225_600.0 + 86_400  # tomorrow's, not today's


async def test_an_edit_that_would_exit_at_once_needs_yes(w, capsys):
    w.open_both()
    assert w.engine.edit_levels(1, trail_distance=5.0).ok
    w.h.quote("BTCUSDT", 110.0)
    w.h.quote("BTCUSDT", 106.0)
    assert await w.shell("levels", "1", "--trail", "2") == 1
    err = capsys.readouterr().err
    assert "refused: #1 BTCUSDT: this edit would exit at once (trailing_stop at 106.00)" in err, err
    assert "nothing was changed; pass --yes to apply it anyway" in err
    assert w.h.position("BTCUSDT").trail_level == 105.0
    assert await w.shell("levels", "1", "--trail", "2", "--yes") == 0
    assert "exiting (trailing_stop)" in capsys.readouterr().out


async def test_a_refusal_exits_1_with_the_engines_reason(w, capsys):
    w.open_both()
    assert await w.shell("levels", "1", "--stop", "101") == 1
    assert "tui-trader: refused: stop 101.00 is on the wrong side" in capsys.readouterr().err
    assert await w.shell("exit", "--strategy", "m") == 0
    assert await w.shell("exit", "--strategy", "m") == 1
    assert capsys.readouterr().err.strip() == "tui-trader: refused: m has no open position to exit"


@pytest.mark.parametrize("argv, reason", [
    (["levels", "9", "--stop", "90"], "no open position #9 (open: #1, #2); nothing was changed"),
    (["levels", "abc", "--stop", "90"], "POSITION: expected a position number like 3"),
    (["levels", "²", "--stop", "90"], "POSITION: expected a position number like 3"),
    (["levels", "1", "--stop", "cheap", "--target", "-3", "--trail", "0", "--trail-activation", "x%",
      "--time-exit", "25:00"],
     ("levels of #1 not changed:\n  --stop 'cheap': not a number: 'cheap'; none removes it\n"
      "  --target '-3': must be a positive price; none removes it\n  --trail '0': must be above 0; none removes it\n"
      "  --trail-activation 'x%': expected a percentage like \"0.5%\" or a number of points like 25, got 'x%'\n"
      "  --time-exit '25:00': not a time: '25:00' (use HH:MM UTC, or +90s / +5m / +1h from now); none removes it")),
    (["levels", "1", "--stop", "nan", "--time-exit", "+0"], "--stop 'nan': must be a positive price; none removes it"),
    (["levels", "1", "--time-exit", "+100000000"], "--time-exit '+100000000': '+100000000' is more than 366 days ahead"),
    (["levels", "1"], "nothing to change: give --stop, --target, --trail, --trail-activation or --time-exit"),
    (["levels", "1", "--stop", "90", "--wait", "0"], "--wait: must be more than 0 seconds, got 0"),
    (["exit"], "exit: give one of POSITION, --strategy ID or --all"),
    (["exit", "1", "--all"], "exit: give one of POSITION, --strategy ID or --all"),
    (["exit", "3"], "no open position #3 (open: #1, #2)"),
    (["exit", "--strategy", "x"], "unknown strategy 'x' (known: m, s)"),
    (["exit", "--all"], "exit --all exits every open position: confirm it with --yes"),
])
async def test_bad_input_exits_2_naming_the_problem_and_posts_nothing(w, capsys, argv, reason):
    w.open_both()
    assert await w.shell(*argv) == 2
    err = capsys.readouterr().err
    assert reason in err and "Traceback" not in err, err
    assert rows(w.db) == []


async def test_with_no_engine_running_nothing_is_posted(w, capsys):
    w.open_both()
    w.stop_engine()
    for argv in (["levels", "1", "--stop", "90"], ["exit", "1"], ["exit", "--all", "--yes"]):
        assert await w.shell(*argv, engine=False) == 1
        assert capsys.readouterr().err.strip() == ("tui-trader: no engine is running; start one with `make run` or "
                                                   "`tui-trader engine`; nothing was changed")
    assert rows(w.db) == []


async def test_no_answer_in_time_cancels_the_command(w, capsys):
    w.open_both()
    assert await w.shell("exit", "1", "--wait", "0.2", engine=False) == 1
    assert capsys.readouterr().err.strip() == ("tui-trader: no engine answered within 0.2 s; the command was "
                                               "cancelled, nothing was changed")
    (row,) = rows(w.db)
    assert (row["status"], row["outcome"], row["taken_at"]) == ("cancelled", "cancelled: no engine took it within 0.2 s", None)
    assert await w.inbox.poll_once() == 0  # an engine that wakes up later does not run it
    assert w.h.position("BTCUSDT") is not None


async def test_a_command_taken_as_its_poster_gives_up_reports_the_engines_answer(w, capsys, monkeypatch):
    w.open_both()
    real_cancel = command_inbox.cancel_command
    loop = asyncio.get_running_loop()
    claims = []

    def cancel_after_the_engine_took_it(eng, command_id, why):
        # the engine claims the row just before the poster's cancel reaches the database
        claims.append(asyncio.run_coroutine_threadsafe(asyncio.to_thread(w.inbox._read_pending), loop).result())
        return real_cancel(eng, command_id, why)

    monkeypatch.setattr(command_inbox, "cancel_command", cancel_after_the_engine_took_it)
    task = asyncio.ensure_future(w.shell("exit", "1", "--wait", "0.1", engine=False))
    for _ in range(3000):  # until the poster has tried to cancel, and failed: it waits for the outcome
        if claims or task.done():
            break
        await asyncio.sleep(0.005)
    (claimed_rows, claimed), = claims
    assert rows(w.db)[0]["status"] == "pending" and claimed == {1}
    w.inbox._unwritten[1] = w.inbox._decide(claimed_rows[0], claimed)  # the engine runs it, a little late
    await w.inbox._write_unwritten()
    assert await task == 0
    assert capsys.readouterr().out.startswith("closed #1 BTCUSDT")
    assert rows(w.db)[0]["status"] == "done"


async def test_exit_all_on_a_terminal_asks_to_type_exit(w, capsys, monkeypatch):
    w.open_both()

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal("exit\n"))
    assert await w.shell("exit", "--all") == 1
    out = capsys.readouterr()
    assert "this exits every open position (2: #1, #2) at market" in out.out
    assert out.err.strip() == "not confirmed; nothing was changed" and rows(w.db) == []
    monkeypatch.setattr("sys.stdin", Terminal("EXIT\n"))
    assert await w.shell("exit", "--all") == 0
    assert w.engine.snapshot().positions == ()
    assert json.loads(rows(w.db)[0]["args"]) == {"all": True}


# -- check-exits ------------------------------------------------------------------------------


def exits_book(w: Workbench) -> None:
    """#1 long BTCUSDT: stop 95, target 120, trailing level 99 at mark 104; #2 short ETHUSDT:
    stop 51, time exit at 00:10:01 (T0 + 601); then the engine's state written as it is written behind."""
    w.open_both()
    assert w.h.clock.now() == T0 + 1
    assert w.engine.edit_levels(1, stop=95.0, target=120.0, trail_distance=5.0).ok
    assert w.engine.edit_levels(2, stop=51.0, time_exit_at=w.h.clock.now() + 600).ok
    w.h.quote("BTCUSDT", 104.0)
    w.h.quote("ETHUSDT", 50.0, dt=0)
    w.engine.tick()
    w.store.flush()


async def test_check_exits_lists_triggers_closest_first_and_the_pnl_rules(w, capsys):
    exits_book(w)
    assert await w.shell("check-exits", "--json", engine=False) == 0
    report = json.loads(capsys.readouterr().out)
    triggers = [r for r in report if r["what"] == "position"]
    assert [(t["group_id"], t["kind"], t["level"]) for t in triggers] == [
        (2, "stop_loss", 51.0), (1, "trailing_stop", 99.0), (1, "stop_loss", 95.0), (1, "target", 120.0),
        (2, "time", T0 + 601)]
    assert triggers[0] == {"what": "position", "group_id": 2, "leg_id": 2, "strategy_id": "s", "symbol": "ETHUSDT",
                           "side": "sell", "kind": "stop_loss", "level": 51.0, "mark": 50.0,
                           "mark_ts": w.h.clock.now(), "distance": 1.0, "distance_pct": 2.0}
    assert triggers[1]["distance"] == 5.0 and triggers[1]["distance_pct"] == pytest.approx(5 / 104 * 100)
    assert triggers[-1]["distance"] == 599.0 and triggers[-1]["distance_pct"] is None  # now is T0 + 2
    rules = [r for r in report if r["what"] == "pnl_rule"]
    # the same rules and distances the engine shows, from the database
    engine_rules = sorted((r for pv in w.engine.snapshot().portfolio for r in pv.rules),
                          key=lambda r: (r.distance is None, r.distance or 0.0))
    assert [(r["scope"], r["kind"], r["level"], r["pnl"], r["distance"], r["armed"]) for r in rules] == [
        (r.scope, r.kind, r.level, r.pnl, r.distance, r.armed) for r in engine_rules]
    assert [(r["scope"], r["kind"]) for r in rules] == [
        ("m", "pnl_target"), ("book", "pnl_stop"), ("book", "daily_loss_limit"), ("m", "pnl_trailing")]
    assert rules[0]["pnl"] == 8.0 and rules[0]["distance"] == 142.0  # long 2 from 100 to 104
    assert (rules[-1]["level"], rules[-1]["armed"], rules[-1]["arms_at"]) == (None, False, 100.0)


async def test_check_exits_as_a_table(w, capsys):
    exits_book(w)
    assert await w.shell("check-exits", engine=False) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert lines[0] == ["position", "exits,", "closest", "first"]
    assert lines[2] == ["2", "s", "ETHUSDT", "short", "stop", "loss", "51.00", "50.00", "1.00", "2.00%"]
    assert lines[3] == ["1", "m", "BTCUSDT", "long", "trailing", "stop", "99.00", "104.00", "5.00", "4.81%"]
    assert lines[6] == ["2", "s", "ETHUSDT", "short", "time", "exit", "00:10:01", "UTC", "50.00", "in", "9m59s"]
    assert lines[7] == ["P&L", "rules,", "closest", "first"]
    assert lines[9] == ["m", "P&L", "target", "+150.00", "+8.00", "142.00"]
    assert lines[12] == ["m", "P&L", "trailing", "stop", "—", "+8.00", "—", "arms", "at", "P&L", "+100.00"]


async def test_check_exits_with_no_engine_running_says_the_figures_are_stored_ones(w, capsys):
    exits_book(w)
    w.stop_engine()
    assert await w.shell("check-exits", engine=False) == 0
    assert capsys.readouterr().out.startswith("no engine is running: marks and P&L as last stored\n")


# -- across processes -------------------------------------------------------------------------



def test_a_running_engine_takes_levels_and_exit_from_other_processes(tmp_path):
    (tmp_path / "c.toml").write_text(PROCESS_CONFIG)
    db = tmp_path / "db.sqlite"
    engine = EngineProcess(tmp_path)
    try:
        engine.read_until("engine running")
        assert cli(tmp_path, "signal", "--strategy", "m").returncode == 0
        (leg,) = rows(db, "legs")
        stop = round(leg["avg_entry"] * 0.5, 2)  # far below any mark the simulated feed reaches
        moved = cli(tmp_path, "levels", str(leg["group_id"]), "--stop", str(stop), "--trail", "1%")
        assert moved.returncode == 0, moved.stderr
        assert moved.stdout.startswith("#1 BTCUSDT: stop ") and f"-> {stop:,.2f}" in moved.stdout, moved.stdout
        assert (rows(db, "legs")[0]["stop"], rows(db, "legs")[0]["trail_distance"]) == (stop, "1%")
        report = json.loads(cli(tmp_path, "check-exits", "--json").stdout)
        assert {(r["group_id"], r["kind"]) for r in report} == {(1, "stop_loss"), (1, "trailing_stop")}
        closed = cli(tmp_path, "exit", "1")
        assert closed.returncode == 0, closed.stderr
        assert closed.stdout.startswith("closed #1 BTCUSDT, P&L "), closed.stdout
        assert rows(db, "position_groups")[0]["status"] == "closed"
        again = cli(tmp_path, "exit", "1")
        assert again.returncode == 2 and "no open position #1 (there are no open positions)" in again.stderr
    finally:
        engine.stop()
    assert [r["status"] for r in rows(db)] == ["done", "done"]
    nobody = cli(tmp_path, "exit", "--all", "--yes")
    assert nobody.returncode == 1 and "there is no open position to exit" in nobody.stderr
