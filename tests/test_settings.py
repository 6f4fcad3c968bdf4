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
    ("trail_distance = 0", "strategies.t.trail_distance"),
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
    assert line == "strategies.t.symbols.1: unknown symbol 'DOGE' (declare it under [symbols.DOGE])"


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
    ("", "strategies.t.schedule", 'entry = "scheduled" needs a schedule table'),
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


def changed(old: str, new: str) -> str:
    assert old in MINIMAL
    return MINIMAL.replace(old, new)


def no_text(value):
    """Test ids from the field and the words, not from a whole settings file."""
    return "" if isinstance(value, str) and "\n" in value else None


# Issue 13: numbers that passed and then broke the engine (an OverflowError, a feed that died, a
# fill with a NaN price, every quote stale); each is refused naming the field and the bound.
@pytest.mark.parametrize("text, field, words", [
    (changed("start_price = 100", "start_price = inf"), "symbols.BTCUSDT.start_price", "finite number"),
    (changed("start_price = 100", "start_price = 1e308"), "symbols.BTCUSDT.start_price", "less than 1000000000000"),
    (changed("start_price = 100", "start_price = 100\ntick_size = 1e308"), "symbols.BTCUSDT.tick_size",
     "less than 1000000000000"),
    (changed("start_price = 100", "start_price = 100\nlot_step = inf"), "symbols.BTCUSDT.lot_step", "finite number"),
    (changed("start_price = 100", "start_price = 100\nlot_step = 1e-300"), "symbols.BTCUSDT.lot_step",
     "greater than or equal to 0.000000000001"),
    (changed("start_price = 100", "start_price = 100\nmin_notional = nan"), "symbols.BTCUSDT.min_notional",
     "finite number"),
    (changed("start_price = 100", "start_price = 100\ndrift = 1e308"), "symbols.BTCUSDT.drift",
     "less than or equal to 100"),
    (changed("start_price = 100", "start_price = 100\ntick_size = 200"), "symbols.BTCUSDT.tick_size",
     "must not be above start_price (200 > 100)"),
    (changed("{ fixed_qty = 1 }", "{ fixed_value = inf }"), "strategies.t.sizing.fixed_value", "finite number"),
    (changed("{ fixed_qty = 1 }", "{ fixed_qty = 1e308 }"), "strategies.t.sizing.fixed_qty", "less than 1000000000000"),
    (changed("{ fixed_qty = 1 }", "{ pct_allocation = 10 }\nallocation = inf"), "strategies.t.allocation",
     "finite number"),
    (MINIMAL + "cooldown_s = 1e308\n", "strategies.t.cooldown_s", "less than or equal to 31622400"),
    (MINIMAL + 'stop_loss = "inf%"\n', "strategies.t.stop_loss", "below 1000%"),
    (MINIMAL + "target = 1e308\n", "strategies.t.target", "below 1e+12 points"),
    (MINIMAL + "pnl = { stop = inf }\n", "strategies.t.pnl.stop", "finite number"),
    (MINIMAL + "[feed]\nmax_quote_age_s = 1e-12\n", "feed.max_quote_age_s", "greater than or equal to 0.5"),
    (MINIMAL + "[feed]\nmax_quote_age_s = 1e9\n", "feed.max_quote_age_s", "less than or equal to 3600"),
    (MINIMAL + "[feed]\nseed = -1\n", "feed.seed", "greater than or equal to 0"),
    (MINIMAL + "[logs]\nfile_max_mb = inf\n", "logs.file_max_mb", "finite number"),
    (MINIMAL + "[logs]\nmax_rows = 2_000_000_000\n", "logs.max_rows", "less than or equal to 1000000000"),
    (MINIMAL + "[paper]\nstarting_cash = 1e308\n", "paper.starting_cash", "less than 1000000000000"),
], ids=no_text)
def test_numbers_out_of_a_sane_range_are_refused_naming_the_bound(tmp_path, text, field, words):
    (line,) = problems(tmp_path, text)
    assert line.startswith(field + ": ") and words in line, line


@pytest.mark.parametrize("section, field", [
    ('[logs]\nfile = "a\\u0000b"', "logs.file"),
    ('[alerts]\non_alert = "echo \\u0000"', "alerts.on_alert"),
])
def test_a_nul_in_a_path_or_command_is_refused(tmp_path, section, field):
    (line,) = problems(tmp_path, MINIMAL + section + "\n")
    assert line == f"{field}: must not contain a NUL character"


@pytest.mark.parametrize("url, words", [
    ("abc", "not a database URL like sqlite:///path/to/file.db"),
    ("foo://host/db", "unknown database dialect or driver 'foo'"),
    ("postgresql+nodriver://trader:secret@host/db", "unknown database dialect or driver 'postgresql+nodriver'"),
])
def test_a_bad_database_url_is_refused_without_showing_it(tmp_path, url, words):
    (line,) = problems(tmp_path, MINIMAL + f'[store]\nurl = "{url}"\n')
    assert line.startswith(f"store.url: {words}") and "secret" not in line, line


def test_a_database_url_of_a_known_dialect_loads_without_connecting(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(MINIMAL + '[store]\nurl = "postgresql+psycopg://trader@nowhere.invalid/db"\n')
    assert load_settings(path).store.url.startswith("postgresql+psycopg://")


DCA = changed("start_price = 100", "start_price = 100\nmin_notional = 1").replace(
    "{ fixed_qty = 1 }", "{ fixed_value = 1000 }") + (
    "dca = { layers = [{ gap_pct = 0, weight = 1, tp_pct = 1 }, { gap_pct = 1, weight = 1, tp_pct = 1 }] }\n")


# Checks across fields name the field to change, not the strategy or "(top level)".
@pytest.mark.parametrize("text, field, words", [
    (DCA.replace("gap_pct = 1, weight = 1", "gap_pct = 1, weight = inf"), "strategies.t.dca.layers.1.weight",
     "finite number"),
    (DCA.replace("gap_pct = 1, weight = 1", "gap_pct = 1, weight = 0.0005"), "strategies.t.dca.layers.1.weight",
     "layers[1] (gap 1%): order value 0.50 is below the minimum notional 1.00; give it more weight"),
    (DCA.replace("gap_pct = 0,", "gap_pct = 0.5,"), "strategies.t.dca.layers.0.gap_pct", "must be 0"),
    (DCA.replace("gap_pct = 1,", "gap_pct = 0,"), "strategies.t.dca.layers.1.gap_pct",
     "must be greater than layers.0's (0 <= 0)"),
    (DCA.replace("dca = {", 'dca = { tp_mode = "hybrid",'), "strategies.t.dca.tp_pct",
     'tp_mode = "hybrid" needs tp_pct'),
    (DCA.replace("{ fixed_value = 1000 }", "{ fixed_qty = 1 }"), "strategies.t.sizing.fixed_qty",
     "dca needs sizing.fixed_value or sizing.pct_allocation"),
    (DCA + "basket = true\n", "strategies.t.basket", "dca and basket cannot be combined"),
    (DCA + 'target = "1%"\n', "strategies.t.target", "remove target"),
    (changed("{ fixed_qty = 1 }", "{ pct_allocation = 10 }"), "strategies.t.allocation",
     "sizing.pct_allocation needs allocation"),
    (MINIMAL + 'stop_loss = "100%"\n', "strategies.t.stop_loss", 'must be below 100% for a long'),
    (MINIMAL + 'trail_distance = "100%"\n', "strategies.t.trail_distance", "must be below 100%"),
], ids=no_text)
def test_checks_across_fields_name_the_field(tmp_path, text, field, words):
    (line,) = problems(tmp_path, text)
    assert line.startswith(field + ": ") and words in line, line


def test_a_huge_value_is_shortened_in_the_message(tmp_path):
    (line,) = problems(tmp_path, MINIMAL + f'[engine]\nmax_open_positions = "{"x" * 10_000}"\n')
    assert line.startswith("engine.max_open_positions: ") and len(line) < 200, line
