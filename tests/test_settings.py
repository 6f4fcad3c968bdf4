"""Settings: the shipped file runs the demo; every kind of bad file names the field and the reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tui_trader.locations import PROJECT_SETTINGS
from tui_trader.settings import SettingsError, load_settings

MINIMAL = """
[symbols.BTCUSDT]
start_price = 100
[strategies.t]
symbols = ["BTCUSDT"]
side = "buy"
sizing = { fixed_qty = 1 }
"""


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "settings.toml"
    path.write_text(text)
    with pytest.raises(SettingsError) as info:
        load_settings(path)
    return info.value.problems


def test_shipped_settings_run_the_demo_with_two_strategies_with_different_exits():
    s = load_settings(PROJECT_SETTINGS)
    assert s.engine.mode == "paper" and s.feed.kind == "simulated"
    assert {"BTCUSDT", "ETHUSDT", "ACME"} <= set(s.symbols)
    immediate = [st for st in s.strategies.values() if st.entry == "immediate"]
    assert len(immediate) >= 2
    assert len({(st.stop_loss, st.target, st.trail_distance, st.time_exit_s) for st in immediate}) == len(immediate)
    assert s.store.url.startswith("sqlite:///")  # empty url -> the data directory


def test_bad_toml_names_the_file_and_position(tmp_path):
    (line,) = problems(tmp_path, "[engine]\nmax_open_positions = = 3\n")
    assert "settings.toml: not valid TOML" in line and "line 2" in line


def test_wrong_type_names_the_field_and_value(tmp_path):
    (line,) = problems(tmp_path, MINIMAL + "[engine]\nmax_open_positions = \"ten\"\n")
    assert line.startswith("engine.max_open_positions:") and "'ten'" in line


def test_unknown_key_is_refused(tmp_path):
    (line,) = problems(tmp_path, MINIMAL + "stop_los = \"1%\"\n")
    assert line == "strategies.t.stop_los: unknown setting (check its spelling and section)"


def test_missing_field_is_named(tmp_path):
    (line,) = problems(tmp_path, MINIMAL.replace('side = "buy"\n', ""))
    assert line == "strategies.t.side: required setting is missing"


@pytest.mark.parametrize("extra, field", [
    ('stop_loss = "-1%"', "strategies.t.stop_loss"),
    ('target = "abc"', "strategies.t.target"),
    ("trail_distance = 0", "strategies.t"),
    ("cooldown_s = -5", "strategies.t.cooldown_s"),
    ("pnl = { stop = -25 }", "strategies.t.pnl.stop"),
    ("pnl = { daily_loss_limt = 5 }", "strategies.t.pnl.daily_loss_limt"),
    ('exit_execution = { order_type = "stop" }', "strategies.t.exit_execution.order_type"),
])
def test_impossible_values_are_refused(tmp_path, extra, field):
    (line,) = problems(tmp_path, MINIMAL + extra + "\n")
    assert line.startswith(field + ":"), line


@pytest.mark.parametrize("book, field", [
    ('session_start = "25:00"', "book.session_start"),
    ('timezone = "Mars/Olympus"', "book.timezone"),
    ("daily_loss_limit = 0", "book.daily_loss_limit"),
])
def test_bad_book_settings_are_refused(tmp_path, book, field):
    (line,) = problems(tmp_path, MINIMAL + f"[book]\n{book}\n")
    assert line.startswith(field + ":"), line


@pytest.mark.parametrize("section, field", [
    ('[alerts]\nbell = "loud"', "alerts.bell"),
    ("[alerts]\non_alert_timeout_s = 0", "alerts.on_alert_timeout_s"),
    ("[logs]\nretention_days = -1", "logs.retention_days"),
    ("[logs]\nmax_rows = 10", "logs.max_rows"),
    ("[logs]\nfile_max_mb = 0", "logs.file_max_mb"),
    ('[engine]\norders_on_stop = "drop"', "engine.orders_on_stop"),
])
def test_bad_logs_alerts_and_stop_settings_name_the_field(tmp_path, section, field):
    (line,) = problems(tmp_path, MINIMAL + section + "\n")
    assert line.startswith(field + ":"), line


def test_every_problem_gets_its_own_line(tmp_path):
    lines = problems(tmp_path, MINIMAL + "[engine]\nmax_open_positions = 0\npublish_hz = -1\n")
    assert [ln.split(":")[0] for ln in lines] == ["engine.max_open_positions", "engine.publish_hz"]


def test_sizing_needs_exactly_one_rule(tmp_path):
    (line,) = problems(tmp_path, MINIMAL.replace("{ fixed_qty = 1 }", "{ fixed_qty = 1, fixed_value = 5 }"))
    assert line == "strategies.t.sizing: set exactly one of fixed_qty, fixed_value or pct_allocation"


def test_a_strategy_on_an_undeclared_symbol_is_refused(tmp_path):
    (line,) = problems(tmp_path, MINIMAL.replace('["BTCUSDT"]', '["BTCUSDT", "DOGE"]'))
    assert line == "strategies.t.symbols: unknown symbol 'DOGE' (declare it under [symbols.DOGE])"


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    path = tmp_path / "s.toml"
    path.write_text(MINIMAL + "[engine]\nmax_open_positions = 4\npublish_hz = 2\n")
    monkeypatch.setenv("TUI_TRADER_ENGINE__MAX_OPEN_POSITIONS", "3")
    s = load_settings(path)
    assert s.engine.max_open_positions == 3 and s.engine.publish_hz == 2


def test_a_bad_environment_value_is_reported_like_a_bad_file(tmp_path, monkeypatch):
    path = tmp_path / "s.toml"
    path.write_text(MINIMAL)
    monkeypatch.setenv("TUI_TRADER_ENGINE__MAX_OPEN_POSITIONS", "many")
    with pytest.raises(SettingsError) as info:
        load_settings(path)
    assert info.value.problems[0].startswith("engine.max_open_positions:")


def test_cli_exits_2_with_one_line_per_problem_and_no_traceback(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(MINIMAL + "bogus = 1\n[engine]\nmax_open_positions = -1\n")
    proc = subprocess.run([sys.executable, "-m", "tui_trader", "engine", "--config", str(path)],
                          capture_output=True, text=True, timeout=60,
                          env={"TUI_TRADER_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == f"tui-trader: invalid settings in {path}:"
    assert sorted(ln.strip().split(":")[0] for ln in lines[1:]) == ["engine.max_open_positions", "strategies.t.bogus"]


SCHEDULED = MINIMAL + 'entry = "scheduled"\n'


@pytest.mark.parametrize("extra, field, words", [
    ('[strategies.t.schedule]\nentry_times = ["09:30"]\ntimezone = "Europe/Pariss"\n',
     "strategies.t.schedule.timezone", "unknown timezone 'Europe/Pariss'"),
    ('[strategies.t.schedule]\nentry_times = ["09:30"]\nweekdays = ["mon", "tues"]\n',
     "strategies.t.schedule.weekdays.1", "unknown weekday 'tues'"),
    ('[strategies.t.schedule]\nentry_times = ["25:61"]\n', "strategies.t.schedule.entry_times.0", "'25:61'"),
    ("[strategies.t.execution]\nmax_retries = -1\n", "strategies.t.execution.max_retries", "greater than or equal to 0"),
    ("[strategies.t.execution]\nbias = 0.7\n", "strategies.t.execution.bias", "less than or equal to 0.5"),
    ("", "strategies.t", 'entry = "scheduled" needs a schedule table'),
])
def test_bad_schedules_and_execution_settings_name_the_field(tmp_path, extra, field, words):
    (line,) = problems(tmp_path, SCHEDULED + extra)
    assert line.startswith(field + ":") and words in line, line


@pytest.mark.parametrize("sizing, field", [
    ("{ fixed_qty = -1 }", "strategies.t.sizing.fixed_qty"),
    ("{ fixed_value = 0 }", "strategies.t.sizing.fixed_value"),
    ("{ pct_allocation = 150 }", "strategies.t.sizing.pct_allocation"),
])
def test_negative_or_zero_sizes_are_refused(tmp_path, sizing, field):
    (line,) = problems(tmp_path, MINIMAL.replace("{ fixed_qty = 1 }", sizing))
    assert line.startswith(field + ":"), line
