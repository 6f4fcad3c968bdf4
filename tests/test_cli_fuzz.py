"""Command-line fuzzing (issue 13). Random options and values (empty, inf, nan, huge numbers,
unicode, bytes that are not UTF-8, as Python hands them over: lone surrogates) through
`tui_trader.cli.main` in this process, on a database holding an open position, and random
CSV files through the replay's readers. Nothing may escape: no traceback, no internal error,
no hang, exit code 0, 1 or 2, and an error line names what is wrong. The commands that start
an engine or the TUI, and `logs --follow`, which runs until ctrl+c, are not fuzzed. Seeded
(CLI_FUZZ_SEED picks other cases) and bounded in cases and time."""

from __future__ import annotations

import io
import logging
import math
import os
import random
import re
import signal
import sys
import time
import tomllib
from pathlib import Path

import pytest

from services.config import TradingConfig
from services.rules.bounds import MAX_NUMBER as MAX_PRICE
from services.replay import MAX_TS, BadFile, BadRow, read_quotes, run_replay
from services.replay_signals import read_signals
from services.store import SqlStore
from tests.conftest import Harness
from tui_trader import cli
from tui_trader.logs import stop_logging
from tui_trader.settings import load_settings

SEED = int(os.environ.get("CLI_FUZZ_SEED", "13"))
CASES = 400
FILES = 300
BUDGET_S = 90.0
"""Each part stops early past this, however many cases are left."""
CASE_TIMEOUT_S = 20
"""A case running longer is a hang."""

CONFIG = """
[paper]
slippage_bps = 0
[symbols.BTCUSDT]
start_price = 100
[symbols.ETHUSDT]
start_price = 10
[strategies.m]
symbols = ["BTCUSDT", "ETHUSDT"]
side = "buy"
entry = "manual"
sizing = { fixed_qty = 1 }
stop_loss = "5%"
"""

VALUES = [
    "", " ", "0", "1", "-1", "3", "0.5", "1e30", "1e308", "-1e308", "1e-320", "inf", "-inf", "nan", "NaN", "9" * 40,
    "abc", "#1", "#0", "1_000", "none", "NONE", "15:55", "25:99", "+600", "+inf", "0.5%", "1e308%", "-2%", "BTCUSDT",
    "m", "buy", "sell", "exit", "flat", "2026-11-21", "2026-11-21T03:00+01:00", "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00+14:00", "03:00", "90s", "1e30d", "Ünïcødé ☃ 𝔘", "caf\udce9", "\udcff", "x" * 5000, "-", "--",
    "%s%n{0}", "'; drop table legs; --", "\t\n",
]
BAD_WAITS = ["inf", "-inf", "nan", "-1", "1e308", "3601", "9" * 40, "", " ", "abc", "\udcff", "--"]
"""--wait gets these, not VALUES: a good wait is waited out (no engine answers a signal)."""
FLAG = None
COMMANDS = {  # option -> FLAG, or the values it takes (a file's kind for special()); any may get one of VALUES
    "positions": {"--json": FLAG},
    "check-exits": {"--json": FLAG},
    "logs": {"--level": ["warning", "ERROR"], "--since": ["2h", "2026-01-01", "03:00"], "--grep": ["entered", "É"],
             "--category": ["fill"], "--strategy": ["m"], "--symbol": ["BTCUSDT"], "--alerts": FLAG,
             "--limit": ["1", "50"], "--json": FLAG},
    "signal": {"--strategy": ["m"], "--symbol": ["BTCUSDT", "BINANCE:ETHUSDT"], "--action": ["buy", "EXIT", "short"],
               "--price": ["101.5"], "--timeframe": ["15", "1h"], "--size": ["2"], "--json": "json",
               "--wait": ["0", "0.2"]},
    "levels": {"POSITION": ["1", "#1"], "--stop": ["90", "none"], "--target": ["150"], "--trail": ["1%", "2"],
               "--trail-activation": ["0.5%"], "--time-exit": ["15:55", "+600"], "--leg": ["1"], "--yes": FLAG,
               "--wait": ["0.2"]},
    "exit": {"POSITION": ["1"], "--strategy": ["m"], "--all": FLAG, "--yes": FLAG, "--wait": ["0.2"]},
    "pause": {"STRATEGY": ["m"], "--all": FLAG, "--wait": ["0.2"]},
    "resume": {"STRATEGY": ["m"], "--all": FLAG, "--wait": ["0.2"]},
    "replay": {"QUOTES": "quotes", "--out": "out", "--signals": "signals", "--skip-bad": FLAG},
}
COMMON = {"--db": "db", "--log-level": ["debug", "warning"]}
REQUIRED = {"POSITION", "STRATEGY", "QUOTES", "--strategy"}
"""Given in most cases, so most cases get past the parser."""
NAMED = re.compile(r"--[a-z]|\b[A-Z]{3,}|#\d|line \d|'|\"|/")
ERROR_LINE = re.compile(r"^(tui-trader: |tui-trader [\w-]+: error: |usage: |  +\S)")
"""What stderr of a failed command is made of: our lines (problems indented below the first) and argparse's."""


class Hung(BaseException):
    """Raised in a case that runs past CASE_TIMEOUT_S (a BaseException: main() must not catch it)."""


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A data directory with settings, a database holding one open position (#1, no engine
    running), a quotes and a signals file; the logging main() sets up is undone after."""
    monkeypatch.setenv("TUI_TRADER_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("TUI_TRADER_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # a relative --db or --out is made here
    (tmp_path / "c.toml").write_text(CONFIG)
    store = SqlStore(f"sqlite:///{tmp_path / 'tui_trader.db'}")  # the data directory's: used without --db too
    h = Harness(load_settings(tmp_path / "c.toml"), store=store)
    h.quote("BTCUSDT", 100.0)
    assert h.engine.enter_now("m").ok
    store.close()
    (tmp_path / "q.csv").write_text("ts,symbol,bid,ask\n1767225600,BTCUSDT,100,100.1\n1767225601,BTCUSDT,101,101.1\n")
    (tmp_path / "s.csv").write_text("ts,strategy,symbol,action\n1767225600.5,m,BTCUSDT,buy\n")
    (tmp_path / "not.csv").write_bytes(b"ts,symbol,bid,ask\n\xff\xfe\n")
    (tmp_path / "signal.json").write_text('{"strategy": "m", "price": 1e999}')
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield tmp_path
    stop_logging()
    root.handlers[:] = handlers
    root.setLevel(level)


def special(kind: str, rng: random.Random, tmp: Path) -> str:
    """A value for an option that names a file or a database: mostly a good one."""
    good = {"db": str(tmp / "tui_trader.db"), "quotes": str(tmp / "q.csv"), "out": str(tmp / "out.json"),
            "signals": str(tmp / "s.csv"), "json": str(tmp / "signal.json")}[kind]
    bad = [str(tmp), str(tmp / "not.csv"), str(tmp / "no" / "dir" / "x"), "foo://", "sqlite://", "", "\udcff",
           "-", str(tmp / "c.toml") + "/x", "/sys/x.json"]
    return good if rng.random() < 0.7 else rng.choice(bad)


def arguments(rng: random.Random, tmp: Path) -> list[str]:
    command = rng.choice(sorted(COMMANDS))
    options = COMMANDS[command]
    chosen = [name for name in options if name in REQUIRED and rng.random() < 0.8]
    chosen += rng.sample(sorted(options), rng.randint(0, min(3, len(options))))
    chosen += [name for name in COMMON if rng.random() < 0.2]
    argv = [command]
    for name in dict.fromkeys(chosen):
        values = options.get(name, COMMON.get(name))
        if values is FLAG:
            argv.append(name)
            continue
        if rng.random() < 0.4:
            value = rng.choice(BAD_WAITS if name == "--wait" else VALUES)
        else:
            value = special(values, rng, tmp) if isinstance(values, str) else rng.choice(values)
        if name.isupper():
            argv.insert(1, value)
        elif rng.random() < 0.2:
            argv.append(f"{name}={value}")
        else:
            argv += [name, value]
    if command == "signal" and not any(a.startswith("--wait") for a in argv):
        argv += ["--wait", "0"]  # no engine runs: the default would wait 3 s for nothing
    if command == "replay" and not any(a.startswith("--out") for a in argv):
        argv += ["--out", str(tmp / "out.json")]
    return [*argv, "--config", str(tmp / "c.toml")]


def run_main(argv: list[str]) -> tuple[int, str, str]:
    """main(argv) with stdout and stderr as a real terminal's: stdout refuses what is not
    UTF-8, stderr escapes it."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace")
    stdin = io.TextIOWrapper(io.BytesIO(b'{"strategy": "m", "size": "\xff"}'), encoding="utf-8")
    saved = sys.stdout, sys.stderr, sys.stdin
    sys.stdout, sys.stderr, sys.stdin = out, err, stdin

    def hung(*_):
        raise Hung(argv)

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(CASE_TIMEOUT_S)
    try:
        try:
            code = cli.main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        sys.stdout, sys.stderr, sys.stdin = saved
    texts = []
    for stream in (out, err):
        stream.flush()
        texts.append(stream.buffer.getvalue().decode("utf-8"))
    return code, *texts


def test_random_command_lines_exit_0_1_or_2_and_name_what_is_wrong(workdir):
    rng = random.Random(SEED)
    deadline = time.monotonic() + BUDGET_S
    seen = set()
    for _ in range(CASES):
        if time.monotonic() > deadline:
            break
        argv = arguments(rng, workdir)
        code, out, err = run_main(argv)
        seen.add((argv[0], code))
        case = f"{argv!r} -> {code}\nstdout: {out[-2000:]}\nstderr: {err[-2000:]}"
        assert code in (0, 1, 2), case
        assert "Traceback" not in err and "internal error" not in err, case
        if code:
            lines = err.splitlines()
            assert lines and all(ERROR_LINE.match(line) for line in lines), case
            what = next(line for line in lines if not line.startswith(("usage: ", " ")))
            assert len(what.partition(": ")[2]) > 10, case  # more than a prefix: a reason
            if code == 2:  # bad input: the option, argument, file, line or value is named
                assert NAMED.search(err), case
    commands = {command for command, _ in seen}
    assert len(commands) > 5, seen  # the budget left room for most commands


# -- the replay's files --------------------------------------------------------------------------

CELLS = ["1767225600", "1767225601.5", "2026-01-01T00:00:01Z", "2026-01-01 00:00:02", "100", "100.5", "0", "-1", "",
         " ", "1e300", "1e308", "1e12", "1e-320", "inf", "-inf", "nan", "9" * 400, "BTCUSDT", "ETHUSDT", "m", "buy",
         "exit", "15", "Ünïcødé", '"quoted, with comma"', '"multi\nline"', '"unclosed', "a\x00b", "0x10", "1_0"]


def random_csv(rng: random.Random, header: list[str]) -> bytes:
    lines = [",".join(header if rng.random() < 0.9 else rng.sample(header, rng.randint(1, len(header))))]
    for _ in range(rng.randint(0, 12)):
        lines.append(",".join(rng.choice(CELLS) for _ in range(len(header) + rng.choice((0, 0, 0, 0, -1, 1)))))
    data = "\n".join(lines).encode()
    roll = rng.random()
    if roll < 0.05:
        data += b"\n1767225700,BTCUSDT," + b"1" * 131_073 + b",2"  # over the csv module's field limit
    elif roll < 0.1:
        data += "\n1767225700,CAFÉ,1,2".encode("latin-1")
    elif roll < 0.13:
        data = bytes(rng.randrange(256) for _ in range(rng.randint(1, 300)))
    elif roll < 0.16:
        data = b"\xef\xbb\xbf" + data  # a byte order mark
    return data + (b"\r\n" if rng.random() < 0.5 else b"")


def test_random_csv_files_give_good_quotes_and_signals_or_name_the_bad_row_or_file(tmp_path):
    rng = random.Random(SEED)
    config = TradingConfig.model_validate(tomllib.loads(CONFIG))
    deadline = time.monotonic() + BUDGET_S
    path = tmp_path / "f.csv"
    for _ in range(FILES):
        if time.monotonic() > deadline:
            break
        skip_bad = rng.random() < 0.5
        path.write_bytes(random_csv(rng, ["ts", "symbol", "bid", "ask", *rng.sample(["last", "bid_size", "ask_size"],
                                                                                    rng.randint(0, 3))]))
        bad: list[BadRow] = []
        quotes = []
        try:
            quotes = list(read_quotes(str(path), skip_bad=skip_bad, bad_rows=bad))
        except BadRow as exc:
            bad.append(exc)
        except BadFile as exc:
            assert str(exc).startswith("not UTF-8 text"), exc
        for b in bad:
            assert b.line >= 1 and b.reason and str(b) == f"line {b.line}: {b.reason}", b
        last = 0.0
        for q in quotes:
            assert last <= q.ts <= MAX_TS and math.isfinite(q.ts), q
            assert all(0.0 <= v <= MAX_PRICE for v in (q.bid, q.ask, q.last)), q
            assert q.bid > 0 or q.ask > 0, q
            last = q.ts
        run_replay(config, quotes)  # whatever was read, the engine takes it

        path.write_bytes(random_csv(rng, ["ts", "strategy", "symbol", "action", *rng.sample(
            ["price", "size", "timeframe", "comment"], rng.randint(0, 4))]))
        try:
            signals = read_signals(str(path), config, skip_bad=skip_bad)
        except BadRow as exc:
            assert exc.line >= 1 and exc.reason, exc
        except BadFile as exc:
            assert str(exc).startswith("not UTF-8 text"), exc
        else:
            assert all(0.0 <= s.ts <= MAX_TS for s in signals), signals
