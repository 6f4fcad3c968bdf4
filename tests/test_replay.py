"""`tui-trader replay`: the engine over recorded quotes, the result JSON, and bad rows."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from services.config import TradingConfig
from services.market import Quote
from services.replay import BadRow, parse_ts, read_quotes, run_replay
from services.replay_signals import read_signals
from tests.conftest import T0

CONFIG = """
[symbols.BTCUSDT]
start_price = 100
[symbols.ETHUSDT]
start_price = 10
[paper]
slippage_bps = 0
taker_fee_bps = 0
[strategies.t]
symbols = ["BTCUSDT"]
side = "buy"
sizing = { fixed_qty = 2 }
trail_distance = "1%"
"""

# Long at ask 100 (mark 100); peak 102 -> level 100.98; 100.5 crosses it -> exit at the bid.
# Re-entry on the next quote (cooldown 0) at ask 101; still open at the end.
QUOTES = """ts,symbol,bid,ask,last
2026-01-01T00:00:00Z,BTCUSDT,100,100,100
1767225601,BTCUSDT,102,102,
1767225602,ETHUSDT,10,10.1,
1767225603,BTCUSDT,100.5,100.5,
1767225604,BTCUSDT,101,101,
"""


def run(tmp_path: Path, quotes: str, *extra: str) -> subprocess.CompletedProcess:
    (tmp_path / "cfg.toml").write_text(CONFIG)
    (tmp_path / "q.csv").write_text(quotes)
    return run_cli(tmp_path, str(tmp_path / "q.csv"), *extra)


def run_cli(tmp_path: Path, *args: str, out: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tui_trader", "replay", *args, "--config", str(tmp_path / "cfg.toml"),
         "--out", out or str(tmp_path / "out.json")],
        capture_output=True, text=True, timeout=60, env={"TUI_TRADER_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )


def test_replay_writes_trades_fills_and_open_positions(tmp_path):
    proc = run(tmp_path, QUOTES)
    assert proc.returncode == 0, proc.stderr
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["quotes"] == 5 and out["elapsed_s"] >= 0
    assert out["trades"] == [{
        "strategy": "t", "symbol": "BTCUSDT", "side": "buy", "qty": 2.0, "entry_ts": 1767225600.0,
        "entry_price": 100.0, "exit_ts": 1767225603.0, "exit_price": 100.5, "exit_reason": "trailing_stop",
        "pnl": pytest.approx(1.0),
    }]
    assert [(f["side"], f["price"], f["ts"]) for f in out["fills"]] == [
        ("buy", 100.0, 1767225600.0), ("sell", 100.5, 1767225603.0), ("buy", 101.0, 1767225604.0)]
    assert [(o["symbol"], o["entry_price"], o["entry_ts"]) for o in out["open"]] == [("BTCUSDT", 101.0, 1767225604.0)]


GRID = TradingConfig.model_validate({
    "paper": {"slippage_bps": 0, "taker_fee_bps": 0, "maker_fee_bps": 0},
    "symbols": {"BTCUSDT": {"start_price": 100, "tick_size": 0.01, "lot_step": 0.001}},
    "strategies": {"g": {"symbols": ["BTCUSDT"], "side": "buy", "sizing": {"fixed_value": 400}, "dca": {"layers": [
        {"gap_pct": 0, "weight": 1, "tp_pct": 1}, {"gap_pct": 2, "weight": 1, "tp_pct": 1.5},
        {"gap_pct": 5, "weight": 2, "tp_pct": 2}]}}},
})


def test_a_layer_closed_by_its_own_take_profit_is_a_trade_while_its_grid_stays_open():
    # layer 1 at 100; layer 2 fills at 98 and takes its profit (99.47) at 99.5; layer 3 rests at 95
    quotes = [Quote("BTCUSDT", T0 + i, px, px) for i, px in enumerate((100.0, 97.9, 99.5))]
    out = run_replay(GRID, quotes).to_json()
    assert out["trades"] == [{
        "strategy": "g", "symbol": "BTCUSDT", "side": "buy", "qty": 1.02, "entry_ts": T0 + 1, "entry_price": 98.0,
        "exit_ts": T0 + 2, "exit_price": 99.5, "exit_reason": "target", "pnl": pytest.approx(1.5 * 1.02),
    }]
    assert [(o["qty"], o["entry_price"]) for o in out["open"]] == [(1.0, 100.0)]


def test_a_bad_row_stops_the_run_with_its_line_number(tmp_path):
    proc = run(tmp_path, QUOTES.replace("1767225603,BTCUSDT,100.5", "1767225603,BTCUSDT,oops"))
    assert proc.returncode == 2
    assert "line 5: bid 'oops' is not a number" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out.json").exists()


def test_skip_bad_skips_and_counts(tmp_path):
    proc = run(tmp_path, QUOTES.replace("1767225602,ETHUSDT,10,10.1", "1767225602,ETHUSDT,11,10.1"), "--skip-bad")
    assert proc.returncode == 0, proc.stderr
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["quotes"] == 4 and out["skipped"] == 1
    assert out["skipped_rows"] == [{"line": 4, "reason": "bid 11.0 is above ask 10.1"}]


def test_a_missing_quotes_file_is_a_clear_error(tmp_path):
    (tmp_path / "cfg.toml").write_text(CONFIG)
    proc = subprocess.run([sys.executable, "-m", "tui_trader", "replay", str(tmp_path / "nope.csv"), "--config",
                           str(tmp_path / "cfg.toml"), "--out", str(tmp_path / "o.json")],
                          capture_output=True, text=True, timeout=60, env={"TUI_TRADER_DATA_DIR": str(tmp_path)})
    assert proc.returncode == 2 and "nope.csv: cannot be read (No such file or directory)" in proc.stderr


@pytest.mark.parametrize("header, reason", [
    ("ts,symbol,bid", "missing column(s) ask"),
    ("ts,symbol,bid,ask,volume", "unknown column(s) volume"),
])
def test_a_bad_header_is_line_1(tmp_path, header, reason):
    path = tmp_path / "q.csv"
    path.write_text(header + "\n")
    with pytest.raises(BadRow) as info:
        list(read_quotes(str(path)))
    assert info.value.line == 1 and reason in info.value.reason


BAD_ROWS = [  # (row, the reason given), each on line 3 after a good row
    ("1e300,BTCUSDT,1,2", "ts '1e300' is not a time from 1970 to 9999"),
    ("nan,BTCUSDT,1,2", "ts 'nan' is not a time from 1970 to 9999"),
    ("-5,BTCUSDT,1,2", "ts '-5' is not a time from 1970 to 9999"),
    ("1767225601,BTCUSDT,inf,inf", "bid 'inf' is too large (above 1e+12)"),
    ("1767225601,BTCUSDT,1,1e308", "ask '1e308' is too large (above 1e+12)"),
    ("1767225601,BTCUSDT," + "1" * 131_073 + ",2", "field larger than field limit (131072)"),
]


@pytest.mark.parametrize("row, reason", [
    ("1767225601,BTCUSDT,-1,2", "bid '-1' is negative"),
    ("1767225601,BTCUSDT,,", "no price"),
    ("yesterday,BTCUSDT,1,2", "neither epoch seconds nor ISO-8601"),
    ("1767225599,BTCUSDT,1,2", "ts goes backwards"),
    ("1767225601,BTCUSDT,1", "3 fields, the header has 4"),
    *BAD_ROWS,
])
def test_bad_rows_are_named(tmp_path, row, reason):
    path = tmp_path / "q.csv"
    path.write_text("ts,symbol,bid,ask\n1767225600,BTCUSDT,1,2\n" + row + "\n")
    with pytest.raises(BadRow) as info:
        list(read_quotes(str(path)))
    assert info.value.line == 3 and reason in info.value.reason


def test_skip_bad_skips_each_of_them_and_reads_on(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text("ts,symbol,bid,ask\n" + "".join(f"{row}\n1767225601,BTCUSDT,1,2\n" for row, _ in BAD_ROWS))
    bad: list[BadRow] = []
    quotes = list(read_quotes(str(path), skip_bad=True, bad_rows=bad))
    assert len(quotes) == len(BAD_ROWS)
    assert [(b.line, b.reason) for b in bad] == [(2 + 2 * i, reason) for i, (_, reason) in enumerate(BAD_ROWS)]


@pytest.mark.parametrize("content, byte", [
    ("ts,symbol,bid,ask\n1767225600,BTCUSDT,1,2\n1767225601,CAFÉ,1,2\n".encode("latin-1"), "0xc9"),
    (b"ts,symbol,bid,ask\n1767225600,BTCUSDT,1,2\n\x00\xff\xfe\x81binary\n", "0xff"),
])
def test_a_file_that_is_not_utf8_is_refused_as_a_whole_naming_the_file(tmp_path, content, byte):
    (tmp_path / "cfg.toml").write_text(CONFIG)
    (tmp_path / "q.csv").write_bytes(content)
    for extra in ([], ["--skip-bad"]):
        proc = run_cli(tmp_path, str(tmp_path / "q.csv"), *extra)
        assert proc.returncode == 2
        assert proc.stderr == (f"tui-trader: {tmp_path / 'q.csv'}: not UTF-8 text (line 3 has the byte {byte}); save it "
                               "as UTF-8; nothing written\n")
    (tmp_path / "s.csv").write_bytes(content.replace(b"ts,symbol,bid,ask", b"ts,strategy,symbol,action"))
    (tmp_path / "q.csv").write_text(QUOTES)
    proc = run_cli(tmp_path, str(tmp_path / "q.csv"), "--signals", str(tmp_path / "s.csv"))
    assert proc.returncode == 2 and proc.stderr.startswith(f"tui-trader: {tmp_path / 's.csv'}: not UTF-8 text (line 3")


@pytest.mark.parametrize("row, reason", [
    ("1e300,t,BTCUSDT,buy", "ts '1e300' is not a time from 1970 to 9999"),
    ("nan,t,BTCUSDT,buy", "ts 'nan' is not a time from 1970 to 9999"),
    ("1767225601,t," + "X" * 131_073 + ",buy", "field larger than field limit (131072)"),
])
def test_bad_signal_rows_are_named(tmp_path, row, reason):
    path = tmp_path / "s.csv"
    path.write_text(f"ts,strategy,symbol,action\n1767225600,t,BTCUSDT,buy\n{row}\n1767225602,t,BTCUSDT,buy\n")
    config = TradingConfig.model_validate(tomllib.loads(CONFIG))
    with pytest.raises(BadRow) as info:
        read_signals(str(path), config)
    assert (info.value.line, info.value.reason) == (3, reason)
    bad: list[BadRow] = []
    assert [s.line for s in read_signals(str(path), config, skip_bad=True, bad_rows=bad)] == [2, 4]
    assert [b.line for b in bad] == [3]


@pytest.mark.parametrize("out, problem", [
    ("{tmp}", "a directory; give the result file's name, e.g. {tmp}/result.json"),
    ("{tmp}/cfg.toml/out.json", "directory {tmp}/cfg.toml does not exist"),
    ("/sys/out.json", "cannot be written ("),
])
def test_an_out_that_cannot_be_written_is_refused_before_the_run(tmp_path, out, problem):
    (tmp_path / "cfg.toml").write_text(CONFIG)
    (tmp_path / "q.csv").write_text(QUOTES + "1767225605,BTCUSDT,oops,1\n")  # the run would stop here
    out = out.format(tmp=tmp_path)
    proc = run_cli(tmp_path, str(tmp_path / "q.csv"), out=out)
    assert proc.returncode == 2 and proc.stderr.startswith(f"tui-trader: --out {out}: {problem.format(tmp=tmp_path)}")
    assert not (tmp_path / "out.json").exists()


def test_timestamps_epoch_and_iso_agree():
    assert parse_ts("1767225600") == parse_ts("2026-01-01T00:00:00Z") == parse_ts("2026-01-01T01:00:00+01:00")
    assert parse_ts("2026-01-01 00:00:00") == 1767225600.0  # no offset: UTC
