"""Signals from another process: `tui-trader signal` records an inbox row, the running
engine (or the next one to start) takes it and records the outcome; expired signals are not
acted on; bad input is refused with exit code 2 and nothing recorded."""

from __future__ import annotations

import asyncio
import json
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from services.signal_inbox import SignalInbox, post_signal
from services.signal_message import SignalMessage, read_signal
from tests.conftest import Harness
from tests.engine_support import make_config, strat


def inbox_rows(db_url: str) -> list[dict]:
    path = db_url[len("sqlite:///"):]
    if not Path(path).exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        if not db.execute("select 1 from sqlite_master where name = 'signal_inbox'").fetchone():
            return []
        return [dict(r) for r in db.execute("select * from signal_inbox order by id")]
    finally:
        db.close()


def signal_rows(db_url: str) -> list[dict]:
    db = sqlite3.connect(f"file:{db_url[len('sqlite:///'):]}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        return [{**dict(r), "payload": json.loads(r["payload"])} for r in db.execute("select * from signals order by id")]
    finally:
        db.close()


def manual_config():
    return make_config({
        "m": strat(entry="manual"),  # buy BTCUSDT
        "s": strat(entry="manual", side="sell", symbols=["ETHUSDT"]),
    })


@pytest.fixture
def bound(sql_store, db_url):
    """An engine on a fake clock and a temp SQLite database, with an inbox bound to it."""
    h = Harness(manual_config(), store=sql_store)
    inbox = SignalInbox(db_url, ttl_s=300)
    inbox.bind(h.engine)
    yield h, inbox
    if inbox._db is not None:
        inbox._db.dispose()


def post(db_url, h, strategy, symbol=None, side=None, price=None, age=0.0, intent="entry", **fields) -> int:
    """A row as `tui-trader signal` records it; not checked here, as if the settings changed since."""
    message = SignalMessage(strategy, intent, symbol, side, price, **fields)
    return post_signal(db_url, message, h.clock.now() - age)


# -- the inbox on a fake clock ----------------------------------------------------------------


async def test_a_posted_signal_enters_and_both_rows_record_the_outcome(bound, db_url):
    h, inbox = bound
    h.quote("BTCUSDT", 100.0)
    iid = post(db_url, h, "m", "BTCUSDT", "buy", 100.5)
    assert await inbox.poll_once() == 1
    (row,) = inbox_rows(db_url)
    assert (row["id"], row["status"], row["signal_id"]) == (iid, "taken", "1")
    assert "entered buy 1 BTCUSDT at 100.00" in row["outcome"] and row["taken_at"] == h.clock.now()
    (sig,) = signal_rows(db_url)
    assert (sig["strategy_id"], sig["symbol"], sig["source"], sig["status"], sig["price"]) == ("m", "BTCUSDT", "cli", "done", 100.5)
    assert sig["outcome"] == row["outcome"] and sig["payload"]["inbox_id"] == iid
    assert h.position("BTCUSDT").strategy_id == "m"
    assert await inbox.poll_once() == 0  # taken once


async def test_unknown_strategy_symbol_and_wrong_side_are_rejected_with_the_reason(bound, db_url):
    h, inbox = bound
    h.quote("BTCUSDT", 100.0)
    h.quote("ETHUSDT", 50.0)
    post(db_url, h, "nope")
    post(db_url, h, "m", "DOGE")
    post(db_url, h, "m", "ETHUSDT")
    post(db_url, h, "s", side="buy")
    assert await inbox.poll_once() == 4
    assert [(r["status"], r["outcome"], r["signal_id"]) for r in inbox_rows(db_url)] == [
        ("rejected", "strategy: unknown strategy 'nope' (known: m, s)", None),
        ("rejected", "symbol: unknown symbol 'DOGE' (known: BTCUSDT, ETHUSDT, ACME)", None),
        ("rejected", "symbol: strategy m does not trade ETHUSDT (it trades BTCUSDT)", None),
        ("rejected", "action: strategy s only opens sell positions, this entry is buy", None),
    ]
    assert h.engine.snapshot().positions == () and signal_rows(db_url) == []


async def test_an_exit_signal_closes_the_strategys_position(bound, db_url):
    h, inbox = bound
    h.quote("BTCUSDT", 100.0)
    assert h.engine.enter_now("m").ok
    iid = post(db_url, h, "m", "BTCUSDT", "sell", 101.0, intent="exit", timeframe="15")
    assert await inbox.poll_once() == 1
    (row,) = inbox_rows(db_url)
    assert (row["id"], row["intent"], row["status"]) == (iid, "exit", "taken"), row
    h.quote("BTCUSDT", 101.0)
    assert h.position("BTCUSDT") is None
    assert h.engine.trades[-1].exit_reason == "signal"
    sig = signal_rows(db_url)[-1]
    assert (sig["kind"], sig["status"], sig["price"], sig["payload"]["inbox_id"]) == ("exit", "done", 101.0, iid)
    assert row["signal_id"] == str(sig["id"])


async def test_an_entry_reaches_the_engine_with_its_timeframe_and_size(bound, db_url, monkeypatch):
    h, inbox = bound
    h.quote("BTCUSDT", 100.0)
    calls = []
    enter_now = h.engine.enter_now

    def recording(*args, **kw):
        calls.append(kw)
        return enter_now(*args, **kw)

    monkeypatch.setattr(h.engine, "enter_now", recording)
    post(db_url, h, "m", "BTCUSDT", "buy", 100.5, timeframe="1h", size=3.0)
    assert await inbox.poll_once() == 1
    (kw,) = calls
    assert (kw["timeframe"], kw["size"], kw["price"]) == ("1h", 3.0, 100.5)
    assert h.position("BTCUSDT").qty == 3  # the strategy's own sizing is 1
    (row,) = inbox_rows(db_url)
    assert (row["status"], row["timeframe"], row["size"]) == ("taken", "1h", 3.0)


async def test_a_row_the_settings_no_longer_allow_is_rejected_with_the_field_and_reason(bound, db_url):
    h, inbox = bound
    h.quote("ETHUSDT", 50.0)
    # read and recorded under settings where m also traded ETHUSDT; this engine's m does not
    before = make_config({"m": strat(entry="manual", symbols=["BTCUSDT", "ETHUSDT"])})
    post_signal(db_url, read_signal({"strategy": "m", "ticker": "BINANCE:ETHUSDT", "action": "buy"}, before),
                h.clock.now())
    assert await inbox.poll_once() == 1
    (row,) = inbox_rows(db_url)
    assert (row["status"], row["outcome"]) == ("rejected", "symbol: strategy m does not trade ETHUSDT (it trades BTCUSDT)")
    assert h.engine.snapshot().positions == () and signal_rows(db_url) == []


async def test_a_refusal_by_the_engine_is_recorded_on_both_rows(bound, db_url):
    h, inbox = bound
    h.quote("BTCUSDT", 100.0)
    assert h.engine.enter_now("m").ok
    post(db_url, h, "m")
    await inbox.poll_once()
    (row,) = inbox_rows(db_url)
    assert row["status"] == "rejected" and "m already holds #1" in row["outcome"]
    sig = signal_rows(db_url)[-1]
    assert (str(sig["id"]), sig["status"], sig["outcome"]) == (row["signal_id"], "rejected", row["outcome"])


async def test_a_signal_older_than_the_ttl_expires_without_acting(bound, db_url):
    h, inbox = bound
    h.quote("BTCUSDT", 100.0)
    post(db_url, h, "m", age=301)
    post(db_url, h, "m", age=299)
    assert await inbox.poll_once() == 2
    old, fresh = inbox_rows(db_url)
    assert (old["status"], old["outcome"]) == ("expired", "expired after 301 s (signal_ttl_s is 300 s)")
    assert fresh["status"] == "taken"
    assert len(signal_rows(db_url)) == 1


async def test_after_the_start_a_signal_waits_for_the_first_quotes(bound, db_url):
    h, inbox = bound  # bound at the engine's start, no quote yet
    post(db_url, h, "m")
    post(db_url, h, "s")
    assert await inbox.poll_once() == 0
    assert [r["status"] for r in inbox_rows(db_url)] == ["pending", "pending"]
    h.quote("BTCUSDT", 100.0, dt=1)
    assert await inbox.poll_once() == 1  # m's symbol has a quote now; s's not yet
    h.clock.advance(5)  # past the start-up grace (feed.max_quote_age_s): decided on what there is
    assert await inbox.poll_once() == 1
    m, s = inbox_rows(db_url)
    assert m["status"] == "taken"
    assert s["status"] == "rejected" and "ETHUSDT: no fresh quote" in s["outcome"]


async def test_a_signal_the_engine_acted_on_before_a_crash_is_not_acted_on_again(bound, db_url):
    h, inbox = bound
    h.quote("BTCUSDT", 100.0)
    iid = post(db_url, h, "m")
    # the engine entered, then died before the inbox row was marked
    assert h.engine.enter_now("m", source="cli", payload={"inbox_id": iid}).ok
    assert await inbox.poll_once() == 1
    (row,) = inbox_rows(db_url)
    assert (row["status"], row["signal_id"]) == ("taken", "1") and "entered buy 1 BTCUSDT" in row["outcome"]
    assert len(signal_rows(db_url)) == 1 and len(h.engine.snapshot().positions) == 1


async def test_a_database_error_is_retried_on_the_next_poll_and_nothing_is_done_twice(bound, db_url, monkeypatch, caplog):
    h, inbox = bound
    h.quote("BTCUSDT", 100.0)
    post(db_url, h, "m")
    real_read, real_write = inbox._read_pending, inbox._write

    def broken(*a):
        raise OperationalError("select", {}, Exception("disk I/O error"))

    monkeypatch.setattr(inbox, "_read_pending", broken)
    assert await inbox.poll_once() == 0  # logged, not raised
    assert "database read failed" in caplog.text
    monkeypatch.setattr(inbox, "_read_pending", real_read)
    monkeypatch.setattr(inbox, "_write", broken)
    assert await inbox.poll_once() == 1  # entered; the outcome could not be recorded yet
    assert inbox_rows(db_url)[0]["status"] == "pending"
    monkeypatch.setattr(inbox, "_write", real_write)
    assert await inbox.poll_once() == 0  # records the outcome, does not enter again
    (row,) = inbox_rows(db_url)
    assert row["status"] == "taken" and row["signal_id"] == "1"
    assert len(signal_rows(db_url)) == 1


async def test_a_stopping_engine_leaves_signals_pending_for_the_next_start(bound, db_url):
    h, inbox = bound
    h.quote("BTCUSDT", 100.0)
    post(db_url, h, "m")
    h.engine.state = "stopping"
    assert await inbox.poll_once() == 0
    assert inbox_rows(db_url)[0]["status"] == "pending"


async def test_as_an_attachment_it_polls_until_stopped(sql_store, db_url):
    h = Harness(manual_config(), store=sql_store)
    h.quote("BTCUSDT", 100.0)
    inbox = SignalInbox(db_url, poll_interval_s=0.05)
    await inbox.start(h.engine)
    try:
        post(db_url, h, "m")
        for _ in range(100):
            await asyncio.sleep(0.02)
            if inbox_rows(db_url)[0]["status"] != "pending":
                break
        assert inbox_rows(db_url)[0]["status"] == "taken"
    finally:
        await inbox.stop()
    post(db_url, h, "m")
    await asyncio.sleep(0.2)
    assert inbox_rows(db_url)[1]["status"] == "pending"


# -- the command, across processes ------------------------------------------------------------

CONFIG = """
[engine]
signal_ttl_s = 60
[feed]
seed = 7  # the same path at every run
max_quote_age_s = 5
[symbols.BTCUSDT]
start_price = 100
tick_interval_s = 0.05
[symbols.ETHUSDT]
start_price = 50
tick_interval_s = 0.05
[strategies.m]
symbols = ["BTCUSDT"]
side = "buy"
entry = "manual"
sizing = { fixed_qty = 2 }
[strategies.s]
symbols = ["ETHUSDT"]
side = "sell"
entry = "manual"
sizing = { fixed_qty = 3 }
"""

ENV_PATH = "/usr/bin:/bin"


def cli(tmp_path: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    cfg, db = tmp_path / "c.toml", tmp_path / "db.sqlite"
    return subprocess.run([sys.executable, "-m", "tui_trader", *args, "--config", str(cfg), "--db", str(db)],
                          capture_output=True, text=True, timeout=60,
                          env={"TUI_TRADER_DATA_DIR": str(tmp_path), "PATH": ENV_PATH}, **kw)


class EngineProcess:
    """`tui-trader engine` in a subprocess; its stdout read by a thread, so a wait never hangs."""

    def __init__(self, tmp_path: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tui_trader", "engine", "--config", str(tmp_path / "c.toml"),
             "--db", str(tmp_path / "db.sqlite")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={"TUI_TRADER_DATA_DIR": str(tmp_path), "PATH": ENV_PATH})
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)

    def read_until(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                break
            self.seen.append(line)
            if text in line:
                return
        raise AssertionError(f"no {text!r} from the engine in {timeout:g} s: " + "".join(self.seen))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        err = self.proc.stderr.read()
        self.proc.stderr.close()
        assert self.proc.returncode == 0, err


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "c.toml").write_text(CONFIG)
    return tmp_path


def test_a_running_engine_takes_a_signal_from_another_process(workdir):
    db_url = f"sqlite:///{workdir / 'db.sqlite'}"
    engine = EngineProcess(workdir)
    try:
        engine.read_until("engine running")
        proc = cli(workdir, "signal", "--strategy", "s", "--side", "sell", "--price", "50.1")
        assert proc.returncode == 0, proc.stderr
        recorded, outcome = proc.stdout.splitlines()
        assert recorded == "recorded signal #1: entry s sell (every symbol it trades), price 50.1"
        assert outcome.startswith("taken: entered sell 3 ETHUSDT at "), proc.stdout
        engine.read_until("s: entered sell 3 ETHUSDT")
        refused = cli(workdir, "signal", "--strategy", "s", "--side", "sell", "--wait", "10")
        assert refused.returncode == 1, refused  # the exit-code contract: refused by the engine
        assert refused.stdout.splitlines()[1].startswith("rejected: "), refused.stdout
        piped = cli(workdir, "signal", "--json", "-", input=json.dumps({"strategy": "m", "symbol": "BTCUSDT"}))
        assert piped.returncode == 0 and "\ntaken: entered buy 2 BTCUSDT" in piped.stdout, piped
        closing = cli(workdir, "signal", "--json", "-", input=json.dumps(
            {"strategy": "s", "ticker": "BINANCE:ETHUSDT", "action": "buy", "interval": "5", "contracts": 3}))
        assert closing.returncode == 0, closing
        assert closing.stdout.startswith("recorded signal #4: exit s ETHUSDT, timeframe 5\ntaken: "), closing.stdout
        engine.read_until("s: closed #")
    finally:
        engine.stop()
    row, refused_row, _, exit_row = inbox_rows(db_url)
    assert (row["status"], row["signal_id"], row["price"]) == ("taken", "1", 50.1)
    assert refused_row["status"] == "rejected"
    assert (exit_row["intent"], exit_row["status"], exit_row["timeframe"]) == ("exit", "taken", "5")
    sig = signal_rows(db_url)[0]
    assert (sig["strategy_id"], sig["source"], sig["status"], sig["payload"]["inbox_id"]) == ("s", "cli", "done", 1)
    listed = cli(workdir, "positions", "--json")
    assert [(p["strategy_id"], p["symbol"], p["side"], p["qty"]) for p in json.loads(listed.stdout)] == [
        ("m", "BTCUSDT", "buy", 2.0)]


def test_a_signal_with_no_engine_running_is_handled_at_the_next_start(workdir):
    db_url = f"sqlite:///{workdir / 'db.sqlite'}"
    proc = cli(workdir, "signal", "--strategy", "m", "--wait", "0.3")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "recorded signal #1: entry m (every symbol it trades)",
        "no engine took it within 0.3 s — it is handled when an engine starts, unless older than signal_ttl_s (60 s)"]
    # one that is too old by the time an engine starts (posted by an older poster)
    post_signal(db_url, SignalMessage("s", "entry"), time.time() - 90)
    engine = EngineProcess(workdir)
    try:
        engine.read_until("m: entered buy 2 BTCUSDT")
        for _ in range(50):
            if all(r["status"] != "pending" for r in inbox_rows(db_url)):
                break
            time.sleep(0.1)
    finally:
        engine.stop()
    taken, expired = inbox_rows(db_url)
    assert taken["status"] == "taken" and "entered buy 2 BTCUSDT" in taken["outcome"]
    assert expired["status"] == "expired" and re.fullmatch(r"expired after 9\d s \(signal_ttl_s is 60 s\)", expired["outcome"])
    assert [(s["strategy_id"], s["status"]) for s in signal_rows(db_url)] == [("m", "done")]


async def test_an_inbox_rejection_and_an_expiry_reach_the_event_stream(bound, db_url):
    h, inbox = bound
    h.quote("BTCUSDT", 100.0)
    post(db_url, h, "nope")
    post(db_url, h, "m", age=301)
    assert await inbox.poll_once() == 2
    messages = [e.message for e in h.engine.events if e.category == "signal"]
    assert len(messages) == 2 and "rejected: strategy: unknown strategy 'nope'" in messages[0], messages
    assert messages[1].endswith("expired after 301 s unhandled"), messages
